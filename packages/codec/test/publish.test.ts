// PUBLISH: fixed header flags (QoS, DUP, RETAIN), topic name rules, packet identifier, v5
// properties that concern PUBLISH, payload views, and the encoder's duties as a sender.
import { describe, expect, it } from "vitest";
import { Decoder, encode, type PublishPacket } from "../src/index.js";
import { expectError, expectPacket, frame, hex, props, rawStr, str } from "./helpers.js";

const MALFORMED = 0x81;
const PROTOCOL_ERROR = 0x82;
const hexOf = (b: Uint8Array): string => Buffer.from(b).toString("hex");

const pub = (over: Partial<PublishPacket> = {}): PublishPacket => ({
  type: "publish",
  topic: "a/b",
  payload: hex("0102"),
  qos: 0,
  retain: false,
  dup: false,
  packetId: undefined,
  properties: {},
  ...over,
});

describe("MQTT 3.1.1", () => {
  it("decodes QoS 0/1/2 PUBLISH byte for byte, RETAIN and DUP from the flags", () => {
    expect(expectPacket(frame(0x30, str("a/b"), "0102"), 4)).toEqual(pub());
    expect(expectPacket(frame(0x3b, str("a/b"), "0007", "0102"), 4)).toEqual(pub({ qos: 1, dup: true, retain: true, packetId: 7 }));
    expect(expectPacket(frame(0x34, str("a/b"), "ffff"), 4)).toEqual(pub({ qos: 2, packetId: 65535, payload: new Uint8Array(0) }));
    expect(hexOf(encode(pub({ qos: 1, dup: true, retain: true, packetId: 7 }), 4))).toBe(hexOf(frame(0x3b, str("a/b"), "0007", "0102")));
  });

  it("[MQTT-3.3.1-4] QoS 3 is malformed", () => {
    expect(expectError(frame(0x36, str("a"), "0001"), 4, MALFORMED).message).toMatch(/QoS 3/);
    expectError(frame(0x37, str("a"), "0001"), 4, MALFORMED);
    expect(() => encode(pub({ qos: 3 as 0 }), 4)).toThrow(RangeError);
  });

  it("[MQTT-3.3.1-2] DUP must be 0 on QoS 0: malformed on receipt, refused by the encoder", () => {
    expect(expectError(frame(0x38, str("a")), 4, MALFORMED).message).toMatch(/DUP/);
    expect(() => encode(pub({ dup: true }), 4)).toThrow(TypeError);
  });

  it("[MQTT-2.3.1-1] QoS 1 and 2 PUBLISH carry a non-zero packet identifier", () => {
    expect(expectError(frame(0x32, str("a"), "0000"), 4, MALFORMED).message).toMatch(/identifier 0/);
    expectError(frame(0x34, str("a"), "0000"), 4, MALFORMED);
    expectError(frame(0x32, str("a"), "00"), 4, MALFORMED); // truncated identifier
    expect(() => encode(pub({ qos: 1 }), 4)).toThrow(RangeError);
    expect(() => encode(pub({ qos: 1, packetId: 0 }), 4)).toThrow(RangeError);
    expect(() => encode(pub({ qos: 2, packetId: 65536 }), 4)).toThrow(RangeError);
  });

  it("[MQTT-2.3.1-5] a QoS 0 PUBLISH has no packet identifier: the bytes after the topic are payload", () => {
    expect(expectPacket(frame(0x30, str("a"), "0007"), 4)).toEqual(pub({ topic: "a", payload: hex("0007") }));
    expect(hexOf(encode(pub({ topic: "a", payload: hex("ff") }), 4))).toBe("3004000161ff");
    expect(() => encode(pub({ packetId: 3 }), 4)).toThrow(TypeError);
  });

  it("[MQTT-3.3.2-1] the topic name comes first and must be valid UTF-8", () => {
    expectError(frame(0x30, rawStr("ff")), 4, MALFORMED);
    expectError(frame(0x30, rawStr("61 00 62")), 4, MALFORMED);
    expectError(frame(0x30, rawStr("ed a0 80")), 4, MALFORMED); // surrogate U+D800
    expectError(frame(0x30, "0005 6162"), 4, MALFORMED); // topic length past the end
    expect(expectPacket(frame(0x30, str("caf\u00e9/\u{1F600}")), 4)).toMatchObject({ topic: "caf\u00e9/\u{1F600}" });
  });

  it("[MQTT-3.3.2-2] [MQTT-4.7.1-1] a topic name must not contain wildcards", () => {
    for (const t of ["a/+", "+", "#", "a/#", "a+b", "x#"]) {
      expect(expectError(frame(0x30, str(t)), 4, MALFORMED).message).toMatch(/wildcard/);
      expect(() => encode(pub({ topic: t }), 4)).toThrow(TypeError);
    }
  });

  it("[MQTT-4.7.3-1] an empty topic name is malformed in 3.x and cannot be encoded", () => {
    expectError(frame(0x30, str(""), "01"), 4, MALFORMED);
    expect(() => encode(pub({ topic: "" }), 4)).toThrow(TypeError);
  });

  it("a payload decoded from one chunk is a view of that chunk; one spanning chunks is a private copy", () => {
    const bytes = encode(pub({ payload: hex("aabbccdd") }), 4);
    const d = new Decoder({ version: 4 });
    d.push(bytes);
    const p = d.next() as PublishPacket;
    expect(p.payload.buffer).toBe(bytes.buffer);
    expect(p.payload).toEqual(hex("aabbccdd"));
    const d2 = new Decoder({ version: 4 });
    const a = bytes.slice(0, 4);
    const b = bytes.slice(4);
    d2.push(a);
    d2.push(b);
    const p2 = d2.next() as PublishPacket;
    expect(p2.payload).toEqual(hex("aabbccdd"));
    expect(p2.payload.buffer).not.toBe(a.buffer);
    expect(p2.payload.buffer).not.toBe(b.buffer);
    b.fill(0);
    expect(p2.payload).toEqual(hex("aabbccdd"));
  });

  it("the topic cache never confuses topics of the same length and hash", () => {
    // "Aa" and "BB" have the same 31-based hash; "Ab" shares their length
    const topics = ["Aa", "BB", "Aa", "Ab", "BB", "a/b", "a/c", "\u00e9", "a/b"];
    const d = new Decoder({ version: 4 });
    for (const t of topics) d.push(encode(pub({ topic: t }), 4));
    for (const t of topics) expect((d.next() as PublishPacket).topic).toBe(t);
  });

  it("encode results never share bytes: thousands of results stay intact", () => {
    const all = Array.from({ length: 5000 }, (_, i) => pub({ topic: `t/${i}`, payload: Uint8Array.of(i & 0xff, i >> 8) }));
    const encoded = all.map((p) => encode(p, 4));
    encoded.forEach((bytes, i) => {
      const d = new Decoder({ version: 4 });
      d.push(bytes);
      expect(d.next()).toEqual(all[i]);
    });
    const big = encode(pub({ payload: new Uint8Array(100_000).fill(3) }), 4);
    expect(big.length).toBe(1 + 3 + 5 + 100_000);
  });

  it("the encoder refuses lone surrogates and U+0000 in topics and strings over 65535 bytes", () => {
    expect(() => encode(pub({ topic: "a\uD800" }), 4)).toThrow(TypeError);
    expect(() => encode(pub({ topic: "a\u0000" }), 4)).toThrow(TypeError);
    expect(() => encode(pub({ topic: "x".repeat(65536) }), 4)).toThrow(RangeError);
    expect(encode(pub({ topic: "x".repeat(65535), payload: new Uint8Array(0) }), 4).length).toBe(1 + 3 + 2 + 65535);
  });
});

describe("MQTT 5.0", () => {
  it("decodes a PUBLISH with properties byte for byte", () => {
    // payload format 1, message expiry 60, content type "t", response topic "r", correlation data 0102,
    // subscription ids 1 and 200, user property ("k","v")
    const p = props("01 01  02 0000003c  03 0001 74  08 0001 72  09 0002 0102  0b 01  0b c801  26 0001 6b 0001 76");
    const bytes = frame(0x32, str("a"), "0009", p, "6869");
    const expected = pub({
      topic: "a",
      qos: 1,
      packetId: 9,
      payload: hex("6869"),
      properties: {
        payloadFormatIndicator: 1,
        messageExpiryInterval: 60,
        contentType: "t",
        responseTopic: "r",
        correlationData: hex("0102"),
        subscriptionIdentifiers: [1, 200],
        userProperties: [["k", "v"]],
      },
    });
    expect(expectPacket(bytes, 5)).toEqual(expected);
    expect(hexOf(encode(expected, 5))).toBe(hexOf(bytes));
  });

  it("[MQTT-2.2.1-2] a QoS 0 PUBLISH has no packet identifier", () => {
    expect(expectPacket(frame(0x30, str("a"), props(), "0007"), 5)).toEqual(pub({ topic: "a", payload: hex("0007") }));
    expect(() => encode(pub({ packetId: 1 }), 5)).toThrow(TypeError);
  });

  it("[MQTT-3.3.1-2] [MQTT-3.3.1-4] DUP on QoS 0 and QoS 3 are malformed", () => {
    expectError(frame(0x38, str("a"), props()), 5, MALFORMED);
    expectError(frame(0x36, str("a"), "0001", props()), 5, MALFORMED);
  });

  it("[MQTT-3.3.2-1] [MQTT-3.3.2-2] [MQTT-4.7.0-1] the topic name is valid UTF-8 without wildcards", () => {
    expectError(frame(0x30, rawStr("c3"), props()), 5, MALFORMED);
    expectError(frame(0x30, str("a/+/b"), props()), 5, MALFORMED);
    expectError(frame(0x30, str("#"), props()), 5, MALFORMED);
  });

  it("an empty topic name needs a topic alias (protocol error otherwise); the encoder agrees", () => {
    expect(expectPacket(frame(0x30, str(""), props("23 0005"), "ff"), 5)).toEqual(
      pub({ topic: "", payload: hex("ff"), properties: { topicAlias: 5 } }),
    );
    expectError(frame(0x30, str(""), props(), "ff"), 5, PROTOCOL_ERROR);
    expect(() => encode(pub({ topic: "" }), 5)).toThrow(TypeError);
    expect(encode(pub({ topic: "", properties: { topicAlias: 1 } }), 5).length).toBeGreaterThan(0);
  });

  it("[MQTT-3.3.2-8] a topic alias of 0 is a protocol error and cannot be encoded", () => {
    expectError(frame(0x30, str("a"), props("23 0000")), 5, PROTOCOL_ERROR);
    expect(() => encode(pub({ properties: { topicAlias: 0 } }), 5)).toThrow(RangeError);
  });

  it("[MQTT-3.3.2-13] [MQTT-3.3.2-14] the response topic is valid UTF-8 and has no wildcards", () => {
    expectError(frame(0x30, str("a"), props("08 0002 61ff")), 5, MALFORMED);
    expectError(frame(0x30, str("a"), props("08 0003 612f23")), 5, MALFORMED);
    expectError(frame(0x30, str("a"), props("08 0001 2b")), 5, MALFORMED);
    expect(() => encode(pub({ properties: { responseTopic: "r/+" } }), 5)).toThrow(TypeError);
    expect(expectPacket(frame(0x30, str("a"), props("08 0003 722f73")), 5)).toMatchObject({ properties: { responseTopic: "r/s" } });
  });

  it("[MQTT-3.3.2-19] the content type is valid UTF-8", () => {
    expectError(frame(0x30, str("a"), props("03 0001 80")), 5, MALFORMED);
    expectError(frame(0x30, str("a"), props("03 0001 00")), 5, MALFORMED);
    expect(expectPacket(frame(0x30, str("a"), props("03 0004 6a736f6e")), 5)).toMatchObject({ properties: { contentType: "json" } });
  });

  it("payload format indicator 1 with a payload that is not UTF-8 is 0x99 (payload format invalid)", () => {
    expectError(frame(0x30, str("a"), props("01 01"), "c328"), 5, 0x99);
    expect(expectPacket(frame(0x30, str("a"), props("01 01"), "c3a9"), 5)).toMatchObject({ payload: hex("c3a9") });
    // indicator 0: any bytes
    expectPacket(frame(0x30, str("a"), props("01 00"), "c328"), 5);
    // values other than 0 and 1 are a protocol error
    expectError(frame(0x30, str("a"), props("01 02")), 5, PROTOCOL_ERROR);
  });

  it("a properties length running past the packet is malformed", () => {
    expectError(frame(0x30, str("a"), "05 0100"), 5, MALFORMED);
  });
});
