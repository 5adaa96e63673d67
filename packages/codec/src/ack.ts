// PUBACK, PUBREC, PUBREL, PUBCOMP (sections 3.4-3.7): packet id, then in 5.0 an optional reason
// code and optional properties (the short forms of 5.0 section 3.4.2.1).
import type { AckPacket, Properties, ProtocolVersion } from "./packets.js";
import { EMPTY_PROPERTIES, type Reader, type Writer, checkPacketId, fail, varintSize } from "./primitives.js";
import { propertiesSize, readProperties, writeProperties } from "./properties.js";
import { checkReceivedCode, checkSentCode } from "./reason-codes.js";

type AckType = "puback" | "pubrec" | "pubrel" | "pubcomp";

interface AckLayout {
  readonly reasonAndProperties: boolean;
}
const layout: Record<ProtocolVersion, AckLayout> = {
  3: { reasonAndProperties: false },
  4: { reasonAndProperties: false },
  5: { reasonAndProperties: true },
};

export function parseAck<T extends AckType>(r: Reader, type: T, version: ProtocolVersion): AckPacket<T> {
  const packetId = r.u16("packet identifier");
  if (packetId === 0) fail(`${type.toUpperCase()} with packet identifier 0`);
  let reasonCode = 0;
  let properties: Properties = EMPTY_PROPERTIES;
  if (layout[version].reasonAndProperties && r.pos < r.end) {
    reasonCode = r.u8("reason code");
    // [MQTT-3.4.2-1] [MQTT-3.5.2-1] [MQTT-3.6.2-1] [MQTT-3.7.2-1] only the codes of its table
    checkReceivedCode(type, version, reasonCode);
    if (r.pos < r.end) properties = readProperties(r, type);
  }
  r.done(type.toUpperCase());
  return { type, packetId, reasonCode, properties };
}

/** 5.0: the smallest form that carries the packet (omit reason 0 / empty properties). */
export function ackLength(p: AckPacket<AckType>, version: ProtocolVersion): number {
  checkPacketId(p.packetId, p.type.toUpperCase());
  if (!layout[version].reasonAndProperties) return 2;
  checkSentCode(p.type, version, p.reasonCode);
  const ps = propertiesSize(p.properties, p.type);
  if (ps === 0) return p.reasonCode === 0 ? 2 : 3;
  return 3 + varintSize(ps) + ps;
}

export function writeAck(w: Writer, p: AckPacket<AckType>, version: ProtocolVersion): void {
  w.u16(p.packetId);
  if (!layout[version].reasonAndProperties) return;
  const ps = propertiesSize(p.properties, p.type);
  if (ps === 0 && p.reasonCode === 0) return;
  w.u8(p.reasonCode);
  if (ps !== 0) writeProperties(w, p.properties, ps);
}
