// The queue benchmark checks what it measures (a lost or reordered message is an error, never a
// figure), runs end to end against a real harbormq (memory) with 2000 messages, and rewrites only
// its own part of docs/benchmarks.md. Needs `npm run build` (skipped otherwise).
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";

const built = existsSync(new URL("../../packages/cli/dist/main.js", import.meta.url)) && existsSync(new URL("../../packages/codec/dist/index.js", import.meta.url));

describe("drain check", () => {
  it("accepts a complete drain in order and counts duplicates", async () => {
    const { drainCheck } = await import("./run.mjs");
    const c = drainCheck(5);
    for (const s of [0, 1, 1, 2, 3, 4, 4]) c.see(s);
    expect(c.verdict()).toBeUndefined();
    expect(c.unique).toBe(5);
    expect(c.duplicates).toBe(2);
  });

  it("reports a reorder", async () => {
    const { drainCheck } = await import("./run.mjs");
    const c = drainCheck(4);
    for (const s of [0, 2, 1, 3]) c.see(s);
    expect(c.verdict()).toMatch(/out of order.*got seq 2, expected 1/);
  });

  it("reports a loss", async () => {
    const { drainCheck } = await import("./run.mjs");
    const c = drainCheck(4);
    for (const s of [0, 1, 2]) c.see(s);
    expect(c.verdict()).toBe("lost 1 of 4 messages");
  });
});

const result = (broker: string, enqueue: number, drain: number) => ({
  broker,
  size: 1000,
  runs: [],
  enqueue: { status: "ok", median: enqueue },
  drain: { status: "ok", median: drain },
  duplicates: 0,
  peakRss: 50 * 1048576,
});
const run = (file: string) => ({
  started: "2026-01-01T00:00:00.000Z",
  command: "node bench/queue/run.mjs",
  file,
  sizes: [1000],
  reps: { 1000: 1 },
  brokers: ["harbormq-sqlite", "mosquitto", "aedes"],
  settings: { window: 100, inflight: 20 },
  machine: { cores: 2, cpu: "x", loadavgAtStart: [1, 1, 1], loadavgAtEnd: [2, 2, 2] },
  versions: { node: "v20" },
  results: [
    result("harbormq-sqlite", 30_000, 40_000),
    result("mosquitto", 60_000, 10_000),
    { ...result("aedes", 0, 0), drain: { status: "timeout", message: "timeout after 120 s" } },
  ],
});

describe("report", () => {
  it("gives ratios of harbormq over the others, and no ratio against a timeout", async () => {
    const { markdown } = await import("./run.mjs");
    const md = markdown([run("x.json")]);
    expect(md).toContain("| harbormq (SQLite) / Mosquitto | 0.50x | 4.00x |");
    expect(md).toContain("| Aedes | 0 | **timeout**: timeout after 120 s | 0 | 50 MB |");
    expect(md).toContain("| harbormq (SQLite) / Aedes | - | - |");
    expect(md).toContain("4.00x, **met**");
  });

  it("rewrites only its marked part of the docs, keeping the other sections", async () => {
    const { writeDocs } = await import("./run.mjs");
    const dir = mkdtempSync(path.join(os.tmpdir(), "hmq-queue-doc-"));
    try {
      const doc = path.join(dir, "benchmarks.md");
      writeFileSync(doc, "# B\n\n## Crash\nkeep me\n\n## Persistent-session queue (bench/queue)\n\n## Last\nme too\n");
      const file = path.join(dir, "queue-a.json");
      const r = run(file);
      writeFileSync(file, JSON.stringify(r));
      writeDocs(r, doc);
      writeDocs(r, doc);
      const text = readFileSync(doc, "utf8");
      expect(text.match(/bench\/queue:begin/g)).toHaveLength(1);
      expect(text.match(/### 1,000 messages/g)).toHaveLength(1);
      expect(text.startsWith("# B\n\n## Crash\nkeep me\n\n## Persistent-session queue (bench/queue)\n\n<!-- bench/queue:begin")).toBe(true);
      expect(text.endsWith("<!-- bench/queue:end -->\n\n## Last\nme too\n")).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe.skipIf(!built)("queue benchmark end to end", () => {
  it("measures enqueue and drain of 2000 messages on harbormq (memory)", async () => {
    const { measureQueue, summarise, markdown } = await import("./run.mjs");
    const { startBroker } = await import("../e2e/brokers.mjs");
    const { Client } = await import("../e2e/client.mjs");
    const broker = await startBroker("harbormq-memory", { persistent: true, queue: 2000, config: { maxInflight: 20 } });
    try {
      // the benchmark's settings reach the broker's config file
      expect(JSON.parse(readFileSync(path.join(broker.dir, "harbormq.json"), "utf8"))).toMatchObject({ maxInflight: 20, maxQueuedMessages: 3000 });
      const r = await measureQueue(broker, { messages: 2000, window: 50, idleMs: 5000, timeoutMs: 8000 });
      expect(r.enqueue).toBeGreaterThan(0);
      expect(r.drain).toBeGreaterThan(0);
      expect(r.duplicates).toBe(0);
      expect(r.peakRss).toBeGreaterThan(0);
      const s = summarise("harbormq-memory", 2000, [r]);
      expect(s.drain).toEqual({ status: "ok", median: r.drain });
      const md = markdown([{ ...run("y.json"), sizes: [2000], reps: { 2000: 1 }, brokers: ["harbormq-memory"], results: [s] }]);
      expect(md).toMatch(/\| harbormq \(memory\) \| [\d,]+ \| [\d,]+ \| 0 \| \d+ MB \|/);
    } finally {
      Client.destroyAll();
      await broker.stop();
    }
  });

  it("the Node queue server (reference) keeps an offline session's queue and drains it in order through the same client", async () => {
    const { measureQueue } = await import("./run.mjs");
    const { startBroker } = await import("../e2e/brokers.mjs");
    const { Client } = await import("../e2e/client.mjs");
    const broker = await startBroker("queue-ceiling", { persistent: true, queue: 2000, config: { maxInflight: 20 } });
    try {
      // measureQueue fails on a lost, reordered or missing message, or a session not present
      const r = await measureQueue(broker, { messages: 2000, window: 50, idleMs: 5000, timeoutMs: 8000 });
      expect(r.drain).toBeGreaterThan(0);
      expect(r.duplicates).toBe(0);
      expect(r.drainClientCpu).toBeGreaterThan(0);
    } finally {
      Client.destroyAll();
      await broker.stop();
    }
  });
});
