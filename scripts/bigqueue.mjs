#!/usr/bin/env node
// Queues bigger than RAM: queues --messages (default 1,000,000) 100-byte QoS 1 messages for an
// offline persistent session of a harbormq process (SQLite store), then drains them; prints the
// broker's peak RSS (VmHWM), enqueue and drain rates, and fails unless the drain is complete and in
// order and VmHWM stays under --limit-mb (default 256). Needs `npm run build`.
// Options: --messages=N, --window=N (publisher's unacknowledged messages), --max-inflight=N and
// --queue-window=N (broker config), --synchronous=full|normal, --samples (RSS over time), --json.
import { bigQueueSummary, runBigQueue } from "../packages/cli/test/torture/bigqueue.mjs";

const args = Object.fromEntries(
  process.argv.slice(2).map((a) => {
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(a);
    if (m === null) {
      console.error(`unknown argument ${a}`);
      process.exit(2);
    }
    return [m[1], m[2] ?? "true"];
  }),
);
const num = (k) => (args[k] !== undefined ? { [k.replace(/-([a-z])/g, (_, c) => c.toUpperCase())]: Number(args[k]) } : {});
const limit = Number(args["limit-mb"] ?? 256) * 1024 * 1024;
const r = await runBigQueue({
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
