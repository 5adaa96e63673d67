// Randomized crash model of one persistent subscriber (core Sim, map store): found the send-horizon
// bugs fixed in 9647961 and later; kept as a regression suite. CRASH_FUZZ_RUNS=N for more seeds.
import { describe, expect, it } from "vitest";
import { crashWalk } from "./crash-walk.js";

describe("randomized crashes of a persistent QoS 1/2 subscriber's broker (send horizon, lazy deletes, late PUBACKs)", () => {
  // A seeded random walk: publishes at QoS 0/1/2 (MQTT 5: some with a short Message Expiry
  // Interval), store confirmations one at a time, the subscriber reading (acknowledging 85 %),
  // going offline, reconnecting (sometimes losing what it had not read, sometimes sending the
  // PUBACKs it owed on the new connection), time passing and crashes that lose every unconfirmed
  // write. Checked at every delivery and at the end: QoS 0 at most once, a QoS 1 repeat always
  // with DUP, QoS 2 delivered once, first deliveries in publication order per QoS, and every
  // acknowledged QoS 1/2 message delivered (unless something expired or overflowed).
  for (const v5 of [false, true]) {
    it(`[MQTT-3.3.1-1] [MQTT-4.3.3-2] [MQTT-4.4.0-1] [MQTT-4.6.0-6] ${v5 ? "MQTT 5 with message expiry" : "MQTT 3.1.1"}: no loss, no repeat without DUP, no reorder`, () => {
      const failures: string[] = [];
      const runs = Number(process.env.CRASH_FUZZ_RUNS ?? 1500);
      for (let seed = 1; seed <= runs && failures.length < 3; seed++) {
        const e = crashWalk(seed, 300, v5);
        if (e.length > 0) failures.push(`seed ${seed}: ${e.slice(0, 12).join("\n")}`);
      }
      expect(failures).toEqual([]);
    });
  }
});
