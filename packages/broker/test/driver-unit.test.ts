// The driver against a scripted core and a line-based toy codec: group commit, the
// send-after-durable barrier, write batching, backpressure and close handling, independent of the
// real core and codec (those are covered end to end in driver.test.ts).
import { describe, expect, it } from "vitest";
import type { Packet, ProtocolVersion } from "@harbormq/codec";
import type { Action, BrokerStats, Input, Millis, StoreWrite } from "@harbormq/core";
import { Driver, type Codec, type Core, type DecodeFailure } from "../src/driver.js";
import type { Duplex, Store } from "../src/ports.js";
import { memoryTransport } from "@harbormq/transport-memory";
import { Sink, turn, until } from "./transport-conformance.js";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** One JSON packet per line; "!" is a malformed line. */
const lineCodec: Codec = {
  decoder() {
    let buffer = "";
    return {
      push(chunk) {
        buffer += dec.decode(chunk);
      },
      next() {
        const nl = buffer.indexOf("\n");
        if (nl < 0) return undefined;
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        if (line === "!") return { type: "error", code: 0x81, message: "bad line" } as unknown as DecodeFailure;
        return JSON.parse(line) as Packet;
      },
    };
  },
  isFailure: (item): item is DecodeFailure => (item as { type: string }).type === "error",
  encodedLength: (p) => enc.encode(JSON.stringify(p) + "\n").length,
  encodeInto: (p, _v: ProtocolVersion, target, offset) => target.set(enc.encode(JSON.stringify(p) + "\n"), offset),
};

const stats: BrokerStats = {
  connections: 0, sessions: 0, subscriptions: 0, retained: 0, messagesIn: 0,
  messagesOut: 0, dropped: 0, droppedQueueFull: 0, droppedExpired: 0,
};

/** A core whose reaction to each input is a test-supplied function. */
class ScriptedCore implements Core {
  readonly inputs: Input[] = [];
  private readonly out: Action[] = [];
  deadline: Millis | undefined = undefined;
  stats = stats;
  constructor(private readonly react: (input: Input, emit: (a: Action) => void) => void) {}
  handle(_now: Millis, input: Input): void {
    this.inputs.push(input);
    this.react(input, (a) => this.out.push(a));
  }
  poll(): Action | undefined {
    return this.out.shift();
  }
  nextDeadline(): Millis | undefined {
    return this.deadline;
  }
}

class RecordingStore implements Store {
  readonly applied: (readonly StoreWrite[])[] = [];
  private releases: (() => void)[] = [];
  constructor(private readonly manual = false) {}
  restore() {
    return Promise.resolve({ sessions: [], retained: [], lastMessageId: 0 });
  }
  apply(writes: readonly StoreWrite[]): Promise<void> {
    this.applied.push(writes);
    if (!this.manual) return Promise.resolve();
    return new Promise((resolve) => this.releases.push(resolve));
  }
  release(): void {
    for (const r of this.releases.splice(0)) r();
  }
  load() {
    return Promise.resolve([]);
  }
  close() {
    return Promise.resolve();
  }
}

const ping: Packet = { type: "pingresp" };
const publish = (topic: string, qos: 0 | 1 = 0): Packet => ({
  type: "publish", topic, payload: new Uint8Array(0), qos, retain: false, dup: false,
  packetId: qos === 0 ? undefined : 1, properties: {},
});
const retainedPut = (topic: string): StoreWrite => ({ op: "retained-delete", topic });

async function setup(core: ScriptedCore, store: Store, options: { highWaterMark?: number; congestedBudget?: number; lazyCommitMs?: number; lazyCommitWrites?: number; eagerWriteBytes?: number } = {}) {
  const transport = memoryTransport(options.highWaterMark === undefined ? {} : { highWaterMark: options.highWaterMark });
  const driver = new Driver({
    core, codec: lineCodec, store, maxPacketSize: 1 << 20,
    ...(options.congestedBudget === undefined ? {} : { congestedBudget: options.congestedBudget }),
    ...(options.lazyCommitMs === undefined ? {} : { lazyCommitMs: options.lazyCommitMs }),
    ...(options.lazyCommitWrites === undefined ? {} : { lazyCommitWrites: options.lazyCommitWrites }),
    ...(options.eagerWriteBytes === undefined ? {} : { eagerWriteBytes: options.eagerWriteBytes }),
  });
  await transport.listen((d) => driver.accept(d, "memory"));
  const connect = async (): Promise<Sink> => {
    const sink = new Sink(transport.connect());
    const opens = core.inputs.filter((i) => i.type === "open").length;
    await until(() => core.inputs.filter((i) => i.type === "open").length > opens, "open");
    // Let the accept's own turn finish, so a test's writes start a fresh turn.
    for (let i = 0; i < 3; i++) await turn();
    return sink;
  };
  return { transport, driver, connect };
}
const line = (p: unknown) => enc.encode(JSON.stringify(p) + "\n");
const lines = (s: Sink) => s.text().split("\n").filter((l) => l !== "").map((l) => JSON.parse(l) as Packet);

describe("driver (scripted core)", () => {
  it("collects every persist of one turn into one store.apply and answers each op", async () => {
    let op = 0;
    const core = new ScriptedCore((input, emit) => {
      if (input.type === "packet") emit({ type: "persist", op: ++op, writes: [retainedPut("t"), retainedPut("u")] });
    });
    const store = new RecordingStore();
    const { connect } = await setup(core, store);
    const a = await connect();
    const b = await connect();
    let batch = new Uint8Array(0);
    for (let i = 0; i < 50; i++) batch = new Uint8Array([...batch, ...line({ type: "pingreq" })]);
    a.duplex.write(batch);
    b.duplex.write(batch);
    await until(() => core.inputs.filter((i) => i.type === "stored").length === 100, "stored");
    expect(store.applied.map((w) => w.length)).toEqual([200]);
    const stored = core.inputs.filter((i) => i.type === "stored");
    expect(stored.map((s) => (s as { op: number }).op)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
  });

  it("puts no send on the wire before an earlier persist is durable, and batches writes", async () => {
    let target = 0;
    const core = new ScriptedCore((input, emit) => {
      if (input.type === "open" && target === 0) target = input.conn;
      if (input.type === "packet") {
        emit({ type: "send", conn: target, packet: ping, version: 4 }); // before the persist: free to go
        emit({ type: "persist", op: 1, writes: [retainedPut("x")] });
        emit({ type: "send", conn: target, packet: publish("after"), version: 4 });
      }
    });
    const store = new RecordingStore(true);
    const { connect, driver } = await setup(core, store);
    const sub = await connect();
    const pub = await connect();
    pub.duplex.write(line({ type: "pingreq" }));
    await until(() => store.applied.length === 1, "apply");
    for (let i = 0; i < 10; i++) await turn();
    expect(lines(sub)).toEqual([ping]);
    store.release();
    await until(() => lines(sub).length === 2, "publish after durable");
    expect(lines(sub)[1]).toMatchObject({ type: "publish", topic: "after" });
    expect(driver.stats.writes).toBe(2);
  });

  it("an unordered send does not wait for earlier persists, but keeps its place behind a held send of its connection", async () => {
    let a = 0;
    let b = 0;
    const core = new ScriptedCore((input, emit) => {
      if (input.type === "open") {
        if (a === 0) a = input.conn;
        else if (b === 0) b = input.conn;
      }
      if (input.type === "packet") {
        emit({ type: "persist", op: 1, writes: [retainedPut("x")] });
        emit({ type: "send", conn: a, packet: publish("a-free"), version: 4, unordered: true });
        emit({ type: "send", conn: b, packet: publish("b-held"), version: 4 });
        emit({ type: "send", conn: b, packet: publish("b-behind"), version: 4, unordered: true });
      }
    });
    const store = new RecordingStore(true);
    const { connect } = await setup(core, store);
    const sa = await connect();
    const sb = await connect();
    sa.duplex.write(line({ type: "pingreq" }));
    await until(() => lines(sa).length === 1, "unordered send before the batch is durable");
    expect(store.applied).toHaveLength(1); // the ordered send to b made the batch commit now
    for (let i = 0; i < 5; i++) await turn();
    expect(lines(sb)).toEqual([]);
    store.release();
    await until(() => lines(sb).length === 2, "b after durable");
    expect(lines(sb).map((p) => (p as { topic: string }).topic)).toEqual(["b-held", "b-behind"]);
  });

  it("commits a batch nothing waits for lazily: later writes join it; an urgent persist, an ordered send or the time limit commits it", async () => {
    let target = 0;
    let op = 0;
    let mode: "lazy" | "urgent" | "ordered" = "lazy";
    const core = new ScriptedCore((input, emit) => {
      if (input.type === "open" && target === 0) target = input.conn;
      if (input.type !== "packet") return;
      emit({ type: "persist", op: ++op, writes: [retainedPut(`w${op}`)], urgent: mode === "urgent" });
      emit({ type: "send", conn: target, packet: publish(`m${op}`), version: 4, unordered: mode !== "ordered" });
    });
    const store = new RecordingStore();
    const { connect } = await setup(core, store, { lazyCommitMs: 60_000 });
    const c = await connect();
    for (let i = 0; i < 3; i++) {
      c.duplex.write(line({ type: "pingreq" }));
      await until(() => lines(c).length === i + 1, "unordered send");
      for (let k = 0; k < 3; k++) await turn();
    }
    expect(store.applied).toEqual([]); // three turns, nothing committed: nothing waits
    mode = "urgent";
    c.duplex.write(line({ type: "pingreq" }));
    await until(() => store.applied.length === 1, "urgent persist commits");
    expect(store.applied[0]!.map((w) => (w as { topic: string }).topic)).toEqual(["w1", "w2", "w3", "w4"]);
    mode = "lazy";
    c.duplex.write(line({ type: "pingreq" }));
    await until(() => lines(c).length === 5, "send");
    mode = "ordered";
    c.duplex.write(line({ type: "pingreq" }));
    await until(() => lines(c).length === 6, "ordered send after its batch");
    expect(store.applied.map((b) => b.length)).toEqual([4, 2]);

    // The time limit.
    const store2 = new RecordingStore();
    let t2 = 0;
    const core2 = new ScriptedCore((input, emit) => {
      if (input.type === "open" && t2 === 0) t2 = input.conn;
      if (input.type === "packet") emit({ type: "persist", op: 1, writes: [retainedPut("late")], urgent: false });
    });
    const s2 = await setup(core2, store2, { lazyCommitMs: 30 });
    const c2 = await s2.connect();
    c2.duplex.write(line({ type: "pingreq" }));
    for (let k = 0; k < 3; k++) await turn();
    expect(store2.applied).toEqual([]);
    await until(() => store2.applied.length === 1, "lazy batch committed after lazyCommitMs");
    await until(() => core2.inputs.some((i) => i.type === "stored"), "stored");

    // The size limit.
    const store3 = new RecordingStore();
    const core3 = new ScriptedCore((input, emit) => {
      if (input.type === "packet") emit({ type: "persist", op: 1, writes: [retainedPut("a"), retainedPut("b"), retainedPut("c")], urgent: false });
    });
    const s3 = await setup(core3, store3, { lazyCommitMs: 60_000, lazyCommitWrites: 3 });
    const c3 = await s3.connect();
    c3.duplex.write(line({ type: "pingreq" }));
    await until(() => store3.applied.length === 1, "lazy batch committed at lazyCommitWrites");
  });

  it("encodes all sends of a turn into one write per connection", async () => {
    let target = 0;
    const core = new ScriptedCore((input, emit) => {
      if (input.type === "open" && target === 0) target = input.conn;
      if (input.type === "packet") for (let i = 0; i < 20; i++) emit({ type: "send", conn: target, packet: publish(`t${i}`), version: 4 });
    });
    const { connect, driver } = await setup(core, new RecordingStore());
    const sub = await connect();
    sub.duplex.write(line({ type: "pingreq" }));
    await until(() => lines(sub).length === 20);
    expect(driver.stats.writes).toBe(1);
    expect(sub.chunks).toHaveLength(1);
  });

  it("writes a connection's own answers every eagerWriteBytes while a long read is processed, in order; other connections' sends wait for the end of the turn", async () => {
    const answer = (i: number) => publish(`answer-${String(i).padStart(2, "0")}`);
    const size = lineCodec.encodedLength(answer(0), 4);
    const run = async (eagerWriteBytes: number) => {
      const conns: number[] = [];
      const core = new ScriptedCore((input, emit) => {
        if (input.type === "open") conns.push(input.conn);
        if (input.type === "packet") {
          const i = Number((input.packet as { topic: string }).topic);
          emit({ type: "send", conn: conns[0]!, packet: answer(i), version: 4 });
          emit({ type: "send", conn: conns[1]!, packet: answer(i), version: 4 });
        }
      });
      const { connect, driver } = await setup(core, new RecordingStore(), { eagerWriteBytes });
      const own = await connect();
      const other = await connect();
      const read = new Uint8Array(Array.from({ length: 10 }, (_, i) => [...line(publish(String(i)))]).flat());
      own.duplex.write(read); // ten packets in one read
      await until(() => lines(own).length === 10 && lines(other).length === 10);
      const topics = (s: Sink) => lines(s).map((p) => (p as { topic: string }).topic);
      expect(topics(own)).toEqual(Array.from({ length: 10 }, (_, i) => `answer-0${i}`));
      expect(topics(other)).toEqual(topics(own));
      return { own: own.chunks.length, other: other.chunks.length, writes: driver.stats.writes };
    };
    // three answers' worth: written after the 3rd, 6th and 9th packet, the 10th at the end of the read
    expect(await run(3 * size)).toEqual({ own: 4, other: 1, writes: 5 });
    expect(await run(Infinity)).toEqual({ own: 1, other: 1, writes: 2 });
  });

  it("closes only the connection of a packet the codec refuses to encode; the others go on", async () => {
    const refusing: Codec = {
      ...lineCodec,
      encodedLength: (p, v) => {
        if (p.type === "publish" && p.topic === "unencodable") throw new RangeError("not in the table");
        return lineCodec.encodedLength(p, v);
      },
    };
    const conns: number[] = [];
    const core = new ScriptedCore((input, emit) => {
      if (input.type === "open") conns.push(input.conn);
      if (input.type === "packet") {
        emit({ type: "send", conn: conns[0]!, packet: publish("unencodable"), version: 4 });
        emit({ type: "send", conn: conns[1]!, packet: publish("fine"), version: 4 });
      }
    });
    const transport = memoryTransport();
    const errors: string[] = [];
    const driver = new Driver({ core, codec: refusing, store: new RecordingStore(), maxPacketSize: 1 << 20, logger: { error: (m: string) => errors.push(m) } });
    await transport.listen((d) => driver.accept(d, "memory"));
    const bad = new Sink(transport.connect());
    const good = new Sink(transport.connect());
    await until(() => conns.length === 2, "open");
    good.duplex.write(line({ type: "pingreq" }));
    await until(() => lines(good).length === 1 && bad.closes === 1, "delivery and close");
    expect(lines(good)[0]).toMatchObject({ topic: "fine" });
    expect(bad.bytes).toBe(0);
    expect(good.closes).toBe(0);
    expect(errors).toEqual(["cannot encode a packet; closing the connection"]);
    expect(core.inputs.filter((i) => i.type === "closed")).toHaveLength(1);
  });

  it("sizes and encodes a packet object sent to many connections once per version, and each gets the same bytes", async () => {
    const calls = { sized: 0, encoded: 0 };
    const counting: Codec = {
      ...lineCodec,
      encodedLength: (p, v) => (calls.sized++, lineCodec.encodedLength(p, v)),
      encodeInto: (p, v, t, o) => (calls.encoded++, lineCodec.encodeInto(p, v, t, o)),
    };
    const subs: number[] = [];
    const shared = publish("fan/out");
    const core = new ScriptedCore((input, emit) => {
      if (input.type === "open") subs.push(input.conn);
      if (input.type === "packet") {
        for (const conn of subs) emit({ type: "send", conn, packet: shared, version: 4 });
        for (const conn of subs) emit({ type: "send", conn, packet: shared, version: 5 });
        for (const conn of subs) emit({ type: "send", conn, packet: publish("own"), version: 4 });
      }
    });
    const transport = memoryTransport();
    const driver = new Driver({ core, codec: counting, store: new RecordingStore(), maxPacketSize: 1 << 20 });
    await transport.listen((d) => driver.accept(d, "memory"));
    const sinks: Sink[] = [];
    for (let i = 0; i < 5; i++) sinks.push(new Sink(transport.connect()));
    await until(() => subs.length === 5, "open");
    for (let i = 0; i < 3; i++) await turn();
    sinks[0]!.duplex.write(line({ type: "pingreq" }));
    await until(() => sinks.every((s) => lines(s).length === 3), "deliveries");
    for (const s of sinks) expect(lines(s).map((p) => (p as { topic: string }).topic)).toEqual(["fan/out", "fan/out", "own"]);
    // shared: per version one size, one encode into the shared bytes, one for the first connection;
    // publish("own") is a new object per connection: sized and encoded for each.
    expect(calls).toEqual({ sized: 2 + 5, encoded: 2 * 2 + 5 });
  });

  it("feeds malformed input once, ignores the rest of that stream and closes it; others go on", async () => {
    const core = new ScriptedCore(() => {});
    const { connect } = await setup(core, new RecordingStore());
    const bad = await connect();
    const good = await connect();
    bad.duplex.write(enc.encode(`!\n${JSON.stringify({ type: "pingreq" })}\n`));
    good.duplex.write(line({ type: "pingreq" }));
    await until(() => bad.closes === 1, "bad closed");
    const kinds = core.inputs.map((i) => i.type);
    expect(kinds.filter((k) => k === "malformed")).toHaveLength(1);
    expect(kinds.filter((k) => k === "packet")).toHaveLength(1);
    expect(good.closes).toBe(0);
  });

  it("pauses a congested connection, holds QoS 0 up to its budget then drops, keeps QoS 1, resumes on drain", async () => {
    let target = 0;
    const big = "x".repeat(4000);
    const core = new ScriptedCore((input, emit) => {
      if (input.type === "open" && target === 0) target = input.conn;
      if (input.type === "packet") {
        emit({ type: "send", conn: target, packet: publish(big, 0), version: 4 });
        emit({ type: "send", conn: target, packet: publish("q1", 1), version: 4 });
      }
    });
    const { connect, driver } = await setup(core, new RecordingStore(), { highWaterMark: 1000, congestedBudget: 10_000 });
    const slow = await connect();
    const pub = await connect();
    slow.duplex.pause();
    for (let i = 0; i < 20; i++) {
      pub.duplex.write(line({ type: "pingreq" }));
      await turn();
      await turn();
    }
    await until(() => driver.stats.droppedCongested > 0, "drops");
    expect(driver.stats.bytesOut).toBeLessThan(20 * 4000);
    // What waits in the driver stays within the budget plus the QoS 1 sends.
    expect(driver.stats.bufferedBytes).toBeLessThanOrEqual(10_000 + 20 * 100);
    expect(driver.stats.droppedCongested).toBeLessThan(20);
    slow.duplex.resume();
    await until(() => lines(slow).filter((p) => p.type === "publish" && p.topic === "q1").length === 20, "all QoS 1");
    expect(lines(slow).filter((p) => p.type === "publish" && p.qos === 0).length).toBe(20 - driver.stats.droppedCongested);
  });

  it("arms one timer at nextDeadline and feeds tick", async () => {
    const core = new ScriptedCore((input) => {
      if (input.type === "tick") core.deadline = undefined;
    });
    const { connect } = await setup(core, new RecordingStore());
    core.deadline = performance.timeOrigin + performance.now() + 5;
    await connect();
    await until(() => core.inputs.some((i) => i.type === "tick"), "tick");
    expect(core.inputs.filter((i) => i.type === "tick")).toHaveLength(1);
  });

  it("shutdown waits for pending store batches, flushes and closes every connection", async () => {
    let conns: number[] = [];
    const core = new ScriptedCore((input, emit) => {
      if (input.type === "open") conns.push(input.conn);
      if (input.type === "shutdown") {
        emit({ type: "persist", op: 7, writes: [retainedPut("w")] });
        for (const c of conns) emit({ type: "send", conn: c, packet: { type: "disconnect", reasonCode: 0x8b, properties: {} }, version: 5 });
        for (const c of conns) emit({ type: "close", conn: c, reason: 0x8b, message: "shutdown" });
        conns = [];
      }
    });
    const store = new RecordingStore(true);
    const { connect, driver } = await setup(core, store);
    const a = await connect();
    const b = await connect();
    const done = driver.shutdown();
    await until(() => store.applied.length === 1);
    for (let i = 0; i < 5; i++) await turn();
    expect(a.bytes).toBe(0);
    store.release();
    await done;
    expect(core.inputs.some((i) => i.type === "stored")).toBe(true);
    await until(() => a.closes === 1 && b.closes === 1);
    expect(lines(a)).toEqual([{ type: "disconnect", reasonCode: 0x8b, properties: {} }]);
  });

  it("answers authenticate from an async hook, and a throwing hook as refusal", async () => {
    const core = new ScriptedCore((input, emit) => {
      if (input.type === "packet" && input.packet.type === "connect")
        emit({ type: "authenticate", op: input.packet.keepAlive, conn: input.conn, connect: input.packet });
    });
    const transport = memoryTransport();
    const driver = new Driver({
      core, codec: lineCodec, store: new RecordingStore(), maxPacketSize: 1 << 20,
      hooks: {
        authenticate: async ({ username }) => {
          if (username === "boom") throw new Error("hook failed");
          return username === "alice";
        },
      },
    });
    await transport.listen((d) => driver.accept(d));
    const c = transport.connect();
    const connect = (keepAlive: number, username: string) => line({
      type: "connect", protocolName: "MQTT", protocolVersion: 4, clean: true, keepAlive, clientId: "c",
      username, properties: {},
    });
    c.write(connect(1, "alice"));
    c.write(connect(2, "bob"));
    c.write(connect(3, "boom"));
    await until(() => core.inputs.filter((i) => i.type === "authed").length === 3);
    const verdicts = Object.fromEntries(
      core.inputs.flatMap((i) => (i.type === "authed" ? [[i.op, i.verdict]] : [])),
    );
    expect(verdicts).toEqual({ 1: { ok: true }, 2: { ok: false, reasonCode: 0x86 }, 3: { ok: false, reasonCode: 0x80 } });
  });
});

export type { Duplex };
