// Core routing benchmark: the pure core alone (packages/core/dist, run `npm run build` first),
// driven through its public API (`Broker.handle` / `poll`) the way the driver does, without
// sockets or codec. Measures routed deliveries/s (one PUBLISH in, one `send` per subscriber out)
// for 1, 100 and 10,000 subscribers on one topic, QoS 0 and QoS 1 (clean sessions; QoS 1
// deliveries are acknowledged with PUBACK by the fake subscribers, persists answered at once),
// and the heap held by 100k idle persistent sessions with one subscription each.
//
//   node bench/core/routing.mjs                 (about 30 s)
//   node bench/core/routing.mjs --seconds=2 --json
//   node bench/core/routing.mjs --core=/tmp/old-core-dist    (another build, to measure a change)
//   node bench/core/routing.mjs --batch=500   QoS 1 with a deep queue behind the in-flight window
//
// Each figure runs in a fresh child process (node --expose-gc), so one case's garbage does not
// bill the next. Every round checks that each subscriber received every message exactly once.
import { spawnSync } from "node:child_process";
import os from "node:os";
import { fileURLToPath, pathToFileURL } from "node:url";

const args = process.argv.slice(2);
const flag = (name) => args.find((a) => a.startsWith(`--${name}=`))?.split("=")[1];
const coreDir = flag("core") ?? fileURLToPath(new URL("../../packages/core/dist/", import.meta.url));
const seconds = Number(flag("seconds") ?? 1);
const sessionsN = Number(flag("sessions") ?? 100_000);
// --batch=N: QoS 1 messages per batch (default 10, inside the in-flight window); a larger batch
// leaves up to N - 20 messages queued behind the window, the end-to-end fan-in QoS 1 situation.
const qos1Batch = Number(flag("batch") ?? 10);
const JSON_OUT = args.includes("--json");
const child = flag("child");

const connect = (clientId, clean) => ({
  type: "connect",
  protocolName: "MQTT",
  protocolVersion: 4,
  clean,
  keepAlive: 0,
  clientId,
  will: undefined,
  username: undefined,
  password: undefined,
  properties: {},
});
const subscribe = (packetId, filter, qos) => ({
  type: "subscribe",
  packetId,
  subscriptions: [{ topicFilter: filter, qos, noLocal: false, retainAsPublished: false, retainHandling: 0 }],
  properties: {},
});
const publish = (topic, payload, qos, packetId) => ({
  type: "publish",
  topic,
  payload,
  qos,
  retain: false,
  dup: false,
  packetId,
  properties: {},
});
const puback = (packetId) => ({ type: "puback", packetId, reasonCode: 0, properties: {} });
const pkt = (conn, packet) => ({ type: "packet", conn, packet });

async function loadCore() {
  return import(pathToFileURL(`${coreDir.replace(/\/$/, "")}/index.js`).href);
}

/** Drains every action like a driver: answers persists at once, counts sends per connection and
 *  (QoS 1) queues a PUBACK from each subscriber for each delivery. Returns deliveries counted. */
function makeDriver(broker) {
  const pendingStored = [];
  const pendingAcks = []; // flat [conn, packetId, conn, packetId, ...]
  let publishes = 0;
  let acksToPublisher = 0;
  const drain = () => {
    for (let a = broker.poll(); a !== undefined; a = broker.poll()) {
      switch (a.type) {
        case "send":
          if (a.packet.type === "publish") {
            publishes++;
            if (a.packet.qos > 0) pendingAcks.push(a.conn, a.packet.packetId);
          } else if (a.packet.type === "puback") acksToPublisher++;
          break;
        case "persist":
          pendingStored.push(a.op);
          break;
        case "close":
          throw new Error(`unexpected close of ${a.conn}: ${a.message}`);
        default:
          break;
      }
    }
  };
  const settle = (now) => {
    drain();
    while (pendingStored.length > 0 || pendingAcks.length > 0) {
      for (const op of pendingStored.splice(0)) {
        broker.handle(now, { type: "stored", op, ok: true });
        drain();
      }
      if (pendingAcks.length > 0) {
        const acks = pendingAcks.splice(0);
        for (let i = 0; i < acks.length; i += 2) {
          broker.handle(now, pkt(acks[i], puback(acks[i + 1])));
          drain();
        }
      }
    }
  };
  return {
    settle,
    get publishes() {
      return publishes;
    },
    get acksToPublisher() {
      return acksToPublisher;
    },
    reset() {
      publishes = 0;
      acksToPublisher = 0;
    },
  };
}

async function runRouting(subs, qos) {
  const { Broker } = await loadCore();
  const broker = new Broker({}); // defaults: maxInflight 20, maxQueuedMessages 1000
  const d = makeDriver(broker);
  const now = 1;
  let conn = 0;
  for (let i = 0; i < subs; i++) {
    conn++;
    broker.handle(now, { type: "open", conn, remote: "bench" });
    broker.handle(now, pkt(conn, connect(`sub-${i}`, true)));
    broker.handle(now, pkt(conn, subscribe(1, "bench/topic", qos)));
    d.settle(now);
  }
  const pub = ++conn;
  broker.handle(now, { type: "open", conn: pub, remote: "bench" });
  broker.handle(now, pkt(pub, connect("publisher", true)));
  d.settle(now);
  d.reset();
  const payload = new Uint8Array(64);
  // Publish a batch, then settle (persists, PUBACKs), as a driver's turn would. QoS 1: 10 per
  // batch, within the default in-flight window of 20, so nothing waits in a queue.
  const batch = qos > 0 ? qos1Batch : Math.max(1, Math.min(1000, Math.floor(100_000 / subs)));
  let packetId = 0;
  const round = (ms) => {
    const start = process.hrtime.bigint();
    const deadline = start + BigInt(Math.round(ms * 1e6));
    let msgs = 0;
    const before = d.publishes;
    for (;;) {
      for (let i = 0; i < batch; i++) {
        packetId = packetId === 65_535 ? 1 : packetId + 1;
        broker.handle(now, pkt(pub, publish("bench/topic", payload, qos, qos ? packetId : undefined)));
      }
      d.settle(now);
      msgs += batch;
      if (process.hrtime.bigint() >= deadline) break;
    }
    const ns = Number(process.hrtime.bigint() - start);
    const delivered = d.publishes - before;
    if (delivered !== msgs * subs) throw new Error(`delivered ${delivered}, expected ${msgs * subs}`);
    return { deliveries: delivered, perSec: delivered / (ns / 1e9) };
  };
  round(200); // warm-up
  const rounds = [];
  for (let r = 0; r < 5; r++) rounds.push(round((seconds * 1000) / 5));
  rounds.sort((a, b) => a.perSec - b.perSec);
  if (qos > 0 && d.acksToPublisher === 0) throw new Error("QoS 1 publisher was never acknowledged");
  return { subs, qos, deliveriesPerSec: rounds[2].perSec, rounds: rounds.map((r) => Math.round(r.perSec)) };
}

async function runSessions(n) {
  const { Broker } = await loadCore();
  globalThis.gc();
  const base = process.memoryUsage().heapUsed;
  const broker = new Broker({});
  const d = makeDriver(broker);
  const now = 1;
  for (let i = 1; i <= n; i++) {
    broker.handle(now, { type: "open", conn: i, remote: "bench" });
    broker.handle(now, pkt(i, connect(`client-${i}`, false)));
    broker.handle(now, pkt(i, subscribe(1, `devices/${i}/cmd`, 1)));
    broker.handle(now, { type: "closed", conn: i });
    d.settle(now);
  }
  if (broker.stats.sessions !== n) throw new Error(`sessions ${broker.stats.sessions}, expected ${n}`);
  if (broker.stats.connections !== 0) throw new Error(`connections ${broker.stats.connections}, expected 0`);
  globalThis.gc();
  globalThis.gc();
  const heap = process.memoryUsage().heapUsed - base;
  return { sessions: n, heapBytes: heap, bytesPerSession: heap / n, keep: broker.stats.subscriptions };
}

if (child !== undefined) {
  const [kind, a, b] = child.split(":");
  const r = kind === "route" ? await runRouting(Number(a), Number(b)) : await runSessions(Number(a));
  process.stdout.write(JSON.stringify(r));
  process.exit(0);
}

function inChild(spec) {
  const res = spawnSync(
    process.execPath,
    ["--expose-gc", fileURLToPath(import.meta.url), `--child=${spec}`, `--seconds=${seconds}`, `--core=${coreDir}`, `--batch=${qos1Batch}`],
    { encoding: "utf8", maxBuffer: 1 << 24 },
  );
  if (res.status !== 0) throw new Error(`child ${spec} failed: ${res.stderr}`);
  return JSON.parse(res.stdout);
}

const routing = [];
for (const qos of [0, 1]) {
  for (const subs of [1, 100, 10_000]) {
    const r = inChild(`route:${subs}:${qos}`);
    routing.push(r);
    if (!JSON_OUT) console.log(`QoS ${qos} ${String(subs).padStart(6)} subscribers: ${(r.deliveriesPerSec / 1e6).toFixed(2)} M deliveries/s`);
  }
}
const sessions = inChild(`sessions:${sessionsN}`);
if (!JSON_OUT) {
  console.log(`${sessions.sessions} idle persistent sessions (1 subscription each): ${(sessions.heapBytes / 2 ** 20).toFixed(1)} MiB heap, ${Math.round(sessions.bytesPerSession)} B/session`);
  console.log(`node ${process.version}, ${os.cpus()[0]?.model ?? "?"} x ${os.cpus().length}`);
} else console.log(JSON.stringify({ node: process.version, cpu: os.cpus()[0]?.model, routing, sessions }, null, 2));
