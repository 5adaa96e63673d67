// Crash torture: a harbormq process with its SQLite store is SIGKILLed at random moments (seeded)
// and restarted on the same data directory and port, while a publisher streams numbered QoS 1 and
// QoS 2 messages and persistent subscribers keep dropping their connections. At the end everything
// is drained and checked: every message the broker accepted reaches every subscriber, QoS 2 exactly
// once, QoS 1 repeats only where MQTT allows them. Shared by torture.test.ts (CI, 10 kills) and
// scripts/torture.mjs (`npm run torture`, 100 kills).
//
// "Accepted" means the broker took ownership of the message: PUBACK for QoS 1, PUBREC for QoS 2
// ([MQTT-4.3.3-2]: once the receiver sent PUBREC it must deliver the message onwards exactly once,
// whatever happens to PUBREL/PUBCOMP). The publisher behaves as MQTT requires of a client with
// clean session 0: after every reconnect it resends its unacknowledged PUBLISH packets with DUP and
// the same packet ids, and PUBREL for those already PUBREC'd, in the original order
// [MQTT-4.4.0-1] [MQTT-3.3.1-1] [MQTT-4.3.3-1]. The subscriber is a QoS 2 receiver that keeps the
// packet ids it PUBREC'd until their PUBREL ([MQTT-4.3.3-2] method B), so a resent PUBLISH with a
// pending id is not a new delivery; its "application" sees each delivery exactly as counted here.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, pk, rawConnection, sleep, startBrokerProcess } from "./broker-process.mjs";

/** mulberry32: a small seeded PRNG; every random choice of a run comes from it. */
export function prng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    /** integer in [min, max] */
    int: (min, max) => min + Math.floor(next() * (max - min + 1)),
    chance: (p) => next() < p,
  };
}

const decoder = new TextDecoder();
const TOPIC = "torture/";

/** Waits until `check()` is truthy, polling every `everyMs`; throws after `timeoutMs`. */
async function until(what, check, timeoutMs, everyMs = 10) {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${typeof what === "function" ? what() : what}`);
    await sleep(everyMs);
  }
}

/** Connects a Publisher or Subscriber, retrying while the broker is down (killed, restarting),
 *  and sends its CONNECT (clean session 0); its onPacket / onClose take it from there. */
async function connectPeer(peer) {
  while (!peer.stopped) {
    try {
      peer.conn = await rawConnection(peer.port, {
        onPacket: (p) => peer.onPacket(p),
        onClose: () => peer.onClose(),
      });
    } catch {
      await sleep(10);
      continue;
    }
    peer.connections++;
    peer.ready = false;
    peer.conn.send(pk.connect(peer.clientId, false, 0));
    return;
  }
}

/** The publishing client: numbered messages, a window of unacknowledged ones, resend on reconnect. */
class Publisher {
  constructor({ port, rand, window, maxBacklog, clientId, stats }) {
    this.port = port;
    this.maxBacklog = maxBacklog;
    /** distinct messages the subscriber has received so far (set once it exists) */
    this.delivered = () => 0;
    this.rand = rand;
    this.window = window;
    this.clientId = clientId;
    this.stats = stats;
    this.conn = undefined;
    this.ready = false; // CONNACK received on `conn`
    this.everConnected = false;
    this.stopped = false;
    this.publishing = true;
    this.nextSeq = 1;
    this.nextId = 1;
    /** packetId -> { seq, qos, state: "publish" | "pubrel" } in send order */
    this.inflight = new Map();
    /** seq -> qos of every message ever sent */
    this.qosOf = [];
    /** seq -> true once the broker accepted it (PUBACK / PUBREC) */
    this.accepted = [];
    this.acceptedCount = 0;
    /** seqs whose PUBLISH was sent more than once (resent with DUP after a reconnect) */
    this.resent = new Set();
    this.connections = 0;
  }

  start() {
    void this.connectLoop();
  }

  connectLoop() {
    return connectPeer(this);
  }

  onClose() {
    this.conn = undefined;
    this.ready = false;
    if (!this.stopped) void sleep(this.rand.int(0, 30)).then(() => this.connectLoop());
  }

  onPacket(p) {
    const s = this.stats;
    switch (p.type) {
      case "connack": {
        if (p.reasonCode !== 0) throw new Error(`publisher refused: ${p.reasonCode}`);
        // [MQTT-3.2.2-2] a resumed clean-session-0 session must be present; without it the
        // broker forgot the QoS 2 packet ids it PUBREC'd and a resend could be delivered twice.
        if (this.everConnected && !p.sessionPresent) s.violations.push(`publisher session lost at connection ${this.connections}`);
        this.everConnected = true;
        this.ready = true;
        // [MQTT-4.4.0-1] resend unacknowledged PUBLISH (DUP) and PUBREL, in the original order.
        for (const [id, m] of this.inflight) {
          if (m.state === "publish") {
            this.resent.add(m.seq);
            s.pubResends++;
            this.conn.send(pk.publish(TOPIC + m.qos, `${m.qos}:${m.seq}`, m.qos, id, true));
          } else {
            s.pubrelResends++;
            this.conn.send(pk.ack("pubrel", id));
          }
        }
        this.pump();
        return;
      }
      case "puback": {
        const m = this.inflight.get(p.packetId);
        if (m === undefined || m.qos !== 1) {
          s.violations.push(`publisher: PUBACK for packet id ${p.packetId} not in flight as QoS 1`);
          return;
        }
        this.inflight.delete(p.packetId);
        this.accept(m.seq);
        this.pump();
        return;
      }
      case "pubrec": {
        const m = this.inflight.get(p.packetId);
        if (m === undefined || m.qos !== 2) {
          s.violations.push(`publisher: PUBREC for packet id ${p.packetId} not in flight as QoS 2`);
          return;
        }
        if (m.state === "publish") {
          m.state = "pubrel";
          this.accept(m.seq);
        }
        this.conn?.send(pk.ack("pubrel", p.packetId));
        return;
      }
      case "pubcomp": {
        const m = this.inflight.get(p.packetId);
        if (m === undefined || m.state !== "pubrel") {
          s.violations.push(`publisher: PUBCOMP for packet id ${p.packetId} without PUBREL`);
          return;
        }
        this.inflight.delete(p.packetId);
        this.pump();
        return;
      }
      default:
        s.violations.push(`publisher: unexpected ${p.type}`);
    }
  }

  accept(seq) {
    if (this.accepted[seq]) return;
    this.accepted[seq] = true;
    this.acceptedCount++;
  }

  allocateId() {
    for (;;) {
      const id = this.nextId;
      this.nextId = id === 65535 ? 1 : id + 1;
      if (!this.inflight.has(id)) return id;
    }
  }

  pump() {
    while (this.publishing && this.ready && this.conn !== undefined && this.inflight.size < this.window && this.acceptedCount - this.delivered() < this.maxBacklog) {
      const seq = this.nextSeq++;
      const qos = this.rand.chance(0.5) ? 1 : 2;
      const id = this.allocateId();
      this.qosOf[seq] = qos;
      this.inflight.set(id, { seq, qos, state: "publish" });
      this.conn.send(pk.publish(TOPIC + qos, `${qos}:${seq}`, qos, id, false));
    }
  }

  /** Publishes one more QoS 2 message and resolves its seq once it is complete. */
  async marker() {
    this.publishing = true;
    const seq = this.nextSeq;
    this.window = this.inflight.size + 1;
    this.pump();
    this.publishing = false;
    return seq;
  }

  stop() {
    this.stopped = true;
    this.conn?.destroy();
  }
}

/** The persistent subscriber: QoS 2 subscription, random acknowledgements, random disconnects. */
class Subscriber {
  constructor({ port, rand, clientId, publisher, stats }) {
    this.port = port;
    this.rand = rand;
    this.clientId = clientId;
    this.publisher = publisher;
    this.stats = stats;
    this.conn = undefined;
    this.ready = false;
    this.subscribed = false;
    this.everConnected = false;
    this.stopped = false;
    this.chaos = true; // drop connections and withhold acknowledgements at random
    this.connections = 0;
    /** seq -> number of deliveries to the application */
    this.count = [];
    /** seq -> connection number and packet id of the latest copy */
    this.lastConn = [];
    this.lastId = [];
    this.distinct = 0;
    /** [MQTT-4.3.3-2] method B: packet ids PUBREC'd (or about to be), until their PUBREL */
    this.pending2 = new Map();
    /** first-delivery order per QoS, to count inversions (informational) */
    this.lastFirst = [0, 0, 0];
  }

  start() {
    void this.connectLoop();
    void this.chaosLoop();
  }

  connectLoop() {
    return connectPeer(this);
  }

  onClose() {
    this.conn = undefined;
    this.ready = false;
    if (!this.stopped) void sleep(this.chaos ? this.rand.int(0, 150) : 0).then(() => this.connectLoop());
  }

  async chaosLoop() {
    while (!this.stopped) {
      await sleep(this.rand.int(20, 400));
      if (!this.chaos || this.stopped) continue;
      const conn = this.conn;
      if (conn === undefined || !this.ready) continue;
      this.stats.subDrops++;
      if (this.rand.chance(0.5)) {
        conn.send(pk.disconnect());
        conn.socket.end();
      } else {
        conn.destroy();
      }
    }
  }

  onPacket(p) {
    const s = this.stats;
    const conn = this.conn;
    switch (p.type) {
      case "connack": {
        if (p.reasonCode !== 0) throw new Error(`${this.clientId} refused: ${p.reasonCode}`);
        if (this.everConnected && !p.sessionPresent) s.violations.push(`${this.clientId} session lost at connection ${this.connections}`);
        this.everConnected = true;
        this.ready = true;
        if (!this.subscribed || !p.sessionPresent) conn.send(pk.subscribe(1, TOPIC + "#", 2));
        return;
      }
      case "suback":
        if (p.reasonCodes[0] !== 2) s.violations.push(`${this.clientId}: SUBACK ${p.reasonCodes.join(",")}`);
        this.subscribed = true;
        return;
      case "publish": {
        const [qosText, seqText] = decoder.decode(p.payload).split(":");
        const qos = Number(qosText);
        const seq = Number(seqText);
        if (p.qos !== qos) s.violations.push(`${this.clientId}: seq ${seq} published at QoS ${qos} arrived at QoS ${p.qos}`);
        if (p.qos === 2) {
          const pending = this.pending2.get(p.packetId);
          if (pending === seq) {
            // The broker resends a PUBLISH we have not PUBREC'd yet (or whose PUBREC it lost):
            // the same message, [MQTT-3.3.1-1] with DUP set.
            s.qos2Resends++;
            if (!p.dup) s.violations.push(`${this.clientId}: QoS 2 seq ${seq} resent on packet id ${p.packetId} without DUP`);
          } else {
            if (pending !== undefined) s.violations.push(`${this.clientId}: packet id ${p.packetId} reused for seq ${seq} while seq ${pending} awaits PUBREL`);
            this.pending2.set(p.packetId, seq);
            this.deliver(seq, qos, p.dup, p.packetId);
          }
          if (!this.chaos || this.rand.chance(0.85)) conn.send(pk.ack("pubrec", p.packetId));
        } else if (p.qos === 1) {
          this.deliver(seq, qos, p.dup, p.packetId);
          if (!this.chaos || this.rand.chance(0.85)) conn.send(pk.ack("puback", p.packetId));
        }
        return;
      }
      case "pubrel":
        this.pending2.delete(p.packetId);
        if (!this.chaos || this.rand.chance(0.85)) conn.send(pk.ack("pubcomp", p.packetId));
        return;
      default:
        s.violations.push(`${this.clientId}: unexpected ${p.type}`);
    }
  }

  deliver(seq, qos, dup, packetId) {
    const s = this.stats;
    const n = (this.count[seq] ?? 0) + 1;
    this.count[seq] = n;
    if (n === 1) {
      this.distinct++;
      this.publisher.pump(); // it may be paused on its backlog cap
      if (seq < this.lastFirst[qos]) s.inversions++;
      else this.lastFirst[qos] = seq;
    } else if (qos === 2) {
      s.qos2Duplicates++;
      s.violations.push(`${this.clientId}: QoS 2 seq ${seq} delivered ${n} times`);
    } else {
      // A QoS 1 repeat is allowed after a reconnect of the subscriber (redelivery of an
      // unacknowledged or not-yet-durably-acknowledged message), with DUP, or when the publisher
      // itself resent the message (the broker then treats it as a new publication [MQTT-4.3.2]).
      s.qos1Repeats++;
      const afterReconnect = this.lastConn[seq] !== this.connections;
      // The same message on the same packet id after a reconnect is the broker's resend of its
      // in-flight PUBLISH: [MQTT-3.3.1-1] [MQTT-4.4.0-1] it carries DUP.
      if (afterReconnect && packetId === this.lastId[seq]) {
        s.qos1Resends++;
        if (!dup) s.violations.push(`${this.clientId}: QoS 1 seq ${seq} resent on packet id ${packetId} without DUP`);
      }
      if (!afterReconnect && !dup && !this.publisher.resent.has(seq)) {
        s.qos1Unexplained++;
        s.violations.push(`${this.clientId}: QoS 1 seq ${seq} repeated on the same connection without DUP and never resent by the publisher`);
      }
    }
    this.lastConn[seq] = this.connections;
    this.lastId[seq] = packetId;
  }

  stop() {
    this.stopped = true;
    this.conn?.destroy();
  }
}

/**
 * Runs the torture. Options: cycles (kills), seed, log (progress lines), window (publisher's
 * unacknowledged messages), killAfterMs [min, max] between kills, synchronous ("full" | "normal").
 * subscribers (persistent sessions, default 2), memory (control run with --memory), stallMs.
 * Resolves a report; `lost` lists the accepted seqs that did not reach every subscriber.
 */
export async function runTorture(options = {}) {
  const cycles = options.cycles ?? 10;
  const seed = options.seed ?? Math.floor(Math.random() * 2 ** 32);
  const log = options.log ?? (() => undefined);
  const [killMin, killMax] = options.killAfterMs ?? [300, 1500];
  const rand = prng(seed);
  const dir = mkdtempSync(join(tmpdir(), "harbormq-torture-"));
  const configFile = join(dir, "harbormq.json");
  writeFileSync(
    configFile,
    JSON.stringify({
      persistence: { synchronous: options.synchronous ?? "full" },
      maxQueuedMessages: 10_000_000,
      maxInflight: options.maxInflight ?? 20,
    }),
  );
  const dataDir = join(dir, "data");
  const port = await freePort();
  const stats = {
    violations: [], pubResends: 0, pubrelResends: 0, subDrops: 0, qos2Resends: 0, qos2Duplicates: 0, qos1Resends: 0, startupKills: 0,
    qos1Repeats: 0, qos1Unexplained: 0, inversions: 0,
  };
  const started = Date.now();
  // `memory: true` runs the same schedule against `--memory`: the control run that must lose.
  const store = options.memory === true ? undefined : dataDir;
  let broker = await startBrokerProcess({ port, dataDir: store, configFile });
  const publisher = new Publisher({ port, rand: prng(rand.int(0, 2 ** 31)), window: options.window ?? 32, maxBacklog: options.maxBacklog ?? 5000, clientId: "torture-pub", stats });
  // Several subscribers: a message routed to many sessions is stored once and referenced by each
  // queue, so a crash between their acknowledgements must not lose it for the others.
  const subscribers = [];
  for (let i = 1; i <= (options.subscribers ?? 2); i++) {
    subscribers.push(new Subscriber({ port, rand: prng(rand.int(0, 2 ** 31)), clientId: `torture-sub${i}`, publisher, stats }));
  }
  const slowest = () => Math.min(...subscribers.map((x) => x.distinct));
  // The queue of accepted-but-undelivered messages is capped so that the final drain stays short;
  // the publisher resumes whenever the subscribers catch up (its pump runs on every delivery).
  publisher.delivered = slowest;
  const kills = [];
  try {
    for (const x of subscribers) x.start();
    await until("the subscribers' SUBACKs", () => subscribers.every((x) => x.subscribed), 10_000);
    publisher.start();
    for (let k = 1; k <= cycles; k++) {
      // One kill in five lands right after a restart, while the clients reconnect and resend and
      // the broker has just restored its sessions.
      await sleep(rand.chance(0.2) ? rand.int(0, 150) : rand.int(killMin, killMax));
      // Every third kill (the first included) waits, for up to 5 s, until the publisher has
      // messages it sent but the broker has not acknowledged yet, so that every run proves that
      // a message in flight at the publisher is resent and accepted once (the publisher is often
      // idle at a random moment: it stops at maxBacklog until the subscribers catch up).
      if (k % 3 === 1) {
        const deadline = Date.now() + 5_000;
        while (publisher.inflight.size === 0 && Date.now() < deadline) await new Promise((r) => setImmediate(r));
      }
      const before = { accepted: publisher.acceptedCount, delivered: slowest(), unacked: publisher.inflight.size };
      const exit = await broker.kill("SIGKILL");
      if (exit.signal !== "SIGKILL") throw new Error(`broker exited by itself before kill ${k}: ${JSON.stringify(exit)} ${broker.stderr()}`);
      kills.push(before);
      log(`kill ${k}/${cycles}: accepted ${before.accepted}, delivered ${before.delivered}, ${before.unacked} in flight at the publisher`);
      await sleep(rand.int(0, 50));
      // One restart in ten is killed again while it starts (opening the store, restoring the
      // sessions, or just listening): a crash during recovery must not lose anything either.
      if (rand.chance(0.1)) {
        const after = rand.int(0, 600);
        let exited;
        const early = await startBrokerProcess({
          port, dataDir: store, configFile,
          onSpawn: (c) => {
            exited = new Promise((r) => c.once("exit", r));
            setTimeout(() => c.kill("SIGKILL"), after);
          },
        }).then(() => "listening", () => "starting");
        await exited;
        stats.startupKills++;
        log(`  and again ${after} ms after its spawn (while ${early})`);
      }
      broker = await startBrokerProcess({ port, dataDir: store, configFile });
    }

    // Drain: no new messages, no more chaos; the publisher completes what it has in flight and
    // the subscriber, connected for good, acknowledges everything.
    publisher.publishing = false;
    for (const x of subscribers) x.chaos = false;
    await until(() => `the publisher's ${publisher.inflight.size} messages in flight to complete`, () => publisher.inflight.size === 0 && publisher.ready, 60_000);
    const accepted = publisher.acceptedCount;
    const missing = () => {
      const out = [];
      for (let seq = 1; seq < publisher.nextSeq; seq++) if (publisher.accepted[seq] && subscribers.some((x) => !x.count[seq])) out.push(seq);
      return out;
    };
    let drainError;
    try {
      // Bounded by progress, not by a total: the drain fails once nothing new arrived for stallMs.
      const stallMs = options.stallMs ?? 10_000;
      let seen = -1;
      let seenAt = Date.now();
      await until(
        () => `${missing().length} accepted messages to reach every subscriber (no progress for ${stallMs} ms)`,
        () => {
          const progress = subscribers.reduce((a, x) => a + x.distinct, 0);
          if (progress !== seen) {
            seen = progress;
            seenAt = Date.now();
          } else if (Date.now() - seenAt > stallMs) {
            throw new Error(`the drain stalled: ${missing().length} accepted messages never reached every subscriber (no progress for ${stallMs} ms)`);
          }
          return slowest() >= accepted && missing().length === 0;
        },
        600_000,
        50,
      );
      // One more clean reconnect and a marker behind everything: whatever the session still held
      // (a stray redelivery) arrives before it and is counted.
      for (const x of subscribers) {
        await until(`${x.clientId} to be connected`, () => x.ready, 10_000);
        const old = x.conn;
        x.ready = false;
        old.send(pk.disconnect());
        old.socket.end();
        await until(`${x.clientId} to reconnect`, () => x.ready && x.conn !== old, 10_000);
      }
      const marker = await publisher.marker();
      await until("the marker", () => subscribers.every((x) => x.count[marker] !== undefined) && publisher.inflight.size === 0, 30_000);
    } catch (err) {
      drainError = err;
    }
    const lost = missing();
    const unaccepted = [];
    for (let seq = 1; seq < publisher.nextSeq; seq++) if (!publisher.accepted[seq]) unaccepted.push(seq);
    return {
      seed,
      cycles,
      seconds: (Date.now() - started) / 1000,
      published: publisher.nextSeq - 1,
      accepted: publisher.acceptedCount,
      qos1: publisher.qosOf.filter((q) => q === 1).length,
      qos2: publisher.qosOf.filter((q) => q === 2).length,
      delivered: slowest(),
      subscribers: subscribers.length,
      lost,
      unaccepted,
      kills,
      publisherConnections: publisher.connections,
      subscriberConnections: subscribers.reduce((a, x) => a + x.connections, 0),
      drainError: drainError === undefined ? undefined : String(drainError),
      ...stats,
    };
  } finally {
    publisher.stop();
    for (const x of subscribers) x.stop();
    await broker.kill("SIGKILL");
    if (options.keepDir !== true) rmSync(dir, { recursive: true, force: true });
  }
}

/** One line for humans: "lost N of M acknowledged ...". */
export function summary(r) {
  const n = Math.max(1, r.kills.length);
  const waiting = r.kills.reduce((a, k) => a + (k.accepted - k.delivered), 0) / n;
  const unacked = r.kills.reduce((a, k) => a + k.unacked, 0) / n;
  return (
    `lost ${r.lost.length} of ${r.accepted} acknowledged (${r.qos1} QoS 1, ${r.qos2} QoS 2; ${r.subscribers} subscribers) across ${r.kills.length} kills (+${r.startupKills} during a restart) in ${r.seconds.toFixed(1)} s, seed ${r.seed}; ` +
    `at a kill on average ${Math.round(waiting)} accepted messages awaited the slowest subscriber and ${Math.round(unacked)} awaited their ack at the publisher; ` +
    `QoS 2 duplicates ${r.qos2Duplicates}, QoS 1 repeats ${r.qos1Repeats} (unexplained ${r.qos1Unexplained}), ` +
    `QoS 1 resends on the same packet id ${r.qos1Resends}, QoS 2 resends ${r.qos2Resends}, out-of-order first deliveries ${r.inversions}, publisher resends ${r.pubResends} PUBLISH + ${r.pubrelResends} PUBREL, subscriber drops ${r.subDrops}, violations ${r.violations.length}`
  );
}
