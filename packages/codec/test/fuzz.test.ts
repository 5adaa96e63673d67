// Fuzzing: arbitrary bytes and mutated valid packets, in arbitrary chunks, never make the decoder
// throw or stall; it always returns a packet, an error, or asks for more. Every packet it accepts
// can be re-encoded and decodes back to itself.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Decoder, encode, type Packet, type ProtocolVersion } from "../src/index.js";
import { arbPacket, arbPacketOfType, arbVersionedPacket } from "./arbitraries.js";

/** CODEC_FUZZ_SCALE=50 runs every property 50 times longer (local deep runs; CI uses 1). */
const SCALE = Number((globalThis as { process?: { env: Record<string, string | undefined> } }).process?.env.CODEC_FUZZ_SCALE ?? 1);
const runs = (n: number) => ({ numRuns: Math.round(n * SCALE) });

type Mutation = { kind: "flip" | "set" | "insert" | "delete"; at: number; value: number };

const arbMutation: fc.Arbitrary<Mutation> = fc.record({
  kind: fc.constantFrom("flip", "set", "insert", "delete"),
  at: fc.nat(),
  value: fc.integer({ min: 0, max: 255 }),
});

function mutate(bytes: Uint8Array, mutations: Mutation[]): Uint8Array {
  let b = Array.from(bytes);
  for (const m of mutations) {
    if (b.length === 0) break;
    const i = m.at % b.length;
    if (m.kind === "flip") b[i] = b[i]! ^ (1 << (m.value % 8));
    else if (m.kind === "set") b[i] = m.value;
    else if (m.kind === "insert") b.splice(i, 0, m.value);
    else b = b.filter((_, j) => j !== i);
  }
  return Uint8Array.from(b);
}

function chunked(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const sorted = cuts.map((c) => c % (bytes.length + 1)).sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let prev = 0;
  for (const c of sorted) {
    out.push(bytes.subarray(prev, c));
    prev = c;
  }
  out.push(bytes.subarray(prev));
  return out;
}

/** Feeds chunks, draining after each; checks progress and the no-throw contract. */
function drive(chunks: Uint8Array[], version: ProtocolVersion | undefined): void {
  const d = new Decoder(version === undefined ? {} : { version });
  let fed = 0;
  for (const c of chunks) {
    d.push(c);
    fed += c.length;
    let steps = 0;
    for (;;) {
      const before = d.buffered;
      const r = d.next();
      if (r === undefined) {
        expect(d.buffered).toBe(before);
        break;
      }
      if (r.type === "error") {
        expect(r.message).not.toMatch(/^internal/);
        expect([0x81, 0x82, 0x84, 0x95, 0x99]).toContain(r.code);
        expect(d.next()).toBe(r);
        return;
      }
      // progress: a packet consumes at least its 2-byte fixed header
      expect(d.buffered).toBeLessThanOrEqual(before - 2);
      expect(++steps).toBeLessThanOrEqual(fed);
      reencodes(r, r.type === "connect" ? r.protocolVersion : (d.version ?? 4));
    }
  }
}

function reencodes(p: Packet, version: ProtocolVersion): void {
  const bytes = encode(p, version);
  const d = new Decoder({ version });
  d.push(bytes);
  expect(d.next()).toEqual(p);
}

const arbVersionOrUnknown = fc.constantFrom<ProtocolVersion | undefined>(undefined, 3, 4, 5);

describe("fuzz", () => {
  it("arbitrary bytes in arbitrary chunks never throw and never stall", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.array(fc.nat(), { maxLength: 8 }), arbVersionOrUnknown, (bytes, cuts, v) => {
        drive(chunked(bytes, cuts), v);
      }),
      runs(1500),
    );
  });

  it("bytes that look like packets (valid type and length prefix) never throw", () => {
    const arbFramed = fc
      .tuple(fc.integer({ min: 0, max: 255 }), fc.uint8Array({ maxLength: 60 }))
      .map(([first, body]) => Uint8Array.from([first, body.length, ...body]));
    fc.assert(
      fc.property(fc.array(arbFramed, { minLength: 1, maxLength: 4 }), arbVersionOrUnknown, (frames, v) => {
        drive(frames, v);
      }),
      runs(2000),
    );
  });

  it("mutated valid packet streams never throw, and what decodes re-encodes", () => {
    const arbStream = fc
      .constantFrom<ProtocolVersion>(3, 4, 5)
      .chain((v) => fc.tuple(fc.constant(v), arbPacketOfType("connect", v), fc.array(arbPacket(v), { maxLength: 4 })));
    fc.assert(
      fc.property(arbStream, fc.array(arbMutation, { minLength: 1, maxLength: 4 }), fc.array(fc.nat(), { maxLength: 6 }), fc.boolean(), ([v, connect, rest], muts, cuts, unversioned) => {
        const parts = (unversioned ? [connect, ...rest] : rest).map((p) => encode(p, v));
        const all = Uint8Array.from(parts.flatMap((p) => Array.from(p)));
        drive(chunked(mutate(all, muts), cuts), unversioned ? undefined : v);
      }),
      runs(1500),
    );
  });

  it("truncating a valid packet anywhere leaves the decoder asking for more, never failing", () => {
    fc.assert(
      fc.property(
        arbVersionedPacket,
        fc.nat(),
        ([v, p], n) => {
          const bytes = encode(p, v);
          const cut = n % bytes.length;
          const d = new Decoder({ version: v });
          d.push(bytes.subarray(0, cut));
          expect(d.next()).toBeUndefined();
          expect(d.buffered).toBe(cut);
        },
      ),
      runs(500),
    );
  });
});
