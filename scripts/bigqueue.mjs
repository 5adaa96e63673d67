#!/usr/bin/env node
// Queues bigger than RAM: queues --messages (default 1,000,000) 100-byte QoS 1 messages for an
// offline persistent session of a harbormq process (SQLite store), then drains them; prints the
// broker's peak RSS (VmHWM), enqueue and drain rates, and fails unless the drain is complete and in
// order and VmHWM stays under --limit-mb (default 256). Needs `npm run build`.
// Options: --messages=N, --window=N (publisher's unacknowledged messages), --max-inflight=N and
// --queue-window=N (broker config), --synchronous=full|normal, --samples (RSS over time), --json,
// --heap-snapshot=DIR (a heap snapshot of the broker with the queue full).
import { bigQueueSummary, runBigQueue } from "../packages/cli/test/torture/bigqueue.mjs";
import { parseArgs } from "./args.mjs";

const args = parseArgs();
const num = (k) => (args[k] !== undefined ? { [k.replace(/-([a-z])/g, (_, c) => c.toUpperCase())]: Number(args[k]) } : {});
const limit = Number(args["limit-mb"] ?? 256) * 1024 * 1024;
// --heap-snapshot=DIR: the broker writes a heap snapshot into DIR once the queue is full.
const heapDir = args["heap-snapshot"];
const heapOptions = heapDir === undefined ? {} : {
  nodeArgs: ["--heapsnapshot-signal=SIGUSR2", `--diagnostic-dir=${heapDir}`],
  afterEnqueue: async (broker) => {
    const { readdirSync, statSync } = await import("node:fs");
    const { join } = await import("node:path");
    const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
    const before = new Set(readdirSync(heapDir));
    broker.child.kill("SIGUSR2");
    let file;
    while ((file = readdirSync(heapDir).find((f) => !before.has(f) && f.endsWith(".heapsnapshot"))) === undefined) await sleep(100);
    // The broker writes it on its main thread; done once the size stops changing.
    for (let size = -1; ; ) {
      await sleep(500);
      const now = statSync(join(heapDir, file)).size;
      if (now === size) break;
      size = now;
    }
    console.log(`heap snapshot: ${join(heapDir, file)}`);
  },
};
const r = await runBigQueue({
  ...heapOptions,
  ...num("messages"), ...num("window"), ...num("max-inflight"), ...num("queue-window"),
  synchronous: args.synchronous ?? "full",
  log: (line) => console.log(line),
});
const mb = (b) => (b / 1048576).toFixed(0);
if (args.samples === "true") {
  const t0 = r.samples[0]?.t ?? 0;
  for (const s of r.samples) console.log(`${((s.t - t0) / 1000).toFixed(1)} s ${s.phase} rss ${mb(s.rss)} MB hwm ${mb(s.hwm)} MB`);
}
const { samples, ...rest } = r;
if (args.json === "true") console.log(JSON.stringify(rest, null, 2));
console.log(bigQueueSummary(r));
const ok = r.received === r.messages && r.outOfOrder === 0 && r.duplicates === 0 && r.vmHwm !== undefined && r.vmHwm < limit;
console.log(ok ? `ok: VmHWM ${mb(r.vmHwm)} MB < ${mb(limit)} MB, complete and in order` : "FAILED");
process.exit(ok ? 0 : 1);
