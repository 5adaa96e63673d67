// Paging a persistent session's queue through the driver: a page read must see every write the
// core emitted before it, and a failed read must not be taken for the end of the queue.
import { describe, expect, it } from "vitest";
import { Decoder, encode, type Packet, type PublishPacket, type QoS } from "@harbormq/codec";
import { createBroker, MemoryStore, type Duplex } from "@harbormq/broker";
import { memoryTransport, type MemoryTransport } from "@harbormq/transport-memory";

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
const settle = async (n = 10): Promise<void> => {
  for (let i = 0; i < n; i++) await turn();
};
const text = (p: PublishPacket): string => new TextDecoder().decode(p.payload);

/** A raw MQTT 3.1.1 client that acknowledges only when told to. */
class Raw {
  readonly received: Packet[] = [];
  private readonly decoder = new Decoder({ version: 4 });
  private readonly acked = new Set<PublishPacket>();
  constructor(readonly duplex: Duplex) {
    duplex.onData((chunk) => {
      this.decoder.push(chunk);
      for (let p = this.decoder.next(); p !== undefined; p = this.decoder.next()) this.received.push(p as Packet);
    });
    duplex.onClose(() => {});
  }
  send(...packets: Packet[]): void {
    for (const p of packets) this.duplex.write(encode(p, 4));
  }
  publishes(): PublishPacket[] {
    return this.received.filter((p): p is PublishPacket => p.type === "publish");
  }
  ackAll(): void {
    for (const p of this.publishes()) {
      if (this.acked.has(p)) continue;
      this.acked.add(p);
      this.send(puback(p.packetId!));
    }
  }
}

const connect = (clientId: string, clean: boolean): Packet => ({
  type: "connect", protocolName: "MQTT", protocolVersion: 4, clean, keepAlive: 0, clientId,
  will: undefined, username: undefined, password: undefined, properties: {},
});
const subscribe = (filter: string, qos: QoS): Packet => ({
  type: "subscribe", packetId: 1, properties: {},
  subscriptions: [{ topicFilter: filter, qos, noLocal: false, retainAsPublished: false, retainHandling: 0 }],
});
const publish = (topic: string, body: string, id: number): Packet => ({
  type: "publish", topic, payload: new TextEncoder().encode(body), qos: 1, retain: false, dup: false, packetId: id, properties: {},
});
const puback = (id: number): Packet => ({ type: "puback", packetId: id, reasonCode: 0, properties: {} });

async function client(transport: MemoryTransport, id: string, clean: boolean): Promise<Raw> {
  const c = new Raw(transport.connect());
  c.send(connect(id, clean));
  await settle();
  return c;
}

describe("MQTT 3.1.1", () => {
  it("[MQTT-4.6.0-6] a page read waits for the writes of its turn: nothing queued in that turn is skipped", async () => {
    const transport = memoryTransport();
    const broker = createBroker({ transports: [transport], store: new MemoryStore(), config: { queueWindow: 2, maxInflight: 2 } });
    await broker.listen();
    try {
      const s = await client(transport, "s", false);
      s.send(subscribe("t", 1));
      await settle();
      const p = await client(transport, "p", true);
      p.send(publish("t", "m1", 1), publish("t", "m2", 2));
      await settle();
      expect(s.publishes().map(text)).toEqual(["m1", "m2"]);
      // One turn: m3 goes to the store only (the in-memory window is full) and the acks make the
      // window run low, so the core asks for a page in the same turn that queued m3.
      p.send(publish("t", "m3", 3));
      s.ackAll();
      await settle(20);
      p.send(publish("t", "m4", 4));
      await settle(20);
      s.ackAll();
      await settle(20);
      expect(s.publishes().map(text)).toEqual(["m1", "m2", "m3", "m4"]);
      expect(broker.sessionStats("s")).toMatchObject({ dropped: 0 });
    } finally {
      await broker.close();
    }
  });

  it("[MQTT-4.6.0-6] a failed page read is retried, not taken for the end of the queue", async () => {
    class FlakyLoad extends MemoryStore {
      failures = 1;
      override load(clientId: string, afterSeq: number, max: number) {
        if (this.failures-- > 0) return Promise.reject(new Error("EIO"));
        return super.load(clientId, afterSeq, max);
      }
    }
    const transport = memoryTransport();
    const store = new FlakyLoad();
    const errors: string[] = [];
    const broker = createBroker({
      transports: [transport], store, config: { queueWindow: 2, maxInflight: 1 },
      logger: { error: (message: string) => errors.push(message) },
    });
    await broker.listen();
    try {
      let s = await client(transport, "s", false);
      s.send(subscribe("t", 1));
      await settle();
      s.duplex.close();
      await settle();
      const p = await client(transport, "p", true);
      for (let i = 1; i <= 5; i++) p.send(publish("t", `m${i}`, i));
      await settle();
      s = await client(transport, "s", false);
      const want = ["m1", "m2", "m3", "m4", "m5", "m6"];
      let published6 = false;
      for (let round = 0; round < 400 && s.publishes().length < want.length; round++) {
        s.ackAll();
        await new Promise((resolve) => setTimeout(resolve, 10));
        if (!published6 && s.publishes().length >= 2) {
          p.send(publish("t", "m6", 6));
          published6 = true;
        }
      }
      expect(s.publishes().map(text)).toEqual(want);
      expect(store.failures).toBeLessThan(0);
      expect(errors).toContain("store load failed; retrying");
    } finally {
      await broker.close();
    }
  });
});
