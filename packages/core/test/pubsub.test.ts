// PUBLISH in both directions, QoS flows, retained messages, SUBSCRIBE / UNSUBSCRIBE, routing.
import type { PublishPacket } from "@harbormq/codec";
import { describe, expect, it } from "vitest";
import { Sim, ack, dec, sub } from "./sim.js";

const types = (sim: Sim, name: string) => sim.received(name).map((p) => p.type);
const payloads = (ps: PublishPacket[]) => ps.map((p) => dec(p.payload));

function pair(config = {}) {
  const sim = new Sim(config);
  sim.connect("s");
  sim.connect("p");
  return sim;
}

describe("MQTT 3.1.1", () => {
  describe("QoS flows", () => {
    it("[MQTT-4.3.1-1] delivers QoS 0 with DUP 0 and no packet id", () => {
      const sim = pair();
      sim.subscribe("s", [["t", 2]]);
      sim.publish("p", "t", "x", 0);
      expect(sim.publishes("s")).toEqual([{ type: "publish", topic: "t", payload: new TextEncoder().encode("x"), qos: 0, retain: false, dup: false, packetId: undefined, properties: {} }]);
      expect(types(sim, "p")).toEqual(["connack"]);
    });

    it("[MQTT-3.3.4-1] [MQTT-4.3.2-2] [MQTT-2.3.1-6] answers QoS 1 with PUBACK of the same id; the id is then new", () => {
      const sim = pair();
      sim.subscribe("s", [["t", 1]]);
      sim.publish("p", "t", "a", 1, { packetId: 42 });
      sim.publish("p", "t", "b", 1, { packetId: 42 });
      expect(sim.received("p").slice(1)).toEqual([ack("puback", 42), ack("puback", 42)]);
      expect(payloads(sim.publishes("s"))).toEqual(["a", "b"]);
    });

    it("[MQTT-4.3.3-2] [MQTT-2.3.1-6] QoS 2 receive: PUBREC, duplicates not routed again, PUBCOMP on PUBREL, id new again", () => {
      const sim = pair();
      sim.subscribe("s", [["t", 2]]);
      sim.publish("p", "t", "a", 2, { packetId: 7 });
      sim.publish("p", "t", "a", 2, { packetId: 7, dup: true });
      expect(sim.received("p").slice(1)).toEqual([ack("pubrec", 7), ack("pubrec", 7)]);
      expect(sim.publishes("s")).toHaveLength(1);
      sim.send("p", ack("pubrel", 7));
      sim.send("p", ack("pubrel", 7)); // unknown now: still PUBCOMP
      expect(sim.received("p").slice(3)).toEqual([ack("pubcomp", 7), ack("pubcomp", 7)]);
      sim.publish("p", "t", "b", 2, { packetId: 7 });
      expect(payloads(sim.publishes("s"))).toEqual(["a", "b"]);
    });

    it("[MQTT-4.3.2-1] [MQTT-2.3.1-4] QoS 1 send: unused id, DUP 0, kept until PUBACK", () => {
      const sim = pair();
      sim.subscribe("s", [["t", 1]]);
      sim.publish("p", "t", "a", 1);
      sim.publish("p", "t", "b", 1);
      const [a, b] = sim.publishes("s");
      expect(a).toMatchObject({ qos: 1, dup: false });
      expect(b).toMatchObject({ qos: 1, dup: false });
      expect(a!.packetId).not.toBe(b!.packetId);
      expect(sim.broker.sessionStats("s")).toMatchObject({ inflight: 2, queued: 2 });
      sim.send("s", ack("puback", a!.packetId!));
      expect(sim.broker.sessionStats("s")).toMatchObject({ inflight: 1, queued: 1 });
      sim.send("s", ack("pubcomp", b!.packetId!)); // wrong kind of ack: ignored
      expect(sim.broker.sessionStats("s")).toMatchObject({ inflight: 1 });
    });

    it("[MQTT-4.3.3-1] QoS 2 send: PUBLISH until PUBREC, then PUBREL until PUBCOMP, no PUBLISH resend after PUBREL", () => {
      const sim = new Sim();
      sim.connect("s", { clean: false });
      sim.subscribe("s", [["t", 2]]);
      sim.connect("p");
      sim.publish("p", "t", "a", 2);
      const [pub] = sim.publishes("s");
      expect(pub).toMatchObject({ qos: 2, dup: false });
      const id = pub!.packetId!;
      sim.send("s", ack("pubrec", id));
      expect(sim.received("s").at(-1)).toEqual(ack("pubrel", id));
      sim.drop("s");
      sim.take("s");
      sim.connect("s", { clean: false });
      // [MQTT-4.4.0-1] only the PUBREL goes again.
      expect(sim.received("s").slice(1)).toEqual([ack("pubrel", id)]);
      sim.send("s", ack("pubcomp", id));
      expect(sim.broker.sessionStats("s")).toMatchObject({ queued: 0, inflight: 0 });
    });

    it("[MQTT-2.3.1-4] skips ids still in use when allocating", () => {
      const sim = pair({ maxInflight: 100 });
      sim.subscribe("s", [["t", 1]]);
      const seen = new Set<number>();
      for (let i = 0; i < 50; i++) sim.publish("p", "t", String(i), 1);
      for (const p of sim.publishes("s")) {
        expect(seen.has(p.packetId!)).toBe(false);
        seen.add(p.packetId!);
      }
    });

    it("[MQTT-3.3.1-1] [MQTT-3.3.1-3] DUP is 0 on first delivery even when the publisher set it, 1 on resend", () => {
      const sim = new Sim();
      sim.connect("s", { clean: false });
      sim.subscribe("s", [["t", 1]]);
      sim.connect("p");
      sim.publish("p", "t", "a", 1, { dup: true });
      expect(sim.publishes("s")[0]).toMatchObject({ dup: false });
      const id = sim.publishes("s")[0]!.packetId;
      sim.drop("s");
      sim.take("s");
      sim.connect("s", { clean: false });
      expect(sim.publishes("s")[0]).toMatchObject({ dup: true, packetId: id });
    });

    it("[MQTT-3.8.4-6] delivers at min(publish QoS, granted QoS)", () => {
      const sim = pair();
      sim.subscribe("s", [["q0", 0], ["q1", 1], ["q2", 2]]);
      for (const t of ["q0", "q1", "q2"]) for (const q of [0, 1, 2] as const) sim.publish("p", t, `${t}${q}`, q);
      expect(sim.publishes("s").map((p) => `${p.topic}:${p.qos}`)).toEqual(["q0:0", "q0:0", "q0:0", "q1:0", "q1:1", "q1:1", "q2:0", "q2:1", "q2:2"]);
    });

    it("[MQTT-3.3.5-1] overlapping subscriptions deliver one copy at the highest QoS", () => {
      const sim = pair();
      sim.subscribe("s", [["a/+", 0], ["a/#", 2], ["a/b", 1]]);
      sim.publish("p", "a/b", "x", 2);
      expect(sim.publishes("s")).toHaveLength(1);
      expect(sim.publishes("s")[0]).toMatchObject({ qos: 2 });
    });

    it("[MQTT-3.3.2-3] [MQTT-4.7.3-4] the topic sent is the published topic, unnormalised", () => {
      const sim = pair();
      sim.subscribe("s", ["a/+/c", "Ä//x", "#"]);
      sim.publish("p", "a/ b /c", "1");
      sim.publish("p", "Ä//x", "2");
      expect(sim.publishes("s").map((p) => p.topic)).toEqual(["a/ b /c", "Ä//x"]);
    });

    it("[MQTT-4.7.2-1] filters starting with a wildcard do not match $ topics", () => {
      const sim = pair();
      sim.subscribe("s", ["#", "+/x"]);
      sim.publish("p", "$SYS/x", "1");
      sim.publish("p", "$x", "2");
      expect(sim.publishes("s")).toEqual([]);
      sim.subscribe("s", ["$SYS/#"]);
      sim.publish("p", "$SYS/x", "3");
      expect(payloads(sim.publishes("s"))).toEqual(["3"]);
    });

    it("[MQTT-4.5.0-1] adds an accepted message to every matching session", () => {
      const sim = pair();
      sim.connect("s2", { clean: false });
      sim.subscribe("s", ["t"]);
      sim.subscribe("s2", [["t", 1]]);
      sim.drop("s2");
      sim.publish("p", "t", "x", 1);
      expect(sim.publishes("s")).toHaveLength(1);
      expect(sim.broker.sessionStats("s2")).toMatchObject({ queued: 1 });
      // written once, referenced by the queue entry
      expect(sim.writesOf("message-put")).toHaveLength(1);
    });

    it("[MQTT-4.6.0-5] [MQTT-4.6.0-6] delivers one publisher's messages in order, also past the in-flight window", () => {
      const sim = pair({ maxInflight: 3 });
      sim.subscribe("s", [["t", 2]]);
      for (let i = 0; i < 10; i++) sim.publish("p", "t", String(i), ((i % 3) as 0 | 1 | 2));
      const got: string[] = [];
      for (let round = 0; round < 20; round++) {
        const batch = sim.take("s");
        for (const p of batch) {
          if (p.type !== "publish") continue;
          got.push(dec(p.payload));
          if (p.qos === 1) sim.send("s", ack("puback", p.packetId!));
          if (p.qos === 2) sim.send("s", ack("pubrec", p.packetId!));
        }
        for (const p of batch) if (p.type === "pubrel") sim.send("s", ack("pubcomp", p.packetId));
      }
      expect(got).toEqual(["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]);
    });

    it("keeps at most maxInflight messages in flight and queues the rest", () => {
      const sim = pair({ maxInflight: 2 });
      sim.subscribe("s", [["t", 1]]);
      for (let i = 0; i < 5; i++) sim.publish("p", "t", String(i), 1);
      expect(sim.publishes("s")).toHaveLength(2);
      expect(sim.broker.sessionStats("s")).toMatchObject({ inflight: 2, queued: 5 });
      sim.send("s", ack("puback", sim.publishes("s")[0]!.packetId!));
      expect(sim.publishes("s")).toHaveLength(3);
    });
  });

  describe("retained messages", () => {
    it("[MQTT-3.3.1-5] [MQTT-3.3.1-6] [MQTT-3.3.1-8] stores a retained message and sends it on subscribe with RETAIN 1", () => {
      const sim = pair();
      sim.publish("p", "r/a", "A", 1, { retain: true });
      sim.publish("p", "r/b", "B", 2, { retain: true });
      sim.subscribe("s", [["r/+", 1]]);
      const ps = sim.publishes("s");
      expect(ps.map((p) => [p.topic, p.qos, p.retain]).sort()).toEqual([
        ["r/a", 1, true],
        ["r/b", 1, true],
      ]);
      expect(types(sim, "s").slice(0, 2)).toEqual(["connack", "suback"]);
    });

    it("[MQTT-3.3.1-7] a retained QoS 0 message replaces the previous one", () => {
      const sim = pair();
      sim.publish("p", "r", "old", 1, { retain: true });
      sim.publish("p", "r", "new", 0, { retain: true });
      sim.subscribe("s", [["r", 1]]);
      expect(sim.publishes("s").map((p) => [dec(p.payload), p.qos])).toEqual([["new", 0]]);
    });

    it("[MQTT-3.3.1-9] forwards to existing subscribers with RETAIN 0", () => {
      const sim = pair();
      sim.subscribe("s", ["r"]);
      sim.publish("p", "r", "x", 0, { retain: true });
      expect(sim.publishes("s")[0]).toMatchObject({ retain: false });
    });

    it("[MQTT-3.3.1-10] [MQTT-3.3.1-11] an empty retained message is forwarded, deletes, and is not stored", () => {
      const sim = pair();
      sim.publish("p", "r", "x", 0, { retain: true });
      sim.subscribe("s", ["r"]);
      sim.take("s");
      sim.publish("p", "r", "", 0, { retain: true });
      expect(sim.publishes("s")).toHaveLength(1);
      expect(sim.broker.stats.retained).toBe(0);
      expect(sim.writesOf("retained-delete")).toEqual([{ op: "retained-delete", topic: "r" }]);
      sim.publish("p", "none", "", 0, { retain: true });
      expect(sim.writesOf("retained-put")).toHaveLength(1);
      sim.connect("late");
      sim.subscribe("late", ["#"]);
      expect(sim.publishes("late")).toEqual([]);
    });

    it("[MQTT-3.3.1-12] RETAIN 0 neither stores nor replaces the retained message", () => {
      const sim = pair();
      sim.publish("p", "r", "kept", 0, { retain: true });
      sim.publish("p", "r", "passing", 0);
      sim.subscribe("s", ["r"]);
      expect(payloads(sim.publishes("s"))).toEqual(["kept"]);
    });

    it("[MQTT-3.1.2-7] retained messages survive the end of the session that published them", () => {
      const sim = new Sim();
      sim.connect("p", { clean: true });
      sim.publish("p", "r", "x", 1, { retain: true });
      sim.disconnect("p");
      sim.crash();
      sim.connect("s");
      sim.subscribe("s", ["r"]);
      expect(payloads(sim.publishes("s"))).toEqual(["x"]);
    });
  });

  describe("SUBSCRIBE", () => {
    it("[MQTT-3.8.4-1] [MQTT-3.8.4-2] [MQTT-2.3.1-7] answers every SUBSCRIBE with a SUBACK of the same id", () => {
      const sim = pair();
      expect(sim.subscribe("s", ["a"], 11)).toEqual({ type: "suback", packetId: 11, reasonCodes: [0], properties: {} });
      expect(sim.subscribe("s", ["a"], 12)).toMatchObject({ packetId: 12 });
    });

    it("[MQTT-3.8.4-4] [MQTT-3.8.4-5] [MQTT-3.9.3-1] one SUBACK with a code per filter, in order, capped by maxQos", () => {
      const sim = pair({ maxQos: 1 });
      expect(sim.subscribe("s", [["a", 2], ["b", 0], ["c", 1]])).toMatchObject({ reasonCodes: [1, 0, 1] });
      expect(sim.broker.stats.subscriptions).toBe(3);
    });

    it("[MQTT-3.8.3-2] supports wildcard filters (grants them)", () => {
      const sim = pair();
      expect(sim.subscribe("s", [["a/+/b", 1], ["#", 1]])).toMatchObject({ reasonCodes: [1, 1] });
    });

    it("[MQTT-3.8.4-3] an identical filter replaces the subscription and re-sends retained messages", () => {
      const sim = pair();
      sim.publish("p", "t", "r", 1, { retain: true });
      sim.subscribe("s", [["t", 0]]);
      sim.subscribe("s", [["t", 1]]);
      expect(sim.broker.stats.subscriptions).toBe(1);
      expect(sim.publishes("s").map((p) => [p.qos, p.retain])).toEqual([
        [0, true],
        [1, true],
      ]);
      sim.take("s");
      sim.publish("p", "t", "x", 1);
      expect(sim.publishes("s")).toHaveLength(1);
      expect(sim.publishes("s")[0]).toMatchObject({ qos: 1 });
    });

    it("[MQTT-3.3.5-2] authorisation: denied filters get 0x80, a denied publish is acknowledged but not routed", () => {
      const sim = new Sim(
        { authorizePublish: true, authorizeSubscribe: true },
        {
          authorizeSubscribe: (_c, subs) => subs.map((s) => (s.topicFilter.startsWith("secret") ? 0x80 : 1)),
          authorizePublish: (_c, topic) => !topic.startsWith("secret"),
        },
      );
      sim.connect("s");
      sim.connect("p");
      expect(sim.subscribe("s", [["secret/#", 2], ["open/#", 2]])).toMatchObject({ reasonCodes: [0x80, 1] });
      sim.subscribe("p", ["#"]);
      sim.publish("p", "secret/x", "no", 1, { packetId: 5 });
      sim.publish("p", "open/x", "yes", 2, { packetId: 6 });
      expect(sim.received("p").filter((x) => x.type !== "publish").slice(-2)).toEqual([ack("puback", 5), ack("pubrec", 6)]);
      expect(payloads(sim.publishes("s"))).toEqual(["yes"]);
      expect(payloads(sim.publishes("p"))).toEqual(["yes"]);
      expect(sim.eventsOf("publish-denied")).toHaveLength(1);
    });

    it("holds packets in order while an authorisation is pending", () => {
      const sim = new Sim({ authorizePublish: true }, { authorizePublish: () => undefined });
      sim.connect("s");
      sim.subscribe("s", ["t"]);
      sim.connect("p");
      sim.publish("p", "t", "1");
      sim.publish("p", "t", "2");
      expect(sim.pendingHooks).toHaveLength(1);
      const op = (sim.pendingHooks.pop() as { op: number }).op;
      sim.input({ type: "authed", op, verdict: { ok: true }, granted: undefined });
      expect(sim.pendingHooks).toHaveLength(1);
      const op2 = (sim.pendingHooks.pop() as { op: number }).op;
      sim.input({ type: "authed", op: op2, verdict: { ok: true }, granted: undefined });
      expect(payloads(sim.publishes("s"))).toEqual(["1", "2"]);
    });
  });

  describe("UNSUBSCRIBE", () => {
    it("[MQTT-3.10.4-1] compares filters character by character", () => {
      const sim = pair();
      sim.subscribe("s", ["a/+", "a/b"]);
      sim.unsubscribe("s", ["a/#", "a/b"]);
      sim.publish("p", "a/b", "x");
      expect(sim.publishes("s")).toHaveLength(1);
      expect(sim.broker.stats.subscriptions).toBe(1);
    });

    it("[MQTT-3.10.4-2] [MQTT-3.10.4-3] stops new messages, finishes deliveries already started", () => {
      const sim = pair({ maxInflight: 1 });
      sim.subscribe("s", [["t", 1]]);
      sim.publish("p", "t", "1", 1);
      sim.publish("p", "t", "2", 1);
      sim.unsubscribe("s", ["t"]);
      sim.publish("p", "t", "3", 1);
      sim.ackAll("s");
      sim.ackAll("s");
      expect(sim.writesOf("queue-put")).toHaveLength(0); // clean session: nothing persisted
      expect(sim.broker.sessionStats("s")).toMatchObject({ queued: 0 });
      const all = sim.actions.filter((a) => a.type === "send" && a.packet.type === "publish").map((a) => dec((a as { packet: PublishPacket }).packet.payload));
      expect(all).toEqual(["1", "2"]);
    });

    it("[MQTT-3.10.4-4] [MQTT-3.10.4-5] [MQTT-3.10.4-6] one UNSUBACK with the same id, also when nothing matched", () => {
      const sim = pair();
      sim.subscribe("s", ["a", "b"]);
      expect(sim.unsubscribe("s", ["a", "b", "zz"], 99)).toEqual({ type: "unsuback", packetId: 99, reasonCodes: [], properties: {} });
      expect(sim.unsubscribe("s", ["nothing"], 100)).toMatchObject({ type: "unsuback", packetId: 100 });
      expect(sim.broker.stats.subscriptions).toBe(0);
    });
  });

  describe("routing helpers", () => {
    it("v5 subscription options: no local, retain as published, retain handling", () => {
      const sim = new Sim();
      sim.connect("a", { version: 5 });
      sim.publish("a", "r", "kept", 0, { retain: true });
      sim.subscribe("a", [
        { ...sub("t"), noLocal: true },
        { ...sub("u"), retainAsPublished: true },
        { ...sub("r"), retainHandling: 2 },
      ]);
      sim.publish("a", "t", "own");
      sim.publish("a", "u", "flag", 0, { retain: true });
      expect(sim.publishes("a").map((p) => [p.topic, p.retain])).toEqual([["u", true]]);
    });
  });
});

describe("hooks", () => {
  it("a refused authorize-subscribe denies every filter (0x80; 0x87 for MQTT 5)", () => {
    for (const [version, code] of [[4, 0x80], [5, 0x87]] as const) {
      const sim = new Sim({ authorizeSubscribe: true }, { authorizeSubscribe: () => undefined });
      sim.connect("s", { version });
      sim.subscribe("s", [["a", 1], ["b", 2]], 3);
      const hook = sim.pendingHooks.pop() as { op: number };
      sim.input({ type: "authed", op: hook.op, verdict: { ok: false, reasonCode: 0x87 }, granted: undefined });
      expect(sim.received("s").at(-1)).toEqual({ type: "suback", packetId: 3, reasonCodes: [code, code], properties: {} });
      expect(sim.broker.stats.subscriptions).toBe(0);
    }
  });

  it("a hook answer for a connection that closed meanwhile is ignored", () => {
    const sim = new Sim({ authenticate: true }, { authenticate: () => undefined });
    sim.open("c1");
    sim.send("c1", { type: "connect", protocolName: "MQTT", protocolVersion: 4, clean: true, keepAlive: 0, clientId: "c1", will: undefined, username: undefined, password: undefined, properties: {} });
    const hook = sim.pendingHooks.pop() as { op: number };
    sim.drop("c1");
    sim.input({ type: "authed", op: hook.op, verdict: { ok: true }, granted: undefined });
    expect(sim.received("c1")).toEqual([]);
    expect(sim.broker.stats).toMatchObject({ connections: 0, sessions: 0 });
  });

  it("shutdown closes every connection; MQTT 5 clients get DISCONNECT 0x8B first", () => {
    const sim = new Sim();
    sim.connect("a", { version: 5 });
    sim.connect("b", { clean: false });
    sim.input({ type: "shutdown" });
    expect(sim.received("a").at(-1)).toMatchObject({ type: "disconnect", reasonCode: 0x8b });
    expect(sim.isOpen("a") || sim.isOpen("b")).toBe(false);
    expect(sim.store.sessions.get("b")?.disconnectedAt).toBe(0);
  });
});

describe("MQTT 3.1.1", () => {
  it("[MQTT-3.3.5-1] QoS 0 deliveries of one message share one PUBLISH object (encoded once by the driver); QoS 1 ones do not", () => {
    const sim = new Sim();
    for (const name of ["a", "b", "c"]) {
      sim.connect(name);
      sim.subscribe(name, [["t/#", name === "c" ? 1 : 0]]);
    }
    sim.connect("pub");
    sim.publish("pub", "t/x", "one", 0);
    sim.publish("pub", "t/x", "two", 1);
    const [a1, a2] = sim.publishes("a");
    const [b1, b2] = sim.publishes("b");
    const [c1, c2] = sim.publishes("c");
    expect(a1).toBe(b1);
    expect(a1).toBe(c1); // QoS 0 message: QoS 0 to the QoS 1 subscriber too
    expect(a2).toBe(b2); // QoS 1 message to QoS 0 subscriptions: delivered at QoS 0
    expect(a1).not.toBe(a2);
    expect([dec(a1!.payload), dec(a2!.payload)]).toEqual(["one", "two"]);
    expect(c2).toMatchObject({ qos: 1, packetId: 1 });
    expect(c2).not.toBe(a2);
  });
});

describe("MQTT 3.1.1", () => {
  it("[MQTT-3.3.4-1] reports message-published only with observePublishes; routing and stats do not depend on it", () => {
    for (const observePublishes of [false, true]) {
      const sim = new Sim({ observePublishes });
      sim.connect("s");
      sim.subscribe("s", ["t"]);
      sim.connect("p");
      sim.publish("p", "t", "x", 1);
      const published = sim.actions.filter((a) => a.type === "observe" && a.event.type === "message-published");
      expect(published.length).toBe(observePublishes ? 1 : 0);
      expect(sim.publishes("s").length).toBe(1);
      expect(sim.broker.stats.messagesIn).toBe(1);
    }
  });
});
