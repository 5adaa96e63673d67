// Persistent sessions, paging and restore at their edges (a review, session 5): paged queues in
// order, limits counting paged entries, session lifecycle and expiry across restarts, in-flight
// and QoS 2 state across restart and takeover, queueQos0 behind a backlog, a crash fuzz with
// takeovers and small windows, and the MemoryStore against the test's map store.
import type { PublishPacket } from "@harbormq/codec";
import { describe, expect, it } from "vitest";
import { Sim, ack, dec, drain, offline as offlineOn } from "./sim.js";

/** A persistent subscriber "s" on "t", offline, and a connected publisher "p". */
const offline = (config = {}, qos: 0 | 1 | 2 = 1, v5 = false) => offlineOn(config, qos, "t", v5);
import { MemoryStore } from "../../broker/src/memory-store.js";
import { crashWalk } from "./crash-walk.js";
import { loadPage, snapshotOf } from "./fake-store.js";

const V5P = { version: 5 as const, clean: false, sessionExpiry: 3600 };

const pl = (ps: PublishPacket[]) => ps.map((p) => dec(p.payload));

describe("drop-oldest with a paged-out queue", () => {
  it("drops the oldest queued message, not the new one, when the older ones were paged out to the store", () => {
    const sim = offline({ queueWindow: 2, maxQueuedMessages: 5, overflowPolicy: "drop-oldest" });
    for (let i = 1; i <= 8; i++) sim.publish("p", "t", String(i), 1);
    sim.connect("s", { clean: false });
    expect(drain(sim, "s")).toEqual(["4", "5", "6", "7", "8"]);
    expect(sim.broker.sessionStats("s")).toMatchObject({ dropped: 3 });
  });

  it("the same across a restart (the paged queue restored)", () => {
    const sim = offline({ queueWindow: 2, maxQueuedMessages: 5, overflowPolicy: "drop-oldest" });
    for (let i = 1; i <= 5; i++) sim.publish("p", "t", String(i), 1);
    sim.crash();
    sim.connect("p");
    for (let i = 6; i <= 8; i++) sim.publish("p", "t", String(i), 1);
    sim.connect("s", { clean: false });
    expect(drain(sim, "s")).toEqual(["4", "5", "6", "7", "8"]);
  });
});

describe("paging and ordering", () => {
  it("a paged queue is delivered in order, online publishes interleaved", () => {
    const sim = offline({ queueWindow: 3, maxInflight: 2 });
    for (let i = 1; i <= 10; i++) sim.publish("p", "t", String(i), 1);
    sim.connect("s", { clean: false });
    const got: string[] = [];
    // ack one at a time, publishing while paging
    for (let k = 0; k < 40; k++) {
      const b = sim.take("s");
      for (const p of b) if (p.type === "publish") got.push(dec(p.payload));
      const first = b.find((p): p is PublishPacket => p.type === "publish");
      if (k < 5) sim.publish("p", "t", String(11 + k), 1);
      for (const p of b) if (p.type === "publish") sim.send("s", ack("puback", p.packetId!));
      if (b.length === 0 && first === undefined && k > 10) break;
    }
    got.push(...drain(sim, "s"));
    expect(got).toEqual(Array.from({ length: 15 }, (_, i) => String(i + 1)));
  });

  it("small queueWindowBytes pages by bytes and keeps order", () => {
    const sim = offline({ queueWindow: 100, queueWindowBytes: 10 });
    for (let i = 10; i < 40; i++) sim.publish("p", "t", String(i), 1);
    sim.crash();
    sim.connect("s", { clean: false });
    expect(drain(sim, "s")).toEqual(Array.from({ length: 30 }, (_, i) => String(i + 10)));
  });

  it("expired messages in the paged part are dropped, the rest delivered in order", () => {
    const sim = offline({ queueWindow: 2 }, 1, true);
    for (let i = 1; i <= 6; i++) sim.publish("p", "t", String(i), 1, { properties: i % 2 === 0 ? { messageExpiryInterval: 1 } : {} });
    sim.advance(2000);
    sim.connect("s", V5P);
    expect(drain(sim, "s")).toEqual(["1", "3", "5"]);
  });

  it("offline QoS 0 is not queued by default, retained flag does not limit queueing", () => {
    const sim = offline({}, 1);
    sim.publish("p", "t", "a", 0);
    sim.publish("p", "t", "b", 1, { retain: true });
    sim.publish("p", "t", "c", 2, { retain: true });
    sim.connect("s", { clean: false });
    expect(drain(sim, "s")).toEqual(["b", "c"]);
  });

  it("queueQos0 survives a restart, in order with QoS 1", () => {
    const sim = offline({ queueQos0: true, queueWindow: 2 }, 1);
    sim.publish("p", "t", "a", 0);
    sim.publish("p", "t", "b", 1);
    sim.publish("p", "t", "c", 0);
    sim.publish("p", "t", "d", 1);
    sim.publish("p", "t", "e", 0);
    sim.crash();
    sim.connect("s", { clean: false });
    expect(drain(sim, "s")).toEqual(["a", "b", "c", "d", "e"]);
  });

  it("queue count limit counts paged entries (drop-new)", () => {
    const sim = offline({ queueWindow: 2, maxQueuedMessages: 4 });
    for (let i = 1; i <= 7; i++) sim.publish("p", "t", String(i), 1);
    sim.crash();
    sim.connect("p");
    sim.publish("p", "t", "8", 1);
    sim.connect("s", { clean: false });
    expect(drain(sim, "s")).toEqual(["1", "2", "3", "4"]);
  });

  it("maxQueuedBytes counts paged entries after restart (drop-new)", () => {
    const sim = offline({ queueWindow: 1, maxQueuedBytes: 8 });
    for (let i = 1; i <= 4; i++) sim.publish("p", "t", String(i), 1);
    sim.crash();
    sim.connect("p");
    sim.publish("p", "t", "5", 1);
    sim.connect("s", { clean: false });
    expect(drain(sim, "s")).toEqual(["1", "2", "3", "4"]);
  });
});

describe("session lifecycle across restart", () => {
  it("clean 1 after clean 0 discards the old session, also after a restart", () => {
    const sim = offline({}, 1);
    sim.publish("p", "t", "x", 1);
    sim.connect("s", { clean: true });
    sim.disconnect("s");
    sim.crash();
    const ca = sim.connect("s", { clean: false });
    expect(ca).toMatchObject({ sessionPresent: false });
    sim.connect("p");
    sim.publish("p", "t", "y", 1);
    expect(sim.publishes("s")).toEqual([]);
  });

  it("clean 1 while a load is pending", () => {
    const sim = new Sim({ queueWindow: 1 }, { autoStore: false });
    sim.connect("s", { clean: false });
    sim.subscribe("s", [["t", 1]]);
    sim.confirmAll();
    sim.disconnect("s");
    sim.confirmAll();
    sim.connect("p");
    sim.confirmAll();
    for (let i = 1; i <= 4; i++) sim.publish("p", "t", String(i), 1);
    sim.confirmAll();
    sim.connect("s", { clean: false });
    sim.confirmAll();
    sim.take("s");
    sim.connect("s", { clean: true }, true);
    sim.confirmAll();
    sim.disconnect("s");
    sim.confirmAll();
    sim.crash();
    sim.autoStore = true;
    sim.take("s");
    expect(sim.connect("s", { clean: false })).toMatchObject({ sessionPresent: false });
    expect(sim.publishes("s")).toEqual([]);
  });

  it("session present after restart, subscriptions kept", () => {
    const sim = offline({}, 1);
    sim.crash();
    expect(sim.connect("s", { clean: false })).toMatchObject({ sessionPresent: true });
    sim.connect("p");
    sim.publish("p", "t", "z", 1);
    expect(pl(sim.publishes("s"))).toEqual(["z"]);
  });

  it("MQTT 5 session that expired while the broker was down is gone", () => {
    const sim = offline({}, 1, true);
    sim.publish("p", "t", "x", 1);
    sim.crash();
    sim.now += 3601 * 1000;
    expect(sim.connect("s", V5P)).toMatchObject({ sessionPresent: false });
    expect(sim.publishes("s")).toEqual([]);
  });

  it("MQTT 5 session not yet expired after restart survives", () => {
    const sim = offline({}, 1, true);
    sim.publish("p", "t", "x", 1);
    sim.crash();
    sim.now += 3000 * 1000;
    expect(sim.connect("s", V5P)).toMatchObject({ sessionPresent: true });
    expect(drain(sim, "s")).toEqual(["x"]);
  });

  it("session online at crash expires expiry after restart, not earlier", () => {
    const sim = new Sim();
    sim.connect("s", V5P);
    sim.subscribe("s", [["t", 1]]);
    sim.now = 10_000_000;
    sim.crash();
    sim.advance(3599 * 1000);
    expect(sim.connect("s", V5P)).toMatchObject({ sessionPresent: true });
  });

  it("v5 resume with expiry 0 then drop: session ends, not restored", () => {
    const sim = offline({}, 1, true);
    sim.publish("p", "t", "x", 1);
    sim.connect("s", { version: 5, clean: false, sessionExpiry: 0 });
    sim.take("s");
    sim.drop("s");
    sim.crash();
    expect(sim.connect("s", V5P)).toMatchObject({ sessionPresent: false });
  });

  it("v5 DISCONNECT with session expiry 0 ends the session in the store", () => {
    const sim = offline({}, 1, true);
    sim.connect("s", V5P);
    sim.send("s", { type: "disconnect", reasonCode: 0, properties: { sessionExpiryInterval: 0 } });
    sim.drop("s");
    sim.crash();
    expect(sim.connect("s", V5P)).toMatchObject({ sessionPresent: false });
  });
});

describe("expiry across restart", () => {
  it("v5 session resumed with expiry 0, broker crashes while it is online: gone after restart", () => {
    const sim = offline({}, 1, true);
    sim.publish("p", "t", "x", 1);
    sim.connect("s", { version: 5, clean: false, sessionExpiry: 0 });
    sim.take("s");
    sim.crash();
    expect(sim.connect("s", V5P)).toMatchObject({ sessionPresent: false });
    expect(sim.publishes("s")).toEqual([]);
  });

  it("3.x persistentSessionExpiry passes while the broker is down", () => {
    const sim = offline({ persistentSessionExpiry: 10 }, 1);
    sim.publish("p", "t", "x", 1);
    sim.crash();
    sim.now += 11_000;
    expect(sim.connect("s", { clean: false })).toMatchObject({ sessionPresent: false });
    expect(sim.publishes("s")).toEqual([]);
    expect([...sim.store.sessions.keys()]).toEqual(["s"]); // only the new one
    expect(sim.store.queues.get("s")?.size ?? 0).toBe(0);
  });

  it("takeover from clean 1 to clean 0: new session, nothing of the old in the store after restart", () => {
    const sim = offline({}, 1);
    sim.publish("p", "t", "x", 1);
    sim.connect("s", { clean: true });
    expect(sim.connect("s", { clean: false }, true)).toMatchObject({ sessionPresent: false });
    sim.crash();
    expect(sim.connect("s", { clean: false })).toMatchObject({ sessionPresent: true });
    expect(sim.publishes("s")).toEqual([]);
    expect(sim.store.subscriptions.get("s")?.size ?? 0).toBe(0);
  });
});

describe("in flight and QoS 2 across reconnect / restart / takeover", () => {
  it("unacked QoS 1 resent with DUP after restart, in order, then queue", () => {
    const sim = offline({ queueWindow: 2, maxInflight: 2 });
    for (let i = 1; i <= 6; i++) sim.publish("p", "t", String(i), 1);
    sim.connect("s", { clean: false });
    const first = sim.take("s").filter((p): p is PublishPacket => p.type === "publish");
    expect(pl(first)).toEqual(["1", "2"]);
    sim.crash();
    sim.connect("s", { clean: false });
    const again = sim.publishes("s");
    expect(again.slice(0, 2).map((p) => [dec(p.payload), p.dup, p.packetId])).toEqual([
      ["1", true, first[0]!.packetId],
      ["2", true, first[1]!.packetId],
    ]);
    expect(drain(sim, "s")).toEqual(["1", "2", "3", "4", "5", "6"]);
  });

  it("QoS 2 released state survives restart: PUBREL resent, not PUBLISH", () => {
    const sim = offline({}, 2);
    sim.publish("p", "t", "q", 2);
    sim.ackAll("p");
    sim.connect("s", { clean: false });
    const [p] = sim.take("s").filter((x): x is PublishPacket => x.type === "publish");
    sim.send("s", ack("pubrec", p!.packetId!));
    sim.take("s");
    sim.crash();
    sim.connect("s", { clean: false });
    const r = sim.take("s");
    expect(r.map((x) => x.type)).toEqual(["connack", "pubrel"]);
  });

  it("incoming QoS 2 state survives restart (no double delivery)", () => {
    const sim = new Sim();
    sim.connect("sub", { clean: false });
    sim.subscribe("sub", [["t", 2]]);
    sim.connect("pub", { clean: false });
    sim.publish("pub", "t", "m", 2, { packetId: 7 });
    expect(drain(sim, "sub")).toEqual(["m"]); // delivered and completed before the crash
    sim.crash();
    sim.connect("sub", { clean: false });
    sim.connect("pub", { clean: false });
    sim.publish("pub", "t", "m", 2, { packetId: 7, dup: true });
    sim.send("pub", ack("pubrel", 7));
    expect(drain(sim, "sub")).toEqual([]);
  });

  it("takeover while a load is pending delivers everything in order once", () => {
    const sim = new Sim({ queueWindow: 2, maxInflight: 1 }, { autoStore: false });
    sim.connect("s", { clean: false });
    sim.subscribe("s", [["t", 1]]);
    sim.confirmAll();
    sim.disconnect("s");
    sim.confirmAll();
    sim.connect("p");
    sim.confirmAll();
    for (let i = 1; i <= 8; i++) sim.publish("p", "t", String(i), 1);
    sim.confirmAll();
    sim.connect("s", { clean: false });
    sim.confirmAll();
    const a = sim.take("s").filter((x): x is PublishPacket => x.type === "publish");
    sim.send("s", ack("puback", a[0]!.packetId!)); // frees the window: a load may be emitted
    sim.connect("s", { clean: false }, true);
    sim.confirmAll();
    sim.autoStore = true;
    sim.confirmAll();
    const got = drain(sim, "s");
    const uniq = got.filter((x, i) => got.indexOf(x) === i);
    expect(uniq).toEqual(["2", "3", "4", "5", "6", "7", "8"]);
  });

  it("takeover with clean 0 keeps the session; in-flight resent with DUP", () => {
    const sim = offline({ maxInflight: 5 });
    sim.publish("p", "t", "a", 1);
    sim.connect("s", { clean: false });
    const a = sim.take("s").filter((x): x is PublishPacket => x.type === "publish");
    const ca = sim.connect("s", { clean: false }, true);
    expect(ca).toMatchObject({ sessionPresent: true });
    const b = sim.publishes("s");
    expect(b.map((x) => [dec(x.payload), x.dup, x.packetId])).toEqual([["a", true, a[0]!.packetId]]);
  });
});

describe("queueQos0 and QoS 0 waiting behind a backlog", () => {
  it("with queueQos0, a QoS 0 message waiting in memory when the client drops is kept for the offline session", () => {
    const sim = new Sim({ queueQos0: true, maxInflight: 1 });
    sim.connect("s", { clean: false });
    sim.subscribe("s", [["t", 1]]);
    sim.connect("p");
    sim.publish("p", "t", "a", 1); // in flight, not acked
    sim.publish("p", "t", "b", 1); // queued
    sim.publish("p", "t", "z", 0); // queued in memory behind b
    sim.take("s");
    sim.drop("s");
    sim.publish("p", "t", "y", 0); // offline: queued (queueQos0)
    sim.connect("s", { clean: false });
    expect(drain(sim, "s")).toEqual(["a", "b", "z", "y"]);
  });

  it("online subscriber, drop-oldest, paged queue: the oldest queued is dropped", () => {
    const sim = new Sim({ queueWindow: 2, maxQueuedMessages: 5, overflowPolicy: "drop-oldest", maxInflight: 1 });
    sim.connect("s", { clean: false });
    sim.subscribe("s", [["t", 1]]);
    sim.connect("p");
    for (let i = 1; i <= 9; i++) sim.publish("p", "t", String(i), 1);
    // 1 in flight (never dropped) + 4 newest queued
    expect(drain(sim, "s")).toEqual(["1", "6", "7", "8", "9"]);
  });
});

describe("more limits with paged entries", () => {
  it("with queueQos0, a QoS 0 message to an online persistent session whose backlog is paged out is queued, not dropped", () => {
    const sim = new Sim({ queueQos0: true, maxInflight: 1, queueWindow: 1 });
    sim.connect("s", { clean: false });
    sim.subscribe("s", [["t", 1]]);
    sim.connect("p");
    for (let i = 1; i <= 4; i++) sim.publish("p", "t", String(i), 1);
    sim.publish("p", "t", "z", 0);
    expect(drain(sim, "s")).toEqual(["1", "2", "3", "4", "z"]);
  });

});

describe("crash fuzz with takeovers and small queueWindowBytes", () => {
  for (const [v5, wide] of [[false, false], [true, false], [false, true], [true, true]] as const) {
    it(`v5=${v5} wide=${wide}`, () => {
      const failures: string[] = [];
      const runs = Number(process.env.REVIEW_FUZZ_RUNS ?? 400);
      for (let seed = 1; seed <= runs && failures.length < 2; seed++) {
        const e = crashWalk(seed, 300, v5, { extended: true, wide });
        if (e.length > 0) failures.push(`seed ${seed}: ${e.slice(0, 14).join("\n")}`);
      }
      expect(failures).toEqual([]);
    });
  }
});

describe("MemoryStore restores and pages what the map store does (same write stream)", () => {
  const norm = (snap: import("@harbormq/core").Snapshot) => ({
    lastMessageId: snap.lastMessageId,
    retained: [...snap.retained].sort((a, b) => a.topic.localeCompare(b.topic)).map((m) => [m.id, m.topic, dec(m.payload)]),
    sessions: [...snap.sessions]
      .sort((a, b) => a.meta.clientId.localeCompare(b.meta.clientId))
      .map((r) => ({
        meta: r.meta,
        subs: [...r.subscriptions].sort((a, b) => a.filter.localeCompare(b.filter)),
        qos2: [...r.qos2].sort((a, b) => a - b),
        head: r.queueHead.map((e) => [e.seq, e.state, e.packetId, e.qos, e.retain, e.message.id, dec(e.message.payload)]),
        queueCount: r.queueCount,
        queueBytes: r.queueBytes,
        lastSeq: r.lastSeq,
        sendHorizon: r.sendHorizon,
      })),
  });
  it("fuzzed streams", async () => {
    const failures: string[] = [];
    for (let seed = 1; seed <= 150 && failures.length < 2; seed++) {
      const mem = new MemoryStore();
      let simRef: Sim | undefined;
      const errs = crashWalk(seed, 200, seed % 2 === 0, { extended: true, wide: seed % 3 === 0, onSim: (sim) => {
        simRef = sim;
        const anySim = sim as unknown as { settle: (w: { writes: readonly import("@harbormq/core").StoreWrite[]; failed: boolean }, ok: boolean) => void };
        const orig = anySim.settle.bind(sim);
        anySim.settle = (w, ok) => {
          orig(w, ok);
          if (!w.failed) void mem.apply(w.writes);
        };
      } });
      if (errs.length > 0) failures.push(`seed ${seed} model: ${errs[0]}`);
      const sim = simRef!;
      expect((await mem.restore(10)).sessions.length).toBeGreaterThan(0); // the hook did apply writes
      for (const win of [1, 3, 1000]) {
        const a = norm(snapshotOf(sim.store, win));
        const b = norm(await mem.restore(win));
        try {
          expect(b).toEqual(a);
        } catch (e) {
          failures.push(`seed ${seed} window ${win}: ${(e as Error).message.slice(0, 600)}`);
        }
      }
      for (const after of [0, 2, 5]) {
        const a = loadPage(sim.store, "s", after, 4).map((e) => [e.seq, e.state, e.packetId, dec(e.message.payload)]);
        const b = (await mem.load("s", after, 4)).map((e) => [e.seq, e.state, e.packetId, dec(e.message.payload)]);
        if (JSON.stringify(a) !== JSON.stringify(b)) failures.push(`seed ${seed} load ${after}: ${JSON.stringify(a)} vs ${JSON.stringify(b)}`);
      }
    }
    expect(failures).toEqual([]);
  });
});
