// Shared wire primitives (section 1.5 of both specs): bounds-checked Reader, sized Writer,
// variable byte integers, two/four byte integers, UTF-8 strings with the MQTT rules, binary data.
// The Reader reports malformed input by throwing a `Malformed` value that the Decoder turns into
// a DecodeError; nothing thrown here escapes the package.

export const MALFORMED = 0x81;
export const PROTOCOL_ERROR = 0x82;
export const MAX_VARINT = 268_435_455;

/** The `properties` of every decoded packet without properties: one shared, frozen `{}`. */
export const EMPTY_PROPERTIES: Record<string, never> = Object.freeze({}) as Record<string, never>;

/** Internal signal for bad input; caught by the Decoder and returned as a DecodeError. */
export class Malformed {
  constructor(
    readonly code: number,
    readonly message: string,
    /** For 0x84: the protocol level byte the CONNECT asked for. */
    readonly protocolLevel?: number,
  ) {}
}

export function fail(message: string, code: number = MALFORMED): never {
  throw new Malformed(code, message);
}

// ---------------------------------------------------------------------------------------------
// UTF-8
// ---------------------------------------------------------------------------------------------

/** Number of bytes `s` takes in UTF-8 (lone surrogates count 3, as their replacement would). */
export function utf8Length(s: string): number {
  const n = s.length;
  let len = n;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) len += 1;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < n) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        len += 2; // 4 bytes for 2 code units
        i++;
      } else len += 2;
    } else len += 2;
  }
  return len;
}

/**
 * Why a JS string cannot be sent as an MQTT UTF-8 string, or undefined if it can:
 * [MQTT-1.5.3-1] / [MQTT-1.5.4-1] no lone surrogates, [MQTT-1.5.3-2] / [MQTT-1.5.4-2] no U+0000.
 */
export function utf8Problem(s: string): string | undefined {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0) return "contains U+0000";
    if (c >= 0xd800 && c <= 0xdfff) {
      const d = s.charCodeAt(i + 1);
      if (c <= 0xdbff && d >= 0xdc00 && d <= 0xdfff) i++;
      else return "contains a lone surrogate";
    }
  }
  return undefined;
}

const fromCharCode = String.fromCharCode;

/** The platform TextDecoder when there is one (every supported runtime has it; not in the ES lib types). */
const textDecoder: { decode(b: Uint8Array): string } | undefined = (() => {
  const TD = (globalThis as { TextDecoder?: new (label: string) => { decode(b: Uint8Array): string } }).TextDecoder;
  return TD === undefined ? undefined : new TD("utf-8");
})();

/** Bytes [start, end) known to be ASCII without U+0000, as a string. */
export function asciiString(b: Uint8Array, start: number, end: number): string {
  const n = end - start;
  if (n <= 12) {
    let s = "";
    for (let j = start; j < end; j++) s += fromCharCode(b[j]!);
    return s;
  }
  return textDecoder !== undefined ? textDecoder.decode(b.subarray(start, end)) : codeUnitsToString(b, start, end);
}

/**
 * A small direct-mapped cache of ASCII topic strings, one per Decoder: a broker sees the same
 * topics again and again, and comparing bytes with a cached string is cheaper than building one.
 */
export class TopicCache {
  private readonly strings: string[] = new Array<string>(128).fill("");

  /** The cached string equal to ASCII bytes [start, end) with the given hash, or undefined. */
  get(b: Uint8Array, start: number, end: number, hash: number): string | undefined {
    const s = this.strings[hash & 127]!;
    const n = end - start;
    if (s.length !== n || n === 0) return undefined;
    for (let i = 0; i < n; i++) if (s.charCodeAt(i) !== b[start + i]) return undefined;
    return s;
  }

  set(s: string, hash: number): void {
    if (s.length <= 512) this.strings[hash & 127] = s;
  }
}

/**
 * Decodes bytes [start, end) as an MQTT UTF-8 string, or returns undefined when they are not
 * well-formed UTF-8 (overlong forms, surrogates, > U+10FFFF, truncation) or when `allowNull` is
 * false and they encode U+0000. U+FEFF is kept ([MQTT-1.5.3-3] / [MQTT-1.5.4-3]).
 */
export function decodeUtf8(b: Uint8Array, start: number, end: number, allowNull = false): string | undefined {
  // ASCII fast path: topic names and client ids are nearly always ASCII
  let i = start;
  while (i < end) {
    const c = b[i]!;
    if (c >= 0x80 || c === 0) break;
    i++;
  }
  if (i === end) return asciiString(b, start, end);
  const units = new Uint16Array(end - start);
  let u = 0;
  for (let j = start; j < i; j++) units[u++] = b[j]!;
  while (i < end) {
    const c = b[i]!;
    if (c < 0x80) {
      if (c === 0 && !allowNull) return undefined;
      units[u++] = c;
      i++;
      continue;
    }
    let cp: number;
    let need: number;
    let min: number;
    if (c >= 0xc2 && c <= 0xdf) {
      cp = c & 0x1f;
      need = 1;
      min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
      cp = c & 0x0f;
      need = 2;
      min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
      cp = c & 0x07;
      need = 3;
      min = 0x10000;
    } else return undefined; // continuation byte, C0/C1 overlong lead or > U+10FFFF
    if (i + need >= end) return undefined; // truncated sequence
    for (let k = 1; k <= need; k++) {
      const cc = b[i + k]!;
      if ((cc & 0xc0) !== 0x80) return undefined;
      cp = (cp << 6) | (cc & 0x3f);
    }
    if (cp < min || cp > 0x10ffff) return undefined; // overlong or out of range
    if (cp >= 0xd800 && cp <= 0xdfff) return undefined; // [MQTT-1.5.4-1] encoded surrogate
    if (cp >= 0x10000) {
      const v = cp - 0x10000;
      units[u++] = 0xd800 | (v >> 10);
      units[u++] = 0xdc00 | (v & 0x3ff);
    } else units[u++] = cp;
    i += need + 1;
  }
  return codeUnitsToString(units, 0, u);
}

function codeUnitsToString(a: Uint8Array | Uint16Array, start: number, end: number): string {
  let s = "";
  for (let j = start; j < end; j += 4096) {
    s += fromCharCode.apply(null, a.subarray(j, Math.min(end, j + 4096)) as unknown as number[]);
  }
  return s;
}

/** Writes `s` as UTF-8 at `pos`, returns the new position. Caller checked it with utf8Problem. */
export function writeUtf8Raw(buf: Uint8Array, pos: number, s: string): number {
  const n = s.length;
  for (let i = 0; i < n; i++) {
    let c = s.charCodeAt(i);
    if (c < 0x80) {
      buf[pos++] = c;
    } else if (c < 0x800) {
      buf[pos++] = 0xc0 | (c >> 6);
      buf[pos++] = 0x80 | (c & 0x3f);
    } else if (c >= 0xd800 && c <= 0xdbff) {
      const d = s.charCodeAt(++i);
      c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
      buf[pos++] = 0xf0 | (c >> 18);
      buf[pos++] = 0x80 | ((c >> 12) & 0x3f);
      buf[pos++] = 0x80 | ((c >> 6) & 0x3f);
      buf[pos++] = 0x80 | (c & 0x3f);
    } else {
      buf[pos++] = 0xe0 | (c >> 12);
      buf[pos++] = 0x80 | ((c >> 6) & 0x3f);
      buf[pos++] = 0x80 | (c & 0x3f);
    }
  }
  return pos;
}

// ---------------------------------------------------------------------------------------------
// Variable byte integer
// ---------------------------------------------------------------------------------------------

export function varintSize(n: number): number {
  return n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x200000 ? 3 : 4;
}

// ---------------------------------------------------------------------------------------------
// Reader
// ---------------------------------------------------------------------------------------------

/** Bounds-checked cursor over one packet's bytes; every read past `end` is malformed. */
export class Reader {
  buf: Uint8Array;
  pos: number;
  end: number;
  /** Topic strings seen recently on this stream (PUBLISH topics). */
  readonly topics = new TopicCache();
  constructor(buf: Uint8Array, pos: number, end: number) {
    this.buf = buf;
    this.pos = pos;
    this.end = end;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  u8(what: string): number {
    if (this.pos >= this.end) fail(`truncated ${what}`);
    return this.buf[this.pos++]!;
  }

  u16(what: string): number {
    const p = this.pos;
    if (p + 2 > this.end) fail(`truncated ${what}`);
    this.pos = p + 2;
    return (this.buf[p]! << 8) | this.buf[p + 1]!;
  }

  u32(what: string): number {
    const p = this.pos;
    if (p + 4 > this.end) fail(`truncated ${what}`);
    this.pos = p + 4;
    const b = this.buf;
    return b[p]! * 0x1000000 + ((b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!);
  }

  /** Variable byte integer, at most 4 bytes and minimally encoded ([MQTT-1.5.5-1]). */
  varint(what: string): number {
    let value = 0;
    let mult = 1;
    for (let i = 0; i < 4; i++) {
      const c = this.u8(what);
      value += (c & 0x7f) * mult;
      if ((c & 0x80) === 0) {
        // [MQTT-1.5.5-1] a trailing zero byte means the value fitted in fewer bytes
        if (c === 0 && i > 0) fail(`over-long variable byte integer in ${what}`);
        return value;
      }
      mult *= 128;
    }
    return fail(`variable byte integer over 4 bytes in ${what}`);
  }

  /** UTF-8 encoded string ([MQTT-1.5.3-1..3] / [MQTT-1.5.4-1..3]). */
  utf8(what: string): string {
    const len = this.u16(what);
    const start = this.pos;
    const end = start + len;
    if (end > this.end) fail(`truncated ${what}`);
    const s = decodeUtf8(this.buf, start, end);
    if (s === undefined) fail(`${what} is not valid MQTT UTF-8 (ill-formed, surrogate or U+0000)`);
    this.pos = end;
    return s;
  }

  /** Binary data: two byte length then bytes; returned as a view into the packet's buffer. */
  binary(what: string): Uint8Array {
    const len = this.u16(what);
    const start = this.pos;
    if (start + len > this.end) fail(`truncated ${what}`);
    this.pos = start + len;
    return this.buf.subarray(start, start + len);
  }

  /** The rest of the packet, as a view. */
  rest(): Uint8Array {
    const v = this.buf.subarray(this.pos, this.end);
    this.pos = this.end;
    return v;
  }

  /** The declared remaining length must match the content exactly (no trailing bytes). */
  done(what: string): void {
    if (this.pos !== this.end) fail(`${this.end - this.pos} unexpected trailing bytes in ${what}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Writer
// ---------------------------------------------------------------------------------------------

/** Cursor over a caller-sized buffer; the encoder sized it exactly, so writes are unchecked. */
export class Writer {
  buf: Uint8Array;
  pos: number;
  constructor(buf: Uint8Array, pos: number) {
    this.buf = buf;
    this.pos = pos;
  }

  u8(n: number): void {
    this.buf[this.pos++] = n;
  }

  u16(n: number): void {
    const b = this.buf;
    b[this.pos++] = n >>> 8;
    b[this.pos++] = n & 0xff;
  }

  u32(n: number): void {
    const b = this.buf;
    b[this.pos++] = n >>> 24;
    b[this.pos++] = (n >>> 16) & 0xff;
    b[this.pos++] = (n >>> 8) & 0xff;
    b[this.pos++] = n & 0xff;
  }

  /** `n` is at most MAX_VARINT (< 2^28), so 32-bit shifts are exact. */
  varint(n: number): void {
    const b = this.buf;
    do {
      let c = n & 0x7f;
      n >>>= 7;
      if (n > 0) c |= 0x80;
      b[this.pos++] = c;
    } while (n > 0);
  }

  /** Two byte length + UTF-8 bytes; `len` is utf8Length(s), computed while sizing. */
  utf8(s: string, len: number): void {
    this.u16(len);
    this.pos = writeUtf8Raw(this.buf, this.pos, s);
  }

  binary(data: Uint8Array): void {
    this.u16(data.length);
    this.buf.set(data, this.pos);
    this.pos += data.length;
  }

  bytes(data: Uint8Array): void {
    this.buf.set(data, this.pos);
    this.pos += data.length;
  }
}

// ---------------------------------------------------------------------------------------------
// Encoder-side validation (caller bugs throw)
// ---------------------------------------------------------------------------------------------

/** Size of a two-byte-length-prefixed string after checking it can be sent. */
export function stringSize(s: string, what: string): number {
  if (typeof s !== "string") throw new TypeError(`${what} must be a string`);
  const problem = utf8Problem(s);
  if (problem !== undefined) throw new TypeError(`${what} ${problem}`); // [MQTT-1.5.4-1] [MQTT-1.5.4-2]
  const len = utf8Length(s);
  if (len > 0xffff) throw new RangeError(`${what} is ${len} bytes in UTF-8, over 65535`);
  return 2 + len;
}

export function binarySize(b: Uint8Array, what: string): number {
  if (!(b instanceof Uint8Array)) throw new TypeError(`${what} must be a Uint8Array`);
  if (b.length > 0xffff) throw new RangeError(`${what} is ${b.length} bytes, over 65535`);
  return 2 + b.length;
}

export function checkInt(n: number, min: number, max: number, what: string): void {
  if (!Number.isInteger(n) || n < min || n > max) throw new RangeError(`${what} must be an integer in ${min}..${max}, got ${n}`);
}

export function checkPacketId(id: number | undefined, what: string): number {
  // [MQTT-2.3.1-1] non-zero 16-bit packet identifier
  if (id === undefined) throw new TypeError(`${what} requires a packetId`);
  checkInt(id, 1, 0xffff, `${what} packetId`);
  return id;
}
