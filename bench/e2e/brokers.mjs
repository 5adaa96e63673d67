// Starts and stops the brokers under test as child processes on loopback ports picked here.
// Every broker logs warnings and errors only (Mosquitto and harbormq log every connection at
// their default level, which would bill the churn scenario for terminal output).
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, openSync, rmSync, writeFileSync, existsSync, readFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { nodeBinary } from "../../packages/cli/test/torture/broker-process.mjs";

const root = fileURLToPath(new URL("../../", import.meta.url));
const here = fileURLToPath(new URL("./", import.meta.url));
export const MOSQUITTO = "/usr/sbin/mosquitto";

/**
 * The Node that runs the Node brokers: the first `node` on PATH outside node_modules (the one the
 * better-sqlite3 addon was built for; `npm run` puts node_modules/.bin first). The same lookup as
 * the CLI's tests, from there.
 */
export const NODE = nodeBinary;

/** The Node flags `npm start` (the README's start command) runs the CLI with, so the benchmark
 *  starts the broker the way a user does: the `node ...flags packages/cli/dist/main.js` of the
 *  root package.json's start script. */
export function startNodeFlags() {
  const script = JSON.parse(readFileSync(path.join(root, "package.json"), "utf8")).scripts?.start ?? "";
  const m = /\bnode((?:\s+--[^\s]+)*)\s+packages\/cli\/dist\/main\.js/.exec(script);
  return m === null ? [] : m[1].trim().split(/\s+/).filter((f) => f !== "");
}

export const BROKERS = {
  forwarder: { label: "forwarder (ceiling)", ceiling: true },
  // only when named in --brokers: the forwarder with a QoS 1 in-flight window of 20 per subscriber
  "forwarder-w20": { label: "forwarder, window 20 (ceiling)", ceiling: true, optIn: true },
  // bench/queue only: it keeps an offline session's queue and nothing else (no routing to online clients)
  "queue-ceiling": { label: "Node queue server (reference)", ceiling: true, queueOnly: true },
  "harbormq-memory": { label: "harbormq (memory)" },
  "harbormq-sqlite": { label: "harbormq (SQLite)" },
  aedes: { label: "Aedes" },
  mosquitto: { label: "Mosquitto" },
};

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function canConnect(port) {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: "127.0.0.1" });
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

/** Installs Debian's mosquitto when it is missing (needs root or sudo). */
export function ensureMosquitto() {
  if (existsSync(MOSQUITTO)) return true;
  try {
    const sudo = process.getuid?.() === 0 ? [] : ["sudo", "-n"];
    const run = (args) => execFileSync(sudo[0] ?? args[0], sudo.length ? [...sudo.slice(1), ...args] : args.slice(1), { stdio: "inherit" });
    run(["apt-get", "update"]);
    run(["apt-get", "install", "-y", "mosquitto"]);
  } catch {
    return false;
  }
  return existsSync(MOSQUITTO);
}

/** The commit measured, `+dirty` when packages/ has uncommitted changes (the brokers run the
 *  packages' dist, built from the working tree). */
export function gitHead() {
  try {
    const head = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: root, encoding: "utf8" }).trim();
    const dirty = execFileSync("git", ["status", "--porcelain", "--", "packages"], { cwd: root, encoding: "utf8" }).trim() !== "";
    return dirty ? `${head}+dirty` : head;
  } catch {
    return undefined;
  }
}

export function versions() {
  const v = { node: execFileSync(NODE, ["--version"], { encoding: "utf8" }).trim(), generatorNode: process.version };
  try {
    v.aedes = JSON.parse(readFileSync(path.join(root, "node_modules/aedes/package.json"), "utf8")).version;
  } catch {}
  try {
    v.harbormq = JSON.parse(readFileSync(path.join(root, "packages/cli/package.json"), "utf8")).version;
  } catch {}
  try {
    const out = execFileSync(MOSQUITTO, ["-h"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).toString();
    v.mosquitto = /version (\S+)/.exec(out)?.[1];
  } catch (e) {
    v.mosquitto = /version (\S+)/.exec(String(e.stdout ?? ""))?.[1];
  }
  return v;
}

/**
 * Starts `name` for a scenario. `opts.persistent`: the scenario needs persistent sessions with a
 * large queue (`opts.queue` messages). `opts.profileDir`: run harbormq under `node --cpu-prof`.
 * `opts.config`: keys added to harbormq's config file (e.g. `{ maxInflight: 20 }`);
 * `opts.mosquittoConf`: lines added to Mosquitto's config (e.g. `["max_inflight_messages 20"]`).
 * Returns { name, port, pid, stop() }.
 */
export async function startBroker(name, opts = {}) {
  const port = await freePort();
  const dir = mkdtempSync(path.join(os.tmpdir(), `hmq-bench-${name}-`));
  const log = openSync(path.join(dir, "broker.log"), "w");
  let cmd;
  let args;
  const queue = opts.queue ?? 0;
  switch (name) {
    case "forwarder":
      cmd = NODE;
      args = [path.join(here, "forwarder.mjs"), String(port)];
      break;
    case "forwarder-w20":
      cmd = NODE;
      args = [path.join(here, "forwarder.mjs"), String(port), "--window=20"];
      break;
    case "queue-ceiling":
      cmd = NODE;
      args = [path.join(root, "bench/queue/ceiling-server.mjs"), String(port), `--inflight=${opts.config?.maxInflight ?? 20}`];
      break;
    case "aedes":
      cmd = NODE;
      args = [path.join(here, "aedes-server.mjs"), String(port)];
      break;
    case "harbormq-memory":
    case "harbormq-sqlite": {
      const config = { logging: { level: "warn" }, ...(queue > 0 && { maxQueuedMessages: Math.max(1000, queue + 1000) }), ...opts.config };
      writeFileSync(path.join(dir, "harbormq.json"), JSON.stringify(config));
      cmd = NODE;
      const prof = opts.profileDir ? ["--cpu-prof", `--cpu-prof-dir=${opts.profileDir}`, `--cpu-prof-name=${opts.profileName ?? name}.cpuprofile`] : [];
      args = [...prof, ...startNodeFlags(), path.join(root, "packages/cli/dist/main.js"), "-c", path.join(dir, "harbormq.json"), "-p", String(port), "--host", "127.0.0.1"];
      args.push(...(name === "harbormq-memory" ? ["--memory"] : ["--data", path.join(dir, "data")]));
      break;
    }
    case "mosquitto": {
      const conf = [`listener ${port} 127.0.0.1`, "allow_anonymous true", "log_dest stderr", "log_type error", "log_type warning", "max_connections -1"];
      // Its default max_queued_messages (1000) drops QoS 1 deliveries to an online subscriber in
      // fan-in with only 256 messages outstanding (Mosquitto 2.0.11), so the bound is lifted; the
      // backlog scenario uses 0 (no bound) and persistence.
      if (opts.persistent) conf.push("max_queued_messages 0", "persistence true", `persistence_location ${dir}/`);
      else conf.push("max_queued_messages 1000000");
      conf.push(...(opts.mosquittoConf ?? []));
      writeFileSync(path.join(dir, "mosquitto.conf"), conf.join("\n") + "\n");
      cmd = MOSQUITTO;
      args = ["-c", path.join(dir, "mosquitto.conf")];
      break;
    }
    default:
      throw new Error(`unknown broker ${name}`);
  }
  const child = spawn(cmd, args, { stdio: ["ignore", log, log], cwd: dir });
  let exited = false;
  let spawnError;
  const exit = new Promise((resolve) => {
    child.once("exit", (code, signal) => ((exited = true), resolve({ code, signal })));
    child.once("error", (e) => ((spawnError = e), (exited = true), resolve({ code: -1, signal: null })));
  });
  const deadline = Date.now() + 15_000;
  while (!(await canConnect(port))) {
    if (exited || Date.now() > deadline) {
      const out = spawnError ? String(spawnError.message) : readFileSync(path.join(dir, "broker.log"), "utf8");
      child.kill("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`${name} did not start: ${out.trim().split("\n").slice(0, 2).join(" ").slice(0, 300)}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    name,
    port,
    pid: child.pid,
    dir,
    async stop() {
      if (!exited) {
        child.kill("SIGTERM");
        const t = setTimeout(() => child.kill("SIGKILL"), 10_000);
        await exit;
        clearTimeout(t);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
