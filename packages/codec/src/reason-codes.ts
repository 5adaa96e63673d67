// The reason / return codes each packet kind may carry, per protocol version: the tables of MQTT
// 5.0 sections 3.2.2.2, 3.4.2.1, 3.5.2.1, 3.6.2.1, 3.7.2.1, 3.9.3, 3.11.3, 3.14.2.1 and 3.15.2.1,
// and of 3.1.1 sections 3.2.2.3 (CONNACK) and 3.9.3 (SUBACK).
//
// The spec states these as sender rules ([MQTT-3.4.2-1] "MUST use one of the PUBACK Reason Codes",
// ...); it names no receiver action. We treat a code outside the table as a Malformed Packet
// (0x81): 5.0 section 1.2 defines that as "a control packet that cannot be parsed according to this
// specification", and an unlisted code has no meaning to parse. HiveMQ does the same ("wrong reason
// code", Malformed Packet) and so does mqtt-packet for the acks, DISCONNECT and AUTH; Mosquitto
// answers Protocol Error (0x82) for PUBACK / PUBCOMP. Encoding an unlisted code is the caller's bug
// and throws a RangeError.
import type { PacketType, ProtocolVersion } from "./packets.js";
import { fail } from "./primitives.js";

/** The codes one packet kind may carry in one version. */
export type CodeTable = ReadonlySet<number>;

const table = (...codes: number[]): CodeTable => new Set(codes);

/** 3.1.1 section 3.2.2.3 (and MQTT 3.1): 0 accepted, 1-5 refused; 6-255 are reserved. */
const CONNACK_3 = table(0x00, 0x01, 0x02, 0x03, 0x04, 0x05);
/** 5.0 section 3.2.2.2, [MQTT-3.2.2-8]. */
const CONNACK_5 = table(0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x8c, 0x90, 0x95, 0x97, 0x99, 0x9a, 0x9b, 0x9c, 0x9d, 0x9f);
/** 5.0 sections 3.4.2.1 and 3.5.2.1 (the same table), [MQTT-3.4.2-1] [MQTT-3.5.2-1]. */
const PUBACK_PUBREC_5 = table(0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99);
/** 5.0 sections 3.6.2.1 and 3.7.2.1, [MQTT-3.6.2-1] [MQTT-3.7.2-1]. */
const PUBREL_PUBCOMP_5 = table(0x00, 0x92);
/** 3.1.1 section 3.9.3: granted QoS 0-2 or 0x80 failure, others reserved [MQTT-3.9.3-2]. */
const SUBACK_3 = table(0x00, 0x01, 0x02, 0x80);
/** 5.0 section 3.9.3, [MQTT-3.9.3-2]. */
const SUBACK_5 = table(0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8f, 0x91, 0x97, 0x9e, 0xa1, 0xa2);
/** 5.0 section 3.11.3, [MQTT-3.11.3-2]. */
const UNSUBACK_5 = table(0x00, 0x11, 0x80, 0x83, 0x87, 0x8f, 0x91);
/** 5.0 section 3.14.2.1, [MQTT-3.14.2-1]. */
const DISCONNECT_5 = table(
  0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8b, 0x8d, 0x8e, 0x8f, 0x90, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a,
  0x9b, 0x9c, 0x9d, 0x9e, 0x9f, 0xa0, 0xa1, 0xa2,
);
/** 5.0 section 3.15.2.1, [MQTT-3.15.2-1]. */
const AUTH_5 = table(0x00, 0x18, 0x19);

export type CodedType = Extract<PacketType, "connack" | "puback" | "pubrec" | "pubrel" | "pubcomp" | "suback" | "unsuback" | "disconnect" | "auth">;

/**
 * One row per packet kind that carries codes, one column per version; `undefined` where the
 * version has no such field on the wire (3.x acks, UNSUBACK, DISCONNECT; AUTH before 5.0).
 */
export const REASON_CODES: Readonly<Record<CodedType, Readonly<Record<ProtocolVersion, CodeTable | undefined>>>> = {
  connack: { 3: CONNACK_3, 4: CONNACK_3, 5: CONNACK_5 },
  puback: { 3: undefined, 4: undefined, 5: PUBACK_PUBREC_5 },
  pubrec: { 3: undefined, 4: undefined, 5: PUBACK_PUBREC_5 },
  pubrel: { 3: undefined, 4: undefined, 5: PUBREL_PUBCOMP_5 },
  pubcomp: { 3: undefined, 4: undefined, 5: PUBREL_PUBCOMP_5 },
  suback: { 3: SUBACK_3, 4: SUBACK_3, 5: SUBACK_5 },
  unsuback: { 3: undefined, 4: undefined, 5: UNSUBACK_5 },
  disconnect: { 3: undefined, 4: undefined, 5: DISCONNECT_5 },
  auth: { 3: undefined, 4: undefined, 5: AUTH_5 },
};

/**
 * Whether `code` may be sent in a packet of `type` in `version` (true where the version carries no
 * code for that kind). For callers that take codes from outside, e.g. an auth hook's verdict that
 * becomes a CONNACK reason code: encoding an invalid one throws.
 */
export function isValidReasonCode(type: CodedType, version: ProtocolVersion, code: number): boolean {
  const t = REASON_CODES[type][version];
  return t === undefined || t.has(code);
}

const hex = (c: number): string => `0x${c.toString(16).padStart(2, "0")}`;

/** Decoding: a code outside the packet's table is malformed (see the module comment). */
export function checkReceivedCode(type: CodedType, version: ProtocolVersion, code: number): void {
  const t = REASON_CODES[type][version];
  if (t !== undefined && !t.has(code)) fail(`${type.toUpperCase()} with reason code ${hex(code)}, not in its table for version ${version}`);
}

/** Encoding: a code outside the packet's table is the caller's bug. */
export function checkSentCode(type: CodedType, version: ProtocolVersion, code: number): void {
  const t = REASON_CODES[type][version];
  if (t !== undefined && !t.has(code)) {
    throw new RangeError(`${type} reason code ${typeof code === "number" ? hex(code) : String(code)} is not valid in version ${version}`);
  }
}
