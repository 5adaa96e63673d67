// Model-based test: 3-5 clients connect (clean 0/1), subscribe, unsubscribe, publish (QoS 0/1/2,
// retain, empty retained), acknowledge, disconnect (clean or abrupt), the broker crashes and
// restores from the store's confirmed writes, store confirmations lag, and time passes, in any
// order. Each client is a small, honest MQTT client model; the invariants are checked from what
// clients observe, and from the store and the restored retained set.
import type { Packet, PublishPacket, QoS } from "@harbormq/codec";
import type { BrokerConfig, OpId, RetainedIndex, SessionStats, StoredMessage } from "@harbormq/core";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Sim, ack, dec, enc, publishPacket } from "./sim.js";

const TOPICS = ["a", "a/b", "b"] as const;
const FILTERS = ["a", "a/+", "#", "b", "a/#"] as const;

function matches(filter: string, topic: string): boolean {
  if (filter === "#") return true;
  const f = filter.split("/");
  const t = topic.split("/");
  for (let i = 0; i < f.length; i++) {
    if (f[i] === "#") return true;
    if (i >= t.length) return false;
    if (f[i] !== "+" && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}

/** What maxQueuedBytes counts of a message: topic + payload bytes (queue.ts messageBytes). */
const bytesOf = (topic: string, payload: Uint8Array): number => enc(topic).length + payload.length;

interface Outgoing {
  payload: string;
  topic: string;
  qos: QoS;
  retain: boolean;
  stage: "publish" | "pubrel";
  /** The connection (epoch) it was first sent on. */
  epoch: number;
}

/** What the broker wrote and dropped while it routed one PUBLISH of a message (first send or resend). */
interface Routing {
  /** sim.crashes at the time: the process whose op ids these are. */
  readonly process: number;
  /** subscriber -> the persist op holding its queue-put of the message. */
  readonly puts: Map<string, OpId>;
  /** Subscribers with a QoS>=1 drop on the message's topic during the routing. */
  readonly drops: Set<string>;
  /** Set when the process crashes: the subscribers whose queue-put was durable by then. */
  durable?: Set<string>;
}

interface MsgRecord {
  /** The payload, and the key of the message in the model (for an empty one: a key of its own). */
  readonly payload: string;
  /** An empty retained publish: deletes the topic's retained message; delivered empty. */
  readonly empty: boolean;
  readonly publisher: string;
  readonly topic: string;
  readonly qos: QoS;
  readonly retain: boolean;
  readonly will: boolean;
  owned: boolean;
  /** Persistent subscribers that must get it once it is owned (unless dropped by policy). */
  readonly expectedBy: Set<string>;
  readonly routings: Routing[];
  /** client -> the highest QoS it may get the message at: the max granted QoS over the filters it
   *  may have held that matched the topic when the broker routed the message (any routing). */
  readonly allowed: Map<string, number>;
}

/** A retained publish (or will) the broker processed, in processing order. */
interface RetainEvent {
  readonly topic: string;
  /** undefined: an empty payload, which deletes ([MQTT-3.3.1-10]). */
  readonly payload: string | undefined;
  readonly rec: MsgRecord;
  /** False for a QoS 2 resend: the broker may hold it already and not process it again. */
  readonly certain: boolean;
}

class ClientModel {
  cursor = 0;
  /** Does the broker hold a persistent session for us? undefined = cannot tell. */
  hasSession: boolean | undefined = false;
  pendingConnack: { clean: boolean } | undefined = undefined;
  /** The session expired after our last CONNECT was sent (its CONNACK, if late, is stale). */
  expiredSinceConnect = false;
  connClean = true;
  /** filter -> granted QoS once SUBACKed; pending ones carry the SUBSCRIBE id. */
  readonly subs = new Map<string, { qos: number; established: boolean; pendingId: number; epoch: number }>();
  /** Counts connections; state created on the current one survives its CONNACK. */
  epoch = 0;
  readonly pendingSubs = new Map<number, string[]>();
  readonly outgoing = new Map<number, Outgoing>();
  readonly qos2In = new Map<number, string>();
  toAck: { type: "puback" | "pubrec" | "pubcomp"; id: number }[] = [];
  nextPid = 1;
  /** payload -> number of application deliveries (QoS 1/2, non-retained). */
  readonly delivered = new Map<string, number>();
  readonly everReceived = new Set<string>();
  /** (publisher|topic) -> last seq delivered in order. */
  readonly lastSeq = new Map<string, number>();
  /** Subscriptions the broker may hold beyond `subs`: removed (UNSUBSCRIBE, clean CONNECT, expiry)
   *  or replaced (SUBSCRIBE again) by a write a crash may undo. Gone once proven durable: the
   *  UNSUBACK/SUBACK `pid` (sent only after the write is durable), or a CONNACK on a later
   *  connection that says the old session is gone. */
  readonly ghosts = new Map<string, { qos: number; epoch: number; pid: number | undefined }>();
  /** filter -> highest QoS ever requested: a retained message sent on subscribe matches one. */
  readonly everSubscribed = new Map<string, number>();
  /** Payload of the will of the current connection, until the broker publishes it. */
  will: string | undefined = undefined;

  constructor(readonly name: string) {}

  /** The broker may still hold `filter` at `qos` until `pid` (if any) is acknowledged. */
  haunt(filter: string, qos: number, pid?: number): void {
    if (qos >= 0x80) return;
    const g = this.ghosts.get(filter);
    this.ghosts.set(filter, { qos: Math.max(qos, g?.qos ?? 0), epoch: this.epoch, pid });
  }

  /** Our subscriptions end (clean CONNECT, expiry); a crash may bring them back. */
  buryAll(): void {
    for (const [f, s] of this.subs) this.haunt(f, s.qos);
    this.subs.clear();
  }

  allocPid(): number {
    for (;;) {
      const id = this.nextPid;
      this.nextPid = id === 65535 ? 1 : id + 1;
      if (!this.outgoing.has(id) && !this.pendingSubs.has(id)) return id;
    }
  }
}

class World {
  readonly sim: Sim;
  readonly clients: ClientModel[];
  readonly msgs = new Map<string, MsgRecord>();
  readonly resentByPublisher = new Set<string>();
  /** PUBACK/PUBREC packet -> the process and its unconfirmed persists when it reached the publisher. */
  readonly pendingAtAck = new WeakMap<Packet, { process: number; ops: ReadonlySet<OpId> }>();
  seq = 0;
  /** How many expected copies own() found stored, or dropped on arrival, before the ack. */
  readonly ackChecks = { stored: 0, dropped: 0 };
  /** Retained publishes the current process handled, in order, and the retained set it restored. */
  retainLog: RetainEvent[] = [];
  retainBase = new Map<string, string>();
  /** How many topics a restore had to bring back an acknowledged retained message for. */
  retainedChecked = 0;
  retainedDeletesChecked = 0;
  /** Sessions whose queued bytes were counted from the store (nothing pending), at the byte limit. */
  bytesChecked = 0;
  private willsSeen = 0;

  constructor(
    readonly config: Partial<BrokerConfig>,
    n: number,
    autoStore: boolean,
  ) {
    this.sim = new Sim({ ...config }, { autoStore }); // a copy: crash() may change its window
    this.clients = Array.from({ length: n }, (_, i) => new ClientModel(`c${i}`));
    this.sim.onReceive = (_name, p) => {
      if (p.type === "puback" || p.type === "pubrec") this.pendingAtAck.set(p, { process: this.sim.crashes, ops: new Set(this.sim.pendingPersists()) });
    };
  }

  get cfg() {
    return this.sim.broker.config;
  }

  isOpen(c: ClientModel) {
    return this.sim.isOpen(c.name);
  }

  private expiredSeen = 0;

  /** Processes everything clients received since last time, then checks global invariants. */
  settle(): void {
    this.noteWills();
    // An expired session is gone with everything it held.
    const expired = this.sim.eventsOf("session-expired");
    for (; this.expiredSeen < expired.length; this.expiredSeen++) {
      const c = this.client(expired[this.expiredSeen]!.clientId);
      this.voidExpectations(c);
      c.buryAll(); // (the session-delete may not be durable yet)
      c.hasSession = undefined; // gone, unless a crash loses the session-delete before it is durable
      c.expiredSinceConnect = true;
    }
    for (let round = 0; round < 50; round++) {
      let any = false;
      for (const c of this.clients) any = this.process(c) || any;
      if (!any) break;
    }
    for (const c of this.clients) {
      if (c.pendingConnack !== undefined && !this.isOpen(c)) this.lost(c);
      const st = this.sim.broker.sessionStats(c.name);
      if (st !== undefined) {
        expect(st.queued).toBeLessThanOrEqual(this.cfg.maxQueuedMessages);
        expect(st.queuedBytes).toBeLessThanOrEqual(this.cfg.maxQueuedBytes);
        // On the wire: after a restart, messages that may have been sent wait beyond the window.
        expect(st.inflight - st.inflightWaiting).toBeLessThanOrEqual(this.cfg.maxInflight);
      }
      this.checkStoredQueue(c.name, st);
    }
  }

  /** Counted without the core's counters: with every write durable, the store holds each
   *  persisted entry of the session's queue (volatile QoS 0 ones only live in memory), so its
   *  entries, in topic + payload bytes, are within the limits and within what the core counts. */
  private checkStoredQueue(name: string, st: SessionStats | undefined): void {
    const store = this.sim.store;
    const q = store.queues.get(name);
    if (q === undefined || q.size === 0 || this.sim.pendingPersists().length > 0) return;
    let bytes = 0;
    for (const e of q.values()) {
      const m = store.messages.get(e.messageId)!;
      bytes += bytesOf(m.topic, m.payload);
    }
    expect(q.size).toBeLessThanOrEqual(this.cfg.maxQueuedMessages);
    expect(bytes).toBeLessThanOrEqual(this.cfg.maxQueuedBytes);
    expect(st).toBeDefined();
    expect(q.size).toBeLessThanOrEqual(st!.queued);
    expect(bytes).toBeLessThanOrEqual(st!.queuedBytes);
    if (this.cfg.maxQueuedBytes !== Infinity) this.bytesChecked++;
  }

  /** Wills the broker published since last time: routed (and retained) like a publish. */
  noteWills(): void {
    const wills = this.sim.eventsOf("will-published");
    for (; this.willsSeen < wills.length; this.willsSeen++) {
      const c = this.client(wills[this.willsSeen]!.clientId);
      const rec = this.msgs.get(c.will!)!;
      expect(rec).toBeDefined();
      expect(rec.topic).toBe(wills[this.willsSeen]!.topic);
      c.will = undefined; // at most once
      this.noteRouting(rec, true);
    }
  }

  /** The broker routes `rec` now (and applies its retain flag): who may get it, at which QoS. */
  private noteRouting(rec: MsgRecord, certain: boolean): void {
    for (const c of this.clients) {
      let q = -1;
      for (const [f, s] of c.subs) if (s.qos < 0x80 && matches(f, rec.topic)) q = Math.max(q, s.qos);
      for (const [f, g] of c.ghosts) if (matches(f, rec.topic)) q = Math.max(q, g.qos);
      if (q >= 0) rec.allowed.set(c.name, Math.max(q, rec.allowed.get(c.name) ?? 0));
    }
    if (rec.retain) this.retainLog.push({ topic: rec.topic, payload: rec.empty ? undefined : rec.payload, rec, certain });
  }

  /** Right after a restore: retained messages are durable state. Per topic, the restored message
   *  is the last retained publish the broker acknowledged (PUBACK/PUBREC: durable by then) or a
   *  later one; with none acknowledged since the last restore, also what that restore held. */
  checkRetainedAfterRestore(): void {
    const index = (this.sim.broker as unknown as { retained: RetainedIndex<StoredMessage> }).retained;
    const actual = new Map<string, string>();
    index.match("#", (topic, m) => actual.set(topic, dec(m.payload)));
    expect(this.sim.broker.stats.retained).toBe(actual.size);
    const topics = new Set([...this.retainBase.keys(), ...actual.keys(), ...this.retainLog.map((e) => e.topic)]);
    for (const topic of topics) {
      const events = this.retainLog.filter((e) => e.topic === topic);
      let last = -1;
      for (let i = 0; i < events.length; i++) if (events[i]!.certain && events[i]!.rec.owned) last = i;
      const allowed = new Set<string | undefined>(events.slice(Math.max(last, 0)).map((e) => e.payload));
      if (last < 0) allowed.add(this.retainBase.get(topic));
      else if (events[last]!.payload === undefined) this.retainedDeletesChecked++;
      else this.retainedChecked++;
      const got = actual.get(topic);
      if (!allowed.has(got)) throw new Error(`restored retained ${topic}: ${got ?? "none"}, expected one of ${[...allowed].map((x) => x ?? "none").join(", ")}`);
    }
    this.retainBase = actual;
    this.retainLog = [];
  }

  /** The connection went away before its CONNACK: we cannot tell what the broker holds. */
  lost(c: ClientModel): void {
    if (c.pendingConnack?.clean === true) this.cleanAttemptLost(c);
    if (c.pendingConnack !== undefined) {
      c.hasSession = undefined;
      c.pendingConnack = undefined;
    }
  }

  private process(c: ClientModel): boolean {
    const rx = this.sim.received(c.name);
    if (c.cursor >= rx.length) return false;
    while (c.cursor < rx.length) {
      const p = rx[c.cursor++]!;
      switch (p.type) {
        case "connack": {
          const pending = c.pendingConnack!;
          expect(pending).toBeDefined();
          c.pendingConnack = undefined;
          expect(p.reasonCode).toBe(0);
          if (pending.clean) {
            expect(p.sessionPresent).toBe(false); // [MQTT-3.2.2-1]
            c.hasSession = false;
          } else {
            // [MQTT-3.2.2-2] [MQTT-3.2.2-3] session present is right
            if (c.hasSession !== undefined) expect(p.sessionPresent).toBe(c.hasSession);
            c.hasSession = c.expiredSinceConnect ? undefined : true;
          }
          if (!p.sessionPresent) {
            // No session: what we held from earlier connections is void (not what we already sent on this one).
            for (const [id, o] of c.outgoing) if (o.epoch < c.epoch) c.outgoing.delete(id);
            for (const [f, sub] of c.subs) if (sub.epoch < c.epoch) c.subs.delete(f);
            c.qos2In.clear();
            // Sent after every earlier write was durable: the old session cannot come back.
            for (const [f, g] of c.ghosts) if (g.epoch < c.epoch) c.ghosts.delete(f);
          } else {
            // Resend our unacknowledged messages ([MQTT-4.4.0-1], client side).
            for (const [id, o] of [...c.outgoing].sort((x, y) => x[0] - y[0])) {
              if (o.epoch === c.epoch) continue; // sent on this connection already
              if (o.stage === "publish") {
                this.resentByPublisher.add(o.payload);
                const rec = this.msgs.get(o.payload)!;
                // Routed again now: only subscribers expected then and now stay expected.
                for (const s of [...rec.expectedBy]) if (!this.expects(this.client(s), o.topic)) rec.expectedBy.delete(s);
                // A QoS 2 resend the broker already holds is not processed again.
                this.noteRouting(rec, o.qos === 1);
                this.sendPublish(c, rec, publishPacket(o.topic, rec.empty ? "" : o.payload, o.qos, { retain: o.retain, dup: true, packetId: id }));
              } else this.sim.send(c.name, ack("pubrel", id));
            }
          }
          break;
        }
        case "suback": {
          for (const [f, g] of c.ghosts) if (g.pid === p.packetId) c.ghosts.delete(f); // the new one is durable
          const filters = c.pendingSubs.get(p.packetId);
          c.pendingSubs.delete(p.packetId);
          if (filters === undefined) break;
          filters.forEach((f, i) => {
            const s = c.subs.get(f);
            if (s !== undefined && s.pendingId === p.packetId) {
              s.established = true;
              s.qos = p.reasonCodes[i]!;
            }
          });
          break;
        }
        case "puback": {
          const o = c.outgoing.get(p.packetId);
          if (o !== undefined && o.qos === 1) {
            this.own(o.payload, p);
            c.outgoing.delete(p.packetId);
          }
          break;
        }
        case "pubrec": {
          const o = c.outgoing.get(p.packetId);
          if (o !== undefined && o.qos === 2) {
            this.own(o.payload, p);
            o.stage = "pubrel";
            this.sim.send(c.name, ack("pubrel", p.packetId));
          }
          break;
        }
        case "pubcomp":
          if (c.outgoing.get(p.packetId)?.stage === "pubrel") c.outgoing.delete(p.packetId);
          break;
        case "pubrel":
          c.qos2In.delete(p.packetId);
          c.toAck.push({ type: "pubcomp", id: p.packetId });
          break;
        case "publish":
          this.deliver(c, p);
          break;
        case "unsuback":
          // Sent once the subscription-delete is durable.
          for (const [f, g] of c.ghosts) if (g.pid === p.packetId) c.ghosts.delete(f);
          break;
        case "pingresp":
          break;
        default:
          throw new Error(`client ${c.name} got ${p.type}`);
      }
    }
    return true;
  }

  private deliver(c: ClientModel, p: PublishPacket): void {
    if (p.payload.length === 0) {
      this.deliverEmpty(c, p);
      return;
    }
    const payload = dec(p.payload);
    c.everReceived.add(payload);
    const rec = this.msgs.get(payload)!;
    expect(rec).toBeDefined();
    expect(p.topic).toBe(rec.topic);
    expect(p.qos).toBeLessThanOrEqual(rec.qos); // [MQTT-3.8.4-6]
    // Every QoS>=1 delivery was queued, and a message larger than maxQueuedBytes never is.
    if (p.qos > 0) expect(bytesOf(p.topic, p.payload)).toBeLessThanOrEqual(this.cfg.maxQueuedBytes);
    if (p.retain) {
      // Sent because of a SUBSCRIBE: matches a filter we subscribed to, at no more than its QoS.
      let q = -1;
      for (const [f, max] of c.everSubscribed) if (matches(f, p.topic)) q = Math.max(q, max);
      if (q < 0) throw new Error(`${c.name} got retained ${payload} on ${p.topic} without subscribing to it`);
      expect(p.qos).toBeLessThanOrEqual(q);
    } else {
      // [MQTT-4.5.0-1] routed to us because a subscription of ours matched when it was routed
      // (delivered later if it was queued, even after an UNSUBSCRIBE: [MQTT-3.10.4-3]); DUP
      // resends included. [MQTT-3.8.4-6] at no more than the highest granted QoS of those.
      const q = rec.allowed.get(c.name);
      if (q === undefined) throw new Error(`${c.name} got ${payload} on ${p.topic} without a matching subscription`);
      if (p.qos > q) throw new Error(`${c.name} got ${payload} at QoS ${p.qos}, above its granted QoS ${q}`);
    }
    if (p.qos === 2) {
      const seen = c.qos2In.get(p.packetId!);
      if (seen !== undefined) {
        // A resend of a QoS 2 message we have not released: a duplicate, not a delivery.
        expect(p.dup).toBe(true);
        expect(seen).toBe(payload);
        c.toAck.push({ type: "pubrec", id: p.packetId! });
        return;
      }
      c.qos2In.set(p.packetId!, payload);
      c.toAck.push({ type: "pubrec", id: p.packetId! });
    } else if (p.qos === 1) c.toAck.push({ type: "puback", id: p.packetId! });
    if (p.retain) {
      // [MQTT-3.3.1-8] [MQTT-3.3.1-11] only a retained, non-empty message comes with RETAIN=1,
      // sent because of a (re)subscription (so it may repeat legitimately).
      expect(rec.retain).toBe(true);
      expect(p.payload.length).toBeGreaterThan(0);
      return;
    }
    const n = (c.delivered.get(payload) ?? 0) + 1;
    c.delivered.set(payload, n);
    if (n > 1) {
      // QoS 2 is never delivered twice (a publisher's resend is not routed again); QoS 1 repeats
      // only as DUP resends, or because its publisher resent it (at least once on that hop).
      const publisherRepeat = rec.qos === 1 && this.resentByPublisher.has(payload);
      if (!publisherRepeat) {
        expect(p.qos).toBe(1);
        expect(p.dup).toBe(true);
      }
    }
    if (!p.dup && !this.resentByPublisher.has(payload) && !rec.will) {
      // Per-publisher order per topic ([MQTT-4.6.0-6]).
      const key = `${rec.publisher}|${rec.topic}`;
      const seq = Number(payload.split("|")[2]);
      const last = c.lastSeq.get(key) ?? -1;
      expect(seq).toBeGreaterThan(last);
      c.lastSeq.set(key, seq);
    }
  }

  /** An empty message: one of the empty publishes on its topic routed to us, at no more than
   *  its QoS and our granted QoS then; never with RETAIN=1 ([MQTT-3.3.1-11]: never stored). */
  private deliverEmpty(c: ClientModel, p: PublishPacket): void {
    expect(p.retain).toBe(false);
    let ok = false;
    for (const r of this.msgs.values()) if (r.empty && r.topic === p.topic && p.qos <= r.qos && p.qos <= (r.allowed.get(c.name) ?? -1)) ok = true;
    if (!ok) throw new Error(`${c.name} got an empty message on ${p.topic} at QoS ${p.qos} that no subscription of its took`);
    if (p.qos === 2) {
      const seen = c.qos2In.get(p.packetId!);
      if (seen !== undefined) {
        expect(p.dup).toBe(true);
        expect(seen).toBe("");
      }
      c.qos2In.set(p.packetId!, "");
      c.toAck.push({ type: "pubrec", id: p.packetId! });
    } else if (p.qos === 1) c.toAck.push({ type: "puback", id: p.packetId! });
  }

  client(name: string): ClientModel {
    return this.clients.find((c) => c.name === name)!;
  }

  /** Is `s` a persistent subscriber with an established QoS>=1 subscription matching `topic`? */
  expects(s: ClientModel, topic: string): boolean {
    if (s.hasSession !== true || s.pendingConnack !== undefined || s.connClean) return false;
    for (const [f, sub] of s.subs) if (sub.established && sub.qos >= 1 && sub.qos < 0x80 && matches(f, topic)) return true;
    return false;
  }

  /** Nothing is acknowledged before it is stored: when the PUBACK/PUBREC reached the publisher,
   *  every expected subscriber's copy had a queue-put whose persist was confirmed, or was dropped
   *  by the policy while this very message was routed (drop-new). Delivered copies included: a
   *  send inside the horizon may reach the subscriber before its persist is confirmed. */
  private own(payload: string, ackPacket: Packet): void {
    const rec = this.msgs.get(payload)!;
    if (rec.owned) return;
    rec.owned = true;
    const at = this.pendingAtAck.get(ackPacket)!;
    expect(at).toBeDefined();
    for (const s of rec.expectedBy) {
      // The latest routing that queued or dropped a copy for s (a QoS 2 resend the broker already
      // holds is not routed again: the earlier routing counts).
      let rt: Routing | undefined;
      for (let i = rec.routings.length - 1; i >= 0 && rt === undefined; i--) {
        const r = rec.routings[i]!;
        if (r.puts.has(s) || r.drops.has(s)) rt = r;
      }
      if (rt === undefined) throw new Error(`${payload} acknowledged but never queued for ${s}`);
      const op = rt.puts.get(s);
      if (op === undefined) {
        this.ackChecks.dropped++; // dropped on arrival by the overflow policy
        continue;
      }
      const durable = rt.process === at.process ? !at.ops.has(op) : rt.durable!.has(s);
      if (!durable) throw new Error(`${payload} acknowledged before ${s}'s copy was stored`);
      this.ackChecks.stored++;
    }
  }

  /** Sends a QoS>=1 PUBLISH and records what the broker wrote and dropped routing it. */
  private sendPublish(c: ClientModel, rec: MsgRecord, packet: PublishPacket): void {
    const a0 = this.sim.actions.length;
    const e0 = this.sim.events.length;
    this.sim.send(c.name, packet);
    const ids = new Set<number>();
    const puts = new Map<string, OpId>();
    for (const a of this.sim.actions.slice(a0)) {
      if (a.type !== "persist") continue;
      for (const w of a.writes) {
        if (w.op === "message-put" && dec(w.message.payload) === rec.payload) ids.add(w.message.id);
        else if (w.op === "queue-put" && ids.has(w.messageId)) puts.set(w.clientId, a.op);
      }
    }
    const drops = new Set<string>();
    for (const e of this.sim.events.slice(e0)) if (e.type === "message-dropped" && e.qos > 0 && e.topic === rec.topic) drops.add(e.clientId);
    rec.routings.push({ process: this.sim.crashes, puts, drops });
  }

  /** The process is about to die: which queue-puts of its routings were durable. */
  beforeCrash(): void {
    const pending = new Set(this.sim.pendingPersists());
    for (const r of this.msgs.values()) {
      for (const rt of r.routings) {
        if (rt.process === this.sim.crashes) rt.durable = new Set([...rt.puts].filter(([, op]) => !pending.has(op)).map(([s]) => s));
      }
    }
  }

  /** QoS>=1 drops of `client|topic`. */
  drops(key: string): number {
    return this.sim.eventsOf("message-dropped").filter((e) => e.qos > 0 && `${e.clientId}|${e.topic}` === key).length;
  }

  /** A will for the next connection: published at most once, on an abnormal close. */
  will(c: ClientModel): { topic: string; payload: Uint8Array; qos: QoS; retain: boolean } {
    const payload = `${c.name}|will|${this.seq++}`;
    const retain = this.seq % 3 === 0;
    this.msgs.set(payload, { payload, empty: false, publisher: c.name, topic: "b", qos: 1, retain, will: true, owned: false, expectedBy: new Set(), routings: [], allowed: new Map() });
    return { topic: "b", payload: new TextEncoder().encode(payload), qos: 1, retain };
  }

  /** `empty`: a retained message with an empty payload (expected by no one: it cannot be told
   *  from another empty one when it arrives). */
  publish(c: ClientModel, topic: string, qos: QoS, retain: boolean, empty = false): void {
    const payload = `${c.name}|${topic}|${this.seq++}${empty ? "|empty" : ""}`;
    const expectedBy = new Set<string>();
    if (qos > 0 && !empty) for (const s of this.clients) if (this.expects(s, topic)) expectedBy.add(s.name);
    const rec: MsgRecord = { payload, empty, publisher: c.name, topic, qos, retain, will: false, owned: false, expectedBy, routings: [], allowed: new Map() };
    this.msgs.set(payload, rec);
    this.noteRouting(rec, true);
    const wire = empty ? "" : payload;
    if (qos === 0) {
      this.sim.send(c.name, publishPacket(topic, wire, 0, { retain }));
      return;
    }
    const id = c.allocPid();
    c.outgoing.set(id, { payload, topic, qos, retain, stage: "publish", epoch: c.epoch });
    this.sendPublish(c, rec, publishPacket(topic, wire, qos, { retain, packetId: id }));
  }

  /** [MQTT-3.1.2-6] the state of a clean session is never reused by a later one (client side too). */
  endOfConnection(c: ClientModel): void {
    if (!c.connClean) return;
    c.outgoing.clear();
    c.qos2In.clear();
    c.subs.clear(); // the clean session's subscriptions end with it
  }

  /** We discarded our session state for a clean CONNECT that may never have reached the broker:
   *  the old session may come back and redeliver what we had already received. */
  cleanAttemptLost(c: ClientModel): void {
    c.delivered.clear();
    c.lastSeq.clear();
  }

  /** A clean session (or one we clean now) voids what was expected for us. */
  voidExpectations(c: ClientModel): void {
    for (const r of this.msgs.values()) r.expectedBy.delete(c.name);
  }

  /** End of a run: store catches up, everyone with a session comes back and drains. */
  finish(): void {
    this.sim.autoStore = true;
    this.sim.confirmAll();
    this.settle();
    for (const c of this.clients) {
      if (this.isOpen(c) && c.connClean) {
        this.sim.disconnect(c.name);
        c.hasSession = false;
      }
      if (!this.isOpen(c) && c.hasSession !== false) {
        this.endOfConnection(c);
        c.pendingConnack = { clean: false };
        c.expiredSinceConnect = false;
        c.connClean = false;
        c.epoch++;
        c.will = undefined;
        this.sim.connect(c.name, { clean: false });
      }
    }
    for (let round = 0; round < 200; round++) {
      this.settle();
      let sent = 0;
      for (const c of this.clients) {
        for (const a of c.toAck.splice(0)) (this.sim.send(c.name, ack(a.type, a.id)), sent++);
      }
      if (sent === 0) break;
    }
    this.settle();
    // No QoS 1/2 message for a persistent subscriber is lost: delivered, or dropped by the policy.
    // A `message-dropped` event names client, topic and delivery QoS, not the message: each QoS>=1
    // drop of (client, topic) accounts for at most one missing message of that client and topic
    // (QoS 0 drops and drops on other topics account for none).
    const missing = new Map<string, string[]>();
    for (const r of this.msgs.values()) {
      if (!r.owned) continue;
      for (const s of r.expectedBy) {
        const key = `${s}|${r.topic}`;
        if (!this.client(s).everReceived.has(r.payload)) missing.set(key, [...(missing.get(key) ?? []), r.payload]);
      }
    }
    for (const [key, list] of missing) {
      const drops = this.drops(key);
      if (list.length > drops) throw new Error(`${key.split("|")[0]} lost ${list.join(", ")} (QoS>=1 drops on its topic: ${drops})`);
    }
  }
}

type Cmd = fc.Command<object, World>;

/** The i-th client (modulo) among those open (or closed): commands always find someone to act. */
function pick(w: World, i: number, open: boolean): ClientModel | undefined {
  const list = w.clients.filter((c) => w.isOpen(c) === open);
  return list.length === 0 ? undefined : list[i % list.length];
}
const cmd = (name: string, open: boolean | undefined, i: number, run: (w: World, c: ClientModel) => void): Cmd => ({
  check: () => true,
  run(_m, w) {
    const c = open === undefined ? w.clients[0]! : pick(w, i, open);
    if (c === undefined) return;
    run(w, c);
    w.settle();
  },
  toString: () => name,
});

function commands(n: number) {
  const client = fc.nat(4);
  const qos = fc.constantFrom<QoS>(0, 1, 2);
  const connectOrTakeover = (takeover: boolean) =>
    fc.tuple(client, fc.constantFrom(false, false, false, true), fc.constantFrom(0, 0, 10), fc.boolean()).map(([i, clean, keepAlive, will]) =>
      cmd(`${takeover ? "takeover" : "connect"}(#${i}, clean=${clean}, ka=${keepAlive}, will=${will})`, takeover, i, (w, c) => {
        if (c.pendingConnack !== undefined) return; // (takeover) one CONNECT in flight at a time
        c.toAck = [];
        w.endOfConnection(c);
        c.pendingConnack = { clean };
        c.expiredSinceConnect = false;
        c.connClean = clean;
        if (clean) {
          w.voidExpectations(c);
          c.buryAll(); // until the CONNACK: the session-delete may be lost in a crash
          c.qos2In.clear();
          c.outgoing.clear();
        }
        c.epoch++;
        const w8 = will ? w.will(c) : undefined;
        w.sim.connect(c.name, { clean, keepAlive, ...(w8 !== undefined ? { will: w8 } : {}) }, takeover);
        w.noteWills(); // a takeover publishes the old connection's will
        c.will = w8 === undefined ? undefined : dec(w8.payload);
      }),
    );
  const connect = connectOrTakeover(false);
  const takeover = connectOrTakeover(true);
  const disconnect = fc.tuple(client, fc.boolean()).map(([i, graceful]) =>
      cmd(`${graceful ? "disconnect" : "drop"}(#${i})`, true, i, (w, c) => {
        if (graceful) w.sim.disconnect(c.name);
        else w.sim.drop(c.name);
        w.noteWills(); // routed before our clean session's subscriptions are forgotten below
        c.toAck = [];
        w.lost(c);
        w.endOfConnection(c);
      }),
    );
  const subscribe = fc.tuple(client, fc.integer({ min: 0, max: FILTERS.length - 1 }), qos).map(([i, f, q]) =>
      cmd(`subscribe(#${i}, ${FILTERS[f]}, ${q})`, true, i, (w, c) => {
        const id = c.allocPid();
        c.pendingSubs.set(id, [FILTERS[f]!]);
        // A subscription it replaces comes back if a crash loses the new one before its SUBACK.
        const old = c.subs.get(FILTERS[f]!);
        if (old !== undefined) c.haunt(FILTERS[f]!, old.qos, id);
        c.subs.set(FILTERS[f]!, { qos: q, established: false, pendingId: id, epoch: c.epoch });
        c.everSubscribed.set(FILTERS[f]!, Math.max(q, c.everSubscribed.get(FILTERS[f]!) ?? 0));
        w.sim.subscribe(c.name, [[FILTERS[f]!, q]], id);
      }),
    );
  const unsubscribe = fc.tuple(client, fc.integer({ min: 0, max: FILTERS.length - 1 })).map(([i, f]) =>
      cmd(`unsubscribe(#${i}, ${FILTERS[f]})`, true, i, (w, c) => {
        const id = c.allocPid();
        const had = c.subs.get(FILTERS[f]!) ?? c.ghosts.get(FILTERS[f]!);
        if (had !== undefined) c.haunt(FILTERS[f]!, had.qos, id);
        c.subs.delete(FILTERS[f]!);
        w.sim.unsubscribe(c.name, [FILTERS[f]!], id);
      }),
    );
  const publish = fc.tuple(client, fc.integer({ min: 0, max: TOPICS.length - 1 }), qos, fc.boolean()).map(([i, t, q, retain]) =>
      cmd(`publish(#${i}, ${TOPICS[t]}, qos=${q}, retain=${retain})`, true, i, (w, c) => w.publish(c, TOPICS[t]!, q, retain)),
    );
  // An empty retained publish deletes the topic's retained message.
  const clear = fc.tuple(client, fc.integer({ min: 0, max: TOPICS.length - 1 }), qos).map(([i, t, q]) =>
      cmd(`clear(#${i}, ${TOPICS[t]}, qos=${q})`, true, i, (w, c) => w.publish(c, TOPICS[t]!, q, true, true)),
    );
  const acks = fc.tuple(client, fc.integer({ min: 1, max: 5 })).map(([i, k]) =>
      cmd(`ack(#${i}, ${k})`, true, i, (w, c) => {
        for (const a of c.toAck.splice(0, k)) w.sim.send(c.name, ack(a.type, a.id));
      }),
    );
  const confirm = fc.integer({ min: 1, max: 4 }).map((k) =>
      cmd(`confirm(${k})`, undefined, 0, (w) => {
        for (let j = 0; j < k; j++) w.sim.confirm();
      }),
    );
  // The restarted process may run with another queue window (restored heads shorter or longer
  // than the in-flight window of the previous run).
  const crash = fc.constantFrom(undefined, undefined, 2, 4, 1000).map((window) =>
      cmd(`crash(window=${window ?? "same"})`, undefined, 0, (w) => {
        if (window !== undefined) Object.assign(w.sim.config, { queueWindow: window });
        w.beforeCrash();
        w.sim.crash();
        w.checkRetainedAfterRestore();
        for (const c of w.clients) {
          c.toAck = [];
          c.will = undefined; // wills are not stored
          for (const g of c.ghosts.values()) g.pid = undefined; // an UNSUBACK still to come never will
          // A CONNECT whose CONNACK never arrived did not take effect (its writes were not durable).
          if (c.pendingConnack?.clean === true) w.cleanAttemptLost(c);
          c.pendingConnack = undefined;
          w.endOfConnection(c);
        }
      }),
    );
  const advance = fc.constantFrom(1_000, 16_000).map((ms) =>
      cmd(`advance(${ms})`, undefined, 0, (w) => {
        w.sim.advance(ms);
        w.noteWills(); // routed before clean sessions closed on the way are forgotten below
        for (const c of w.clients) if (!w.isOpen(c)) (w.lost(c), w.endOfConnection(c), (c.toAck = []));
      }),
    );
  // Weighted by repetition: mostly traffic, sometimes failures.
  return [connect, connect, connect, takeover, subscribe, subscribe, subscribe, publish, publish, publish, publish, publish, publish, clear, acks, acks, acks, confirm, confirm, confirm, confirm, disconnect, disconnect, unsubscribe, crash, advance];
}

const configs = fc.record({
  maxInflight: fc.constantFrom(1, 2, 20),
  maxQueuedMessages: fc.constantFrom(3, 1000),
  // Topic + payload of a message here is 7 to 12 bytes (c0|a|5 on a: 7, c0|a/b|15 on a/b: 12):
  // 10 takes one message on a or b and refuses those on a/b and later wills as too large, 24
  // takes two or three; both overflow policies with each.
  maxQueuedBytes: fc.constantFrom(Infinity, Infinity, 10, 24),
  overflowPolicy: fc.constantFrom("drop-new" as const, "drop-oldest" as const),
  queueQos0: fc.boolean(),
  queueWindow: fc.constantFrom(2, 4, 1000),
  persistentSessionExpiry: fc.constantFrom(0xffffffff, 0xffffffff, 20),
  // Small steps put the send horizon (unmarked QoS 1 sends, taken back as possibly sent after a
  // crash) within reach of the model's short queues; 0 turns it off.
  sendHorizonStep: fc.constantFrom(4, 8, 2048, 0),
});

describe("MQTT 3.1.1", () => {
  it("model: sessions, queues, acks, crashes and time in any order keep every invariant", () => {
    const stats = { wills: 0, publishes: 0, runs: 0, commands: 0, owned: 0, expected: 0, crashes: 0, delivered: 0, storedBeforeAck: 0, droppedBeforeAck: 0, retainedChecked: 0, retainedDeletesChecked: 0, bytesChecked: 0, tooLarge: 0, byteLimited: 0 };
    fc.assert(
      fc.property(
        configs,
        fc.integer({ min: 3, max: 5 }).chain((n) => fc.tuple(fc.constant(n), fc.commands(commands(n), { maxCommands: 100, size: "max" }))),
        fc.boolean(),
        (config, [n, cmds], autoStore) => {
          const w = new World(config, n, autoStore);
          fc.modelRun(() => ({ model: {}, real: w }), cmds);
          w.finish();
          stats.runs++;
          stats.publishes += w.msgs.size;
          stats.commands += [...cmds].length;
          stats.crashes += w.sim.crashes;
          stats.storedBeforeAck += w.ackChecks.stored;
          stats.droppedBeforeAck += w.ackChecks.dropped;
          stats.retainedChecked += w.retainedChecked;
          stats.retainedDeletesChecked += w.retainedDeletesChecked;
          stats.bytesChecked += w.bytesChecked;
          const drops = w.sim.eventsOf("message-dropped");
          stats.tooLarge += drops.filter((e) => e.reason === "too-large").length;
          if (config.maxQueuedBytes !== Infinity) stats.byteLimited += drops.filter((e) => e.reason === "queue-full").length;
          for (const r of w.msgs.values()) if (r.owned) (stats.owned++, (stats.expected += r.expectedBy.size));
          for (const c of w.clients) stats.delivered += c.everReceived.size;
          for (const c of w.clients) for (const p of c.everReceived) if (w.msgs.get(p)?.will === true) stats.wills++;
        },
      ),
      // MODEL_SEED / MODEL_PATH replay a reported failure; MODEL_RUNS runs deeper locally.
      // 1200 runs: a bug that shows in one run in a hundred (a lost message, say) fails ~every
      // time (150 runs caught such a mutant 7 times in 10), for ~8 s.
      {
        numRuns: Number(process.env.MODEL_RUNS ?? 1200),
        ...(process.env.MODEL_SEED !== undefined ? { seed: Number(process.env.MODEL_SEED), endOnFailure: true } : {}),
        ...(process.env.MODEL_PATH !== undefined ? { path: process.env.MODEL_PATH } : {}),
      },
    );
    if (process.env.MODEL_STATS !== undefined) console.log(stats);
    // The runs must exercise what they claim to.
    expect(stats.expected).toBeGreaterThan(50);
    expect(stats.storedBeforeAck).toBeGreaterThan(50);
    expect(stats.crashes).toBeGreaterThan(20);
    expect(stats.wills).toBeGreaterThan(5);
    // A quarter of what 3000 runs averaged per run (so MODEL_RUNS may go lower than the default).
    expect(stats.droppedBeforeAck).toBeGreaterThan(stats.runs * 0.09); // 0.37 per run
    expect(stats.retainedChecked).toBeGreaterThan(stats.runs * 0.14); // 0.56
    expect(stats.retainedDeletesChecked).toBeGreaterThan(stats.runs * 0.05); // 0.2
    expect(stats.bytesChecked).toBeGreaterThan(stats.runs * 1.2); // 4.8
    expect(stats.tooLarge).toBeGreaterThan(stats.runs * 0.08); // 0.34
    expect(stats.byteLimited).toBeGreaterThan(stats.runs * 0.2); // 0.82
  }, 600_000);
});
