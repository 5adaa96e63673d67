// Encoding: size the packet (encodedLength), then write it into one caller-owned buffer
// (encodeInto) or a fresh exact-size one (encode). Throws only for a caller's bug.
import { ackLength, writeAck } from "./ack.js";
import { connackLength, writeConnack } from "./connack.js";
import { connectLength, writeConnect } from "./connect.js";
import { reasonLength, writeReason } from "./disconnect.js";
import { fixedByte } from "./header.js";
import type { Packet, ProtocolVersion } from "./packets.js";
import { MAX_VARINT, Writer, varintSize } from "./primitives.js";
import { publishFlags, publishLength, writePublish } from "./publish.js";
import { subackLength, writeSuback } from "./suback.js";
import { subscribeLength, writeSubscribe } from "./subscribe.js";
import { unsubackLength, writeUnsuback } from "./unsuback.js";
import { unsubscribeLength, writeUnsubscribe } from "./unsubscribe.js";

function assertNever(x: never): never {
  throw new TypeError(`unknown packet type ${JSON.stringify((x as { type?: unknown }).type)}`);
}

function checkVersion(version: ProtocolVersion): void {
  if (version !== 3 && version !== 4 && version !== 5) throw new RangeError(`unsupported protocol version ${String(version)}`);
}

function remainingLength(p: Packet, version: ProtocolVersion): number {
  switch (p.type) {
    case "publish":
      return publishLength(p, version);
    case "connect":
      return connectLength(p, version);
    case "connack":
      return connackLength(p, version);
    case "puback":
    case "pubrec":
    case "pubrel":
    case "pubcomp":
      return ackLength(p, version);
    case "subscribe":
      return subscribeLength(p, version);
    case "suback":
      return subackLength(p, version);
    case "unsubscribe":
      return unsubscribeLength(p, version);
    case "unsuback":
      return unsubackLength(p, version);
    case "pingreq":
    case "pingresp":
      return 0;
    case "disconnect":
    case "auth":
      return reasonLength(p, version);
    default:
      return assertNever(p);
  }
}

function writeBody(w: Writer, p: Packet, version: ProtocolVersion, withPayload: boolean): void {
  switch (p.type) {
    case "publish":
      return writePublish(w, p, version, withPayload);
    case "connect":
      return writeConnect(w, p, version);
    case "connack":
      return writeConnack(w, p, version);
    case "puback":
    case "pubrec":
    case "pubrel":
    case "pubcomp":
      return writeAck(w, p, version);
    case "subscribe":
      return writeSubscribe(w, p, version);
    case "suback":
      return writeSuback(w, p, version);
    case "unsubscribe":
      return writeUnsubscribe(w, p, version);
    case "unsuback":
      return writeUnsuback(w, p, version);
    case "pingreq":
    case "pingresp":
      return;
    case "disconnect":
    case "auth":
      return writeReason(w, p, version);
    default:
      return assertNever(p);
  }
}

function sized(p: Packet, version: ProtocolVersion): number {
  checkVersion(version);
  const rl = remainingLength(p, version);
  if (rl > MAX_VARINT) throw new RangeError(`${p.type} of ${rl} bytes exceeds the maximum remaining length ${MAX_VARINT}`);
  return rl;
}

/** Bytes `packet` takes on the wire in `version`, fixed header included. */
export function encodedLength(packet: Packet, version: ProtocolVersion): number {
  const rl = sized(packet, version);
  return 1 + varintSize(rl) + rl;
}

const EMPTY = new Uint8Array(0);
/** One Writer reused by every encode (encoding is synchronous); it drops the target afterwards. */
const writer = new Writer(EMPTY, 0);

/** Writes `total` bytes at target[offset]: the whole packet, or all but a PUBLISH payload. */
function write(packet: Packet, version: ProtocolVersion, rl: number, target: Uint8Array, offset: number, total: number, withPayload: boolean): number {
  const w = writer;
  w.buf = target;
  w.pos = offset;
  try {
    w.u8(packet.type === "publish" ? 0x30 | publishFlags(packet) : fixedByte(packet.type));
    w.varint(rl);
    writeBody(w, packet, version, withPayload);
    if (w.pos - offset !== total) throw new Error(`internal: ${packet.type} sized ${total} bytes but wrote ${w.pos - offset}`);
  } finally {
    w.buf = EMPTY;
  }
  return total;
}

/**
 * Results are carved out of shared slabs, like the pool behind Node's allocUnsafe: a fresh
 * ArrayBuffer per packet costs more than encoding it (allocation, zero fill, GC of the backing
 * store). Packets up to 4 KiB come from 64 KiB slabs, packets up to 32 KiB from 256 KiB slabs,
 * so a slab's allocation is shared by at least 8 of them. Views never overlap and a full slab is
 * dropped, never reused. The cost: a result keeps its whole slab alive (up to 256 KiB) as long as
 * it is referenced, and its `.buffer` must not be transferred or detached. Larger packets get an
 * exact-size array of their own: there the zero fill and the copy dominate and a slab measured no
 * faster (docs/benchmarks.md, Codec); send their payload uncopied with encodeHeader instead.
 */
const SMALL_SLAB = 64 * 1024;
const SMALL_MAX = 4 * 1024;
const LARGE_SLAB = 256 * 1024;
const LARGE_MAX = 32 * 1024;
let small = new ArrayBuffer(SMALL_SLAB);
let smallOffset = 0;
let large: ArrayBuffer | undefined;
let largeOffset = LARGE_SLAB;

function allocate(n: number): Uint8Array {
  let out: Uint8Array;
  if (n <= SMALL_MAX) {
    if (smallOffset + n > SMALL_SLAB) {
      small = new ArrayBuffer(SMALL_SLAB);
      smallOffset = 0;
    }
    // a view from the constructor is cheaper than slab.subarray (no species lookup)
    out = new Uint8Array(small, smallOffset, n);
    // keep views 8-byte aligned, as Buffer's pool does
    smallOffset = (smallOffset + n + 7) & ~7;
  } else if (n <= LARGE_MAX) {
    if (large === undefined || largeOffset + n > LARGE_SLAB) {
      large = new ArrayBuffer(LARGE_SLAB);
      largeOffset = 0;
    }
    out = new Uint8Array(large, largeOffset, n);
    largeOffset = (largeOffset + n + 7) & ~7;
  } else out = new Uint8Array(n);
  return out;
}

function checkTarget(packet: Packet, n: number, target: Uint8Array, offset: number): void {
  if (!Number.isInteger(offset) || offset < 0 || offset + n > target.length) {
    throw new RangeError(`${packet.type} needs ${n} bytes at offset ${offset} of a ${target.length}-byte buffer`);
  }
}

/** Writes `packet` at `target[offset]`; returns the bytes written. Throws RangeError if it does not fit. */
export function encodeInto(packet: Packet, version: ProtocolVersion, target: Uint8Array, offset: number): number {
  const rl = sized(packet, version);
  const total = 1 + varintSize(rl) + rl;
  checkTarget(packet, total, target, offset);
  return write(packet, version, rl, target, offset, total, true);
}

/**
 * `packet` as a new Uint8Array of exactly its size. Results up to 32 KiB are views into shared
 * slabs (see `allocate`); use encodeInto to write into a buffer you own.
 */
export function encode(packet: Packet, version: ProtocolVersion): Uint8Array {
  const rl = sized(packet, version);
  const total = 1 + varintSize(rl) + rl;
  const out = allocate(total);
  write(packet, version, rl, out, 0, total, true);
  return out;
}

/** The payload encodeHeader leaves out: a PUBLISH's application message, nothing for other kinds. */
function payloadOf(packet: Packet): Uint8Array {
  return packet.type === "publish" ? packet.payload : EMPTY;
}

/** Bytes encodeHeader writes: encodedLength minus a PUBLISH's payload. */
export function encodedHeaderLength(packet: Packet, version: ProtocolVersion): number {
  const rl = sized(packet, version);
  return 1 + varintSize(rl) + rl - payloadOf(packet).length;
}

/**
 * Writes `packet` at `target[offset]` except a PUBLISH's payload, which the caller sends as the
 * next chunk itself (e.g. `socket.cork(); write(header); write(payload); uncork()`, or writev),
 * so a large payload is never copied. Returns the bytes written (encodedHeaderLength). For other
 * packet kinds it writes the whole packet, like encodeInto.
 */
export function encodeHeader(packet: Packet, version: ProtocolVersion, target: Uint8Array, offset: number): number {
  const rl = sized(packet, version);
  const n = 1 + varintSize(rl) + rl - payloadOf(packet).length;
  checkTarget(packet, n, target, offset);
  return write(packet, version, rl, target, offset, n, false);
}
