// The driver with the real core and codec over the memory transport: bytes in, bytes out.
import { describe, expect, it } from "vitest";
import { encode, type Packet, type ProtocolVersion, type QoS } from "@harbormq/codec";
import type { StoreWrite } from "@harbormq/core";
import { createBroker, MemoryStore, type BrokerOptions, type HarborBroker, type Verdict } from "@harbormq/broker";
import { memoryTransport, type MemoryTransport } from "@harbormq/transport-memory";
import { connect, puback, publish, RawClient, subscribe } from "./fixtures/raw-client.js";
import { turn, until } from "./transport-conformance.js";

/** MemoryStore that records apply calls and can hold them until released. */
class GatedStore extends MemoryStore {
  readonly applied: (readonly StoreWrite[])[] = [];
  closedCalls = 0;
  gate: Promise<void> | undefined;
  private open: (() => void) | undefined;
  hold(): void {
    this.gate = new Promise((resolve) => (this.open = resolve));
  }
  release(): void {
    this.open?.();
    this.gate = undefined;
  }
  override async apply(writes: readonly StoreWrite[]): Promise<void> {
    this.applied.push(writes);
    const gate = this.gate;
    if (gate !== undefined) await gate;
    return super.apply(writes);
  }
  override close(): Promise<void> {
    this.closedCalls++;
    return super.close();
  }
}

async function start(options: Partial<BrokerOptions> & { highWaterMark?: number } = {}) {
  const transport = memoryTransport(options.highWaterMark === undefined ? {} : { highWaterMark: options.highWaterMark });
  const store = (options.store as GatedStore | undefined) ?? new GatedStore();
  const broker = createBroker({ ...options, transports: [transport], store });
  await broker.listen();
  return { broker, store, transport };
}

async function client(transport: MemoryTransport, id: string, options: { clean?: boolean; version?: ProtocolVersion } = {}) {
  const c = new RawClient(transport.connect(), options.version ?? 4);
  c.send(connect(id, options.clean ?? true, options.version ?? 4));
  await until(() => c.count("connack") === 1, `connack for ${id}`);
  return c;
}

async function settle(broker: HarborBroker, rounds = 5): Promise<void> {
  void broker;
  for (let i = 0; i < rounds; i++) await turn();
}

describe("driver with the real core", () => {
  it("connects, subscribes and routes a publish through bytes", async () => {
    const { broker, transport } = await start();
    const sub = await client(transport, "sub");
    sub.send(subscribe("a/+", 1));
    await until(() => sub.count("suback") === 1);
    const pub = await client(transport, "pub");
    pub.send(publish("a/b", "hello", 1, 7));
    await until(() => pub.count("puback") === 1 && sub.publishes().length === 1);
    expect(new TextDecoder().decode(sub.publishes()[0]!.payload)).toBe("hello");
    expect(sub.publishes()[0]!.qos).toBe(1);
    await broker.close();
  });

  it("group commit: many QoS 1 publishes in one turn make one store.apply", async () => {
    const { broker, store, transport } = await start();
    const sub = await client(transport, "gc-sub", { clean: false });
    sub.send(subscribe("gc/#", 1));
    await until(() => sub.count("suback") === 1);
    const pub = await client(transport, "gc-pub");
    await settle(broker);
    const before = store.applied.length;
    const burst: Packet[] = [];
    for (let i = 1; i <= 50; i++) burst.push(publish(`gc/${i}`, `m${i}`, 1, i));
    pub.send(...burst);
    await until(() => pub.count("puback") === 50, "50 pubacks");
    // The 50 publishes (message-put + queue-put each) are one batch; acknowledging deliveries
    // may add batches later, but the burst itself is a single apply.
    expect(store.applied[before]!.filter((w) => w.op === "message-put")).toHaveLength(50);
    expect(store.applied.slice(before + 1).every((b) => !b.some((w) => w.op === "message-put"))).toBe(true);
    await broker.close();
  });

  it("sends nothing that depends on a write before the store made it durable", async () => {
    const { broker, store, transport } = await start();
    const sub = await client(transport, "d-sub", { clean: false });
    sub.send(subscribe("d/#", 1));
    await until(() => sub.count("suback") === 1);
    const pub = await client(transport, "d-pub");
    await settle(broker);
    const subBytes = sub.bytes;
    store.hold();
    pub.send(publish("d/x", "held", 1, 1));
    await until(() => store.applied.length > 0 && store.applied.at(-1)!.some((w) => w.op === "message-put"), "apply");
    await settle(broker, 20);
    expect(pub.count("puback")).toBe(0);
    expect(sub.bytes).toBe(subBytes);
    store.release();
    await until(() => pub.count("puback") === 1 && sub.publishes().length === 1, "after durable");
    await broker.close();
  });

  it("a subscriber that never reads costs bounded memory and does not slow the others", async () => {
    const maxQueuedMessages = 50;
    const { broker, transport } = await start({
      highWaterMark: 16 * 1024,
      congestedBudget: 16 * 1024,
      config: { maxQueuedMessages, maxInflight: 10 },
    });
    const slow = await client(transport, "slow", { clean: false });
    slow.send(subscribe("flood/#", 1));
    await until(() => slow.count("suback") === 1);
    const fast = await client(transport, "fast");
    fast.send(subscribe("flood/#", 0));
    await until(() => fast.count("suback") === 1);
    slow.duplex.pause();
    const pub = await client(transport, "flooder");
    const payload = new Uint8Array(2000);
    const total = 400;
    for (let i = 0; i < total; i += 20) {
      const batch: Packet[] = [];
      for (let j = 1; j <= 20; j++) batch.push(publish(`flood/${i + j}`, payload, (j % 2) as QoS, i + j));
      pub.send(...batch);
      await settle(broker, 3);
    }
    await until(() => fast.publishes().length === total, "fast subscriber gets everything");
    const session = broker.sessionStats("slow")!;
    expect(session.queued).toBeLessThanOrEqual(maxQueuedMessages);
    expect(session.dropped + broker.stats.droppedCongested).toBeGreaterThan(0);
    // What the driver holds for the stalled connection stays small: at most the in-flight window.
    expect(broker.stats.bufferedBytes).toBeLessThan(16 * 1024 + 10 * 2100);
    slow.duplex.resume();
    await until(() => slow.publishes().length > 0, "slow gets messages once it reads");
    await broker.close();
  });

  describe("hostile input on one connection while another keeps receiving", () => {
    async function withVictim(attack: (bad: RawClient, transport: MemoryTransport) => Promise<void>, config = {}) {
      const { broker, transport } = await start({ config });
      const good = await client(transport, "good");
      good.send(subscribe("live/#", 0));
      await until(() => good.count("suback") === 1);
      const pub = await client(transport, "pub");
      const bad = new RawClient(transport.connect());
      await attack(bad, transport);
      await until(() => bad.closed, "attacker closed");
      pub.send(publish("live/1", "still here", 0));
      await until(() => good.publishes().length === 1, "victim still served");
      expect(good.closed).toBe(false);
      await broker.close();
      return bad;
    }

    it("garbage bytes", async () => {
      await withVictim(async (bad) => bad.raw([0x10, 0x05, 0xff, 0xff, 0xff, 0xff, 0xff]));
    });

    it("a huge declared length is refused before its body arrives (0x95)", async () => {
      await withVictim(async (bad) => {
        bad.send(connect("bad"));
        await until(() => bad.count("connack") === 1);
        bad.raw([0x30, 0xff, 0xff, 0xff, 0x7f]);
      }, { maxPacketSize: 1024 });
    });

    describe("MQTT 3.1.1", () => {
      it("[MQTT-3.1.0-1] a PUBLISH before CONNECT closes only that connection", async () => {
        const bad = await withVictim(async (b) => b.send(publish("live/x", "sneaky", 0)));
        expect(bad.count("publish")).toBe(0);
      });
    });

    it("a CONNECT trickling in byte by byte is closed by the connect timeout", async () => {
      await withVictim(
        async (bad) => {
          const bytes = encode(connect("slowpoke"), 4);
          for (let i = 0; i < bytes.length - 1 && !bad.closed; i++) {
            bad.raw([bytes[i]!]);
            await new Promise((resolve) => setTimeout(resolve, 20));
          }
        },
        { connectTimeout: 100 },
      );
    });
  });

  it("graceful shutdown: pending writes become durable, clients are told and closed, the store is closed", async () => {
    const { broker, store, transport } = await start();
    const a = await client(transport, "sa", { version: 5 });
    const p = await client(transport, "sp", { clean: false });
    const b = await client(transport, "sb");
    p.send(subscribe("s/#", 1));
    await until(() => p.count("suback") === 1);
    store.hold();
    b.send(publish("s/1", "last", 1, 1));
    await until(() => store.applied.at(-1)?.some((w) => w.op === "message-put") === true);
    const closing = broker.close();
    await settle(broker, 10);
    expect(a.closed).toBe(false);
    store.release();
    await closing;
    expect(store.closedCalls).toBe(1);
    expect(a.closed && b.closed && p.closed).toBe(true);
    expect(store.applied.flat().some((w) => w.op === "message-put")).toBe(true);
    // MQTT 5 clients learn why: DISCONNECT 0x8B server shutting down.
    expect(a.received.at(-1)).toMatchObject({ type: "disconnect", reasonCode: 0x8b });
    expect(() => transport.connect()).toThrow();
  });

  it("pages a long offline queue back in from the store (load -> loaded) in order", async () => {
    const { broker, store, transport } = await start({ config: { queueWindow: 5, maxInflight: 3 } });
    const loads: number[] = [];
    const load = store.load.bind(store);
    store.load = (clientId, afterSeq, max) => {
      loads.push(afterSeq);
      return load(clientId, afterSeq, max);
    };
    const sub = await client(transport, "pager", { clean: false });
    sub.send(subscribe("page/#", 1));
    await until(() => sub.count("suback") === 1);
    sub.send({ type: "disconnect", reasonCode: 0, properties: {} });
    await until(() => sub.closed);
    const pub = await client(transport, "pub");
    for (let i = 1; i <= 30; i++) pub.send(publish(`page/${i}`, `${i}`, 1, i));
    await until(() => pub.count("puback") === 30, "pubacks");
    const back = await client(transport, "pager", { clean: false });
    // Acknowledge as they come so the in-flight window keeps moving.
    let acked = 0;
    await until(() => {
      for (const p of back.publishes().slice(acked)) back.send(puback(p.packetId!));
      acked = back.publishes().length;
      return acked === 30;
    }, "all 30 delivered");
    expect(back.publishes().map((p) => p.topic)).toEqual(Array.from({ length: 30 }, (_, i) => `page/${i + 1}`));
    expect(loads.length).toBeGreaterThan(0);
    await broker.close();
  });

  it("shutdown cuts off a client that does not take its last bytes within shutdownTimeout", async () => {
    const { broker, transport } = await start({ shutdownTimeout: 100, highWaterMark: 1024 });
    const stuck = await client(transport, "stuck");
    stuck.send(subscribe("big/#", 0));
    await until(() => stuck.count("suback") === 1);
    stuck.duplex.pause();
    const pub = await client(transport, "pub");
    pub.send(publish("big/1", new Uint8Array(64 * 1024), 0));
    await settle(broker, 10);
    await broker.close();
    expect(broker.stats.connectionsOpen).toBe(0);
    stuck.duplex.resume();
    await until(() => stuck.closed, "stuck client closed");
  });

  it("answers hooks and reports events", async () => {
    const events: string[] = [];
    const { broker, transport } = await start({
      hooks: {
        authenticate: async ({ clientId }) => clientId !== "mallory",
        authorizeSubscribe: ({ filter }) => (filter.startsWith("secret/") ? false : 0),
        onClientConnected: (e) => void events.push(`connected ${e.clientId}`),
        onClientDisconnected: (e) => void events.push(`disconnected ${e.clientId ?? "?"}`),
      },
    });
    const m = new RawClient(transport.connect());
    m.send(connect("mallory"));
    await until(() => m.count("connack") === 1);
    expect(m.received[0]).toMatchObject({ type: "connack", reasonCode: 4 });
    const c = await client(transport, "carol");
    c.send({
      type: "subscribe",
      packetId: 3,
      subscriptions: [
        { topicFilter: "secret/x", qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0 },
        { topicFilter: "open/x", qos: 2, noLocal: false, retainAsPublished: false, retainHandling: 0 },
      ],
      properties: {},
    });
    await until(() => c.count("suback") === 1);
    expect(c.received.find((p) => p.type === "suback")).toMatchObject({ reasonCodes: [0x80, 0] });
    c.send({ type: "disconnect", reasonCode: 0, properties: {} });
    await until(() => events.includes("disconnected carol"));
    expect(events).toContain("connected carol");
    expect(events.some((e) => e.includes("mallory") && e.startsWith("connected"))).toBe(false);
    await broker.close();
  });

  it("onMessageDropped reports each message a full queue drops (queue-full), as onEvent does", async () => {
    const dropped: unknown[] = [];
    const viaOnEvent: unknown[] = [];
    const disconnected: string[] = [];
    const { broker, transport } = await start({
      config: { maxQueuedMessages: 2 },
      hooks: {
        onMessageDropped: (e) => void dropped.push(e),
        onEvent: (e) => void (e.type === "message-dropped" && viaOnEvent.push(e)),
        onClientDisconnected: (e) => void disconnected.push(e.clientId ?? "?"),
      },
    });
    const sub = await client(transport, "slow", { clean: false });
    sub.send(subscribe("q/#", 1));
    await until(() => sub.count("suback") === 1);
    sub.send({ type: "disconnect", reasonCode: 0, properties: {} });
    await until(() => disconnected.includes("slow"), "slow offline");
    const pub = await client(transport, "pub");
    for (let i = 1; i <= 5; i++) pub.send(publish(`q/${i}`, `m${i}`, 1, i));
    await until(() => pub.count("puback") === 5, "5 pubacks");
    await until(() => dropped.length === 3, "3 drops");
    // drop-new: the queue keeps q/1 and q/2, the three after them are dropped.
    expect(dropped).toEqual([3, 4, 5].map((i) => ({
      type: "message-dropped", clientId: "slow", topic: `q/${i}`, qos: 1, reason: "queue-full", policy: "drop-new",
    })));
    expect(viaOnEvent).toEqual(dropped);
    expect(broker.sessionStats("slow")!.dropped).toBe(3);
    const back = await client(transport, "slow", { clean: false });
    await until(() => back.publishes().length === 2, "the two queued messages");
    expect(back.publishes().map((p) => p.topic)).toEqual(["q/1", "q/2"]);
    await broker.close();
  });

  it("[MQTT-3.3.5-2] waits for an async authorizePublish and honours its answer: allow routes; deny and a rejection are acknowledged but not routed", async () => {
    // Each call waits until the test answers it, so the broker must wait for the promise.
    const pending: { topic: string; answer: (ok: boolean) => void; fail: (e: Error) => void }[] = [];
    const denied: string[] = [];
    const { broker, transport } = await start({
      hooks: {
        authorizePublish: ({ topic }) =>
          new Promise<boolean>((resolve, reject) => pending.push({ topic, answer: resolve, fail: reject })),
        onEvent: (e) => void (e.type === "publish-denied" && denied.push(e.topic)),
      },
    });
    const sub = await client(transport, "reader");
    sub.send(subscribe("auth/#", 1));
    await until(() => sub.count("suback") === 1);
    const pub = await client(transport, "writer");
    const pubacks = () => pub.received.filter((p) => p.type === "puback");

    pub.send(publish("auth/allowed", "yes", 1, 1));
    await until(() => pending.length === 1, "the hook is asked");
    expect(pending[0]!.topic).toBe("auth/allowed");
    await settle(broker);
    expect(pubacks()).toEqual([]); // not acknowledged before the hook answered
    expect(sub.publishes()).toEqual([]);
    pending[0]!.answer(true);
    await until(() => pubacks().length === 1 && sub.publishes().length === 1, "allowed publish routed");
    expect(pubacks()[0]).toMatchObject({ packetId: 1, reasonCode: 0 });

    pub.send(publish("auth/denied", "no", 1, 2));
    await until(() => pending.length === 2, "the hook is asked again");
    pending[1]!.answer(false);
    // MQTT 3.1.1 has no way to say no: a positive acknowledgement, and the message goes nowhere.
    await until(() => pubacks().length === 2, "denied publish acknowledged");
    expect(pubacks()[1]).toMatchObject({ packetId: 2 });

    pub.send(publish("auth/failed", "no", 1, 3));
    await until(() => pending.length === 3, "the hook is asked a third time");
    pending[2]!.fail(new Error("auth service down"));
    await until(() => pubacks().length === 3, "publish with a failed hook acknowledged");
    expect(pubacks()[2]).toMatchObject({ packetId: 3 });

    // A last allowed publish: delivery is in order, so the refused ones would have arrived first.
    pub.send(publish("auth/allowed", "again", 1, 4));
    await until(() => pending.length === 4, "the hook is asked a fourth time");
    pending[3]!.answer(true);
    await until(() => sub.publishes().length === 2, "second allowed publish routed");
    expect(sub.publishes().map((p) => p.topic)).toEqual(["auth/allowed", "auth/allowed"]);
    expect(denied).toEqual(["auth/denied", "auth/failed"]);
    await broker.close();
  });

  it("[MQTT-3.3.4-1] [MQTT-3.3.5-2] MQTT 5: an async authorizePublish refusal is answered with its reason code (0x87 for false or a code the ack cannot carry, 0 included) and not routed", async () => {
    const answers: Record<string, Verdict> = {
      "auth/no": false,
      "auth/zero": { ok: false, reasonCode: 0 }, // a refusal with a success code is still a refusal
      "auth/quota": { ok: false, reasonCode: 0x97 },
      "auth/yes": true,
    };
    const denied: [string, number][] = [];
    const { broker, transport } = await start({
      hooks: {
        authorizePublish: async ({ topic }) => {
          await new Promise((r) => setTimeout(r, 1));
          return answers[topic] ?? false;
        },
        onEvent: (e) => void (e.type === "publish-denied" && denied.push([e.topic, e.reason])),
      },
    });
    const sub = await client(transport, "reader5", { version: 5 });
    sub.send(subscribe("auth/#", 1));
    await until(() => sub.count("suback") === 1);
    const pub = await client(transport, "writer5", { version: 5 });
    const acks = () => pub.received.filter((p) => p.type === "puback" || p.type === "pubrec") as { type: string; packetId: number; reasonCode: number }[];
    pub.send(publish("auth/no", "x", 1, 1));
    pub.send(publish("auth/zero", "x", 1, 2));
    pub.send(publish("auth/zero", "x", 2, 3));
    pub.send(publish("auth/quota", "x", 1, 4));
    pub.send(publish("auth/yes", "ok", 1, 5));
    await until(() => acks().length === 5, "five acknowledgements");
    expect(acks().map((a) => [a.type, a.packetId, a.reasonCode])).toEqual([
      ["puback", 1, 0x87],
      ["puback", 2, 0x87],
      ["pubrec", 3, 0x87],
      ["puback", 4, 0x97],
      ["puback", 5, 0],
    ]);
    await until(() => sub.publishes().length === 1, "the allowed message");
    await settle(broker);
    expect(sub.publishes().map((p) => p.topic)).toEqual(["auth/yes"]);
    expect(denied).toEqual([
      ["auth/no", 0x87],
      ["auth/zero", 0x87],
      ["auth/zero", 0x87],
      ["auth/quota", 0x97],
    ]);
    await broker.close();
  });

  it("rejects invalid options with the key and the expected type", () => {
    expect(() => createBroker({ transports: [], config: { maxQos: 3 as QoS } })).toThrow(/config\.maxQos/);
    expect(() => createBroker({ transports: [], config: { maxInflihgt: 5 } as never })).toThrow(/maxInflihgt: unknown key/);
    expect(() => createBroker({ transports: [{} as never] })).toThrow(/transports/);
    // 0 would leave no window to send or page through (found by review: the queue paged forever).
    for (const key of ["maxInflight", "queueWindow", "queueWindowBytes", "maxPacketSize"] as const) {
      expect(() => createBroker({ transports: [], config: { [key]: 0 } })).toThrow(new RegExp(`config\\.${key}.*>= 1`));
    }
  });
});

/** A MemoryStore whose apply fails (like a full disk) for the first batch `failOn` matches. */
class FailingStore extends GatedStore {
  failed = 0;
  constructor(private readonly failOn: (writes: readonly StoreWrite[]) => boolean) {
    super();
  }
  override async apply(writes: readonly StoreWrite[]): Promise<void> {
    if (this.failed === 0 && this.failOn(writes)) {
      this.failed++;
      this.applied.push(writes);
      throw new Error("SQLITE_FULL: database or disk is full");
    }
    return super.apply(writes);
  }
}

describe("a failed store write stops the broker (fail-stop)", () => {
  async function failing(failOn: (writes: readonly StoreWrite[]) => boolean) {
    const fatal: Error[] = [];
    const store = new FailingStore(failOn);
    const { broker, transport } = await start({ store, onFatal: (e) => fatal.push(e) });
    return { broker, transport, store, fatal };
  }

  it("[MQTT-4.3.2-2] a QoS 1 PUBLISH whose write failed is never acknowledged; every connection is cut and onFatal reports it once", async () => {
    const { broker, transport, store, fatal } = await failing((w) => w.some((x) => x.op === "message-put"));
    const sub = await client(transport, "f-sub", { clean: false });
    sub.send(subscribe("f/#", 1));
    await until(() => sub.count("suback") === 1);
    const other = await client(transport, "f-other");
    const pub = await client(transport, "f-pub");
    pub.send(publish("f/x", "lost?", 1, 1));
    await until(() => fatal.length === 1 && pub.closed && sub.closed && other.closed, "fail-stop");
    expect(store.failed).toBe(1);
    expect(fatal[0]!.message).toMatch(/disk is full/);
    expect(pub.count("puback")).toBe(0);
    expect(sub.publishes()).toHaveLength(0);
    // onFatal comes once the transports are closed: the broker no longer listens.
    expect(() => transport.connect()).toThrow(/not listening/);
    await broker.close();
    expect(fatal).toHaveLength(1);
  });

  it("[MQTT-4.3.3-2] no PUBREL goes out when the write that records it (queue-update released) failed", async () => {
    const { broker, transport, fatal } = await failing((w) => w.some((x) => x.op === "queue-update" && x.state === "released"));
    const sub = await client(transport, "r-sub", { clean: false });
    sub.send(subscribe("r/#", 2));
    await until(() => sub.count("suback") === 1);
    const pub = await client(transport, "r-pub");
    pub.send(publish("r/x", "two", 2, 1));
    await until(() => sub.publishes().length === 1, "delivery");
    const id = sub.publishes()[0]!.packetId!;
    sub.send({ type: "pubrec", packetId: id, reasonCode: 0, properties: {} });
    await until(() => fatal.length === 1 && sub.closed, "fail-stop");
    expect(sub.count("pubrel")).toBe(0);
    await broker.close();
  });

  it("a write that fails during close() stops the broker too: onFatal is called once, before close() resolves", async () => {
    const { broker, transport, fatal } = await failing((w) => w.some((x) => x.op === "session-put" && x.session.disconnectedAt !== undefined));
    await client(transport, "c-sub", { clean: false });
    await broker.close();
    expect(fatal).toHaveLength(1);
    await broker.close();
    expect(fatal).toHaveLength(1);
  });

  it("[MQTT-3.8.4-1] no SUBACK for a subscription whose write failed", async () => {
    const { broker, transport, fatal } = await failing((w) => w.some((x) => x.op === "subscription-put"));
    const sub = await client(transport, "s-sub", { clean: false });
    sub.send(subscribe("s/#", 1));
    await until(() => fatal.length === 1 && sub.closed, "fail-stop");
    expect(sub.count("suback")).toBe(0);
    await broker.close();
  });
});
