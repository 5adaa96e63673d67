// Property tests: decode(encode(p)) == p for every packet kind of every version, sizing agrees
// with writing, and any split of a packet stream decodes to the same packets.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Decoder, encode, encodeInto, encodedLength, type Packet, type ProtocolVersion } from "../src/index.js";
import { arbPacket, arbPacketOfType, arbVersionedPacket, packetTypes } from "./arbitraries.js";
import { decodeAll } from "./helpers.js";

const versions: ProtocolVersion[] = [3, 4, 5];

function decodeStream(bytes: Uint8Array, version: ProtocolVersion, cuts: number[]): Packet[] {
  const chunks: Uint8Array[] = [];
  let prev = 0;
  for (const c of [...cuts].sort((a, b) => a - b)) {
    chunks.push(bytes.subarray(prev, c));
    prev = c;
  }
  chunks.push(bytes.subarray(prev));
  const out = decodeAll(chunks, version);
  for (const p of out) if (p.type === "error") throw new Error(`decode error: ${p.message}`);
  return out as Packet[];
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

describe("round trip", () => {
  for (const version of versions) {
    for (const type of packetTypes(version)) {
      it(`${type} v${version}: decode(encode(p)) deep-equals p`, () => {
        fc.assert(
          fc.property(arbPacketOfType(type, version), (p) => {
            const bytes = encode(p, version);
            expect(bytes.length).toBe(encodedLength(p, version));
            const d = new Decoder({ version });
            d.push(bytes);
            expect(d.next()).toEqual(p);
            expect(d.next()).toBeUndefined();
            expect(d.buffered).toBe(0);
          }),
          { numRuns: 150 },
        );
      });
    }
  }

  it("encodeInto writes the same bytes as encode at any offset", () => {
    fc.assert(
      fc.property(
        arbVersionedPacket,
        fc.nat(16),
        ([v, p], offset) => {
          const bytes = encode(p, v);
          const target = new Uint8Array(offset + bytes.length + 3).fill(0xee);
          expect(encodeInto(p, v, target, offset)).toBe(bytes.length);
          expect(target.subarray(offset, offset + bytes.length)).toEqual(bytes);
          expect(target[offset + bytes.length]).toBe(0xee);
          if (offset > 0) expect(target[offset - 1]).toBe(0xee);
        },
      ),
      { numRuns: 200 },
    );
  });

  it("a CONNECT teaches an unversioned decoder its version, then packets decode in it", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...versions).chain((v) =>
          fc.tuple(fc.constant(v), arbPacketOfType("connect", v), fc.array(arbPacket(v), { maxLength: 5 })),
        ),
        ([v, connect, rest]) => {
          const d = new Decoder();
          expect(d.version).toBeUndefined();
          for (const p of [connect, ...rest]) d.push(encode(p, v));
          expect(d.next()).toEqual(connect);
          expect(d.version).toBe(v);
          for (const p of rest) expect(d.next()).toEqual(p);
          expect(d.next()).toBeUndefined();
        },
      ),
      { numRuns: 150 },
    );
  });
});

describe("split input", () => {
  const arbStream = fc
    .constantFrom(...versions)
    .chain((v) => fc.tuple(fc.constant(v), fc.array(arbPacket(v), { minLength: 1, maxLength: 6 })));

  it("a packet stream cut at random positions decodes to the same packets", () => {
    fc.assert(
      fc.property(arbStream, fc.array(fc.nat(), { maxLength: 12 }), ([v, packets], rawCuts) => {
        const bytes = concat(packets.map((p) => encode(p, v)));
        const cuts = rawCuts.map((c) => c % (bytes.length + 1));
        expect(decodeStream(bytes, v, cuts)).toEqual(packets);
      }),
      { numRuns: 300 },
    );
  });

  it("a packet stream fed one byte at a time decodes to the same packets", () => {
    fc.assert(
      fc.property(arbStream, ([v, packets]) => {
        const bytes = concat(packets.map((p) => encode(p, v)));
        const chunks = Array.from(bytes, (b) => Uint8Array.of(b));
        expect(decodeAll(chunks, v)).toEqual(packets);
      }),
      { numRuns: 100 },
    );
  });

  it("a packet stream split at every single position decodes to the same packets", () => {
    fc.assert(
      fc.property(arbStream, ([v, packets]) => {
        const bytes = concat(packets.map((p) => encode(p, v)));
        for (let cut = 0; cut <= bytes.length; cut++) {
          expect(decodeStream(bytes, v, [cut])).toEqual(packets);
        }
      }),
      { numRuns: 40 },
    );
  });

  it("buffered counts bytes not yet decoded", () => {
    const bytes = encode({ type: "pingreq" }, 4);
    const d = new Decoder({ version: 4 });
    d.push(bytes.subarray(0, 1));
    expect(d.next()).toBeUndefined();
    expect(d.buffered).toBe(1);
    d.push(bytes.subarray(1));
    expect(d.next()).toEqual({ type: "pingreq" });
    expect(d.buffered).toBe(0);
  });
});
