// SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK: filters, options bytes, reason codes, empty payloads.
import { describe, expect, it } from "vitest";
import { encode, type SubscribePacket, type Subscription } from "../src/index.js";
import { expectError, expectPacket, frame, hex, props, rawStr, str } from "./helpers.js";

const MALFORMED = 0x81;
const PROTOCOL_ERROR = 0x82;
const hexOf = (b: Uint8Array): string => Buffer.from(b).toString("hex");
const sub = (topicFilter: string, qos: 0 | 1 | 2 = 0, over: Partial<Subscription> = {}): Subscription => ({
  topicFilter,
  qos,
  noLocal: false,
  retainAsPublished: false,
  retainHandling: 0,
  ...over,
});

describe("MQTT 3.1.1", () => {
  it("decodes SUBSCRIBE byte for byte", () => {
    const bytes = frame(0x82, "000a", str("a/+"), "01", str("#"), "02");
    const p: SubscribePacket = { type: "subscribe", packetId: 10, subscriptions: [sub("a/+", 1), sub("#", 2)], properties: {} };
    expect(expectPacket(bytes, 4)).toEqual(p);
    expect(hexOf(encode(p, 4))).toBe(hexOf(bytes));
  });

  it("[MQTT-2.3.1-1] SUBSCRIBE and UNSUBSCRIBE need a non-zero packet identifier", () => {
    expectError(frame(0x82, "0000", str("a"), "00"), 4, MALFORMED);
    expectError(frame(0xa2, "0000", str("a")), 4, MALFORMED);
    expect(() => encode({ type: "subscribe", packetId: 0, subscriptions: [sub("a")], properties: {} }, 4)).toThrow(RangeError);
    expect(() => encode({ type: "unsubscribe", packetId: 0, topicFilters: ["a"], properties: {} }, 4)).toThrow(RangeError);
  });

  it("[MQTT-3.8.3-1] topic filters must be valid UTF-8", () => {
    expectError(frame(0x82, "0001", rawStr("fe"), "00"), 4, MALFORMED);
    expectError(frame(0x82, "0001", rawStr("61 00"), "00"), 4, MALFORMED);
  });

  it("[MQTT-3.8.3-3] a SUBSCRIBE without filters is a protocol violation", () => {
    expectError(frame(0x82, "0001"), 4, PROTOCOL_ERROR);
    expect(() => encode({ type: "subscribe", packetId: 1, subscriptions: [], properties: {} }, 4)).toThrow(TypeError);
  });

  it("[MQTT-3.8.3-4] requested QoS 3 or non-zero reserved bits are malformed", () => {
    expectError(frame(0x82, "0001", str("a"), "03"), 4, MALFORMED);
    for (const bits of ["04", "08", "10", "20", "40", "80"]) expectError(frame(0x82, "0001", str("a"), bits), 4, MALFORMED);
    // a missing options byte
    expectError(frame(0x82, "0001", str("a")), 4, MALFORMED);
  });

  it("invalid topic filters in SUBSCRIBE and UNSUBSCRIBE are malformed", () => {
    for (const f of ["a/#/b", "a#", "a+/b", "", "$share/+x/a", "$share/n"]) {
      expectError(frame(0x82, "0001", str(f), "00"), 4, MALFORMED);
      expectError(frame(0xa2, "0001", str(f)), 4, MALFORMED);
      expect(() => encode({ type: "subscribe", packetId: 1, subscriptions: [sub(f)], properties: {} }, 4)).toThrow(TypeError);
    }
  });

  it("[MQTT-3.9.3-2] SUBACK return codes other than 0x00, 0x01, 0x02, 0x80 are reserved", () => {
    expect(expectPacket(frame(0x90, "0005", "00 01 02 80"), 4)).toEqual({ type: "suback", packetId: 5, reasonCodes: [0, 1, 2, 0x80], properties: {} });
    expectError(frame(0x90, "0005", "03"), 4, MALFORMED);
    expectError(frame(0x90, "0005", "87"), 4, MALFORMED);
    expect(() => encode({ type: "suback", packetId: 5, reasonCodes: [0x87], properties: {} }, 4)).toThrow(RangeError);
    expect(hexOf(encode({ type: "suback", packetId: 5, reasonCodes: [2, 0x80], properties: {} }, 4))).toBe("9004000502" + "80");
  });

  it("[MQTT-3.10.3-1] UNSUBSCRIBE filters are UTF-8 strings packed one after another", () => {
    const bytes = frame(0xa2, "0003", str("a/b"), str("c/#"));
    expect(expectPacket(bytes, 4)).toEqual({ type: "unsubscribe", packetId: 3, topicFilters: ["a/b", "c/#"], properties: {} });
    expect(hexOf(encode({ type: "unsubscribe", packetId: 3, topicFilters: ["a/b", "c/#"], properties: {} }, 4))).toBe(hexOf(bytes));
    expectError(frame(0xa2, "0003", rawStr("c0 80")), 4, MALFORMED);
    expectError(frame(0xa2, "0003", str("a"), "00"), 4, MALFORMED); // a truncated second string
  });

  it("[MQTT-3.10.3-2] an UNSUBSCRIBE without filters is a protocol violation", () => {
    expectError(frame(0xa2, "0003"), 4, PROTOCOL_ERROR);
    expect(() => encode({ type: "unsubscribe", packetId: 1, topicFilters: [], properties: {} }, 4)).toThrow(TypeError);
  });

  it("UNSUBACK carries only the packet identifier in 3.x", () => {
    expect(expectPacket(hex("b002 0009"), 4)).toEqual({ type: "unsuback", packetId: 9, reasonCodes: [], properties: {} });
    expectError(hex("b003 0009 00"), 4, MALFORMED);
    expect(hexOf(encode({ type: "unsuback", packetId: 9, reasonCodes: [0x11], properties: {} }, 4))).toBe("b0020009");
  });
});

describe("MQTT 5.0", () => {
  it("decodes SUBSCRIBE with options and a subscription identifier byte for byte", () => {
    // options: QoS 1 | No Local | Retain As Published | Retain Handling 2 = 0x2d
    const bytes = frame(0x82, "0001", props("0b 07"), str("a/b"), "2d", str("$share/g/c"), "00");
    const p: SubscribePacket = {
      type: "subscribe",
      packetId: 1,
      subscriptions: [sub("a/b", 1, { noLocal: true, retainAsPublished: true, retainHandling: 2 }), sub("$share/g/c")],
      properties: { subscriptionIdentifiers: [7] },
    };
    expect(expectPacket(bytes, 5)).toEqual(p);
    expect(hexOf(encode(p, 5))).toBe(hexOf(bytes));
    // 3.x encodes only the QoS bits
    expect(hexOf(encode(p, 4))).toBe(hexOf(frame(0x82, "0001", str("a/b"), "01", str("$share/g/c"), "00")));
  });

  it("[MQTT-3.8.3-1] topic filters must be valid UTF-8", () => {
    expectError(frame(0x82, "0001", props(), rawStr("f8 88 80 80 80"), "00"), 5, MALFORMED);
  });

  it("[MQTT-3.8.3-2] a SUBSCRIBE needs at least one filter / options pair", () => {
    expectError(frame(0x82, "0001", props()), 5, PROTOCOL_ERROR);
  });

  it("[MQTT-3.8.3-5] reserved option bits 6-7 are malformed; QoS 3 and retain handling 3 are protocol errors", () => {
    expectError(frame(0x82, "0001", props(), str("a"), "40"), 5, MALFORMED);
    expectError(frame(0x82, "0001", props(), str("a"), "80"), 5, MALFORMED);
    expectError(frame(0x82, "0001", props(), str("a"), "03"), 5, PROTOCOL_ERROR); // 5.0 section 3.8.3.1
    expectError(frame(0x82, "0001", props(), str("a"), "30"), 5, PROTOCOL_ERROR);
  });

  it("[MQTT-3.8.3-4] No Local on a shared subscription is a protocol error", () => {
    expectError(frame(0x82, "0001", props(), str("$share/g/a"), "04"), 5, PROTOCOL_ERROR);
    expectPacket(frame(0x82, "0001", props(), str("a"), "04"), 5);
  });

  it("a SUBSCRIBE carries at most one subscription identifier, and not 0", () => {
    expectError(frame(0x82, "0001", props("0b 01 0b 02"), str("a"), "00"), 5, PROTOCOL_ERROR);
    expectError(frame(0x82, "0001", props("0b 00"), str("a"), "00"), 5, PROTOCOL_ERROR);
    expect(() => encode({ type: "subscribe", packetId: 1, subscriptions: [sub("a")], properties: { subscriptionIdentifiers: [1, 2] } }, 5)).toThrow(TypeError);
  });

  it("[MQTT-3.10.3-1] [MQTT-3.10.3-2] UNSUBSCRIBE filters are valid UTF-8 and at least one is present", () => {
    expect(expectPacket(frame(0xa2, "0002", props(), str("a")), 5)).toEqual({ type: "unsubscribe", packetId: 2, topicFilters: ["a"], properties: {} });
    expectError(frame(0xa2, "0002", props(), rawStr("80")), 5, MALFORMED);
    expectError(frame(0xa2, "0002", props()), 5, PROTOCOL_ERROR);
  });

  it("SUBACK and UNSUBACK carry properties then one reason code per filter", () => {
    expect(expectPacket(frame(0x90, "0002", props("1f 0001 78"), "00 8f a2"), 5)).toEqual({
      type: "suback",
      packetId: 2,
      reasonCodes: [0, 0x8f, 0xa2],
      properties: { reasonString: "x" },
    });
    expectError(frame(0x90, "0002", props(), "05"), 5, MALFORMED);
    expect(expectPacket(frame(0xb0, "0002", props(), "00 11"), 5)).toEqual({ type: "unsuback", packetId: 2, reasonCodes: [0, 0x11], properties: {} });
  });
});
