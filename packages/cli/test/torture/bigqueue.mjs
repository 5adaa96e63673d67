// Queues bigger than RAM: one offline persistent session gets N queued 100-byte QoS 1 messages
// through a harbormq process with its SQLite store, then reconnects and drains them. Measures the
// broker's peak RSS (VmHWM from /proc/PID/status), enqueue and drain rates, and checks that the
// queue drains complete and in order. Shared by bigqueue.test.ts (100k) and scripts/bigqueue.mjs
// (1M by default).
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, memoryOf, pk, rawConnection, startBrokerProcess } from "./broker-process.mjs";

const TOPIC = "bigqueue/t";
export const PAYLOAD_BYTES = 100;

/** A 100-byte payload whose first 10 bytes are the zero-padded sequence number. */
function payloadOf(seq, filler) {
  const bytes = new Uint8Array(PAYLOAD_BYTES);
  bytes.set(filler);
  let n = seq;
  for (let i = 9; i >= 0; i--) {
    bytes[i] = 48 + (n % 10);
    n = Math.floor(n / 10);
  }
  return bytes;
}

function seqOf(payload) {
  let n = 0;
  for (let i = 0; i < 10; i++) n = n * 10 + (payload[i] - 48);
  return n;
}

/** Connects a raw client, sends CONNECT, resolves { conn, connack, packets() } once CONNACK came. */
function client(port, clientId, clean, onPacket, onClose = () => undefined) {
  return new Promise((resolve, reject) => {
    let conn;
    let done = false;
    rawConnection(port, {
      onPacket: (p) => {
        if (!done) {
          done = true;
          if (p.type !== "connack" || p.reasonCode !== 0) reject(new Error(`${clientId}: expected CONNACK 0, got ${JSON.stringify(p)}`));
          else resolve({ conn, connack: p });
          return;
        }
        onPacket(p);
      },
      onClose: () => {
        if (!done) reject(new Error(`${clientId}: closed before CONNACK`));
        onClose();
      },
    }).then((c) => {
      conn = c;
      c.send(pk.connect(clientId, clean, 0));
    }, reject);
  });
}

/**
 * Runs the scenario. Options: messages (default 1,000,000), window (publisher's unacknowledged
 * QoS 1 messages, default 1000), maxInflight and queueWindow (broker config), synchronous,
 * sampleMs (RSS sampling period), log, nodeArgs (for the broker, e.g. --heapsnapshot-near-heap-limit).
 */
export async function runBigQueue(options = {}) {
  const messages = options.messages ?? 1_000_000;
  const window = options.window ?? 1000;
  const log = options.log ?? (() => undefined);
  const dir = mkdtempSync(join(tmpdir(), "harbormq-bigqueue-"));
  const configFile = join(dir, "harbormq.json");
  const config = {
    persistence: { synchronous: options.synchronous ?? "full" },
    // Queued plus in flight; "drop-new" would silently cut the queue at the default 1000.
    maxQueuedMessages: messages + 1000,
    maxInflight: options.maxInflight ?? 20,
    queueWindow: options.queueWindow ?? 1000,
  };
  writeFileSync(configFile, JSON.stringify(config));
  const port = await freePort();
  const broker = await startBrokerProcess({ port, dataDir: join(dir, "data"), configFile, nodeArgs: options.nodeArgs ?? [], env: options.env ?? {} });
  const samples = [];
  let peakRss = 0;
  const sample = (phase) => {
    const m = memoryOf(broker.pid);
    if (m === undefined) return;
    peakRss = Math.max(peakRss, m.rss);
    samples.push({ phase, t: Date.now(), rss: m.rss, hwm: m.hwm });
  };
  let phase = "start";
  const sampler = setInterval(() => sample(phase), options.sampleMs ?? 250);
  try {
    sample("start");
    const idle = memoryOf(broker.pid);
    // 1. The persistent subscriber: subscribe at QoS 1, then go away.
    {
      let suback;
      const { conn } = await client(port, "bigqueue-sub", false, (p) => {
        if (p.type === "suback") suback?.(p);
      });
      const granted = await new Promise((resolve) => {
        suback = resolve;
        conn.send(pk.subscribe(1, TOPIC, 1));
      });
      if (granted.reasonCodes[0] !== 1) throw new Error(`SUBACK ${granted.reasonCodes}`);
      conn.send(pk.disconnect());
      conn.socket.end();
      await new Promise((r) => conn.socket.once("close", r));
    }

    // 2. Publish N QoS 1 messages, pipelined with `window` unacknowledged.
    phase = "enqueue";
    const filler = new Uint8Array(PAYLOAD_BYTES).fill(120); // "x"
    const enqueueStart = performance.now();
    await new Promise((resolve, reject) => {
      let sent = 0;
      let acked = 0;
      let conn;
      const pump = () => {
        conn.socket.cork();
        while (sent < messages && sent - acked < window) {
          sent++;
          const id = ((sent - 1) % 65535) + 1;
          conn.send(pk.publish(TOPIC, payloadOf(sent, filler), 1, id, false));
        }
        conn.socket.uncork();
      };
      client(port, "bigqueue-pub", true, (p) => {
        if (p.type !== "puback") return reject(new Error(`publisher: unexpected ${p.type}`));
        acked++;
        if (acked % 100_000 === 0) log(`enqueued ${acked} (${Math.round(acked / ((performance.now() - enqueueStart) / 1000))} msg/s)`);
        if (acked === messages) {
          conn.send(pk.disconnect());
          conn.socket.end();
          resolve();
        } else if (sent - acked <= window / 2) pump();
      }, () => {
        if (acked < messages) reject(new Error(`publisher connection closed after ${acked} acks`));
      }).then((c) => {
        conn = c.conn;
        pump();
      }, reject);
    });
    const enqueueSeconds = (performance.now() - enqueueStart) / 1000;
    sample("enqueued");
    const afterEnqueue = memoryOf(broker.pid);
    // e.g. SIGUSR2 to a broker started with --heapsnapshot-signal=SIGUSR2, to see where memory goes
    if (options.afterEnqueue !== undefined) await options.afterEnqueue(broker);

    // 3. The subscriber comes back and drains, acknowledging every message.
    phase = "drain";
    const drainStart = performance.now();
    let received = 0;
    let expected = 1;
    let outOfOrder = 0;
    let duplicates = 0;
    let firstError;
    let sessionPresent;
    await new Promise((resolve, reject) => {
      let conn;
      const pending = [];
      client(port, "bigqueue-sub", false, (p) => {
        if (p.type !== "publish") return reject(new Error(`subscriber: unexpected ${p.type}`));
        const seq = seqOf(p.payload);
        if (seq === expected) {
          expected++;
          received++;
        } else if (seq < expected) {
          duplicates++;
        } else {
          outOfOrder++;
          firstError ??= `expected seq ${expected}, got ${seq}`;
          received++;
          expected = seq + 1;
        }
        if (received % 100_000 === 0) log(`drained ${received} (${Math.round(received / ((performance.now() - drainStart) / 1000))} msg/s)`);
        const ack = pk.ack("puback", p.packetId);
        if (conn === undefined) pending.push(ack);
        else conn.send(ack);
        if (received === messages) resolve();
      }, () => reject(new Error(`subscriber connection closed after ${received} messages`))).then((c) => {
        conn = c.conn;
        sessionPresent = c.connack.sessionPresent;
        for (const a of pending) conn.send(a);
      }, reject);
    });
    const drainSeconds = (performance.now() - drainStart) / 1000;
    sample("drained");
    const end = memoryOf(broker.pid);
    return {
      messages,
      payloadBytes: PAYLOAD_BYTES,
      config,
      window,
      sessionPresent,
      received,
      outOfOrder,
      duplicates,
      firstError,
      enqueueSeconds,
      enqueueRate: messages / enqueueSeconds,
      drainSeconds,
      drainRate: messages / drainSeconds,
      idleRss: idle?.rss,
      rssAfterEnqueue: afterEnqueue?.rss,
      rssAfterDrain: end?.rss,
      peakRss: Math.max(peakRss, end?.hwm ?? 0),
      vmHwm: end?.hwm,
      samples,
      brokerLines: broker.lines.filter((l) => l.level === "warn" || l.level === "error").slice(0, 20),
    };
  } finally {
    clearInterval(sampler);
    await broker.kill("SIGTERM");
    if (options.keepDir !== true) rmSync(dir, { recursive: true, force: true });
  }
}

const mb = (b) => (b === undefined ? "?" : (b / 1048576).toFixed(0));

export function bigQueueSummary(r) {
  return (
    `${r.messages} x ${r.payloadBytes} B QoS 1 queued for an offline session: enqueue ${Math.round(r.enqueueRate)} msg/s (${r.enqueueSeconds.toFixed(1)} s), ` +
    `drain ${Math.round(r.drainRate)} msg/s (${r.drainSeconds.toFixed(1)} s), received ${r.received} (out of order ${r.outOfOrder}, repeats ${r.duplicates}); ` +
    `broker RSS idle ${mb(r.idleRss)} MB, after enqueue ${mb(r.rssAfterEnqueue)} MB, after drain ${mb(r.rssAfterDrain)} MB, peak (VmHWM) ${mb(r.vmHwm)} MB`
  );
}
