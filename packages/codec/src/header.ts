// Fixed header (3.1.1 section 2.2, 5.0 section 2.1): packet type numbers and the flag bits each
// type must carry ([MQTT-2.2.2-1], 5.0 [MQTT-2.1.3-1]).
import type { PacketType, ProtocolVersion } from "./packets.js";

export const TYPE_CODE = {
  connect: 1,
  connack: 2,
  publish: 3,
  puback: 4,
  pubrec: 5,
  pubrel: 6,
  pubcomp: 7,
  subscribe: 8,
  suback: 9,
  unsubscribe: 10,
  unsuback: 11,
  pingreq: 12,
  pingresp: 13,
  disconnect: 14,
  auth: 15,
} as const satisfies Record<PacketType, number>;

/** Fixed flags per type code; PUBLISH (3) carries DUP/QoS/RETAIN instead (-1). Index 0 is reserved. */
const FLAGS: readonly number[] = [-2, 0, 0, -1, 0, 0, 2, 0, 2, 0, 2, 0, 0, 0, 0, 0];

/**
 * Whether `flags` are valid for the type in the version. PUBREL, SUBSCRIBE and UNSUBSCRIBE must be
 * 0010 ([MQTT-3.6.1-1] [MQTT-3.8.1-1] [MQTT-3.10.1-1]), everything else 0000 ([MQTT-3.14.1-1],
 * 5.0 [MQTT-3.15.1-1]). MQTT 3.1 (level 3) sent those three with QoS 1 and could set DUP on a
 * resend, so level 3 also accepts 1010 there.
 */
export function validFlags(type: number, flags: number, version: ProtocolVersion): boolean {
  const f = FLAGS[type]!;
  if (f === -1) return true;
  if (flags === f) return true;
  return version === 3 && f === 2 && flags === 0x0a;
}

/** First byte of the fixed header for a non-PUBLISH packet. */
export function fixedByte(type: PacketType): number {
  const code = TYPE_CODE[type];
  return (code << 4) | FLAGS[code]!;
}
