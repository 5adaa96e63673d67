// MQTT 5 properties (section 2.2.2): identifiers, where each may appear, repetition, value ranges.
import { describe, expect, it } from "vitest";
import { encode, type Properties } from "../src/index.js";
import { expectError, expectPacket, frame, props, str } from "./helpers.js";

const MALFORMED = 0x81;
const PROTOCOL_ERROR = 0x82;
const disconnectWith = (p: string) => frame(0xe0, "00", props(p));
const publishWith = (p: string) => frame(0x30, str("a"), props(p));
const disconnect = (properties: Properties) => encode({ type: "disconnect", reasonCode: 0, properties }, 5);

describe("MQTT 5.0", () => {
  it("an unknown property identifier is malformed", () => {
    for (const id of ["00", "04", "0a", "14", "2b", "7f"]) {
      expect(expectError(disconnectWith(`${id} 00`), 5, MALFORMED).message).toMatch(/unknown property/);
    }
    // identifiers are variable byte integers: 0x80 0x01 = 128, unknown
    expectError(disconnectWith("8001 00"), 5, MALFORMED);
  });

  it("a property not allowed in the packet is malformed", () => {
    expect(expectError(disconnectWith("23 0001"), 5, MALFORMED).message).toMatch(/topicAlias .* not allowed in disconnect/);
    expectError(publishWith("11 00000001"), 5, MALFORMED); // session expiry in PUBLISH
    expectError(frame(0x82, "0001", props("23 0001"), str("a"), "00"), 5, MALFORMED); // topic alias in SUBSCRIBE
    // will delay interval belongs to the will properties, not the CONNECT properties
    expectError(frame(0x10, str("MQTT"), "05 02 003c", props("18 00000001"), str("c")), undefined, MALFORMED);
    expect(() => disconnect({ topicAlias: 1 })).toThrow(TypeError);
    expect(() => disconnect({ nonsense: 1 } as Properties)).toThrow(TypeError);
  });

  it("a single-valued property given twice is a protocol error", () => {
    expect(expectError(publishWith("03 0001 61 03 0001 62"), 5, PROTOCOL_ERROR).message).toMatch(/more than once/);
    expectError(disconnectWith("11 00000001 11 00000002"), 5, PROTOCOL_ERROR);
    expectError(publishWith("23 0001 23 0001"), 5, PROTOCOL_ERROR);
  });

  it("user properties repeat and keep their order; PUBLISH repeats subscription identifiers", () => {
    expect(expectPacket(disconnectWith("26 0001 62 0001 31  26 0001 61 0001 32  26 0001 62 0001 33"), 5)).toMatchObject({
      properties: { userProperties: [["b", "1"], ["a", "2"], ["b", "3"]] },
    });
    expect(expectPacket(publishWith("0b 01 0b 02 0b 01"), 5)).toMatchObject({ properties: { subscriptionIdentifiers: [1, 2, 1] } });
  });

  it("values out of their range are protocol errors", () => {
    expectError(frame(0x20, "0000", props("21 0000")), 5, PROTOCOL_ERROR); // receive maximum 0
    expectError(frame(0x20, "0000", props("27 00000000")), 5, PROTOCOL_ERROR); // maximum packet size 0
    expectError(frame(0x20, "0000", props("24 02")), 5, PROTOCOL_ERROR); // maximum QoS 2
    expectError(frame(0x20, "0000", props("25 02")), 5, PROTOCOL_ERROR); // retain available 2
    expectError(publishWith("0b 00"), 5, PROTOCOL_ERROR); // subscription identifier 0
    expectError(frame(0x10, str("MQTT"), "05 02 003c", props("17 02"), str("c")), undefined, PROTOCOL_ERROR); // request problem information 2
    expect(() => disconnect({ sessionExpiryInterval: 2 ** 32 })).toThrow(RangeError);
    expect(() => disconnect({ sessionExpiryInterval: -1 })).toThrow(RangeError);
    expect(() => encode({ type: "connack", sessionPresent: false, reasonCode: 0, properties: { maximumQoS: 2 } }, 5)).toThrow(RangeError);
  });

  it("CONNECT authentication data without an authentication method is a protocol error (section 3.1.2.11.10)", () => {
    expectError(frame(0x10, str("MQTT"), "05 02 003c", props("16 0001 ff"), str("c")), undefined, PROTOCOL_ERROR);
    expect(expectPacket(frame(0x10, str("MQTT"), "05 02 003c", props("15 0001 6d 16 0001 ff"), str("c")))).toMatchObject({
      properties: { authenticationMethod: "m", authenticationData: Uint8Array.of(0xff) },
    });
    const connect = { type: "connect", protocolName: "MQTT", protocolVersion: 5, clean: true, keepAlive: 0, clientId: "", will: undefined, username: undefined, password: undefined } as const;
    expect(() => encode({ ...connect, properties: { authenticationData: Uint8Array.of(1) } }, 5)).toThrow(TypeError);
  });

  it("a truncated property value is malformed", () => {
    expectError(disconnectWith("11 0000"), 5, MALFORMED);
    expectError(disconnectWith("1f 0005 6162"), 5, MALFORMED);
    expectError(disconnectWith("1f"), 5, MALFORMED);
  });

  it("four byte integers cover the full unsigned range", () => {
    expect(expectPacket(disconnectWith("11 ffffffff"), 5)).toMatchObject({ properties: { sessionExpiryInterval: 0xffffffff } });
    expect(Buffer.from(disconnect({ sessionExpiryInterval: 0xffffffff })).toString("hex")).toBe("e0070005" + "11ffffffff");
  });

  it("3.x packets carry no properties: the encoder ignores them", () => {
    expect(Buffer.from(encode({ type: "puback", packetId: 1, reasonCode: 0x10, properties: { reasonString: "x" } }, 4)).toString("hex")).toBe("40020001");
  });
});
