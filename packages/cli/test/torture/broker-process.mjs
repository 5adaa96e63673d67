// The harbormq process for the torture runs: started on a fixed port and data directory so it can
// be SIGKILLed and started again in the same place, plus a raw MQTT client over TCP built on
// @harbormq/codec that acknowledges nothing by itself. Plain .mjs so that the vitest tests and the
// `npm run torture` / bigqueue scripts share it without a build step.
import { spawn } from "node:child_process";
import { accessSync, constants, existsSync, readFileSync } from "node:fs";
import * as net from "node:net";
import { delimiter, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Decoder, encode } from "@harbormq/codec";

export const root = fileURLToPath(new URL("../../../../", import.meta.url));
export const mainJs = join(root, "packages/cli/dist/main.js");

/** The Node on PATH outside node_modules/.bin (the one better-sqlite3 was built for); see the
 *  e2e harness for why. */
export const nodeBinary = (() => {
  for (const dir of (process.env["PATH"] ?? "").split(delimiter)) {
    if (dir === "" || dir.includes("node_modules")) continue;
    const candidate = join(dir, "node");
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return process.execPath;
})();

export function assertBuilt() {
  if (!existsSync(mainJs)) throw new Error(`${mainJs} is missing: run \`npm run build\` first`);
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A port nobody listens on right now. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Peak and current resident set size of a process in bytes (Linux /proc), undefined elsewhere or
 *  once the process is gone. */
export function memoryOf(pid) {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = (key) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? NaN) * 1024;
    return { hwm: kb("VmHWM"), rss: kb("VmRSS") };
  } catch {
    return undefined;
  }
}

const live = new Set();
process.on("exit", () => {
  for (const c of live) c.kill("SIGKILL");
});

/**
 * Starts `harbormq --json` on 127.0.0.1:`port` with its SQLite store in `dataDir` and resolves once
 * it logs "listening". `configFile` is passed with -c; `onSpawn(child)` runs right after the spawn.
 * Resolves { child, pid, lines, exited, kill }; rejects if the process exits before "listening".
 */
export function startBrokerProcess({ port, dataDir, configFile, extraArgs = [], nodeArgs = [], env = {}, onSpawn }) {
  assertBuilt();
  // dataDir undefined: --memory (no store on disk).
  const args = [...nodeArgs, mainJs, "--json", "--host", "127.0.0.1", "-p", String(port), ...(dataDir === undefined ? ["--memory"] : ["--data", dataDir])];
  if (configFile !== undefined) args.push("-c", configFile);
  args.push(...extraArgs);
  const child = spawn(nodeBinary, args, { cwd: root, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...env } });
  live.add(child);
  onSpawn?.(child); // e.g. to kill it while it is still opening its store
  const lines = [];
  let stderr = "";
  let buffered = "";
  let exitInfo;
  const exited = new Promise((resolve) => {
    child.on("exit", (code, signal) => {
      live.delete(child);
      exitInfo = { code, signal };
      resolve(exitInfo);
    });
  });
  return new Promise((resolve, reject) => {
    let started = false;
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`broker did not log "listening" within 15 s; stderr: ${stderr}`));
    }, 15_000);
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk) => {
      buffered += chunk;
      let nl;
      while ((nl = buffered.indexOf("\n")) >= 0) {
        const text = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        let line;
        try {
          line = JSON.parse(text);
        } catch {
          line = { event: "unparsed", msg: text };
        }
        if (lines.length < 10_000) lines.push(line);
        if (!started && line.event === "listening") {
          started = true;
          clearTimeout(timer);
          resolve({
            child,
            pid: child.pid,
            lines,
            stderr: () => stderr,
            exited,
            /** SIGKILL (default) or another signal; resolves with { code, signal } once it exited. */
            kill(sig = "SIGKILL") {
              if (exitInfo === undefined) child.kill(sig);
              return exited;
            },
          });
        }
      }
    });
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (chunk) => {
      if (stderr.length < 100_000) stderr += chunk;
    });
    exited.then(({ code, signal }) => {
      if (started) return;
      clearTimeout(timer);
      reject(new Error(`broker exited (${code ?? signal}) while starting: ${stderr}\n${lines.map((l) => JSON.stringify(l)).join("\n")}`));
    });
  });
}

/**
 * A raw MQTT 3.1.1 client: `onPacket` sees every packet from the broker, `onClose` the end of the
 * connection (either side). Rejects if the TCP connect fails (e.g. the broker is down).
 */
export function rawConnection(port, { onPacket, onClose }) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1");
    socket.setNoDelay(true);
    const decoder = new Decoder({ version: 4 });
    let closed = false;
    let connected = false;
    socket.on("data", (chunk) => {
      decoder.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length));
      for (let item = decoder.next(); item !== undefined; item = decoder.next()) {
        if (item.type === "error") {
          socket.destroy(new Error(`undecodable bytes from the broker: ${item.message}`));
          return;
        }
        if (!closed) onPacket(item);
      }
    });
    socket.on("error", (err) => {
      if (!connected) reject(err);
    });
    socket.on("close", () => {
      if (closed) return;
      closed = true;
      if (connected) onClose();
    });
    socket.once("connect", () => {
      connected = true;
      resolve({
        socket,
        /** Encodes and writes; false once the socket is gone (the packet is then simply lost). */
        send(packet) {
          if (closed || socket.destroyed) return false;
          socket.write(encode(packet, 4));
          return true;
        },
        isClosed: () => closed,
        destroy() {
          socket.destroy();
        },
      });
    });
  });
}

const utf8 = new TextEncoder();

/** Packet factories (every field present, as the codec's model requires). */
export const pk = {
  connect: (clientId, clean, keepAlive = 60) => ({
    type: "connect", protocolName: "MQTT", protocolVersion: 4, clean, keepAlive,
    clientId, will: undefined, username: undefined, password: undefined, properties: {},
  }),
  subscribe: (packetId, topicFilter, qos) => ({
    type: "subscribe", packetId, properties: {},
    subscriptions: [{ topicFilter, qos, noLocal: false, retainAsPublished: false, retainHandling: 0 }],
  }),
  publish: (topic, payload, qos, packetId, dup = false) => ({
    type: "publish", topic, payload: typeof payload === "string" ? utf8.encode(payload) : payload, qos, retain: false, dup,
    packetId: qos === 0 ? undefined : packetId, properties: {},
  }),
  ack: (type, packetId) => ({ type, packetId, reasonCode: 0, properties: {} }),
  disconnect: () => ({ type: "disconnect", reasonCode: 0, properties: {} }),
};
