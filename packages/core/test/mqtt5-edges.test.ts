// MQTT 5.0 server-side edges a review of the core found wrong (session 5), one test each: a
// client's Subscription Identifier, QoS above Maximum QoS, a DISCONNECT held behind a pending
// hook, deadlines that passed before the timer input, DISCONNECT with the reason on errors.
import { describe, expect, it } from "vitest";
import type { Packet, PublishPacket } from "@harbormq/codec";
import type { Action } from "@harbormq/core";
import { Sim, ack, dec, type ConnectOptions } from "./sim.js";

const V5: ConnectOptions = { version: 5 };
const PERSIST: ConnectOptions = { version: 5, clean: false, sessionExpiry: 600 };

const publishes = (sim: Sim, name: string): PublishPacket[] => sim.take(name).filter((p): p is PublishPacket => p.type === "publish");
const payloads = (ps: readonly PublishPacket[]) => ps.map((p) => dec(p.payload));
const disconnects = (ps: readonly Packet[]) => ps.filter((p) => p.type === "disconnect").map((p) => (p as { reasonCode: number }).reasonCode);

/** Answers every pending hook with "allowed", as a slow authorisation service eventually does. */
function answerHooks(sim: Sim): void {
  for (const h of sim.pendingHooks.splice(0)) {
    sim.input({ type: "authed", op: (h as Action & { op: number }).op, verdict: { ok: true }, granted: undefined });
  }
}

describe("MQTT 5.0 edges: MUST rules", () => {
  it("[MQTT-3.3.4-6] [MQTT-3.3.4-3] [MQTT-3.3.4-5] a Subscription Identifier in a client's PUBLISH is never passed on: each subscriber (and the retained copy) carries only its own identifiers", () => {
    const sim = new Sim();
    sim.connect("plain", V5);
    sim.subscribe("plain", [["t", 1]]); // no subscription identifier
    sim.connect("ided", V5);
    sim.subscribe("ided", [["t", 1]], undefined, { subscriptionIdentifiers: [7] });
    sim.connect("p", V5);
    sim.take("plain");
    sim.take("ided");
    // The client breaks [MQTT-3.3.4-6]. Acceptable server reactions: a protocol error (nothing
    // routed) or dropping the property; forwarding it to subscribers is not.
    sim.publish("p", "t", "x", 1, { retain: true, properties: { subscriptionIdentifiers: [42] } });
    const plain = publishes(sim, "plain");
    const ided = publishes(sim, "ided");
    for (const p of ided) expect(p.properties.subscriptionIdentifiers).toEqual([7]);
    for (const p of plain) expect(p.properties.subscriptionIdentifiers).toBeUndefined(); // gets [42]
    // A later subscriber without an identifier gets the retained message without one.
    sim.connect("late", V5);
    sim.subscribe("late", [["t", 1]]);
    for (const p of publishes(sim, "late")) expect(p.properties.subscriptionIdentifiers).toBeUndefined(); // gets [42]
  });

  it("[MQTT-3.2.2-11] [MQTT-4.13.1-1] a PUBLISH above the Maximum QoS the CONNACK announced is a protocol error: DISCONNECT 0x9B, not acknowledged, not routed", () => {
    // 5.0 section 3.2.2.3.4: "If a Server receives a PUBLISH packet with a QoS greater than the
    // Maximum QoS it specified, it uses DISCONNECT with Reason Code 0x9B (QoS not supported)".
    const sim = new Sim({ maxQos: 1 });
    sim.connect("s", V5);
    sim.subscribe("s", [["t", 1]]);
    expect(sim.connect("p", V5)).toMatchObject({ reasonCode: 0, properties: { maximumQoS: 1 } });
    sim.take("s");
    sim.take("p");
    sim.publish("p", "t", "qos 2 anyway", 2);
    const got = sim.take("p");
    expect(got.map((p) => p.type)).not.toContain("pubrec"); // the core answers PUBREC 0x00
    expect(disconnects(got)).toEqual([0x9b]);
    expect(sim.closedReason("p")).toBe(0x9b);
    expect(payloads(publishes(sim, "s"))).toEqual([]); // the core routes it (at QoS 1)
  });

  it("[MQTT-3.14.4-3] [MQTT-3.1.2-10] [MQTT-3.1.2-8] a DISCONNECT 0x00 held behind a pending authorize-publish hook still discards the will when the socket then closes", () => {
    const sim = new Sim({ authorizePublish: true });
    sim.connect("w", V5);
    sim.subscribe("w", [["will/#", 0]]);
    sim.take("w");
    sim.connect("c", { ...V5, will: { topic: "will/c" } });
    answerHooks(sim); // the will's topic is authorized at CONNECT
    // A client's usual goodbye: a last PUBLISH, DISCONNECT 0x00, then it closes the socket. The
    // PUBLISH waits for the hook, so the DISCONNECT is buffered behind it when the close arrives.
    sim.publish("c", "data", "last", 0);
    sim.disconnect("c");
    answerHooks(sim);
    expect(payloads(publishes(sim, "w"))).toEqual([]); // the will "gone" is published
    expect(sim.eventsOf("client-disconnected").filter((e) => e.clientId === "c").map((e) => e.graceful)).toEqual([true]); // [false]
  });

  it("[MQTT-3.1.2-23] [MQTT-4.1.0-2] a Session Expiry Interval 0 sent in a DISCONNECT held behind a pending hook ends the session when the socket closes", () => {
    for (const hook of ["authorizePublish", "authorizeSubscribe"] as const) {
      const sim = new Sim({ [hook]: true });
      sim.connect("c", PERSIST);
      if (hook === "authorizePublish") sim.publish("c", "data", "last", 0);
      else sim.subscribe("c", [["x", 0]]);
      sim.send("c", { type: "disconnect", reasonCode: 0, properties: { sessionExpiryInterval: 0 } });
      sim.drop("c"); // the client closes its socket after its DISCONNECT
      answerHooks(sim);
      sim.advance(1_000);
      // 3.14.2.2.2: the DISCONNECT set the interval to 0, so the session ends with the connection.
      expect(sim.broker.sessionStats("c"), hook).toBeUndefined(); // it lives on for 600 s
    }
  });

  // The core runs due timers only on a "tick" input; handle(now, packet) with `now` past a
  // deadline acts as if it had not passed. The driver's setTimeout is not ordered before socket
  // reads (and after a restart the first CONNECTs may come before the first tick), so a late tick
  // is normal, and a CONNECT handled in between sees state that the spec says is gone.
  it("[MQTT-4.1.0-2] [MQTT-3.1.2-23] a CONNECT handled after the session's expiry passed (before the tick for it) does not resume the expired session", () => {
    for (const restart of [false, true]) {
      const sim = new Sim();
      const ten: ConnectOptions = { version: 5, clean: false, sessionExpiry: 10 };
      sim.connect("s", ten);
      sim.subscribe("s", [["t", 1]]);
      sim.drop("s");
      sim.connect("p", V5);
      sim.publish("p", "t", "old", 1);
      expect(sim.broker.nextDeadline()).toBe(10_000);
      if (restart) sim.crash();
      sim.now = restart ? 3_600_000 : 10_500; // expired; the timer has not fired yet
      expect(sim.connect("s", ten), `restart ${restart}`).toMatchObject({ sessionPresent: false }); // true
      expect(payloads(publishes(sim, "s")), `restart ${restart}`).toEqual([]); // ["old"]
    }
  });

  it("[MQTT-3.1.2-8] [MQTT-3.1.3-9] a reconnect handled after the Will Delay Interval passed (before the tick for it) does not cancel the will", () => {
    const sim = new Sim();
    sim.connect("w", V5);
    sim.subscribe("w", [["will", 0]]);
    sim.take("w");
    sim.connect("c", { ...PERSIST, will: { topic: "will", properties: { willDelayInterval: 5 } } });
    sim.drop("c");
    sim.now = 6_000; // the delay passed at 5_000; the timer has not fired yet
    sim.connect("c", PERSIST);
    sim.advance(10_000);
    expect(payloads(publishes(sim, "w"))).toEqual(["gone"]); // never published
  });
});

describe("MQTT 5.0 edges: SHOULD rules", () => {
  it("4.13.1 (SHOULD, no id): a protocol violation or a malformed packet from an MQTT 5 client is answered with DISCONNECT carrying the reason before the close", () => {
    // "In the case of an error in any other packet it SHOULD send a DISCONNECT packet containing
    // the reason code before closing the Network Connection."
    const sim = new Sim();
    sim.connect("a", V5);
    sim.take("a");
    sim.send("a", { type: "pingresp" }); // a server-to-client packet: protocol error
    expect(sim.closedReason("a")).toBe(0x82);
    expect(disconnects(sim.take("a"))).toEqual([0x82]); // closed without DISCONNECT
    sim.connect("b", V5);
    sim.take("b");
    sim.input({ type: "malformed", conn: sim.client("b").conn!, reason: 0x81, message: "bad remaining length" });
    expect(sim.closedReason("b")).toBe(0x81);
    expect(disconnects(sim.take("b"))).toEqual([0x81]); // closed without DISCONNECT
  });
});
