// Persistent-session queue benchmark (issue 6): enqueue rate and drain rate of one offline
// session's queue, 64-byte QoS 1 messages, for harbormq (SQLite and memory stores) side by side
// with Mosquitto (`persistence true`, `max_queued_messages 0`) and Aedes (default, in-memory
// persistence), each a freshly started child process on loopback (bench/e2e/brokers.mjs), driven
// by the raw-socket client on our codec (bench/e2e/client.mjs).
//
//   npm run build first
//   npm run bench:queue                      100,000 messages, every broker, 3 repetitions
//   node bench/queue/run.mjs --full          also 1,000,000 (1 repetition)
//   node bench/queue/run.mjs --sizes=1000000 --brokers=harbormq-sqlite,mosquitto --no-docs
//   flags: --reps=N (all sizes), --window=N (publisher's unacknowledged PUBLISHes, default 100),
//          --inflight=N (harbormq maxInflight = Mosquitto max_inflight_messages, default 20),
//          --timeout=S (per phase; default max(120, N / 2000) s), --no-docs,
//          --report=bench/results/queue-<ts>.json (only rewrite the docs section from that run)
//
// Per repetition: a subscriber (clean session 0) subscribes at QoS 1 and disconnects; ENQUEUE: one
// publisher sends N messages with at most `window` unacknowledged, rate = N / time to the last
// PUBACK; DRAIN: the subscriber reconnects (clean session 0) and acknowledges every message, rate =
// N / time from CONNACK to the last message. A lost or reordered message is an error (no figure);
// duplicates are counted. Broker peak RSS: VmHWM of /proc/PID/status at the end of the repetition.
//
// Output: bench/results/queue-<timestamp>.json and, unless --no-docs, the generated part of the
// `## Persistent-session queue (bench/queue)` section of docs/benchmarks.md (between its marker
// comments; figures of sizes not measured in this run stay, with the run they came from).
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { Client } from "../e2e/client.mjs";
import { BROKERS, ensureMosquitto, gitHead, startBroker, versions } from "../e2e/brokers.mjs";

const root = fileURLToPath(new URL("../../", import.meta.url));
export const TOPIC = "bench/queue";
export const PAYLOAD_BYTES = 64;
export const QUEUE_BROKERS = ["harbormq-sqlite", "harbormq-memory", "mosquitto", "aedes", "queue-ceiling"];
export const OURS = ["harbormq-sqlite", "harbormq-memory"];
export const THEIRS = ["mosquitto", "aedes"];

/** A wrong result: the broker gets an error in the table, not a figure. */
export class Incorrect extends Error {}
/** A phase that did not finish within its time cap: reported as "timeout". */
export class Timeout extends Error {}

const seqOf = (p) => ((p[0] << 24) >>> 0) + (p[1] << 16) + (p[2] << 8) + p[3];
const settle = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Checks a drain: sequence numbers 0..n-1 must arrive in order (MQTT orders one publisher's
 * messages on one topic [MQTT-4.6.0-2]); a number seen before is a duplicate (counted, allowed
 * for QoS 1); a new number that skips ahead is a reorder (or a loss, if it never comes).
 */
export function drainCheck(n) {
  const seen = new Uint8Array(n);
  let next = 0;
  const c = {
    received: 0,
    unique: 0,
    duplicates: 0,
    outOfOrder: 0,
    outOfRange: 0,
    firstError: "",
    see(seq) {
      c.received++;
      if (seq >= n) {
        if (c.outOfRange++ === 0 && c.firstError === "") c.firstError = `unexpected seq ${seq}`;
        return;
      }
      if (seen[seq] === 1) {
        c.duplicates++;
        return;
      }
      seen[seq] = 1;
      c.unique++;
      if (seq !== next) {
        if (c.outOfOrder++ === 0 && c.firstError === "") c.firstError = `got seq ${seq}, expected ${next}`;
      }
      if (seq >= next) next = seq + 1;
    },
    /** undefined when the drain is complete and in order, else why not. */
    verdict() {
      if (c.outOfOrder > 0) return `${c.outOfOrder} messages out of order (first: ${c.firstError})`;
      if (c.outOfRange > 0) return `${c.outOfRange} unexpected messages (${c.firstError})`;
      if (c.unique < n) return `lost ${n - c.unique} of ${n} messages`;
      return undefined;
    },
  };
  return c;
}

/** Resolves when done(); rejects with Incorrect when progress() stops moving for idleMs or the
 *  client's connection closes, with Timeout after timeoutMs. */
function until(done, progress, what, { idleMs, timeoutMs, client }) {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    let last = progress();
    let lastAt = start;
    const check = () => {
      if (done()) return resolve();
      if (client?.closed) return reject(new Incorrect(`connection closed by the broker ${what()}`));
      const now = performance.now();
      const p = progress();
      if (p !== last) {
        last = p;
        lastAt = now;
      } else if (now - lastAt > idleMs) return reject(new Incorrect(`stalled ${what()}`));
      if (now - start > timeoutMs) return reject(new Timeout(`timeout after ${Math.round(timeoutMs / 1000)} s ${what()}`));
      setTimeout(check, 5);
    };
    check();
  });
}

function procStatus(pid, key) {
  try {
    const m = new RegExp(`${key}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m === null ? undefined : Number(m[1]) * 1024;
  } catch {
    return undefined;
  }
}

/** utime + stime of a process in seconds (/proc/PID/stat fields 14 and 15, USER_HZ 100). */
function cpuSeconds(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return NaN;
  }
}

/**
 * One repetition against a running broker ({ port, pid }). Returns
 * { enqueue, drain, enqueueSeconds, drainSeconds, duplicates, ... }; throws Incorrect on a wrong
 * result and Timeout when a phase exceeds timeoutMs. A Timeout in the drain carries the enqueue
 * figure in `partial`.
 */
export async function measureQueue({ port, pid }, { messages: n, window = 100, idleMs = 30_000, timeoutMs = 120_000 }) {
  const subId = "queue-sub";
  const s1 = await Client.connect(port, { clientId: subId, clean: false });
  await s1.subscribe([TOPIC], 1);
  await s1.disconnect();

  // ENQUEUE
  const pub = await Client.connect(port, { clientId: "queue-pub" });
  const body = Buffer.alloc(PAYLOAD_BYTES, 0x2e);
  let sent = 0;
  let acked = 0;
  let lastAckAt = 0;
  const pump = () => {
    while (sent < n && sent - acked < window) {
      body.writeUInt32BE(sent++, 0); // publish() copies the payload into the packet at once
      pub.publish(TOPIC, body, 1);
    }
  };
  pub.onPuback = () => {
    acked++;
    lastAckAt = performance.now();
    pump();
  };
  const cpu0 = cpuSeconds(pid);
  const tq = performance.now();
  pump();
  await until(() => acked >= n, () => acked, () => `while enqueueing: ${acked.toLocaleString("en")} of ${n.toLocaleString("en")} acknowledged`, { idleMs, timeoutMs, client: pub });
  const enqueueSeconds = (lastAckAt - tq) / 1000;
  const cpu1 = cpuSeconds(pid);
  await pub.disconnect();
  await settle(100);
  const rssAfterEnqueue = procStatus(pid, "VmRSS");
  const partial = { enqueue: n / enqueueSeconds, enqueueSeconds, enqueueBrokerCpu: (cpu1 - cpu0) / enqueueSeconds };

  // DRAIN
  const check = drainCheck(n);
  let t0;
  let lastAt = 0;
  // The resumed session's messages may arrive in the same read as the CONNACK, before connect()
  // settles: the first of "CONNACK seen" and "first message" is the start.
  const onPublish = (p) => {
    const now = performance.now();
    t0 ??= now;
    check.see(seqOf(p.payload));
    lastAt = now;
  };
  const cpu2 = cpuSeconds(pid);
  const own0 = process.cpuUsage();
  const s2 = await Client.connect(port, { clientId: subId, clean: false, onPublish });
  t0 ??= performance.now();
  if (!s2.sessionPresent) throw new Incorrect("session not present on reconnect");
  try {
    await until(() => check.unique >= n, () => check.received, () => `while draining: ${check.unique.toLocaleString("en")} of ${n.toLocaleString("en")} received`, { idleMs, timeoutMs, client: s2 });
  } catch (e) {
    if (e instanceof Timeout) e.partial = partial;
    throw e;
  }
  const drainSeconds = (lastAt - t0) / 1000;
  const cpu3 = cpuSeconds(pid);
  const own = process.cpuUsage(own0);
  await settle(200); // late duplicates would show here
  const bad = check.verdict();
  if (bad !== undefined) throw new Incorrect(bad);
  await s2.disconnect();
  // end the session so that the broker drops it
  const s3 = await Client.connect(port, { clientId: subId, clean: true });
  await s3.disconnect();
  return {
    ...partial,
    drain: n / drainSeconds,
    drainSeconds,
    drainBrokerCpu: (cpu3 - cpu2) / drainSeconds,
    // the measuring client's own CPU (this process) while draining: near 1 core, it is the limit
    drainClientCpu: (own.user + own.system) / 1e6 / drainSeconds,
    duplicates: check.duplicates,
    rssAfterEnqueue,
    peakRss: procStatus(pid, "VmHWM"),
  };
}

/** Whether the broker process is still alive, and the tail of its log (warnings and errors). */
function brokerState(broker) {
  let alive = true;
  try {
    process.kill(broker.pid, 0);
  } catch {
    alive = false;
  }
  let log = "";
  try {
    log = readFileSync(path.join(broker.dir, "broker.log"), "utf8").trim().split("\n").slice(-3).join(" / ").slice(0, 400);
  } catch {}
  return `${alive ? "" : " (the broker process has exited)"}${log ? ` [broker log: ${log}]` : ""}`;
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const k = s.length;
  return k === 0 ? undefined : k % 2 ? s[(k - 1) / 2] : (s[k / 2 - 1] + s[k / 2]) / 2;
};

/** Summary of one broker at one size: a metric gets a median only if every repetition has it. */
export function summarise(broker, size, runs) {
  const pick = (key) => {
    if (runs.length === 0) return { status: "error", message: "no repetitions" };
    const err = runs.find((r) => r.error !== undefined && r[key] === undefined);
    if (err !== undefined) return { status: err.timeout ? "timeout" : "error", message: err.error };
    return { status: "ok", median: median(runs.map((r) => r[key])) };
  };
  const ok = runs.filter((r) => r.error === undefined);
  return {
    broker,
    size,
    runs,
    enqueue: pick("enqueue"),
    drain: pick("drain"),
    duplicates: ok.reduce((a, r) => a + r.duplicates, 0),
    // cores busy while draining (older runs did not record the client's)
    drainBrokerCpu: median(ok.map((r) => r.drainBrokerCpu).filter((x) => x !== undefined)),
    drainClientCpu: median(ok.map((r) => r.drainClientCpu).filter((x) => x !== undefined)),
    // a repetition that failed still tells how much memory the broker had reached
    peakRss: median(runs.map((r) => r.peakRss).filter((x) => x !== undefined)),
  };
}

const fmtRate = (m) => (m.status === "ok" ? Math.round(m.median).toLocaleString("en") : `**${m.status}**: ${m.message.replace(/\|/g, "/").slice(0, 160)}`);
const fmtCpu = (x) => (x === undefined ? "-" : x.toFixed(2));
const fmtMB = (b) => (b === undefined ? "-" : `${Math.round(b / 1048576)} MB`);
const ratio = (a, b) => (a?.status === "ok" && b?.status === "ok" && b.median > 0 ? `${(a.median / b.median).toFixed(2)}x` : "-");

/** The generated part of the docs section (and the console report) for the given runs. */
export function markdown(runs) {
  const lines = [];
  const label = (id) => BROKERS[id]?.label ?? id;
  for (const run of runs) {
    for (const size of run.sizes) {
      const rows = run.results.filter((r) => r.size === size);
      const get = (b) => rows.find((r) => r.broker === b);
      lines.push(`### ${size.toLocaleString("en")} messages`);
      lines.push("");
      lines.push(
        `\`${run.command}\` on ${run.started.slice(0, 16).replace("T", " ")} UTC (${path.basename(run.file ?? "")}): ` +
          `${run.machine.cores} x ${run.machine.cpu}, load average ${run.machine.loadavgAtStart.map((x) => x.toFixed(1)).join(" ")} at the start, ` +
          `${run.machine.loadavgAtEnd.map((x) => x.toFixed(1)).join(" ")} at the end; harbormq ${run.versions.harbormq ?? "?"} at ${run.commit?.atStart ?? "?"}` +
          `${run.commit && run.commit.atEnd !== run.commit.atStart ? ` (${run.commit.atEnd} at the end)` : ""}, Node ${run.versions.node}, ` +
          `Mosquitto ${run.versions.mosquitto ?? "?"}, Aedes ${run.versions.aedes ?? "?"} (aedes-persistence ${run.versions.aedesPersistence ?? "?"}); ` +
          `median of ${run.reps[size]} repetition${run.reps[size] === 1 ? "" : "s"}, publisher window ${run.settings.window}.`,
      );
      lines.push("");
      lines.push("| broker | enqueue msg/s | drain msg/s | duplicates | broker peak RSS (VmHWM) | drain CPU, broker / client (cores) |");
      lines.push("|---|--:|--:|--:|--:|--:|");
      for (const b of run.brokers) {
        const r = get(b);
        if (r !== undefined) lines.push(`| ${label(b)} | ${fmtRate(r.enqueue)} | ${fmtRate(r.drain)} | ${r.duplicates} | ${fmtMB(r.peakRss)} | ${fmtCpu(r.drainBrokerCpu)} / ${fmtCpu(r.drainClientCpu)} |`);
      }
      const pairs = [];
      for (const o of OURS) for (const t of THEIRS) if (get(o) && get(t)) pairs.push([o, t]);
      if (pairs.length > 0) {
        lines.push("");
        lines.push("| ratio | enqueue | drain |");
        lines.push("|---|--:|--:|");
        for (const [o, t] of pairs) lines.push(`| ${label(o)} / ${label(t)} | ${ratio(get(o).enqueue, get(t).enqueue)} | ${ratio(get(o).drain, get(t).drain)} |`);
      }
      let spread = 1;
      for (const r of rows) {
        for (const key of ["enqueue", "drain"]) {
          const xs = r.runs.map((x) => x[key]).filter((x) => x > 0);
          if (xs.length > 1) spread = Math.max(spread, Math.max(...xs) / Math.min(...xs));
        }
      }
      if (spread > 1) {
        lines.push("");
        lines.push(`Largest spread between repetitions of one broker (max / min of a rate): ${spread.toFixed(2)}x.`);
      }
      const sq = get("harbormq-sqlite");
      const mq = get("mosquitto");
      if (sq && mq) {
        const x = sq.drain.status === "ok" && mq.drain.status === "ok" ? sq.drain.median / mq.drain.median : undefined;
        lines.push("");
        lines.push(`Target (issue 6): drain of harbormq (SQLite) at least 2x Mosquitto: ${x === undefined ? "not measurable in this run" : `${x.toFixed(2)}x, **${x >= 2 ? "met" : "not met"}**`}.`);
      }
      const ceil = get("queue-ceiling");
      if (mq && mq.drainClientCpu !== undefined) {
        lines.push("");
        const perMsg = mq.drain.status === "ok" ? mq.drainClientCpu / mq.drain.median : undefined; // client CPU s per message
        const reps = (b) => b.runs.filter((r) => r.drain !== undefined).map((r) => Math.round(r.drain).toLocaleString("en"));
        lines.push(
          `The measuring client used ${mq.drainClientCpu.toFixed(2)} cores while Mosquitto drained` +
            (perMsg === undefined ? "" : `, ${(perMsg * 1e6).toFixed(1)} µs of client CPU per message (the least of any server measured: a server that writes fewer, larger chunks costs the client less); at that cost the one core the client runs on takes at most ${Math.round(1 / perMsg).toLocaleString("en")} msg/s`) +
            (ceil && ceil.drain.status === "ok" ? `. The Node queue server (reference) drained at ${Math.round(ceil.drain.median).toLocaleString("en")} msg/s (repetitions ${reps(ceil).join(" / ")}), broker / client ${fmtCpu(ceil.drainBrokerCpu)} / ${fmtCpu(ceil.drainClientCpu)} cores.` : "."),
        );
      }
      lines.push("");
    }
  }
  return lines.join("\n");
}

const BEGIN = /<!-- bench\/queue:begin (\{.*?\}) -->\n/;
const END = "<!-- bench/queue:end -->";
const HEADING = "## Persistent-session queue (bench/queue)";

/** The fixed text of the section: how it is measured and what the settings mean. */
function preamble(settings) {
  return [
    "Generated by `node bench/queue/run.mjs` (`npm run bench:queue`; `--full` adds 1,000,000 messages) between the marker comments; edits there are overwritten.",
    "Per repetition, against a freshly started broker on loopback: a subscriber (clean session 0) subscribes to one topic at QoS 1 and disconnects;",
    `**enqueue**: one publisher sends N QoS 1 messages of ${PAYLOAD_BYTES} bytes with at most ${settings.window} unacknowledged, rate = N / time to the last PUBACK;`,
    "**drain**: the subscriber reconnects (clean session 0) and acknowledges every message, rate = N / time from CONNACK to the last message.",
    "Every message carries a sequence number: a loss or a reorder is an error instead of a figure, duplicates are counted.",
    "The client is our codec on a raw `node:net` socket (bench/e2e/client.mjs), in one process on the same 2-core machine as the broker; the last column gives the cores the broker and the client kept busy while draining.",
    "*Node queue server (reference)* is bench/queue/ceiling-server.mjs: a minimal Node server on our codec that keeps the offline session's queue in an array and does nothing else (no store, no topic tree, no limits), with the same in-flight bound and the driver's write strategy (a write every 512 bytes of answers). It shows what one Node thread reaches through this client and window with no broker logic; it is not a strict upper bound (not CPU-bound: the window's round trips set its rate, so it varies with the load and the write strategy).",
    "",
    "Settings: harbormq runs its CLI with `maxInflight` " + settings.inflight + ", `maxQueuedMessages` N + 1000, other keys at their defaults; " +
      "the SQLite store uses `synchronous: full` (a PUBACK only after the message is fsynced) and the memory store keeps nothing across a restart. " +
      `Mosquitto: \`persistence true\` (its in-memory database written to disk at \`autosave_interval\`, default 1800 s, and at shutdown: no write per message), \`max_queued_messages 0\` (no bound), \`max_inflight_messages ${settings.inflight}\` (its default is 20). ` +
      "Aedes: its defaults, i.e. `aedes-persistence` in memory (nothing on disk) and no bound on outgoing messages in flight (it streams the stored queue). " +
      "So only harbormq (SQLite) makes each message durable before acknowledging it; the ratios compare unequal durability, in Mosquitto's and Aedes' favour.",
    "",
    "Measured on a **shared 2-core machine** while other work (builds, tests, benchmarks) ran on it; the load averages are in each block and every repetition is in the JSON. " +
      "Treat the rates as noisy (each block gives the largest spread between repetitions of one broker).",
    "",
    "",
  ].join("\n");
}

/** Rewrites the generated part of the section. `sources` maps size -> results file; sizes of this
 *  run replace theirs, others are re-rendered from the files the markers name. */
export function writeDocs(run, docPath) {
  let text = existsSync(docPath) ? readFileSync(docPath, "utf8") : "# Benchmarks\n";
  const m = BEGIN.exec(text);
  const sources = m ? JSON.parse(m[1]) : {};
  for (const s of run.sizes) sources[s] = path.relative(root, run.file);
  const bySource = new Map();
  for (const [size, file] of Object.entries(sources).sort((a, b) => Number(a[0]) - Number(b[0]))) {
    const r = file === path.relative(root, run.file) ? run : existsSync(path.join(root, file)) ? JSON.parse(readFileSync(path.join(root, file), "utf8")) : undefined;
    if (r === undefined) {
      delete sources[size];
      continue;
    }
    // summaries are recomputed from the repetitions, so a run keeps up with the report's rules
    const e = bySource.get(file) ?? { ...r, sizes: [], results: r.results.map((x) => summarise(x.broker, x.size, x.runs)) };
    e.sizes.push(Number(size));
    bySource.set(file, e);
  }
  const block = `<!-- bench/queue:begin ${JSON.stringify(sources)} -->\n${preamble(run.settings)}${markdown([...bySource.values()])}${END}`;
  if (m) {
    const end = text.indexOf(END, m.index);
    text = text.slice(0, m.index) + block + text.slice(end + END.length);
  } else if (text.includes(`\n${HEADING}\n`)) {
    const at = text.indexOf(`\n${HEADING}\n`) + HEADING.length + 2;
    text = text.slice(0, at) + "\n" + block + "\n" + text.slice(at);
  } else {
    text = text.replace(/\n*$/, "\n\n") + `${HEADING}\n\n${block}\n`;
  }
  writeFileSync(docPath, text);
}


async function main(argv) {
  const flag = (name) => argv.find((a) => a.startsWith(`--${name}=`))?.split("=")[1];
  if (!existsSync(path.join(root, "packages/cli/dist/main.js")) || !existsSync(path.join(root, "packages/codec/dist/index.js"))) {
    console.error("bench:queue: run `npm run build` first");
    return 2;
  }
  // --report=FILE: only rewrite the docs section from a run's JSON (and the runs its markers name)
  const reportFrom = flag("report");
  if (reportFrom !== undefined) {
    const run = JSON.parse(readFileSync(reportFrom, "utf8"));
    run.file = path.resolve(root, run.file ?? reportFrom);
    writeDocs(run, path.join(root, "docs/benchmarks.md"));
    console.log("wrote docs/benchmarks.md (section Persistent-session queue)");
    return 0;
  }
  const full = argv.includes("--full");
  const sizes = (flag("sizes")?.split(",").map(Number) ?? (full ? [100_000, 1_000_000] : [100_000])).filter((x) => Number.isInteger(x) && x > 0);
  const repsFlag = flag("reps");
  const reps = Object.fromEntries(sizes.map((s) => [s, repsFlag !== undefined ? Number(repsFlag) : s >= 1_000_000 ? 1 : 3]));
  const window = Number(flag("window") ?? 100);
  const inflight = Number(flag("inflight") ?? 20);
  const timeoutFlag = flag("timeout");
  const only = flag("brokers")?.split(",");
  let brokers = QUEUE_BROKERS.filter((b) => !only || only.includes(b));
  if (only) for (const b of only) if (!QUEUE_BROKERS.includes(b)) throw new Error(`unknown broker ${b} (${QUEUE_BROKERS.join(", ")})`);
  if (brokers.includes("mosquitto") && !ensureMosquitto()) {
    console.error("bench:queue: mosquitto is not installed and could not be installed; skipping it");
    brokers = brokers.filter((b) => b !== "mosquitto");
  }
  const v = versions();
  try {
    v.aedesPersistence = JSON.parse(readFileSync(path.join(root, "node_modules/aedes-persistence/package.json"), "utf8")).version;
  } catch {}
  const started = new Date();
  const settings = { window, inflight, payloadBytes: PAYLOAD_BYTES, timeoutSeconds: Object.fromEntries(sizes.map((s) => [s, timeoutFlag !== undefined ? Number(timeoutFlag) : Math.max(120, s / 2000)])) };
  console.log(`Persistent-session queue: ${sizes.map((s) => s.toLocaleString("en")).join(", ")} messages of ${PAYLOAD_BYTES} B, publisher window ${window}`);
  console.log(`in flight to the subscriber: harbormq maxInflight ${inflight}, Mosquitto max_inflight_messages ${inflight} (its default is 20), Aedes unbounded (no such setting)`);
  console.log(`persistence: harbormq SQLite synchronous full / harbormq memory; Mosquitto persistence true, max_queued_messages 0; Aedes default persistence (aedes-persistence, in memory)`);
  console.log(`versions: Node ${v.node}, harbormq ${v.harbormq}, Mosquitto ${v.mosquitto}, Aedes ${v.aedes} (aedes-persistence ${v.aedesPersistence}); ${os.cpus().length} x ${os.cpus()[0]?.model}, load ${os.loadavg().map((x) => x.toFixed(1)).join(" ")}`);
  const run = {
    started: started.toISOString(),
    command: `node bench/queue/run.mjs ${argv.join(" ")}`.trim(),
    sizes,
    reps,
    brokers,
    settings,
    machine: { cpu: os.cpus()[0]?.model, cores: os.cpus().length, memory: os.totalmem(), kernel: os.release(), loadavgAtStart: os.loadavg() },
    versions: v,
    commit: { atStart: gitHead() },
    results: [],
  };
  for (const size of sizes) {
    const timeoutMs = settings.timeoutSeconds[size] * 1000;
    const all = new Map(brokers.map((b) => [b, []]));
    // repetitions outermost: a burst of load from elsewhere hits one repetition of every broker
    for (let r = 0; r < reps[size]; r++) {
      for (const name of brokers) {
        let broker;
        let res;
        try {
          broker = await startBroker(name, { persistent: true, queue: size, config: { maxInflight: inflight }, mosquittoConf: [`max_inflight_messages ${inflight}`] });
          res = await measureQueue(broker, { messages: size, window, timeoutMs });
          console.log(`${size.toLocaleString("en").padStart(9)} ${name.padEnd(16)} rep ${r + 1}: enqueue ${Math.round(res.enqueue).toLocaleString("en")} msg/s (broker cpu ${res.enqueueBrokerCpu.toFixed(2)}), drain ${Math.round(res.drain).toLocaleString("en")} msg/s (broker cpu ${res.drainBrokerCpu.toFixed(2)}), dup ${res.duplicates}, VmHWM ${fmtMB(res.peakRss)}`);
        } catch (e) {
          const timeout = e instanceof Timeout;
          const peakRss = broker ? procStatus(broker.pid, "VmHWM") : undefined;
          res = { ...(e.partial ?? {}), error: e instanceof Incorrect || timeout ? e.message : `failed: ${e.message}`, timeout, peakRss };
          if (broker) res.error += brokerState(broker);
          console.log(`${size.toLocaleString("en").padStart(9)} ${name.padEnd(16)} rep ${r + 1}: ${timeout ? "TIMEOUT" : "ERROR"} ${res.error}${res.enqueue ? ` (enqueue ${Math.round(res.enqueue).toLocaleString("en")} msg/s)` : ""}`);
        } finally {
          Client.destroyAll();
          await broker?.stop();
        }
        all.get(name).push(res);
      }
    }
    for (const name of brokers) run.results.push(summarise(name, size, all.get(name)));
  }
  run.finished = new Date().toISOString();
  run.machine.loadavgAtEnd = os.loadavg();
  run.commit.atEnd = gitHead();
  const dir = path.join(root, "bench/results");
  mkdirSync(dir, { recursive: true });
  run.file = path.join(dir, `queue-${started.toISOString().replace(/[:.]/g, "-")}.json`);
  writeFileSync(run.file, JSON.stringify({ ...run, file: path.relative(root, run.file) }, null, 2) + "\n");
  console.log("");
  console.log(markdown([run]));
  console.log(`wrote ${path.relative(root, run.file)}`);
  if (!argv.includes("--no-docs")) {
    writeDocs(run, path.join(root, "docs/benchmarks.md"));
    console.log("wrote docs/benchmarks.md (section Persistent-session queue)");
  }
  return 0;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = await main(process.argv.slice(2));
}
