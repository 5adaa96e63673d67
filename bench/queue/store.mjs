// Queue benchmark through the Store port: enqueue and drain rate of one persistent session's
// queue, 64-byte payloads, for the memory store and the SQLite store (synchronous full / normal).
// This measures the storage layer alone; the broker-level comparison with Mosquitto and Aedes
// lives next to it.
//
//   npm run build            (or: npx tsc -b packages/broker packages/store-sqlite)
//   node bench/queue/store.mjs                 100k and 1M messages
//   node bench/queue/store.mjs --sizes=100000 --stores=memory,sqlite-full --group=256
//
// Workload: `group` messages per event-loop turn. Enqueue: message-put + queue-put per message;
// drain: load() pages of 1000 in seq order, then a queue-delete per message (its PUBACK).
// --applies=turn (default) sends each turn's writes as ONE apply, as the broker driver does;
// --applies=message sends one apply per message, `group` per turn, which measures the store's
// own coalescing of concurrent applies into one transaction (SQLite: one savepoint-free COMMIT).
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, statSync, existsSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

if (typeof globalThis.gc !== "function") {
  const r = spawnSync(process.execPath, ["--expose-gc", fileURLToPath(import.meta.url), ...process.argv.slice(2)], { stdio: "inherit" });
  process.exit(r.status ?? 1);
}

const { MemoryStore } = await import(new URL("../../packages/broker/dist/memory-store.js", import.meta.url).href);
const { openSqliteStore } = await import(new URL("../../packages/store-sqlite/dist/index.js", import.meta.url).href);

const args = process.argv.slice(2);
const flag = (name) => args.find((a) => a.startsWith(`--${name}=`))?.split("=")[1];
const sizes = (flag("sizes") ?? "100000,1000000").split(",").map(Number);
const stores = (flag("stores") ?? "memory,sqlite-normal,sqlite-full").split(",");
const group = Number(flag("group") ?? 256);
const applies = flag("applies") ?? "turn";
if (applies !== "turn" && applies !== "message") throw new Error("--applies=turn|message");
const page = 1000;

const payload = new Uint8Array(64).fill(7);
const mb = (n) => (n / 1024 / 1024).toFixed(0);

async function open(kind, dir) {
  if (kind === "memory") return new MemoryStore();
  if (kind === "sqlite-full") return openSqliteStore({ dir, synchronous: "full" });
  if (kind === "sqlite-normal") return openSqliteStore({ dir, synchronous: "normal" });
  throw new Error(`unknown store ${kind}`);
}

async function run(kind, n) {
  const dir = mkdtempSync(join(os.tmpdir(), "harbormq-bench-queue-"));
  try {
    const store = await open(kind, dir);
    await store.apply([{ op: "session-put", session: { clientId: "sub", protocolVersion: 4, expiryInterval: 0xffffffff, disconnectedAt: 1 } }]);
    globalThis.gc();
    const rss0 = process.memoryUsage().rss;

    let t = performance.now();
    for (let i = 1; i <= n; ) {
      const turn = [];
      for (const end = Math.min(n, i + group - 1); i <= end; i++) {
        turn.push([
          { op: "message-put", message: { id: i, topic: "bench/queue", payload, qos: 1, retain: false, properties: {}, receivedAt: i } },
          { op: "queue-put", clientId: "sub", messageId: i, entry: { seq: i, qos: 1, retain: false, state: "queued", packetId: undefined, subscriptionIds: [] } },
        ]);
      }
      await (applies === "turn" ? store.apply(turn.flat()) : Promise.all(turn.map((w) => store.apply(w))));
    }
    const enqueueS = (performance.now() - t) / 1000;
    const rss1 = process.memoryUsage().rss;
    const file = join(dir, "harbormq.db");
    const dbBytes = existsSync(file) ? statSync(file).size + (existsSync(`${file}-wal`) ? statSync(`${file}-wal`).size : 0) : 0;

    t = performance.now();
    const snap = await store.restore(page);
    const restoreS = (performance.now() - t) / 1000;
    if (snap.sessions[0].queueCount !== n) throw new Error(`restore: ${snap.sessions[0].queueCount} != ${n}`);

    t = performance.now();
    let drained = 0;
    let after = 0;
    for (;;) {
      const entries = await store.load("sub", after, page);
      if (entries.length === 0) break;
      for (let k = 0; k < entries.length; k += group) {
        const turn = entries.slice(k, k + group).map((e) => ({ op: "queue-delete", clientId: "sub", seq: e.seq }));
        await (applies === "turn" ? store.apply(turn) : Promise.all(turn.map((w) => store.apply([w]))));
      }
      drained += entries.length;
      after = entries[entries.length - 1].seq;
    }
    const drainS = (performance.now() - t) / 1000;
    if (drained !== n) throw new Error(`drained ${drained} != ${n}`);
    const left = await store.restore(1);
    if (left.sessions[0].queueCount !== 0) throw new Error("queue not empty after drain");
    await store.close();
    return { kind, n, enqueue: n / enqueueS, drain: n / drainS, restoreS, rssMB: mb(rss1 - rss0), peakMB: mb(process.resourceUsage().maxRSS * 1024), dbMB: mb(dbBytes) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// Each measurement runs in its own process, so RSS figures do not carry over between stores.
const one = flag("one");
if (one !== undefined) {
  const [kind, n] = one.split(":");
  console.log(JSON.stringify(await run(kind, Number(n))));
  process.exit(0);
}

console.log(`Store queue benchmark: ${os.cpus()[0]?.model ?? "cpu"} x${os.cpus().length}, Node ${process.version}, payload 64 B, ${group} messages per turn, ${applies === "turn" ? "one apply per turn" : "one apply per message"}, load pages of ${page}`);
console.log("| store | messages | enqueue msg/s | drain msg/s | restore (s) | RSS after enqueue (MB, growth) | peak RSS (MB) | db+wal (MB) |");
console.log("|---|---:|---:|---:|---:|---:|---:|---:|");
for (const n of sizes) {
  for (const kind of stores) {
    const child = spawnSync(process.execPath, ["--expose-gc", fileURLToPath(import.meta.url), `--one=${kind}:${n}`, `--group=${group}`, `--applies=${applies}`], { encoding: "utf8", maxBuffer: 1 << 20 });
    if (child.status !== 0) throw new Error(`${kind} ${n}: ${child.stderr}`);
    const r = JSON.parse(child.stdout.trim().split("\n").pop());
    console.log(`| ${r.kind} | ${n.toLocaleString("en")} | ${Math.round(r.enqueue).toLocaleString("en")} | ${Math.round(r.drain).toLocaleString("en")} | ${r.restoreS.toFixed(2)} | ${r.rssMB} | ${r.peakMB} | ${r.dbMB} |`);
  }
}
