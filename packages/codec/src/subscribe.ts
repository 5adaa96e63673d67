// SUBSCRIBE (3.1.1 section 3.8, 5.0 section 3.8): packet id, v5 properties, then one or more
// topic filter + options pairs. 3.x options are just the requested QoS; 5.0 adds No Local,
// Retain As Published and Retain Handling.
import type { Properties, ProtocolVersion, QoS, RetainHandling, SubscribePacket, Subscription } from "./packets.js";
import {
  EMPTY_PROPERTIES,
  PROTOCOL_ERROR,
  type Reader,
  type Writer,
  checkInt,
  checkPacketId,
  fail,
  stringSize,
  utf8Length,
} from "./primitives.js";
import { propertiesLength, propertiesSize, readProperties, writeProperties } from "./properties.js";
import { isSharedFilter, isValidTopicFilter } from "./topic.js";

interface SubscribeLayout {
  readonly properties: boolean;
  /** Option bits that may be set; the others are reserved. */
  readonly optionBits: number;
}
const layout: Record<ProtocolVersion, SubscribeLayout> = {
  3: { properties: false, optionBits: 0x03 },
  4: { properties: false, optionBits: 0x03 },
  5: { properties: true, optionBits: 0x3f },
};

export function parseSubscribe(r: Reader, version: ProtocolVersion): SubscribePacket {
  const v = layout[version];
  const packetId = r.u16("packet identifier");
  if (packetId === 0) fail("SUBSCRIBE with packet identifier 0"); // [MQTT-2.3.1-1]
  const properties: Properties = v.properties ? readProperties(r, "subscribe") : EMPTY_PROPERTIES;
  // 3.1.1 [MQTT-3.8.3-3], 5.0 [MQTT-3.8.3-2] at least one filter: an empty payload is a protocol error
  if (r.pos === r.end) fail("SUBSCRIBE without topic filters", PROTOCOL_ERROR);
  const subscriptions: Subscription[] = [];
  while (r.pos < r.end) {
    const topicFilter = r.utf8("topic filter"); // 3.1.1 / 5.0 [MQTT-3.8.3-1]
    if (!isValidTopicFilter(topicFilter)) fail(`invalid topic filter ${JSON.stringify(topicFilter)}`);
    const options = r.u8("subscription options");
    // 3.1.1 [MQTT-3.8.3-4] reserved bits 7-2, 5.0 [MQTT-3.8.3-5] reserved bits 7-6
    if ((options & ~v.optionBits) !== 0) fail(`reserved subscription option bits set (0x${options.toString(16)})`);
    const qos = options & 0x03;
    // 3.1.1 [MQTT-3.8.3-4] malformed; 5.0 section 3.8.3.1: "a Protocol Error"
    if (qos === 3) fail("SUBSCRIBE requests QoS 3", version === 5 ? PROTOCOL_ERROR : undefined);
    const noLocal = (options & 0x04) !== 0;
    const retainHandling = (options >> 4) & 0x03;
    // 5.0 section 3.8.3.1: Retain Handling 3 is a protocol error
    if (retainHandling === 3) fail("SUBSCRIBE with retain handling 3", PROTOCOL_ERROR);
    // 5.0 [MQTT-3.8.3-4]: No Local on a shared subscription is a protocol error
    if (noLocal && isSharedFilter(topicFilter)) fail("No Local set on a shared subscription", PROTOCOL_ERROR);
    subscriptions.push({
      topicFilter,
      qos: qos as QoS,
      noLocal,
      retainAsPublished: (options & 0x08) !== 0,
      retainHandling: retainHandling as RetainHandling,
    });
  }
  return { type: "subscribe", packetId, subscriptions, properties };
}

function options(s: Subscription, version: ProtocolVersion): number {
  let o = s.qos;
  if (version === 5) o |= (s.noLocal ? 0x04 : 0) | (s.retainAsPublished ? 0x08 : 0) | (s.retainHandling << 4);
  return o;
}

export function subscribeLength(p: SubscribePacket, version: ProtocolVersion): number {
  checkPacketId(p.packetId, "SUBSCRIBE");
  if (p.subscriptions.length === 0) throw new TypeError("SUBSCRIBE needs at least one subscription"); // [MQTT-3.8.3-3]
  let n = 2;
  if (layout[version].properties) n += propertiesLength(p.properties, "subscribe");
  for (const s of p.subscriptions) {
    if (!isValidTopicFilter(s.topicFilter)) throw new TypeError(`invalid topic filter ${JSON.stringify(s.topicFilter)}`);
    checkInt(s.qos, 0, 2, "subscription qos");
    checkInt(s.retainHandling, 0, 2, "retainHandling");
    // 5.0 [MQTT-3.8.3-4]: the decoder refuses it, so the encoder does not write it
    if (version === 5 && s.noLocal && isSharedFilter(s.topicFilter)) throw new TypeError(`No Local on the shared subscription ${JSON.stringify(s.topicFilter)}`);
    n += stringSize(s.topicFilter, "topic filter") + 1;
  }
  return n;
}

export function writeSubscribe(w: Writer, p: SubscribePacket, version: ProtocolVersion): void {
  w.u16(p.packetId);
  if (layout[version].properties) writeProperties(w, p.properties, propertiesSize(p.properties, "subscribe"));
  for (const s of p.subscriptions) {
    w.utf8(s.topicFilter, utf8Length(s.topicFilter));
    w.u8(options(s, version));
  }
}
