// SUBACK (3.1.1 section 3.9, 5.0 section 3.9): packet id, v5 properties, one code per filter.
import type { Properties, ProtocolVersion, SubackPacket } from "./packets.js";
import { EMPTY_PROPERTIES, type Reader, type Writer, checkPacketId, fail, varintSize } from "./primitives.js";
import { propertiesSize, readProperties, writeProperties } from "./properties.js";

interface SubackLayout {
  readonly properties: boolean;
  /** The return / reason codes a SUBACK may carry. */
  readonly codes: ReadonlySet<number>;
}
const codes3 = new Set([0x00, 0x01, 0x02, 0x80]); // 3.1.1 [MQTT-3.9.3-2] others are reserved
const codes5 = new Set([0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8f, 0x91, 0x97, 0x9e, 0xa1, 0xa2]); // 5.0 3.9.3
const layout: Record<ProtocolVersion, SubackLayout> = {
  3: { properties: false, codes: codes3 },
  4: { properties: false, codes: codes3 },
  5: { properties: true, codes: codes5 },
};

export function parseSuback(r: Reader, version: ProtocolVersion): SubackPacket {
  const v = layout[version];
  const packetId = r.u16("packet identifier");
  if (packetId === 0) fail("SUBACK with packet identifier 0");
  const properties: Properties = v.properties ? readProperties(r, "suback") : EMPTY_PROPERTIES;
  const reasonCodes: number[] = [];
  while (r.pos < r.end) {
    const c = r.u8("reason code");
    if (!v.codes.has(c)) fail(`SUBACK with reserved return code 0x${c.toString(16)}`);
    reasonCodes.push(c);
  }
  return { type: "suback", packetId, reasonCodes, properties };
}

export function subackLength(p: SubackPacket, version: ProtocolVersion): number {
  const v = layout[version];
  checkPacketId(p.packetId, "SUBACK");
  for (const c of p.reasonCodes) {
    if (!v.codes.has(c)) throw new RangeError(`SUBACK code 0x${c.toString(16)} is not valid in version ${version}`); // [MQTT-3.9.3-2]
  }
  let n = 2 + p.reasonCodes.length;
  if (v.properties) {
    const ps = propertiesSize(p.properties, "suback");
    n += varintSize(ps) + ps;
  }
  return n;
}

export function writeSuback(w: Writer, p: SubackPacket, version: ProtocolVersion): void {
  w.u16(p.packetId);
  if (layout[version].properties) writeProperties(w, p.properties, propertiesSize(p.properties, "suback"));
  for (const c of p.reasonCodes) w.u8(c);
}
