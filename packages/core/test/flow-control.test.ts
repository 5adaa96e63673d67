// MQTT 5 flow control, server to client: the client's Receive Maximum bounds the QoS 1/2
// PUBLISHes awaiting its acknowledgement ([MQTT-3.3.4-9]), new sends and resends alike.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { PublishPacket } from "@harbormq/codec";
import { Sim, ack, dec } from "./sim.js";

const publishes = (sim: Sim, name: string): PublishPacket[] => sim.take(name).filter((p): p is PublishPacket => p.type === "publish");

describe("MQTT 5.0 flow control (Receive Maximum)", () => {
  it("[MQTT-3.3.4-9] never more unacknowledged QoS 1/2 PUBLISHes than the client's Receive Maximum, and everything arrives in order", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 1, max: 10 }),
        fc.array(fc.oneof(fc.constant("pub1" as const), fc.constant("pub2" as const), fc.constant("ack" as const), fc.constant("reconnect" as const)), { maxLength: 80 }),
        (receiveMaximum, maxInflight, steps) => {
          const sim = new Sim({ maxInflight, maxQueuedMessages: 10_000 });
          const connect = () => sim.connect("s", { version: 5, clean: false, sessionExpiry: 600, receiveMaximum });
          connect();
          sim.subscribe("s", [["t", 2]]);
          sim.take("s");
          sim.connect("p");
          const limit = Math.min(receiveMaximum, maxInflight);
          const outstanding = new Map<number, "publish" | "pubrel">(); // packet id -> awaiting
          const firsts: string[] = [];
          let n = 0;
          const absorb = () => {
            for (const p of sim.take("s")) {
              if (p.type === "publish") {
                outstanding.set(p.packetId!, "publish");
                if (!p.dup) firsts.push(dec(p.payload));
              } else if (p.type === "pubrel") outstanding.set(p.packetId, "pubrel");
            }
            // PUBLISHes and PUBRELs both use up the quota until PUBACK / PUBCOMP.
            expect(outstanding.size).toBeLessThanOrEqual(limit);
          };
          for (const step of steps) {
            if (step === "pub1" || step === "pub2") sim.publish("p", "t", String(n++), step === "pub1" ? 1 : 2, { packetId: (n % 60000) + 1 });
            else if (step === "ack") {
              const first = outstanding.entries().next().value;
              if (first !== undefined) {
                const [id, awaiting] = first;
                outstanding.delete(id);
                const pub = awaiting === "pubrel" ? undefined : id;
                if (awaiting === "pubrel") sim.send("s", ack("pubcomp", id));
                else if (pub !== undefined) {
                  // Which QoS? The entry knows; answer PUBACK for QoS 1, PUBREC for QoS 2.
                  sim.send("s", ack("puback", id));
                  sim.send("s", ack("pubrec", id));
                }
              }
            } else {
              sim.drop("s");
              outstanding.clear(); // everything unacknowledged comes again
              connect();
            }
            absorb();
          }
          // Drain: acknowledge until quiet; every message arrives once as a first delivery, in order.
          for (let round = 0; round < 10_000 && outstanding.size > 0; round++) {
            const [id, awaiting] = outstanding.entries().next().value!;
            outstanding.delete(id);
            if (awaiting === "pubrel") sim.send("s", ack("pubcomp", id));
            else {
              sim.send("s", ack("puback", id));
              sim.send("s", ack("pubrec", id));
            }
            absorb();
          }
          expect(firsts).toEqual(Array.from({ length: n }, (_, i) => String(i)));
        },
      ),
      { numRuns: 200 },
    );
  });

  it("[MQTT-3.3.4-9] [MQTT-4.4.0-1] a client that reconnects with a smaller Receive Maximum gets its in-flight messages again a few at a time, with their ids", () => {
    const sim = new Sim({ maxInflight: 20 });
    sim.connect("s", { version: 5, clean: false, sessionExpiry: 600 });
    sim.subscribe("s", [["t", 1]]);
    sim.take("s");
    sim.connect("p");
    for (let i = 0; i < 6; i++) sim.publish("p", "t", String(i), 1, { packetId: i + 1 });
    const first = publishes(sim, "s");
    expect(first).toHaveLength(6);
    sim.drop("s");
    sim.connect("s", { version: 5, clean: false, sessionExpiry: 600, receiveMaximum: 2 });
    const again = publishes(sim, "s");
    expect(again.map((p) => [dec(p.payload), p.dup, p.packetId])).toEqual([["0", true, first[0]!.packetId], ["1", true, first[1]!.packetId]]);
    sim.send("s", ack("puback", first[0]!.packetId!));
    expect(publishes(sim, "s").map((p) => [dec(p.payload), p.dup, p.packetId])).toEqual([["2", true, first[2]!.packetId]]);
    // An ack for a message whose resend is still deferred (received on the earlier connection)
    // completes it: it is not resent. The two on the wire ("1", "2") still fill the window.
    sim.send("s", ack("puback", first[4]!.packetId!));
    expect(publishes(sim, "s")).toEqual([]);
    sim.send("s", ack("puback", first[1]!.packetId!));
    expect(publishes(sim, "s").map((p) => dec(p.payload))).toEqual(["3"]);
    sim.send("s", ack("puback", first[2]!.packetId!));
    expect(publishes(sim, "s").map((p) => dec(p.payload))).toEqual(["5"]);
    sim.send("s", ack("puback", first[3]!.packetId!));
    sim.send("s", ack("puback", first[5]!.packetId!));
    expect(sim.broker.sessionStats("s")).toMatchObject({ inflight: 0, queued: 0 });
  });

  it("[MQTT-4.3.3-4] [MQTT-4.3.3-9] a PUBREC of 0x80 or more ends the QoS 2 flow: no PUBREL, the message is done, the window moves on", () => {
    const sim = new Sim({ maxInflight: 1 });
    sim.connect("s", { version: 5, clean: false, sessionExpiry: 600 });
    sim.subscribe("s", [["t", 2]]);
    sim.take("s");
    sim.connect("p");
    sim.publish("p", "t", "refused", 2, { packetId: 1 });
    sim.publish("p", "t", "next", 2, { packetId: 2 });
    const [first] = publishes(sim, "s");
    expect(dec(first!.payload)).toBe("refused");
    sim.send("s", { ...ack("pubrec", first!.packetId!), reasonCode: 0x80 });
    const after = sim.take("s");
    expect(after.some((p) => p.type === "pubrel")).toBe(false);
    expect(after.filter((p): p is PublishPacket => p.type === "publish").map((p) => dec(p.payload))).toEqual(["next"]);
    expect(sim.broker.sessionStats("s")).toMatchObject({ inflight: 1, queued: 1 });
  });
});
