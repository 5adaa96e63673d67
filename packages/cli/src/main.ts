#!/usr/bin/env node
// The `harbormq` bin: runs the command and exits with its code.
import { run } from "./run.js";

const code = await run(process.argv.slice(2), {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
});
// Let stdout drain (it is a pipe under a supervisor), then exit even if a socket lingers.
process.stdout.write("", () => process.exit(code));
