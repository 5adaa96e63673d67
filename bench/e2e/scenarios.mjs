// The end-to-end scenarios. Each takes a running broker ({ port, pid }) and the size options,
// measures one figure and checks correctness while measuring: every message is counted at the
// receiver, in order per publisher, without loss or duplicates; a scenario whose messages do not
// all arrive throws (the broker gets an error in the table, not a figure).
import { readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { Worker } from "node:worker_threads";
import { Client } from "./client.mjs";

export class Incorrect extends Error {}

const PAYLOAD = 64;
/** Payload: uint32 sequence number, then the send time (float64 ms), padded to 64 bytes. */
function payload(seq, t) {
  const b = Buffer.alloc(PAYLOAD);
  b.writeUInt32BE(seq, 0);
  b.writeDoubleBE(t, 4);
  return b;
}
const seqOf = (p) => ((p[0] << 24) >>> 0) + (p[1] << 16) + (p[2] << 8) + p[3];
const timeOf = (p) => Buffer.from(p.buffer, p.byteOffset, p.byteLength).readDoubleBE(4);

/** Resolves when `done()` is true; rejects with `stalled()`'s text when nothing progresses for
 *  `idleMs` (progress() returns a number that grows while things move). */
function until(done, progress, stalled, idleMs = 10_000) {
  return new Promise((resolve, reject) => {
    let last = progress();
    let lastAt = performance.now();
    const check = () => {
      if (done()) return resolve();
      const p = progress();
      if (p !== last) {
        last = p;
        lastAt = performance.now();
      } else if (performance.now() - lastAt > idleMs) return reject(new Incorrect(stalled()));
      setTimeout(check, 5);
    };
    check();
  });
}

const settle = (ms) => new Promise((r) => setTimeout(r, ms));

function vmRss(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (m === null) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]) * 1024;
}

async function closeAll(clients) {
  await Promise.all(clients.map((c) => Promise.race([c.disconnect(), settle(2000)])));
  for (const c of clients) c.destroy();
}

/**
 * Checks one subscriber's stream from one publisher: sequence numbers must go 0, 1, 2, ...
 * (MQTT orders messages per publisher and topic for QoS 0/1 without reconnects).
 */
function makeOrderCheck(publishers) {
  const expected = new Uint32Array(publishers);
  let errors = 0;
  let firstError = "";
  return {
    see(pub, seq) {
      if (seq !== expected[pub]) {
        if (errors++ === 0) firstError = `publisher ${pub}: got seq ${seq}, expected ${expected[pub]}`;
        if (seq > expected[pub]) expected[pub] = seq + 1;
      } else expected[pub]++;
    },
    get errors() {
      return errors;
    },
    get firstError() {
      return firstError;
    },
  };
}

/** fan-in: `publishers` publishers on topics bench/in/<i> -> one subscriber on bench/in/#. Each
 *  publisher keeps at most `window` messages sent but not yet received by the subscriber.
 *  `threads` > 1 runs the publishers in that many worker threads (the subscriber stays here). */
export async function fanIn({ port }, { messages, qos, publishers = 16, window = 32, idleMs = 10_000, threads = 1 }) {
  if (threads > 1) return fanInThreaded({ port }, { messages, qos, publishers, window, idleMs, threads });
  const sub = await Client.connect(port, { clientId: "fanin-sub" });
  await sub.subscribe(["bench/in/#"], qos);
  const pubs = [];
  for (let i = 0; i < publishers; i++) pubs.push(await Client.connect(port, { clientId: `fanin-pub-${i}` }));
  const per = Math.floor(messages / publishers);
  const total = per * publishers;
  const sent = new Uint32Array(publishers);
  const got = new Uint32Array(publishers);
  const acked = new Uint32Array(publishers);
  let received = 0;
  let ackedTotal = 0;
  const order = makeOrderCheck(publishers);
  const topics = pubs.map((_, i) => `bench/in/${i}`);
  const pump = (i) => {
    const c = pubs[i];
    while (sent[i] < per && sent[i] - got[i] < window) {
      c.publish(topics[i], payload(sent[i], 0), qos);
      sent[i]++;
    }
  };
  sub.onPublish = (p) => {
    const i = Number(p.topic.slice(9));
    order.see(i, seqOf(p.payload));
    got[i]++;
    received++;
    pump(i);
  };
  pubs.forEach((c, i) => {
    c.onPuback = () => {
      acked[i]++;
      ackedTotal++;
    };
  });
  const t0 = performance.now();
  for (let i = 0; i < publishers; i++) pump(i);
  await until(
    () => received >= total && (qos === 0 || ackedTotal >= total),
    () => received + ackedTotal,
    () => `stalled: received ${received} of ${total} messages${qos ? `, ${ackedTotal} PUBACKs` : ""}`,
    idleMs,
  );
  const seconds = (performance.now() - t0) / 1000;
  await settle(100); // late duplicates would show up here
  if (received !== total) throw new Incorrect(`received ${received} of ${total}`);
  if (order.errors > 0) throw new Incorrect(`${order.errors} out of order / lost: ${order.firstError}`);
  await closeAll([sub, ...pubs]);
  return { value: total / seconds, extra: { messages: total, seconds } };
}

async function fanInThreaded({ port }, { messages, qos, publishers, window, idleMs, threads }) {
  const sub = await Client.connect(port, { clientId: "fanin-sub" });
  await sub.subscribe(["bench/in/#"], qos);
  const per = Math.floor(messages / publishers);
  const total = per * publishers;
  const got = new Uint32Array(publishers);
  const owner = [];
  const workers = [];
  let ackedTotal = 0;
  let received = 0;
  const order = makeOrderCheck(publishers);
  for (let t = 0; t < threads; t++) {
    const ids = [];
    for (let i = t; i < publishers; i += threads) ids.push(i);
    const w = new Worker(new URL("./publisher-worker.mjs", import.meta.url), { workerData: { port, ids, per, qos, window } });
    for (const i of ids) owner[i] = w;
    workers.push(
      await new Promise((resolve, reject) => {
        w.once("error", reject);
        w.on("message", (m) => {
          if (m.ready) resolve(w);
          else if (m.acked) ackedTotal += m.acked;
        });
      }),
    );
  }
  // credit goes back in batches of a quarter window, so one postMessage covers many messages
  const batch = Math.max(1, window >> 2);
  sub.onPublish = (p) => {
    const i = Number(p.topic.slice(9));
    order.see(i, seqOf(p.payload));
    received++;
    if (++got[i] % batch === 0) owner[i].postMessage({ credit: [i, batch] });
  };
  const t0 = performance.now();
  for (const w of workers) w.postMessage({ start: true });
  try {
    await until(
      () => received >= total && (qos === 0 || ackedTotal >= total),
      () => received + ackedTotal,
      () => `stalled: received ${received} of ${total} messages${qos ? `, ${ackedTotal} PUBACKs` : ""}`,
      idleMs,
    );
  } finally {
    for (const w of workers) w.postMessage({ stop: true });
  }
  const seconds = (performance.now() - t0) / 1000;
  await settle(100);
  await Promise.all(workers.map((w) => w.terminate()));
  if (received !== total) throw new Incorrect(`received ${received} of ${total}`);
  if (order.errors > 0) throw new Incorrect(`${order.errors} out of order / lost: ${order.firstError}`);
  await closeAll([sub]);
  return { value: total / seconds, extra: { messages: total, seconds, threads } };
}

/** fan-out: one publisher on bench/out -> `subscribers` subscribers of bench/out (QoS 0). The
 *  publisher keeps at most `window` messages ahead of the slowest subscriber. Figure:
 *  deliveries/s (messages received by all subscribers together). */
export async function fanOut({ port }, { messages, subscribers = 50, window = 200, qos = 0 }) {
  const subs = [];
  const got = new Uint32Array(subscribers);
  const reached = new Uint16Array(messages); // how many subscribers have message k
  let slowest = 0; // every subscriber has messages [0, slowest)
  let delivered = 0;
  let errors = 0;
  let firstError = "";
  let sent = 0;
  let pub;
  const pump = () => {
    while (sent < messages && sent - slowest < window) pub.publish("bench/out", payload(sent++, 0), qos);
  };
  for (let j = 0; j < subscribers; j++) {
    const c = await Client.connect(port, { clientId: `fanout-sub-${j}` });
    await c.subscribe(["bench/out"], qos);
    c.onPublish = (p) => {
      const seq = seqOf(p.payload);
      if (seq !== got[j] && errors++ === 0) firstError = `subscriber ${j}: got seq ${seq}, expected ${got[j]}`;
      got[j]++;
      delivered++;
      if (seq < messages && ++reached[seq] === subscribers && seq === slowest) {
        while (slowest < messages && reached[slowest] === subscribers) slowest++;
        pump();
      }
    };
    subs.push(c);
  }
  pub = await Client.connect(port, { clientId: "fanout-pub" });
  const total = messages * subscribers;
  const t0 = performance.now();
  pump();
  await until(
    () => delivered >= total,
    () => delivered,
    () => `stalled: ${delivered} of ${total} deliveries`,
  );
  const seconds = (performance.now() - t0) / 1000;
  await settle(100);
  if (delivered !== total) throw new Incorrect(`delivered ${delivered} of ${total}`);
  if (errors > 0) throw new Incorrect(`${errors} out of order / lost: ${firstError}`);
  await closeAll([pub, ...subs]);
  return { value: total / seconds, extra: { messages, subscribers, deliveries: total, seconds } };
}

/** QoS 1 request stream: one publisher, one QoS 1 subscriber; at most `window` PUBLISHes without
 *  their PUBACK. Latency: from the PUBLISH written to its arrival at the subscriber. */
export async function qos1Stream({ port }, { messages, window = 16 }) {
  const sub = await Client.connect(port, { clientId: "stream-sub" });
  await sub.subscribe(["bench/req"], 1);
  const pub = await Client.connect(port, { clientId: "stream-pub" });
  const lat = new Float64Array(messages);
  const ackLat = new Float64Array(messages);
  const sentAt = new Float64Array(65536);
  let received = 0;
  let acked = 0;
  let sent = 0;
  let errors = 0;
  const pump = () => {
    while (sent < messages && sent - acked < window) {
      const t = performance.now();
      sentAt[pub.publish("bench/req", payload(sent++, t), 1)] = t;
    }
  };
  sub.onPublish = (p) => {
    const seq = seqOf(p.payload);
    if (seq !== received) errors++;
    if (seq < messages) lat[seq] = performance.now() - timeOf(p.payload);
    received++;
  };
  pub.onPuback = (id) => {
    if (acked < messages) ackLat[acked] = performance.now() - sentAt[id];
    acked++;
    pump();
  };
  const t0 = performance.now();
  pump();
  await until(
    () => received >= messages && acked >= messages,
    () => received + acked,
    () => `stalled: received ${received}, acknowledged ${acked} of ${messages}`,
  );
  const seconds = (performance.now() - t0) / 1000;
  await settle(100);
  if (received !== messages) throw new Incorrect(`received ${received} of ${messages}`);
  if (errors > 0) throw new Incorrect(`${errors} messages out of order`);
  lat.sort();
  ackLat.sort();
  const q = (xs, f) => xs[Math.min(messages - 1, Math.floor(f * messages))];
  await closeAll([pub, sub]);
  return { value: messages / seconds, extra: { messages, seconds, p50ms: q(lat, 0.5), p99ms: q(lat, 0.99), ackP50ms: q(ackLat, 0.5), ackP99ms: q(ackLat, 0.99) } };
}

/** Persistent-session backlog: a QoS 1 subscriber with a persistent session goes away, a
 *  publisher queues `messages` QoS 1 messages for it (each PUBACKed), the subscriber comes back;
 *  figure: messages/s from its CONNECT to the last queued message received. */
export async function backlog({ port }, { messages, window = 100 }) {
  const id = "backlog-sub";
  const s1 = await Client.connect(port, { clientId: id, clean: false });
  await s1.subscribe(["bench/backlog"], 1);
  await s1.disconnect();
  const pub = await Client.connect(port, { clientId: "backlog-pub" });
  let sent = 0;
  let acked = 0;
  const pump = () => {
    while (sent < messages && sent - acked < window) pub.publish("bench/backlog", payload(sent++, 0), 1);
  };
  pub.onPuback = () => {
    acked++;
    pump();
  };
  const tq = performance.now();
  pump();
  await until(
    () => acked >= messages,
    () => acked,
    () => `stalled while queueing: ${acked} of ${messages} acknowledged`,
  );
  const queueSeconds = (performance.now() - tq) / 1000;
  await pub.disconnect();
  await settle(200);
  const seen = new Uint8Array(messages);
  let unique = 0;
  let received = 0;
  let ooo = 0;
  let last = -1;
  const t0 = performance.now();
  const onPublish = (p) => {
    const seq = seqOf(p.payload);
    received++;
    if (seq < messages && seen[seq] === 0) {
      seen[seq] = 1;
      unique++;
      if (seq < last) ooo++;
      last = seq;
    }
  };
  const s2 = await Client.connect(port, { clientId: id, clean: false, onPublish });
  if (!s2.sessionPresent) throw new Incorrect("session not present on reconnect");
  await until(
    () => unique >= messages,
    () => received,
    () => `stalled while draining: ${unique} of ${messages} received`,
  );
  const seconds = (performance.now() - t0) / 1000;
  await settle(100);
  if (ooo > 0) throw new Incorrect(`${ooo} messages out of order`);
  // clean up the session so the broker does not keep it
  await s2.disconnect();
  const s3 = await Client.connect(port, { clientId: id, clean: true });
  await closeAll([s3]);
  return { value: messages / seconds, extra: { messages, seconds, duplicates: received - unique, queueSeconds, queuePerSec: messages / queueSeconds } };
}

/** Idle connections: `connections` clients connect (keep alive 0) and stay; figure: broker RSS
 *  growth per connection (VmRSS from /proc, after a pause, minus the RSS before). */
export async function idle({ port, pid }, { connections, concurrency = 200 }) {
  await settle(500);
  const before = vmRss(pid);
  const clients = [];
  let next = 0;
  const t0 = performance.now();
  const worker = async () => {
    while (next < connections) {
      const i = next++;
      clients.push(await Client.connect(port, { clientId: `idle-${i}`, keepAlive: 0 }));
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const connectSeconds = (performance.now() - t0) / 1000;
  await settle(1500);
  const alive = clients.filter((c) => !c.closed).length;
  const after = vmRss(pid);
  if (alive !== connections) throw new Incorrect(`${connections - alive} of ${connections} connections were closed`);
  for (const c of clients) c.destroy();
  await settle(300);
  return { value: (after - before) / connections, extra: { connections, rssBefore: before, rssAfter: after, connectSeconds } };
}

/** Connection churn: `concurrency` loops of connect, CONNACK, DISCONNECT, close; figure:
 *  completed connections per second. */
export async function churn({ port }, { connections, concurrency = 16 }) {
  let next = 0;
  let done = 0;
  const t0 = performance.now();
  const worker = async () => {
    while (next < connections) {
      const i = next++;
      const c = await Client.connect(port, { clientId: `churn-${i}` });
      await Promise.race([c.disconnect(), settle(5000)]);
      c.destroy();
      done++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = (performance.now() - t0) / 1000;
  if (done !== connections) throw new Incorrect(`${done} of ${connections} connections completed`);
  return { value: connections / seconds, extra: { connections, seconds } };
}
