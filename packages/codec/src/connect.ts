// CONNECT (3.1.1 section 3.1, 5.0 section 3.1): protocol name and level first, so the decoder
// learns the version from it; then the flags byte, keep alive, v5 properties and the payload.
import type { ConnectPacket, Properties, ProtocolVersion, QoS, Will } from "./packets.js";
import {
  EMPTY_PROPERTIES,
  Malformed,
  PROTOCOL_ERROR,
  type Reader,
  type Writer,
  binarySize,
  checkInt,
  fail,
  stringSize,
  utf8Length,
} from "./primitives.js";
import { isUtf8Payload, propertiesLength, propertiesSize, readProperties, writeProperties } from "./properties.js";
import { isValidTopicName } from "./topic.js";

export const UNSUPPORTED_PROTOCOL_VERSION = 0x84;
const PAYLOAD_FORMAT_INVALID = 0x99;

/** What differs between versions in CONNECT. */
interface ConnectLayout {
  readonly protocolName: string;
  readonly properties: boolean;
  /** 3.x [MQTT-3.1.2-22]: a password requires a user name; 5.0 allows a password alone. */
  readonly passwordNeedsUsername: boolean;
}
const layout: Record<ProtocolVersion, ConnectLayout> = {
  3: { protocolName: "MQIsdp", properties: false, passwordNeedsUsername: true },
  4: { protocolName: "MQTT", properties: false, passwordNeedsUsername: true },
  5: { protocolName: "MQTT", properties: true, passwordNeedsUsername: false },
};

const FLAG_RESERVED = 0x01;
const FLAG_CLEAN = 0x02;
const FLAG_WILL = 0x04;
const FLAG_WILL_RETAIN = 0x20;
const FLAG_PASSWORD = 0x40;
const FLAG_USERNAME = 0x80;

/**
 * Reads the protocol name and level and returns the level, or fails with 0x84 when the pair is
 * not one harbormq speaks ([MQTT-3.1.2-1] [MQTT-3.1.2-2]); the level is in the message so the
 * core can pick the CONNACK it answers with.
 */
export function readProtocol(r: Reader): ProtocolVersion {
  const name = r.utf8("protocol name");
  const level = r.u8("protocol level");
  if ((level === 3 || level === 4 || level === 5) && layout[level].protocolName === name) return level;
  throw new Malformed(
    UNSUPPORTED_PROTOCOL_VERSION,
    `unsupported protocol level ${level} with protocol name ${JSON.stringify(name)}`,
    level,
  );
}

/** Parses a CONNECT; `learn` hears the version as soon as the protocol level is read and valid. */
export function parseConnect(r: Reader, learn?: (version: ProtocolVersion) => void): ConnectPacket {
  const version = readProtocol(r);
  learn?.(version);
  const v = layout[version];
  const flags = r.u8("connect flags");
  // [MQTT-3.1.2-3] the reserved flag must be 0
  if ((flags & FLAG_RESERVED) !== 0) fail("CONNECT reserved flag is set");
  const willFlag = (flags & FLAG_WILL) !== 0;
  const willQos = (flags >> 3) & 0x03;
  const willRetain = (flags & FLAG_WILL_RETAIN) !== 0;
  if (!willFlag) {
    // 3.1.1 [MQTT-3.1.2-11] [MQTT-3.1.2-13] [MQTT-3.1.2-15], 5.0 [MQTT-3.1.2-11] [MQTT-3.1.2-13]
    if (willQos !== 0) fail("will QoS is set without the will flag");
    if (willRetain) fail("will retain is set without the will flag");
  } else if (willQos === 3) {
    fail("will QoS 3"); // 3.1.1 [MQTT-3.1.2-14], 5.0 [MQTT-3.1.2-12]
  }
  const hasUsername = (flags & FLAG_USERNAME) !== 0;
  const hasPassword = (flags & FLAG_PASSWORD) !== 0;
  // 3.1.1 [MQTT-3.1.2-22] no password without a user name
  if (hasPassword && !hasUsername && v.passwordNeedsUsername) fail("password flag without user name flag");
  const keepAlive = r.u16("keep alive");
  const properties: Properties = v.properties ? readProperties(r, "connect") : EMPTY_PROPERTIES;
  // 5.0 section 3.1.2.11.10: Authentication Data without an Authentication Method is a protocol error
  if (properties.authenticationData !== undefined && properties.authenticationMethod === undefined) {
    fail("CONNECT carries authentication data without an authentication method", PROTOCOL_ERROR);
  }
  // [MQTT-3.1.3-1] payload order: client id, (will properties,) will topic, will payload, user name, password
  const clientId = r.utf8("client identifier"); // [MQTT-3.1.3-3] [MQTT-3.1.3-4]
  let will: Will | undefined;
  if (willFlag) {
    // [MQTT-3.1.2-9] the will flag requires will (properties,) topic and payload
    const willProperties: Properties = v.properties ? readProperties(r, "will") : EMPTY_PROPERTIES;
    const topic = r.utf8("will topic"); // 3.1.1 [MQTT-3.1.3-10], 5.0 [MQTT-3.1.3-11]
    if (!isValidTopicName(topic)) fail(`will topic ${JSON.stringify(topic)} is not a valid topic name`);
    const payload = r.binary("will payload");
    if (willProperties.payloadFormatIndicator === 1 && !isUtf8Payload(payload)) {
      fail("will payload is not UTF-8 although its payload format indicator is 1", PAYLOAD_FORMAT_INVALID);
    }
    will = { topic, payload, qos: willQos as QoS, retain: willRetain, properties: willProperties };
  }
  // 3.1.1 [MQTT-3.1.2-18..21], 5.0 [MQTT-3.1.2-16..19] the flags say exactly which fields follow
  const username = hasUsername ? r.utf8("user name") : undefined; // 3.1.1 [MQTT-3.1.3-11], 5.0 [MQTT-3.1.3-12]
  const password = hasPassword ? r.binary("password") : undefined;
  r.done("CONNECT");
  return {
    type: "connect",
    protocolName: v.protocolName,
    protocolVersion: version,
    clean: (flags & FLAG_CLEAN) !== 0,
    keepAlive,
    clientId,
    will,
    username,
    password,
    properties,
  };
}

function check(p: ConnectPacket, version: ProtocolVersion): ConnectLayout {
  const v = layout[version];
  if (p.protocolVersion !== version) {
    throw new TypeError(`CONNECT protocolVersion ${p.protocolVersion} encoded as version ${version}`);
  }
  if (p.protocolName !== v.protocolName) {
    throw new TypeError(`CONNECT protocolName must be ${v.protocolName} for level ${version}`);
  }
  checkInt(p.keepAlive, 0, 0xffff, "keepAlive");
  if (p.password !== undefined && p.username === undefined && v.passwordNeedsUsername) {
    throw new TypeError("MQTT 3.x CONNECT cannot carry a password without a user name"); // [MQTT-3.1.2-22]
  }
  if (p.properties.authenticationData !== undefined && p.properties.authenticationMethod === undefined && v.properties) {
    throw new TypeError("CONNECT authenticationData requires an authenticationMethod");
  }
  if (p.will !== undefined) {
    checkInt(p.will.qos, 0, 2, "will qos");
    if (!isValidTopicName(p.will.topic)) throw new TypeError(`will topic ${JSON.stringify(p.will.topic)} is invalid`);
  }
  return v;
}

export function connectLength(p: ConnectPacket, version: ProtocolVersion): number {
  const v = check(p, version);
  let n = 2 + v.protocolName.length + 1 + 1 + 2;
  if (v.properties) n += propertiesLength(p.properties, "connect");
  n += stringSize(p.clientId, "clientId");
  if (p.will !== undefined) {
    if (v.properties) n += propertiesLength(p.will.properties, "will");
    n += stringSize(p.will.topic, "will topic") + binarySize(p.will.payload, "will payload");
  }
  if (p.username !== undefined) n += stringSize(p.username, "username");
  if (p.password !== undefined) n += binarySize(p.password, "password");
  return n;
}

export function writeConnect(w: Writer, p: ConnectPacket, version: ProtocolVersion): void {
  const v = layout[version];
  w.utf8(v.protocolName, v.protocolName.length);
  w.u8(version);
  let flags = p.clean ? FLAG_CLEAN : 0;
  if (p.will !== undefined) {
    flags |= FLAG_WILL | (p.will.qos << 3) | (p.will.retain ? FLAG_WILL_RETAIN : 0);
  }
  if (p.username !== undefined) flags |= FLAG_USERNAME;
  if (p.password !== undefined) flags |= FLAG_PASSWORD;
  w.u8(flags);
  w.u16(p.keepAlive);
  if (v.properties) writeProperties(w, p.properties, propertiesSize(p.properties, "connect"));
  w.utf8(p.clientId, utf8Length(p.clientId));
  if (p.will !== undefined) {
    if (v.properties) writeProperties(w, p.will.properties, propertiesSize(p.will.properties, "will"));
    w.utf8(p.will.topic, utf8Length(p.will.topic));
    w.binary(p.will.payload);
  }
  if (p.username !== undefined) w.utf8(p.username, utf8Length(p.username));
  if (p.password !== undefined) w.binary(p.password);
}

