// The MQTT packet model shared by every harbormq package: one readonly object shape per packet
// kind, the same for MQTT 3.1 (level 3), 3.1.1 (level 4) and 5.0 (level 5).
//
// Shape rules (they keep V8 monomorphic and make round trips exact):
// - every field of a kind is always present, in the order declared here; "absent" is `undefined`;
// - `properties` is always an object; it is `{}` for MQTT 3.x and for a v5 packet without properties;
// - fields that a version does not carry are decoded as their neutral value (`reasonCode: 0`,
//   `properties: {}`, subscription options false/0) and ignored by the encoder for that version.

/** Protocol level byte of CONNECT: 3 = MQTT 3.1 ("MQIsdp"), 4 = MQTT 3.1.1, 5 = MQTT 5.0. */
export type ProtocolVersion = 3 | 4 | 5;
export type QoS = 0 | 1 | 2;

export type UserProperty = readonly [key: string, value: string];

/** Every MQTT 5 property (section 2.2.2.2). Which ones a packet may carry is checked by the codec. */
export interface Properties {
  readonly payloadFormatIndicator?: number; // 0x01 byte
  readonly messageExpiryInterval?: number; // 0x02 four byte integer
  readonly contentType?: string; // 0x03
  readonly responseTopic?: string; // 0x08
  readonly correlationData?: Uint8Array; // 0x09
  readonly subscriptionIdentifiers?: readonly number[]; // 0x0B variable byte integer, repeatable in PUBLISH
  readonly sessionExpiryInterval?: number; // 0x11 four byte integer
  readonly assignedClientIdentifier?: string; // 0x12
  readonly serverKeepAlive?: number; // 0x13 two byte integer
  readonly authenticationMethod?: string; // 0x15
  readonly authenticationData?: Uint8Array; // 0x16
  readonly requestProblemInformation?: number; // 0x17 byte
  readonly willDelayInterval?: number; // 0x18 four byte integer
  readonly requestResponseInformation?: number; // 0x19 byte
  readonly responseInformation?: string; // 0x1A
  readonly serverReference?: string; // 0x1C
  readonly reasonString?: string; // 0x1F
  readonly receiveMaximum?: number; // 0x21 two byte integer
  readonly topicAliasMaximum?: number; // 0x22 two byte integer
  readonly topicAlias?: number; // 0x23 two byte integer
  readonly maximumQoS?: number; // 0x24 byte
  readonly retainAvailable?: number; // 0x25 byte
  readonly userProperties?: readonly UserProperty[]; // 0x26 string pair, repeatable, order kept
  readonly maximumPacketSize?: number; // 0x27 four byte integer
  readonly wildcardSubscriptionAvailable?: number; // 0x28 byte
  readonly subscriptionIdentifierAvailable?: number; // 0x29 byte
  readonly sharedSubscriptionAvailable?: number; // 0x2A byte
}

export interface Will {
  readonly topic: string;
  readonly payload: Uint8Array;
  readonly qos: QoS;
  readonly retain: boolean;
  readonly properties: Properties; // v5 will properties
}

export interface ConnectPacket {
  readonly type: "connect";
  /** "MQTT" for levels 4 and 5, "MQIsdp" for level 3. */
  readonly protocolName: string;
  readonly protocolVersion: ProtocolVersion;
  /** Clean session (3.1 / 3.1.1) or clean start (5.0). */
  readonly clean: boolean;
  readonly keepAlive: number;
  readonly clientId: string;
  readonly will: Will | undefined;
  readonly username: string | undefined;
  readonly password: Uint8Array | undefined;
  readonly properties: Properties;
}

export interface ConnackPacket {
  readonly type: "connack";
  readonly sessionPresent: boolean;
  /** 3.x: the connect return code (0..5); 5.0: the reason code. */
  readonly reasonCode: number;
  readonly properties: Properties;
}

export interface PublishPacket {
  readonly type: "publish";
  readonly topic: string;
  readonly payload: Uint8Array;
  readonly qos: QoS;
  readonly retain: boolean;
  readonly dup: boolean;
  /** Present for QoS 1 and 2, `undefined` for QoS 0. */
  readonly packetId: number | undefined;
  readonly properties: Properties;
}

/** PUBACK, PUBREC, PUBREL and PUBCOMP share one shape. 3.x: reasonCode 0 and properties {}. */
export interface AckPacket<T extends "puback" | "pubrec" | "pubrel" | "pubcomp"> {
  readonly type: T;
  readonly packetId: number;
  readonly reasonCode: number;
  readonly properties: Properties;
}
export type PubackPacket = AckPacket<"puback">;
export type PubrecPacket = AckPacket<"pubrec">;
export type PubrelPacket = AckPacket<"pubrel">;
export type PubcompPacket = AckPacket<"pubcomp">;

export type RetainHandling = 0 | 1 | 2;

export interface Subscription {
  readonly topicFilter: string;
  readonly qos: QoS;
  /** v5 subscription options; false/false/0 for 3.x. */
  readonly noLocal: boolean;
  readonly retainAsPublished: boolean;
  readonly retainHandling: RetainHandling;
}

export interface SubscribePacket {
  readonly type: "subscribe";
  readonly packetId: number;
  readonly subscriptions: readonly Subscription[];
  readonly properties: Properties;
}

export interface SubackPacket {
  readonly type: "suback";
  readonly packetId: number;
  /** 3.x: granted QoS 0..2 or 0x80 failure; 5.0: reason codes. */
  readonly reasonCodes: readonly number[];
  readonly properties: Properties;
}

export interface UnsubscribePacket {
  readonly type: "unsubscribe";
  readonly packetId: number;
  readonly topicFilters: readonly string[];
  readonly properties: Properties;
}

export interface UnsubackPacket {
  readonly type: "unsuback";
  readonly packetId: number;
  /** 5.0 reason codes, one per filter; always empty for 3.x (UNSUBACK has no payload there). */
  readonly reasonCodes: readonly number[];
  readonly properties: Properties;
}

export interface PingreqPacket {
  readonly type: "pingreq";
}
export interface PingrespPacket {
  readonly type: "pingresp";
}

export interface DisconnectPacket {
  readonly type: "disconnect";
  /** 5.0 reason code; 0 for 3.x. */
  readonly reasonCode: number;
  readonly properties: Properties;
}

/** MQTT 5 only. */
export interface AuthPacket {
  readonly type: "auth";
  readonly reasonCode: number;
  readonly properties: Properties;
}

export type Packet =
  | ConnectPacket
  | ConnackPacket
  | PublishPacket
  | PubackPacket
  | PubrecPacket
  | PubrelPacket
  | PubcompPacket
  | SubscribePacket
  | SubackPacket
  | UnsubscribePacket
  | UnsubackPacket
  | PingreqPacket
  | PingrespPacket
  | DisconnectPacket
  | AuthPacket;

export type PacketType = Packet["type"];

/** MQTT 5 reason codes (section 2.4) plus the 3.x CONNACK return codes under their own names. */
export const ReasonCode = {
  Success: 0x00,
  NormalDisconnection: 0x00,
  GrantedQoS0: 0x00,
  GrantedQoS1: 0x01,
  GrantedQoS2: 0x02,
  DisconnectWithWill: 0x04,
  NoMatchingSubscribers: 0x10,
  NoSubscriptionExisted: 0x11,
  ContinueAuthentication: 0x18,
  ReAuthenticate: 0x19,
  UnspecifiedError: 0x80,
  MalformedPacket: 0x81,
  ProtocolError: 0x82,
  ImplementationSpecificError: 0x83,
  UnsupportedProtocolVersion: 0x84,
  ClientIdentifierNotValid: 0x85,
  BadUserNameOrPassword: 0x86,
  NotAuthorized: 0x87,
  ServerUnavailable: 0x88,
  ServerBusy: 0x89,
  Banned: 0x8a,
  ServerShuttingDown: 0x8b,
  BadAuthenticationMethod: 0x8c,
  KeepAliveTimeout: 0x8d,
  SessionTakenOver: 0x8e,
  TopicFilterInvalid: 0x8f,
  TopicNameInvalid: 0x90,
  PacketIdentifierInUse: 0x91,
  PacketIdentifierNotFound: 0x92,
  ReceiveMaximumExceeded: 0x93,
  TopicAliasInvalid: 0x94,
  PacketTooLarge: 0x95,
  MessageRateTooHigh: 0x96,
  QuotaExceeded: 0x97,
  AdministrativeAction: 0x98,
  PayloadFormatInvalid: 0x99,
  RetainNotSupported: 0x9a,
  QoSNotSupported: 0x9b,
  UseAnotherServer: 0x9c,
  ServerMoved: 0x9d,
  SharedSubscriptionsNotSupported: 0x9e,
  ConnectionRateExceeded: 0x9f,
  MaximumConnectTime: 0xa0,
  SubscriptionIdentifiersNotSupported: 0xa1,
  WildcardSubscriptionsNotSupported: 0xa2,
} as const;
export type ReasonCode = number;

/** MQTT 3.1 / 3.1.1 CONNACK return codes (section 3.2.2.3). */
export const ConnectReturnCode = {
  Accepted: 0,
  UnacceptableProtocolVersion: 1,
  IdentifierRejected: 2,
  ServerUnavailable: 3,
  BadUserNameOrPassword: 4,
  NotAuthorized: 5,
} as const;
