// CONNECT and CONNACK: protocol name / level (and version learning), the flags byte, the payload
// fields and their order, will rules, user name / password rules, CONNACK acknowledge flags.
import { describe, expect, it } from "vitest";
import { Decoder, encode, type ConnectPacket, type DecodeError } from "../src/index.js";
import { connectHeader, expectError, expectPacket, frame, hex, props, rawStr, str } from "./helpers.js";

const MALFORMED = 0x81;
const UNSUPPORTED = 0x84;

const base = (version: 3 | 4 | 5): ConnectPacket => ({
  type: "connect",
  protocolName: version === 3 ? "MQIsdp" : "MQTT",
  protocolVersion: version,
  clean: true,
  keepAlive: 60,
  clientId: "c",
  will: undefined,
  username: undefined,
  password: undefined,
  properties: {},
});

const hexOf = (b: Uint8Array): string => Buffer.from(b).toString("hex");

/** Decodes with an unversioned (broker side) decoder. */
function serverDecode(bytes: Uint8Array): { result: ReturnType<Decoder["next"]>; version: Decoder["version"] } {
  const d = new Decoder();
  d.push(bytes);
  const result = d.next();
  return { result, version: d.version };
}

describe("MQTT 3.1.1", () => {
  it("decodes a minimal CONNECT byte for byte and learns version 4", () => {
    const bytes = hex("10 0d 0004 4d515454 04 02 003c 0001 63");
    const { result, version } = serverDecode(bytes);
    expect(result).toEqual(base(4));
    expect(version).toBe(4);
    expect(hexOf(encode(base(4), 4))).toBe(hexOf(bytes));
  });

  it("an unknown protocol level or name is DecodeError 0x84 (the core answers CONNACK 0x01 / 0x84) with the level in the message", () => {
    const level6 = serverDecode(frame(0x10, connectHeader(6, 2, "MQTT"), str("c")));
    expect(level6.result).toMatchObject({ type: "error", code: UNSUPPORTED });
    expect((level6.result as DecodeError).message).toMatch(/level 6/);
    expect((level6.result as DecodeError).protocolLevel).toBe(6);
    expect(serverDecode(frame(0x10, connectHeader(2, 2, "MQTT"), str("c"))).result).toMatchObject({ code: UNSUPPORTED, protocolLevel: 2 });
    expect(level6.version).toBeUndefined();
    // a 3.1.1 name with the 3.1 level, and a wrong name
    expect(serverDecode(frame(0x10, connectHeader(3, 2, "MQTT"), str("c"))).result).toMatchObject({ code: UNSUPPORTED });
    expect(serverDecode(frame(0x10, connectHeader(4, 2, "MQIsdp"), str("c"))).result).toMatchObject({ code: UNSUPPORTED });
    expect(serverDecode(frame(0x10, connectHeader(4, 2, "HTTP"), str("c"))).result).toMatchObject({ code: UNSUPPORTED });
    // truncated before the level: malformed, not unsupported
    expect(serverDecode(frame(0x10, str("MQTT"))).result).toMatchObject({ code: MALFORMED });
  });

  it("decodes MQTT 3.1 (MQIsdp, level 3) and encodes it back", () => {
    const p = { ...base(3), clientId: "abc", username: "u", password: hex("7071") };
    const bytes = encode(p, 3);
    expect(hexOf(bytes)).toBe(hexOf(frame(0x10, connectHeader(3, 0xc2), str("abc"), str("u"), "0002 7071")));
    expect(serverDecode(bytes)).toEqual({ result: p, version: 3 });
  });

  it("[MQTT-3.1.2-3] the reserved connect flag must be 0", () => {
    expect(expectError(frame(0x10, connectHeader(4, 0x03), str("c")), undefined, MALFORMED).message).toMatch(/reserved/);
  });

  it("[MQTT-3.1.2-9] the will flag requires will topic and will message in the payload", () => {
    const withWill = frame(0x10, connectHeader(4, 0x0e), str("c"), str("w/t"), "0002 6869");
    expect(expectPacket(withWill)).toMatchObject({
      will: { topic: "w/t", payload: hex("6869"), qos: 1, retain: false, properties: {} },
    });
    // will flag set but payload stops after the client id / after the will topic
    expectError(frame(0x10, connectHeader(4, 0x04), str("c")), undefined, MALFORMED);
    expectError(frame(0x10, connectHeader(4, 0x04), str("c"), str("w")), undefined, MALFORMED);
  });

  it("[MQTT-3.1.2-11] [MQTT-3.1.2-13] [MQTT-3.1.2-15] without the will flag, will QoS and will retain must be 0", () => {
    expectError(frame(0x10, connectHeader(4, 0x0a), str("c")), undefined, MALFORMED); // QoS 1
    expectError(frame(0x10, connectHeader(4, 0x12), str("c")), undefined, MALFORMED); // QoS 2
    expectError(frame(0x10, connectHeader(4, 0x22), str("c")), undefined, MALFORMED); // retain
    const plain = expectPacket(frame(0x10, connectHeader(4, 0x02), str("c")));
    expect(plain.type).toBe("connect");
    expect((plain as ConnectPacket).will).toBeUndefined();
  });

  it("[MQTT-3.1.2-14] will QoS 3 is malformed; 0, 1, 2 decode", () => {
    for (const q of [0, 1, 2]) {
      const p = expectPacket(frame(0x10, connectHeader(4, 0x04 | (q << 3) | 0x20), str("c"), str("w"), "0000")) as ConnectPacket;
      expect(p.will).toMatchObject({ qos: q, retain: true });
    }
    expect(expectError(frame(0x10, connectHeader(4, 0x1c), str("c"), str("w"), "0000"), undefined, MALFORMED).message).toMatch(/QoS 3/);
  });

  it("[MQTT-3.1.2-18] [MQTT-3.1.2-19] [MQTT-3.1.2-20] [MQTT-3.1.2-21] the user name / password flags say exactly which fields follow", () => {
    expect(expectPacket(frame(0x10, connectHeader(4, 0xc2), str("c"), str("u"), "0001 70"))).toMatchObject({ username: "u", password: hex("70") });
    expect(expectPacket(frame(0x10, connectHeader(4, 0x82), str("c"), str("u")))).toMatchObject({ username: "u", password: undefined });
    // flag set, field missing
    expectError(frame(0x10, connectHeader(4, 0x82), str("c")), undefined, MALFORMED);
    expectError(frame(0x10, connectHeader(4, 0xc2), str("c"), str("u")), undefined, MALFORMED);
    // flag clear, field present: trailing bytes
    expectError(frame(0x10, connectHeader(4, 0x02), str("c"), str("u")), undefined, MALFORMED);
    // the encoder sets the flags from the fields
    expect(hexOf(encode({ ...base(4), username: "u" }, 4))).toBe(hexOf(frame(0x10, connectHeader(4, 0x82), str("c"), str("u"))));
  });

  it("[MQTT-3.1.2-22] a password without a user name is malformed and cannot be encoded", () => {
    expect(expectError(frame(0x10, connectHeader(4, 0x42), str("c"), "0001 70"), undefined, MALFORMED).message).toMatch(/password/);
    expect(() => encode({ ...base(4), password: hex("70") }, 4)).toThrow(TypeError);
  });

  it("[MQTT-3.1.3-1] [MQTT-3.1.3-3] payload order is client id, will topic, will message, user name, password", () => {
    const p: ConnectPacket = {
      ...base(4),
      clientId: "id",
      will: { topic: "wt", payload: hex("aa"), qos: 2, retain: true, properties: {} },
      username: "un",
      password: hex("bb"),
    };
    const expected = frame(0x10, connectHeader(4, 0x02 | 0x04 | 0x10 | 0x20 | 0x80 | 0x40), str("id"), str("wt"), "0001 aa", str("un"), "0001 bb");
    expect(hexOf(encode(p, 4))).toBe(hexOf(expected));
    expect(expectPacket(expected)).toEqual(p);
    // the client id is always present, even when empty
    expect(expectPacket(frame(0x10, connectHeader(4, 0x02), str("")))).toMatchObject({ clientId: "" });
    expectError(frame(0x10, connectHeader(4, 0x02)), undefined, MALFORMED);
  });

  it("[MQTT-3.1.3-4] the client id must be valid UTF-8", () => {
    expectError(frame(0x10, connectHeader(4, 0x02), rawStr("c0af")), undefined, MALFORMED);
    expectError(frame(0x10, connectHeader(4, 0x02), rawStr("6100")), undefined, MALFORMED);
  });

  it("[MQTT-3.1.3-10] the will topic must be valid UTF-8 (and a valid topic name)", () => {
    expectError(frame(0x10, connectHeader(4, 0x06), str("c"), rawStr("eda080"), "0000"), undefined, MALFORMED);
    expectError(frame(0x10, connectHeader(4, 0x06), str("c"), str("a/#"), "0000"), undefined, MALFORMED);
    expectError(frame(0x10, connectHeader(4, 0x06), str("c"), str(""), "0000"), undefined, MALFORMED);
  });

  it("[MQTT-3.1.3-11] the user name must be valid UTF-8", () => {
    expectError(frame(0x10, connectHeader(4, 0x82), str("c"), rawStr("ff")), undefined, MALFORMED);
  });

  it("CONNACK: return code and session present decode; reserved acknowledge flags are malformed", () => {
    expect(expectPacket(hex("2002 0100"), 4)).toEqual({ type: "connack", sessionPresent: true, reasonCode: 0, properties: {} });
    expect(expectPacket(hex("2002 0005"), 4)).toEqual({ type: "connack", sessionPresent: false, reasonCode: 5, properties: {} });
    expectError(hex("2002 0200"), 4, MALFORMED);
    // MQTT 3.1 has no session present flag: the byte is unused
    expect(expectPacket(hex("2002 0000"), 3)).toMatchObject({ sessionPresent: false });
  });
});

describe("MQTT 5.0", () => {
  const h5 = (flags: number) => connectHeader(5, flags);

  it("decodes a CONNECT with properties and learns version 5", () => {
    // session expiry 0x11 = 10, receive maximum 0x21 = 20
    const bytes = frame(0x10, h5(0x02), props("11 0000000a 21 0014"), str("c"));
    const { result, version } = serverDecode(bytes);
    expect(result).toEqual({ ...base(5), properties: { sessionExpiryInterval: 10, receiveMaximum: 20 } });
    expect(version).toBe(5);
    expect(hexOf(encode(result as ConnectPacket, 5))).toBe(hexOf(bytes));
  });

  it("[MQTT-3.1.2-3] a non-zero reserved connect flag makes the packet malformed", () => {
    expectError(frame(0x10, h5(0x01), props(), str("c")), undefined, MALFORMED);
  });

  it("the version is learned from the protocol level even when the rest of the CONNECT is malformed", () => {
    const { result, version } = serverDecode(frame(0x10, h5(0x01), props(), str("c")));
    expect(result).toMatchObject({ type: "error", code: MALFORMED });
    expect(version).toBe(5);
  });

  it("[MQTT-3.1.2-9] [MQTT-3.1.3-1] the will flag requires will properties, will topic and will payload, in that order", () => {
    const bytes = frame(0x10, h5(0x06), props(), str("c"), props("18 00000005"), str("w"), "0001 ff");
    expect(expectPacket(bytes)).toMatchObject({
      will: { topic: "w", payload: hex("ff"), qos: 0, retain: false, properties: { willDelayInterval: 5 } },
    });
    expectError(frame(0x10, h5(0x06), props(), str("c"), str("w"), "0001 ff"), undefined, MALFORMED);
    expectError(frame(0x10, h5(0x06), props(), str("c"), props()), undefined, MALFORMED);
  });

  it("[MQTT-3.1.2-11] [MQTT-3.1.2-13] without the will flag, will QoS and will retain must be 0", () => {
    expectError(frame(0x10, h5(0x0a), props(), str("c")), undefined, MALFORMED);
    expectError(frame(0x10, h5(0x22), props(), str("c")), undefined, MALFORMED);
  });

  it("[MQTT-3.1.2-12] will QoS 3 is malformed", () => {
    expectError(frame(0x10, h5(0x1e), props(), str("c"), props(), str("w"), "0000"), undefined, MALFORMED);
    expectPacket(frame(0x10, h5(0x16), props(), str("c"), props(), str("w"), "0000"));
  });

  it("[MQTT-3.1.2-16] [MQTT-3.1.2-17] [MQTT-3.1.2-18] [MQTT-3.1.2-19] user name and password follow their flags; a password alone is allowed", () => {
    expect(expectPacket(frame(0x10, h5(0x42), props(), str("c"), "0001 70"))).toMatchObject({ username: undefined, password: hex("70") });
    expect(hexOf(encode({ ...base(5), password: hex("70") }, 5))).toBe(hexOf(frame(0x10, h5(0x42), props(), str("c"), "0001 70")));
    expectError(frame(0x10, h5(0x82), props(), str("c")), undefined, MALFORMED);
    expectError(frame(0x10, h5(0x42), props(), str("c")), undefined, MALFORMED);
    expectError(frame(0x10, h5(0x02), props(), str("c"), str("u")), undefined, MALFORMED);
  });

  it("[MQTT-3.1.3-3] [MQTT-3.1.3-4] the client id is present first and is valid UTF-8", () => {
    expectError(frame(0x10, h5(0x02), props()), undefined, MALFORMED);
    expectError(frame(0x10, h5(0x02), props(), rawStr("ed bf bf")), undefined, MALFORMED);
  });

  it("[MQTT-3.1.3-11] the will topic must be valid UTF-8", () => {
    expectError(frame(0x10, h5(0x06), props(), str("c"), props(), rawStr("61 00"), "0000"), undefined, MALFORMED);
  });

  it("[MQTT-3.1.3-12] the user name must be valid UTF-8", () => {
    expectError(frame(0x10, h5(0x82), props(), str("c"), rawStr("e2 82")), undefined, MALFORMED);
  });

  it("a will with payload format indicator 1 and a non-UTF-8 payload is 0x99", () => {
    expectError(frame(0x10, h5(0x06), props(), str("c"), props("01 01"), str("w"), "0001 ff"), undefined, 0x99);
    expectPacket(frame(0x10, h5(0x06), props(), str("c"), props("01 01"), str("w"), "0002 6869"));
  });

  it("[MQTT-3.2.2-1] CONNACK acknowledge flag bits 7-1 are reserved", () => {
    expect(expectPacket(hex("2003 01 00 00"), 5)).toEqual({ type: "connack", sessionPresent: true, reasonCode: 0, properties: {} });
    expectError(hex("2003 80 00 00"), 5, MALFORMED);
    expectError(hex("2003 03 00 00"), 5, MALFORMED);
    expect(hexOf(encode({ type: "connack", sessionPresent: true, reasonCode: 0, properties: { topicAliasMaximum: 10 } }, 5))).toBe("20060100032200" + "0a");
  });
});
