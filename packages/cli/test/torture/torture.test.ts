// Crash safety, proven (issue 6): the harbormq process with its SQLite store is SIGKILLed 10 times
// at random moments while QoS 1 / QoS 2 traffic flows through a persistent session that keeps
// reconnecting; every message the broker acknowledged must reach the subscriber, QoS 2 exactly
// once. The scenario lives in torture.mjs, shared with `npm run torture` (100 kills). The seed is
// printed; HARBORMQ_TORTURE_SEED=<seed> repeats a schedule.
import { describe, expect, it } from "vitest";
import { runTorture, summary } from "./torture.mjs";

const envSeed = process.env["HARBORMQ_TORTURE_SEED"];
const seed = envSeed !== undefined ? Number(envSeed) >>> 0 : Math.floor(Math.random() * 2 ** 32);

describe("MQTT 3.1.1", () => {
  describe("crash torture: SIGKILL of the broker process (SQLite store) under QoS 1 / QoS 2 traffic", () => {
    it(
      "[MQTT-3.1.2-4] [MQTT-3.1.2-5] [MQTT-4.1.0-1] [MQTT-4.3.2-2] [MQTT-4.3.3-2] [MQTT-4.4.0-1] [MQTT-3.3.1-1] [MQTT-4.6.0-6] " +
        "every acknowledged message survives 10 kills and reaches both persistent subscribers, QoS 2 exactly once",
      async () => {
        console.log(`torture seed ${seed} (HARBORMQ_TORTURE_SEED=${seed} repeats the schedule)`);
        const r = await runTorture({ cycles: 10, seed, killAfterMs: [500, 2500] });
        console.log(summary(r));
        expect(r.drainError, `seed ${seed}`).toBeUndefined();
        expect(r.violations.slice(0, 10), `seed ${seed}`).toEqual([]);
        // The run exercised what it claims to: kills landed while messages were in flight and
        // while accepted messages were still queued for the subscriber.
        expect(r.kills).toHaveLength(10);
        expect(r.kills.some((k) => k.accepted > k.delivered)).toBe(true);
        expect(r.qos1).toBeGreaterThan(0);
        expect(r.qos2).toBeGreaterThan(0);
        expect(r.pubResends + r.pubrelResends).toBeGreaterThan(0);
        // The publisher kept resending until everything it sent was accepted.
        expect(r.unaccepted).toEqual([]);
        expect(r.accepted).toBe(r.published);
        // Zero loss; QoS 2 exactly once; QoS 1 repeats only after a reconnect, with DUP, or when
        // the publisher itself resent the message.
        expect(r.lost, `lost ${r.lost.length} of ${r.accepted}, seed ${seed}`).toEqual([]);
        expect(r.delivered).toBe(r.accepted);
        expect(r.qos2Duplicates).toBe(0);
        expect(r.qos1Unexplained).toBe(0);
        // [MQTT-4.6.0-6] first deliveries come in publication order per topic (one topic per QoS).
        expect(r.inversions).toBe(0);
      },
      180_000,
    );

    it("[MQTT-3.1.2-4] the torture detects loss: the same schedule against --memory loses acknowledged messages and sessions", async () => {
      const r = await runTorture({ cycles: 1, seed, memory: true, killAfterMs: [300, 300], stallMs: 2_000 });
      console.log(`control (--memory): ${summary(r)}`);
      expect(r.lost.length).toBeGreaterThan(0);
      expect(r.violations.some((v) => v.includes("session lost"))).toBe(true);
    }, 60_000);
  });
});
