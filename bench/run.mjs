// End-to-end benchmark: harbormq (memory and SQLite stores) against Aedes and Mosquitto, each
// started here as a child process on a loopback port, every scenario three times, medians
// reported; a minimal forwarding server shows the load generator's own ceiling.
//
//   npm run bench                    short version (a few minutes)
//   node bench/run.mjs --full        full sizes (100k backlog, 10,000 idle connections, ...)
//   node bench/run.mjs --brokers=harbormq-memory,aedes --scenarios=fan-in-qos0 --reps=1
//   node bench/run.mjs --profile     also profile harbormq (memory) under every scenario
//                                    (node --cpu-prof, summary in docs and bench/results)
//   node bench/run.mjs --threads=2   fan-in publishers in 2 worker threads (more cores)
//   node bench/run.mjs --no-docs     do not rewrite docs/benchmarks.md and docs/bench/*.svg
//   node bench/run.mjs --report=bench/results/<run>.json   only regenerate the docs from a run
//
// Output: bench/results/<timestamp>.json and, unless --no-docs, the same as
// bench/results/latest.json, the `## End-to-end` section of docs/benchmarks.md and the charts
// docs/bench/*.svg. Run `npm run build` first.
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import { performance } from "node:perf_hooks";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Client } from "./e2e/client.mjs";
import { BROKERS, ensureMosquitto, gitHead, startBroker, versions } from "./e2e/brokers.mjs";
import { Incorrect, backlog, churn, fanIn, fanOut, idle, qos1Stream } from "./e2e/scenarios.mjs";
import { writeReport } from "./e2e/report.mjs";
import { summarise } from "./tools/profile-summary.mjs";

const root = fileURLToPath(new URL("../", import.meta.url));
const args = process.argv.slice(2);
const flag = (name) => args.find((a) => a.startsWith(`--${name}=`))?.split("=")[1];
const full = args.includes("--full");
const reps = Number(flag("reps") ?? 3);
const profile = args.includes("--profile");
// --threads=N: fan-in publishers in N worker threads (default 1: on the 2-core machine of the
// cited run, 2 threads lowered the forwarder's ceiling, 150-163k against 186-195k msg/s).
const threads = Number(flag("threads") ?? 1);

if (!existsSync(path.join(root, "packages/cli/dist/main.js")) || !existsSync(path.join(root, "packages/codec/dist/index.js"))) {
  console.error("bench: run `npm run build` first");
  process.exit(2);
}

/** Sizes: short (npm run bench) and full (--full). */
const S = full
  ? { fanIn: 400_000, fanOut: 20_000, stream: 50_000, backlog: 100_000, idle: 10_000, churn: 10_000 }
  : { fanIn: 64_000, fanOut: 2_000, stream: 10_000, backlog: 10_000, idle: 2_000, churn: 2_000 };

export const SCENARIOS = [
  { id: "fan-in-qos0", title: "Fan-in QoS 0 (16 publishers -> 1 wildcard subscriber)", unit: "msg/s", better: "higher", run: (b) => fanIn(b, { messages: S.fanIn, qos: 0, window: 128, threads }) },
  { id: "fan-in-qos1", title: "Fan-in QoS 1 (16 publishers -> 1 wildcard subscriber)", unit: "msg/s", better: "higher", run: (b) => fanIn(b, { messages: S.fanIn / 2, qos: 1, window: 48, threads }) },
  { id: "fan-out", title: "Fan-out QoS 0 (1 publisher -> 50 subscribers)", unit: "deliveries/s", better: "higher", run: (b) => fanOut(b, { messages: S.fanOut, window: 1000 }) },
  { id: "qos1-stream", title: "QoS 1 request stream (16 in flight)", unit: "msg/s", better: "higher", run: (b) => qos1Stream(b, { messages: S.stream }) },
  { id: "backlog", title: `Persistent-session backlog drain (${S.backlog.toLocaleString("en")} queued QoS 1)`, unit: "msg/s", better: "higher", persistent: true, run: (b) => backlog(b, { messages: S.backlog }), noCeiling: true },
  { id: "idle", title: `Idle connections (${S.idle.toLocaleString("en")}): broker RSS per connection`, unit: "bytes/conn", better: "lower", run: (b) => idle(b, { connections: S.idle }), noCeiling: true },
  { id: "churn", title: "Connection churn (16 concurrent connect / CONNACK / DISCONNECT loops)", unit: "connects/s", better: "higher", run: (b) => churn(b, { connections: S.churn }), noCeiling: true },
];

// --report=FILE: only regenerate the docs (section, charts, latest.json) from a run's JSON.
const reportFrom = flag("report");
if (reportFrom !== undefined) {
  const run = JSON.parse(readFileSync(reportFrom, "utf8"));
  writeFileSync(path.join(root, "bench/results/latest.json"), JSON.stringify(run, null, 2) + "\n");
  for (const w of ["bench/results/latest.json", ...(await writeReport(run, root))]) console.log(`wrote ${w}`);
  process.exit(0);
}

const onlyBrokers = flag("brokers")?.split(",");
const onlyScenarios = flag("scenarios")?.split(",");
let brokers = Object.keys(BROKERS).filter((b) => !BROKERS[b].queueOnly && (onlyBrokers ? onlyBrokers.includes(b) : !BROKERS[b].optIn));
if (brokers.includes("mosquitto") && !ensureMosquitto()) {
  console.error("bench: mosquitto is not installed and could not be installed; skipping it");
  brokers = brokers.filter((b) => b !== "mosquitto");
}
const scenarios = SCENARIOS.filter((s) => !onlyScenarios || onlyScenarios.includes(s.id));

/** utime + stime of a process in seconds, from /proc/PID/stat. */
function cpuTimes(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) / 100; // fields 14 and 15, in clock ticks (USER_HZ 100)
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n === 0 ? undefined : n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
};

const commitAtStart = gitHead();
const started = new Date();
const stamp = started.toISOString().replace(/[:.]/g, "-");
const resultsDir = path.join(root, "bench/results");
mkdirSync(resultsDir, { recursive: true });
const profileDir = path.join(os.tmpdir(), `hmq-bench-prof-${stamp}`);
if (profile) mkdirSync(profileDir, { recursive: true });

const results = [];
const fmt = (v, unit) => (unit === "bytes/conn" ? `${Math.round(v)} B` : Math.round(v).toLocaleString("en"));
/** One repetition of one scenario against a freshly started broker. */
async function once(sc, name, r) {
  const profiling = profile && name === "harbormq-memory" && r === 0;
  let broker;
  try {
    broker = await startBroker(name, { persistent: sc.persistent, queue: sc.persistent ? S.backlog : 0, ...(profiling && { profileDir, profileName: sc.id }) });
    const cpu0 = cpuTimes(broker.pid);
    const own0 = process.cpuUsage();
    const t0 = performance.now();
    const res = await sc.run(broker);
    const wall = (performance.now() - t0) / 1000;
    const own = process.cpuUsage(own0);
    // CPU share of each side over the scenario (1 = one core busy all the time): a broker
    // near 1 is the bottleneck; a generator near 1 means the figure is the generator's.
    res.extra = { ...res.extra, brokerCpu: (cpuTimes(broker.pid) - cpu0) / wall, generatorCpu: (own.user + own.system) / 1e6 / wall };
    process.stdout.write(`${sc.id.padEnd(12)} ${name.padEnd(16)} rep ${r + 1}: ${fmt(res.value, sc.unit)} ${sc.unit}${res.extra?.p99ms !== undefined ? ` (p50 ${res.extra.p50ms.toFixed(2)} ms, p99 ${res.extra.p99ms.toFixed(2)} ms)` : ""}  cpu broker ${res.extra.brokerCpu.toFixed(2)} generator ${res.extra.generatorCpu.toFixed(2)}\n`);
    return res;
  } catch (e) {
    const msg = e instanceof Incorrect ? e.message : `failed: ${e.message}`;
    process.stdout.write(`${sc.id.padEnd(12)} ${name.padEnd(16)} rep ${r + 1}: ERROR ${msg}\n`);
    return { error: msg };
  } finally {
    Client.destroyAll();
    await broker?.stop();
  }
}

for (const sc of scenarios) {
  const names = brokers.filter((name) => !(sc.noCeiling && BROKERS[name].ceiling));
  const runs = new Map(names.map((n) => [n, []]));
  // repetitions outermost: a burst of load from elsewhere on the machine hits one repetition of
  // every broker rather than all repetitions of one
  for (let r = 0; r < reps; r++) for (const name of names) runs.get(name).push(await once(sc, name, r));
  for (const name of names) {
    const all = runs.get(name);
    const ok = all.filter((x) => x.error === undefined);
    const errors = all.filter((x) => x.error !== undefined).map((x) => x.error);
    const entry = { scenario: sc.id, broker: name, runs: all, errors };
    // a broker that failed any repetition gets no figure, only its error
    if (errors.length === 0) {
      entry.median = median(ok.map((x) => x.value));
      if (ok[0]?.extra?.p50ms !== undefined) {
        entry.p50ms = median(ok.map((x) => x.extra.p50ms));
        entry.p99ms = median(ok.map((x) => x.extra.p99ms));
      }
      entry.brokerCpu = median(ok.map((x) => x.extra.brokerCpu));
    }
    results.push(entry);
  }
}

let profiles;
if (profile) {
  profiles = {};
  for (const f of readdirSync(profileDir).filter((f) => f.endsWith(".cpuprofile"))) {
    profiles[f.replace(/\.cpuprofile$/, "")] = summarise(JSON.parse(readFileSync(path.join(profileDir, f), "utf8")), 15);
  }
  console.log(`profiles in ${profileDir}`);
}

const run = {
  started: started.toISOString(),
  finished: new Date().toISOString(),
  mode: full ? "full" : "short",
  reps,
  sizes: S,
  machine: { cpu: os.cpus()[0]?.model, cores: os.cpus().length, memory: os.totalmem(), kernel: os.release(), loadavgAtEnd: os.loadavg() },
  versions: versions(),
  // other work may commit and rebuild dist while a run is going: both ends recorded
  commit: { atStart: commitAtStart, atEnd: gitHead() },
  scenarios: scenarios.map(({ id, title, unit, better }) => ({ id, title, unit, better })),
  brokers: brokers.map((b) => ({ id: b, label: BROKERS[b].label })),
  results,
  ...(profiles && { profiles }),
};
const file = path.join(resultsDir, `${stamp}.json`);
writeFileSync(file, JSON.stringify(run, null, 2) + "\n");
console.log(`wrote ${path.relative(root, file)}`);
if (!args.includes("--no-docs")) {
  // the docs cite bench/results/latest.json: keep the two in step
  writeFileSync(path.join(resultsDir, "latest.json"), JSON.stringify(run, null, 2) + "\n");
  const written = ["bench/results/latest.json", ...(await writeReport(run, root))];
  for (const w of written) console.log(`wrote ${w}`);
}
