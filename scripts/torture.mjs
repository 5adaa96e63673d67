#!/usr/bin/env node
// `npm run torture`: SIGKILLs a harbormq process (SQLite store) 100 times at random moments while a
// publisher streams QoS 1 / QoS 2 messages and a persistent subscriber keeps reconnecting, then
// checks that every acknowledged message arrived (QoS 2 exactly once). Needs `npm run build`.
// Options: --cycles=N (default 100), --seed=N (default random; printed), --synchronous=full|normal,
// --window=N (publisher's unacknowledged messages), --json (the whole report), --quiet.
import { runTorture, summary } from "../packages/cli/test/torture/torture.mjs";
import { parseArgs } from "./args.mjs";

const args = parseArgs();
const seed = args.seed !== undefined ? Number(args.seed) >>> 0 : Math.floor(Math.random() * 2 ** 32);
const cycles = Number(args.cycles ?? 100);
console.log(`torture: ${cycles} kill cycles, seed ${seed} (repeat the schedule with --seed=${seed})`);
const report = await runTorture({
  cycles,
  seed,
  synchronous: args.synchronous ?? "full",
  ...(args.window !== undefined ? { window: Number(args.window) } : {}),
  log: args.quiet === "true" ? undefined : (line) => console.log(line),
});
if (args.json === "true") console.log(JSON.stringify({ ...report, lost: report.lost.slice(0, 100), unaccepted: report.unaccepted.slice(0, 100) }, null, 2));
for (const v of report.violations.slice(0, 20)) console.log(`violation: ${v}`);
if (report.drainError !== undefined) console.log(`drain: ${report.drainError}`);
if (report.lost.length > 0) console.log(`lost seqs: ${report.lost.slice(0, 50).join(", ")}${report.lost.length > 50 ? ", ..." : ""}`);
console.log(summary(report));
process.exit(report.lost.length === 0 && report.violations.length === 0 && report.drainError === undefined ? 0 : 1);
