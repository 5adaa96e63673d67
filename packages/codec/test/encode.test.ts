// The encoding entry points beyond round trips: header-only encoding (the payload left to the
// caller), slab-carved results that never share bytes, and the remembered topic of a fan-out.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { encode, encodeHeader, encodedHeaderLength, encodedLength, type Packet, type PublishPacket } from "../src/index.js";
import { arbPublish, arbVersionedPacket } from "./arbitraries.js";

const publish = (topic: string, payload: Uint8Array, qos: 0 | 1 = 0): PublishPacket => ({
  type: "publish",
  topic,
  payload,
  qos,
  retain: false,
  dup: false,
  packetId: qos === 0 ? undefined : 7,
  properties: {},
});

describe("encodeHeader", () => {
  it("header bytes followed by the payload are exactly encode(p), for every packet kind and version", () => {
    fc.assert(
      fc.property(
        arbVersionedPacket,
        fc.nat(8),
        ([v, p], offset) => {
          const whole = encode(p, v);
          const payload = p.type === "publish" ? p.payload : new Uint8Array(0);
          const n = encodedHeaderLength(p, v);
          expect(n).toBe(encodedLength(p, v) - payload.length);
          const target = new Uint8Array(offset + n + 2).fill(0xee);
          expect(encodeHeader(p, v, target, offset)).toBe(n);
          expect(target[offset + n]).toBe(0xee); // the payload is not written
          const joined = new Uint8Array(n + payload.length);
          joined.set(target.subarray(offset, offset + n));
          joined.set(payload, n);
          expect(joined).toEqual(whole);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("a 64 KiB PUBLISH: the header holds the remaining length of the whole packet, and is small", () => {
    const payload = new Uint8Array(65536).fill(1);
    const p = publish("a/b", payload, 1);
    const head = new Uint8Array(encodedHeaderLength(p, 4));
    expect(encodeHeader(p, 4, head, 0)).toBe(11); // 1 + 3 (varint 65543) + 2 + 3 + 2
    expect(head[0]).toBe(0x32);
    // remaining length 2 + 3 + 2 + 65536 = 65543 = 0x87 0x80 0x04
    expect([...head.subarray(1, 4)]).toEqual([0x87, 0x80, 0x04]);
    expect([...head.subarray(4)]).toEqual([0x00, 0x03, 0x61, 0x2f, 0x62, 0x00, 0x07]);
  });

  it("throws RangeError when the header does not fit, and writes nothing", () => {
    const p = publish("t", new Uint8Array(100));
    const target = new Uint8Array(5).fill(0xee); // 1 + 1 (remaining length 103) + 2 + 1
    expect(() => encodeHeader(p, 4, target, 1)).toThrow(RangeError);
    expect([...target]).toEqual([0xee, 0xee, 0xee, 0xee, 0xee]);
    expect(encodeHeader(p, 4, target, 0)).toBe(5);
    expect([...target]).toEqual([0x30, 103, 0x00, 0x01, 0x74]);
  });
});

describe("encode results", () => {
  it("never share bytes, small (slab), medium (slab) or large (own array)", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 40_000 }), { minLength: 2, maxLength: 12 }), (sizes) => {
        const out = sizes.map((n, i) => ({ bytes: encode(publish("s", new Uint8Array(n).fill(i & 0xff)), 4), fill: i & 0xff }));
        // overwrite every result, then check that no other result changed
        for (const o of out) o.bytes.fill(0xaa);
        for (const [i, o] of out.entries()) {
          expect(o.bytes.length).toBe(encodedLength(publish("s", new Uint8Array(sizes[i]!)), 4));
          expect(o.bytes.every((b) => b === 0xaa)).toBe(true);
        }
        const fresh = sizes.map((n, i) => encode(publish("s", new Uint8Array(n).fill(i & 0xff)), 4));
        for (const [i, b] of fresh.entries()) expect(b.subarray(b.length - sizes[i]!).every((x) => x === (i & 0xff))).toBe(true);
        for (const o of out) expect(o.bytes.every((b) => b === 0xaa)).toBe(true);
      }),
      { numRuns: 50 },
    );
  });
});

describe("MQTT 3.1.1", () => {
  it("[MQTT-3.3.2-2] [MQTT-1.5.3-1] [MQTT-1.5.3-2] the remembered topic never lets a bad topic through, whatever came before", () => {
    const ok = "sensors/room-1/temp";
    const copy = ["sensors", "room-1", "temp"].join("/"); // equal, but another string object
    const e = new Uint8Array(1);
    expect(encode(publish(ok, e), 4).length).toBe(encode(publish(copy, e), 4).length);
    expect(() => encode(publish("sensors/+/temp", e), 4)).toThrow(TypeError);
    expect(() => encode(publish("a\u0000b", e), 4)).toThrow(TypeError);
    expect(() => encode(publish("a\ud800", e), 4)).toThrow(TypeError);
    expect(() => encode(publish("", e), 4)).toThrow(TypeError); // [MQTT-4.7.3-1]
    expect(encode(publish(ok, e), 4)).toEqual(encode(publish(copy, e), 4));
  });

  it("a non-ASCII topic after an ASCII one (and back) is written as UTF-8, with its byte length", () => {
    fc.assert(
      fc.property(fc.array(arbPublish(4), { minLength: 1, maxLength: 6 }), (ps) => {
        for (const p of ps) {
          const bytes = encode(p, 4);
          const expected = new TextEncoder().encode(p.topic);
          const at = bytes.length - p.payload.length - (p.qos === 0 ? 0 : 2) - expected.length;
          expect(bytes.subarray(at, at + expected.length)).toEqual(expected);
          expect((bytes[at - 2]! << 8) | bytes[at - 1]!).toBe(expected.length);
        }
      }),
      { numRuns: 200 },
    );
  });
});

describe("MQTT 5.0", () => {
  it("[MQTT-3.3.2-2] the same topic in 5.0 after 3.1.1, and an empty topic with an alias, encode as sized", () => {
    const withAlias: Packet = { ...publish("", new Uint8Array(2)), properties: { topicAlias: 3 } };
    expect(encode(withAlias, 5).length).toBe(encodedLength(withAlias, 5));
    expect(encode(publish("x/y", new Uint8Array(2)), 4).length).toBe(encodedLength(publish("x/y", new Uint8Array(2)), 4));
    expect(encode(publish("x/y", new Uint8Array(2)), 5).length).toBe(encodedLength(publish("x/y", new Uint8Array(2)), 5));
    expect(() => encode(publish("", new Uint8Array(2)), 5)).toThrow(TypeError);
  });
});
