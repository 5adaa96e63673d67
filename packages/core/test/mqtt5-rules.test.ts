// MQTT 5.0 rules binding the server, checked with MQTT 5 clients (protocol level 5). Most of this
// behaviour is shared with 3.1.1 and tested there under 3.1.1 ids; here it runs under the 5.0 ids.
import { describe, expect, it } from "vitest";
import { encodedLength, type Packet, type PublishPacket, type QoS } from "@harbormq/codec";
import type { Action } from "@harbormq/core";
import { Sim, ack, connectPacket, dec, enc, publishPacket, sub, type ConnectOptions } from "./sim.js";

const V5: ConnectOptions = { version: 5 };
const PERSIST: ConnectOptions = { version: 5, clean: false, sessionExpiry: 600 };

const publishes = (sim: Sim, name: string): PublishPacket[] => sim.take(name).filter((p): p is PublishPacket => p.type === "publish");
const types = (ps: readonly Packet[]) => ps.map((p) => p.type);
const hookOp = (a: Action | undefined): number => (a as { op: number }).op;

/** Like sim.ackAll, but keeps every packet the client received in `log`. */
function ackAllLogged(sim: Sim, name: string, log: Packet[]): void {
  for (let guard = 0; guard < 100; guard++) {
    const got = sim.take(name);
    log.push(...got);
    let sent = 0;
    for (const p of got) {
      if (p.type === "publish" && p.qos > 0) (sim.send(name, ack(p.qos === 1 ? "puback" : "pubrec", p.packetId!)), sent++);
      else if (p.type === "pubrel") (sim.send(name, ack("pubcomp", p.packetId)), sent++);
    }
    if (sent === 0) return;
  }
}

/** A subscriber `s` on `t` (QoS 2 granted) and a publisher `p`, both MQTT 5. */
function pair(config: ConstructorParameters<typeof Sim>[0] = {}, s: ConnectOptions = V5): Sim {
  const sim = new Sim(config);
  sim.connect("s", s);
  sim.subscribe("s", [["t", 2]]);
  sim.connect("p", V5);
  sim.take("s");
  sim.take("p");
  return sim;
}

describe("MQTT 5.0 packet identifiers", () => {
  it("[MQTT-2.2.1-4] each new QoS 1/2 PUBLISH the server sends gets a non-zero id not in use", () => {
    const sim = pair();
    for (let i = 0; i < 6; i++) sim.publish("p", "t", String(i), i % 2 === 0 ? 1 : 2);
    const first = publishes(sim, "s");
    const ids = first.map((p) => p.packetId!);
    expect(ids).toHaveLength(6);
    expect(ids.every((id) => id > 0)).toBe(true);
    expect(new Set(ids).size).toBe(6);
    // Freeing one id: the next PUBLISH takes an id that is not held by the five still in flight.
    sim.send("s", ack("puback", ids[0]!));
    sim.publish("p", "t", "next", 1);
    const next = publishes(sim, "s")[0]!.packetId!;
    expect(next).toBeGreaterThan(0);
    expect(ids.slice(1)).not.toContain(next);
  });

  it("[MQTT-2.2.1-5] PUBACK, PUBREC, PUBREL and PUBCOMP carry the id of the PUBLISH they answer", () => {
    const sim = pair();
    sim.publish("p", "t", "one", 1, { packetId: 7 });
    sim.publish("p", "t", "two", 2, { packetId: 9 });
    sim.send("p", ack("pubrel", 9));
    expect(sim.take("p")).toMatchObject([
      { type: "puback", packetId: 7 },
      { type: "pubrec", packetId: 9 },
      { type: "pubcomp", packetId: 9 },
    ]);
    // As the sender: the PUBREL carries the id of the QoS 2 PUBLISH the client answered.
    const q2 = publishes(sim, "s").find((p) => p.qos === 2)!;
    sim.send("s", ack("pubrec", q2.packetId!));
    expect(sim.take("s")).toMatchObject([{ type: "pubrel", packetId: q2.packetId }]);
  });

  it("[MQTT-2.2.1-6] SUBACK and UNSUBACK carry the id of their SUBSCRIBE and UNSUBSCRIBE", () => {
    const sim = new Sim();
    sim.connect("a", V5);
    expect(sim.subscribe("a", ["x", "y"], 4321)).toMatchObject({ type: "suback", packetId: 4321 });
    expect(sim.unsubscribe("a", ["x"], 77)).toMatchObject({ type: "unsuback", packetId: 77 });
    expect(sim.subscribe("a", ["z"], 65535)).toMatchObject({ packetId: 65535 });
  });
});

describe("MQTT 5.0 CONNECT / CONNACK / DISCONNECT", () => {
  it("[MQTT-3.1.4-6] after refusing a CONNECT the server processes nothing the client sent after it", () => {
    const sim = new Sim({ authenticate: true }, { authenticate: () => undefined });
    sim.open("c");
    sim.send("c", connectPacket("c", V5));
    sim.send("c", { type: "subscribe", packetId: 1, subscriptions: [sub("t", 1)], properties: {} });
    sim.send("c", publishPacket("t", "x", 1));
    sim.connect("s", V5);
    const hooks = sim.pendingHooks.splice(0);
    sim.input({ type: "authed", op: hookOp(hooks[1]), verdict: { ok: true }, granted: undefined });
    sim.subscribe("s", ["t"]);
    sim.input({ type: "authed", op: hookOp(hooks[0]), verdict: { ok: false, reasonCode: 0x87 }, granted: undefined });
    expect(sim.received("c")).toEqual([{ type: "connack", sessionPresent: false, reasonCode: 0x87, properties: {} }]);
    expect(sim.publishes("s")).toEqual([]);
    expect(sim.broker.sessionStats("c")).toBeUndefined();
  });

  it("[MQTT-3.2.0-2] sends at most one CONNACK per connection: a second CONNECT gets none and closes", () => {
    const sim = new Sim();
    sim.connect("a", V5);
    sim.send("a", connectPacket("a", V5));
    expect(types(sim.received("a")).filter((t) => t === "connack")).toHaveLength(1);
    expect(sim.isOpen("a")).toBe(false);
  });

  it("[MQTT-3.2.2-7] [MQTT-4.13.2-1] closes the connection after a CONNACK with a reason code of 0x80 or more", () => {
    const sim = new Sim({ maxClientIdLength: 2 });
    expect(sim.connect("abc", V5)).toMatchObject({ reasonCode: 0x85 });
    expect(sim.isOpen("abc")).toBe(false);
    expect(sim.closedReason("abc")).toBe(0x85);
    // Whatever follows the refused CONNECT is not answered: the connection is gone.
    sim.send("abc", { type: "pingreq" });
    expect(types(sim.received("abc"))).toEqual(["connack"]);
  });

  it("[MQTT-4.12.0-4] an authentication the hook rejects ends with CONNACK >= 0x80 and a closed connection", () => {
    const sim = new Sim({ authenticate: true }, { authenticate: (c) => (c.username === "ok" ? { ok: true } : { ok: false, reasonCode: 0x86 }) });
    expect(sim.connect("bad", { ...V5, username: "nope" })).toMatchObject({ reasonCode: 0x86 });
    expect(sim.isOpen("bad")).toBe(false);
    expect(sim.connect("good", { ...V5, username: "ok" })).toMatchObject({ reasonCode: 0 });
    expect(sim.isOpen("good")).toBe(true);
  });

  it("[MQTT-4.12.0-6] without an Authentication Method the server sends no AUTH and no method in CONNACK", () => {
    const sim = pair();
    sim.publish("p", "t", "x", 2);
    sim.send("p", ack("pubrel", 1));
    sim.connect("c", V5);
    for (const name of ["s", "p", "c"]) {
      const all = [...sim.received(name), ...sim.take(name)];
      expect(types(all)).not.toContain("auth");
      for (const p of all) if (p.type === "connack") expect(p.properties.authenticationMethod).toBeUndefined();
    }
  });

  it("[MQTT-3.1.2-28] never puts Response Information in CONNACK, whatever the client requests", () => {
    const sim = new Sim({ maxQos: 1 });
    for (const requestResponseInformation of [0, 1]) {
      const connack = sim.connect(`c${requestResponseInformation}`, { ...V5, clientId: "", properties: { requestResponseInformation } });
      expect(connack).toMatchObject({ reasonCode: 0, properties: { maximumQoS: 1 } });
      expect(connack!.properties.responseInformation).toBeUndefined();
    }
  });

  it("[MQTT-3.2.2-10] with a lower Maximum QoS the server still accepts a SUBSCRIBE for QoS 0, 1 or 2", () => {
    const sim = new Sim({ maxQos: 1 });
    expect(sim.connect("a", V5)).toMatchObject({ properties: { maximumQoS: 1 } });
    expect(sim.subscribe("a", [["q0", 0], ["q1", 1], ["q2", 2]])).toMatchObject({ reasonCodes: [0, 1, 1] });
    expect(sim.isOpen("a")).toBe(true);
    sim.connect("p", V5);
    sim.publish("p", "q2", "x", 1);
    expect(sim.publishes("a")).toMatchObject([{ topic: "q2", qos: 1 }]);
  });

  it("[MQTT-3.2.2-22] without a Server Keep Alive in CONNACK the client's Keep Alive is used", () => {
    const sim = new Sim();
    const connack = sim.connect("a", { ...V5, keepAlive: 10 });
    expect(connack!.properties.serverKeepAlive).toBeUndefined();
    sim.advance(14_999);
    expect(sim.isOpen("a")).toBe(true);
    sim.send("a", { type: "pingreq" });
    sim.advance(14_999);
    expect(sim.isOpen("a")).toBe(true);
    sim.advance(2);
    expect(sim.isOpen("a")).toBe(false);
  });

  it("[MQTT-3.14.0-1] sends no DISCONNECT before a successful CONNACK", () => {
    const sim = new Sim({ maxClientIdLength: 3, connectTimeout: 1000 });
    // Refused CONNECT, a packet before CONNECT, a malformed stream, a CONNECT that never comes.
    sim.connect("toolong", V5);
    sim.open("early");
    sim.send("early", { type: "pingreq" });
    const m = sim.open("bad");
    sim.input({ type: "malformed", conn: m.conn!, reason: 0x81, message: "junk" });
    sim.open("slow");
    sim.advance(1001);
    for (const name of ["toolong", "early", "bad", "slow"]) {
      expect(types(sim.received(name))).not.toContain("disconnect");
      expect(sim.isOpen(name)).toBe(false);
    }
  });

  it("[MQTT-3.14.4-1] [MQTT-3.14.4-2] [MQTT-3.14.2-2] after its DISCONNECT the server sends nothing more and closes; the DISCONNECT has no Session Expiry Interval", () => {
    const sim = new Sim();
    const old = sim.connect("a", PERSIST) && sim.client("a").conn!;
    sim.subscribe("a", [["t", 1]]);
    sim.connect("p", V5);
    sim.connect("a", PERSIST, true); // takeover: the old connection gets DISCONNECT 0x8E
    sim.publish("p", "t", "after", 1);
    const forOld = sim.actions.filter((a) => (a.type === "send" || a.type === "close") && a.conn === old);
    const at = forOld.findIndex((a) => a.type === "send" && a.packet.type === "disconnect");
    expect(at).toBeGreaterThanOrEqual(0);
    expect(forOld[at]).toMatchObject({ packet: { reasonCode: 0x8e, properties: {} } });
    expect((forOld[at] as { packet: Packet & { type: "disconnect" } }).packet.properties.sessionExpiryInterval).toBeUndefined();
    expect(forOld.slice(at + 1).map((a) => a.type)).toEqual(["close"]);
    // Shutdown: DISCONNECT 0x8B, then only the close.
    const cur = sim.client("a").conn!;
    sim.input({ type: "shutdown" });
    const forCur = sim.actions.filter((a) => (a.type === "send" || a.type === "close") && a.conn === cur);
    const d = forCur.findIndex((a) => a.type === "send" && a.packet.type === "disconnect");
    expect(forCur[d]).toMatchObject({ packet: { reasonCode: 0x8b, properties: {} } });
    expect(forCur.slice(d + 1).map((a) => a.type)).toEqual(["close"]);
  });
});

describe("MQTT 5.0 PUBLISH forwarding", () => {
  it("[MQTT-3.3.1-13] Retain As Published: the forwarded RETAIN is the RETAIN of the received PUBLISH", () => {
    const sim = new Sim();
    sim.connect("rap", V5);
    sim.subscribe("rap", [{ ...sub("t", 1), retainAsPublished: true }]);
    sim.connect("plain", V5);
    sim.subscribe("plain", [sub("t", 1)]);
    sim.connect("p", V5);
    sim.publish("p", "t", "r", 1, { retain: true });
    sim.publish("p", "t", "n", 1, { retain: false });
    expect(sim.publishes("rap").map((p) => [dec(p.payload), p.retain])).toEqual([["r", true], ["n", false]]);
    expect(sim.publishes("plain").map((p) => [dec(p.payload), p.retain])).toEqual([["r", false], ["n", false]]);
  });

  it("[MQTT-3.3.2-4] [MQTT-3.3.2-15] [MQTT-3.3.2-16] [MQTT-3.3.2-20] forwards Payload Format Indicator, Response Topic, Correlation Data and Content Type unchanged to every subscriber", () => {
    const sim = new Sim();
    sim.connect("online", V5);
    sim.subscribe("online", [sub("t", 0)]);
    sim.connect("offline", PERSIST);
    sim.subscribe("offline", [sub("t", 2)]);
    sim.drop("offline");
    sim.connect("p", V5);
    const properties = {
      payloadFormatIndicator: 1,
      responseTopic: "reply/here",
      correlationData: enc("corr-42"),
      contentType: "application/json; charset=utf-8",
      userProperties: [["k", "v"]] as [string, string][],
    };
    sim.publish("p", "t", "{}", 2, { properties });
    sim.send("p", ack("pubrel", 1));
    sim.crash(); // the offline copy comes back from the store
    sim.connect("offline", PERSIST);
    const got = [...sim.publishes("online"), ...sim.publishes("offline")];
    expect(got).toHaveLength(2);
    for (const p of got) expect(p.properties).toEqual(properties);
  });

  it("[MQTT-3.3.4-2] overlapping subscriptions: one delivery at the highest QoS among the matches", () => {
    const sim = new Sim();
    sim.connect("s", V5);
    sim.subscribe("s", [["a/+", 0]]);
    sim.subscribe("s", [["a/#", 2]]);
    sim.subscribe("s", [["#", 1]]);
    sim.connect("p", V5);
    sim.publish("p", "a/b", "x", 2);
    expect(sim.publishes("s")).toMatchObject([{ topic: "a/b", qos: 2 }]);
  });

  it("[MQTT-3.3.4-3] [MQTT-3.3.4-4] [MQTT-3.3.4-5] overlapping subscriptions with identifiers: one delivery per message (never separate copies) carries every matching identifier", () => {
    const sim = new Sim();
    sim.connect("s", V5);
    sim.subscribe("s", [["a/+", 1]], undefined, { subscriptionIdentifiers: [11] });
    sim.subscribe("s", [["a/#", 1]], undefined, { subscriptionIdentifiers: [22] });
    sim.subscribe("s", [["#", 0]]); // no identifier
    sim.subscribe("s", [["b/#", 0]], undefined, { subscriptionIdentifiers: [33] }); // does not match a/b
    sim.connect("p", V5);
    sim.publish("p", "a/b", "x", 1);
    sim.publish("p", "a/b/c", "y", 1);
    const [ab, abc] = sim.publishes("s");
    expect(sim.publishes("s")).toHaveLength(2);
    expect([...ab!.properties.subscriptionIdentifiers!].sort((x, y) => x - y)).toEqual([11, 22]);
    expect(abc!.properties.subscriptionIdentifiers).toEqual([22]);
  });

  it("[MQTT-3.8.4-7] [MQTT-3.8.4-8] SUBACK gives the granted maximum QoS (or a failure) and messages go out at min(published, granted)", () => {
    const sim = new Sim({ maxQos: 1, authorizeSubscribe: true }, { authorizeSubscribe: (_c, subs) => subs.map((s) => (s.topicFilter === "deny" ? 0x87 : s.qos)) });
    sim.connect("s", V5);
    expect(sim.subscribe("s", [["g0", 0], ["g1", 1], ["g2", 2], ["deny", 1]])).toMatchObject({ reasonCodes: [0, 1, 1, 0x87] });
    sim.connect("p", V5);
    for (const t of ["g0", "g1", "g2", "deny"]) for (const q of [0, 1] as QoS[]) sim.publish("p", t, `${t}:${q}`, q);
    expect(sim.publishes("s").map((p) => `${dec(p.payload)}@${p.qos}`)).toEqual(["g0:0@0", "g0:1@0", "g1:0@0", "g1:1@1", "g2:0@0", "g2:1@1"]);
  });

  it("[MQTT-3.11.3-1] UNSUBACK reason codes follow the order of the filters", () => {
    const sim = new Sim();
    sim.connect("s", V5);
    sim.subscribe("s", ["a", "c"]);
    expect(sim.unsubscribe("s", ["c", "b", "a", "a"])).toMatchObject({ reasonCodes: [0, 0x11, 0, 0x11] });
  });
});

describe("MQTT 5.0 QoS 1 and QoS 2 flows", () => {
  it("[MQTT-4.3.2-3] keeps a QoS 1 PUBLISH unacknowledged (and resends it) until its PUBACK", () => {
    const sim = pair({}, PERSIST);
    sim.publish("p", "t", "m", 1);
    const [first] = publishes(sim, "s");
    sim.drop("s");
    sim.connect("s", PERSIST);
    const again = publishes(sim, "s");
    expect(again).toMatchObject([{ packetId: first!.packetId, dup: true, qos: 1 }]);
    sim.send("s", ack("puback", first!.packetId!));
    sim.drop("s");
    sim.connect("s", PERSIST);
    expect(publishes(sim, "s")).toEqual([]);
  });

  it("[MQTT-4.3.2-4] answers a QoS 1 PUBLISH with a PUBACK carrying its id", () => {
    const sim = pair();
    sim.publish("p", "t", "m", 1, { packetId: 4242 });
    expect(sim.take("p")).toEqual([{ type: "puback", packetId: 4242, reasonCode: 0, properties: {} }]);
  });

  it("[MQTT-4.3.2-5] after its PUBACK, a PUBLISH with the same id is a new message whatever its DUP flag", () => {
    const sim = pair();
    sim.publish("p", "t", "one", 1, { packetId: 5 });
    sim.publish("p", "t", "two", 1, { packetId: 5, dup: true });
    sim.publish("p", "t", "three", 1, { packetId: 5 });
    expect(publishes(sim, "s").map((p) => dec(p.payload))).toEqual(["one", "two", "three"]);
    expect(types(sim.take("p"))).toEqual(["puback", "puback", "puback"]);
  });

  it("[MQTT-4.3.3-3] keeps a QoS 2 PUBLISH unacknowledged (and resends it) until its PUBREC", () => {
    const sim = pair({}, PERSIST);
    sim.publish("p", "t", "m", 2);
    const [first] = publishes(sim, "s");
    sim.drop("s");
    sim.connect("s", PERSIST);
    expect(publishes(sim, "s")).toMatchObject([{ packetId: first!.packetId, dup: true, qos: 2 }]);
    sim.send("s", ack("pubrec", first!.packetId!));
    expect(types(sim.take("s"))).toEqual(["pubrel"]);
  });

  it("[MQTT-4.3.3-5] [MQTT-4.3.3-6] keeps the PUBREL until its PUBCOMP and never resends the PUBLISH after it", () => {
    const sim = pair({}, PERSIST);
    sim.publish("p", "t", "m", 2);
    const id = publishes(sim, "s")[0]!.packetId!;
    sim.send("s", ack("pubrec", id));
    expect(sim.take("s")).toMatchObject([{ type: "pubrel", packetId: id }]);
    for (let i = 0; i < 2; i++) {
      sim.drop("s");
      sim.connect("s", PERSIST);
      // Only the PUBREL goes again, never the PUBLISH.
      expect(sim.take("s").filter((p) => p.type !== "connack")).toEqual([{ type: "pubrel", packetId: id, reasonCode: 0, properties: {} }]);
    }
    sim.send("s", ack("pubcomp", id));
    sim.drop("s");
    sim.connect("s", PERSIST);
    expect(types(sim.take("s"))).toEqual(["connack"]);
  });

  it("[MQTT-4.3.3-8] [MQTT-4.3.3-11] answers a QoS 2 PUBLISH with PUBREC and its PUBREL with PUBCOMP, both with its id", () => {
    const sim = pair();
    sim.publish("p", "t", "m", 2, { packetId: 300 });
    expect(sim.take("p")).toEqual([{ type: "pubrec", packetId: 300, reasonCode: 0, properties: {} }]);
    sim.send("p", ack("pubrel", 300));
    expect(sim.take("p")).toEqual([{ type: "pubcomp", packetId: 300, reasonCode: 0, properties: {} }]);
  });

  it("[MQTT-4.3.3-10] until PUBREL, a repeated QoS 2 PUBLISH is answered with PUBREC again and not delivered twice", () => {
    const sim = pair();
    sim.publish("p", "t", "m", 2, { packetId: 8 });
    sim.publish("p", "t", "m", 2, { packetId: 8, dup: true });
    sim.publish("p", "t", "m", 2, { packetId: 8, dup: true });
    expect(sim.take("p")).toMatchObject([
      { type: "pubrec", packetId: 8 },
      { type: "pubrec", packetId: 8 },
      { type: "pubrec", packetId: 8 },
    ]);
    expect(publishes(sim, "s")).toHaveLength(1);
  });

  it("[MQTT-4.3.3-12] after its PUBCOMP, a PUBLISH with the same id is a new message", () => {
    const sim = pair();
    sim.publish("p", "t", "one", 2, { packetId: 8 });
    sim.send("p", ack("pubrel", 8));
    sim.publish("p", "t", "two", 2, { packetId: 8 });
    expect(publishes(sim, "s").map((p) => dec(p.payload))).toEqual(["one", "two"]);
  });

  it("[MQTT-4.3.3-13] finishes the QoS 2 handshake of a received message even after its expiry interval has passed", () => {
    const sim = pair();
    sim.publish("p", "t", "m", 2, { packetId: 3, properties: { messageExpiryInterval: 1 } });
    expect(types(sim.take("p"))).toEqual(["pubrec"]);
    sim.advance(5_000);
    sim.publish("p", "t", "m", 2, { packetId: 3, dup: true, properties: { messageExpiryInterval: 1 } });
    sim.send("p", ack("pubrel", 3));
    expect(sim.take("p")).toMatchObject([
      { type: "pubrec", packetId: 3 },
      { type: "pubcomp", packetId: 3 },
    ]);
    expect(sim.isOpen("p")).toBe(true);
  });

  it("[MQTT-4.4.0-2] a PUBACK or PUBREC of 0x80 or more acknowledges the PUBLISH: it is not sent again", () => {
    const sim = pair({}, { ...PERSIST, receiveMaximum: 1 });
    sim.publish("p", "t", "a", 1);
    sim.publish("p", "t", "b", 2);
    sim.publish("p", "t", "c", 1);
    const [a] = publishes(sim, "s");
    sim.send("s", { type: "puback", packetId: a!.packetId!, reasonCode: 0x80, properties: {} });
    const [b] = publishes(sim, "s"); // the window moved on
    expect(dec(b!.payload)).toBe("b");
    sim.send("s", { type: "pubrec", packetId: b!.packetId!, reasonCode: 0x87, properties: {} });
    const rest = sim.take("s");
    expect(types(rest)).toEqual(["publish"]); // no PUBREL for a refused QoS 2 message
    expect(dec((rest[0] as PublishPacket).payload)).toBe("c");
    sim.drop("s");
    sim.connect("s", PERSIST);
    // Only "c", still unacknowledged, comes again.
    expect(publishes(sim, "s").map((p) => [dec(p.payload), p.dup])).toEqual([["c", true]]);
  });
});

describe("MQTT 5.0 PUBLISH the authorize-publish hook refuses", () => {
  const refusing = (verdict: (topic: string) => boolean | number) => {
    const sim = new Sim({ authorizePublish: true }, { authorizePublish: (_c, topic) => verdict(topic) });
    sim.connect("s", V5);
    sim.subscribe("s", ["#"]);
    sim.connect("p", V5);
    return sim;
  };
  const acks = (sim: Sim, name: string) => sim.received(name).filter((x) => x.type === "puback" || x.type === "pubrec");

  it("[MQTT-3.3.4-1] [MQTT-3.3.5-2] a refused QoS 1 / QoS 2 PUBLISH is answered with PUBACK / PUBREC 0x87 Not authorized and not routed", () => {
    const sim = refusing((topic) => !topic.startsWith("secret"));
    sim.publish("p", "secret/a", "no", 1, { packetId: 5 });
    sim.publish("p", "secret/b", "no", 2, { packetId: 6 });
    sim.publish("p", "secret/c", "no", 0);
    sim.publish("p", "open/x", "yes", 2, { packetId: 7 });
    expect(acks(sim, "p")).toEqual([
      { type: "puback", packetId: 5, reasonCode: 0x87, properties: {} },
      { type: "pubrec", packetId: 6, reasonCode: 0x87, properties: {} },
      { type: "pubrec", packetId: 7, reasonCode: 0, properties: {} },
    ]);
    expect(sim.publishes("s").map((x) => dec(x.payload))).toEqual(["yes"]);
    expect(sim.eventsOf("publish-denied").map((e) => (e as { reason: number }).reason)).toEqual([0x87, 0x87, 0x87]);
  });

  it("[MQTT-4.3.3-2] a PUBREC >= 0x80 ends the QoS 2 flow: no state is kept, the same packet id starts a new message", () => {
    let allow = false;
    const sim = refusing(() => allow);
    sim.publish("p", "t", "refused", 2, { packetId: 9 });
    allow = true;
    sim.publish("p", "t", "allowed", 2, { packetId: 9 });
    // had the refused one left QoS 2 state, the second would be taken for its duplicate and not routed
    expect(sim.publishes("s").map((x) => dec(x.payload))).toEqual(["allowed"]);
    expect(acks(sim, "p").map((a) => (a as { reasonCode: number }).reasonCode)).toEqual([0x87, 0]);
  });

  it("[MQTT-3.3.5-2] the hook's own failure code is used when it is valid for the ack, 0x87 otherwise; MQTT 3.1.1 gets the normal ack", () => {
    const sim = refusing((topic) => (topic === "quota" ? 0x97 : topic === "bad" ? 0x8e : true));
    sim.publish("p", "quota", "x", 1, { packetId: 1 });
    sim.publish("p", "bad", "x", 1, { packetId: 2 });
    expect(acks(sim, "p").map((a) => (a as { reasonCode: number }).reasonCode)).toEqual([0x97, 0x87]);
    sim.connect("old");
    sim.publish("old", "quota", "x", 1, { packetId: 3 });
    expect(acks(sim, "old")).toEqual([{ type: "puback", packetId: 3, reasonCode: 0, properties: {} }]);
    expect(sim.publishes("s")).toHaveLength(0);
  });

  it("[MQTT-3.3.5-2] a refusal that carries a success code (0, 0x10) is still a refusal: not routed, answered 0x87, reported", () => {
    const sim = refusing((topic) => (topic === "zero" ? 0 : topic === "nomatch" ? 0x10 : true));
    sim.publish("p", "zero", "x", 1, { packetId: 1 });
    sim.publish("p", "nomatch", "x", 2, { packetId: 2 });
    sim.publish("p", "zero", "x", 0);
    expect(acks(sim, "p").map((a) => [a.type, (a as { reasonCode: number }).reasonCode])).toEqual([
      ["puback", 0x87],
      ["pubrec", 0x87],
    ]);
    expect(sim.publishes("s")).toHaveLength(0);
    expect(sim.eventsOf("publish-denied").map((e) => (e as { reason: number }).reason)).toEqual([0x87, 0x87, 0x87]);
    // The same for a 3.1.1 publisher: not routed (its ack is the normal one), and the event names the hook's own code when valid.
    sim.connect("old");
    sim.publish("old", "zero", "x", 1, { packetId: 4 });
    expect(sim.publishes("s")).toHaveLength(0);
    expect(sim.eventsOf("publish-denied")).toHaveLength(4);
  });

  it("a 3.1.1 publisher's publish-denied event carries the hook's failure code when it is one a PUBACK could carry", () => {
    const sim = refusing((topic) => (topic === "quota" ? 0x97 : true));
    sim.connect("old");
    sim.publish("old", "quota", "x", 1, { packetId: 3 });
    expect(sim.eventsOf("publish-denied").map((e) => (e as { reason: number }).reason)).toEqual([0x97]);
    expect(sim.publishes("s")).toHaveLength(0);
  });
});

describe("MQTT 5.0 flow control", () => {
  it("[MQTT-4.9.0-1] [MQTT-4.9.0-2] the send quota starts at the client's Receive Maximum; each QoS 1/2 PUBLISH uses one, each acknowledgement returns one", () => {
    const sim = pair({ maxInflight: 20 }, { ...V5, receiveMaximum: 3 });
    for (let i = 0; i < 6; i++) sim.publish("p", "t", String(i), i % 2 === 0 ? 1 : 2);
    const first = publishes(sim, "s");
    expect(first.map((p) => dec(p.payload))).toEqual(["0", "1", "2"]);
    sim.send("s", ack("puback", first[0]!.packetId!));
    expect(publishes(sim, "s").map((p) => dec(p.payload))).toEqual(["3"]);
    // A QoS 2 message holds its unit until PUBCOMP, not PUBREC.
    sim.send("s", ack("pubrec", first[1]!.packetId!));
    expect(types(sim.take("s"))).toEqual(["pubrel"]);
    sim.send("s", ack("pubcomp", first[1]!.packetId!));
    expect(publishes(sim, "s").map((p) => dec(p.payload))).toEqual(["4"]);
    // Receive Maximum 1 is the smallest quota and is honoured too.
    const one = pair({}, { ...V5, receiveMaximum: 1 });
    one.publish("p", "t", "x", 1);
    one.publish("p", "t", "y", 1);
    expect(publishes(one, "s")).toHaveLength(1);
  });

  it("[MQTT-3.3.4-10] [MQTT-4.9.0-3] with no send quota left, every other packet is still processed and answered", () => {
    const sim = pair({}, { ...V5, receiveMaximum: 1 });
    sim.publish("p", "t", "a", 1);
    sim.publish("p", "t", "b", 1);
    expect(publishes(sim, "s")).toHaveLength(1); // quota is zero now
    sim.send("s", { type: "pingreq" });
    sim.subscribe("s", ["u"], 50);
    sim.unsubscribe("s", ["u"], 51);
    sim.publish("s", "x", "q1", 1, { packetId: 60 });
    sim.publish("s", "x", "q2", 2, { packetId: 61 });
    sim.send("s", ack("pubrel", 61));
    expect(sim.take("s")).toMatchObject([
      { type: "pingresp" },
      { type: "suback", packetId: 50 },
      { type: "unsuback", packetId: 51 },
      { type: "puback", packetId: 60 },
      { type: "pubrec", packetId: 61 },
      { type: "pubcomp", packetId: 61 },
    ]);
  });
});

describe("MQTT 5.0 properties the server does not send", () => {
  it("[MQTT-3.1.2-29] with Request Problem Information 0, Reason String and User Properties appear only on PUBLISH, CONNACK and DISCONNECT", () => {
    const sim = new Sim();
    sim.connect("s", { ...V5, properties: { requestProblemInformation: 0 } });
    sim.subscribe("s", [["t", 2]]);
    sim.subscribe("s", [["$bad/#/x", 1]]);
    sim.unsubscribe("s", ["t", "nope"]);
    sim.subscribe("s", [["t", 2]]);
    sim.connect("p", V5);
    sim.publish("p", "t", "one", 1, { properties: { userProperties: [["a", "b"]] } });
    sim.publish("p", "t", "two", 2);
    sim.publish("s", "t", "mine", 2, { packetId: 9 });
    sim.send("s", ack("pubrel", 9));
    sim.publish("s", "t", "mine", 1, { packetId: 10 });
    const all: Packet[] = [];
    ackAllLogged(sim, "s", all);
    sim.connect("s", { ...V5, properties: { requestProblemInformation: 0 } }, true);
    all.push(...sim.take("s"));
    expect(types(all)).toEqual(expect.arrayContaining(["connack", "suback", "unsuback", "puback", "pubrec", "pubrel", "pubcomp", "publish"]));
    for (const p of all) {
      if (p.type === "publish" || p.type === "connack" || p.type === "disconnect" || !("properties" in p)) continue;
      expect(p.properties.reasonString, p.type).toBeUndefined();
      expect(p.properties.userProperties, p.type).toBeUndefined();
    }
    // The user property of the message itself is forwarded: PUBLISH may carry them.
    expect(all.find((p): p is PublishPacket => p.type === "publish" && dec(p.payload) === "one")!.properties.userProperties).toEqual([["a", "b"]]);
  });

  it("[MQTT-3.2.2-19] [MQTT-3.2.2-20] [MQTT-3.4.2-2] [MQTT-3.4.2-3] [MQTT-3.5.2-2] [MQTT-3.5.2-3] [MQTT-3.6.2-2] [MQTT-3.6.2-3] [MQTT-3.7.2-2] [MQTT-3.7.2-3] [MQTT-3.9.2-1] [MQTT-3.9.2-2] [MQTT-3.11.2-1] [MQTT-3.11.2-2] [MQTT-3.14.2-3] [MQTT-3.14.2-4] no Reason String or User Properties that would push a packet past the client's Maximum Packet Size", () => {
    const max = 40;
    const opts: ConnectOptions = { ...PERSIST, clientId: "", properties: { maximumPacketSize: max } };
    const sim = new Sim({ maxPacketSize: 1024 });
    sim.connect("s", opts);
    const id = (sim.received("s")[0] as Packet & { type: "connack" }).properties.assignedClientIdentifier!;
    const again: ConnectOptions = { ...opts, clientId: id };
    sim.subscribe("s", [["t", 1], ["$bad/#/x", 1]]);
    sim.unsubscribe("s", ["t", "nope"]);
    sim.subscribe("s", [["t", 1]]);
    sim.connect("p", V5);
    sim.publish("p", "t", "x", 1);
    sim.publish("s", "u", "y", 1, { packetId: 9 });
    sim.publish("s", "u", "z", 2, { packetId: 10 });
    sim.send("s", ack("pubrel", 10));
    const all: Packet[] = [];
    ackAllLogged(sim, "s", all);
    sim.connect("s", again, true); // the first connection gets a DISCONNECT
    all.push(...sim.take("s"));
    all.push(...sim.actions.filter((a) => a.type === "send" && a.packet.type === "disconnect").map((a) => (a as { packet: Packet }).packet));
    expect(types(all)).toEqual(expect.arrayContaining(["connack", "suback", "unsuback", "puback", "pubrec", "pubcomp", "publish", "disconnect"]));
    for (const p of all) {
      expect(encodedLength(p, 5), p.type).toBeLessThanOrEqual(max);
      if (p.type === "publish" || !("properties" in p)) continue;
      expect(p.properties.reasonString, p.type).toBeUndefined();
      expect(p.properties.userProperties, p.type).toBeUndefined();
    }
  });

  it("[MQTT-3.1.2-26] [MQTT-3.1.2-27] [MQTT-3.3.2-11] sends no Topic Alias, whether or not the client allows them", () => {
    const sim = new Sim();
    sim.connect("none", V5);
    sim.subscribe("none", [["t/#", 1]]);
    sim.connect("two", { ...V5, properties: { topicAliasMaximum: 2 } });
    sim.subscribe("two", [["t/#", 1]]);
    sim.connect("p", V5);
    for (let i = 0; i < 5; i++) sim.publish("p", `t/${i % 3}`, String(i), i % 2 === 0 ? 0 : 1);
    for (const name of ["none", "two"]) {
      const got = sim.publishes(name);
      expect(got).toHaveLength(5);
      for (const p of got) {
        expect(p.topic.startsWith("t/")).toBe(true);
        expect(p.properties.topicAlias).toBeUndefined();
      }
    }
  });
});

describe("MQTT 5.0 CONNECT options the server does not support", () => {
  it("[MQTT-4.12.0-1] refuses an Authentication Method it does not support (CONNACK 0x8C) and closes", () => {
    const sim = new Sim();
    sim.connect("s", V5);
    sim.subscribe("s", ["t"]);
    sim.open("c");
    sim.send("c", connectPacket("c", { ...V5, will: { topic: "t" }, properties: { authenticationMethod: "SCRAM-SHA-1", authenticationData: enc("x") } }));
    sim.send("c", publishPacket("t", "after", 0));
    expect(sim.received("c")).toEqual([{ type: "connack", sessionPresent: false, reasonCode: 0x8c, properties: {} }]);
    expect(sim.isOpen("c")).toBe(false);
    expect(sim.broker.sessionStats("c")).toBeUndefined();
    expect(sim.publishes("s")).toEqual([]); // neither the will nor the PUBLISH
    expect(sim.connect("c", V5)).toMatchObject({ reasonCode: 0 });
  });

  it("[MQTT-4.12.0-2] [MQTT-4.12.0-5] [MQTT-3.15.2-2] [MQTT-3.15.2-3] [MQTT-4.12.1-2] without enhanced authentication the server never sends AUTH; a client's AUTH is a protocol error (0x82)", () => {
    // harbormq supports no Authentication Method (refused with 0x8C above), so the rules about the
    // AUTH packets a server sends (Continue authentication, the method echoed in AUTH, the size of
    // AUTH properties, re-authentication failures) never arise: no AUTH ever leaves the server.
    const sim = new Sim();
    sim.open("a");
    sim.send("a", connectPacket("a", { ...V5, properties: { authenticationMethod: "SCRAM-SHA-1", authenticationData: enc("x") } }));
    sim.connect("c", V5);
    sim.send("c", { type: "auth", reasonCode: 0x19, properties: { authenticationMethod: "SCRAM-SHA-1" } });
    expect(sim.isOpen("c")).toBe(false);
    expect(sim.eventsOf("protocol-error").at(-1)).toMatchObject({ clientId: "c", reason: 0x82 });
    const sent = sim.actions.filter((x) => x.type === "send").map((x) => (x as { packet: { type: string } }).packet.type);
    expect(sent).toContain("connack");
    expect(sent).not.toContain("auth");
  });

  it("[MQTT-3.2.2-13] retain is available: CONNACK announces no Retain Available 0, and a will with retain 1 is accepted and published retained", () => {
    const sim = new Sim();
    sim.connect("s", V5);
    const connack = sim.connect("w", { ...V5, will: { topic: "w/t", payload: enc("gone"), retain: true } })!;
    expect(connack).toMatchObject({ reasonCode: 0 });
    expect(connack.properties.retainAvailable).toBeUndefined(); // absent = 1
    sim.drop("w");
    sim.subscribe("s", ["w/#"]);
    expect(sim.publishes("s").map((p) => [dec(p.payload), p.retain])).toContainEqual(["gone", true]);
  });

  it("[MQTT-3.2.2-12] refuses a will QoS above the server's Maximum QoS with CONNACK 0x9B and closes", () => {
    const sim = new Sim({ maxQos: 1 });
    expect(sim.connect("w2", { ...V5, will: { topic: "w", qos: 2 } })).toMatchObject({ reasonCode: 0x9b, sessionPresent: false });
    expect(sim.isOpen("w2")).toBe(false);
    expect(sim.connect("w1", { ...V5, will: { topic: "w", qos: 1 } })).toMatchObject({ reasonCode: 0 });
    expect(new Sim().connect("w2", { ...V5, will: { topic: "w", qos: 2 } })).toMatchObject({ reasonCode: 0 });
  });

  it("[MQTT-3.1.2-27] a client's Topic Alias (CONNACK allows none) is a protocol error (0x94): it never reaches subscribers", () => {
    const sim = new Sim({ topicAliasMaximum: 0 });
    sim.connect("s", { ...V5, properties: { topicAliasMaximum: 10 } });
    sim.subscribe("s", [["t", 1]]);
    sim.connect("p", { ...V5, will: { topic: "t", payload: enc("will") } });
    sim.publish("p", "t", "aliased", 1, { properties: { topicAlias: 1 } });
    expect(sim.take("p")).toEqual([expect.objectContaining({ type: "connack" }), { type: "disconnect", reasonCode: 0x94, properties: {} }]);
    expect(sim.isOpen("p")).toBe(false);
    expect(sim.closedReason("p")).toBe(0x94);
    // Only the will arrives, without any alias.
    expect(sim.publishes("s").map((p) => [dec(p.payload), p.properties.topicAlias])).toEqual([["will", undefined]]);
  });
});

describe("MQTT 5.0 message expiry", () => {
  const expiring = (s: number) => ({ properties: { messageExpiryInterval: s } });

  it("[MQTT-3.3.2-5] a queued message whose expiry passed before its delivery started is deleted and counted (reason expired)", () => {
    const sim = pair({}, PERSIST);
    sim.drop("s");
    sim.publish("p", "t", "short", 1, expiring(10));
    sim.publish("p", "t", "long", 2, expiring(100));
    sim.publish("p", "t", "forever", 1);
    sim.advance(10_000);
    sim.connect("s", PERSIST);
    expect(publishes(sim, "s").map((p) => dec(p.payload))).toEqual(["long", "forever"]);
    expect(sim.broker.stats).toMatchObject({ droppedExpired: 1, dropped: 1 });
    expect(sim.eventsOf("message-dropped")).toMatchObject([{ clientId: "s", topic: "t", qos: 1, reason: "expired" }]);
    expect(sim.broker.sessionStats("s")).toMatchObject({ queued: 2, dropped: 1 });
    expect(sim.writesOf("queue-delete")).toHaveLength(1);
  });

  it("[MQTT-3.3.2-5] expiry applies to messages waiting for an online client's Receive Maximum, to QoS 0 behind them, and after a restart", () => {
    const sim = pair({}, { ...PERSIST, receiveMaximum: 1 });
    sim.publish("p", "t", "first", 1);
    sim.publish("p", "t", "waits", 1, expiring(5));
    sim.publish("p", "t", "q0", 0, expiring(5));
    sim.publish("p", "t", "stays", 1, expiring(60));
    const [first] = publishes(sim, "s");
    sim.advance(5_000);
    sim.crash(); // the queue comes back from the store with the messages' arrival times
    sim.connect("s", { ...PERSIST, receiveMaximum: 1 });
    const resent = publishes(sim, "s");
    expect(resent.map((p) => [dec(p.payload), p.dup])).toEqual([["first", true]]);
    sim.send("s", ack("puback", first!.packetId!));
    expect(publishes(sim, "s").map((p) => dec(p.payload))).toEqual(["stays"]);
    // q0 was only in memory (lost with the crash: not a queued QoS 0 for an offline session);
    // "waits" expired in the queue.
    expect(sim.broker.stats.droppedExpired).toBe(1);
    const live = pair({}, { ...V5, receiveMaximum: 1 });
    live.publish("p", "t", "first", 1);
    live.publish("p", "t", "waits", 1, expiring(5));
    live.publish("p", "t", "q0", 0, expiring(5));
    live.publish("p", "t", "q0-forever", 0);
    const [f] = publishes(live, "s");
    live.advance(6_000);
    live.send("s", ack("puback", f!.packetId!));
    expect(publishes(live, "s").map((p) => dec(p.payload))).toEqual(["q0-forever"]);
    expect(live.broker.stats.droppedExpired).toBe(2);
  });

  it("[MQTT-3.3.2-6] the forwarded Message Expiry Interval is the received one minus the time the message waited", () => {
    const sim = pair({}, PERSIST);
    sim.publish("p", "t", "now", 1, expiring(100));
    const [now] = publishes(sim, "s");
    expect(now!.properties.messageExpiryInterval).toBe(100);
    sim.send("s", ack("puback", now!.packetId!));
    sim.drop("s");
    sim.publish("p", "t", "later", 1, { properties: { messageExpiryInterval: 100, contentType: "text/plain" } });
    sim.advance(30_500);
    sim.connect("s", PERSIST);
    const [later] = publishes(sim, "s");
    expect(later!.properties).toEqual({ messageExpiryInterval: 70, contentType: "text/plain" });
    // A 3.1.1 subscriber gets no properties at all, but the message still expires for it.
    const v4 = new Sim();
    v4.connect("s", { clean: false });
    v4.subscribe("s", [["t", 1]]);
    v4.drop("s");
    v4.connect("p", V5);
    v4.publish("p", "t", "gone", 1, expiring(1));
    v4.publish("p", "t", "kept", 1, expiring(100));
    v4.advance(1_000);
    v4.connect("s", { clean: false });
    expect(v4.publishes("s").map((p) => [dec(p.payload), p.properties])).toEqual([["kept", {}]]);
  });

  it("[MQTT-3.3.2-5] [MQTT-3.3.2-6] a retained message is sent with the interval left, and not at all once it expired", () => {
    const sim = new Sim();
    sim.connect("p", V5);
    sim.publish("p", "r", "retained", 1, { retain: true, ...expiring(5) });
    sim.advance(3_000);
    sim.connect("a", V5);
    sim.subscribe("a", [["r", 1]]);
    expect(sim.publishes("a").map((p) => [dec(p.payload), p.retain, p.properties.messageExpiryInterval])).toEqual([["retained", true, 2]]);
    sim.advance(2_000);
    sim.connect("b", V5);
    sim.subscribe("b", [["r", 1]]);
    expect(sim.publishes("b")).toEqual([]);
    expect(sim.broker.stats.retained).toBe(0);
    expect(sim.writesOf("retained-delete")).toEqual([{ op: "retained-delete", topic: "r" }]);
  });

  it("[MQTT-4.3.3-7] a QoS 2 message already sent is not expired: it is resent and its handshake finishes", () => {
    const sim = pair({}, PERSIST);
    sim.publish("p", "t", "q2", 2, expiring(5));
    sim.publish("p", "t", "q2-released", 2, expiring(5));
    const [a, b] = publishes(sim, "s");
    sim.send("s", ack("pubrec", b!.packetId!));
    expect(sim.take("s")).toMatchObject([{ type: "pubrel", packetId: b!.packetId }]);
    sim.drop("s");
    sim.advance(60_000);
    sim.connect("s", PERSIST);
    const again = sim.take("s").filter((p) => p.type !== "connack");
    expect(again).toMatchObject([
      { type: "publish", packetId: a!.packetId, dup: true, properties: { messageExpiryInterval: 0 } },
      { type: "pubrel", packetId: b!.packetId },
    ]);
    sim.send("s", ack("pubrec", a!.packetId!));
    expect(sim.take("s")).toMatchObject([{ type: "pubrel", packetId: a!.packetId }]);
    sim.send("s", ack("pubcomp", a!.packetId!));
    sim.send("s", ack("pubcomp", b!.packetId!));
    expect(sim.broker.sessionStats("s")).toMatchObject({ queued: 0, inflight: 0, dropped: 0 });
    expect(sim.broker.stats.droppedExpired).toBe(0);
  });
});

describe("MQTT 5.0 Maximum Packet Size of the client", () => {
  /** The encoded size of the PUBLISH the server would send for this message. */
  const sizeOf = (topic: string, payload: string, qos: QoS) => encodedLength(publishPacket(topic, payload, qos, { packetId: 1 }), 5);

  it("[MQTT-3.1.2-25] a PUBLISH bigger than the client's Maximum Packet Size is not sent and counts as delivered (a drop)", () => {
    const fits = sizeOf("t", "x".repeat(20), 1);
    const sim = pair({}, { ...V5, receiveMaximum: 1, properties: { maximumPacketSize: fits } });
    sim.publish("p", "t", "x".repeat(20), 1); // exactly the limit: sent
    sim.publish("p", "t", "y".repeat(21), 1); // one byte over
    sim.publish("p", "t", "z".repeat(500), 2);
    sim.publish("p", "t", "w".repeat(500), 0);
    sim.publish("p", "t", "ok", 1);
    const first = publishes(sim, "s");
    expect(first.map((p) => dec(p.payload))).toEqual(["x".repeat(20)]);
    expect(encodedLength(first[0]!, 5)).toBe(fits);
    sim.send("s", ack("puback", first[0]!.packetId!));
    // The too-big QoS 1/2 messages took no quota and do not hold up the queue.
    expect(publishes(sim, "s").map((p) => dec(p.payload))).toEqual(["ok"]);
    expect(sim.broker.stats).toMatchObject({ dropped: 3, droppedQueueFull: 0, droppedExpired: 0 });
    expect(sim.eventsOf("message-dropped").map((e) => [e.qos, e.reason])).toEqual([
      [1, "too-large"],
      [2, "too-large"],
      [0, "too-large"],
    ]);
    // Another client without the limit gets them all.
    const open = pair();
    open.publish("p", "t", "z".repeat(500), 2);
    expect(publishes(open, "s")).toHaveLength(1);
  });

  it("[MQTT-3.1.2-25] a queued or in-flight message too big for the reconnected client is done as if acknowledged", () => {
    const sim = pair({}, PERSIST);
    sim.publish("p", "t", "b".repeat(300), 1); // in flight, unacknowledged
    const [big] = publishes(sim, "s");
    sim.drop("s");
    sim.publish("p", "t", "q".repeat(300), 2); // queued while offline
    sim.publish("p", "t", "small", 1);
    const small: ConnectOptions = { ...PERSIST, properties: { maximumPacketSize: 100 } };
    sim.connect("s", small);
    const got = publishes(sim, "s");
    expect(got.map((p) => [dec(p.payload), p.dup])).toEqual([["small", false]]);
    sim.send("s", ack("puback", got[0]!.packetId!));
    expect(sim.broker.sessionStats("s")).toMatchObject({ queued: 0, inflight: 0, dropped: 2 });
    // Both are gone for good, also from the store: a reconnect without the limit gets nothing.
    sim.crash();
    sim.connect("s", PERSIST);
    expect(publishes(sim, "s")).toEqual([]);
    expect(big!.packetId).toBeDefined();
    expect(sim.store.queues.get("s")?.size ?? 0).toBe(0);
  });
});

// Ids that MQTT 3.1.1 also uses, for another rule: the 3.1.1 tests that carry them do not check
// the 5.0 rule, so these check it with MQTT 5 clients.
describe("MQTT 5.0 rules whose ids 3.1.1 uses for other rules", () => {
  it("[MQTT-3.1.2-4] [MQTT-3.1.2-5] [MQTT-3.1.2-6] [MQTT-3.2.2-2] [MQTT-3.2.2-3] Clean Start 1 discards the session; Clean Start 0 resumes one or creates one", () => {
    const sim = new Sim();
    expect(sim.connect("a", PERSIST)).toMatchObject({ reasonCode: 0, sessionPresent: false }); // created
    sim.subscribe("a", [["t", 1]]);
    sim.drop("a");
    expect(sim.connect("a", PERSIST)).toMatchObject({ reasonCode: 0, sessionPresent: true }); // resumed
    expect(sim.broker.sessionStats("a")).toBeDefined();
    sim.connect("p", V5);
    sim.publish("p", "t", "still subscribed", 1);
    expect(sim.publishes("a")).toHaveLength(1);
    sim.drop("a");
    expect(sim.connect("a", { ...PERSIST, clean: true })).toMatchObject({ reasonCode: 0, sessionPresent: false }); // discarded
    sim.publish("p", "t", "gone", 1);
    expect(sim.publishes("a").map((p) => dec(p.payload))).toEqual(["still subscribed"]);
  });

  it("[MQTT-3.1.2-23] [MQTT-4.1.0-2] a Session Expiry Interval > 0 keeps the session after the connection closes; 0 discards it", () => {
    const sim = new Sim();
    sim.connect("keep", { ...V5, clean: false, sessionExpiry: 30 });
    sim.subscribe("keep", [["t", 1]]);
    sim.connect("zero", { ...V5, clean: false, sessionExpiry: 0 });
    sim.subscribe("zero", [["t", 1]]);
    sim.drop("keep");
    sim.drop("zero");
    expect(sim.broker.sessionStats("keep")).toBeDefined();
    expect(sim.broker.sessionStats("zero")).toBeUndefined();
    sim.connect("p", V5);
    sim.publish("p", "t", "queued", 1);
    sim.advance(29_000);
    expect(sim.connect("keep", { ...V5, clean: false, sessionExpiry: 30 })).toMatchObject({ sessionPresent: true });
    expect(sim.publishes("keep").map((p) => dec(p.payload))).toEqual(["queued"]);
    expect(sim.connect("zero", { ...V5, clean: false })).toMatchObject({ sessionPresent: false });
  });

  it("[MQTT-3.1.2-22] [MQTT-3.1.4-4] [MQTT-3.1.4-5] an accepted CONNECT gets CONNACK 0x00; with Keep Alive 4 the connection closes after 6 s of silence", () => {
    const sim = new Sim();
    expect(sim.connect("a", { ...V5, keepAlive: 4 })).toMatchObject({ type: "connack", sessionPresent: false, reasonCode: 0 });
    sim.advance(5_999);
    expect(sim.isOpen("a")).toBe(true);
    sim.advance(2);
    expect(sim.isOpen("a")).toBe(false);
  });

  it("[MQTT-3.1.4-2] [MQTT-3.2.2-6] a CONNECT failing authentication is answered with a non-zero code, Session Present 0, and closed", () => {
    const sim = new Sim({ authenticate: true }, { authenticate: (c) => (c.username === "ok" ? { ok: true } : { ok: false, reasonCode: 0x86 }) });
    sim.connect("a", { ...PERSIST, username: "ok" });
    sim.drop("a"); // a session exists for "a"
    expect(sim.connect("a", { ...PERSIST, username: "bad" })).toEqual({ type: "connack", sessionPresent: false, reasonCode: 0x86, properties: {} });
    expect(sim.isOpen("a")).toBe(false);
    expect(sim.connect("a", { ...PERSIST, username: "ok" })).toMatchObject({ reasonCode: 0, sessionPresent: true });
  });

  it("[MQTT-3.1.2-1] a CONNECT with a protocol name other than MQTT is not accepted: the connection closes", () => {
    const sim = new Sim();
    sim.connect("a", { ...V5, protocolName: "MQIsdp" });
    expect(sim.isOpen("a")).toBe(false);
    expect(sim.received("a")).toEqual([]); // no CONNACK 0x00 (nor anything else)
    expect(sim.broker.sessionStats("a")).toBeUndefined();
  });

  it("[MQTT-3.1.4-3] a second connection with the same client id gets the session; the old one gets DISCONNECT 0x8E and is closed", () => {
    const sim = new Sim();
    sim.connect("a", PERSIST);
    const old = sim.client("a").conn!;
    sim.connect("a", PERSIST, true);
    expect(sim.actions).toContainEqual({ type: "send", conn: old, packet: { type: "disconnect", reasonCode: 0x8e, properties: {} }, version: 5, unordered: false });
    expect(sim.actions).toContainEqual(expect.objectContaining({ type: "close", conn: old, reason: 0x8e }));
    expect(sim.isOpen("a")).toBe(true);
  });

  it("[MQTT-3.1.3-7] an empty client id is replaced by a generated one, returned as Assigned Client Identifier", () => {
    const sim = new Sim({ assignedIdPrefix: "gen-" });
    const connack = sim.connect("a", { ...V5, clientId: "" });
    const id = connack!.properties.assignedClientIdentifier!;
    expect(id.startsWith("gen-")).toBe(true);
    expect(sim.broker.sessionStats(id)).toBeDefined();
    expect(sim.connect("b", { ...V5, clientId: "b" })!.properties.assignedClientIdentifier).toBeUndefined();
  });

  it("[MQTT-3.1.2-7] [MQTT-3.1.2-14] [MQTT-3.1.2-15] [MQTT-3.1.3-10] the will is kept with the connection and published (retained or not, as flagged) with its User Properties in order", () => {
    const sim = new Sim();
    sim.connect("s", V5);
    sim.subscribe("s", [["w/#", 1]]);
    const userProperties: [string, string][] = [["b", "1"], ["a", "2"], ["b", "0"]];
    sim.connect("keep", { ...V5, will: { topic: "w/keep", payload: enc("k"), qos: 1, retain: true, properties: { userProperties } } });
    sim.connect("plain", { ...V5, will: { topic: "w/plain", payload: enc("p"), qos: 1, retain: false } });
    expect(sim.publishes("s")).toEqual([]);
    sim.drop("keep");
    sim.drop("plain");
    expect(sim.publishes("s").map((p) => [p.topic, dec(p.payload), p.properties.userProperties])).toEqual([
      ["w/keep", "k", userProperties],
      ["w/plain", "p", undefined],
    ]);
    sim.connect("late", V5);
    sim.subscribe("late", [["w/#", 1]]);
    expect(sim.publishes("late").map((p) => [p.topic, p.retain])).toEqual([["w/keep", true]]);
  });

  it("[MQTT-3.3.1-5] [MQTT-3.3.1-6] [MQTT-3.3.1-7] [MQTT-3.3.1-8] RETAIN=1 replaces the retained message, an empty one deletes it (and is delivered), RETAIN=0 leaves it alone", () => {
    const sim = new Sim();
    sim.connect("s", V5);
    sim.subscribe("s", [["t", 1]]);
    sim.connect("p", V5);
    sim.publish("p", "t", "one", 1, { retain: true });
    sim.publish("p", "t", "two", 1, { retain: true });
    sim.publish("p", "t", "plain", 1);
    sim.connect("a", V5);
    sim.subscribe("a", [["t", 1]]);
    expect(sim.publishes("a").map((p) => dec(p.payload))).toEqual(["two"]);
    sim.publish("p", "t", "", 1, { retain: true });
    expect(sim.publishes("s").map((p) => dec(p.payload))).toEqual(["one", "two", "plain", ""]);
    expect(sim.broker.stats.retained).toBe(0);
    sim.connect("b", V5);
    sim.subscribe("b", [["t", 1]]);
    expect(sim.publishes("b")).toEqual([]);
  });

  it("[MQTT-3.3.1-9] [MQTT-3.3.1-10] [MQTT-3.3.1-11] [MQTT-3.8.4-3] [MQTT-3.8.4-4] Retain Handling 0, 1 and 2 on a new and on a replaced subscription", () => {
    const sim = new Sim();
    sim.connect("p", V5);
    sim.publish("p", "r", "kept", 0, { retain: true });
    sim.connect("s", V5);
    const retainedSent = (retainHandling: 0 | 1 | 2) => {
      sim.take("s");
      sim.subscribe("s", [{ ...sub("r", 1), retainHandling }]);
      return sim.publishes("s").length;
    };
    expect(retainedSent(1)).toBe(1); // 1, new subscription: sent
    expect(retainedSent(1)).toBe(0); // 1, replacing: not sent
    expect(retainedSent(0)).toBe(1); // 0, replacing: sent again
    expect(retainedSent(2)).toBe(0); // 2: never
    sim.unsubscribe("s", ["r"]);
    expect(retainedSent(2)).toBe(0);
    sim.unsubscribe("s", ["r"]);
    expect(retainedSent(0)).toBe(1); // 0, new subscription
    // The replaced subscription is one subscription with the new options: one delivery, its QoS.
    sim.subscribe("s", [["r", 0]]);
    sim.take("s");
    sim.publish("p", "r", "live", 1);
    expect(sim.publishes("s").map((p) => [dec(p.payload), p.qos])).toEqual([["live", 0]]);
  });

  it("[MQTT-3.3.1-12] Retain As Published 0: forwarded messages carry RETAIN 0", () => {
    const sim = new Sim();
    sim.connect("s", V5);
    sim.subscribe("s", [{ ...sub("t", 1), retainAsPublished: false }]);
    sim.connect("p", V5);
    sim.publish("p", "t", "r", 1, { retain: true });
    expect(sim.publishes("s").map((p) => p.retain)).toEqual([false]);
  });

  it("[MQTT-3.8.3-3] No Local 1: the publisher's own messages are not sent back to it", () => {
    const sim = new Sim();
    sim.connect("a", V5);
    sim.subscribe("a", [{ ...sub("t", 1), noLocal: true }]);
    sim.connect("b", V5);
    sim.subscribe("b", [{ ...sub("t", 1), noLocal: true }]);
    sim.publish("a", "t", "from a", 1);
    sim.publish("b", "t", "from b", 1);
    expect(sim.publishes("a").map((p) => dec(p.payload))).toEqual(["from b"]);
    expect(sim.publishes("b").map((p) => dec(p.payload))).toEqual(["from a"]);
  });

  it("[MQTT-4.3.2-1] [MQTT-4.3.2-2] [MQTT-4.3.3-1] [MQTT-4.3.3-2] a new QoS 1/2 message goes out with an unused id, its QoS and DUP 0", () => {
    const sim = pair();
    sim.publish("p", "t", "a", 1);
    sim.publish("p", "t", "b", 2);
    sim.publish("p", "t", "c", 1, { dup: true });
    const got = publishes(sim, "s");
    expect(got.map((p) => [dec(p.payload), p.qos, p.dup])).toEqual([["a", 1, false], ["b", 2, false], ["c", 1, false]]);
    expect(new Set(got.map((p) => p.packetId)).size).toBe(3);
  });
});

describe("MQTT 5.0 DISCONNECT reason codes from the client and SUBSCRIBE with several filters", () => {
  it("[MQTT-3.1.2-10] [MQTT-3.14.4-3] DISCONNECT 0x00 discards the will; DISCONNECT 0x04 (with Will Message) publishes it", () => {
    const sim = new Sim();
    sim.connect("s", V5);
    sim.subscribe("s", [["w/#", 0]]);
    for (const reasonCode of [0x00, 0x04]) {
      const name = `c${reasonCode}`;
      sim.connect(name, { ...V5, will: { topic: `w/${name}`, payload: enc(name) } });
      sim.send(name, { type: "disconnect", reasonCode, properties: {} });
      expect(sim.isOpen(name)).toBe(false);
      // Once published or discarded, the will is gone: a later close publishes nothing more.
      sim.drop(name);
    }
    expect(sim.publishes("s").map((p) => [p.topic, dec(p.payload)])).toEqual([["w/c4", "c4"]]);
    expect(sim.eventsOf("will-published")).toHaveLength(1);
  });

  it("[MQTT-3.8.4-5] [MQTT-3.8.4-6] a SUBSCRIBE with several filters is handled as separate ones and answered by one SUBACK with a code per filter", () => {
    const sim = new Sim({ maxQos: 1 });
    sim.connect("s", V5);
    const suback = sim.subscribe("s", [["a", 0], ["b", 2], ["c/+", 0], ["a", 1]]);
    expect(types(sim.received("s")).filter((t) => t === "suback")).toHaveLength(1);
    expect(suback).toMatchObject({ reasonCodes: [0, 1, 0, 1] });
    sim.connect("p", V5);
    sim.publish("p", "a", "x", 1);
    sim.publish("p", "b", "y", 1);
    // "a" was replaced by its second pair (QoS 1): one delivery each.
    expect(sim.publishes("s").map((p) => [p.topic, p.qos])).toEqual([["a", 1], ["b", 1]]);
  });
});

describe("MQTT 5.0 topic aliases from the client", () => {
  const aliased = (alias: number) => ({ properties: { topicAlias: alias } });

  it("[MQTT-3.3.2-12] accepts every Topic Alias from 1 to the Topic Alias Maximum of its CONNACK, and no other", () => {
    const sim = new Sim({ topicAliasMaximum: 3 });
    sim.connect("s", V5);
    sim.subscribe("s", [["#", 1]]);
    expect(sim.connect("p", V5)).toMatchObject({ reasonCode: 0, properties: { topicAliasMaximum: 3 } });
    for (const alias of [1, 2, 3]) sim.publish("p", `t/${alias}`, `define ${alias}`, 1, aliased(alias));
    for (const alias of [3, 1, 2]) sim.publish("p", "", `use ${alias}`, 1, aliased(alias));
    sim.publish("p", "t/other", "redefine 1", 0, aliased(1));
    sim.publish("p", "", "use 1 again", 0, aliased(1));
    expect(sim.isOpen("p")).toBe(true);
    const got = sim.publishes("s");
    expect(got.map((p) => [p.topic, dec(p.payload)])).toEqual([
      ["t/1", "define 1"],
      ["t/2", "define 2"],
      ["t/3", "define 3"],
      ["t/3", "use 3"],
      ["t/1", "use 1"],
      ["t/2", "use 2"],
      ["t/other", "redefine 1"],
      ["t/other", "use 1 again"],
    ]);
    // The aliases are the publisher's: nothing is forwarded with one.
    for (const p of got) expect(p.properties.topicAlias).toBeUndefined();
    // Above the maximum (or 0): protocol error 0x94.
    for (const alias of [4, 0]) {
      sim.connect("q", V5);
      sim.publish("q", "t/x", "bad", 0, aliased(alias));
      expect(sim.take("q")).toEqual([expect.objectContaining({ type: "connack" }), { type: "disconnect", reasonCode: 0x94, properties: {} }]);
      expect(sim.isOpen("q")).toBe(false);
    }
    expect(sim.publishes("s")).toHaveLength(8);
  });

  it("[MQTT-3.3.2-7] Topic Alias mappings are not carried from one network connection to another", () => {
    const sim = new Sim({ topicAliasMaximum: 5 });
    sim.connect("s", V5);
    sim.subscribe("s", [["#", 0]]);
    sim.connect("p", PERSIST);
    sim.publish("p", "a/b", "define", 0, aliased(2));
    sim.publish("p", "", "use", 0, aliased(2));
    // The same client id (and session) on a new connection: alias 2 means nothing there.
    sim.drop("p");
    sim.connect("p", PERSIST);
    sim.publish("p", "", "stale", 0, aliased(2));
    expect(sim.isOpen("p")).toBe(false);
    expect(sim.closedReason("p")).toBe(0x82);
    // Nor on another client's connection.
    sim.connect("o", V5);
    sim.publish("o", "", "other", 0, aliased(2));
    expect(sim.isOpen("o")).toBe(false);
    expect(sim.publishes("s").map((p) => [p.topic, dec(p.payload)])).toEqual([
      ["a/b", "define"],
      ["a/b", "use"],
    ]);
  });
});

describe("MQTT 5.0 shared subscriptions ($share/{ShareName}/{filter})", () => {
  const group = (n: number, version: 4 | 5 = 5, qos: QoS = 1) => {
    const sim = new Sim();
    for (let i = 1; i <= n; i++) {
      sim.connect(`m${i}`, { version });
      sim.subscribe(`m${i}`, [[`$share/g/jobs/+`, qos]]);
      sim.take(`m${i}`);
    }
    sim.connect("p", V5);
    return sim;
  };
  const got = (sim: Sim, name: string) => publishes(sim, name).map((p) => dec(p.payload));

  it("[MQTT-4.8.2-3] each message goes to one member of the group, in turn, with that member's granted QoS; CONNACK does not say shared subscriptions are unavailable", () => {
    const sim = new Sim();
    expect(sim.connect("m1", V5)?.properties).not.toHaveProperty("sharedSubscriptionAvailable");
    sim.subscribe("m1", [["$share/g/jobs/+", 1]]);
    sim.connect("m2", V5);
    sim.subscribe("m2", [["$share/g/jobs/+", 0]]);
    sim.take("m1");
    sim.take("m2");
    sim.connect("p", V5);
    for (let i = 0; i < 4; i++) sim.publish("p", "jobs/a", String(i), 1);
    const one = publishes(sim, "m1");
    const two = publishes(sim, "m2");
    expect([...one, ...two].map((p) => dec(p.payload)).sort()).toEqual(["0", "1", "2", "3"]);
    expect(one.map((p) => dec(p.payload))).toEqual(["0", "2"]);
    expect(two.map((p) => dec(p.payload))).toEqual(["1", "3"]);
    expect(one.every((p) => p.qos === 1) && two.every((p) => p.qos === 0)).toBe(true);
    // Topics the group's filter does not match go nowhere.
    sim.publish("p", "other", "x", 1);
    expect(got(sim, "m1").concat(got(sim, "m2"))).toEqual([]);
  });

  it("two groups on the same filter each get a copy; a member's own non-shared subscription is a separate copy", () => {
    const sim = new Sim();
    sim.connect("a", V5);
    sim.subscribe("a", [["$share/x/t", 1], ["t", 1]]);
    sim.connect("b", V5);
    sim.subscribe("b", [["$share/y/t", 1]]);
    sim.take("a");
    sim.take("b");
    sim.connect("p", V5);
    sim.publish("p", "t", "m", 1);
    expect(got(sim, "a")).toEqual(["m", "m"]);
    expect(got(sim, "b")).toEqual(["m"]);
  });

  it("online members are chosen first; with nobody online a persistent member queues the message; unsubscribing and ending sessions leave the group", () => {
    const sim = new Sim();
    sim.connect("off", PERSIST);
    sim.subscribe("off", [["$share/g/t", 1]]);
    sim.drop("off");
    sim.connect("on", V5);
    sim.subscribe("on", [["$share/g/t", 1]]);
    sim.take("on");
    sim.connect("p", V5);
    for (let i = 0; i < 3; i++) sim.publish("p", "t", String(i), 1);
    expect(got(sim, "on")).toEqual(["0", "1", "2"]);
    sim.unsubscribe("on", ["$share/g/t"]);
    sim.publish("p", "t", "queued", 1);
    expect(got(sim, "on")).toEqual([]);
    expect(sim.connect("off", PERSIST)).toMatchObject({ sessionPresent: true });
    expect(got(sim, "off")).toEqual(["queued"]);
    // The last member's session ends: the group is gone and nothing is routed.
    sim.connect("off", V5);
    sim.publish("p", "t", "nobody", 1);
    expect(got(sim, "off")).toEqual([]);
    expect(sim.broker.stats.subscriptions).toBe(0);
  });

  it("[MQTT-4.8.2-4] [MQTT-4.8.2-5] a QoS 2 delivery to a member that drops is finished with that member when it returns, never given to another", () => {
    const sim = new Sim();
    sim.connect("a", PERSIST);
    sim.subscribe("a", [["$share/g/t", 2]]);
    sim.connect("b", V5);
    sim.subscribe("b", [["$share/g/t", 2]]);
    sim.take("a");
    sim.take("b");
    sim.connect("p", V5);
    sim.publish("p", "t", "exactly once", 2);
    const [first] = publishes(sim, "a");
    expect(dec(first!.payload)).toBe("exactly once");
    sim.drop("a");
    sim.advance(1_000);
    expect(got(sim, "b")).toEqual([]);
    sim.connect("a", PERSIST);
    const again = publishes(sim, "a");
    expect(again.map((p) => [dec(p.payload), p.dup, p.packetId])).toEqual([["exactly once", true, first!.packetId]]);
  });

  it("[MQTT-4.8.2-6] a member's PUBACK >= 0x80 ends the delivery: it is not tried with another member", () => {
    const sim = group(2);
    sim.publish("p", "jobs/a", "refused", 1);
    const [p] = publishes(sim, "m1");
    sim.send("m1", { ...ack("puback", p!.packetId!), reasonCode: 0x80 });
    expect(got(sim, "m2")).toEqual([]);
    expect(sim.broker.sessionStats("m1")).toMatchObject({ inflight: 0, queued: 0 });
  });

  it("[MQTT-3.8.3-4] No Local on a shared subscription is a protocol error", () => {
    const sim = new Sim();
    sim.connect("a", V5);
    sim.send("a", { type: "subscribe", packetId: 1, subscriptions: [{ ...sub("$share/g/t", 1), noLocal: true }], properties: {} });
    expect(sim.closedReason("a")).toBe(0x82);
  });

  it("retained messages are not sent when a shared subscription is made (only non-shared ones get them)", () => {
    const sim = new Sim();
    sim.connect("p", V5);
    sim.publish("p", "t", "kept", 1, { retain: true });
    sim.connect("a", V5);
    sim.subscribe("a", [["$share/g/t", 1]]);
    expect(got(sim, "a")).toEqual([]);
    sim.subscribe("a", [["t", 1]]);
    expect(got(sim, "a")).toEqual(["kept"]);
  });

  it("MQTT 3.1.1 clients share too, and a persistent member's shared subscription survives a restart", () => {
    const sim = group(2, 4);
    sim.connect("k", { clean: false });
    sim.subscribe("k", [["$share/h/jobs/#", 1]]);
    sim.drop("k");
    sim.crash();
    sim.connect("p", V5);
    sim.publish("p", "jobs/x", "after restart", 1);
    expect(sim.connect("k", { clean: false })).toMatchObject({ sessionPresent: true });
    expect(got(sim, "k")).toEqual(["after restart"]);
  });
});

describe("MQTT 5.0 will delay", () => {
  const delayedWill = (seconds: number) => ({ topic: "will/t", payload: enc("gone"), properties: { willDelayInterval: seconds } });
  const wills = (sim: Sim) => publishes(sim, "w").map((p) => dec(p.payload));
  const watcher = () => {
    const sim = new Sim();
    sim.connect("w", V5);
    sim.subscribe("w", [["will/#", 0]]);
    sim.take("w");
    return sim;
  };

  it("[MQTT-3.1.2-8] the will of a lost connection goes out once its Will Delay Interval has passed", () => {
    const sim = watcher();
    sim.connect("c", { ...PERSIST, will: delayedWill(5) });
    sim.drop("c");
    expect(wills(sim)).toEqual([]);
    sim.advance(4_999);
    expect(wills(sim)).toEqual([]);
    sim.advance(1);
    expect(wills(sim)).toEqual(["gone"]);
    sim.advance(60_000);
    expect(wills(sim)).toEqual([]); // once
  });

  it("[MQTT-3.1.3-9] a new connection for the client id before the delay passed cancels the will (reconnect and takeover)", () => {
    const sim = watcher();
    sim.connect("c", { ...PERSIST, will: delayedWill(5) });
    sim.drop("c");
    sim.advance(2_000);
    sim.connect("c", { ...PERSIST, will: delayedWill(5) });
    sim.advance(10_000);
    expect(wills(sim)).toEqual([]);
    // Takeover: the old connection's delayed will is cancelled by the new connection.
    sim.connect("c", { ...PERSIST, will: delayedWill(5) }, true);
    sim.advance(10_000);
    expect(wills(sim)).toEqual([]);
    // A takeover with Clean Start 1 is not a connection to that session: it ends the session,
    // and the taken-over connection's delayed will goes out then, once.
    sim.connect("c", { version: 5, clean: true }, true);
    sim.disconnect("c");
    expect(wills(sim)).toEqual(["gone"]);
    sim.advance(10_000);
    expect(wills(sim)).toEqual([]);
  });

  it("[MQTT-3.1.2-8] the session ending before the delay sends the will then: session expiry, or no session at all", () => {
    const sim = watcher();
    sim.connect("c", { version: 5, clean: false, sessionExpiry: 2, will: delayedWill(60) });
    sim.drop("c");
    sim.advance(1_999);
    expect(wills(sim)).toEqual([]);
    sim.advance(1);
    expect(wills(sim)).toEqual(["gone"]);
    expect(sim.eventsOf("session-expired")).toHaveLength(1);
    // A session that ends with its connection (expiry 0): the will goes at once.
    sim.connect("d", { version: 5, will: delayedWill(60) });
    sim.drop("d");
    expect(wills(sim)).toEqual(["gone"]);
  });
});

describe("timers, wills and queues after review", () => {
  const pubs = (sim: Sim, name: string) => publishes(sim, name);
  const turn = (sim: Sim) => sim.broker.nextDeadline();

  it("[MQTT-3.1.2-23] a session-expiry timer of an earlier session never expires a later session of the same client id", () => {
    const sim = new Sim();
    sim.connect("z", { version: 5, clean: false, sessionExpiry: 50 });
    turn(sim);
    sim.drop("z");
    turn(sim);
    sim.connect("a", { version: 5, clean: false, sessionExpiry: 100 });
    sim.drop("a");
    turn(sim);
    sim.advance(10_000);
    turn(sim);
    sim.connect("a", { version: 5, clean: true, sessionExpiry: 1000 });
    sim.subscribe("a", [["t", 1]]);
    sim.drop("a");
    turn(sim);
    sim.connect("p", V5);
    sim.publish("p", "t", "keep me", 1);
    sim.advance(95_000);
    expect(sim.eventsOf("session-expired").map((e) => e.clientId)).toEqual(["z"]);
    expect(sim.broker.sessionStats("a")?.queued).toBe(1);
  });

  it("[MQTT-3.1.2-8] a will-delay timer of an earlier session never publishes a later session's will early", () => {
    const sim = new Sim();
    sim.connect("s", V5);
    sim.subscribe("s", [["w", 0]]);
    sim.take("s");
    sim.connect("z", { version: 5, clean: false, sessionExpiry: 50 });
    sim.drop("z");
    turn(sim);
    sim.connect("a", { version: 5, clean: false, sessionExpiry: 10, will: { topic: "w", payload: enc("first"), properties: { willDelayInterval: 100 } } });
    sim.drop("a");
    turn(sim);
    sim.advance(10_000);
    turn(sim);
    expect(pubs(sim, "s").map((p) => dec(p.payload))).toEqual(["first"]);
    sim.connect("a", { version: 5, clean: false, sessionExpiry: 10_000, will: { topic: "w", payload: enc("second"), properties: { willDelayInterval: 1000 } } });
    sim.drop("a");
    turn(sim);
    sim.advance(95_000);
    expect(pubs(sim, "s")).toEqual([]);
    sim.advance(1_000_000);
    expect(pubs(sim, "s").map((p) => dec(p.payload))).toEqual(["second"]);
  });

  it("[MQTT-3.1.2-8] Clean Start 1 ends the session, so its delayed will goes out then", () => {
    const sim = new Sim();
    sim.connect("s", V5);
    sim.subscribe("s", [["w", 0]]);
    sim.take("s");
    sim.connect("a", { version: 5, clean: false, sessionExpiry: 1000, will: { topic: "w", payload: enc("gone"), properties: { willDelayInterval: 100 } } });
    sim.drop("a");
    sim.advance(1000);
    sim.connect("a", { version: 5, clean: true });
    expect(pubs(sim, "s").map((p) => dec(p.payload))).toEqual(["gone"]);
    sim.advance(200_000);
    expect(pubs(sim, "s")).toEqual([]);
  });

  it("a will published as its session ends never goes to that session's own shared-group membership", () => {
    const sim = new Sim();
    sim.connect("A", { version: 5, clean: false, sessionExpiry: 10, will: { topic: "w", qos: 1, payload: enc("A's will"), properties: { willDelayInterval: 100 } } });
    sim.subscribe("A", [["$share/g/w", 1]]);
    sim.connect("B", { version: 5, clean: false, sessionExpiry: 10_000 });
    sim.subscribe("B", [["$share/g/w", 1]]);
    sim.drop("B");
    sim.drop("A");
    sim.advance(10_000);
    sim.connect("B", { version: 5, clean: false, sessionExpiry: 10_000 });
    expect(pubs(sim, "B").map((p) => dec(p.payload))).toEqual(["A's will"]);
  });

  it("shutdown with willOnShutdown also publishes wills still waiting for their delay", () => {
    const sim = new Sim({ willOnShutdown: true });
    sim.connect("a", { version: 5, clean: false, sessionExpiry: 1000, will: { topic: "w", properties: { willDelayInterval: 100 } } });
    sim.connect("b", { version: 5, clean: false, sessionExpiry: 1000, will: { topic: "w", properties: { willDelayInterval: 100 } } });
    sim.drop("a");
    sim.input({ type: "shutdown" });
    expect(sim.eventsOf("will-published").map((e) => e.clientId).sort()).toEqual(["a", "b"]);
  });

  it("[MQTT-3.3.2-5] expired messages make room in a full queue before a live message is refused", () => {
    const sim = new Sim({ maxQueuedMessages: 2 });
    sim.connect("a", { version: 5, clean: false, sessionExpiry: 1000 });
    sim.subscribe("a", [["t", 1]]);
    sim.drop("a");
    sim.connect("p", V5);
    sim.publish("p", "t", "old1", 1, { properties: { messageExpiryInterval: 1 } });
    sim.publish("p", "t", "old2", 1, { properties: { messageExpiryInterval: 1 } });
    sim.advance(5000);
    sim.publish("p", "t", "fresh", 1);
    sim.connect("a", { version: 5, clean: false, sessionExpiry: 1000 });
    expect(pubs(sim, "a").map((p) => dec(p.payload))).toEqual(["fresh"]);
    expect(sim.broker.stats.droppedExpired).toBe(2);
  });

  it("[MQTT-3.1.2-10] only DISCONNECT 0x00 removes the will: a DISCONNECT with an error code leaves it to be published", () => {
    const sim = new Sim();
    sim.connect("s", V5);
    sim.subscribe("s", [["w", 0]]);
    sim.take("s");
    sim.connect("a", { version: 5, will: { topic: "w", payload: enc("error") } });
    sim.send("a", { type: "disconnect", reasonCode: 0x80, properties: {} });
    sim.connect("b", { version: 5, will: { topic: "w", payload: enc("normal") } });
    sim.send("b", { type: "disconnect", reasonCode: 0x00, properties: {} });
    expect(pubs(sim, "s").map((p) => dec(p.payload))).toEqual(["error"]);
  });

  it("shared round robin: removing a member keeps the next member next", () => {
    const sim = new Sim();
    for (const m of ["A", "B", "C"]) {
      sim.connect(m, V5);
      sim.subscribe(m, [["$share/g/t", 0]]);
      sim.take(m);
    }
    sim.connect("p", V5);
    sim.publish("p", "t", "1", 0);
    sim.publish("p", "t", "2", 0);
    sim.unsubscribe("A", ["$share/g/t"]);
    sim.publish("p", "t", "3", 0);
    expect(["A", "B", "C"].map((m) => pubs(sim, m).map((p) => dec(p.payload)))).toEqual([["1"], ["2"], ["3"]]);
  });
});

describe("MQTT 5.0 DISCONNECT with a Session Expiry Interval", () => {
  const bye = (seconds: number) => ({ type: "disconnect" as const, reasonCode: 0, properties: { sessionExpiryInterval: seconds } });

  it("changes the session's lifetime: longer keeps it, 0 ends it with the connection", () => {
    const sim = new Sim();
    sim.connect("a", { version: 5, clean: false, sessionExpiry: 10 });
    sim.subscribe("a", [["t", 1]]);
    sim.send("a", bye(1000));
    sim.advance(100_000);
    expect(sim.broker.sessionStats("a")).toBeDefined();
    expect(sim.connect("a", { version: 5, clean: false, sessionExpiry: 10 })).toMatchObject({ sessionPresent: true });
    sim.send("a", bye(0));
    expect(sim.broker.sessionStats("a")).toBeUndefined();
    expect(sim.connect("a", { version: 5, clean: false, sessionExpiry: 10 })).toMatchObject({ sessionPresent: false });
  });

  it("setting a non-zero interval when CONNECT had 0 is a protocol error (0x82)", () => {
    const sim = new Sim();
    sim.connect("a", { version: 5, will: { topic: "w" } });
    sim.send("a", bye(60));
    expect(sim.closedReason("a")).toBe(0x82);
    expect(sim.broker.sessionStats("a")).toBeUndefined();
    expect(sim.eventsOf("will-published")).toHaveLength(1);
  });
});
