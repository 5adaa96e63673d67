// Topic matching benchmark: harbormq's TopicTree against qlobber (the matcher Aedes uses), in
// the same process, on the same subscriptions and topics. Also the RetainedIndex against a scan.
//
//   npm run build            (or: npx tsc -b packages/core)
//   node bench/core/matching.mjs            10k and 100k subscriptions (about 30 s)
//   node bench/core/matching.mjs --full     adds 1M subscriptions
//   node bench/core/matching.mjs --sizes=10000,50000 --seconds=0.5
//
// The script re-executes itself with --expose-gc so that heap figures are measured after a GC.
import { spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import os from "node:os";
import { fileURLToPath, pathToFileURL } from "node:url";

if (typeof globalThis.gc !== "function") {
  const r = spawnSync(process.execPath, ["--expose-gc", fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
    stdio: "inherit",
  });
  process.exit(r.status ?? 1);
}

const require = createRequire(import.meta.url);
const { Qlobber } = require("qlobber");
const qlobberVersion = require("qlobber/package.json").version;
const args = process.argv.slice(2);
const flag = (name) => args.find((a) => a.startsWith(`--${name}=`))?.split("=")[1];
// --core=<dir> measures another build of the core (e.g. an older commit's dist) against qlobber.
const coreDir = flag("core") ?? fileURLToPath(new URL("../../packages/core/dist/", import.meta.url));
const core = await import(pathToFileURL(`${coreDir.replace(/\/$/, "")}/index.js`).href);
const { TopicTree, RetainedIndex, topicMatches } = core;

const full = args.includes("--full");
const sizes = flag("sizes")?.split(",").map(Number) ?? (full ? [10_000, 100_000, 1_000_000] : [10_000, 100_000]);
const seconds = Number(flag("seconds") ?? 1);

// Deterministic pseudo-random numbers (mulberry32), so every run measures the same workload.
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const METRICS = ["temp", "humidity", "power", "status"];
const DEVICES = 100;

/** n subscriptions over sites of 100 devices x 4 metrics: 80 % exact filters, 10 % `+` on the
 *  device level, 5 % `#` under a device, 5 % `+` on the site level. One client per filter. */
function workload(n) {
  const sites = Math.max(10, Math.round(n / 250));
  const rand = rng(n);
  const pick = (k) => Math.floor(rand() * k);
  const subs = [];
  for (let i = 0; i < n; i++) {
    const s = pick(sites);
    const d = pick(DEVICES);
    const m = METRICS[pick(METRICS.length)];
    const r = i % 20;
    let filter;
    if (r < 16) filter = `site/${s}/device/${d}/${m}`;
    else if (r < 18) filter = `site/${s}/device/+/${m}`;
    else if (r < 19) filter = `site/${s}/device/${d}/#`;
    else filter = `site/+/device/${d}/${m}`;
    subs.push([filter, `client-${i}`]);
  }
  const topics = [];
  for (let i = 0; i < 10_000; i++) topics.push(`site/${pick(sites)}/device/${pick(DEVICES)}/${METRICS[pick(METRICS.length)]}`);
  return { subs, topics, sites };
}

function heapUsed() {
  globalThis.gc();
  globalThis.gc();
  return process.memoryUsage().heapUsed;
}

/** Runs `fn(topic)` over the topic pool for about `seconds`; returns calls per second. The batch
 *  between clock reads grows until it takes a few milliseconds, so slow functions are not over-run. */
function rate(topics, fn, secs = seconds) {
  let i = 0;
  let batch = 1;
  const warm = cpuMs() + Math.min(300, secs * 200);
  while (cpuMs() < warm) {
    const b0 = cpuMs();
    for (let k = 0; k < batch; k++) fn(topics[i++ % topics.length]);
    if (cpuMs() - b0 < 2) batch *= 2;
  }
  let ops = 0;
  const t0 = cpuMs();
  let t1 = t0;
  do {
    for (let k = 0; k < batch; k++) fn(topics[i++ % topics.length]);
    ops += batch;
    t1 = cpuMs();
  } while (t1 - t0 < secs * 1000);
  return (ops * 1000) / (t1 - t0);
}

/** CPU time of this process (user + system, GC threads included), in ms: on a shared 2-core
 *  machine it is far steadier than wall time when other processes compete for the cores. */
function cpuMs() {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

const fmt = (x) => (x >= 1e6 ? `${(x / 1e6).toFixed(2)} M` : x >= 1e3 ? `${(x / 1e3).toFixed(0)} k` : x.toFixed(0));
const mb = (b) => `${(b / 1048576).toFixed(1)} MB`;

let sink = 0;
const rows = [];
for (const n of sizes) {
  const { subs, topics } = workload(n);

  // Both structures stay alive until both are measured, so that each heap figure is the growth
  // caused by building that structure alone (a GC between them cannot skew the second one).
  const base = heapUsed();
  let t0 = cpuMs();
  let tree = new TopicTree();
  for (const [f, c] of subs) tree.add(f, c, 1);
  const oursInsert = n / ((cpuMs() - t0) / 1000);
  const afterOurs = heapUsed();
  const oursHeap = afterOurs - base;

  // qlobber, configured for MQTT: `+` matches an empty level as in MQTT.
  t0 = cpuMs();
  let q = new Qlobber({ separator: "/", wildcard_one: "+", wildcard_some: "#", match_empty_levels: true });
  for (const [f, c] of subs) q.add(f, c);
  const qInsert = n / ((cpuMs() - t0) / 1000);
  const qHeap = heapUsed() - afterOurs;

  let oursVisits = 0;
  for (const t of topics) tree.match(t, () => oursVisits++);
  let qVisits = 0;
  for (const t of topics) qVisits += q.match(t).length;
  const visit = (c, qos) => {
    sink += qos;
  };
  // Alternate the two, twice, and keep each one's best run.
  let ours = 0;
  let theirs = 0;
  for (let round = 0; round < 2; round++) {
    ours = Math.max(ours, rate(topics, (t) => tree.match(t, visit)));
    theirs = Math.max(
      theirs,
      rate(topics, (t) => {
        sink += q.match(t).length;
      }),
    );
  }
  const nodes = tree.nodes;
  tree = undefined;
  q = undefined;

  if (oursVisits !== qVisits) throw new Error(`result mismatch at ${n}: ours ${oursVisits}, qlobber ${qVisits}`);
  rows.push({ n, ours, theirs, oursInsert, qInsert, oursHeap, qHeap, fanout: oursVisits / topics.length, nodes });
}

console.log(`Topic matching: node ${process.version}, ${os.cpus().length} x ${os.cpus()[0]?.model ?? "?"}, qlobber ${qlobberVersion}`);
console.log("subs     | fan-out | ours match/s | qlobber match/s | ours/qlobber | ours insert/s | qlobber insert/s | ours heap | qlobber heap | ours B/sub");
for (const r of rows) {
  console.log(
    [
      String(r.n).padEnd(8),
      r.fanout.toFixed(1).padStart(7),
      fmt(r.ours).padStart(12),
      fmt(r.theirs).padStart(15),
      `${(r.ours / r.theirs).toFixed(2)} x`.padStart(12),
      fmt(r.oursInsert).padStart(13),
      fmt(r.qInsert).padStart(16),
      mb(r.oursHeap).padStart(9),
      mb(r.qHeap).padStart(12),
      String(Math.round(r.oursHeap / r.n)).padStart(10),
    ].join(" | "),
  );
}

// RetainedIndex: a `+` filter over 100k retained topics, against scanning them all with the predicate.
{
  const n = 100_000;
  const index = new RetainedIndex();
  const all = [];
  for (let i = 0; i < n; i++) {
    const t = `site/${i % 1000}/device/${Math.floor(i / 1000)}/temp`;
    index.set(t, i);
    all.push(t);
  }
  const filters = ["site/+/device/7/temp", "site/42/device/+/temp", "site/42/#", "site/42/device/7/temp"];
  console.log(`\nRetained: ${n} retained topics`);
  console.log("filter                  | matches | trie match/s | scan match/s | trie/scan");
  for (const f of filters) {
    let count = 0;
    index.match(f, () => count++);
    const trie = rate([f], (x) => index.match(x, () => sink++), 0.5);
    const scan = rate([f], (x) => {
      for (const t of all) if (topicMatches(x, t)) sink++;
    }, 0.5);
    console.log(
      `${f.padEnd(23)} | ${String(count).padStart(7)} | ${fmt(trie).padStart(12)} | ${fmt(scan).padStart(12)} | ${(trie / scan).toFixed(0).padStart(7)} x`,
    );
  }
}
if (sink === 0.5) console.log(sink);
