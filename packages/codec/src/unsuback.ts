// UNSUBACK (3.1.1 section 3.11, 5.0 section 3.11): packet id; 5.0 adds properties and one reason
// code per filter (3.x has no payload, so `reasonCodes` is always empty there).
import type { Properties, ProtocolVersion, UnsubackPacket } from "./packets.js";
import { EMPTY_PROPERTIES, type Reader, type Writer, checkPacketId, fail } from "./primitives.js";
import { propertiesLength, propertiesSize, readProperties, writeProperties } from "./properties.js";
import { checkReceivedCode, checkSentCode } from "./reason-codes.js";

const layout: Record<ProtocolVersion, { readonly propertiesAndCodes: boolean }> = {
  3: { propertiesAndCodes: false },
  4: { propertiesAndCodes: false },
  5: { propertiesAndCodes: true },
};

const NO_CODES: readonly number[] = Object.freeze([]);

export function parseUnsuback(r: Reader, version: ProtocolVersion): UnsubackPacket {
  const packetId = r.u16("packet identifier");
  if (packetId === 0) fail("UNSUBACK with packet identifier 0");
  if (!layout[version].propertiesAndCodes) {
    r.done("UNSUBACK");
    return { type: "unsuback", packetId, reasonCodes: NO_CODES, properties: EMPTY_PROPERTIES };
  }
  const properties: Properties = readProperties(r, "unsuback");
  const reasonCodes: number[] = [];
  while (r.pos < r.end) {
    const c = r.u8("reason code");
    checkReceivedCode("unsuback", version, c); // [MQTT-3.11.3-2]
    reasonCodes.push(c);
  }
  // one code per filter of an UNSUBSCRIBE, which has at least one ([MQTT-3.11.3-2] [MQTT-3.10.3-2])
  if (reasonCodes.length === 0) fail("UNSUBACK without a reason code");
  return { type: "unsuback", packetId, reasonCodes, properties };
}

export function unsubackLength(p: UnsubackPacket, version: ProtocolVersion): number {
  checkPacketId(p.packetId, "UNSUBACK");
  if (!layout[version].propertiesAndCodes) return 2;
  for (const c of p.reasonCodes) checkSentCode("unsuback", version, c);
  return 2 + propertiesLength(p.properties, "unsuback") + p.reasonCodes.length;
}

export function writeUnsuback(w: Writer, p: UnsubackPacket, version: ProtocolVersion): void {
  w.u16(p.packetId);
  if (!layout[version].propertiesAndCodes) return;
  writeProperties(w, p.properties, propertiesSize(p.properties, "unsuback"));
  for (const c of p.reasonCodes) w.u8(c);
}
