// @harbormq/codec: MQTT 3.1 / 3.1.1 / 5.0 packets <-> Uint8Array. Pure: no Node APIs, no throws on input.
export * from "./packets.js";
export { Decoder, type DecodeError, type DecoderOptions } from "./decoder.js";
export { encode, encodeHeader, encodeInto, encodedHeaderLength, encodedLength } from "./encode.js";
export { isValidTopicFilter, isValidTopicName } from "./topic.js";
export { utf8Length } from "./primitives.js";
export { type CodedType, isValidReasonCode } from "./reason-codes.js";
