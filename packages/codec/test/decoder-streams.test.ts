// Decoders of different streams share nothing observable: each keeps its own protocol version
// and topic cache even though non-PUBLISH packets are parsed with one shared Reader (issue 7).
import { describe, expect, it } from "vitest";
import { Decoder, encode, type ConnectPacket, type Packet, type ProtocolVersion, type PublishPacket } from "../src/index.js";

const connect = (version: ProtocolVersion, clientId: string): ConnectPacket => ({
  type: "connect",
  protocolName: version === 3 ? "MQIsdp" : "MQTT",
  protocolVersion: version,
  clean: true,
  keepAlive: 30,
  clientId,
  will: undefined,
  username: undefined,
  password: undefined,
  properties: {},
});
const publish = (topic: string, body: number): PublishPacket => ({
  type: "publish",
  topic,
  payload: new Uint8Array([body]),
  qos: 1,
  retain: false,
  dup: false,
  packetId: body + 1,
  properties: {},
});

/** Feeds two streams to two decoders one byte at a time, alternating, and collects each one's packets. */
function interleave(a: Uint8Array, b: Uint8Array): [Decoder, Packet[], Decoder, Packet[]] {
  const da = new Decoder();
  const db = new Decoder();
  const pa: Packet[] = [];
  const pb: Packet[] = [];
  const drain = (d: Decoder, out: Packet[]): void => {
    for (let p = d.next(); p !== undefined; p = d.next()) {
      if (p.type === "error") throw new Error(p.message);
      out.push(p);
    }
  };
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if (i < a.length) da.push(a.subarray(i, i + 1));
    drain(da, pa);
    if (i < b.length) db.push(b.subarray(i, i + 1));
    drain(db, pb);
  }
  return [da, pa, db, pb];
}

const cat = (...parts: Uint8Array[]): Uint8Array => Uint8Array.from(parts.flatMap((p) => [...p]));

describe("MQTT 3.1.1", () => {
  it("[MQTT-3.1.2-2] two interleaved streams each learn their own version from their CONNECT", () => {
    const a = cat(encode(connect(4, "a"), 4), encode(publish("x/1", 1), 4), encode(publish("x/1", 2), 4));
    const b = cat(encode(connect(5, "b"), 5), encode(publish("x/1", 3), 5), encode(publish("y/2", 4), 5));
    const [da, pa, db, pb] = interleave(a, b);
    expect(da.version).toBe(4);
    expect(db.version).toBe(5);
    expect(pa).toEqual([connect(4, "a"), publish("x/1", 1), publish("x/1", 2)]);
    expect(pb).toEqual([connect(5, "b"), publish("x/1", 3), publish("y/2", 4)]);
  });
});

describe("MQTT 5.0", () => {
  it("[MQTT-4.13.1-1] a malformed CONNECT on one stream leaves the other stream's decoding intact", () => {
    const bad = new Decoder();
    const good = new Decoder();
    const v5 = encode(connect(5, "good"), 5);
    good.push(v5.subarray(0, 5));
    // protocol level 5, then a truncated body: malformed after the version was read
    bad.push(Uint8Array.from([0x10, 0x07, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x05]));
    expect(bad.next()).toMatchObject({ type: "error", code: 0x81 });
    expect(bad.version).toBe(5);
    good.push(v5.subarray(5));
    expect(good.next()).toEqual(connect(5, "good"));
    expect(good.version).toBe(5);
    // the same topic on two streams is decoded from each stream's own bytes
    const t1 = new Decoder({ version: 4 });
    const t2 = new Decoder({ version: 4 });
    t1.push(encode(publish("same/topic", 1), 4));
    t2.push(encode(publish("same/topix", 2), 4));
    expect((t1.next() as PublishPacket).topic).toBe("same/topic");
    expect((t2.next() as PublishPacket).topic).toBe("same/topix");
  });
});
