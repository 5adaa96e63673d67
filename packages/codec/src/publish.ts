// PUBLISH (3.1.1 section 3.3, 5.0 section 3.3): the hot path, kept lean. The payload is a view
// into the packet's bytes (no copy); the topic is validated in one pass while it is sized.
import type { Properties, ProtocolVersion, PublishPacket, QoS } from "./packets.js";
import { EMPTY_PROPERTIES, PROTOCOL_ERROR, asciiString, type Reader, type Writer, checkInt, decodeUtf8, fail, utf8Problem, varintSize, writeUtf8Raw } from "./primitives.js";
import { isUtf8Payload, propertiesSize, readProperties, writeProperties } from "./properties.js";

const PAYLOAD_FORMAT_INVALID = 0x99;

interface PublishLayout {
  readonly properties: boolean;
  /** 5.0: an empty topic name is allowed when a Topic Alias carries the topic. */
  readonly emptyTopicWithAlias: boolean;
}
const layout: Record<ProtocolVersion, PublishLayout> = {
  3: { properties: false, emptyTopicWithAlias: false },
  4: { properties: false, emptyTopicWithAlias: false },
  5: { properties: true, emptyTopicWithAlias: true },
};

export function parsePublish(r: Reader, flags: number, version: ProtocolVersion): PublishPacket {
  const qos = (flags >> 1) & 0x03;
  if (qos === 3) fail("PUBLISH with QoS 3"); // [MQTT-3.3.1-4]
  const dup = (flags & 0x08) !== 0;
  if (dup && qos === 0) fail("PUBLISH with DUP set on QoS 0"); // [MQTT-3.3.1-2]
  // [MQTT-3.3.2-1] the topic name comes first and is a UTF-8 string
  const buf = r.buf;
  const len = r.u16("topic name");
  const start = r.pos;
  const end = start + len;
  if (end > r.end) fail("truncated topic name");
  // One pass: wildcards, ASCII-ness and a hash for the topic cache.
  let ascii = true;
  let hash = 0;
  for (let i = start; i < end; i++) {
    const c = buf[i]!;
    // [MQTT-3.3.2-2] (3.1.1 [MQTT-4.7.1-1], 5.0 [MQTT-4.7.0-1]) no wildcards in a topic name
    if (c === 0x2b || c === 0x23) fail("PUBLISH topic name contains a wildcard");
    if (c === 0 || c >= 0x80) ascii = false;
    hash = (Math.imul(hash, 31) + c) | 0;
  }
  let topic: string | undefined;
  if (ascii) {
    topic = r.topics.get(buf, start, end, hash);
    if (topic === undefined) {
      topic = asciiString(buf, start, end);
      r.topics.set(topic, hash);
    }
  } else {
    topic = decodeUtf8(buf, start, end);
    if (topic === undefined) fail("PUBLISH topic name is not valid MQTT UTF-8 (ill-formed, surrogate or U+0000)");
  }
  r.pos = end;
  let packetId: number | undefined;
  if (qos > 0) {
    packetId = r.u16("packet identifier");
    if (packetId === 0) fail("PUBLISH with packet identifier 0"); // [MQTT-2.3.1-1]
  }
  // [MQTT-2.3.1-5] / 5.0 [MQTT-2.2.1-2]: a QoS 0 PUBLISH has no packet identifier: the bytes
  // after the topic are properties / payload.
  const v = layout[version];
  let properties: Properties = EMPTY_PROPERTIES;
  if (v.properties) properties = readProperties(r, "publish");
  if (len === 0) {
    // 3.x [MQTT-4.7.3-1]: a topic name is at least one character (malformed); 5.0 section
    // 3.3.2.3.4: a zero-length topic without a Topic Alias is a protocol error
    if (!v.emptyTopicWithAlias) fail("PUBLISH with an empty topic name");
    if (properties.topicAlias === undefined) fail("PUBLISH with an empty topic name and no topic alias", PROTOCOL_ERROR);
  }
  const payload = r.rest();
  if (properties.payloadFormatIndicator === 1 && !isUtf8Payload(payload)) {
    fail("PUBLISH payload is not UTF-8 although its payload format indicator is 1", PAYLOAD_FORMAT_INVALID);
  }
  return {
    type: "publish",
    topic,
    payload,
    qos: qos as QoS,
    retain: (flags & 0x01) !== 0,
    dup,
    packetId,
    properties,
  };
}

/**
 * The last topic name sized and its UTF-8 length: a broker sends the same topic
 * string to every subscriber, so a fan-out checks it once, not once per copy. Only non-empty
 * topics that passed the checks are remembered.
 */
let lastTopic = "";
let lastTopicLength = 0;

/**
 * UTF-8 length of a topic name after checking it: no wildcards, no U+0000, no lone surrogates,
 * at most 65535 bytes. Throws for a caller's bad topic. Remembers a valid non-empty topic.
 */
function topicSize(topic: string, emptyOk: boolean): number {
  if (topic === lastTopic && lastTopicLength !== 0) return lastTopicLength;
  if (typeof topic !== "string") throw new TypeError("PUBLISH topic must be a string");
  const n = topic.length;
  let len = n;
  for (let i = 0; i < n; i++) {
    const c = topic.charCodeAt(i);
    if (c < 0x80) {
      if (c === 0x2b || c === 0x23 || c === 0) throw new TypeError(`invalid PUBLISH topic name ${JSON.stringify(topic)}`); // [MQTT-3.3.2-2]
    } else if (c < 0x800) len += 1;
    else if (c >= 0xd800 && c <= 0xdfff) {
      if (utf8Problem(topic) !== undefined) throw new TypeError(`PUBLISH topic name ${utf8Problem(topic)}`);
      len += 2;
      i++;
    } else len += 2;
  }
  if (n === 0) {
    if (!emptyOk) throw new TypeError("PUBLISH topic name is empty"); // [MQTT-4.7.3-1]
    return 0;
  }
  if (len > 0xffff) throw new RangeError(`PUBLISH topic name is ${len} bytes, over 65535`);
  lastTopic = topic;
  lastTopicLength = len;
  return len;
}

function checkPublish(p: PublishPacket): void {
  const qos = p.qos;
  if (qos !== 0 && qos !== 1 && qos !== 2) throw new RangeError(`PUBLISH qos must be 0, 1 or 2, got ${String(qos)}`);
  if (qos === 0) {
    // [MQTT-2.3.1-5] no packet identifier at QoS 0; [MQTT-3.3.1-2] DUP is 0 at QoS 0
    if (p.packetId !== undefined) throw new TypeError("QoS 0 PUBLISH must not have a packetId");
    if (p.dup) throw new TypeError("QoS 0 PUBLISH must not have DUP set");
  } else {
    checkInt(p.packetId as number, 1, 0xffff, "PUBLISH packetId"); // [MQTT-2.3.1-1]
  }
  if (!(p.payload instanceof Uint8Array)) throw new TypeError("PUBLISH payload must be a Uint8Array");
}

/** Sizes computed by publishLength for the packet about to be written (encode is synchronous). */
let sizedPacket: PublishPacket | undefined;
let sizedPropertiesLength = 0;

export function publishLength(p: PublishPacket, version: ProtocolVersion): number {
  checkPublish(p);
  const v = layout[version];
  let n = 2 + topicSize(p.topic, v.emptyTopicWithAlias && p.properties.topicAlias !== undefined) + p.payload.length;
  if (p.qos !== 0) n += 2;
  if (v.properties) {
    const ps = propertiesSize(p.properties, "publish");
    n += varintSize(ps) + ps;
    sizedPacket = p;
    sizedPropertiesLength = ps;
  }
  return n;
}

export function publishFlags(p: PublishPacket): number {
  return (p.dup ? 0x08 : 0) | (p.qos << 1) | (p.retain ? 0x01 : 0);
}

/** Writes the variable header, and the payload unless `withPayload` is false (encodeHeader). */
export function writePublish(w: Writer, p: PublishPacket, version: ProtocolVersion, withPayload: boolean): void {
  const buf = w.buf;
  const topic = p.topic;
  let pos = w.pos;
  // publishLength sized this topic just before (or it is empty and so not remembered)
  const tl = topic === lastTopic ? lastTopicLength : topicSize(topic, true);
  buf[pos] = tl >>> 8;
  buf[pos + 1] = tl & 0xff;
  pos += 2;
  if (tl === topic.length) {
    // ASCII (the UTF-8 length equals the UTF-16 length only then)
    for (let i = 0; i < tl; i++) buf[pos + i] = topic.charCodeAt(i);
    pos += tl;
  } else pos = writeUtf8Raw(buf, pos, topic);
  if (p.qos !== 0) {
    const id = p.packetId!;
    buf[pos] = id >>> 8;
    buf[pos + 1] = id & 0xff;
    pos += 2;
  }
  w.pos = pos;
  if (layout[version].properties) {
    const ps = sizedPacket === p ? sizedPropertiesLength : propertiesSize(p.properties, "publish");
    sizedPacket = undefined;
    writeProperties(w, p.properties, ps);
  }
  if (withPayload) w.bytes(p.payload);
}
