// A failed store write stops the broker (fail-stop, exit 74) instead of acknowledging what it
// could not store. The broker runs under `ulimit -f` with SIGXFSZ ignored, so SQLite's writes past
// the limit fail with EFBIG, as on a full disk. Every message the publisher got a PUBACK for must
// come back after a restart without the limit.
import { afterAll, describe, expect, it } from "vitest";
import { mqttClient, startBroker, tempDir } from "./harness.js";

const data = tempDir("harbormq-full-");
afterAll(() => data.remove());

describe("MQTT 3.1.1", () => {
  it("[MQTT-4.3.2-2] [MQTT-3.1.2-4] a disk that fills up stops the broker with exit 74; every acknowledged message survives the restart", async () => {
    const broker = await startBroker({ dataDir: data.path, fileSizeLimitKb: 1024 });
    const sub = await mqttClient(broker.url, { clientId: "full-sub", clean: false });
    await sub.mqtt.subscribeAsync("full/#", { qos: 1 });
    await sub.end();
    const pub = await mqttClient(broker.url, { clientId: "full-pub" });
    const acked: number[] = [];
    const body = "x".repeat(20_000);
    // One at a time, so the file grows message by message and some are acknowledged before it
    // hits the limit (a burst could fill it within the first group commit).
    const closed = pub.closed(30_000).then(() => "closed" as const);
    for (let i = 0; i < 200; i++) {
      const sent = pub.mqtt.publishAsync("full/x", `${String(i).padStart(4, "0")}${body}`, { qos: 1 }).then(() => "acked" as const, () => "error" as const);
      if ((await Promise.race([sent, closed])) !== "acked") break;
      acked.push(i);
    }
    expect(await broker.exited(20_000)).toBe(74);
    await closed;
    const failed = broker.lines.find((l) => l.event === "store-failed");
    expect(failed?.level).toBe("error");
    // Some messages were acknowledged before the file hit the limit, not all 200 (4 MB > 1 MB).
    expect(acked.length).toBeGreaterThan(0);
    expect(acked.length).toBeLessThan(200);

    const again = await startBroker({ dataDir: data.path });
    try {
      const back = await mqttClient(again.url, { clientId: "full-sub", clean: false });
      expect(back.connack.sessionPresent).toBe(true);
      const last = acked[acked.length - 1]!;
      // Everything up to the last acknowledged message, in order (later unacknowledged ones may
      // have been stored too: their batch was durable, its PUBACK cut off by the stop).
      const got = await back.waitFor(last + 1, 20_000);
      expect(got.map((m) => Number(m.payload.slice(0, 4)))).toEqual(Array.from({ length: last + 1 }, (_, i) => i));
      await back.end();
    } finally {
      await again.stop();
    }
  }, 60_000);
});
