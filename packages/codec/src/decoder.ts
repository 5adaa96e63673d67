// The incremental Decoder: chunks of any size in, packets or one typed DecodeError out. It reads
// the fixed header as soon as its bytes arrive (so an oversized packet is refused before its body
// is buffered), then parses the packet from the chunk itself when it lies in one chunk (PUBLISH
// payloads are views of it) or from one exact-size copy when it spans chunks.
import { parseAck } from "./ack.js";
import { parseConnack } from "./connack.js";
import { parseConnect } from "./connect.js";
import { parseAuth, parseDisconnect } from "./disconnect.js";
import { validFlags } from "./header.js";
import type { Packet, ProtocolVersion } from "./packets.js";
import { MALFORMED, MAX_VARINT, Malformed, Reader, fail } from "./primitives.js";
import { parsePublish } from "./publish.js";
import { parseSuback } from "./suback.js";
import { parseSubscribe } from "./subscribe.js";
import { parseUnsuback } from "./unsuback.js";
import { parseUnsubscribe } from "./unsubscribe.js";

export interface DecodeError {
  readonly type: "error";
  /** MQTT 5 reason code: 0x81 malformed, 0x82 protocol error, 0x84 unsupported version, 0x95 too large, 0x99 payload format. */
  readonly code: number;
  readonly message: string;
  /**
   * Only with code 0x84: the protocol level the CONNECT asked for, so the server can answer in a
   * format the client may understand (CONNACK 0x01 for levels below 5, 0x84 from 5 on).
   */
  readonly protocolLevel?: number;
}

export interface DecoderOptions {
  /** The protocol version, when known up front (a client); else learned from the first CONNECT. */
  readonly version?: ProtocolVersion;
  /** Largest packet accepted, fixed header included (default 268435455 + 5). */
  readonly maxPacketSize?: number;
}

const PACKET_TOO_LARGE = 0x95;
const NOTHING = new Uint8Array(0);
/** Before the first CONNECT a packet of another type is decoded as 3.1.1 (the core rejects it). */
const DEFAULT_VERSION: ProtocolVersion = 4;

// Per-connection memory (issue 7: a broker holds thousands of idle connections): a decoder gets
// its own Reader, whose topic cache is the only state a parse keeps across packets, on its first
// PUBLISH; other packets are parsed with this shared one (a parse runs to completion
// synchronously, and the Reader is reset after it, so no two decoders ever use it at once).
const sharedReader = new Reader(NOTHING, 0, 0);
/** The decoder whose CONNECT is being parsed, for `learnConnectVersion` (one function for every
 *  decoder rather than a closure each). */
let learner: Decoder | undefined;
function learnConnectVersion(v: ProtocolVersion): void {
  if (learner !== undefined && learner.version === undefined) learner.version = v;
}

export class Decoder {
  /** Known protocol version: given in options, or learned from the first CONNECT. Settable. */
  version: ProtocolVersion | undefined;
  private readonly maxPacketSize: number;
  /** Pending chunks; chunks[head] is consumed up to `offset`. Starts as one consumed slot (head
   *  1), so the first chunk reuses it without growing the array. */
  private chunks: Uint8Array[] = [NOTHING];
  private head = 1;
  private offset = 0;
  private total = 0;
  /** Length of the packet being assembled (fixed header included), or -1 before its header is read. */
  private packetLength = -1;
  private headerLength = 0;
  private error: DecodeError | undefined = undefined;
  /** This stream's Reader (and topic cache), made on its first PUBLISH. */
  private reader: Reader | undefined = undefined;

  constructor(options: DecoderOptions = {}) {
    this.version = options.version;
    this.maxPacketSize = options.maxPacketSize ?? MAX_VARINT + 5;
  }

  /** Bytes buffered but not yet decoded. */
  get buffered(): number {
    return this.total;
  }

  /** Appends a chunk of any size. After an error the decoder ignores further input. */
  push(chunk: Uint8Array): void {
    if (this.error !== undefined || chunk.length === 0) return;
    if (this.head === this.chunks.length) {
      // everything consumed: reuse slot 0 (the common case of one chunk per read)
      this.head = 0;
      this.offset = 0;
      this.chunks[0] = chunk;
      if (this.chunks.length !== 1) this.chunks.length = 1;
    } else this.chunks.push(chunk);
    this.total += chunk.length;
  }

  /** Next complete packet, a DecodeError (then forever the same one), or undefined for "need more bytes". Never throws. */
  next(): Packet | DecodeError | undefined {
    if (this.error !== undefined) return this.error;
    try {
      return this.step();
    } catch (e) {
      const error: DecodeError =
        e instanceof Malformed
          ? e.protocolLevel === undefined
            ? { type: "error", code: e.code, message: e.message }
            : { type: "error", code: e.code, message: e.message, protocolLevel: e.protocolLevel }
          : { type: "error", code: MALFORMED, message: `internal decoder error: ${String(e)}` };
      this.error = error;
      this.chunks = [];
      this.head = 0;
      this.offset = 0;
      this.total = 0;
      sharedReader.buf = NOTHING;
      if (this.reader !== undefined) this.reader.buf = NOTHING;
      learner = undefined;
      return error;
    }
  }

  private byteAt(i: number): number {
    let k = this.head;
    let idx = this.offset + i;
    for (;;) {
      const c = this.chunks[k]!;
      if (idx < c.length) return c[idx]!;
      idx -= c.length;
      k++;
    }
  }

  /** Reads the fixed header if its bytes are here; false when more are needed. */
  private readHeader(): boolean {
    const total = this.total;
    if (total < 2) return false;
    const first = this.byteAt(0);
    const type = first >> 4;
    if (type === 0) fail("reserved packet type 0");
    // [MQTT-2.2.2-1] [MQTT-2.2.2-2] (5.0 [MQTT-2.1.3-1]) reserved flag bits have fixed values
    if (!validFlags(type, first & 0x0f, this.version ?? DEFAULT_VERSION)) {
      fail(`invalid fixed header flags 0x${(first & 0x0f).toString(16)} for packet type ${type}`);
    }
    let remaining = 0;
    let mult = 1;
    for (let i = 1; ; i++) {
      if (i > 4) fail("remaining length over 4 bytes");
      if (i >= total) return false;
      const c = this.byteAt(i);
      remaining += (c & 0x7f) * mult;
      if ((c & 0x80) === 0) {
        if (c === 0 && i > 1) fail("over-long remaining length encoding"); // [MQTT-1.5.5-1]
        this.headerLength = i + 1;
        break;
      }
      mult *= 128;
    }
    const length = this.headerLength + remaining;
    if (length > this.maxPacketSize) {
      fail(`packet of ${length} bytes exceeds the maximum packet size ${this.maxPacketSize}`, PACKET_TOO_LARGE);
    }
    this.packetLength = length;
    return true;
  }

  private step(): Packet | undefined {
    if (this.packetLength < 0 && !this.readHeader()) return undefined;
    const length = this.packetLength;
    if (this.total < length) return undefined;
    // Take the packet's bytes: in place when they lie in the head chunk, else one exact copy.
    let buf = this.chunks[this.head]!;
    let start = this.offset;
    if (buf.length - start >= length) {
      this.offset += length;
      if (this.offset === buf.length) this.dropHead();
    } else {
      const copy = new Uint8Array(length);
      let filled = 0;
      while (filled < length) {
        const c = this.chunks[this.head]!;
        const take = Math.min(c.length - this.offset, length - filled);
        copy.set(c.subarray(this.offset, this.offset + take), filled);
        filled += take;
        this.offset += take;
        if (this.offset === c.length) this.dropHead();
      }
      buf = copy;
      start = 0;
    }
    this.total -= length;
    this.packetLength = -1;
    if (this.head > 64) {
      this.chunks.splice(0, this.head);
      this.head = 0;
    }
    const r = buf[start]! >> 4 === 3 ? (this.reader ??= new Reader(NOTHING, 0, 0)) : sharedReader;
    r.buf = buf;
    r.pos = start + this.headerLength;
    r.end = start + length;
    const packet = this.parse(buf[start]!, r);
    r.buf = NOTHING; // keep no reference to a consumed chunk
    return packet;
  }

  private dropHead(): void {
    this.chunks[this.head] = NOTHING;
    this.head++;
    this.offset = 0;
  }

  private parse(first: number, r: Reader): Packet {
    const type = first >> 4;
    const version = this.version ?? DEFAULT_VERSION;
    switch (type) {
      case 1:
        // the version is known from the protocol level on, even if the rest of the CONNECT is
        // malformed: the server can then answer in the client's format
        learner = this;
        try {
          return parseConnect(r, learnConnectVersion);
        } finally {
          learner = undefined;
        }
      case 2:
        return parseConnack(r, version);
      case 3:
        return parsePublish(r, first & 0x0f, version);
      case 4:
        return parseAck(r, "puback", version);
      case 5:
        return parseAck(r, "pubrec", version);
      case 6:
        return parseAck(r, "pubrel", version);
      case 7:
        return parseAck(r, "pubcomp", version);
      case 8:
        return parseSubscribe(r, version);
      case 9:
        return parseSuback(r, version);
      case 10:
        return parseUnsubscribe(r, version);
      case 11:
        return parseUnsuback(r, version);
      case 12:
        r.done("PINGREQ");
        return { type: "pingreq" };
      case 13:
        r.done("PINGRESP");
        return { type: "pingresp" };
      case 14:
        return parseDisconnect(r, version);
      case 15:
        return parseAuth(r, version);
      default:
        return fail(`reserved packet type ${type}`);
    }
  }
}
