// Packet identifier 0 in the acknowledgements: PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK, UNSUBACK.
// Every packet that starts an exchange must carry a non-zero identifier (3.1.1 [MQTT-2.3.1-1],
// 5.0 [MQTT-2.2.1-3] [MQTT-2.2.1-4]) and each acknowledgement echoes the identifier of the packet
// it answers (3.1.1 [MQTT-2.3.1-6] [MQTT-2.3.1-7] [MQTT-4.3.3-2], 5.0 [MQTT-2.2.1-5]
// [MQTT-2.2.1-6]); so an acknowledgement with identifier 0 answers nothing that could have been
// sent: the decoder reports it as malformed (0x81), the encoder refuses it.
import { describe, expect, it } from "vitest";
import { encode, type Packet, type ProtocolVersion } from "../src/index.js";
import { expectError, expectPacket, frame, props } from "./helpers.js";

const MALFORMED = 0x81;

const ACKS = [
  ["puback", 0x40],
  ["pubrec", 0x50],
  ["pubrel", 0x62],
  ["pubcomp", 0x70],
] as const;

function rejectsId0(first: number, version: ProtocolVersion, name: string, ...rest: string[]): void {
  const e = expectError(frame(first, "0000", ...rest), version, MALFORMED);
  expect(e.message).toMatch(new RegExp(`^${name.toUpperCase()} with packet identifier 0`));
  // the same bytes with identifier 1 decode: it is the 0 that is refused
  expect(expectPacket(frame(first, "0001", ...rest), version)).toMatchObject({ type: name, packetId: 1 });
}

function encodeId0(p: Packet, version: ProtocolVersion): void {
  expect(() => encode(p, version)).toThrow(RangeError);
}

describe("MQTT 3.1.1", () => {
  it("[MQTT-2.3.1-1] [MQTT-2.3.1-6] [MQTT-4.3.3-2] PUBACK, PUBREC, PUBREL, PUBCOMP with packet identifier 0 are malformed (0x81)", () => {
    for (const [type, first] of ACKS) {
      rejectsId0(first, 4, type);
      encodeId0({ type, packetId: 0, reasonCode: 0, properties: {} }, 4);
    }
  });

  it("[MQTT-2.3.1-1] [MQTT-2.3.1-7] SUBACK and UNSUBACK with packet identifier 0 are malformed (0x81)", () => {
    rejectsId0(0x90, 4, "suback", "00");
    rejectsId0(0xb0, 4, "unsuback");
    encodeId0({ type: "suback", packetId: 0, reasonCodes: [0], properties: {} }, 4);
    encodeId0({ type: "unsuback", packetId: 0, reasonCodes: [], properties: {} }, 4);
  });
});

describe("MQTT 5.0", () => {
  it("[MQTT-2.2.1-3] [MQTT-2.2.1-4] [MQTT-2.2.1-5] PUBACK, PUBREC, PUBREL, PUBCOMP with packet identifier 0 are malformed (0x81), short or long form", () => {
    for (const [type, first] of ACKS) {
      rejectsId0(first, 5, type); // short form: identifier only (reason 0, no properties)
      rejectsId0(first, 5, type, "00", props("1f 0001 78")); // reason code and a reason string
      encodeId0({ type, packetId: 0, reasonCode: 0, properties: {} }, 5);
    }
  });

  it("[MQTT-2.2.1-3] [MQTT-2.2.1-6] SUBACK and UNSUBACK with packet identifier 0 are malformed (0x81)", () => {
    rejectsId0(0x90, 5, "suback", props(), "00");
    rejectsId0(0xb0, 5, "unsuback", props(), "00");
    encodeId0({ type: "suback", packetId: 0, reasonCodes: [0], properties: {} }, 5);
    encodeId0({ type: "unsuback", packetId: 0, reasonCodes: [0], properties: {} }, 5);
  });
});
