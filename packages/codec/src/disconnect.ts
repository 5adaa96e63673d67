// DISCONNECT (3.1.1 section 3.14, 5.0 section 3.14) and AUTH (5.0 section 3.15): an optional
// reason code and optional properties in 5.0 (remaining length 0 means reason 0x00); nothing in 3.x.
import type { AuthPacket, DisconnectPacket, Properties, ProtocolVersion } from "./packets.js";
import { EMPTY_PROPERTIES, type Reader, type Writer, fail, varintSize } from "./primitives.js";
import { propertiesSize, readProperties, writeProperties } from "./properties.js";
import { checkReceivedCode, checkSentCode } from "./reason-codes.js";

const layout: Record<ProtocolVersion, { readonly reasonAndProperties: boolean }> = {
  3: { reasonAndProperties: false },
  4: { reasonAndProperties: false },
  5: { reasonAndProperties: true },
};

type ReasonPacket = DisconnectPacket | AuthPacket;

function parseReason(r: Reader, type: "disconnect" | "auth", version: ProtocolVersion): { reasonCode: number; properties: Properties } {
  let reasonCode = 0;
  let properties: Properties = EMPTY_PROPERTIES;
  if (layout[version].reasonAndProperties && r.pos < r.end) {
    reasonCode = r.u8("reason code");
    checkReceivedCode(type, version, reasonCode); // [MQTT-3.14.2-1] [MQTT-3.15.2-1]
    if (r.pos < r.end) properties = readProperties(r, type);
  }
  r.done(type.toUpperCase());
  return { reasonCode, properties };
}

export function parseDisconnect(r: Reader, version: ProtocolVersion): DisconnectPacket {
  const { reasonCode, properties } = parseReason(r, "disconnect", version);
  return { type: "disconnect", reasonCode, properties };
}

export function parseAuth(r: Reader, version: ProtocolVersion): AuthPacket {
  if (version !== 5) fail("AUTH packet in MQTT 3.x"); // type 15 is reserved before 5.0
  const { reasonCode, properties } = parseReason(r, "auth", version);
  return { type: "auth", reasonCode, properties };
}

export function reasonLength(p: ReasonPacket, version: ProtocolVersion): number {
  if (p.type === "auth" && version !== 5) throw new TypeError("AUTH exists only in MQTT 5.0");
  if (!layout[version].reasonAndProperties) return 0;
  checkSentCode(p.type, version, p.reasonCode);
  const ps = propertiesSize(p.properties, p.type);
  if (ps === 0) return p.reasonCode === 0 ? 0 : 1;
  return 1 + varintSize(ps) + ps;
}

export function writeReason(w: Writer, p: ReasonPacket, version: ProtocolVersion): void {
  if (!layout[version].reasonAndProperties) return;
  const ps = propertiesSize(p.properties, p.type);
  if (ps === 0 && p.reasonCode === 0) return;
  w.u8(p.reasonCode);
  if (ps !== 0) writeProperties(w, p.properties, ps);
}
