// The driver with the SQLite store across a broker restart: a persistent session, its
// subscription and its undelivered QoS 1 message survive; an unacknowledged delivery is repeated
// with DUP set. Also the keep-alive timer wired through the driver's single timer.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Decoder, encode, type Packet, type PublishPacket } from "@harbormq/codec";
import { createBroker, type Duplex } from "@harbormq/broker";
import { openSqliteStore } from "@harbormq/store-sqlite";
import { memoryTransport } from "@harbormq/transport-memory";
import { until } from "./transport-conformance.js";

class Raw {
  readonly got: Packet[] = [];
  closed = false;
  private readonly decoder = new Decoder({ version: 4 });
  constructor(readonly duplex: Duplex) {
    duplex.onData((c) => {
      this.decoder.push(c);
      for (let p = this.decoder.next(); p !== undefined; p = this.decoder.next()) {
        if (p.type === "error") throw new Error(p.message);
        this.got.push(p);
      }
    });
    duplex.onClose(() => (this.closed = true));
  }
  send(p: Packet): void {
    this.duplex.write(encode(p, 4));
  }
  publishes(): PublishPacket[] {
    return this.got.filter((p): p is PublishPacket => p.type === "publish");
  }
}

const connect = (clientId: string, clean: boolean, keepAlive = 0): Packet => ({
  type: "connect", protocolName: "MQTT", protocolVersion: 4, clean, keepAlive, clientId,
  will: undefined, username: undefined, password: undefined, properties: {},
});

async function boot(dir: string) {
  const transport = memoryTransport();
  const store = await openSqliteStore({ dir });
  const broker = createBroker({ transports: [transport], store });
  await broker.listen();
  const open = async (id: string, clean: boolean, keepAlive = 0) => {
    const c = new Raw(transport.connect());
    c.send(connect(id, clean, keepAlive));
    await until(() => c.got.some((p) => p.type === "connack"), "connack");
    return c;
  };
  return { broker, open };
}

describe("MQTT 3.1.1", () => {
  it("[MQTT-4.4.0-1] [MQTT-3.1.2-4] a persistent session and its QoS 1 messages survive a broker restart; unacknowledged ones come back with DUP", async () => {
    const dir = mkdtempSync(join(tmpdir(), "harbormq-restart-"));
    const first = await boot(dir);
    const sub = await first.open("keeper", false);
    sub.send({ type: "subscribe", packetId: 1, subscriptions: [{ topicFilter: "r/#", qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0 }], properties: {} });
    await until(() => sub.got.some((p) => p.type === "suback"));
    const pub = await first.open("pub", true);
    const msg = (topic: string, id: number): Packet => ({
      type: "publish", topic, payload: new TextEncoder().encode(topic), qos: 1, retain: false, dup: false, packetId: id, properties: {},
    });
    pub.send(msg("r/delivered-unacked", 1));
    await until(() => sub.publishes().length === 1, "first delivery");
    expect(sub.publishes()[0]!.dup).toBe(false);
    sub.duplex.close(); // no PUBACK: the delivery stays in flight
    await until(() => sub.closed);
    pub.send(msg("r/queued", 2));
    await until(() => pub.got.filter((p) => p.type === "puback").length === 2, "pubacks");
    await first.broker.close();

    const second = await boot(dir);
    const back = await second.open("keeper", false);
    expect(back.got[0]).toMatchObject({ type: "connack", sessionPresent: true });
    await until(() => back.publishes().length === 2, "redelivery after restart");
    const [again, queued] = back.publishes();
    expect(again).toMatchObject({ topic: "r/delivered-unacked", dup: true, qos: 1 });
    expect(queued).toMatchObject({ topic: "r/queued", qos: 1 });
    await second.broker.close();
  });

  it("[MQTT-3.1.2-24] the driver's timer closes a silent connection after 1.5 x keep alive", async () => {
    const transport = memoryTransport();
    const broker = createBroker({ transports: [transport] });
    await broker.listen();
    const c = new Raw(transport.connect());
    c.send(connect("quiet", true, 1));
    await until(() => c.got.some((p) => p.type === "connack"));
    const start = performance.now();
    await until(() => c.closed, "keep-alive close");
    // Not a speed threshold: the close must not come before the 1.5 s grace has passed.
    expect(performance.now() - start).toBeGreaterThanOrEqual(1400);
    await broker.close();
  });
});
