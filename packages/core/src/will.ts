// The will message: held per connection from CONNECT ([MQTT-3.1.2-8]), published on an abnormal
// close (keep-alive timeout, protocol error, lost socket, takeover), discarded by DISCONNECT
// ([MQTT-3.1.2-10] [MQTT-3.14.4-3]), and never invented when the will flag is 0 ([MQTT-3.1.2-12]).
import type { Will } from "@harbormq/codec";
import type { Millis, StoredMessage } from "./api.js";
import { NO_PROPERTIES } from "./packets.js";

/** The message a will becomes; its QoS and retain flag are honoured ([MQTT-3.1.2-16] [MQTT-3.1.2-17]). */
export function willMessage(will: Will, id: number, now: Millis): StoredMessage {
  // Will properties that describe the message (content type, user properties...) travel with it;
  // the will delay interval is a will property, not a message property.
  const { willDelayInterval: _delay, ...messageProperties } = will.properties;
  const properties = Object.keys(messageProperties).length === 0 ? NO_PROPERTIES : messageProperties;
  return { id, topic: will.topic, payload: will.payload, qos: will.qos, retain: will.retain, properties, receivedAt: now };
}
