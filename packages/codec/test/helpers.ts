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

function toBytes(part: string | Uint8Array | number[]): Uint8Array {
  return typeof part === "string" ? hex(part) : Uint8Array.from(part);
}

/** A whole packet: first byte, the remaining length computed, then the body parts (hex or bytes). */
export function frame(first: number, ...parts: (string | Uint8Array | number[])[]): Uint8Array {
  const body = parts.map(toBytes);
  const n = body.reduce((a, b) => a + b.length, 0);
  const len: number[] = [];
  let x = n;
  do {
    let c = x % 128;
    x = Math.floor(x / 128);
    if (x > 0) c |= 0x80;
    len.push(c);
  } while (x > 0);
  const out = new Uint8Array(1 + len.length + n);
  out[0] = first;
  out.set(len, 1);
  let o = 1 + len.length;
  for (const b of body) {
    out.set(b, o);
    o += b.length;
  }
  return out;
}

/** An MQTT UTF-8 string field (two byte length + UTF-8 bytes) as hex. */
export function str(s: string): string {
  const b = text(s);
  return u16(b.length) + Buffer_hex(b);
}

/** An MQTT string field holding raw bytes (for ill-formed UTF-8). */
export function rawStr(bytesHex: string): string {
  return u16(bytesHex.replace(/\s+/g, "").length / 2) + bytesHex;
}

export function u16(n: number): string {
  return n.toString(16).padStart(4, "0");
}

function Buffer_hex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/** A v5 property list (varint length + the given property bytes, hex). */
export function props(bytesHex = ""): string {
  const n = bytesHex.replace(/\s+/g, "").length / 2;
  if (n >= 128) throw new Error("test helper: keep property lists short");
  return n.toString(16).padStart(2, "0") + bytesHex;
}

/** The MQTT 3.1.1 CONNECT header for a given flags byte: name, level 4, flags, keep alive 60. */
export const connectHeader = (level: number, flags: number, name = level === 3 ? "MQIsdp" : "MQTT"): string =>
  str(name) + level.toString(16).padStart(2, "0") + flags.toString(16).padStart(2, "0") + "003c";
