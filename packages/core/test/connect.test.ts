// CONNECT / CONNACK / DISCONNECT, client ids, authentication, keep alive, wills, takeover.
import { describe, expect, it } from "vitest";
import { ReasonCode } from "@harbormq/codec";
import { Sim, ack, connectPacket, dec, enc, publishPacket, sub } from "./sim.js";

const types = (sim: Sim, name: string) => sim.received(name).map((p) => p.type);

describe("MQTT 3.1.1", () => {
  describe("CONNECT", () => {
    it("[MQTT-3.1.4-4] [MQTT-3.2.0-1] accepts a CONNECT with CONNACK 0 as the first packet", () => {
      const sim = new Sim();
      const connack = sim.connect("c1");
      expect(connack).toEqual({ type: "connack", sessionPresent: false, reasonCode: 0, properties: {} });
      expect(types(sim, "c1")).toEqual(["connack"]);
      expect(sim.eventsOf("client-connected")).toHaveLength(1);
      expect(sim.broker.stats.connections).toBe(1);
    });

    it("[MQTT-3.1.0-1] closes a connection whose first packet is not CONNECT", () => {
      const sim = new Sim();
      sim.open("c1");
      sim.send("c1", publishPacket("a", "x", 0));
      expect(sim.isOpen("c1")).toBe(false);
      expect(sim.closedReason("c1")).toBe(ReasonCode.ProtocolError);
      expect(types(sim, "c1")).toEqual([]);
      expect(sim.eventsOf("protocol-error")).toHaveLength(1);
    });

    it("[MQTT-3.1.0-2] [MQTT-4.8.0-1] a second CONNECT is a protocol violation: disconnect and publish the will", () => {
      const sim = new Sim();
      sim.connect("w", { clean: true });
      sim.subscribe("w", ["will/#"]);
      sim.connect("c1", { will: { topic: "will/c1" } });
      sim.send("c1", connectPacket("c1"));
      expect(sim.isOpen("c1")).toBe(false);
      expect(sim.closedReason("c1")).toBe(0x82);
      expect(sim.publishes("w").map((p) => p.topic)).toEqual(["will/c1"]);
    });

    it("[MQTT-3.1.2-1] [MQTT-3.2.2-6] closes without CONNACK on a protocol name that does not fit the level", () => {
      const sim = new Sim();
      sim.connect("c1", { protocolName: "MQIsdp", version: 4 });
      expect(sim.isOpen("c1")).toBe(false);
      expect(types(sim, "c1")).toEqual([]);
      expect(sim.eventsOf("connect-refused")).toHaveLength(1);
    });

    it("[MQTT-3.1.2-2] answers an unsupported protocol level (reported by the decoder) with CONNACK 0x01 and closes", () => {
      const sim = new Sim();
      const c = sim.open("c1");
      sim.input({ type: "malformed", conn: c.conn!, reason: ReasonCode.UnsupportedProtocolVersion, message: "level 6" });
      expect(sim.received("c1")).toEqual([{ type: "connack", sessionPresent: false, reasonCode: 1, properties: {} }]);
      expect(sim.isOpen("c1")).toBe(false);
    });

    it("[MQTT-3.1.2-3] [MQTT-3.1.4-1] a CONNECT the decoder rejects (reserved flag set) closes without CONNACK", () => {
      const sim = new Sim();
      const c = sim.open("c1");
      sim.input({ type: "malformed", conn: c.conn!, reason: ReasonCode.MalformedPacket, message: "reserved flag" });
      expect(types(sim, "c1")).toEqual([]);
      expect(sim.isOpen("c1")).toBe(false);
      expect(sim.closedReason("c1")).toBe(ReasonCode.MalformedPacket);
    });

    it("accepts MQTT 3.1 (level 3, MQIsdp) clients, including ids longer than 23 characters", () => {
      const sim = new Sim();
      expect(sim.connect("c1", { version: 3, clientId: "a-rather-long-client-identifier-for-3.1" })).toMatchObject({ reasonCode: 0 });
      expect(sim.connect("c2", { version: 3, clientId: "" })).toMatchObject({ reasonCode: 2 });
      sim.disconnect("c1");
      // 3.1 CONNACK has no session present flag (reserved byte)
      expect(sim.connect("c3", { version: 3, clientId: "p31", clean: false })).toMatchObject({ sessionPresent: false });
      sim.disconnect("c3");
      expect(sim.connect("c3", { version: 3, clientId: "p31", clean: false })).toMatchObject({ sessionPresent: false, reasonCode: 0 });
      expect(sim.eventsOf("client-connected").at(-1)).toMatchObject({ sessionPresent: true });
    });

    it("closes a connection that sends no CONNECT within connectTimeout", () => {
      const sim = new Sim({ connectTimeout: 5_000 });
      sim.open("c1");
      sim.advance(4_999);
      expect(sim.isOpen("c1")).toBe(true);
      sim.advance(1);
      expect(sim.isOpen("c1")).toBe(false);
    });
  });

  describe("client identifiers", () => {
    it("[MQTT-3.1.3-5] accepts ids of 1 to 23 letters and digits", () => {
      const sim = new Sim();
      expect(sim.connect("a", { clientId: "a" })).toMatchObject({ reasonCode: 0 });
      expect(sim.connect("b", { clientId: "0123456789abcdefghijKLM" })).toMatchObject({ reasonCode: 0 });
    });

    it("[MQTT-3.1.3-6] assigns a unique id to an empty id with clean session 1", () => {
      const sim = new Sim();
      expect(sim.connect("a", { clientId: "", clean: true })).toMatchObject({ reasonCode: 0 });
      expect(sim.connect("b", { clientId: "", clean: true })).toMatchObject({ reasonCode: 0 });
      const ids = sim.eventsOf("client-connected").map((e) => e.clientId);
      expect(ids[0]).not.toBe(ids[1]);
      expect(ids[0]!.startsWith("harbormq-")).toBe(true);
      // It is handled as if the client sent the id: subscriptions work.
      sim.subscribe("a", ["t"]);
      sim.publish("b", "t", "x");
      expect(sim.publishes("a")).toHaveLength(1);
    });

    it("assigned ids do not collide with restored sessions", () => {
      const sim = new Sim();
      sim.connect("x", { clientId: "harbormq-1", clean: false });
      sim.disconnect("x");
      sim.crash();
      sim.connect("a", { clientId: "", clean: true });
      expect(sim.eventsOf("client-connected").at(-1)!.clientId).toBe("harbormq-2");
      expect(sim.broker.sessionStats("harbormq-1")).toBeDefined();
    });

    it("[MQTT-3.1.3-8] refuses an empty id with clean session 0 with CONNACK 0x02 and closes", () => {
      const sim = new Sim();
      expect(sim.connect("a", { clientId: "", clean: false })).toEqual({ type: "connack", sessionPresent: false, reasonCode: 2, properties: {} });
      expect(sim.isOpen("a")).toBe(false);
    });

    it("[MQTT-3.1.3-9] [MQTT-3.2.2-4] [MQTT-3.2.2-5] a rejected id gets CONNACK 0x02 with session present 0, then close", () => {
      const sim = new Sim({ maxClientIdLength: 4 });
      sim.connect("abcde", { clean: false });
      sim.disconnect("abcde");
      expect(sim.connect("abcde", { clean: false })).toEqual({ type: "connack", sessionPresent: false, reasonCode: 2, properties: {} });
      expect(sim.isOpen("abcde")).toBe(false);
    });

    it("[MQTT-3.1.3-2] finds the session by client id", () => {
      const sim = new Sim();
      sim.connect("one", { clientId: "same", clean: false });
      sim.subscribe("one", [["t", 1]]);
      sim.disconnect("one");
      expect(sim.connect("two", { clientId: "same", clean: false })).toMatchObject({ sessionPresent: true });
      sim.connect("p");
      sim.publish("p", "t", "x", 1);
      expect(sim.publishes("two")).toHaveLength(1);
    });
  });

  describe("authentication", () => {
    it("asks the hook and waits for its answer, holding later packets in order", () => {
      const sim = new Sim({ authenticate: true });
      const c = sim.open("c1");
      sim.send("c1", connectPacket("c1", { username: "u" }));
      sim.send("c1", { type: "subscribe", packetId: 1, subscriptions: [sub("t")], properties: {} });
      expect(types(sim, "c1")).toEqual([]);
      expect(sim.pendingHooks).toHaveLength(1);
      const hook = sim.pendingHooks.pop()!;
      expect(hook).toMatchObject({ type: "authenticate", conn: c.conn, connect: { username: "u" } });
      sim.input({ type: "authed", op: (hook as { op: number }).op, verdict: { ok: true }, granted: undefined });
      expect(types(sim, "c1")).toEqual(["connack", "suback"]);
    });

    it("[MQTT-3.1.4-5] refuses with CONNACK 4/5 and processes nothing sent after the CONNECT", () => {
      const sim = new Sim({ authenticate: true }, { authenticate: () => undefined });
      sim.open("c1");
      sim.send("c1", connectPacket("c1"));
      sim.send("c1", publishPacket("t", "x", 1));
      sim.connect("s");
      const hooks = sim.pendingHooks.splice(0);
      sim.input({ type: "authed", op: (hooks[1] as { op: number }).op, verdict: { ok: true }, granted: undefined });
      sim.subscribe("s", ["t"]);
      sim.input({ type: "authed", op: (hooks[0] as { op: number }).op, verdict: { ok: false, reasonCode: 0x86 }, granted: undefined });
      expect(sim.received("c1")).toEqual([{ type: "connack", sessionPresent: false, reasonCode: 4, properties: {} }]);
      expect(sim.isOpen("c1")).toBe(false);
      expect(sim.publishes("s")).toEqual([]);
      const sim2 = new Sim({ authenticate: true }, { authenticate: () => ({ ok: false, reasonCode: 0x87 }) });
      expect(sim2.connect("c1")).toMatchObject({ reasonCode: 5 });
    });
  });

  describe("hook answers are untrusted", () => {
    it("[MQTT-3.2.2-8] turns a refusal code that CONNACK cannot carry into a valid one", () => {
      for (const reasonCode of [0x8b, 0x00, 0x10, 0x300]) {
        const sim = new Sim({ authenticate: true }, { authenticate: () => ({ ok: false, reasonCode }) });
        expect(sim.connect("v5", { version: 5 })).toMatchObject({ reasonCode: 0x87 });
        expect(sim.connect("v4", { version: 4 })).toMatchObject({ reasonCode: 5 });
      }
      const sim = new Sim({ authenticate: true }, { authenticate: () => ({ ok: false, reasonCode: 0x86 }) });
      expect(sim.connect("v5", { version: 5 })).toMatchObject({ reasonCode: 0x86 });
    });

    it("[MQTT-3.9.3-2] turns granted values that SUBACK cannot carry into a refusal", () => {
      const weird = [3, -1, 0.5, 0x90, 0x8f, 0x80];
      const subs = weird.map((_, i) => `t/${i}`);
      const sim = new Sim({ authorizeSubscribe: true }, { authorizeSubscribe: () => weird });
      sim.connect("v5", { version: 5 });
      expect(sim.subscribe("v5", subs)).toMatchObject({ reasonCodes: [0x87, 0x87, 0x87, 0x87, 0x8f, 0x87] });
      sim.connect("v4", { version: 4 });
      expect(sim.subscribe("v4", subs)).toMatchObject({ reasonCodes: [0x80, 0x80, 0x80, 0x80, 0x80, 0x80] });
    });
  });

  describe("keep alive", () => {
    it("[MQTT-3.1.2-24] closes after 1.5 x keep alive without a packet and publishes the will", () => {
      const sim = new Sim();
      sim.connect("w");
      sim.subscribe("w", ["will"]);
      sim.connect("c1", { keepAlive: 10, will: { topic: "will" } });
      sim.advance(9_000);
      sim.send("c1", { type: "pingreq" });
      sim.advance(14_999);
      expect(sim.isOpen("c1")).toBe(true);
      sim.advance(1);
      expect(sim.isOpen("c1")).toBe(false);
      expect(sim.closedReason("c1")).toBe(ReasonCode.KeepAliveTimeout);
      expect(sim.publishes("w").map((p) => p.topic)).toEqual(["will"]);
    });

    it("[MQTT-3.12.4-1] answers every PINGREQ with a PINGRESP", () => {
      const sim = new Sim();
      sim.connect("c1");
      sim.send("c1", { type: "pingreq" });
      sim.send("c1", { type: "pingreq" });
      expect(types(sim, "c1")).toEqual(["connack", "pingresp", "pingresp"]);
    });

    it("keep alive 0 never times out", () => {
      const sim = new Sim();
      sim.connect("c1", { keepAlive: 0 });
      sim.advance(10_000_000);
      expect(sim.isOpen("c1")).toBe(true);
      expect(sim.broker.nextDeadline()).toBeUndefined();
    });
  });

  describe("will", () => {
    const setup = () => {
      const sim = new Sim();
      sim.connect("w");
      sim.subscribe("w", [["will/#", 2]]);
      return sim;
    };

    it("[MQTT-3.1.2-8] publishes the will when the connection is lost", () => {
      const sim = setup();
      sim.connect("c1", { will: { topic: "will/c1", payload: enc("bye"), qos: 1 } });
      sim.drop("c1");
      const [p] = sim.publishes("w");
      expect(p).toMatchObject({ topic: "will/c1", qos: 1, retain: false });
      expect(dec(p!.payload)).toBe("bye");
      expect(sim.eventsOf("will-published")).toHaveLength(1);
    });

    it("[MQTT-3.1.2-10] [MQTT-3.14.4-3] does not publish the will after DISCONNECT", () => {
      const sim = setup();
      sim.connect("c1", { will: { topic: "will/c1" } });
      sim.disconnect("c1");
      expect(sim.publishes("w")).toEqual([]);
    });

    it("[MQTT-3.1.2-10] publishes the will once, then deletes it", () => {
      const sim = setup();
      sim.connect("c1", { will: { topic: "will/c1" } });
      sim.send("c1", connectPacket("c1"));
      const c1conn = sim.actions.find((a) => a.type === "close")!;
      sim.input({ type: "closed", conn: (c1conn as { conn: number }).conn });
      expect(sim.publishes("w")).toHaveLength(1);
    });

    it("[MQTT-3.1.2-12] publishes nothing when the will flag is 0", () => {
      const sim = setup();
      sim.connect("c1");
      sim.drop("c1");
      expect(sim.publishes("w")).toEqual([]);
      expect(sim.eventsOf("will-published")).toEqual([]);
    });

    it("[MQTT-3.1.2-16] a will with retain 0 is published non-retained", () => {
      const sim = setup();
      sim.connect("c1", { will: { topic: "will/c1", retain: false } });
      sim.drop("c1");
      expect(sim.broker.stats.retained).toBe(0);
      sim.connect("late");
      sim.subscribe("late", ["will/#"]);
      expect(sim.publishes("late")).toEqual([]);
    });

    it("[MQTT-3.1.2-17] a will with retain 1 is published as a retained message", () => {
      const sim = setup();
      sim.connect("c1", { will: { topic: "will/c1", retain: true, qos: 1 } });
      sim.drop("c1");
      expect(sim.publishes("w")[0]).toMatchObject({ retain: false, qos: 1 }); // existing subscriber
      expect(sim.writesOf("retained-put")).toHaveLength(1);
      sim.connect("late");
      sim.subscribe("late", [["will/#", 1]]);
      expect(sim.publishes("late")[0]).toMatchObject({ topic: "will/c1", retain: true, qos: 1 });
    });

    it("wills go out on a protocol error and on takeover, not on a graceful shutdown", () => {
      const sim = setup();
      sim.connect("c1", { will: { topic: "will/a" } });
      sim.send("c1", { type: "suback", packetId: 1, reasonCodes: [0], properties: {} });
      sim.connect("c2", { clientId: "x", will: { topic: "will/b" } });
      sim.connect("c3", { clientId: "x" });
      sim.connect("c4", { will: { topic: "will/c" } });
      sim.input({ type: "shutdown" });
      expect(sim.publishes("w").map((p) => p.topic)).toEqual(["will/a", "will/b"]);
    });
  });

  describe("takeover and session present", () => {
    it("[MQTT-3.1.4-2] a new connection with a connected client id closes the old one", () => {
      const sim = new Sim();
      sim.connect("old", { clientId: "dev", clean: false });
      sim.subscribe("old", [["t", 1]]);
      expect(sim.connect("new", { clientId: "dev", clean: false })).toMatchObject({ reasonCode: 0, sessionPresent: true });
      expect(sim.isOpen("old")).toBe(false);
      expect(sim.closedReason("old")).toBe(ReasonCode.SessionTakenOver);
      sim.connect("p");
      sim.publish("p", "t", "x", 1);
      expect(sim.publishes("new")).toHaveLength(1);
      expect(sim.publishes("old")).toHaveLength(0);
    });

    it("[MQTT-3.1.4-3] [MQTT-3.2.2-1] takeover with clean session 1 discards the session", () => {
      const sim = new Sim();
      sim.connect("old", { clientId: "dev", clean: false });
      sim.subscribe("old", [["t", 1]]);
      expect(sim.connect("new", { clientId: "dev", clean: true })).toMatchObject({ sessionPresent: false });
      sim.connect("p");
      sim.publish("p", "t", "x", 1);
      expect(sim.publishes("new")).toHaveLength(0);
    });

    it("[MQTT-3.2.2-2] [MQTT-3.2.2-3] session present reflects stored state", () => {
      const sim = new Sim();
      expect(sim.connect("c", { clean: false })).toMatchObject({ sessionPresent: false });
      sim.disconnect("c");
      expect(sim.connect("c", { clean: false })).toMatchObject({ sessionPresent: true });
      sim.disconnect("c");
      sim.crash();
      expect(sim.connect("c", { clean: false })).toMatchObject({ sessionPresent: true });
      sim.disconnect("c");
      expect(sim.connect("c", { clean: true })).toMatchObject({ sessionPresent: false });
      sim.disconnect("c");
      expect(sim.connect("c", { clean: false })).toMatchObject({ sessionPresent: false });
    });
  });

  describe("protocol violations", () => {
    it("[MQTT-4.8.0-1] a server-to-client packet from a client closes the connection with 0x82", () => {
      for (const packet of [
        { type: "connack", sessionPresent: false, reasonCode: 0, properties: {} },
        { type: "suback", packetId: 1, reasonCodes: [0], properties: {} },
        { type: "unsuback", packetId: 1, reasonCodes: [], properties: {} },
        { type: "pingresp" },
      ] as const) {
        const sim = new Sim();
        sim.connect("c1");
        sim.send("c1", packet);
        expect(sim.closedReason("c1")).toBe(0x82);
        expect(sim.eventsOf("protocol-error")).toHaveLength(1);
      }
    });

    it("a malformed packet after CONNECT closes with the decoder's reason and publishes the will", () => {
      const sim = new Sim();
      sim.connect("w");
      sim.subscribe("w", ["will"]);
      const c = sim.client("c1");
      sim.connect("c1", { will: { topic: "will" } });
      sim.input({ type: "malformed", conn: c.conn!, reason: ReasonCode.PacketTooLarge, message: "too large" });
      expect(sim.closedReason("c1")).toBe(ReasonCode.PacketTooLarge);
      expect(sim.publishes("w")).toHaveLength(1);
    });

    it("PUBACK / PUBREC / PUBCOMP for unknown ids are ignored", () => {
      const sim = new Sim();
      sim.connect("c1");
      sim.send("c1", ack("puback", 7));
      sim.send("c1", ack("pubrec", 7));
      sim.send("c1", ack("pubcomp", 7));
      expect(sim.isOpen("c1")).toBe(true);
      expect(types(sim, "c1")).toEqual(["connack"]);
    });

    it("too many packets while waiting for a hook closes the connection", () => {
      const sim = new Sim({ authenticate: true, maxBufferedPackets: 2 });
      sim.open("c1");
      sim.send("c1", connectPacket("c1"));
      for (let i = 0; i < 3; i++) sim.send("c1", { type: "pingreq" });
      expect(sim.closedReason("c1")).toBe(ReasonCode.QuotaExceeded);
    });
  });
});

describe("MQTT 5.0 (3.1.1-equivalent behaviour)", () => {
  it("uses v5 reason codes and assigns ids visibly", () => {
    const sim = new Sim();
    expect(sim.connect("a", { version: 5, clientId: "" })).toMatchObject({ reasonCode: 0, properties: { assignedClientIdentifier: "harbormq-1" } });
    const sim2 = new Sim({ maxClientIdLength: 2 });
    expect(sim2.connect("abc", { version: 5 })).toMatchObject({ reasonCode: 0x85 });
    sim.subscribe("a", ["t"]);
    expect(sim.unsubscribe("a", ["t", "u"])).toMatchObject({ reasonCodes: [0, 0x11] });
  });

  it("[MQTT-3.2.2-16] [MQTT-3.2.2-9] tells a v5 client its assigned id, the maximum QoS and the maximum packet size", () => {
    const sim = new Sim({ maxQos: 1, maxPacketSize: 1024 });
    expect(sim.connect("a", { version: 5, clientId: "" })?.properties).toEqual({
      assignedClientIdentifier: "harbormq-1", maximumQoS: 1, maximumPacketSize: 1024, topicAliasMaximum: 10,
    });
    // Nothing to say when every limit is the protocol's own.
    const open = new Sim({ maxPacketSize: 268_435_460, topicAliasMaximum: 0 });
    expect(open.connect("b", { version: 5 })?.properties).toEqual({});
    // MQTT 3.1.1 CONNACK has no properties.
    expect(sim.connect("c", { version: 4 })?.properties).toEqual({});
  });

  it("keeps a session with a session expiry interval and expires it", () => {
    const sim = new Sim();
    sim.connect("a", { version: 5, clean: false, sessionExpiry: 10 });
    sim.subscribe("a", [["t", 1]]);
    sim.drop("a");
    sim.advance(5_000);
    expect(sim.connect("a", { version: 5, clean: false, sessionExpiry: 10 })).toMatchObject({ sessionPresent: true });
    sim.drop("a");
    sim.advance(10_000);
    expect(sim.eventsOf("session-expired")).toHaveLength(1);
    expect(sim.connect("a", { version: 5, clean: false, sessionExpiry: 10 })).toMatchObject({ sessionPresent: false });
  });
});

describe("MQTT 5.0 (3.1.1-equivalent behaviour), session expiry 0", () => {
  it("resuming a persistent session with expiry 0 keeps its state for this connection, then ends it", () => {
    const sim = new Sim();
    sim.connect("a", { version: 5, clean: false, sessionExpiry: 100 });
    sim.subscribe("a", [["t", 1]]);
    sim.drop("a");
    sim.connect("p");
    sim.publish("p", "t", "x", 1);
    expect(sim.connect("a", { version: 5, clean: false, sessionExpiry: 0 })).toMatchObject({ sessionPresent: true });
    expect(sim.publishes("a")).toHaveLength(1);
    sim.ackAll("a");
    sim.drop("a");
    expect(sim.broker.sessionStats("a")).toBeUndefined();
    expect(sim.store.sessions.has("a")).toBe(false);
  });

  it("persistentSessionExpiry 0 ends a 3.1.1 persistent session at disconnect", () => {
    const sim = new Sim({ persistentSessionExpiry: 0 });
    sim.connect("a", { clean: false });
    sim.disconnect("a");
    expect(sim.broker.sessionStats("a")).toBeUndefined();
    expect(sim.connect("a", { clean: false })).toMatchObject({ sessionPresent: false });
  });
});
