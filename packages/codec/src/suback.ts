// SUBACK (3.1.1 section 3.9, 5.0 section 3.9): packet id, v5 properties, one code per filter.
import type { Properties, ProtocolVersion, SubackPacket } from "./packets.js";
import { EMPTY_PROPERTIES, type Reader, type Writer, checkPacketId, fail } from "./primitives.js";
import { propertiesLength, propertiesSize, readProperties, writeProperties } from "./properties.js";
import { checkReceivedCode, checkSentCode } from "./reason-codes.js";

// The return / reason codes per version are in reason-codes.ts.
const layout: Record<ProtocolVersion, { readonly properties: boolean }> = {
  3: { properties: false },
  4: { properties: false },
  5: { properties: true },
};

export function parseSuback(r: Reader, version: ProtocolVersion): SubackPacket {
  const v = layout[version];
  const packetId = r.u16("packet identifier");
  if (packetId === 0) fail("SUBACK with packet identifier 0");
  const properties: Properties = v.properties ? readProperties(r, "suback") : EMPTY_PROPERTIES;
  const reasonCodes: number[] = [];
  while (r.pos < r.end) {
    const c = r.u8("reason code");
    checkReceivedCode("suback", version, c); // [MQTT-3.9.3-2] (both versions)
    reasonCodes.push(c);
  }
  // one code per filter of a SUBSCRIBE, which has at least one ([MQTT-3.9.3-1] [MQTT-3.8.3-3])
  if (reasonCodes.length === 0) fail("SUBACK without a reason code");
  return { type: "suback", packetId, reasonCodes, properties };
}

export function subackLength(p: SubackPacket, version: ProtocolVersion): number {
  const v = layout[version];
  checkPacketId(p.packetId, "SUBACK");
  for (const c of p.reasonCodes) checkSentCode("suback", version, c); // [MQTT-3.9.3-2]
  let n = 2 + p.reasonCodes.length;
  if (v.properties) n += propertiesLength(p.properties, "suback");
  return n;
}

export function writeSuback(w: Writer, p: SubackPacket, version: ProtocolVersion): void {
  w.u16(p.packetId);
  if (layout[version].properties) writeProperties(w, p.properties, propertiesSize(p.properties, "suback"));
  for (const c of p.reasonCodes) w.u8(c);
}
