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
