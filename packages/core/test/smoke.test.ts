import { describe, expect, it } from "vitest";
import { Sim, dec } from "./sim.js";

describe("MQTT 3.1.1", () => {
  it("[MQTT-7.0.0-2] needs no extension: a plain client gets its persistent session across reconnect and restart; routes a QoS 1 message to an offline persistent session and delivers it on reconnect", () => {
    const sim = new Sim();
    expect(sim.connect("sub", { clean: false })).toMatchObject({ sessionPresent: false, reasonCode: 0 });
    sim.subscribe("sub", [["a/b", 1]]);
    sim.disconnect("sub");
    sim.connect("pub");
    sim.publish("pub", "a/b", "hello", 1);
    expect(sim.received("pub").map((p) => p.type)).toEqual(["connack", "puback"]);
    sim.take("sub");
    expect(sim.connect("sub", { clean: false })).toMatchObject({ sessionPresent: true });
    const pubs = sim.publishes("sub");
    expect(pubs.length).toBe(1);
    expect(dec(pubs[0]!.payload)).toBe("hello");
    expect(pubs[0]!.qos).toBe(1);
    sim.ackAll("sub");
    expect(sim.broker.sessionStats("sub")).toMatchObject({ queued: 0, inflight: 0 });
    sim.crash();
    expect(sim.connect("sub", { clean: false })).toMatchObject({ sessionPresent: true });
    expect(sim.publishes("sub").length).toBe(0);
  });
});

describe("MQTT 3.1.1", () => {
  it("[MQTT-7.0.0-1] harbormq has no bridge: the core opens no outbound connection and never sends a client-role packet", () => {
    const sim = new Sim({ authenticate: true, authorizePublish: true, authorizeSubscribe: true }, { authenticate: () => ({ ok: true }), authorizePublish: () => true, authorizeSubscribe: (_c, s) => s.map(() => 2) });
    sim.connect("a", { clean: false, keepAlive: 5, will: { topic: "w" } });
    sim.connect("b");
    sim.subscribe("a", [["#", 2]]);
    sim.subscribe("b", ["w"]);
    for (const q of [0, 1, 2] as const) sim.publish("b", "t", "x", q, { retain: true });
    sim.ackAll("a");
    sim.unsubscribe("a", ["#"]);
    sim.send("a", { type: "pingreq" });
    sim.advance(10_000);
    const kinds = new Set(sim.actions.map((a) => a.type));
    for (const k of kinds) expect(["send", "close", "persist", "observe", "load", "authenticate", "authorize-publish", "authorize-subscribe"]).toContain(k);
    const sent = new Set(sim.actions.flatMap((a) => (a.type === "send" ? [a.packet.type] : [])));
    for (const t of ["connect", "subscribe", "unsubscribe", "pingreq"]) expect(sent.has(t as never)).toBe(false);
    expect(sent.has("connack") && sent.has("publish") && sent.has("suback")).toBe(true);
  });
});
