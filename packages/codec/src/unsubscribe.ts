// UNSUBSCRIBE (3.1.1 section 3.10, 5.0 section 3.10): packet id, v5 properties, one or more filters.
import type { Properties, ProtocolVersion, UnsubscribePacket } from "./packets.js";
import {
  EMPTY_PROPERTIES,
  PROTOCOL_ERROR,
  type Reader,
  type Writer,
  checkPacketId,
  fail,
  stringSize,
  utf8Length,
} from "./primitives.js";
import { propertiesLength, propertiesSize, readProperties, writeProperties } from "./properties.js";
import { isValidTopicFilter } from "./topic.js";

const layout: Record<ProtocolVersion, { readonly properties: boolean }> = {
  3: { properties: false },
  4: { properties: false },
  5: { properties: true },
};

export function parseUnsubscribe(r: Reader, version: ProtocolVersion): UnsubscribePacket {
  const packetId = r.u16("packet identifier");
  if (packetId === 0) fail("UNSUBSCRIBE with packet identifier 0"); // [MQTT-2.3.1-1]
  const properties: Properties = layout[version].properties ? readProperties(r, "unsubscribe") : EMPTY_PROPERTIES;
  // [MQTT-3.10.3-2] at least one topic filter
  if (r.pos === r.end) fail("UNSUBSCRIBE without topic filters", PROTOCOL_ERROR);
  const topicFilters: string[] = [];
  while (r.pos < r.end) {
    // [MQTT-3.10.3-1] UTF-8 strings packed one after another
    const f = r.utf8("topic filter");
    if (!isValidTopicFilter(f)) fail(`invalid topic filter ${JSON.stringify(f)}`);
    topicFilters.push(f);
  }
  return { type: "unsubscribe", packetId, topicFilters, properties };
}

export function unsubscribeLength(p: UnsubscribePacket, version: ProtocolVersion): number {
  checkPacketId(p.packetId, "UNSUBSCRIBE");
  if (p.topicFilters.length === 0) throw new TypeError("UNSUBSCRIBE needs at least one topic filter"); // [MQTT-3.10.3-2]
  let n = 2;
  if (layout[version].properties) n += propertiesLength(p.properties, "unsubscribe");
  for (const f of p.topicFilters) {
    if (!isValidTopicFilter(f)) throw new TypeError(`invalid topic filter ${JSON.stringify(f)}`);
    n += stringSize(f, "topic filter");
  }
  return n;
}

export function writeUnsubscribe(w: Writer, p: UnsubscribePacket, version: ProtocolVersion): void {
  w.u16(p.packetId);
  if (layout[version].properties) writeProperties(w, p.properties, propertiesSize(p.properties, "unsubscribe"));
  for (const f of p.topicFilters) w.utf8(f, utf8Length(f));
}
