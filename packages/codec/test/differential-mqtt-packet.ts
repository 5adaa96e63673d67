// Mapping between the harbormq packet model and mqtt-packet's (v9) objects, plus a canonical form
// both sides are compared in. Used by differential.test.ts; test-only (Buffer is fine here).
//
// mqtt-packet's model differs from ours in ways that lose information; the canonical form keeps
// only what both can represent:
// - user properties are an object (key -> value | value[]): the relative order of different keys
//   is lost (and integer-like keys are reordered by JS), the order of one key's values is kept;
// - "byte" properties (payloadFormatIndicator, requestProblemInformation, ...) are booleans;
// - a repeated property becomes an array, a single one a scalar (subscriptionIdentifier);
// - empty properties are absent; binary data is a Buffer.
import { Buffer } from "node:buffer";
import * as mqttPacket from "mqtt-packet";
import type { Packet, Properties, ProtocolVersion, QoS, Subscription, UserProperty } from "@harbormq/codec";

/** An mqtt-packet packet object (loosely typed: its own typings omit fields it emits). */
export type MqttObject = Record<string, unknown> & { cmd: string };

// Property names that differ between the two models (ours -> mqtt-packet).
const renamed: Record<string, string> = {
  subscriptionIdentifiers: "subscriptionIdentifier",
  subscriptionIdentifierAvailable: "subscriptionIdentifiersAvailable",
};
const renamedBack: Record<string, string> = Object.fromEntries(Object.entries(renamed).map(([a, b]) => [b, a]));

/** Properties mqtt-packet types as "byte" and models as booleans. */
const booleanProps = new Set([
  "payloadFormatIndicator",
  "requestProblemInformation",
  "requestResponseInformation",
  "retainAvailable",
  "wildcardSubscriptionAvailable",
  "subscriptionIdentifierAvailable",
  "sharedSubscriptionAvailable",
]);
const binaryProps = new Set(["correlationData", "authenticationData"]);

const buf = (u: Uint8Array): Buffer => Buffer.from(u.buffer, u.byteOffset, u.byteLength);

/** Why `p` cannot be expressed in mqtt-packet's model without loss (undefined if it can). */
export function unrepresentable(p: Packet): string | undefined {
  const props: Properties[] = [];
  if ("properties" in p) props.push(p.properties);
  if (p.type === "connect" && p.will !== undefined) props.push(p.will.properties);
  for (const pr of props) {
    for (const name of booleanProps) {
      const v = (pr as Record<string, unknown>)[name];
      if (v !== undefined && v !== 0 && v !== 1) return `${name}=${String(v)} is not a boolean`;
    }
  }
  return undefined;
}

/** Where mqtt-packet's parser loses or rejects what a valid encoding of `p` carries (undefined
 *  if it does not); see the dedicated tests in differential.test.ts. */
export function mqttParserDeparts(p: Packet, version: ProtocolVersion): string | undefined {
  // 5.0 section 3.15.2.1: AUTH Success without properties may (and our encoder does) use
  // Remaining Length 0; mqtt-packet then reads a missing reason code and rejects the packet.
  if (version === 5 && p.type === "auth" && p.reasonCode === 0 && Object.keys(p.properties).length === 0) {
    return "AUTH with Remaining Length 0";
  }
  // [MQTT-3.3.2-17] user properties must survive unchanged: mqtt-packet's parser tests a key's
  // previous value for truthiness, so a repeated key whose first value is "" loses that value.
  const props: Properties[] = [];
  if ("properties" in p) props.push(p.properties);
  if (p.type === "connect" && p.will !== undefined) props.push(p.will.properties);
  for (const pr of props) {
    const seen = new Map<string, string>();
    for (const [k, v] of pr.userProperties ?? []) {
      if (seen.get(k) === "") return "repeated user property key after an empty value";
      if (!seen.has(k)) seen.set(k, v);
    }
  }
  return undefined;
}

export function propsToMqtt(pr: Properties): Record<string, unknown> | undefined {
  const out: Record<string, unknown> = {};
  let any = false;
  for (const [name, value] of Object.entries(pr)) {
    if (value === undefined) continue;
    const key = renamed[name] ?? name;
    if (name === "userProperties") {
      const ups = value as readonly UserProperty[];
      if (ups.length === 0) continue;
      const obj: Record<string, string | string[]> = Object.create(null) as Record<string, string | string[]>;
      for (const [k, v] of ups) {
        const prev = obj[k];
        if (prev === undefined) obj[k] = v;
        else if (Array.isArray(prev)) prev.push(v);
        else obj[k] = [prev, v];
      }
      out[key] = obj;
    } else if (name === "subscriptionIdentifiers") {
      const ids = value as readonly number[];
      if (ids.length === 0) continue;
      out[key] = ids.length === 1 ? ids[0] : [...ids];
    } else if (booleanProps.has(name)) {
      out[key] = value !== 0;
    } else if (binaryProps.has(name)) {
      out[key] = buf(value as Uint8Array);
    } else {
      out[key] = value;
    }
    any = true;
  }
  return any ? out : undefined;
}

export function propsFromMqtt(pr: unknown): Properties {
  if (pr === undefined || pr === null) return {};
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(pr as Record<string, unknown>)) {
    const name = renamedBack[key] ?? key;
    if (name === "userProperties") {
      const pairs: UserProperty[] = [];
      for (const k of Object.keys(value as object)) {
        const v = (value as Record<string, string | string[]>)[k];
        for (const one of Array.isArray(v) ? v : [v]) pairs.push([k, String(one)]);
      }
      out[name] = pairs;
    } else if (name === "subscriptionIdentifiers") {
      out[name] = Array.isArray(value) ? value : [value];
    } else if (booleanProps.has(name)) {
      out[name] = value === true ? 1 : value === false ? 0 : value;
    } else if (binaryProps.has(name)) {
      out[name] = new Uint8Array(value as Buffer);
    } else {
      out[name] = value;
    }
  }
  return out as Properties;
}

function withProps(o: MqttObject, pr: Properties, version: ProtocolVersion): MqttObject {
  if (version !== 5) return o;
  const m = propsToMqtt(pr);
  if (m !== undefined) o.properties = m;
  return o;
}

/** Our packet as an mqtt-packet object for `mqtt.generate(obj, { protocolVersion })`. */
export function toMqtt(p: Packet, version: ProtocolVersion): MqttObject {
  switch (p.type) {
    case "connect": {
      const o: MqttObject = {
        cmd: "connect",
        protocolId: p.protocolName,
        protocolVersion: p.protocolVersion,
        clean: p.clean,
        keepalive: p.keepAlive,
        clientId: p.clientId,
      };
      if (p.will !== undefined) {
        const will: Record<string, unknown> = {
          topic: p.will.topic,
          payload: buf(p.will.payload),
          qos: p.will.qos,
          retain: p.will.retain,
        };
        const wp = p.protocolVersion === 5 ? propsToMqtt(p.will.properties) : undefined;
        if (wp !== undefined) will.properties = wp;
        o.will = will;
      }
      if (p.username !== undefined) o.username = p.username;
      if (p.password !== undefined) o.password = buf(p.password);
      return withProps(o, p.properties, p.protocolVersion);
    }
    case "connack": {
      const o: MqttObject = { cmd: "connack", sessionPresent: p.sessionPresent };
      if (version === 5) o.reasonCode = p.reasonCode;
      else o.returnCode = p.reasonCode;
      return withProps(o, p.properties, version);
    }
    case "publish": {
      const o: MqttObject = {
        cmd: "publish",
        topic: p.topic,
        payload: buf(p.payload),
        qos: p.qos,
        retain: p.retain,
        dup: p.dup,
      };
      if (p.packetId !== undefined) o.messageId = p.packetId;
      return withProps(o, p.properties, version);
    }
    case "puback":
    case "pubrec":
    case "pubrel":
    case "pubcomp": {
      const o: MqttObject = { cmd: p.type, messageId: p.packetId };
      if (version === 5) o.reasonCode = p.reasonCode;
      return withProps(o, p.properties, version);
    }
    case "subscribe":
      return withProps(
        {
          cmd: "subscribe",
          messageId: p.packetId,
          subscriptions: p.subscriptions.map((s) =>
            version === 5
              ? { topic: s.topicFilter, qos: s.qos, nl: s.noLocal, rap: s.retainAsPublished, rh: s.retainHandling }
              : { topic: s.topicFilter, qos: s.qos },
          ),
        },
        p.properties,
        version,
      );
    case "suback":
      return withProps({ cmd: "suback", messageId: p.packetId, granted: [...p.reasonCodes] }, p.properties, version);
    case "unsubscribe":
      return withProps({ cmd: "unsubscribe", messageId: p.packetId, unsubscriptions: [...p.topicFilters] }, p.properties, version);
    case "unsuback": {
      const o: MqttObject = { cmd: "unsuback", messageId: p.packetId };
      if (version === 5) o.granted = [...p.reasonCodes];
      return withProps(o, p.properties, version);
    }
    case "pingreq":
    case "pingresp":
      return { cmd: p.type };
    case "disconnect":
    case "auth": {
      const o: MqttObject = { cmd: p.type };
      if (version === 5) o.reasonCode = p.reasonCode;
      return withProps(o, p.properties, version);
    }
  }
}

const num = (v: unknown, dflt = 0): number => (typeof v === "number" ? v : dflt);
const bytes = (v: unknown): Uint8Array => (v === undefined || v === null ? new Uint8Array(0) : new Uint8Array(v as Buffer));

/** An object emitted by mqtt-packet's parser, in our model (fields it lacks get neutral values). */
export function fromMqtt(o: MqttObject, version: ProtocolVersion): Packet {
  const properties = version === 5 ? propsFromMqtt(o.properties) : {};
  switch (o.cmd) {
    case "connect": {
      const v = num(o.protocolVersion) as ProtocolVersion;
      const w = o.will as Record<string, unknown> | undefined;
      return {
        type: "connect",
        protocolName: String(o.protocolId),
        protocolVersion: v,
        clean: o.clean === true,
        keepAlive: num(o.keepalive),
        clientId: String(o.clientId),
        will:
          w === undefined
            ? undefined
            : {
                topic: String(w.topic),
                payload: bytes(w.payload),
                qos: num(w.qos) as QoS,
                retain: w.retain === true,
                properties: v === 5 ? propsFromMqtt(w.properties) : {},
              },
        username: o.username === undefined ? undefined : String(o.username),
        password: o.password === undefined ? undefined : bytes(o.password),
        properties: v === 5 ? propsFromMqtt(o.properties) : {},
      };
    }
    case "connack":
      return {
        type: "connack",
        sessionPresent: o.sessionPresent === true,
        reasonCode: version === 5 ? num(o.reasonCode) : num(o.returnCode),
        properties,
      };
    case "publish":
      return {
        type: "publish",
        topic: String(o.topic),
        payload: bytes(o.payload),
        qos: num(o.qos) as QoS,
        retain: o.retain === true,
        dup: o.dup === true,
        packetId: num(o.qos) > 0 ? num(o.messageId) : undefined,
        properties,
      };
    case "puback":
    case "pubrec":
    case "pubrel":
    case "pubcomp":
      return { type: o.cmd, packetId: num(o.messageId), reasonCode: version === 5 ? num(o.reasonCode) : 0, properties };
    case "subscribe":
      return {
        type: "subscribe",
        packetId: num(o.messageId),
        subscriptions: (o.subscriptions as Record<string, unknown>[]).map(
          (s): Subscription => ({
            topicFilter: String(s.topic),
            qos: num(s.qos) as QoS,
            noLocal: version === 5 && s.nl === true,
            retainAsPublished: version === 5 && s.rap === true,
            retainHandling: (version === 5 ? num(s.rh) : 0) as 0 | 1 | 2,
          }),
        ),
        properties,
      };
    case "suback":
      return { type: "suback", packetId: num(o.messageId), reasonCodes: [...(o.granted as number[])], properties };
    case "unsubscribe":
      return { type: "unsubscribe", packetId: num(o.messageId), topicFilters: (o.unsubscriptions as unknown[]).map(String), properties };
    case "unsuback":
      return {
        type: "unsuback",
        packetId: num(o.messageId),
        reasonCodes: version === 5 ? [...((o.granted as number[] | undefined) ?? [])] : [],
        properties,
      };
    case "pingreq":
    case "pingresp":
      return { type: o.cmd };
    case "disconnect":
    case "auth":
      return { type: o.cmd, reasonCode: version === 5 ? num(o.reasonCode) : 0, properties };
    default:
      throw new Error(`unknown mqtt-packet cmd ${o.cmd}`);
  }
}

const hex = (u: Uint8Array): string => Buffer.from(u.buffer, u.byteOffset, u.byteLength).toString("hex");

/** Properties in the form both models agree on: binaries as hex, byte flags as 0/1, user
 *  properties grouped by key (keys sorted, each key's values in order), empty lists dropped. */
export function canonProps(pr: Properties): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const name of Object.keys(pr).sort()) {
    const value = (pr as Record<string, unknown>)[name];
    if (value === undefined) continue;
    if (name === "userProperties") {
      const ups = value as readonly UserProperty[];
      if (ups.length === 0) continue;
      const byKey = new Map<string, string[]>();
      for (const [k, v] of ups) {
        const list = byKey.get(k);
        if (list === undefined) byKey.set(k, [v]);
        else list.push(v);
      }
      out[name] = [...byKey.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    } else if (name === "subscriptionIdentifiers") {
      if ((value as readonly number[]).length === 0) continue;
      out[name] = [...(value as readonly number[])];
    } else if (value instanceof Uint8Array) {
      out[name] = hex(value);
    } else {
      out[name] = value;
    }
  }
  return out;
}

/** A plain, comparable rendering of a packet (binaries as hex, properties canonical). */
export function canon(p: Packet): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(p)) {
    if (k === "properties") out[k] = canonProps(v as Properties);
    else if (v instanceof Uint8Array) out[k] = hex(v);
    else if (k === "will" && v !== undefined) {
      const w = v as NonNullable<Extract<Packet, { type: "connect" }>["will"]>;
      out[k] = { topic: w.topic, payload: hex(w.payload), qos: w.qos, retain: w.retain, properties: canonProps(w.properties) };
    } else if (Array.isArray(v)) out[k] = v.map((e: unknown) => (typeof e === "object" && e !== null ? { ...e } : e));
    else out[k] = v;
  }
  return out;
}

/** Parse `bytes` with a fresh mqtt-packet parser: the packets it emitted and its first error. */
export function mqttParse(bytes: Uint8Array, version: ProtocolVersion): { packets: MqttObject[]; error: Error | undefined; left: number } {
  const parser = mqttPacket.parser({ protocolVersion: version });
  const packets: MqttObject[] = [];
  let error: Error | undefined;
  parser.on("packet", (pk: unknown) => packets.push(pk as MqttObject));
  parser.on("error", (e: Error) => {
    error ??= e;
  });
  const left = parser.parse(buf(bytes));
  return { packets, error, left };
}

/** mqtt-packet's encoding of an object; its errors (thrown or emitted) become an Error result. */
export function mqttGenerate(o: MqttObject, version: ProtocolVersion): Uint8Array | Error {
  try {
    const out = mqttPacket.generate(o as unknown as mqttPacket.Packet, { protocolVersion: version });
    return new Uint8Array(out);
  } catch (e) {
    return e instanceof Error ? e : new Error(String(e));
  }
}
