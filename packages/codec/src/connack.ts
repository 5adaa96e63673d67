// CONNACK (3.1.1 section 3.2, 5.0 section 3.2): acknowledge flags, return / reason code, v5 properties.
import type { ConnackPacket, Properties, ProtocolVersion } from "./packets.js";
import { EMPTY_PROPERTIES, type Reader, type Writer, fail } from "./primitives.js";
import { propertiesLength, propertiesSize, readProperties, writeProperties } from "./properties.js";
import { checkReceivedCode, checkSentCode } from "./reason-codes.js";

interface ConnackLayout {
  /** MQTT 3.1 has no session present flag: its first byte is unused. */
  readonly sessionPresent: boolean;
  readonly properties: boolean;
}
const layout: Record<ProtocolVersion, ConnackLayout> = {
  3: { sessionPresent: false, properties: false },
  4: { sessionPresent: true, properties: false },
  5: { sessionPresent: true, properties: true },
};

export function parseConnack(r: Reader, version: ProtocolVersion): ConnackPacket {
  const v = layout[version];
  const ackFlags = r.u8("connack flags");
  // 5.0 [MQTT-3.2.2-1] (3.1.1 section 3.2.2.1) bits 7-1 of the acknowledge flags are reserved
  if (v.sessionPresent && (ackFlags & 0xfe) !== 0) fail("CONNACK reserved acknowledge flags are set");
  const reasonCode = r.u8("connack reason code");
  // 5.0 [MQTT-3.2.2-8] a code from the CONNACK table; 3.1.1 section 3.2.2.3: 6-255 are reserved
  checkReceivedCode("connack", version, reasonCode);
  // 3.1.1 [MQTT-3.2.2-4], 5.0 [MQTT-3.2.2-6] a refusal never says a session is present
  if (v.sessionPresent && (ackFlags & 1) === 1 && reasonCode !== 0) fail("CONNACK with session present and a non-zero reason code");
  const properties: Properties = v.properties ? readProperties(r, "connack") : EMPTY_PROPERTIES;
  r.done("CONNACK");
  return { type: "connack", sessionPresent: v.sessionPresent && (ackFlags & 1) === 1, reasonCode, properties };
}

export function connackLength(p: ConnackPacket, version: ProtocolVersion): number {
  checkSentCode("connack", version, p.reasonCode);
  if (p.sessionPresent && p.reasonCode !== 0 && layout[version].sessionPresent) {
    throw new TypeError("CONNACK with a non-zero reason code must not set sessionPresent"); // [MQTT-3.2.2-4] / 5.0 [MQTT-3.2.2-6]
  }
  if (!layout[version].properties) return 2;
  return 2 + propertiesLength(p.properties, "connack");
}

export function writeConnack(w: Writer, p: ConnackPacket, version: ProtocolVersion): void {
  const v = layout[version];
  w.u8(v.sessionPresent && p.sessionPresent ? 1 : 0);
  w.u8(p.reasonCode);
  if (v.properties) writeProperties(w, p.properties, propertiesSize(p.properties, "connack"));
}
