#!/usr/bin/env node
// The `harbormq` bin: runs the command and exits with its code.
// With many idle clients, run Node with --max-semi-space-size=4 (`npm start` does; or
// NODE_OPTIONS): V8 grows its young generation to 32 MB while clients connect and keeps it.
// It cannot be set from here (v8.setFlagsFromString comes too late), and a shebang with
// `env -S` breaks on BusyBox (Alpine images) and the BSDs.
import { run } from "./run.js";

/** A log sink that goes quiet when its reader goes away: a log shipper restarting or
 *  `harbormq | head -1` (EPIPE) must not stop the broker and drop every client (found by
 *  review; Mosquitto ignores SIGPIPE the same way). */
function sink(stream: NodeJS.WriteStream, name: string, other: () => NodeJS.WriteStream | undefined) {
  let open = true;
  stream.on("error", (err: NodeJS.ErrnoException) => {
    if (!open) return;
    open = false;
    other()?.write(`harbormq: ${name} failed (${err.code ?? err.message}); no more log lines are written there\n`);
  });
  return {
    write: (text: string) => {
      if (open) stream.write(text);
    },
    get open() {
      return open;
    },
  };
}

const stdout = sink(process.stdout, "stdout", () => (stderr.open ? process.stderr : undefined));
const stderr = sink(process.stderr, "stderr", () => undefined);

const code = await run(process.argv.slice(2), { stdout: stdout.write, stderr: stderr.write });
// Let stdout drain (it is a pipe under a supervisor), then exit even if a socket lingers.
if (stdout.open) process.stdout.write("", () => process.exit(code));
else process.exit(code);
