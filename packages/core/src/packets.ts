// Factories for the packets the core sends: every field present, in the declaration order of
// @harbormq/codec's packet model, so V8 keeps one hidden class per kind. Never mutate a received
// packet; build the outgoing one here.
import type {
  AckPacket,
  ConnackPacket,
  DisconnectPacket,
  PingrespPacket,
  Properties,
  PublishPacket,
  QoS,
  SubackPacket,
  UnsubackPacket,
} from "@harbormq/codec";

/** Shared empty property bag (3.x packets and v5 packets without properties). Frozen: never mutated. */
export const NO_PROPERTIES: Properties = Object.freeze({});

export function connack(sessionPresent: boolean, reasonCode: number, properties: Properties): ConnackPacket {
  return { type: "connack", sessionPresent, reasonCode, properties };
}

export function publish(
  topic: string,
  payload: Uint8Array,
  qos: QoS,
  retain: boolean,
  dup: boolean,
  packetId: number | undefined,
  properties: Properties,
): PublishPacket {
  return { type: "publish", topic, payload, qos, retain, dup, packetId, properties };
}

function ack<T extends "puback" | "pubrec" | "pubrel" | "pubcomp">(type: T, packetId: number, reasonCode: number): AckPacket<T> {
  return { type, packetId, reasonCode, properties: NO_PROPERTIES };
}
export const puback = (packetId: number, reasonCode = 0): AckPacket<"puback"> => ack("puback", packetId, reasonCode);
export const pubrec = (packetId: number, reasonCode = 0): AckPacket<"pubrec"> => ack("pubrec", packetId, reasonCode);
export const pubrel = (packetId: number): AckPacket<"pubrel"> => ack("pubrel", packetId, 0);
export const pubcomp = (packetId: number): AckPacket<"pubcomp"> => ack("pubcomp", packetId, 0);

export function suback(packetId: number, reasonCodes: readonly number[]): SubackPacket {
  return { type: "suback", packetId, reasonCodes, properties: NO_PROPERTIES };
}

export function unsuback(packetId: number, reasonCodes: readonly number[]): UnsubackPacket {
  return { type: "unsuback", packetId, reasonCodes, properties: NO_PROPERTIES };
}

const PINGRESP: PingrespPacket = Object.freeze({ type: "pingresp" });
export const pingresp = (): PingrespPacket => PINGRESP;

/** MQTT 5 only: a server-initiated DISCONNECT carrying the reason. */
export function disconnect(reasonCode: number): DisconnectPacket {
  return { type: "disconnect", reasonCode, properties: NO_PROPERTIES };
}
