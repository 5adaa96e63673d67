#!/usr/bin/env -S node --max-semi-space-size=4
// The `harbormq` bin: runs the command and exits with its code.
// --max-semi-space-size=4 (MB): V8 grows its young generation to 32 MB while many clients connect
// and keeps it; capped, 10,000 idle connections cost about 1.5 KB less each, and throughput did
// not move (docs/benchmarks.md, Optimisations).
import { run } from "./run.js";

const code = await run(process.argv.slice(2), {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
});
// Let stdout drain (it is a pipe under a supervisor), then exit even if a socket lingers.
process.stdout.write("", () => process.exit(code));
