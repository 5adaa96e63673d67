#!/usr/bin/env node
// The `harbormq` bin: runs the command and exits with its code.
// With many idle clients, run Node with --max-semi-space-size=4 (`npm start` does; or
// NODE_OPTIONS): V8 grows its young generation to 32 MB while clients connect and keeps it.
// It cannot be set from here (v8.setFlagsFromString comes too late), and a shebang with
// `env -S` breaks on BusyBox (Alpine images) and the BSDs.
import { run } from "./run.js";

const code = await run(process.argv.slice(2), {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
});
// Let stdout drain (it is a pipe under a supervisor), then exit even if a socket lingers.
process.stdout.write("", () => process.exit(code));
