// MQTT 5 properties (section 2.2.2): one table says, for every property id, its name in
// `Properties`, its wire type, which packets may carry it, whether it may repeat there, and its
// valid range. Both the parser and the encoder are driven by this table.
import type { Properties, UserProperty } from "./packets.js";
import {
  EMPTY_PROPERTIES,
  PROTOCOL_ERROR,
  type Reader,
  type Writer,
  binarySize,
  checkInt,
  decodeUtf8,
  fail,
  stringSize,
  utf8Length,
  varintSize,
} from "./primitives.js";
import { isValidTopicName } from "./topic.js";

/** Where a property list sits: a packet kind, or the will properties of CONNECT. */
export type PropertyContext =
  | "connect"
  | "will"
  | "connack"
  | "publish"
  | "puback"
  | "pubrec"
  | "pubrel"
  | "pubcomp"
  | "subscribe"
  | "suback"
  | "unsubscribe"
  | "unsuback"
  | "disconnect"
  | "auth";

const bit: Record<PropertyContext, number> = {
  connect: 1 << 0,
  will: 1 << 1,
  connack: 1 << 2,
  publish: 1 << 3,
  puback: 1 << 4,
  pubrec: 1 << 5,
  pubrel: 1 << 6,
  pubcomp: 1 << 7,
  subscribe: 1 << 8,
  suback: 1 << 9,
  unsubscribe: 1 << 10,
  unsuback: 1 << 11,
  disconnect: 1 << 12,
  auth: 1 << 13,
};
const mask = (...cs: PropertyContext[]): number => cs.reduce((m, c) => m | bit[c], 0);
const ALL = mask(...(Object.keys(bit) as PropertyContext[]));

type WireType = "byte" | "u16" | "u32" | "varint" | "string" | "binary" | "pair";

interface PropertyDef {
  readonly id: number;
  readonly name: keyof Properties;
  readonly type: WireType;
  /** Contexts that may carry it. */
  readonly allowed: number;
  /** Contexts where it may appear more than once (its value is then an array). */
  readonly repeatable: number;
  /** Valid numeric range; a value outside it is a protocol error. */
  readonly min: number;
  readonly max: number;
}

const U16 = 0xffff;
const U32 = 0xffffffff;
const VBI = 268_435_455;

function def(id: number, name: keyof Properties, type: WireType, allowed: number, min = 0, max = 0, repeatable = 0): PropertyDef {
  return { id, name, type, allowed, repeatable, min, max };
}

const publishLike = mask("publish", "will");
const acks = mask("puback", "pubrec", "pubrel", "pubcomp", "suback", "unsuback");

/** Section 2.2.2.2, table 2-4. Byte-valued flags are 0 or 1 (other values are protocol errors). */
export const PROPERTY_TABLE: readonly PropertyDef[] = [
  def(0x01, "payloadFormatIndicator", "byte", publishLike, 0, 1),
  def(0x02, "messageExpiryInterval", "u32", publishLike, 0, U32),
  def(0x03, "contentType", "string", publishLike), // [MQTT-3.3.2-19]
  def(0x08, "responseTopic", "string", publishLike), // [MQTT-3.3.2-13] [MQTT-3.3.2-14]
  def(0x09, "correlationData", "binary", publishLike),
  // PUBLISH may carry several (one per matching subscription); SUBSCRIBE at most one. 0 is a protocol error.
  def(0x0b, "subscriptionIdentifiers", "varint", mask("publish", "subscribe"), 1, VBI, mask("publish", "subscribe")),
  def(0x11, "sessionExpiryInterval", "u32", mask("connect", "connack", "disconnect"), 0, U32),
  def(0x12, "assignedClientIdentifier", "string", mask("connack")),
  def(0x13, "serverKeepAlive", "u16", mask("connack"), 0, U16),
  def(0x15, "authenticationMethod", "string", mask("connect", "connack", "auth")),
  def(0x16, "authenticationData", "binary", mask("connect", "connack", "auth")),
  def(0x17, "requestProblemInformation", "byte", mask("connect"), 0, 1),
  def(0x18, "willDelayInterval", "u32", mask("will"), 0, U32),
  def(0x19, "requestResponseInformation", "byte", mask("connect"), 0, 1),
  def(0x1a, "responseInformation", "string", mask("connack")),
  def(0x1c, "serverReference", "string", mask("connack", "disconnect")),
  def(0x1f, "reasonString", "string", mask("connack", "disconnect", "auth") | acks),
  def(0x21, "receiveMaximum", "u16", mask("connect", "connack"), 1, U16),
  def(0x22, "topicAliasMaximum", "u16", mask("connect", "connack"), 0, U16),
  def(0x23, "topicAlias", "u16", mask("publish"), 1, U16),
  def(0x24, "maximumQoS", "byte", mask("connack"), 0, 1),
  def(0x25, "retainAvailable", "byte", mask("connack"), 0, 1),
  def(0x26, "userProperties", "pair", ALL, 0, 0, ALL),
  def(0x27, "maximumPacketSize", "u32", mask("connect", "connack"), 1, U32),
  def(0x28, "wildcardSubscriptionAvailable", "byte", mask("connack"), 0, 1),
  def(0x29, "subscriptionIdentifierAvailable", "byte", mask("connack"), 0, 1),
  def(0x2a, "sharedSubscriptionAvailable", "byte", mask("connack"), 0, 1),
];

const byId: (PropertyDef | undefined)[] = [];
const byName = new Map<string, PropertyDef>();
for (const d of PROPERTY_TABLE) {
  byId[d.id] = d;
  byName.set(d.name, d);
}

function hex(n: number): string {
  return `0x${n.toString(16).padStart(2, "0")}`;
}

// ---------------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------------

/** Reads a property length and the properties after it; the reader then stands after them. */
export function readProperties(r: Reader, ctx: PropertyContext): Properties {
  const len = r.varint("property length");
  if (len === 0) return EMPTY_PROPERTIES;
  const end = r.pos + len;
  if (end > r.end) fail(`property length ${len} runs past the end of the ${ctx} packet`);
  const outerEnd = r.end;
  r.end = end;
  const props: Record<string, unknown> = {};
  const b = bit[ctx];
  while (r.pos < end) {
    const id = r.varint("property identifier");
    const d = byId[id];
    // Section 2.2.2.2: an identifier not valid for the packet type makes it malformed
    if (d === undefined) fail(`unknown property identifier ${hex(id)} in ${ctx}`);
    if ((d.allowed & b) === 0) fail(`property ${d.name} (${hex(id)}) is not allowed in ${ctx}`);
    let value: unknown;
    switch (d.type) {
      case "byte":
        value = r.u8(d.name);
        break;
      case "u16":
        value = r.u16(d.name);
        break;
      case "u32":
        value = r.u32(d.name);
        break;
      case "varint":
        value = r.varint(d.name);
        break;
      case "string":
        value = r.utf8(d.name);
        break;
      case "binary":
        value = r.binary(d.name);
        break;
      case "pair": {
        // [MQTT-1.5.7-1] name and value each follow the UTF-8 string rules
        const k = r.utf8("user property name");
        const v = r.utf8("user property value");
        value = [k, v] satisfies UserProperty;
        break;
      }
    }
    if (typeof value === "number" && (value < d.min || value > d.max)) {
      fail(`property ${d.name} has invalid value ${value} in ${ctx}`, PROTOCOL_ERROR);
    }
    if (d.name === "responseTopic" && !isValidTopicName(value as string)) {
      fail(`response topic ${JSON.stringify(value)} is not a valid topic name`); // [MQTT-3.3.2-14]
    }
    const prev = props[d.name];
    if ((d.repeatable & b) !== 0 || d.type === "pair") {
      if (prev === undefined) props[d.name] = [value];
      else {
        // 5.0 section 3.8.2.1.2: SUBSCRIBE carries at most one Subscription Identifier
        if (d.name === "subscriptionIdentifiers" && ctx === "subscribe") {
          fail(`subscription identifier appears more than once in subscribe`, PROTOCOL_ERROR);
        }
        (prev as unknown[]).push(value);
      }
    } else {
      // Section 2.2.2.2: including a single-valued property twice is a protocol error
      if (prev !== undefined) fail(`property ${d.name} appears more than once in ${ctx}`, PROTOCOL_ERROR);
      props[d.name] = value;
    }
  }
  r.end = outerEnd;
  return props as Properties;
}

/** True when bytes are well-formed UTF-8 (payload format indicator 1); U+0000 is allowed there. */
export function isUtf8Payload(b: Uint8Array): boolean {
  return decodeUtf8(b, 0, b.length, true) !== undefined;
}

// ---------------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------------

function valueSize(d: PropertyDef, v: unknown, ctx: PropertyContext): number {
  switch (d.type) {
    case "byte":
      checkInt(v as number, d.min, d.max, d.name);
      return 1;
    case "u16":
      checkInt(v as number, d.min, d.max, d.name);
      return 2;
    case "u32":
      checkInt(v as number, d.min, d.max, d.name);
      return 4;
    case "varint":
      checkInt(v as number, d.min, d.max, d.name);
      return varintSize(v as number);
    case "string":
      if (d.name === "responseTopic" && !isValidTopicName(v as string)) {
        throw new TypeError(`responseTopic ${JSON.stringify(v)} is not a valid topic name`); // [MQTT-3.3.2-14]
      }
      return stringSize(v as string, `${ctx} ${d.name}`);
    case "binary":
      return binarySize(v as Uint8Array, `${ctx} ${d.name}`);
    case "pair": {
      const pair = v as UserProperty;
      if (!Array.isArray(pair) || pair.length !== 2) throw new TypeError("a user property is a [name, value] pair");
      return stringSize(pair[0], "user property name") + stringSize(pair[1], "user property value");
    }
  }
}

/** Bytes the property list takes on the wire: its length prefix and its content. */
export function propertiesLength(props: Properties, ctx: PropertyContext): number {
  const ps = propertiesSize(props, ctx);
  return varintSize(ps) + ps;
}

/** Byte length of the property list content (without its length prefix). Throws on caller bugs. */
export function propertiesSize(props: Properties, ctx: PropertyContext): number {
  let size = 0;
  const b = bit[ctx];
  for (const name in props) {
    const v = (props as Record<string, unknown>)[name];
    if (v === undefined) continue;
    const d = byName.get(name);
    if (d === undefined) throw new TypeError(`unknown property ${name}`);
    if ((d.allowed & b) === 0) throw new TypeError(`property ${name} is not allowed in ${ctx}`);
    const idSize = varintSize(d.id);
    if (d.type === "pair" || d.name === "subscriptionIdentifiers") {
      const list = v as readonly unknown[];
      if (!Array.isArray(list)) throw new TypeError(`property ${name} must be an array`);
      if (d.name === "subscriptionIdentifiers" && ctx !== "publish" && list.length > 1) {
        throw new TypeError(`${ctx} carries at most one subscription identifier`);
      }
      for (const item of list) size += idSize + valueSize(d, item, ctx);
    } else size += idSize + valueSize(d, v, ctx);
  }
  return size;
}

function writeValue(w: Writer, d: PropertyDef, v: unknown): void {
  switch (d.type) {
    case "byte":
      w.u8(v as number);
      return;
    case "u16":
      w.u16(v as number);
      return;
    case "u32":
      w.u32(v as number);
      return;
    case "varint":
      w.varint(v as number);
      return;
    case "string":
      w.utf8(v as string, utf8Length(v as string));
      return;
    case "binary":
      w.binary(v as Uint8Array);
      return;
    case "pair": {
      const [k, val] = v as UserProperty;
      w.utf8(k, utf8Length(k));
      w.utf8(val, utf8Length(val));
      return;
    }
  }
}

/** Writes the property length `size` (from propertiesSize) and the properties. */
export function writeProperties(w: Writer, props: Properties, size: number): void {
  w.varint(size);
  if (size === 0) return;
  for (const name in props) {
    const v = (props as Record<string, unknown>)[name];
    if (v === undefined) continue;
    const d = byName.get(name)!;
    if (d.type === "pair" || d.name === "subscriptionIdentifiers") {
      for (const item of v as readonly unknown[]) {
        w.varint(d.id);
        writeValue(w, d, item);
      }
    } else {
      w.varint(d.id);
      writeValue(w, d, v);
    }
  }
}
