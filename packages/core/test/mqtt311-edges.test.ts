// MQTT 3.1.1 server-side edges a review of the core found (session 5): a session an MQTT 5
// connection created and a 3.1.1 connection resumed keeps no MQTT 5 options, and a will is
// authorized like a PUBLISH. Each test failed before its fix.
import { describe, expect, it } from "vitest";
import { Sim, sub } from "./sim.js";

describe("MQTT 3.1.1 resuming a session created by MQTT 5", () => {
  it("[MQTT-3.3.1-9] a 3.1.1 client gets RETAIN=0 on its established subscriptions, also when an MQTT 5 connection set Retain As Published", () => {
    const sim = new Sim();
    sim.connect("s", { version: 5, sessionExpiry: 3600 });
    sim.subscribe("s", [{ ...sub("t", 1), retainAsPublished: true }]);
    sim.drop("s");
    sim.connect("s", { version: 4, clean: false }); // the same client id, now a 3.1.1 client
    sim.connect("p");
    sim.publish("p", "t", "x", 1, { retain: true });
    const got = sim.publishes("s");
    expect(got).toHaveLength(1);
    expect(got[0]!.retain).toBe(false);
  });

  it("[MQTT-4.5.0-1] a 3.1.1 client gets its own messages on a matching subscription, also when an MQTT 5 connection set No Local", () => {
    const sim = new Sim();
    sim.connect("c", { version: 5, sessionExpiry: 3600 });
    sim.subscribe("c", [{ ...sub("t", 0), noLocal: true }]);
    sim.drop("c");
    sim.connect("c", { version: 4, clean: false });
    sim.publish("c", "t", "mine", 0);
    expect(sim.publishes("c")).toHaveLength(1);
  });
});

describe("wills and the authorize-publish hook", () => {
  it("[MQTT-3.1.2-8] a will is authorized at CONNECT like a PUBLISH: a refused will topic refuses the connection (0x05 / MQTT 5: 0x87), so a client cannot publish there by dropping its connection", () => {
    const sim = new Sim({ authorizePublish: true }, { authorizePublish: (_c, topic) => !topic.startsWith("cmd/") });
    sim.connect("victim");
    sim.subscribe("victim", ["cmd/#"]);
    expect(sim.connect("evil", { will: { topic: "cmd/door", retain: true } })).toMatchObject({ type: "connack", sessionPresent: false, reasonCode: 0x05 });
    expect(sim.isOpen("evil")).toBe(false);
    expect(sim.connect("evil5", { version: 5, will: { topic: "cmd/door", retain: true } })).toMatchObject({ type: "connack", reasonCode: 0x87 });
    expect(sim.publishes("victim")).toHaveLength(0);
    expect(sim.broker.stats.retained).toBe(0);
    // An allowed will topic connects, and its will goes out on an abnormal close.
    expect(sim.connect("fine", { will: { topic: "status/fine" } })).toMatchObject({ reasonCode: 0 });
    sim.subscribe("victim", ["status/#"]);
    sim.drop("fine");
    expect(sim.publishes("victim").map((p) => p.topic)).toEqual(["status/fine"]);
  });

  it("a client without a will is not asked about (no hook call at CONNECT)", () => {
    const asked: string[] = [];
    const sim = new Sim({ authorizePublish: true }, { authorizePublish: (_c, topic) => (asked.push(topic), true) });
    expect(sim.connect("plain")).toMatchObject({ reasonCode: 0 });
    expect(asked).toEqual([]);
  });
});
