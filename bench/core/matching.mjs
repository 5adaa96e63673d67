// Topic matching benchmark: harbormq's TopicTree against qlobber (the matcher Aedes uses), in
// the same process, on the same subscriptions and topics. Also the RetainedIndex against a scan.
//
//   npm run build            (or: npx tsc -b packages/core)
//   node bench/core/matching.mjs            10k and 100k subscriptions (about 40 s of CPU)
//   node bench/core/matching.mjs --full     adds 1M subscriptions
//   node bench/core/matching.mjs --sizes=10000,50000 --seconds=0.5 --workloads=clients --no-retained
//   node bench/core/matching.mjs --core=/tmp/old-core-dist    (an older build, to measure a change)
//
// Every measurement runs in a fresh child process (node --expose-gc): heap figures taken in a
// process that already built and dropped other structures were off by tens of MB (V8 frees the
// previous garbage lazily), so each structure's heap is measured alone, and the two matchers'
// speeds are measured side by side in one process, alternating.
import { spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import os from "node:os";
import { fileURLToPath, pathToFileURL } from "node:url";

const require = createRequire(import.meta.url);
const { Qlobber, QlobberTrue } = require("qlobber");
// What Aedes itself builds (aedes-persistence 11, asyncPersistence.js): a QlobberSub with these
// options (no match_empty_levels), values { clientId, topic, qos }, match() returns new objects.
const QlobberSub = require("qlobber/aedes/qlobber-sub");
const qlobberVersion = require("qlobber/package.json").version;
const args = process.argv.slice(2);
const flag = (name) => args.find((a) => a.startsWith(`--${name}=`))?.split("=")[1];
// --core=<dir> measures another build of the core (e.g. an older commit's dist) against qlobber.
const coreDir = flag("core") ?? fileURLToPath(new URL("../../packages/core/dist/", import.meta.url));
const core = await import(pathToFileURL(`${coreDir.replace(/\/$/, "")}/index.js`).href);
const { TopicTree, RetainedIndex, topicMatches } = core;

const full = args.includes("--full");
const sizes = flag("sizes")?.split(",").map(Number) ?? (full ? [10_000, 100_000, 1_000_000] : [10_000, 100_000]);
// CPU seconds per matcher and size, split over `rounds` alternating rounds.
const seconds = Number(flag("seconds") ?? 1.5);
const rounds = Number(flag("rounds") ?? 7);

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

/** Joins levels into a flat string, as a decoder would produce. Concatenation (templates, even
 *  Array#join) makes a cons string that V8 flattens in place on first read, freeing the rope: the
 *  first matcher to read it would be billed (or credited) for that in its heap figure. */
const flat = (...levels) => {
  const s = levels.join("/");
  s.charCodeAt(0); // flattens
  return s;
};

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
    if (r < 16) filter = flat("site", s, "device", d, m);
    else if (r < 18) filter = flat("site", s, "device", "+", m);
    else if (r < 19) filter = flat("site", s, "device", d, "#");
    else filter = flat("site", "+", "device", d, m);
    subs.push([filter, flat(`client-${i}`)]);
  }
  const topics = [];
  for (let i = 0; i < 10_000; i++) topics.push(flat("site", pick(sites), "device", pick(DEVICES), METRICS[pick(METRICS.length)]));
  return { subs, topics };
}

/** n persistent sessions, each subscribed to its own command topic `client/{id}/cmd` (exact),
 *  and 1 % of them also to `client/{id}/#`: long chains of single-child nodes, fan-out ~1. */
function clientsWorkload(n) {
  const rand = rng(n + 1);
  const subs = [];
  for (let i = 0; i < n; i++) {
    const id = flat(`client-${i}`);
    subs.push([flat("client", i, "cmd"), id]);
    if (i % 100 === 0) subs.push([flat("client", i, "#"), id]);
  }
  const topics = [];
  for (let i = 0; i < 10_000; i++) topics.push(flat("client", Math.floor(rand() * n), "cmd"));
  return { subs, topics };
}

const WORKLOADS = { sites: workload, clients: clientsWorkload };

function heapUsed() {
  for (let i = 0; i < 4; i++) globalThis.gc();
  return process.memoryUsage().heapUsed;
}

/** Runs `fn(topic)` over the topic pool for about `secs` of CPU time; returns calls per CPU
 *  second. The batch between clock reads grows until it takes a few milliseconds, so that slow
 *  functions are not over-run and fast ones are not dominated by the clock. */
function rate(topics, fn, secs = seconds, warmMs = Math.min(300, secs * 200)) {
  let i = 0;
  let batch = 1;
  const warm = cpuMs() + warmMs;
  do {
    const b0 = cpuMs();
    for (let k = 0; k < batch; k++) fn(topics[i++ % topics.length]);
    if (cpuMs() - b0 < 2) batch *= 2;
  } while (cpuMs() < warm);
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

const median = (xs) => {
  const a = [...xs].sort((x, y) => x - y);
  return a.length % 2 === 1 ? a[a.length >> 1] : (a[a.length / 2 - 1] + a[a.length / 2]) / 2;
};

/** CPU time of this process (user + system, GC threads included), in ms: on a shared 2-core
 *  machine it is far steadier than wall time when other processes compete for the cores. */
function cpuMs() {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

const fmt = (x) => (x >= 1e6 ? `${(x / 1e6).toFixed(2)} M` : x >= 1e3 ? `${(x / 1e3).toFixed(0)} k` : x.toFixed(0));
const mb = (b) => `${(b / 1048576).toFixed(1)} MB`;

const child = flag("child");
let sink = 0;
if (child === undefined) parent();
else {
  const [mode, name, n] = child.split(":");
  const out = mode === "heap" ? heapChild(name, WORKLOADS[n.split("/")[0]], Number(n.split("/")[1])) : mode === "match" ? matchChild(WORKLOADS[name], Number(n)) : retainedChild();
  process.stdout.write(`${JSON.stringify(out)}\n`);
}
if (sink === 0.5) console.log(sink);

function runChild(spec) {
  const r = spawnSync(process.execPath, ["--expose-gc", fileURLToPath(import.meta.url), `--child=${spec}`, ...args], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
    maxBuffer: 1 << 20,
  });
  if (r.status !== 0) throw new Error(`child ${spec} failed`);
  return JSON.parse(r.stdout.trim().split("\n").pop());
}

function parent() {
  const only = flag("workloads")?.split(",");
  const rows = [];
  for (const name of Object.keys(WORKLOADS)) {
    if (only !== undefined && !only.includes(name)) continue;
    for (const n of sizes) {
      const ours = runChild(`heap:ours:${name}/${n}`);
      const theirs = runChild(`heap:qlobber:${name}/${n}`);
      const aedes = runChild(`heap:aedes:${name}/${n}`);
      const m = runChild(`match:${name}:${n}`);
      rows.push({ name, n: ours.subs, ...m, oursInsert: ours.insert, qInsert: theirs.insert, oursHeap: ours.heap, qHeap: theirs.heap, aHeap: aedes.heap });
    }
  }
  console.log(`Topic matching: node ${process.version}, ${os.cpus().length} x ${os.cpus()[0]?.model ?? "?"}, qlobber ${qlobberVersion}, core ${coreDir}`);
  console.log(
    "workload | subs     | fan-out | ours match/s | qlobber match/s | ours/qlobber | aedes match/s | ours/aedes | ours insert/s | qlobber insert/s | ours heap | qlobber heap | ours B/sub | qlobber B/sub | aedes B/sub",
  );
  for (const r of rows) {
    console.log(
      [
        r.name.padEnd(8),
        String(r.n).padEnd(8),
        r.fanout.toFixed(1).padStart(7),
        fmt(r.ours).padStart(12),
        fmt(r.theirs).padStart(15),
        `${r.ratio.toFixed(2)} x`.padStart(12),
        fmt(r.aedes).padStart(13),
        `${r.aedesRatio.toFixed(2)} x`.padStart(10),
        fmt(r.oursInsert).padStart(13),
        fmt(r.qInsert).padStart(16),
        mb(r.oursHeap).padStart(9),
        mb(r.qHeap).padStart(12),
        String(Math.round(r.oursHeap / r.n)).padStart(10),
        String(Math.round(r.qHeap / r.n)).padStart(13),
        String(Math.round(r.aHeap / r.n)).padStart(11),
      ].join(" | "),
    );
  }
  if (!args.includes("--no-retained")) {
    const r = runChild("retained::");
    console.log(`\nRetained: ${r.n} retained topics, RetainedIndex.match against a scan with topicMatches and Aedes' scan`);
    console.log("filter                  | matches | trie match/s | scan match/s | trie/scan | aedes match/s | trie/aedes");
    for (const x of r.rows) {
      console.log(
        `${x.filter.padEnd(23)} | ${String(x.count).padStart(7)} | ${fmt(x.trie).padStart(12)} | ${fmt(x.scan).padStart(12)} | ${(x.trie / x.scan).toFixed(0).padStart(7)} x | ${fmt(x.aedes).padStart(13)} | ${(x.trie / x.aedes).toFixed(0).padStart(8)} x`,
      );
    }
  }
}

function makeQlobber() {
  // Configured for MQTT: `+` also matches an empty level.
  return new Qlobber({ separator: "/", wildcard_one: "+", wildcard_some: "#", match_empty_levels: true });
}

function makeAedes() {
  return new QlobberSub({ wildcard_one: "+", wildcard_some: "#", separator: "/" });
}

/** Heap growth and insert rate of one structure, alone in this process. */
function heapChild(impl, make, n) {
  const { subs } = make(n);
  const base = heapUsed();
  const t0 = cpuMs();
  let structure;
  if (impl === "ours") {
    structure = new TopicTree();
    for (const [f, c] of subs) structure.add(f, c, 1);
  } else if (impl === "qlobber") {
    structure = makeQlobber();
    for (const [f, c] of subs) structure.add(f, c);
  } else {
    structure = makeAedes();
    for (const [f, c] of subs) structure.add(f, { clientId: c, topic: f, qos: 1 });
  }
  const insert = subs.length / ((cpuMs() - t0) / 1000);
  const heap = heapUsed() - base;
  if (structure === undefined) throw new Error("unreachable");
  return { subs: subs.length, insert, heap };
}

/** Match rates of the three matchers, alternating round by round. */
function matchChild(make, n) {
  const { subs, topics } = make(n);
  const tree = new TopicTree();
  for (const [f, c] of subs) tree.add(f, c, 1);
  const q = makeQlobber();
  for (const [f, c] of subs) q.add(f, c);
  let oursVisits = 0;
  for (const t of topics) tree.match(t, () => oursVisits++);
  let qVisits = 0;
  for (const t of topics) qVisits += q.match(t).length;
  if (oursVisits !== qVisits) throw new Error(`result mismatch at ${n}: ours ${oursVisits}, qlobber ${qVisits}`);
  const aq = makeAedes();
  for (const [f, c] of subs) aq.add(f, { clientId: c, topic: f, qos: 1 });
  let aVisits = 0;
  for (const t of topics) aVisits += aq.match(t).length;
  if (oursVisits !== aVisits) throw new Error(`result mismatch at ${n}: ours ${oursVisits}, aedes ${aVisits}`);
  const visit = (c, qos) => {
    sink += qos;
  };
  // Rounds alternate ours and qlobber; rates are the median round, the ratio the median of the
  // per-round ratios (steadier than either rate when other processes share the cores).
  const oursRates = [];
  const theirRates = [];
  const aedesRates = [];
  const ratios = [];
  const aedesRatios = [];
  const matchOurs = (t) => tree.match(t, visit);
  const matchTheirs = (t) => {
    sink += q.match(t).length;
  };
  const matchAedes = (t) => {
    sink += aq.match(t).length;
  };
  for (let round = 0; round < rounds; round++) {
    const warm = round === 0 ? 300 : 20;
    const a = rate(topics, matchOurs, seconds / rounds, warm);
    const b = rate(topics, matchTheirs, seconds / rounds, warm);
    const c = rate(topics, matchAedes, seconds / rounds, warm);
    oursRates.push(a);
    theirRates.push(b);
    aedesRates.push(c);
    ratios.push(a / b);
    aedesRatios.push(a / c);
  }
  const ours = median(oursRates);
  const theirs = median(theirRates);
  const ratio = median(ratios);
  return { ours, theirs, ratio, aedes: median(aedesRates), aedesRatio: median(aedesRatios), fanout: oursVisits / topics.length, nodes: tree.nodes };
}

/** RetainedIndex: filters over 100k retained topics, against scanning them all with the predicate. */
function retainedChild() {
  const n = 100_000;
  const index = new RetainedIndex();
  const all = [];
  for (let i = 0; i < n; i++) {
    const t = flat("site", i % 1000, "device", Math.floor(i / 1000), "temp");
    index.set(t, i);
    all.push(t);
  }
  const rows = [];
  for (const filter of ["site/+/device/7/temp", "site/42/device/+/temp", "site/42/#", "site/42/device/7/temp"]) {
    let count = 0;
    index.match(filter, () => count++);
    const trie = rate([filter], (x) => index.match(x, () => sink++), 0.5);
    const scan = rate(
      [filter],
      (x) => {
        for (const t of all) if (topicMatches(x, t)) sink++;
      },
      0.5,
    );
    // Aedes (aedes-persistence 11, retainedMessagesByPattern): a one-pattern QlobberTrue per
    // lookup, tested against every retained topic.
    const aedes = rate(
      [filter],
      (x) => {
        const qt = new QlobberTrue({ wildcard_one: "+", wildcard_some: "#", separator: "/" });
        qt.add(x);
        for (const t of all) if (qt.test(t)) sink++;
      },
      0.5,
    );
    rows.push({ filter, count, trie, scan, aedes });
  }
  return { n, rows };
}
