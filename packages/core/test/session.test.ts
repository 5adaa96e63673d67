// Persistent sessions, queues and their limits, durability (ack after store), crash and restore,
// paging of queues from the store, session expiry.
import type { PublishPacket } from "@harbormq/codec";
import { describe, expect, it } from "vitest";
import { Sim, V5_PERSISTENT, ack, dec, drain, offline } from "./sim.js";

const payloads = (ps: PublishPacket[]) => ps.map((p) => dec(p.payload));


describe("MQTT 3.1.1", () => {
  describe("persistent sessions", () => {
    it("[MQTT-3.1.2-4] [MQTT-4.1.0-1] keeps subscriptions and state after disconnect with clean session 0", () => {
      const sim = offline();
      sim.publish("p", "t", "x", 1);
      expect(sim.broker.stats.sessions).toBe(2);
      expect(sim.connect("s", { clean: false })).toMatchObject({ sessionPresent: true });
      expect(payloads(sim.publishes("s"))).toEqual(["x"]);
    });

    it("[MQTT-3.1.2-5] queues QoS 1 and 2 for an offline session, not QoS 0 (unless queueQos0)", () => {
      const sim = offline({}, 2);
      sim.publish("p", "t", "q0", 0);
      sim.publish("p", "t", "q1", 1);
      sim.publish("p", "t", "q2", 2);
      sim.connect("s", { clean: false });
      expect(drain(sim, "s")).toEqual(["q1", "q2"]);

      const sim0 = offline({ queueQos0: true }, 2);
      sim0.publish("p", "t", "q0", 0);
      sim0.publish("p", "t", "q1", 1);
      sim0.connect("s", { clean: false });
      const ps = sim0.publishes("s");
      expect(ps.map((p) => [dec(p.payload), p.qos, p.packetId])).toEqual([
        ["q0", 0, undefined],
        ["q1", 1, ps[1]!.packetId],
      ]);
      sim0.ackAll("s");
      expect(sim0.broker.sessionStats("s")).toMatchObject({ queued: 0 });
      expect(sim0.store.queues.get("s")?.size ?? 0).toBe(0);
    });

    it("the retained flag does not limit the queue (every retained message is queued)", () => {
      const sim = offline();
      for (let i = 0; i < 3; i++) sim.publish("p", "t", String(i), 1, { retain: true });
      sim.connect("s", { clean: false });
      expect(drain(sim, "s")).toEqual(["0", "1", "2"]);
    });

    it("[MQTT-4.4.0-1] on reconnect resends in-flight messages with DUP and the same id, then PUBRELs, in order, then queued", () => {
      const sim = offline({ maxInflight: 3 }, 2);
      sim.connect("s", { clean: false });
      for (let i = 0; i < 5; i++) sim.publish("p", "t", String(i), 2);
      const first = sim.take("s").filter((p): p is PublishPacket => p.type === "publish");
      expect(payloads(first)).toEqual(["0", "1", "2"]);
      sim.send("s", ack("pubrec", first[1]!.packetId!)); // "1" released
      sim.drop("s");
      sim.take("s");
      sim.connect("s", { clean: false });
      const again = sim.received("s").slice(1);
      expect(again.map((p) => (p.type === "publish" ? `${dec(p.payload)}:${p.dup}:${p.packetId}` : `${p.type}:${(p as { packetId: number }).packetId}`))).toEqual([
        `0:true:${first[0]!.packetId}`,
        `pubrel:${first[1]!.packetId}`,
        `2:true:${first[2]!.packetId}`,
      ]);
      expect(drain(sim, "s")).toEqual(["0", "2", "3", "4"]);
    });

    it("[MQTT-3.1.2-6] [MQTT-4.1.0-2] clean session 1 discards the old session and its own at disconnect", () => {
      const sim = offline();
      sim.publish("p", "t", "x", 1);
      expect(sim.connect("s", { clean: true })).toMatchObject({ sessionPresent: false });
      expect(sim.publishes("s")).toEqual([]);
      expect(sim.store.sessions.has("s")).toBe(false);
      sim.subscribe("s", [["t", 1]]);
      expect(sim.broker.stats.sessions).toBe(2); // lives as long as the connection
      sim.disconnect("s");
      expect(sim.broker.stats.sessions).toBe(1);
      sim.publish("p", "t", "y", 1);
      expect(sim.connect("s", { clean: false })).toMatchObject({ sessionPresent: false });
      expect(sim.publishes("s")).toEqual([]);
    });

    it("clean sessions are never persisted", () => {
      const sim = new Sim();
      sim.connect("s", { clean: true });
      sim.subscribe("s", [["t", 2]]);
      sim.connect("p", { clean: true });
      sim.publish("p", "t", "x", 2);
      const ops = new Set(sim.actions.flatMap((a) => (a.type === "persist" ? a.writes.map((w) => w.op) : [])));
      expect(ops).toEqual(new Set());
    });

    it("reconnecting with clean session 0 after clean 1 makes the session persistent", () => {
      const sim = new Sim();
      sim.connect("s", { clean: true });
      sim.disconnect("s");
      sim.connect("s", { clean: false });
      expect(sim.store.sessions.has("s")).toBe(true);
    });

    it("a persistent session expires persistentSessionExpiry seconds after disconnect", () => {
      const sim = offline({ persistentSessionExpiry: 60 });
      sim.advance(59_999);
      expect(sim.broker.sessionStats("s")).toBeDefined();
      sim.advance(1);
      expect(sim.broker.sessionStats("s")).toBeUndefined();
      expect(sim.store.sessions.has("s")).toBe(false);
      expect(sim.eventsOf("session-expired")).toEqual([{ type: "session-expired", clientId: "s" }]);
    });

    it("a reconnect before expiry keeps the session; expiry counts from the last disconnect, also across a restart", () => {
      const sim = offline({ persistentSessionExpiry: 60 });
      sim.advance(30_000);
      sim.connect("s", { clean: false });
      sim.advance(100_000);
      expect(sim.broker.sessionStats("s")).toBeDefined();
      sim.disconnect("s");
      sim.advance(30_000);
      sim.crash();
      sim.advance(29_999);
      expect(sim.broker.sessionStats("s")).toBeDefined();
      sim.advance(1);
      expect(sim.broker.sessionStats("s")).toBeUndefined();
    });
  });

  describe("queue limits", () => {
    it("drop-new: maxQueuedMessages bounds the queue; drops are counted per session and in totals", () => {
      const sim = offline({ maxQueuedMessages: 3 });
      for (let i = 0; i < 5; i++) sim.publish("p", "t", String(i), 1);
      expect(sim.broker.sessionStats("s")).toMatchObject({ queued: 3, dropped: 2 });
      expect(sim.broker.stats).toMatchObject({ dropped: 2, droppedQueueFull: 2 });
      expect(sim.eventsOf("message-dropped")).toHaveLength(2);
      expect(sim.eventsOf("message-dropped")[0]).toMatchObject({ clientId: "s", reason: "queue-full", policy: "drop-new" });
      sim.connect("s", { clean: false });
      expect(drain(sim, "s")).toEqual(["0", "1", "2"]);
    });

    it("drop-oldest keeps the newest and never drops a message in flight", () => {
      const sim = offline({ maxQueuedMessages: 3, overflowPolicy: "drop-oldest", maxInflight: 1 });
      sim.connect("s", { clean: false });
      for (let i = 0; i < 6; i++) sim.publish("p", "t", String(i), 1);
      // "0" is in flight; the queue holds 3 entries: 0 (in flight) and the two newest.
      expect(sim.broker.sessionStats("s")).toMatchObject({ queued: 3, dropped: 3, inflight: 1 });
      expect(drain(sim, "s")).toEqual(["0", "4", "5"]);
    });

    it("maxQueuedBytes bounds the queue by topic + payload bytes, whichever limit comes first", () => {
      const sim = offline({ maxQueuedBytes: 10 });
      sim.publish("p", "t", "1234", 1); // 5 bytes
      sim.publish("p", "t", "1234", 1); // 10 bytes
      sim.publish("p", "t", "1", 1); // would be 12
      expect(sim.broker.sessionStats("s")).toMatchObject({ queued: 2, queuedBytes: 10, dropped: 1 });
    });

    it("a message bigger than maxQueuedBytes is dropped alone, whatever the policy", () => {
      for (const overflowPolicy of ["drop-new", "drop-oldest"] as const) {
        const sim = offline({ maxQueuedBytes: 100, overflowPolicy });
        for (let i = 0; i < 5; i++) sim.publish("p", "t", "x".repeat(10) + i, 1);
        sim.publish("p", "t", "y".repeat(500), 1);
        expect(sim.broker.sessionStats("s")).toMatchObject({ queued: 5, dropped: 1 });
        expect(sim.eventsOf("message-dropped")).toMatchObject([{ clientId: "s", reason: "too-large", policy: overflowPolicy }]);
        sim.connect("s", { clean: false });
        expect(drain(sim, "s")).toEqual([0, 1, 2, 3, 4].map((i) => "x".repeat(10) + i));
      }
    });

    it("clean sessions obey the same limits and window", () => {
      const sim = new Sim({ maxQueuedMessages: 2, maxInflight: 1 });
      sim.connect("s");
      sim.subscribe("s", [["t", 1]]);
      sim.connect("p");
      for (let i = 0; i < 4; i++) sim.publish("p", "t", String(i), 1);
      expect(sim.broker.sessionStats("s")).toMatchObject({ queued: 2, inflight: 1, dropped: 2 });
    });
  });

  describe("durability", () => {
    it("acknowledges QoS 1/2 only after the store confirmed the writes that carry the message", () => {
      const sim = offline({}, 2);
      sim.autoStore = false;
      sim.publish("p", "t", "a", 1, { packetId: 1 });
      expect(sim.received("p").slice(1)).toEqual([]);
      const persist = sim.actions.filter((a) => a.type === "persist").at(-1) as { readonly writes: readonly { op: string }[] };
      expect(persist.writes.map((w) => w.op)).toEqual(["message-put", "queue-put"]);
      sim.confirm();
      expect(sim.received("p").slice(1)).toEqual([ack("puback", 1)]);
      sim.publish("p", "t", "b", 2, { packetId: 2 });
      expect(sim.received("p").slice(1)).toEqual([ack("puback", 1)]);
      sim.confirm();
      expect(sim.received("p").slice(1)).toEqual([ack("puback", 1), ack("pubrec", 2)]);
    });

    it("an ack is also held by the driver behind a later unconfirmed persist (ordering contract)", () => {
      const sim = offline({}, 2);
      sim.autoStore = false;
      sim.publish("p", "t", "a", 1, { packetId: 1 });
      sim.publish("p", "t", "b", 1, { packetId: 2 });
      sim.confirm();
      expect(sim.received("p").slice(1)).toEqual([]);
      sim.confirm();
      expect(sim.received("p").slice(1)).toEqual([ack("puback", 1), ack("puback", 2)]);
    });

    it("records QoS 2 receive state of a persistent publisher and acks after it is stored", () => {
      const sim = new Sim({}, { autoStore: false });
      sim.connect("p", { clean: false });
      sim.confirmAll();
      sim.publish("p", "t", "x", 2, { packetId: 9 });
      expect(sim.writesOf("qos2-put")).toEqual([{ op: "qos2-put", clientId: "p", packetId: 9 }]);
      // A duplicate before the store answered waits for the same confirmation.
      sim.publish("p", "t", "x", 2, { packetId: 9, dup: true });
      expect(sim.received("p").slice(1)).toEqual([]);
      sim.confirmAll();
      expect(sim.received("p").slice(1)).toEqual([ack("pubrec", 9), ack("pubrec", 9)]);
    });

    it("[MQTT-4.8.0-2] a failed store write closes the publisher without an ack", () => {
      const sim = offline();
      sim.connect("w");
      sim.subscribe("w", ["will"]);
      sim.connect("p2", { will: { topic: "will" } });
      sim.failNext();
      sim.publish("p2", "t", "x", 1);
      expect(sim.isOpen("p2")).toBe(false);
      expect(sim.closedReason("p2")).toBe(0x80);
      expect(sim.received("p2").filter((x) => x.type === "puback")).toEqual([]);
      expect(sim.eventsOf("store-failed")).toHaveLength(1);
      expect(sim.publishes("w")).toHaveLength(1);
    });

    it("QoS 2 receive state survives reconnect and restart: a resend after crash is not routed twice", () => {
      const sim = new Sim();
      sim.connect("s", { clean: false });
      sim.subscribe("s", [["t", 2]]);
      sim.connect("p", { clean: false });
      sim.publish("p", "t", "once", 2, { packetId: 3 });
      const before = sim.take("s").filter((x): x is PublishPacket => x.type === "publish");
      expect(payloads(before)).toEqual(["once"]);
      sim.crash();
      sim.connect("s", { clean: false });
      sim.connect("p", { clean: false });
      sim.publish("p", "t", "once", 2, { packetId: 3, dup: true });
      expect(sim.received("p").at(-1)).toEqual(ack("pubrec", 3));
      sim.send("p", ack("pubrel", 3));
      expect(sim.received("p").at(-1)).toEqual(ack("pubcomp", 3));
      // The copy queued before the crash is resent with DUP and the same id; no second copy.
      expect(sim.publishes("s")).toMatchObject([{ dup: true, packetId: before[0]!.packetId }]);
      expect(drain(sim, "s")).toEqual(["once"]);
    });

    it("a restarted broker resumes exactly where the store left off", () => {
      const sim = offline({ maxInflight: 2 }, 1);
      sim.connect("s", { clean: false });
      for (let i = 0; i < 5; i++) sim.publish("p", "t", String(i), 1);
      const sent = sim.take("s").filter((p): p is PublishPacket => p.type === "publish");
      sim.send("s", ack("puback", sent[0]!.packetId!));
      sim.crash();
      expect(sim.broker.sessionStats("s")).toMatchObject({ queued: 4, inflight: 2 });
      sim.take("s");
      sim.connect("s", { clean: false });
      const resent = sim.publishes("s");
      expect(resent[0]).toMatchObject({ dup: true, packetId: sent[1]!.packetId });
      expect(drain(sim, "s")).toEqual(["1", "2", "3", "4"]);
      // message and packet ids continue after the restored ones
      sim.publish("p", "t", "after", 1);
      const ids = sim.writesOf("message-put").map((w) => w.message.id);
      expect(Math.min(...ids)).toBeGreaterThan(5);
    });

    it("[MQTT-3.3.1-1] QoS 1 sends inside the durable send horizon write no per-message mark and do not wait for the store", () => {
      const sim = offline({ maxInflight: 1, sendHorizonStep: 4 });
      for (let i = 0; i < 4; i++) sim.publish("p", "t", String(i), 1);
      sim.autoStore = false;
      sim.connect("s", { clean: false });
      // The first send waits: its "sent" mark and the horizon write are not durable yet.
      expect(sim.publishes("s")).toEqual([]);
      sim.confirmAll();
      let got = sim.take("s").filter((x): x is PublishPacket => x.type === "publish");
      expect(payloads(got)).toEqual(["0"]);
      expect(sim.writesOf("session-horizon").map((w) => w.seq)).toEqual([4]); // 1 + step, capped at the queue's end
      const marks = sim.writesOf("queue-update").length;
      // Inside the horizon: each PUBACK's delete stays unconfirmed, yet the next message goes at
      // once, without a "sent" mark, on its seq's packet id.
      for (let i = 1; i < 4; i++) {
        sim.send("s", ack("puback", got[0]!.packetId!));
        got = sim.take("s").filter((x): x is PublishPacket => x.type === "publish");
        expect(got.map((p) => [dec(p.payload), p.packetId, p.dup])).toEqual([[String(i), i + 1, false]]);
      }
      expect(sim.pendingPersists().length).toBe(3);
      expect(sim.writesOf("queue-update").length).toBe(marks);
      sim.confirmAll();
    });

    describe("send horizon across a crash", () => {
      const show = (ps: PublishPacket[]) => ps.map((p) => `${dec(p.payload)}:${p.dup ? "dup" : "new"}`);
      const pubs = (sim: Sim, name: string) => sim.take(name).filter((x): x is PublishPacket => x.type === "publish");

      it("[MQTT-4.4.0-1] [MQTT-3.3.1-1] [MQTT-4.6.0-1] what may have been sent without a mark goes again with DUP on its id, in seq order with marked (QoS 2) sends", () => {
        const sim = offline({ maxInflight: 4, sendHorizonStep: 8 }, 2);
        for (const [m, q] of [["a0", 1], ["a1", 1], ["a2", 1], ["a3", 1], ["b4", 2], ["a5", 1], ["a6", 1], ["a7", 1], ["a8", 1]] as const) sim.publish("p", "t", m, q);
        sim.connect("s", { clean: false });
        let got = pubs(sim, "s");
        expect(show(got)).toEqual(["a0:new", "a1:new", "a2:new", "a3:new"]); // marked: the horizon was not durable yet
        sim.autoStore = false;
        for (const p of got) sim.send("s", ack("puback", p.packetId!));
        // b4 (QoS 2) waits for its mark, and a5.. stay behind it on the wire.
        expect(show(pubs(sim, "s"))).toEqual([]);
        sim.confirmAll();
        got = pubs(sim, "s");
        expect(show(got)).toEqual(["b4:new", "a5:new", "a6:new", "a7:new"]);
        const ids = new Map(got.map((p) => [dec(p.payload), p.packetId]));
        sim.send("s", ack("puback", ids.get("a5")!)); // its delete is lazy: lost in the crash below
        got = pubs(sim, "s");
        expect(show(got)).toEqual(["a8:new"]); // unmarked, inside the horizon
        ids.set("a8", got[0]!.packetId);
        expect(sim.pendingPersists().length).toBe(1);
        sim.crash();
        sim.autoStore = true;
        sim.connect("s", { clean: false });
        // Everything that may have been sent comes again with DUP and its id, in seq order; the
        // fifth waits for room in the window of 4.
        got = pubs(sim, "s");
        expect(got.map((p) => [dec(p.payload), p.dup, p.packetId])).toEqual(["b4", "a5", "a6", "a7"].map((m) => [m, true, ids.get(m)]));
        expect(sim.broker.sessionStats("s")).toMatchObject({ inflight: 5, inflightWaiting: 1 });
        for (const p of got) sim.send("s", ack(p.qos === 2 ? "pubrec" : "puback", p.packetId!));
        expect(pubs(sim, "s").map((p) => [dec(p.payload), p.dup, p.packetId])).toEqual([["a8", true, ids.get("a8")]]);
      });

      it("[MQTT-4.6.0-1] a queued QoS 2 message below the horizon was not sent, so neither was anything after it", () => {
        const sim = offline({ maxInflight: 1, sendHorizonStep: 8 }, 2);
        for (const [m, q] of [["a0", 1], ["a1", 1], ["b2", 2], ["a3", 1], ["a4", 1]] as const) sim.publish("p", "t", m, q);
        sim.connect("s", { clean: false });
        let got = pubs(sim, "s");
        expect(show(got)).toEqual(["a0:new"]);
        sim.send("s", ack("puback", got[0]!.packetId!));
        expect(show(pubs(sim, "s"))).toEqual(["a1:new"]); // unmarked, inside the horizon (5)
        sim.crash();
        sim.connect("s", { clean: false });
        const order: string[] = [];
        for (let round = 0; round < 10; round++) {
          const packets = sim.take("s");
          if (packets.length === 0) break;
          for (const p of packets) {
            if (p.type === "pubrel") sim.send("s", ack("pubcomp", p.packetId));
            if (p.type !== "publish") continue;
            order.push(...show([p]));
            sim.send("s", ack(p.qos === 2 ? "pubrec" : "puback", p.packetId!));
          }
        }
        expect(order).toEqual(["a1:dup", "b2:new", "a3:new", "a4:new"]);
      });

      it("[MQTT-3.3.1-1] a never-sent QoS 2 entry dropped (expired) below the horizon: the QoS 1 sends after it wait for its delete, so none repeats without DUP", () => {
        const v5 = V5_PERSISTENT;
        const sim = offline({ sendHorizonStep: 4, maxInflight: 1 }, 2, "t", true);
        sim.publish("p", "t", "m1", 1);
        sim.publish("p", "t", "m2", 1);
        sim.publish("p", "t", "e3", 2, { properties: { messageExpiryInterval: 10 } });
        for (const m of ["m4", "m5", "m6"]) sim.publish("p", "t", m, 1);
        sim.connect("s", v5);
        const seen = new Map<string, boolean[]>();
        const see = (ps: PublishPacket[]) => {
          for (const p of ps) seen.set(dec(p.payload), [...(seen.get(dec(p.payload)) ?? []), p.dup]);
          return ps;
        };
        let got = see(pubs(sim, "s"));
        sim.send("s", ack("puback", got[0]!.packetId!));
        got = see(pubs(sim, "s"));
        sim.autoStore = false;
        sim.advance(11_000); // e3 expires before its delivery starts: dropped, its delete not durable
        sim.send("s", ack("puback", got[0]!.packetId!));
        see(pubs(sim, "s"));
        expect(sim.eventsOf("message-dropped").map((e) => e.reason)).toEqual(["expired"]);
        sim.crash();
        sim.autoStore = true;
        sim.connect("s", v5);
        for (let k = 0; k < 6; k++) {
          got = see(pubs(sim, "s"));
          for (const p of got) sim.send("s", ack(p.qos === 2 ? "pubrec" : "puback", p.packetId!));
        }
        for (const [m, dups] of seen) {
          if (m === "e3") continue;
          expect(dups.slice(1).every((d) => d), `${m}: ${dups}`).toBe(true); // every repeat has DUP
        }
        expect([...seen.keys()].filter((m) => m !== "e3").sort()).toEqual(["m1", "m2", "m4", "m5", "m6"]);
      });

      it("an unmarked QoS 1 send is always of an entry already durable: a crash cannot lose it and give its seq or id to another message", () => {
        const sim = offline({ maxInflight: 2, sendHorizonStep: 4 });
        for (let i = 0; i < 10; i++) sim.publish("p", "t", `q${i}`, 1);
        sim.connect("s", { clean: false });
        sim.autoStore = false;
        let unmarked = 0;
        for (let step = 0; step < 30; step++) {
          if (step % 3 === 0) sim.publish("p", "t", `live${step}`, 1);
          for (const p of pubs(sim, "s")) sim.send("s", ack("puback", p.packetId!));
          if (step % 2 === 0) sim.confirm();
          for (const a of sim.actions.splice(0)) {
            if (a.type !== "send" || a.packet.type !== "publish" || a.unordered !== true) continue;
            unmarked++;
            const body = dec(a.packet.payload);
            expect([...sim.store.messages.values()].some((m) => dec(m.payload) === body)).toBe(true);
          }
        }
        expect(unmarked).toBeGreaterThan(3);
        sim.confirmAll();
      });

      it("queueQos0: a stored QoS 0 message is delivered at most once across a crash", () => {
        const sim = new Sim({ queueQos0: true, maxInflight: 1, sendHorizonStep: 4 });
        sim.connect("s", { clean: false });
        sim.subscribe("s", [["t", 1]]);
        sim.disconnect("s");
        sim.connect("p");
        for (const [m, q] of [["x1", 1], ["x2", 1], ["z0", 0], ["x3", 1]] as const) sim.publish("p", "t", m, q);
        sim.connect("s", { clean: false });
        const seen: string[] = [];
        let got = pubs(sim, "s");
        seen.push(...show(got));
        sim.autoStore = false;
        for (let k = 0; k < 3; k++) {
          for (const p of got) if (p.qos === 1) sim.send("s", ack("puback", p.packetId!));
          got = pubs(sim, "s");
          seen.push(...show(got));
        }
        sim.crash();
        sim.autoStore = true;
        sim.connect("s", { clean: false });
        for (let k = 0; k < 5; k++) {
          got = pubs(sim, "s");
          seen.push(...show(got));
          for (const p of got) if (p.qos === 1) sim.send("s", ack("puback", p.packetId!));
        }
        expect(seen.filter((x) => x.startsWith("z0"))).toEqual(["z0:new"]);
      });

      it("[MQTT-3.3.2-5] [MQTT-4.3.3-7] after a crash a message that may have been sent is not dropped as expired; one the horizon never reached is", () => {
        const v5 = V5_PERSISTENT;
        const sim = offline({ sendHorizonStep: 4, maxInflight: 1 }, 1, "t", true);
        const expiring = { properties: { messageExpiryInterval: 10 } };
        for (let i = 0; i < 8; i++) sim.publish("p", "t", `e${i}`, 1, expiring);
        sim.connect("s", v5);
        let got = pubs(sim, "s");
        for (let k = 0; k < 3; k++) {
          for (const p of got) sim.send("s", ack("puback", p.packetId!));
          got = pubs(sim, "s");
        }
        expect(show(got)).toEqual(["e3:new"]); // e3 sent inside the horizon (4 + ... ), unacknowledged
        sim.crash();
        sim.advance(11_000);
        sim.connect("s", v5);
        got = pubs(sim, "s");
        expect(show(got)).toEqual(["e3:dup"]);
        sim.send("s", ack("puback", got[0]!.packetId!));
        // e4..: queued, expired; those below the restored horizon were possibly sent and go again.
        const after = show(pubs(sim, "s"));
        expect(after.every((x) => x.endsWith(":dup"))).toBe(true);
        expect(sim.eventsOf("message-dropped").map((e) => e.reason).every((r) => r === "expired")).toBe(true);
      });
    });

    it("sends held behind an unconfirmed persist are lost with it in a crash; nothing is acked that was not stored", () => {
      const sim = offline();
      sim.autoStore = false;
      sim.publish("p", "t", "lost", 1);
      sim.crash();
      expect(sim.received("p").filter((x) => x.type === "puback")).toEqual([]);
      sim.autoStore = true;
      sim.connect("s", { clean: false });
      expect(sim.publishes("s")).toEqual([]);
    });
  });

  describe("bounded memory: paging the queue from the store", () => {
    it("keeps at most queueWindow entries in memory and pages the rest in with load", () => {
      const sim = offline({ queueWindow: 4, maxInflight: 2, maxQueuedMessages: 100 });
      for (let i = 0; i < 20; i++) sim.publish("p", "t", String(i), 1);
      expect(sim.broker.sessionStats("s")).toMatchObject({ queued: 20 });
      sim.crash(); // restore with a head of 4 entries
      sim.connect("p");
      sim.connect("s", { clean: false });
      const expected = Array.from({ length: 20 }, (_, i) => String(i));
      expect(drain(sim, "s")).toEqual(expected);
      expect(sim.actions.filter((a) => a.type === "load").length).toBeGreaterThan(2);
      expect(sim.broker.sessionStats("s")).toMatchObject({ queued: 0, inflight: 0 });
    });

    it("[MQTT-4.4.0-1] in-flight entries beyond a shorter restored head are resent with DUP and their ids stay reserved", () => {
      const sim = offline({ maxInflight: 5 });
      sim.connect("s", { clean: false });
      for (let i = 0; i < 7; i++) sim.publish("p", "t", String(i), 1);
      const first = sim.take("s").filter((x): x is PublishPacket => x.type === "publish");
      expect(first).toHaveLength(5);
      Object.assign(sim.config, { queueWindow: 2 }); // the next process runs with a smaller window
      sim.crash();
      sim.connect("s", { clean: false });
      // The head of 2 is restored; the other in-flight entries are paged in at once (entries in
      // flight do not count against the window) and resent too.
      expect(sim.broker.sessionStats("s")).toMatchObject({ queued: 7, inflight: 5 });
      // Acknowledge nothing yet: the head goes again, then the rest of the in-flight entries as
      // soon as memory has room for the next page.
      const again: PublishPacket[] = [];
      for (let round = 0; round < 20; round++) {
        const batch = sim.take("s").filter((x): x is PublishPacket => x.type === "publish");
        again.push(...batch);
        // acknowledge only DUP resends, so new ids are allocated while old ones are still in use
        for (const p of batch) if (p.dup) sim.send("s", ack("puback", p.packetId!));
      }
      const dups = again.filter((p) => p.dup);
      expect(dups.map((p) => [dec(p.payload), p.packetId])).toEqual(first.map((p) => [dec(p.payload), p.packetId]));
      const fresh = again.filter((p) => !p.dup);
      expect(fresh.map((p) => dec(p.payload))).toEqual(["5", "6"]);
      expect(drain(sim, "s")).toEqual([]);
      expect(sim.broker.sessionStats("s")).toMatchObject({ inflight: 2, queued: 2 });
    });

    it("[MQTT-3.1.2-5] QoS 0 waiting in memory behind a backlog is dropped when the session goes offline, and counted", () => {
      const sim = offline({ maxInflight: 1 }, 1, "#");
      sim.publish("p", "t", "q1-a", 1);
      sim.publish("p", "t", "q1-b", 1);
      sim.connect("s", { clean: false });
      expect(sim.take("s").flatMap((p) => (p.type === "publish" ? [dec(p.payload)] : []))).toEqual(["q1-a"]);
      // "q1-b" waits for the window; a QoS 0 message must wait behind it to keep order.
      sim.publish("p", "t", "q0", 0);
      expect(sim.take("s").filter((p) => p.type === "publish")).toEqual([]);
      const before = sim.broker.stats.dropped;
      sim.disconnect("s");
      expect(sim.broker.stats.dropped).toBe(before + 1);
      expect(sim.eventsOf("message-dropped").map((e) => [e.topic, e.qos, e.reason])).toEqual([["t", 0, "disconnected"]]);
      // The QoS 1 messages stay queued; the QoS 0 one is gone.
      sim.connect("s", { clean: false });
      expect(drain(sim, "s")).toEqual(["q1-a", "q1-b"]);
    });

    it("[MQTT-4.6.0-6] queueWindowBytes bounds the memory of an offline queue of big messages, across a restore too, and it drains in order", () => {
      const sim = offline({ queueWindow: 1000, queueWindowBytes: 2000, maxQueuedMessages: 10_000, maxInflight: 2 });
      const big = (i: number) => String(i).padStart(4, "0") + "x".repeat(496); // 500 B + topic "t"
      for (let i = 0; i < 40; i++) sim.publish("p", "t", big(i), 1);
      const st = sim.broker.sessionStats("s")!;
      expect(st.queued).toBe(40);
      expect(st.queuedBytes).toBe(40 * 501);
      // Fewer than 2000 bytes plus one message: 4 entries of 501 B.
      expect(st.inMemory).toBe(4);
      expect(st.inMemoryBytes).toBe(4 * 501);
      sim.crash();
      expect(sim.broker.sessionStats("s")).toMatchObject({ queued: 40, inMemory: 4 });
      sim.connect("s", { clean: false });
      let most = 0;
      const got: string[] = [];
      for (let round = 0; round < 1000; round++) {
        const batch = sim.take("s").filter((p): p is PublishPacket => p.type === "publish");
        if (batch.length === 0) break;
        for (const p of batch) {
          got.push(dec(p.payload).slice(0, 4));
          sim.send("s", ack("puback", p.packetId!));
        }
        most = Math.max(most, sim.broker.sessionStats("s")!.inMemoryBytes);
      }
      expect(got).toEqual(Array.from({ length: 40 }, (_, i) => String(i).padStart(4, "0")));
      // Queued entries under 2000 bytes plus one message, and the two in flight.
      expect(most).toBeLessThanOrEqual(2000 + 501 + 2 * 501);
    });

    it("drop-oldest with a paged-out backlog drops the oldest queued message, not the new one", () => {
      const sim = offline({ queueWindow: 2, maxInflight: 2, maxQueuedMessages: 6, overflowPolicy: "drop-oldest" });
      for (let i = 1; i <= 6; i++) sim.publish("p", "t", String(i), 1);
      sim.connect("s", { clean: false });
      const sent = sim.take("s").filter((p): p is PublishPacket => p.type === "publish");
      expect(sent.map((p) => dec(p.payload))).toEqual(["1", "2"]);
      // Full (6): "7" evicts the oldest message not in flight, "3".
      sim.publish("p", "t", "7", 1);
      expect(sim.eventsOf("message-dropped").map((e) => e.reason)).toEqual(["queue-full"]);
      for (const p of sent) sim.send("s", ack("puback", p.packetId!));
      expect(drain(sim, "s")).toEqual(["4", "5", "6", "7"]);
    });

    it("new messages arriving while the backlog is paged out keep their order", () => {
      const sim = offline({ queueWindow: 3, maxInflight: 1 });
      for (let i = 0; i < 8; i++) sim.publish("p", "t", String(i), 1);
      sim.connect("s", { clean: false });
      const got: string[] = [];
      for (let i = 8; i < 12; i++) {
        sim.publish("p", "t", String(i), 1);
        const [pub] = sim.take("s").filter((x): x is PublishPacket => x.type === "publish");
        if (pub !== undefined) {
          got.push(dec(pub.payload));
          sim.send("s", ack("puback", pub.packetId!));
        }
      }
      got.push(...drain(sim, "s"));
      expect(got).toEqual(Array.from({ length: 12 }, (_, i) => String(i)));
    });
  });
});
