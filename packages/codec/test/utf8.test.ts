// UTF-8 encoded strings (3.1.1 section 1.5.3, 5.0 sections 1.5.4 and 1.5.7): well-formed only,
// no surrogates, no U+0000, U+FEFF kept; checked against the platform's fatal TextDecoder.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { encode, utf8Length, type PublishPacket } from "../src/index.js";
import { decodeUtf8 } from "../src/primitives.js";
import { expectError, expectPacket, frame, props, rawStr, str } from "./helpers.js";

const MALFORMED = 0x81;
const fatal = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** The reference: well-formed per the platform, and without U+0000. */
function reference(b: Uint8Array): string | undefined {
  try {
    const s = fatal.decode(b);
    return s.includes("\u0000") ? undefined : s;
  } catch {
    return undefined;
  }
}

const illFormed: [string, string][] = [
  ["c0 80", "overlong U+0000"],
  ["c1 bf", "overlong 2-byte"],
  ["e0 80 80", "overlong 3-byte"],
  ["f0 80 80 80", "overlong 4-byte"],
  ["ed a0 80", "high surrogate U+D800"],
  ["ed bf bf", "low surrogate U+DFFF"],
  ["ed a0 bd ed b8 80", "surrogate pair encoded as two 3-byte sequences (CESU-8)"],
  ["f4 90 80 80", "above U+10FFFF"],
  ["f8 88 80 80 80", "5-byte form"],
  ["80", "lone continuation byte"],
  ["e2 82", "truncated sequence"],
  ["c3 28", "bad continuation"],
  ["ff", "0xFF"],
];

function topicPublish(version: 4 | 5, topicField: string): Uint8Array {
  return version === 5 ? frame(0x30, topicField, props()) : frame(0x30, topicField);
}

describe("MQTT 3.1.1", () => {
  it("[MQTT-1.5.3-1] ill-formed UTF-8 and encoded surrogates are malformed", () => {
    for (const [bytes, what] of illFormed) {
      expect(expectError(topicPublish(4, rawStr(bytes)), 4, MALFORMED).message, what).toMatch(/UTF-8/);
    }
  });

  it("[MQTT-1.5.3-2] a string must not encode U+0000", () => {
    expectError(topicPublish(4, rawStr("00")), 4, MALFORMED);
    expectError(topicPublish(4, rawStr("61 00 62")), 4, MALFORMED);
    expect(() => encode({ type: "connect", protocolName: "MQTT", protocolVersion: 4, clean: true, keepAlive: 0, clientId: "a\u0000", will: undefined, username: undefined, password: undefined, properties: {} }, 4)).toThrow(TypeError);
  });

  it("[MQTT-1.5.3-3] EF BB BF is U+FEFF and is kept, never stripped", () => {
    expect(expectPacket(topicPublish(4, rawStr("ef bb bf 61")), 4)).toMatchObject({ topic: "\uFEFFa" });
    expect(expectPacket(topicPublish(4, rawStr("61 ef bb bf")), 4)).toMatchObject({ topic: "a\uFEFF" });
    const p: PublishPacket = { type: "publish", topic: "\uFEFF", payload: new Uint8Array(0), qos: 0, retain: false, dup: false, packetId: undefined, properties: {} };
    expect(Buffer.from(encode(p, 4)).toString("hex")).toBe("30050003efbbbf");
  });

  it("decodeUtf8 agrees with the platform's fatal TextDecoder on arbitrary bytes", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), (b) => {
        expect(decodeUtf8(b, 0, b.length)).toBe(reference(b));
      }),
      { numRuns: 2000 },
    );
  });

  it("decodeUtf8 agrees with TextDecoder on well-formed text, including astral characters", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 40 }), (s) => {
        const b = new TextEncoder().encode(s);
        expect(decodeUtf8(b, 0, b.length)).toBe(reference(b));
        expect(utf8Length(s)).toBe(b.length);
      }),
      { numRuns: 1000 },
    );
  });

  it("long strings decode too (chunked code unit conversion)", () => {
    const s = "\u00e9x\u{1F600}".repeat(5000);
    const b = new TextEncoder().encode(s);
    expect(decodeUtf8(b, 0, b.length)).toBe(s);
    const ascii = "abc".repeat(10000);
    expect(decodeUtf8(new TextEncoder().encode(ascii), 0, ascii.length)).toBe(ascii);
  });
});

describe("MQTT 5.0", () => {
  it("[MQTT-1.5.4-1] ill-formed UTF-8 and encoded surrogates are malformed", () => {
    for (const [bytes, what] of illFormed) {
      expect(expectError(topicPublish(5, rawStr(bytes)), 5, MALFORMED).message, what).toMatch(/UTF-8/);
    }
  });

  it("[MQTT-1.5.4-2] a string must not encode U+0000", () => {
    expectError(topicPublish(5, rawStr("00")), 5, MALFORMED);
    expectError(frame(0xe0, "00", props("1f 0001 00")), 5, MALFORMED); // reason string
  });

  it("[MQTT-1.5.4-3] EF BB BF is U+FEFF and is kept", () => {
    expect(expectPacket(frame(0xe0, "00", props("1f 0003 efbbbf")), 5)).toMatchObject({ properties: { reasonString: "\uFEFF" } });
    expect(expectPacket(topicPublish(5, str("\uFEFF/x")), 5)).toMatchObject({ topic: "\uFEFF/x" });
  });

  it("[MQTT-1.5.7-1] both name and value of a user property follow the UTF-8 string rules", () => {
    expect(expectPacket(frame(0xe0, "00", props("26 0001 6b 0001 76")), 5)).toMatchObject({ properties: { userProperties: [["k", "v"]] } });
    expectError(frame(0xe0, "00", props("26 0001 ff 0001 76")), 5, MALFORMED);
    expectError(frame(0xe0, "00", props("26 0001 6b 0001 00")), 5, MALFORMED);
    expectError(frame(0xe0, "00", props("26 0001 6b")), 5, MALFORMED); // value missing
    expect(() => encode({ type: "disconnect", reasonCode: 0, properties: { userProperties: [["k", "\uDC00"]] } }, 5)).toThrow(TypeError);
  });

  it("utf8Length counts UTF-8 bytes", () => {
    expect(utf8Length("")).toBe(0);
    expect(utf8Length("a")).toBe(1);
    expect(utf8Length("\u00e9")).toBe(2);
    expect(utf8Length("\u20ac")).toBe(3);
    expect(utf8Length("\u{1F600}")).toBe(4);
    expect(utf8Length("\uFEFF")).toBe(3);
  });
});
