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

function writeBody(w: Writer, p: Packet, version: ProtocolVersion): void {
  switch (p.type) {
    case "publish":
      return writePublish(w, p, version);
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

function write(packet: Packet, version: ProtocolVersion, rl: number, target: Uint8Array, offset: number): number {
  const total = 1 + varintSize(rl) + rl;
  const w = writer;
  w.buf = target;
  w.pos = offset;
  try {
    w.u8(packet.type === "publish" ? 0x30 | publishFlags(packet) : fixedByte(packet.type));
    w.varint(rl);
    writeBody(w, packet, version);
    if (w.pos - offset !== total) throw new Error(`internal: ${packet.type} sized ${total} bytes but wrote ${w.pos - offset}`);
  } finally {
    w.buf = EMPTY;
  }
  return total;
}

/**
 * Small packets are carved out of a shared slab, like Node's Buffer.allocUnsafe pool: allocating
 * a fresh ArrayBuffer per packet costs more than encoding it. Views never overlap; a slab is
 * replaced, never reused, once full. (So do not transfer or detach the `.buffer` of a result.)
 */
const SLAB_SIZE = 64 * 1024;
const POOLED_MAX = 4 * 1024;
let slab = new Uint8Array(SLAB_SIZE);
let slabOffset = 0;

function allocate(n: number): Uint8Array {
  if (n > POOLED_MAX) return new Uint8Array(n);
  if (slabOffset + n > SLAB_SIZE) {
    slab = new Uint8Array(SLAB_SIZE);
    slabOffset = 0;
  }
  const out = slab.subarray(slabOffset, slabOffset + n);
  // keep views 8-byte aligned, as Buffer's pool does
  slabOffset = (slabOffset + n + 7) & ~7;
  return out;
}

/** Writes `packet` at `target[offset]`; returns the bytes written. Throws RangeError if it does not fit. */
export function encodeInto(packet: Packet, version: ProtocolVersion, target: Uint8Array, offset: number): number {
  const rl = sized(packet, version);
  const total = 1 + varintSize(rl) + rl;
  if (!Number.isInteger(offset) || offset < 0 || offset + total > target.length) {
    throw new RangeError(`${packet.type} needs ${total} bytes at offset ${offset} of a ${target.length}-byte buffer`);
  }
  return write(packet, version, rl, target, offset);
}

/**
 * `packet` as a new Uint8Array of exactly its size. Small results are views into a shared slab
 * (see `allocate`); use encodeInto to write into a buffer you own.
 */
export function encode(packet: Packet, version: ProtocolVersion): Uint8Array {
  const rl = sized(packet, version);
  const out = allocate(1 + varintSize(rl) + rl);
  write(packet, version, rl, out, 0);
  return out;
}
