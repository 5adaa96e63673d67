// Codec edges a review found (session 5); each test failed before its fix.
import { describe, expect, it } from "vitest";
import { encode, type SubscribePacket } from "../src/index.js";
import { expectError, frame, props, str } from "./helpers.js";

const MALFORMED = 0x81;
const PROTOCOL_ERROR = 0x82;

describe("MQTT 5.0", () => {
  // 5.0 section 3.8.3.1: "It is a Protocol Error if the Maximum QoS field has the value 3."
  // (3.1.1 [MQTT-3.8.3-4]: malformed.)
  it("5.0 section 3.8.3.1: SUBSCRIBE options with Maximum QoS 3 is a protocol error (0x82), not malformed", () => {
    expectError(frame(0x82, "0001", props(), str("a"), "03"), 5, PROTOCOL_ERROR);
  });

  // [MQTT-3.8.3-4] No Local on a shared subscription is a protocol error. The decoder rejects it,
  // so the encoder must not write it (a harbormq client would get DISCONNECT 0x82 from harbormq).
  it("[MQTT-3.8.3-4] encoding No Local on a $share filter throws", () => {
    const p: SubscribePacket = {
      type: "subscribe",
      packetId: 1,
      subscriptions: [{ topicFilter: "$share/g/a", qos: 1, noLocal: true, retainAsPublished: false, retainHandling: 0 }],
      properties: {},
    };
    expect(() => encode(p, 5)).toThrow();
  });

  // SUBACK / UNSUBACK carry one reason code per filter of the (non-empty) request ([MQTT-3.9.3-1]
  // [MQTT-3.9.3-2] [MQTT-3.11.3-2] one code per filter, [MQTT-3.8.3-2] [MQTT-3.10.3-2] at least one filter), so zero codes cannot be a valid answer.
  it("[MQTT-3.9.3-2] [MQTT-3.11.3-2] a SUBACK / UNSUBACK without any reason code is malformed", () => {
    expectError(frame(0x90, "0001", props()), 5, MALFORMED);
    expectError(frame(0xb0, "0001", props()), 5, MALFORMED);
  });
});

describe("MQTT 3.1.1", () => {
  it("[MQTT-3.9.3-1] a SUBACK without any return code is malformed", () => {
    expectError(frame(0x90, "0001"), 4, MALFORMED);
  });
});
