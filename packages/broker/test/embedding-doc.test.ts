// docs/embedding.md shows fixtures/embedding-example.ts verbatim; this test keeps them equal and
// runs the example against mqtt.js.
import { readFileSync } from "node:fs";
import mqtt from "mqtt";
import { describe, expect, it } from "vitest";
import { startBroker } from "./fixtures/embedding-example.js";

const root = new URL("../../../", import.meta.url);

describe("docs/embedding.md", () => {
  it("includes the example file verbatim, in under 30 lines", () => {
    const doc = readFileSync(new URL("docs/embedding.md", root), "utf8");
    const example = readFileSync(new URL("fixtures/embedding-example.ts", import.meta.url), "utf8");
    const block = /```ts\n([\s\S]*?)```/.exec(doc)?.[1];
    expect(block).toBe(example);
    expect(example.trimEnd().split("\n").length).toBeLessThan(30);
  });

  it("runs: the hooks authenticate, authorize and count", async () => {
    const { broker, counts } = await startBroker(0);
    try {
      const url = `mqtt://127.0.0.1:${broker.addresses()[0]!.port}`;
      await expect(
        mqtt.connectAsync(url, { username: "demo", password: "wrong", reconnectPeriod: 0 }),
      ).rejects.toThrow();
      const client = await mqtt.connectAsync(url, { username: "demo", password: "secret", reconnectPeriod: 0 });
      const received: string[] = [];
      client.on("message", (topic) => received.push(topic));
      await client.subscribeAsync("#", { qos: 1 });
      await client.publishAsync("admin/reboot", "x", { qos: 1 });
      await client.publishAsync("sensors/1", "21.5", { qos: 1 });
      await expect.poll(() => received).toEqual(["sensors/1"]);
      expect(counts.get("sensors/1")).toBe(1);
      expect(counts.has("admin/reboot")).toBe(false);
      await client.endAsync();
    } finally {
      await broker.close();
    }
  });
});
