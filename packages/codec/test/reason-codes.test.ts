// Reason / return code tables: for every packet kind that carries codes, all 256 byte values are
// tried on both sides. A code in the packet's table decodes and encodes; any other is malformed
// when received (0x81) and a RangeError when sent.
import { describe, expect, it } from "vitest";
import { encode, isValidReasonCode, type Packet, type ProtocolVersion } from "../src/index.js";
import { REASON_CODES } from "../src/reason-codes.js";
import { expectError, expectPacket, hex } from "./helpers.js";

const MALFORMED = 0x81;
const h2 = (c: number): string => c.toString(16).padStart(2, "0");

interface Kind {
  /** Bytes of a packet of this kind carrying `code`. */
  bytes(code: number): Uint8Array;
  /** The same packet in the codec's model. */
  packet(code: number): Packet;
}

const props = {};
const kinds5 = {
  connack: { bytes: (c) => hex(`2003 00 ${h2(c)} 00`), packet: (c) => ({ type: "connack", sessionPresent: false, reasonCode: c, properties: props }) },
  puback: { bytes: (c) => hex(`4003 0001 ${h2(c)}`), packet: (c) => ({ type: "puback", packetId: 1, reasonCode: c, properties: props }) },
  pubrec: { bytes: (c) => hex(`5003 0001 ${h2(c)}`), packet: (c) => ({ type: "pubrec", packetId: 1, reasonCode: c, properties: props }) },
  pubrel: { bytes: (c) => hex(`6203 0001 ${h2(c)}`), packet: (c) => ({ type: "pubrel", packetId: 1, reasonCode: c, properties: props }) },
  pubcomp: { bytes: (c) => hex(`7003 0001 ${h2(c)}`), packet: (c) => ({ type: "pubcomp", packetId: 1, reasonCode: c, properties: props }) },
  suback: { bytes: (c) => hex(`9004 0001 00 ${h2(c)}`), packet: (c) => ({ type: "suback", packetId: 1, reasonCodes: [c], properties: props }) },
  unsuback: { bytes: (c) => hex(`b004 0001 00 ${h2(c)}`), packet: (c) => ({ type: "unsuback", packetId: 1, reasonCodes: [c], properties: props }) },
  disconnect: { bytes: (c) => hex(`e002 ${h2(c)} 00`), packet: (c) => ({ type: "disconnect", reasonCode: c, properties: props }) },
  auth: { bytes: (c) => hex(`f002 ${h2(c)} 00`), packet: (c) => ({ type: "auth", reasonCode: c, properties: props }) },
} satisfies Record<keyof typeof REASON_CODES, Kind>;

/** Expected table, written out again from the spec (not read back from the source under test). */
const spec5: Record<keyof typeof kinds5, number[]> = {
  connack: [0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x8c, 0x90, 0x95, 0x97, 0x99, 0x9a, 0x9b, 0x9c, 0x9d, 0x9f],
  puback: [0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99],
  pubrec: [0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99],
  pubrel: [0x00, 0x92],
  pubcomp: [0x00, 0x92],
  suback: [0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8f, 0x91, 0x97, 0x9e, 0xa1, 0xa2],
  unsuback: [0x00, 0x11, 0x80, 0x83, 0x87, 0x8f, 0x91],
  disconnect: [
    0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8b, 0x8d, 0x8e, 0x8f, 0x90, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a,
    0x9b, 0x9c, 0x9d, 0x9e, 0x9f, 0xa0, 0xa1, 0xa2,
  ],
  auth: [0x00, 0x18, 0x19],
};

/** Tries all 256 codes: the listed ones round-trip, the others are refused on both sides. */
function checkTable(kind: Kind, version: ProtocolVersion, allowed: readonly number[]): void {
  const ok = new Set(allowed);
  for (let c = 0; c < 256; c++) {
    if (ok.has(c)) {
      expect(expectPacket(kind.bytes(c), version), `code 0x${h2(c)}`).toEqual(kind.packet(c));
      expect(() => encode(kind.packet(c), version), `code 0x${h2(c)}`).not.toThrow();
    } else {
      expect(expectError(kind.bytes(c), version, MALFORMED).message, `code 0x${h2(c)}`).toMatch(/reason code/);
      expect(() => encode(kind.packet(c), version), `code 0x${h2(c)}`).toThrow(RangeError);
    }
  }
}

describe("MQTT 5.0", () => {
  it("[MQTT-3.2.2-8] CONNACK: the codes of the Connect Reason Code table (3.2.2.2) and no others", () => {
    checkTable(kinds5.connack, 5, spec5.connack);
  });

  it("[MQTT-3.4.2-1] PUBACK: the codes of the PUBACK table (3.4.2.1) and no others", () => {
    checkTable(kinds5.puback, 5, spec5.puback);
  });

  it("[MQTT-3.5.2-1] PUBREC: the codes of the PUBREC table (3.5.2.1) and no others; 0x92 belongs to PUBREL / PUBCOMP", () => {
    checkTable(kinds5.pubrec, 5, spec5.pubrec);
    expectError(hex("5003 0001 92"), 5, MALFORMED);
  });

  it("[MQTT-3.6.2-1] PUBREL: only 0x00 and 0x92 (3.6.2.1)", () => {
    checkTable(kinds5.pubrel, 5, spec5.pubrel);
  });

  it("[MQTT-3.7.2-1] PUBCOMP: only 0x00 and 0x92 (3.7.2.1)", () => {
    checkTable(kinds5.pubcomp, 5, spec5.pubcomp);
  });

  it("[MQTT-3.9.3-2] SUBACK: the codes of the Subscribe Reason Code table (3.9.3) and no others, in any position", () => {
    checkTable(kinds5.suback, 5, spec5.suback);
    expectError(hex("9006 0001 00 00 01 11"), 5, MALFORMED);
  });

  it("[MQTT-3.11.3-2] UNSUBACK: the codes of the Unsubscribe Reason Code table (3.11.3) and no others, in any position", () => {
    checkTable(kinds5.unsuback, 5, spec5.unsuback);
    expectError(hex("b006 0001 00 00 11 10"), 5, MALFORMED);
  });

  it("[MQTT-3.14.2-1] DISCONNECT: the codes of the Disconnect Reason Code table (3.14.2.1) and no others", () => {
    checkTable(kinds5.disconnect, 5, spec5.disconnect);
    // also in the short form without a property length
    expectError(hex("e001 84"), 5, MALFORMED);
  });

  it("[MQTT-3.15.2-1] AUTH: only 0x00, 0x18 and 0x19 (3.15.2.1)", () => {
    checkTable(kinds5.auth, 5, spec5.auth);
  });

  it("[MQTT-3.4.2-1] [MQTT-3.5.2-1] [MQTT-3.6.2-1] [MQTT-3.7.2-1] [MQTT-3.14.2-1] [MQTT-3.15.2-1] an omitted reason code still means 0x00", () => {
    expect(expectPacket(hex("5002 0001"), 5)).toEqual({ type: "pubrec", packetId: 1, reasonCode: 0, properties: {} });
    expect(expectPacket(hex("e000"), 5)).toEqual({ type: "disconnect", reasonCode: 0, properties: {} });
    expect(expectPacket(hex("f000"), 5)).toEqual({ type: "auth", reasonCode: 0, properties: {} });
  });

  it("[MQTT-3.2.2-6] a CONNACK with a non-zero reason code and Session Present 1 is malformed; encoding it throws", () => {
    expect(expectPacket(hex("2003 01 00 00"), 5)).toMatchObject({ sessionPresent: true, reasonCode: 0 });
    expectError(hex("2003 01 87 00"), 5, MALFORMED);
    expect(() => encode({ type: "connack", sessionPresent: true, reasonCode: 0x87, properties: {} }, 5)).toThrow(TypeError);
  });

  it("[MQTT-3.2.2-8] isValidReasonCode answers from the same tables (an auth hook's code can be checked before it becomes a CONNACK)", () => {
    for (const [type, codes] of Object.entries(spec5)) {
      for (let c = 0; c < 256; c++) expect(isValidReasonCode(type as keyof typeof spec5, 5, c), `${type} 0x${h2(c)}`).toBe(codes.includes(c));
    }
    expect(isValidReasonCode("connack", 4, 5)).toBe(true);
    expect(isValidReasonCode("connack", 4, 0x86)).toBe(false);
    expect(isValidReasonCode("puback", 4, 0x92)).toBe(true); // 3.x PUBACK carries no code: nothing to refuse
  });

  it("the codec's tables are the spec's", () => {
    for (const [type, codes] of Object.entries(spec5)) {
      expect([...REASON_CODES[type as keyof typeof spec5][5]!].sort((a, b) => a - b), type).toEqual(codes);
    }
  });
});

describe("MQTT 3.1.1", () => {
  const connack3: Kind = {
    bytes: (c) => hex(`2002 00 ${h2(c)}`),
    packet: (c) => ({ type: "connack", sessionPresent: false, reasonCode: c, properties: {} }),
  };

  it("[MQTT-3.2.2-6] CONNACK: return codes 0-5 (3.2.2.3), 6-255 are reserved and malformed, in 3.1.1 and 3.1", () => {
    checkTable(connack3, 4, [0, 1, 2, 3, 4, 5]);
    checkTable(connack3, 3, [0, 1, 2, 3, 4, 5]);
  });

  it("[MQTT-3.2.2-4] a CONNACK with a non-zero return code and Session Present 1 is malformed; encoding it throws", () => {
    expectError(hex("2002 01 05"), 4, MALFORMED);
    expect(() => encode({ type: "connack", sessionPresent: true, reasonCode: 5, properties: {} }, 4)).toThrow(TypeError);
    // MQTT 3.1 has no session present flag: the bit is not read and never written
    expect(expectPacket(hex("2002 01 05"), 3)).toMatchObject({ sessionPresent: false, reasonCode: 5 });
  });

  it("[MQTT-3.9.3-2] SUBACK: only 0x00, 0x01, 0x02 and 0x80 (3.9.3), in 3.1.1 and 3.1", () => {
    const suback: Kind = {
      bytes: (c) => hex(`9003 0001 ${h2(c)}`),
      packet: (c) => ({ type: "suback", packetId: 1, reasonCodes: [c], properties: {} }),
    };
    checkTable(suback, 4, [0x00, 0x01, 0x02, 0x80]);
    checkTable(suback, 3, [0x00, 0x01, 0x02, 0x80]);
  });

  it("acks, UNSUBACK and DISCONNECT carry no code in 3.x: a model reason code is not written", () => {
    expect([...encode({ type: "puback", packetId: 1, reasonCode: 0, properties: {} }, 4)]).toEqual([0x40, 0x02, 0x00, 0x01]);
    expect([...encode({ type: "unsuback", packetId: 1, reasonCodes: [], properties: {} }, 4)]).toEqual([0xb0, 0x02, 0x00, 0x01]);
  });
});
