// Test helpers: decode whole byte arrays, hex literals, and a decoder fed with given chunks.
import { expect } from "vitest";
import { Decoder, type DecodeError, type Packet, type ProtocolVersion } from "../src/index.js";

export function hex(s: string): Uint8Array {
  const clean = s.replace(/\s+/g, "");
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(clean.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export const text = (s: string): Uint8Array => new TextEncoder().encode(s);

/** Every result of decoding `chunks` in order until the decoder needs more or fails. */
export function decodeAll(chunks: Uint8Array[], version?: ProtocolVersion, maxPacketSize?: number): (Packet | DecodeError)[] {
  const d = new Decoder({ ...(version !== undefined ? { version } : {}), ...(maxPacketSize !== undefined ? { maxPacketSize } : {}) });
  const out: (Packet | DecodeError)[] = [];
  for (const c of chunks) {
    d.push(c);
    for (;;) {
      const r = d.next();
      if (r === undefined) break;
      out.push(r);
      if (r.type === "error") return out;
    }
  }
  return out;
}

/** Decodes exactly one packet from `bytes` (in one chunk). */
export function decodeOne(bytes: Uint8Array, version?: ProtocolVersion): Packet | DecodeError | undefined {
  const d = new Decoder(version !== undefined ? { version } : {});
  d.push(bytes);
  return d.next();
}

/** Asserts that `bytes` decode to a DecodeError with `code`, and returns it. */
export function expectError(bytes: Uint8Array, version: ProtocolVersion | undefined, code: number): DecodeError {
  const r = decodeOne(bytes, version);
  expect(r, `expected error 0x${code.toString(16)}`).toMatchObject({ type: "error", code });
  const e = r as DecodeError;
  expect(e.message).not.toMatch(/^internal/);
  return e;
}

/** Asserts that `bytes` decode to a packet (no error), and returns it. */
export function expectPacket(bytes: Uint8Array, version?: ProtocolVersion): Packet {
  const r = decodeOne(bytes, version);
  if (r === undefined || r.type === "error") throw new Error(`expected a packet, got ${JSON.stringify(r)}`);
  return r;
}
