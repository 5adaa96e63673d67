// fast-check arbitraries for every MQTT packet kind, in the codec's canonical decoded form: every
// field present, `properties: {}` for 3.x, v5 properties only where the packet allows them,
// `packetId` undefined iff QoS 0, no empty repeatable-property arrays. `decode(encode(p))` must
// deep-equal `p` for anything generated here. Shared with the differential tests and the fuzz script.
import fc from "fast-check";
import type {
  AckPacket,
  AuthPacket,
  ConnackPacket,
  ConnectPacket,
  DisconnectPacket,
  Packet,
  PacketType,
  PingreqPacket,
  PingrespPacket,
  Properties,
  ProtocolVersion,
  PublishPacket,
  QoS,
  SubackPacket,
  SubscribePacket,
  Subscription,
  UnsubackPacket,
  UnsubscribePacket,
  UserProperty,
  Will,
} from "../src/index.js";

export const arbVersion: fc.Arbitrary<ProtocolVersion> = fc.constantFrom(3, 4, 5);
export const arbQoS: fc.Arbitrary<QoS> = fc.constantFrom(0, 1, 2);
export const arbPacketId: fc.Arbitrary<number> = fc.integer({ min: 1, max: 65535 });
const u16 = fc.integer({ min: 0, max: 0xffff });
const u32 = fc.integer({ min: 0, max: 0xffffffff });
const bit = fc.constantFrom(0, 1);

/** A valid MQTT UTF-8 string: well-formed, no U+0000 (U+FEFF and astral characters included). */
export function arbUtf8(maxLength = 12): fc.Arbitrary<string> {
  return fc
    .oneof(
      { weight: 3, arbitrary: fc.string({ unit: "grapheme-ascii", maxLength }) },
      { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength }) },
      { weight: 1, arbitrary: fc.constantFrom("\uFEFF", "a\uFEFFb", "caf\u00e9", "\u{1F600}/x", "\u00a0") },
    )
    .filter((s) => !s.includes("\u0000"));
}

export const arbBytes = (maxLength = 32): fc.Arbitrary<Uint8Array> => fc.uint8Array({ maxLength });

/** One topic level: no '/', '+', '#'; may be empty. */
const arbLevel: fc.Arbitrary<string> = arbUtf8(6).map((s) => s.replace(/[/+#]/g, ""));

/** A valid topic name (section 4.7): at least one character, no wildcards, no U+0000. */
export const arbTopicName: fc.Arbitrary<string> = fc
  .array(arbLevel, { minLength: 1, maxLength: 5 })
  .map((levels) => levels.join("/"))
  .filter((t) => t.length > 0 && !t.startsWith("$share/"));

/** A valid (non-shared) topic filter: '+' fills a level, '#' only last and alone in its level. */
export const arbPlainTopicFilter: fc.Arbitrary<string> = fc
  .tuple(
    fc.array(fc.oneof({ weight: 3, arbitrary: arbLevel }, { weight: 1, arbitrary: fc.constant("+") }), {
      minLength: 0,
      maxLength: 5,
    }),
    fc.boolean(),
  )
  .map(([levels, hash]) => (hash ? [...levels, "#"] : levels).join("/"))
  .filter((f) => f.length > 0 && !f.startsWith("$share/") && f !== "$share");

/** Valid topic filters including shared subscriptions "$share/{name}/{filter}" ([MQTT-4.8.2-1]). */
export const arbTopicFilter: fc.Arbitrary<string> = fc.oneof(
  { weight: 5, arbitrary: arbPlainTopicFilter },
  {
    weight: 1,
    arbitrary: fc
      .tuple(arbLevel.filter((n) => n.length > 0), arbPlainTopicFilter)
      .map(([name, filter]) => `$share/${name}/${filter}`),
  },
);

const arbUserProperties: fc.Arbitrary<readonly UserProperty[]> = fc.array(
  fc.tuple(arbUtf8(8), arbUtf8(8)).map(([k, v]): UserProperty => [k, v]),
  { minLength: 1, maxLength: 3 },
);

const arbSubscriptionId = fc.integer({ min: 1, max: 268_435_455 });

/** Arbitraries of every property value, valid ranges only. */
const propertyValues = {
  payloadFormatIndicator: bit,
  messageExpiryInterval: u32,
  contentType: arbUtf8(),
  responseTopic: arbTopicName,
  correlationData: arbBytes(16),
  subscriptionIdentifiers: fc.array(arbSubscriptionId, { minLength: 1, maxLength: 3 }),
  sessionExpiryInterval: u32,
  assignedClientIdentifier: arbUtf8(),
  serverKeepAlive: u16,
  authenticationMethod: arbUtf8(),
  authenticationData: arbBytes(16),
  requestProblemInformation: bit,
  willDelayInterval: u32,
  requestResponseInformation: bit,
  responseInformation: arbUtf8(),
  serverReference: arbUtf8(),
  reasonString: arbUtf8(),
  receiveMaximum: fc.integer({ min: 1, max: 0xffff }),
  topicAliasMaximum: u16,
  topicAlias: fc.integer({ min: 1, max: 0xffff }),
  maximumQoS: bit,
  retainAvailable: bit,
  userProperties: arbUserProperties,
  maximumPacketSize: fc.integer({ min: 1, max: 0xffffffff }),
  wildcardSubscriptionAvailable: bit,
  subscriptionIdentifierAvailable: bit,
  sharedSubscriptionAvailable: bit,
} satisfies { [K in keyof Properties]-?: fc.Arbitrary<NonNullable<Properties[K]>> };

type PropName = keyof typeof propertyValues;

/** Optional subset of the given properties (each key absent or valid). */
function arbProps(names: readonly PropName[], overrides: Partial<Record<PropName, fc.Arbitrary<unknown>>> = {}): fc.Arbitrary<Properties> {
  const model: Record<string, fc.Arbitrary<unknown>> = {};
  for (const n of names) model[n] = overrides[n] ?? propertyValues[n];
  return fc.record(model, { requiredKeys: [], noNullPrototype: true }) as fc.Arbitrary<Properties>;
}

/** Which properties each packet allows (MQTT 5.0 section 2.2.2.2); "will" = CONNECT will properties. */
export const allowedProperties = {
  connect: [
    "sessionExpiryInterval",
    "authenticationMethod",
    "authenticationData",
    "requestProblemInformation",
    "requestResponseInformation",
    "receiveMaximum",
    "topicAliasMaximum",
    "userProperties",
    "maximumPacketSize",
  ],
  will: [
    "payloadFormatIndicator",
    "messageExpiryInterval",
    "contentType",
    "responseTopic",
    "correlationData",
    "willDelayInterval",
    "userProperties",
  ],
  connack: [
    "sessionExpiryInterval",
    "assignedClientIdentifier",
    "serverKeepAlive",
    "authenticationMethod",
    "authenticationData",
    "responseInformation",
    "serverReference",
    "reasonString",
    "receiveMaximum",
    "topicAliasMaximum",
    "maximumQoS",
    "retainAvailable",
    "userProperties",
    "maximumPacketSize",
    "wildcardSubscriptionAvailable",
    "subscriptionIdentifierAvailable",
    "sharedSubscriptionAvailable",
  ],
  publish: [
    "payloadFormatIndicator",
    "messageExpiryInterval",
    "contentType",
    "responseTopic",
    "correlationData",
    "subscriptionIdentifiers",
    "topicAlias",
    "userProperties",
  ],
  puback: ["reasonString", "userProperties"],
  pubrec: ["reasonString", "userProperties"],
  pubrel: ["reasonString", "userProperties"],
  pubcomp: ["reasonString", "userProperties"],
  subscribe: ["subscriptionIdentifiers", "userProperties"],
  suback: ["reasonString", "userProperties"],
  unsubscribe: ["userProperties"],
  unsuback: ["reasonString", "userProperties"],
  disconnect: ["sessionExpiryInterval", "serverReference", "reasonString", "userProperties"],
  auth: ["authenticationMethod", "authenticationData", "reasonString", "userProperties"],
} as const satisfies Record<string, readonly PropName[]>;

const noProps: fc.Arbitrary<Properties> = fc.constant({});
const propsFor = (kind: keyof typeof allowedProperties, version: ProtocolVersion, overrides = {}) =>
  version === 5 ? arbProps(allowedProperties[kind], overrides) : noProps;

/** A payload that is valid UTF-8 when payloadFormatIndicator is 1 (receivers may check it). */
function withPayload(props: Properties, bytes: Uint8Array, text: string): Uint8Array {
  return props.payloadFormatIndicator === 1 ? new TextEncoder().encode(text) : bytes;
}

/** 5.0 section 3.1.2.11.10: CONNECT authentication data only together with a method. */
function withoutOrphanAuthData(p: Properties): Properties {
  if (p.authenticationData === undefined || p.authenticationMethod !== undefined) return p;
  const { authenticationData: _dropped, ...rest } = p;
  return rest;
}

const protocolNames: Record<ProtocolVersion, string> = { 3: "MQIsdp", 4: "MQTT", 5: "MQTT" };

export function arbWill(version: ProtocolVersion): fc.Arbitrary<Will> {
  return fc
    .record({
      topic: arbTopicName,
      payload: arbBytes(),
      text: arbUtf8(),
      qos: arbQoS,
      retain: fc.boolean(),
      properties: propsFor("will", version),
    })
    .map(({ topic, payload, text, qos, retain, properties }) => ({
      topic,
      payload: withPayload(properties, payload, text),
      qos,
      retain,
      properties,
    }));
}

export function arbConnect(version: ProtocolVersion): fc.Arbitrary<ConnectPacket> {
  return fc
    .record({
      clean: fc.boolean(),
      keepAlive: u16,
      clientId: arbUtf8(23),
      will: fc.option(arbWill(version), { nil: undefined }),
      username: fc.option(arbUtf8(), { nil: undefined }),
      password: fc.option(arbBytes(16), { nil: undefined }),
      properties: propsFor("connect", version),
    })
    .map((r) => ({
      type: "connect" as const,
      protocolName: protocolNames[version],
      protocolVersion: version,
      clean: r.clean,
      keepAlive: r.keepAlive,
      clientId: r.clientId,
      will: r.will,
      username: r.username,
      // [MQTT-3.1.2-22] 3.x: no password without a user name
      password: version !== 5 && r.username === undefined ? undefined : r.password,
      properties: withoutOrphanAuthData(r.properties),
    }));
}

const connackCodes5 = [0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x8c, 0x90, 0x95, 0x97, 0x99, 0x9a, 0x9b, 0x9c, 0x9d, 0x9f];

export function arbConnack(version: ProtocolVersion): fc.Arbitrary<ConnackPacket> {
  return fc
    .record({
      sessionPresent: fc.boolean(),
      reasonCode: version === 5 ? fc.constantFrom(...connackCodes5) : fc.integer({ min: 0, max: 5 }),
      properties: propsFor("connack", version),
    })
    .map((r) => ({
      type: "connack" as const,
      // MQTT 3.1 has no session present flag
      sessionPresent: version !== 3 && r.reasonCode === 0 && r.sessionPresent,
      reasonCode: r.reasonCode,
      properties: r.properties,
    }));
}

export function arbPublish(version: ProtocolVersion): fc.Arbitrary<PublishPacket> {
  return fc
    .record({
      topic: arbTopicName,
      emptyTopic: fc.boolean(),
      payload: fc.oneof(arbBytes(64), arbBytes(0)),
      text: arbUtf8(20),
      qos: arbQoS,
      retain: fc.boolean(),
      dup: fc.boolean(),
      packetId: arbPacketId,
      properties: propsFor("publish", version),
    })
    .map((r) => ({
      type: "publish" as const,
      // 5.0: an empty topic is allowed only with a topic alias
      topic: r.emptyTopic && r.properties.topicAlias !== undefined ? "" : r.topic,
      payload: withPayload(r.properties, r.payload, r.text),
      qos: r.qos,
      retain: r.retain,
      dup: r.qos > 0 && r.dup,
      packetId: r.qos > 0 ? r.packetId : undefined,
      properties: r.properties,
    }));
}

const ackCodes5 = {
  puback: [0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99],
  pubrec: [0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99],
  pubrel: [0x00, 0x92],
  pubcomp: [0x00, 0x92],
} as const;

export function arbAck<T extends "puback" | "pubrec" | "pubrel" | "pubcomp">(type: T, version: ProtocolVersion): fc.Arbitrary<AckPacket<T>> {
  return fc
    .record({
      packetId: arbPacketId,
      reasonCode: version === 5 ? fc.constantFrom(...ackCodes5[type]) : fc.constant(0),
      properties: propsFor(type, version),
    })
    .map((r) => ({ type, packetId: r.packetId, reasonCode: r.reasonCode, properties: r.properties }));
}

export function arbSubscription(version: ProtocolVersion): fc.Arbitrary<Subscription> {
  return fc
    .record({
      topicFilter: arbTopicFilter,
      qos: arbQoS,
      noLocal: fc.boolean(),
      retainAsPublished: fc.boolean(),
      retainHandling: fc.constantFrom(0, 1, 2) as fc.Arbitrary<0 | 1 | 2>,
    })
    .map((s) =>
      version === 5
        ? // 5.0 [MQTT-3.8.3-4]: No Local on a shared subscription is a protocol error
          { ...s, noLocal: s.noLocal && !s.topicFilter.startsWith("$share/") }
        : { topicFilter: s.topicFilter, qos: s.qos, noLocal: false, retainAsPublished: false, retainHandling: 0 as const },
    );
}

export function arbSubscribe(version: ProtocolVersion): fc.Arbitrary<SubscribePacket> {
  return fc
    .record({
      packetId: arbPacketId,
      subscriptions: fc.array(arbSubscription(version), { minLength: 1, maxLength: 4 }),
      properties: propsFor("subscribe", version, {
        subscriptionIdentifiers: fc.array(arbSubscriptionId, { minLength: 1, maxLength: 1 }),
      }),
    })
    .map((r) => ({ type: "subscribe" as const, ...r }));
}

const subackCodes5 = [0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8f, 0x91, 0x97, 0x9e, 0xa1, 0xa2];

export function arbSuback(version: ProtocolVersion): fc.Arbitrary<SubackPacket> {
  return fc
    .record({
      packetId: arbPacketId,
      reasonCodes: fc.array(version === 5 ? fc.constantFrom(...subackCodes5) : fc.constantFrom(0, 1, 2, 0x80), {
        minLength: 1,
        maxLength: 5,
      }),
      properties: propsFor("suback", version),
    })
    .map((r) => ({ type: "suback" as const, ...r }));
}

export function arbUnsubscribe(version: ProtocolVersion): fc.Arbitrary<UnsubscribePacket> {
  return fc
    .record({
      packetId: arbPacketId,
      topicFilters: fc.array(arbTopicFilter, { minLength: 1, maxLength: 4 }),
      properties: propsFor("unsubscribe", version),
    })
    .map((r) => ({ type: "unsubscribe" as const, ...r }));
}

export function arbUnsuback(version: ProtocolVersion): fc.Arbitrary<UnsubackPacket> {
  return fc
    .record({
      packetId: arbPacketId,
      reasonCodes:
        version === 5
          ? fc.array(fc.constantFrom(0x00, 0x11, 0x80, 0x83, 0x87, 0x8f, 0x91), { minLength: 1, maxLength: 5 })
          : fc.constant([] as number[]),
      properties: propsFor("unsuback", version),
    })
    .map((r) => ({ type: "unsuback" as const, ...r }));
}

export const arbPingreq: fc.Arbitrary<PingreqPacket> = fc.constant({ type: "pingreq" as const });
export const arbPingresp: fc.Arbitrary<PingrespPacket> = fc.constant({ type: "pingresp" as const });

const disconnectCodes5 = [
  0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8b, 0x8d, 0x8e, 0x8f, 0x90, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98,
  0x99, 0x9a, 0x9b, 0x9c, 0x9d, 0x9e, 0x9f, 0xa0, 0xa1, 0xa2,
];

export function arbDisconnect(version: ProtocolVersion): fc.Arbitrary<DisconnectPacket> {
  return fc
    .record({
      reasonCode: version === 5 ? fc.constantFrom(...disconnectCodes5) : fc.constant(0),
      properties: propsFor("disconnect", version),
    })
    .map((r) => ({ type: "disconnect" as const, ...r }));
}

export function arbAuth(): fc.Arbitrary<AuthPacket> {
  return fc
    .record({ reasonCode: fc.constantFrom(0x00, 0x18, 0x19), properties: propsFor("auth", 5) })
    .map((r) => ({ type: "auth" as const, ...r }));
}

/** Packet kinds that exist in a version (AUTH is MQTT 5 only). */
export function packetTypes(version: ProtocolVersion): PacketType[] {
  const all: PacketType[] = [
    "connect",
    "connack",
    "publish",
    "puback",
    "pubrec",
    "pubrel",
    "pubcomp",
    "subscribe",
    "suback",
    "unsubscribe",
    "unsuback",
    "pingreq",
    "pingresp",
    "disconnect",
  ];
  return version === 5 ? [...all, "auth"] : all;
}

export function arbPacketOfType<T extends PacketType>(type: T, version: ProtocolVersion): fc.Arbitrary<Extract<Packet, { type: T }>> {
  const a = ((): fc.Arbitrary<Packet> => {
    switch (type as PacketType) {
      case "connect":
        return arbConnect(version);
      case "connack":
        return arbConnack(version);
      case "publish":
        return arbPublish(version);
      case "puback":
      case "pubrec":
      case "pubrel":
      case "pubcomp":
        return arbAck(type as "puback", version);
      case "subscribe":
        return arbSubscribe(version);
      case "suback":
        return arbSuback(version);
      case "unsubscribe":
        return arbUnsubscribe(version);
      case "unsuback":
        return arbUnsuback(version);
      case "pingreq":
        return arbPingreq;
      case "pingresp":
        return arbPingresp;
      case "disconnect":
        return arbDisconnect(version);
      case "auth":
        if (version !== 5) throw new TypeError("AUTH exists only in MQTT 5.0");
        return arbAuth();
    }
  })();
  return a as fc.Arbitrary<Extract<Packet, { type: T }>>;
}

/** Any packet valid for the version, PUBLISH weighted up (the common case). */
export function arbPacket(version: ProtocolVersion): fc.Arbitrary<Packet> {
  return fc.oneof(
    { weight: 4, arbitrary: arbPublish(version) as fc.Arbitrary<Packet> },
    ...packetTypes(version).map((t) => ({ weight: 1, arbitrary: arbPacketOfType(t, version) as fc.Arbitrary<Packet> })),
  );
}

/** A version together with a packet valid for it. */
export const arbVersionedPacket: fc.Arbitrary<[ProtocolVersion, Packet]> = arbVersion.chain((v) => fc.tuple(fc.constant(v), arbPacket(v)));
