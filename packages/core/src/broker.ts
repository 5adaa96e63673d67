// The broker as a pure state machine: inputs in through handle(), actions out through poll().
// This file dispatches; the rules live in connection.ts (which packet when), session.ts, queue.ts,
// inflight.ts, will.ts, keepalive.ts and deadlines.ts.
import type {
  ConnectPacket,
  Packet,
  Properties,
  PublishPacket,
  QoS,
  SubscribePacket,
  UnsubscribePacket,
  Will,
} from "@harbormq/codec";
import { encodedLength, isValidReasonCode } from "@harbormq/codec";
import {
  defaultConfig,
  zeroStats,
  type Action,
  type AuthVerdict,
  type BrokerConfig,
  type BrokerEvent,
  type DropReason,
  type BrokerStats,
  type ConnId,
  type Input,
  type Millis,
  type OpId,
  type SessionStats,
  type Snapshot,
  type StoredMessage,
  type StoredQueueEntry,
  type StoredSubscription,
  type StoreWrite,
} from "./api.js";
import { Connection, stepFor } from "./connection.js";
import { DeadlineHeap, type Timer } from "./deadlines.js";
import { keepAliveDeadline } from "./keepalive.js";
import * as P from "./packets.js";
import { idForSeq } from "./inflight.js";
import { entryFromStored, messageBytes, utf8Length, type QueueEntry } from "./queue.js";
import { RetainedIndex } from "./retained.js";
import { Session } from "./session.js";
import { TopicTree } from "./topic-tree.js";
import { willMessage } from "./will.js";
import { parseShared, SharedSubscriptions } from "./shared.js";

export function assertNever(x: never): never {
  throw new Error(`unexpected value: ${JSON.stringify(x)}`);
}

const NEVER = 0xffffffff;
/** The largest packet MQTT can express: 4-byte remaining length 268,435,455 + 5 header bytes. */
const MQTT_MAX_PACKET = 268_435_460;

interface Ack {
  readonly conn: Connection;
  readonly packet: Packet;
}

/** A `session-horizon` write: once stored, `session.horizon` may rise to `seq`. */
interface HorizonRaise {
  readonly session: Session;
  readonly seq: number;
}

type PendingOp =
  | { readonly kind: "persist"; readonly acks: Ack[]; readonly horizons: HorizonRaise[] | undefined }
  | { readonly kind: "authenticate"; readonly conn: Connection; readonly connect: ConnectPacket; readonly clientId: string; readonly assigned: boolean }
  | { readonly kind: "authorize-will"; readonly conn: Connection; readonly connect: ConnectPacket; readonly clientId: string; readonly assigned: boolean }
  | { readonly kind: "authorize-publish"; readonly conn: Connection; readonly packet: PublishPacket }
  | { readonly kind: "authorize-subscribe"; readonly conn: Connection; readonly packet: SubscribePacket }
  | { readonly kind: "load"; readonly session: Session };

const NO_IDS: readonly number[] = Object.freeze([]);

/**
 * The MQTT broker as a deterministic state machine (sans-IO).
 *
 * Call protocol:
 * 1. For every event, call `handle(now, input)` with the driver's monotonic time in ms.
 * 2. Then call `poll()` until it returns undefined and execute the actions in order: `send` and
 *    `close` on connections, `persist` / `load` against the store, `authenticate` /
 *    `authorize-*` against the hooks, `observe` to logs and metrics. A `send` must not reach the
 *    wire before every `persist` emitted before it is durable.
 * 3. Answer every `persist` with a `stored`, every `load` with a `loaded`, every hook with an
 *    `authed` input (in any later handle() call).
 * 4. Arm one timer at `nextDeadline()` and call `handle(now, { type: "tick" })` when it fires.
 *    Early or repeated ticks are harmless.
 * The same inputs always give the same actions. The broker never throws for anything a peer
 * sends; it throws only for a caller's bug (an action queue that is never drained is not one).
 */
export class Broker {
  readonly config: BrokerConfig;
  private readonly actions: Action[] = [];
  private head = 0;
  private readonly conns = new Map<ConnId, Connection>();
  private readonly sessions = new Map<string, Session>();
  private readonly tree = new TopicTree<Session, StoredSubscription>();
  /** `$share/{ShareName}/{filter}` subscriptions: one member of a group gets each message. */
  private readonly shared = new SharedSubscriptions();
  private readonly retained = new RetainedIndex<StoredMessage>();
  private readonly ops = new Map<OpId, PendingOp>();
  private readonly timers = new DeadlineHeap();
  private nextOp = 1;
  private lastMessageId = 0;
  private assignedCounter = 0;
  private now: Millis = 0;
  private started = false;
  /** Shutdown closes connections without arming delayed wills (they would never fire). */
  private shuttingDown = false;
  /** Session generations come from one counter: a timer armed for an earlier session of the same
   *  client id can never match a later session (each new Session would start again at 0). */
  private sessionGen = 0;
  private restoredOnline: Session[] = [];

  // Per-input scratch state.
  private writes: StoreWrite[] = [];
  private acks: Ack[] = [];
  private horizons: HorizonRaise[] = [];
  private inputOp = 0;
  private readonly targets: (Session | undefined)[] = [];
  private targetCount = 0;
  private routeMark = 0;
  private bytesId = -1;
  private bytesVal = 0;
  /** True while route delivers one message to several sessions. */
  private fanOut = false;
  /** The last QoS 0 PUBLISH built, shared by the deliveries of the same message (sendPublishOf). */
  private q0Message: StoredMessage | undefined = undefined;
  private q0Retain = false;
  private q0Packet: PublishPacket | undefined = undefined;

  private readonly totals = {
    messagesIn: 0,
    messagesOut: 0,
    dropped: 0,
    droppedQueueFull: 0,
    droppedExpired: 0,
  };
  private readonly statsView: { -readonly [K in keyof BrokerStats]: number } = { ...zeroStats };

  constructor(config?: Partial<BrokerConfig>, restored?: Snapshot) {
    this.config = { ...defaultConfig, ...config };
    if (restored !== undefined) this.restore(restored);
  }

  // -------------------------------------------------------------------------------------------
  // Public API

  handle(now: Millis, input: Input): void {
    this.now = now;
    const mark = this.actions.length;
    this.inputOp = 0;
    if (!this.started) this.start();
    // Deadlines that passed run before the input, whatever the driver's timer did: a CONNECT
    // handled after its session's expiry (or after a restart) must not resume it
    // [MQTT-4.1.0-2], a reconnect after the Will Delay must not cancel the will [MQTT-3.1.2-8],
    // a packet after 1.5 x keep alive does not save the connection [MQTT-3.1.2-24].
    if (input.type !== "tick") {
      const due = this.timers.peek();
      if (due !== undefined && due.at <= now) this.runTimers();
    }
    switch (input.type) {
      case "open":
        this.onOpen(input.conn, input.remote);
        break;
      case "packet": {
        const conn = this.conns.get(input.conn);
        if (conn !== undefined) this.onPacket(conn, input.packet);
        break;
      }
      case "malformed": {
        const conn = this.conns.get(input.conn);
        if (conn !== undefined) this.onMalformed(conn, input.reason, input.message);
        break;
      }
      case "closed": {
        const conn = this.conns.get(input.conn);
        if (conn !== undefined) this.onSocketClosed(conn);
        break;
      }
      case "stored":
        this.onStored(input.op, input.ok);
        break;
      case "authed":
        this.onAuthed(input.op, input.verdict, input.granted);
        break;
      case "loaded":
        this.onLoaded(input.op, input.entries);
        break;
      case "tick":
        this.runTimers();
        break;
      case "shutdown":
        this.onShutdown();
        break;
      default:
        assertNever(input);
    }
    this.flush(mark);
  }

  poll(): Action | undefined {
    if (this.head < this.actions.length) {
      const a = this.actions[this.head]!;
      this.actions[this.head++] = undefined as unknown as Action; // release for GC
      if (this.head === this.actions.length) {
        this.head = 0;
        this.actions.length = 0;
      }
      return a;
    }
    return undefined;
  }

  nextDeadline(): Millis | undefined {
    for (;;) {
      const t = this.timers.peek();
      if (t === undefined) return undefined;
      if (!this.isStale(t)) return t.at;
      this.timers.pop();
    }
  }

  get stats(): Readonly<BrokerStats> {
    const s = this.statsView;
    s.connections = this.conns.size;
    s.sessions = this.sessions.size;
    s.subscriptions = this.tree.size + this.shared.size;
    s.retained = this.retained.size;
    s.messagesIn = this.totals.messagesIn;
    s.messagesOut = this.totals.messagesOut;
    s.dropped = this.totals.dropped;
    s.droppedQueueFull = this.totals.droppedQueueFull;
    s.droppedExpired = this.totals.droppedExpired;
    return s;
  }

  sessionStats(clientId: string): SessionStats | undefined {
    const s = this.sessions.get(clientId);
    if (s === undefined) return undefined;
    const q = s.queue;
    const waiting = s.conn === undefined ? s.inflight.size : (s.inflight.deferred?.size ?? 0);
    return { queued: q.count, queuedBytes: q.bytes, inMemory: q.inMemory, inMemoryBytes: q.memBytes, inflight: s.inflight.size, inflightWaiting: waiting, dropped: s.dropped };
  }

  // -------------------------------------------------------------------------------------------
  // Restore

  private restore(snap: Snapshot): void {
    let maxId = snap.lastMessageId;
    for (const m of snap.retained) {
      this.retained.set(m.topic, m);
      if (m.id > maxId) maxId = m.id;
    }
    const c = this.config;
    for (const r of snap.sessions) {
      const m = r.meta;
      const s = new Session(m.clientId, true, m.protocolVersion, m.expiryInterval, m.disconnectedAt, c.maxInflight, c.queueWindow, c.queueWindowBytes);
      for (const sub of r.subscriptions) {
        s.setSubscription(sub);
        this.subscribe(s, sub);
      }
      for (const id of r.qos2) s.qos2Set(id, 0);
      const q = s.queue;
      const horizon = r.sendHorizon ?? 0;
      s.horizon = s.horizonWritten = horizon;
      // Queued QoS 1 entries up to the horizon may have been sent without a durable mark.
      s.restoredHorizon = Math.min(horizon, r.lastSeq);
      for (const stored of r.queueHead) {
        const e = entryFromStored(this.maybeSent(s, stored));
        if (!q.restore(e)) break; // the memory window is full: the rest is paged in
        if (e.state !== "queued") this.claimRestored(s, e);
        if (e.message.id > maxId) maxId = e.message.id;
      }
      q.count = Math.max(r.queueCount, q.inMemory);
      q.bytes = r.queueBytes;
      // New entries start above the horizon: a seq (and so a packet id) used by a send whose entry
      // the crash lost is never given to another message, which a late PUBACK from the client's
      // previous connection could otherwise acknowledge without it ever being delivered.
      q.lastSeq = Math.max(r.lastSeq, q.memTailSeq, horizon);
      this.sessions.set(m.clientId, s);
      if (m.disconnectedAt === undefined) this.restoredOnline.push(s);
      else this.armExpiry(s);
    }
    this.lastMessageId = maxId;
  }

  /** A stored entry as the restored core takes it. Queued QoS 1 entries at or below the restored
   *  send horizon may have been sent before the crash without a durable "sent" mark, so they are
   *  taken as in flight ("sent", id assigned by claimRestored): resent with DUP=1 in seq order
   *  among the other in-flight entries ([MQTT-4.4.0-1] [MQTT-3.3.1-1] [MQTT-4.6.0-1]), never
   *  dropped as expired or as the oldest queued ([MQTT-4.3.3-7]). Call in seq order. */
  private maybeSent(s: Session, e: StoredQueueEntry): StoredQueueEntry {
    if (e.state !== "queued" || e.seq > s.restoredHorizon) return e;
    if (e.qos !== 1) {
      // Sends go out in seq order, and this one (QoS 2, or a stored QoS 0) waits for a durable
      // write before it leaves: since the store does not show it sent, nothing after it was.
      s.restoredHorizon = e.seq - 1;
      return e;
    }
    return { ...e, state: "sent", packetId: undefined };
  }

  /** Reserves the packet id of a restored in-flight entry. One taken in by maybeSent gets its
   *  seq's id (the one a send without a mark used) when free. A durable mark wins over such an
   *  entry holding its id (only possible with an entry 65,535 seqs older in flight): that one
   *  moves to another id. */
  private claimRestored(s: Session, e: QueueEntry): void {
    const ids = s.inflight.ids;
    if (e.packetId === undefined) {
      e.packetId = ids.allocate(e, idForSeq(e.seq));
      return;
    }
    const holder = ids.get(e.packetId);
    if (holder !== undefined && holder !== e) holder.packetId = ids.allocate(holder);
    ids.claim(e.packetId, e);
  }

  /** First handle(): sessions that were online when the broker stopped are offline since now. */
  private start(): void {
    this.started = true;
    for (const s of this.restoredOnline) {
      if (this.sessions.get(s.clientId) !== s || s.conn !== undefined) continue;
      s.disconnectedAt = this.now;
      this.putSessionMeta(s);
      this.armExpiry(s);
    }
    this.restoredOnline = [];
  }

  // -------------------------------------------------------------------------------------------
  // Plumbing: actions, writes, ops

  private emit(a: Action): void {
    this.actions.push(a);
  }

  private observe(event: BrokerEvent): void {
    this.actions.push({ type: "observe", event });
  }

  private send(conn: Connection, packet: Packet, unordered = false): void {
    this.actions.push({ type: "send", conn: conn.id, packet, version: conn.version, unordered });
  }

  private write(w: StoreWrite): void {
    this.writes.push(w);
  }

  private newOp(): OpId {
    return this.nextOp++;
  }

  /** The op of this input's persist (allocated on first use). */
  private currentOp(): OpId {
    if (this.inputOp === 0) this.inputOp = this.newOp();
    return this.inputOp;
  }

  /** Queues an acknowledgement that may go out only once this input's writes are durable. */
  private ackAfterStore(conn: Connection, packet: Packet): void {
    this.acks.push({ conn, packet });
  }

  /** End of an input: one `persist` carrying all its writes, placed before the input's other
   *  actions so the driver holds their sends until it is durable; acks wait for its `stored`. */
  private flush(mark: number): void {
    const acks = this.acks;
    if (this.writes.length > 0) {
      const op = this.currentOp();
      const horizons = this.horizons.length > 0 ? this.horizons : undefined;
      const urgent = acks.length > 0;
      const persist: Action = { type: "persist", op, writes: this.writes, urgent };
      if (mark === this.actions.length) this.actions.push(persist);
      else this.actions.splice(mark, 0, persist);
      this.writes = [];
      if (urgent || horizons !== undefined) {
        this.ops.set(op, { kind: "persist", acks, horizons });
        for (const a of acks) a.conn.lastAckOp = op;
        this.acks = [];
        if (horizons !== undefined) this.horizons = [];
      }
      return;
    }
    if (acks.length === 0) return;
    for (const a of acks) {
      // Keep acks of one connection in order behind an earlier one still waiting for the store.
      const waiting = this.ops.get(a.conn.lastAckOp);
      if (waiting !== undefined && waiting.kind === "persist") waiting.acks.push(a);
      else if (a.conn.state === "connected") this.send(a.conn, a.packet);
    }
    acks.length = 0;
  }

  // -------------------------------------------------------------------------------------------
  // Connections

  private onOpen(id: ConnId, remote: string): void {
    if (this.conns.has(id)) return;
    const conn = new Connection(id, remote, this.now);
    this.conns.set(id, conn);
    this.arm({ at: this.now + this.config.connectTimeout, kind: "connect-timeout", conn: id, clientId: "", gen: 0 });
  }

  private onSocketClosed(conn: Connection): void {
    conn.socketGone = true;
    // A DISCONNECT the client sent before closing counts even if it was held behind a pending
    // hook (PUBLISH, DISCONNECT, close is a normal goodbye): its will is discarded
    // [MQTT-3.14.4-3] [MQTT-3.1.2-10] and its Session Expiry Interval applies [MQTT-3.1.2-23].
    // The packets held before it are dropped: none of them was acknowledged.
    if (conn.state === "connected") {
      const held = conn.buffer.find((p) => p.type === "disconnect");
      if (held !== undefined) {
        conn.buffer.length = 0;
        if (conn.waitingOp !== undefined) this.ops.delete(conn.waitingOp);
        conn.waitingOp = undefined;
        this.dispatch(conn, held);
        if (!this.conns.has(conn.id)) return; // closed by the DISCONNECT (or its protocol error)
      }
    }
    this.closeConn(conn, 0x80, "connection lost", false, false);
  }

  private onMalformed(conn: Connection, reason: number, message: string): void {
    if (conn.state === "awaiting-connect" && reason === 0x84) {
      // [MQTT-3.1.2-2] an unsupported protocol level is answered with CONNACK 0x01, then closed.
      this.actions.push({ type: "send", conn: conn.id, packet: P.connack(false, 0x01, P.NO_PROPERTIES), version: 4 });
    }
    if (conn.state === "connected") {
      this.observe({ type: "protocol-error", conn: conn.id, clientId: conn.clientId, reason, message });
      // 4.13.1: after CONNECT, an MQTT 5 server SHOULD say why in a DISCONNECT before closing.
      if (conn.version === 5) this.send(conn, P.disconnect(isValidReasonCode("disconnect", 5, reason) && reason >= 0x80 ? reason : 0x81));
    }
    this.closeConn(conn, reason, message, false, true);
  }

  private onPacket(conn: Connection, packet: Packet): void {
    if (conn.state === "closed") return;
    conn.lastActivity = this.now;
    const step = stepFor(conn.state, packet);
    switch (step) {
      case "connect":
        this.onConnect(conn, packet as ConnectPacket);
        return;
      case "violation":
        this.violation(conn, `unexpected ${packet.type} in state ${conn.state}`);
        return;
      case "buffer":
        this.buffer(conn, packet);
        return;
      case "dispatch":
        if (conn.waitingOp !== undefined) this.buffer(conn, packet);
        else this.dispatch(conn, packet);
        return;
      case "ignore":
        return;
      default:
        assertNever(step);
    }
  }

  /** Packets that arrive while a hook is pending are held in order (bounded) rather than rejected:
   *  clients commonly pipeline SUBSCRIBE / PUBLISH right behind CONNECT. */
  private buffer(conn: Connection, packet: Packet): void {
    if (conn.buffer.length >= this.config.maxBufferedPackets) {
      this.closeConn(conn, 0x97, "too many packets while waiting for a hook", false, true);
      return;
    }
    conn.buffer.push(packet);
  }

  private drainBuffer(conn: Connection): void {
    while (conn.waitingOp === undefined && conn.state === "connected" && conn.buffer.length > 0) {
      const p = conn.buffer.shift()!;
      const step = stepFor(conn.state, p);
      if (step === "dispatch") this.dispatch(conn, p);
      else if (step === "violation") this.violation(conn, `unexpected ${p.type} in state ${conn.state}`);
    }
  }

  /**
   * [MQTT-3.3.2-12] any alias from 1 to the Topic Alias Maximum of our CONNACK is accepted: a
   * PUBLISH with a topic and an alias (re)defines it, one with an empty topic uses it. Returns the
   * PUBLISH with its topic and without the alias (so no alias is forwarded, [MQTT-3.1.2-26]
   * [MQTT-3.1.2-27]), or undefined after closing the connection for a protocol error.
   */
  private resolveTopicAlias(conn: Connection, p: PublishPacket): PublishPacket | undefined {
    const alias = p.properties.topicAlias;
    if (alias === undefined) {
      this.protocolError(conn, 0x82, "PUBLISH with an empty topic and no topic alias");
      return undefined;
    }
    const max = Math.min(Math.floor(this.config.topicAliasMaximum), 65_535);
    if (conn.version !== 5 || alias < 1 || alias > max) {
      // [MQTT-3.2.2-17] [MQTT-3.3.2-8] [MQTT-3.3.2-9] 0 or above our maximum is invalid.
      this.protocolError(conn, 0x94, `topic alias ${alias} outside 1..${max}`);
      return undefined;
    }
    let topic = p.topic;
    if (topic.length > 0) (conn.topicAliases ??= new Map()).set(alias, topic);
    else {
      const known = conn.topicAliases?.get(alias);
      if (known === undefined) {
        this.protocolError(conn, 0x82, `topic alias ${alias} not defined on this connection`);
        return undefined;
      }
      topic = known;
    }
    const { topicAlias: _alias, ...rest } = p.properties;
    const props = Object.keys(rest).length === 0 ? P.NO_PROPERTIES : rest;
    return P.publish(topic, p.payload, p.qos, p.retain, p.dup, p.packetId, props);
  }

  /** An MQTT 5 protocol error with its own reason code: DISCONNECT with it, then close. */
  private protocolError(conn: Connection, reason: number, message: string): void {
    this.observe({ type: "protocol-error", conn: conn.id, clientId: conn.clientId, reason, message });
    if (conn.version === 5) this.send(conn, P.disconnect(reason));
    this.closeConn(conn, reason, message, false, true);
  }

  private violation(conn: Connection, message: string): void {
    // [MQTT-4.8.0-1] a protocol violation closes the connection; the will is published.
    this.observe({ type: "protocol-error", conn: conn.id, clientId: conn.clientId, reason: 0x82, message });
    // 4.13.1: after CONNECT, an MQTT 5 server SHOULD say why in a DISCONNECT before closing.
    if (conn.state === "connected" && conn.version === 5) this.send(conn, P.disconnect(0x82));
    this.closeConn(conn, 0x82, message, false, true);
  }

  private dispatch(conn: Connection, packet: Packet): void {
    switch (packet.type) {
      case "publish":
        if (conn.version === 5) {
          // [MQTT-3.3.4-6] a client never sends a Subscription Identifier; passed on, it would
          // reach subscribers as theirs.
          if (packet.properties.subscriptionIdentifiers !== undefined) {
            this.protocolError(conn, 0x82, "PUBLISH from a client with a Subscription Identifier");
            return;
          }
          // [MQTT-3.2.2-11] QoS above the Maximum QoS our CONNACK gave: 0x9B QoS not supported.
          if (packet.qos > this.config.maxQos) {
            this.protocolError(conn, 0x9b, `PUBLISH QoS ${packet.qos} above maximum QoS ${this.config.maxQos}`);
            return;
          }
        }
        if (packet.properties.topicAlias !== undefined || packet.topic.length === 0) {
          const resolved = this.resolveTopicAlias(conn, packet);
          if (resolved === undefined) return; // a protocol error closed the connection
          packet = resolved;
        }
        if (this.config.authorizePublish) {
          const op = this.newOp();
          conn.waitingOp = op;
          this.ops.set(op, { kind: "authorize-publish", conn, packet });
          this.emit({ type: "authorize-publish", op, conn: conn.id, clientId: conn.clientId!, topic: packet.topic, qos: packet.qos, retain: packet.retain });
        } else this.onPublish(conn, packet, undefined);
        return;
      case "puback":
        this.onPuback(conn, packet.packetId);
        return;
      case "pubrec":
        this.onPubrec(conn, packet.packetId, packet.reasonCode);
        return;
      case "pubrel":
        this.onPubrel(conn, packet.packetId);
        return;
      case "pubcomp":
        this.onPubcomp(conn, packet.packetId);
        return;
      case "subscribe":
        if (this.config.authorizeSubscribe) {
          const op = this.newOp();
          conn.waitingOp = op;
          this.ops.set(op, { kind: "authorize-subscribe", conn, packet });
          this.emit({ type: "authorize-subscribe", op, conn: conn.id, clientId: conn.clientId!, subscriptions: packet.subscriptions });
        } else this.onSubscribe(conn, packet, undefined);
        return;
      case "unsubscribe":
        this.onUnsubscribe(conn, packet);
        return;
      case "pingreq":
        // [MQTT-3.12.4-1]
        this.send(conn, P.pingresp());
        return;
      case "disconnect": {
        // MQTT 5 (3.14.2.2.2): the DISCONNECT may change the session's expiry interval; setting a
        // non-zero one when CONNECT had 0 is a protocol error.
        const expiry = conn.version === 5 ? packet.properties.sessionExpiryInterval : undefined;
        const session = conn.session;
        if (expiry !== undefined && session !== undefined) {
          if (expiry !== 0 && session.expiryInterval === 0) {
            this.protocolError(conn, 0x82, "DISCONNECT sets a Session Expiry Interval after CONNECT had 0");
            return;
          }
          session.expiryInterval = expiry;
        }
        if (packet.reasonCode !== 0x00 && conn.version === 5) {
          // [MQTT-3.1.2-10] only DISCONNECT 0x00 removes the will: 0x04 ("Disconnect with Will
          // Message") and the error codes leave it to be published.
          this.closeConn(conn, packet.reasonCode, packet.reasonCode === 0x04 ? "client disconnected with will" : "client disconnected with an error", false, true);
          return;
        }
        // [MQTT-3.14.4-3] [MQTT-3.1.2-10] DISCONNECT discards the will.
        conn.will = undefined;
        this.closeConn(conn, 0, "client disconnected", true, true);
        return;
      }
      case "connect":
      case "connack":
      case "suback":
      case "unsuback":
      case "pingresp":
      case "auth":
        this.violation(conn, `unexpected ${packet.type}`);
        return;
      default:
        assertNever(packet);
    }
  }

  /**
   * Closes a connection once. `graceful`: after DISCONNECT (no will). `emitClose`: tell the driver
   * to close the socket (false when the socket is already gone).
   */
  private closeConn(conn: Connection, reason: number, message: string, graceful: boolean, emitClose: boolean): void {
    if (conn.state === "closed") return;
    const wasConnected = conn.state === "connected";
    conn.state = "closed";
    conn.buffer.length = 0;
    // A hook answer for a closed connection is moot (and ignored if it still comes).
    if (conn.waitingOp !== undefined) this.ops.delete(conn.waitingOp);
    conn.waitingOp = undefined;
    this.conns.delete(conn.id);
    if (emitClose && !conn.socketGone) this.emit({ type: "close", conn: conn.id, reason, message });
    this.observe({ type: "client-disconnected", conn: conn.id, clientId: conn.clientId, reason, message, graceful });
    const session = conn.session;
    conn.session = undefined;
    if (session !== undefined && session.conn === conn) {
      session.conn = undefined;
      session.gen = ++this.sessionGen;
      if (session.persistent && session.expiryInterval !== 0) {
        // [MQTT-3.1.2-4] the session lives on; QoS 0 that was only waiting in memory goes.
        for (const e of session.queue.dropVolatile()) this.countDrop(session, e.message, e.qos, "disconnected");
        session.disconnectedAt = this.now;
        this.putSessionMeta(session);
        this.armExpiry(session);
      } else {
        // [MQTT-3.1.2-6] a clean session (or one with expiry 0) ends with its connection.
        this.destroySession(session);
      }
    }
    // [MQTT-3.1.2-8] the will goes out on an abnormal close of an accepted connection; an MQTT 5
    // Will Delay Interval holds it until the delay passes or the session ends, whichever is first
    // ([MQTT-3.1.3-9]: a new connection to the session before then cancels it).
    const will = conn.will;
    conn.will = undefined;
    if (!graceful && wasConnected && will !== undefined) {
      const delay = conn.version === 5 ? (will.properties.willDelayInterval ?? 0) : 0;
      const lives = session !== undefined && this.sessions.get(session.clientId) === session && session.conn === undefined;
      if (delay > 0 && lives && !this.shuttingDown) {
        session.pendingWill = will;
        this.arm({ at: this.now + delay * 1000, kind: "will-delay", conn: 0, clientId: session.clientId, gen: session.gen });
      } else this.publishWill(conn.clientId!, will);
    }
  }

  private publishWill(clientId: string, will: Will): void {
    const msg = willMessage(will, ++this.lastMessageId, this.now);
    this.observe({ type: "will-published", clientId, topic: will.topic });
    this.publishMessage(msg, clientId);
  }

  private onShutdown(): void {
    this.shuttingDown = true;
    if (this.config.willOnShutdown) {
      // Wills waiting for their delay would be lost with the process (wills are not stored).
      for (const s of this.sessions.values()) {
        const will = s.pendingWill;
        s.pendingWill = undefined;
        if (will !== undefined) this.publishWill(s.clientId, will);
      }
    }
    for (const conn of [...this.conns.values()]) {
      if (conn.state === "connected" && conn.version === 5) this.send(conn, P.disconnect(0x8b));
      this.closeConn(conn, 0x8b, "server shutting down", !this.config.willOnShutdown, true);
    }
  }

  // -------------------------------------------------------------------------------------------
  // CONNECT

  private onConnect(conn: Connection, p: ConnectPacket): void {
    conn.version = p.protocolVersion;
    conn.keepAlive = p.keepAlive;
    // [MQTT-3.1.2-1] the protocol name must fit the level; otherwise close without CONNACK.
    const expectedName = p.protocolVersion === 3 ? "MQIsdp" : "MQTT";
    if (p.protocolName !== expectedName) {
      this.observe({ type: "connect-refused", conn: conn.id, clientId: p.clientId, reason: 0x84, message: `protocol name ${p.protocolName}` });
      this.closeConn(conn, 0x84, "wrong protocol name", false, true);
      return;
    }
    let clientId = p.clientId;
    let assigned = false;
    if (clientId.length === 0) {
      // [MQTT-3.1.3-8] empty id with clean session 0 is refused (MQTT 5 assigns one instead);
      // MQTT 3.1 requires an id of at least one character.
      if ((!p.clean && p.protocolVersion !== 5) || p.protocolVersion === 3) {
        this.refuse(conn, p, 0x02, 0x85, "empty client id");
        return;
      }
      // [MQTT-3.1.3-6] assign a unique id and carry on as if the client had sent it.
      clientId = this.assignClientId();
      assigned = true;
    } else if (utf8Length(clientId) > this.config.maxClientIdLength) {
      // [MQTT-3.1.3-9]
      this.refuse(conn, p, 0x02, 0x85, "client id too long");
      return;
    }
    if (p.protocolVersion === 5) {
      // [MQTT-4.12.0-1] enhanced authentication is not supported: any method is refused.
      if (p.properties.authenticationMethod !== undefined) {
        this.refuse(conn, p, 0x05, 0x8c, `unsupported authentication method ${p.properties.authenticationMethod}`);
        return;
      }
      // [MQTT-3.2.2-12] a will above the server's Maximum QoS is refused (0x9B QoS not supported).
      if (p.will !== undefined && p.will.qos > this.config.maxQos) {
        this.refuse(conn, p, 0x05, 0x9b, `will QoS ${p.will.qos} above maximum QoS ${this.config.maxQos}`);
        return;
      }
    }
    // MQTT 3.1 limited client ids to 23 characters; like Mosquitto we accept longer ones
    // (maxClientIdLength is the only bound) since 3.1.1 allows servers to accept more ([MQTT-3.1.3-5]).
    if (this.config.authenticate) {
      conn.state = "authenticating";
      conn.connect = p;
      const op = this.newOp();
      conn.waitingOp = op;
      this.ops.set(op, { kind: "authenticate", conn, connect: p, clientId, assigned });
      this.emit({ type: "authenticate", op, conn: conn.id, connect: p });
      return;
    }
    this.admit(conn, p, clientId, assigned);
  }

  /**
   * An authenticated CONNECT with a will: the will is a PUBLISH the client makes now for later,
   * so the authorize-publish hook is asked for its topic before the connection is accepted, as
   * Mosquitto checks its ACL (otherwise a client refused a topic could still publish there, even
   * retained, by dropping its connection). Refused: CONNACK 0x87 Not authorized (MQTT 5) / 0x05.
   */
  private admit(conn: Connection, p: ConnectPacket, clientId: string, assigned: boolean): void {
    const will = p.will;
    if (!this.config.authorizePublish || will === undefined) {
      this.accept(conn, p, clientId, assigned);
      return;
    }
    conn.state = "authenticating";
    conn.connect = p;
    const op = this.newOp();
    conn.waitingOp = op;
    this.ops.set(op, { kind: "authorize-will", conn, connect: p, clientId, assigned });
    this.emit({ type: "authorize-publish", op, conn: conn.id, clientId, topic: will.topic, qos: will.qos, retain: will.retain });
  }

  private assignClientId(): string {
    let id: string;
    do id = `${this.config.assignedIdPrefix}${++this.assignedCounter}`;
    while (this.sessions.has(id));
    return id;
  }

  /** [MQTT-3.2.2-4] [MQTT-3.2.2-5] [MQTT-3.1.4-5] CONNACK with a non-zero code, session present 0,
   *  then close; nothing the client sent after the CONNECT is processed. */
  private refuse(conn: Connection, p: ConnectPacket, code3: number, code5: number, message: string): void {
    const code = p.protocolVersion === 5 ? code5 : code3;
    this.send(conn, P.connack(false, code, P.NO_PROPERTIES));
    this.observe({ type: "connect-refused", conn: conn.id, clientId: p.clientId, reason: code5, message });
    conn.buffer.length = 0;
    this.closeConn(conn, code5, message, false, true);
  }

  private accept(conn: Connection, p: ConnectPacket, clientId: string, assigned: boolean): void {
    const c = this.config;
    let existing = this.sessions.get(clientId);
    if (existing?.conn !== undefined) {
      // [MQTT-3.1.4-2] takeover: the old connection is closed (abnormally: its will goes out,
      // unless it has a will delay: then this new connection cancels it, below).
      const old = existing.conn;
      if (old.version === 5) this.send(old, P.disconnect(0x8e));
      this.closeConn(old, 0x8e, "session taken over", false, true);
      existing = this.sessions.get(clientId);
    }

    // Session type: 3.x clean session 0 is persistent; MQTT 5 is persistent with an expiry > 0.
    const v5Expiry = p.properties.sessionExpiryInterval ?? 0;
    const persistent = p.protocolVersion === 5 ? v5Expiry > 0 : !p.clean;
    const expiry = p.protocolVersion === 5 ? v5Expiry : c.persistentSessionExpiry;
    let session: Session;
    let sessionPresent = false;
    if (existing !== undefined && p.clean) {
      // [MQTT-3.1.2-6] clean session 1 discards any previous session.
      this.destroySession(existing);
      existing = undefined;
    }
    if (existing !== undefined) {
      // [MQTT-3.1.2-4] [MQTT-3.1.3-2] resume the session of this client id. [MQTT-3.1.3-9] a new
      // connection to the session before the will delay passed: the will is not sent. (Clean
      // Start 1 above ended the session instead, which sends it.)
      existing.pendingWill = undefined;
      session = existing;
      sessionPresent = true; // [MQTT-3.2.2-2]
      // A resumed persistent session stays mirrored in the store; an MQTT 5 expiry of 0 makes it
      // end with this connection (closeConn).
      session.version = p.protocolVersion;
      session.expiryInterval = expiry;
    } else {
      session = new Session(clientId, persistent, p.protocolVersion, expiry, undefined, c.maxInflight, c.queueWindow, c.queueWindowBytes);
      this.sessions.set(clientId, session);
    }
    // [MQTT-3.3.4-9] an MQTT 5 client bounds what may await its acknowledgement.
    session.inflight.max = p.protocolVersion === 5 ? Math.min(c.maxInflight, p.properties.receiveMaximum ?? 65_535) : c.maxInflight;
    // [MQTT-3.2.2-1] [MQTT-3.2.2-3] session present is 0 for clean session 1 or a new session.
    session.conn = conn;
    session.gen = ++this.sessionGen;
    session.disconnectedAt = undefined;
    conn.session = session;
    conn.clientId = clientId;
    conn.state = "connected";
    conn.connect = undefined;
    conn.will = p.will; // [MQTT-3.1.2-8]
    conn.maxPacketSize = p.protocolVersion === 5 ? p.properties.maximumPacketSize : undefined;
    if (session.persistent) this.putSessionMeta(session);
    // [MQTT-3.2.0-1] [MQTT-3.1.4-4] CONNACK 0 is the first packet the client gets.
    const props: Properties = p.protocolVersion === 5 ? this.connackProperties(assigned ? clientId : undefined) : P.NO_PROPERTIES;
    // MQTT 3.1 (level 3) has no session present flag: the byte is reserved.
    this.send(conn, P.connack(sessionPresent && p.protocolVersion !== 3, 0, props));
    this.observe({ type: "client-connected", conn: conn.id, clientId, remote: conn.remote, protocolVersion: p.protocolVersion, clean: p.clean, sessionPresent, keepAlive: p.keepAlive });
    this.armKeepAlive(conn);
    this.resume(session, conn);
  }

  /** [MQTT-4.4.0-1] on reconnect, in-flight PUBLISHes go again with DUP=1 and their packet id,
   *  PUBRELs go again, in seq order; then the queue continues. [MQTT-3.3.4-9] PUBLISHes beyond
   *  the client's Receive Maximum (released messages count too) wait for room (pump). */
  private resume(session: Session, conn: Connection): void {
    const q = session.queue;
    const w = session.inflight;
    w.deferred = undefined;
    let room = w.max;
    for (let i = 0; i < q.inMemory; i++) if (q.at(i)!.state === "released") room--;
    for (let i = 0; i < q.inMemory; i++) {
      const e = q.at(i)!;
      if (e.state === "sent") {
        if (this.tooBig(conn, e.message, e.qos, e.retain, e.subscriptionIds)) {
          // [MQTT-3.1.2-25] this connection's client cannot take it: done, as if acknowledged.
          this.discard(session, e, "too-large");
          i--;
          continue;
        }
        if (room > 0) {
          this.sendPublish(conn, e, true);
          room--;
        } else (w.deferred ??= new Set()).add(e);
      } else if (e.state === "released") this.send(conn, P.pubrel(e.packetId!));
    }
    this.pump(session);
  }

  private putSessionMeta(s: Session): void {
    this.write({
      op: "session-put",
      session: { clientId: s.clientId, protocolVersion: s.version, expiryInterval: s.expiryInterval, disconnectedAt: s.disconnectedAt },
    });
  }

  private destroySession(s: Session): void {
    for (const filter of s.clearSubscriptions()) this.unsubscribe(s, filter);
    this.sessions.delete(s.clientId);
    s.gen = ++this.sessionGen;
    if (s.persistent) this.write({ op: "session-delete", clientId: s.clientId });
    // The session ends before its will's delay: the will goes now ([MQTT-3.1.2-8] 5.0), after
    // the session left every subscription (a shared group must not pick the dying session).
    const will = s.pendingWill;
    s.pendingWill = undefined;
    if (will !== undefined) this.publishWill(s.clientId, will);
  }

  // -------------------------------------------------------------------------------------------
  // Hooks and store answers

  private onAuthed(op: OpId, verdict: AuthVerdict, granted: readonly number[] | undefined): void {
    const rec = this.ops.get(op);
    if (rec === undefined) return;
    switch (rec.kind) {
      case "authenticate":
      case "authorize-will": {
        // The two gates of a CONNECT: the credentials, then (authorize-publish on) its will.
        this.ops.delete(op);
        const conn = rec.conn;
        if (conn.state !== "authenticating" || conn.waitingOp !== op) return;
        conn.waitingOp = undefined;
        const credentials = rec.kind === "authenticate";
        if (verdict.ok) {
          if (credentials) this.admit(conn, rec.connect, rec.clientId, rec.assigned);
          else this.accept(conn, rec.connect, rec.clientId, rec.assigned);
          this.drainBuffer(conn);
        } else {
          // A hook's code is untrusted input: one that CONNACK cannot carry becomes 0x87.
          const given = verdict.reasonCode;
          const code5 = given >= 0x80 && isValidReasonCode("connack", 5, given) ? given : 0x87;
          const code3 = credentials && code5 === 0x86 ? 0x04 : 0x05;
          this.refuse(conn, rec.connect, code3, code5, credentials ? "authentication failed" : "will topic not authorized");
        }
        return;
      }
      case "authorize-publish": {
        this.ops.delete(op);
        const conn = rec.conn;
        if (conn.state !== "connected" || conn.waitingOp !== op) return;
        conn.waitingOp = undefined;
        this.onPublish(conn, rec.packet, verdict.ok ? undefined : verdict.reasonCode);
        this.drainBuffer(conn);
        return;
      }
      case "authorize-subscribe": {
        this.ops.delete(op);
        const conn = rec.conn;
        if (conn.state !== "connected" || conn.waitingOp !== op) return;
        conn.waitingOp = undefined;
        const codes = verdict.ok ? (granted ?? rec.packet.subscriptions.map((s) => s.qos)) : rec.packet.subscriptions.map(() => 0x80);
        this.onSubscribe(conn, rec.packet, codes);
        this.drainBuffer(conn);
        return;
      }
      case "persist":
      case "load":
        return;
      default:
        assertNever(rec);
    }
  }

  private onStored(op: OpId, ok: boolean): void {
    const rec = this.ops.get(op);
    if (rec !== undefined && rec.kind !== "persist") return;
    if (rec !== undefined) this.ops.delete(op);
    if (ok) {
      if (rec === undefined) return;
      if (rec.horizons !== undefined) for (const h of rec.horizons) if (h.seq > h.session.horizon) h.session.horizon = h.seq;
      for (const a of rec.acks) if (a.conn.state === "connected") this.send(a.conn, a.packet);
      return;
    }
    this.observe({ type: "store-failed", op });
    if (rec === undefined) return;
    // Not durable: the publisher gets no ack and is closed, so it resends on reconnect.
    for (const a of rec.acks) this.closeConn(a.conn, 0x80, "store failed", false, true);
  }

  private onLoaded(op: OpId, entries: readonly StoredQueueEntry[]): void {
    const rec = this.ops.get(op);
    if (rec === undefined || rec.kind !== "load") return;
    this.ops.delete(op);
    const s = rec.session;
    if (this.sessions.get(s.clientId) !== s || s.queue.loading !== op) return;
    const q = s.queue;
    const tail = q.memTailSeq;
    const added = q.merge(s.restoredHorizon > tail ? entries.map((e) => (e.seq > tail ? this.maybeSent(s, e) : e)) : entries);
    // In-flight entries beyond the restored head (a head shorter than the in-flight window):
    // their ids stay reserved and they go again now, before anything queued ([MQTT-4.4.0-1]).
    for (let i = q.inMemory - added; i < q.inMemory; i++) {
      const e = q.at(i)!;
      if (e.state === "queued") continue;
      const room = s.inflight.canResend;
      this.claimRestored(s, e);
      if (s.conn === undefined) continue;
      if (e.state === "sent" && this.tooBig(s.conn, e.message, e.qos, e.retain, e.subscriptionIds)) {
        this.discard(s, e, "too-large"); // [MQTT-3.1.2-25]
        i--;
        continue;
      }
      if (e.state === "released") this.send(s.conn, P.pubrel(e.packetId!));
      else if (room) this.sendPublish(s.conn, e, true);
      else (s.inflight.deferred ??= new Set()).add(e);
    }
    this.pump(s);
  }

  // -------------------------------------------------------------------------------------------
  // Timers

  /** MQTT 5 CONNACK properties: the assigned id [MQTT-3.2.2-16], the limits a client must
   *  respect so that it is not cut off without warning (Maximum Packet Size, Maximum QoS), and
   *  the Topic Alias Maximum when aliases are allowed. */
  private connackProperties(assignedId: string | undefined): Properties {
    const c = this.config;
    const aliases = Math.min(Math.floor(c.topicAliasMaximum), 65_535);
    return {
      ...(assignedId !== undefined && { assignedClientIdentifier: assignedId }),
      ...(aliases > 0 && { topicAliasMaximum: aliases }),
      ...(c.maxQos < 2 && { maximumQoS: c.maxQos }),
      ...(c.maxPacketSize < MQTT_MAX_PACKET && { maximumPacketSize: c.maxPacketSize }),
    };
  }

  private armKeepAlive(conn: Connection): void {
    const at = keepAliveDeadline(conn.lastActivity, conn.keepAlive, this.config.keepAliveFactor);
    if (at !== undefined) this.arm({ at, kind: "keep-alive", conn: conn.id, clientId: "", gen: 0 });
  }

  private armExpiry(s: Session): void {
    if (s.expiryInterval === NEVER || s.disconnectedAt === undefined) return;
    this.arm({ at: s.disconnectedAt + s.expiryInterval * 1000, kind: "session-expiry", conn: 0, clientId: s.clientId, gen: s.gen });
  }

  /** Arms a timer. Stale timers stay in the heap until due (lazy deletion), which could be days for
   *  a long keep alive or session expiry: when they outnumber what can be live (two per connection,
   *  one per session), the heap is compacted, so a client that reconnects in a loop cannot grow it. */
  private arm(t: Timer): void {
    this.timers.push(t);
    const size = this.timers.size;
    if (size > 64 && size > 2 * (2 * this.conns.size + this.sessions.size)) this.timers.retain((x) => !this.isStale(x));
  }

  private isStale(t: Timer): boolean {
    switch (t.kind) {
      case "connect-timeout": {
        const c = this.conns.get(t.conn);
        return c === undefined || c.state === "connected";
      }
      case "keep-alive": {
        const c = this.conns.get(t.conn);
        return c === undefined || c.state !== "connected";
      }
      case "session-expiry": {
        const s = this.sessions.get(t.clientId);
        return s === undefined || s.conn !== undefined || s.gen !== t.gen;
      }
      case "will-delay": {
        const s = this.sessions.get(t.clientId);
        return s === undefined || s.gen !== t.gen || s.pendingWill === undefined;
      }
      default:
        return assertNever(t.kind);
    }
  }

  private runTimers(): void {
    const now = this.now;
    for (;;) {
      const t = this.timers.peek();
      if (t === undefined || t.at > now) return;
      this.timers.pop();
      if (this.isStale(t)) continue;
      switch (t.kind) {
        case "connect-timeout": {
          const conn = this.conns.get(t.conn)!;
          this.closeConn(conn, 0x8d, "no CONNECT within connectTimeout", false, true);
          break;
        }
        case "keep-alive": {
          const conn = this.conns.get(t.conn)!;
          const at = keepAliveDeadline(conn.lastActivity, conn.keepAlive, this.config.keepAliveFactor)!;
          // [MQTT-3.1.2-24] silent for 1.5 x keep alive: closed like a network failure (will goes out).
          if (now >= at) this.closeConn(conn, 0x8d, "keep alive timeout", false, true);
          else this.arm({ at, kind: "keep-alive", conn: conn.id, clientId: "", gen: 0 });
          break;
        }
        case "session-expiry": {
          const s = this.sessions.get(t.clientId)!;
          this.destroySession(s);
          this.observe({ type: "session-expired", clientId: s.clientId });
          break;
        }
        case "will-delay": {
          const s = this.sessions.get(t.clientId)!;
          const will = s.pendingWill!;
          s.pendingWill = undefined;
          this.publishWill(s.clientId, will);
          break;
        }
        default:
          assertNever(t.kind);
      }
    }
  }

  // -------------------------------------------------------------------------------------------
  // PUBLISH from a client and the acknowledgements of our PUBLISHes

  /**
   * `refusal`: undefined when the PUBLISH may be routed, else the authorize-publish hook's reason
   * code. Any code is a refusal, 0 included: a hook that says no with a success code is still no.
   */
  private onPublish(conn: Connection, p: PublishPacket, refusal: number | undefined): void {
    const session = conn.session!;
    const clientId = session.clientId;
    this.totals.messagesIn++;
    if (p.qos === 2) {
      const id = p.packetId!;
      const recorded = session.qos2Get(id);
      if (recorded !== undefined) {
        // [MQTT-4.3.3-2] a duplicate before PUBREL is not routed again, only answered with PUBREC.
        const waiting = this.ops.get(recorded);
        if (waiting !== undefined && waiting.kind === "persist") waiting.acks.push({ conn, packet: P.pubrec(id) });
        else this.ackAfterStore(conn, P.pubrec(id));
        return;
      }
    }
    if (refusal !== undefined) {
      // [MQTT-3.3.5-2] not routed. The reason is the hook's code when it is a failure code the
      // ack can carry, else 0x87 Not authorized. MQTT 5 says it in the PUBACK / PUBREC; a PUBREC
      // >= 0x80 ends the QoS 2 flow, so no QoS 2 state is kept for it. 3.1.1 cannot say no: its
      // ack is the normal one (below), and only the event carries the reason.
      const reason = refusal >= 0x80 && isValidReasonCode(p.qos === 2 ? "pubrec" : "puback", 5, refusal) ? refusal : 0x87;
      this.observe({ type: "publish-denied", clientId, topic: p.topic, qos: p.qos, reason });
      if (conn.version === 5 && p.qos > 0) {
        this.ackAfterStore(conn, p.qos === 1 ? P.puback(p.packetId!, reason) : P.pubrec(p.packetId!, reason));
        return;
      }
    }
    if (refusal === undefined) {
      const msg: StoredMessage = {
        id: ++this.lastMessageId,
        topic: p.topic,
        payload: p.payload,
        qos: p.qos,
        retain: p.retain,
        properties: p.properties,
        receivedAt: this.now,
      };
      // Opt-out (config.observePublishes): an action and an event object per PUBLISH otherwise.
      if (this.config.observePublishes) this.observe({ type: "message-published", clientId, topic: p.topic, qos: p.qos, retain: p.retain, bytes: p.payload.length });
      this.publishMessage(msg, clientId);
    }
    // [MQTT-3.3.4-1] answer as the QoS requires, once the effects are durable.
    if (p.qos === 1) {
      this.ackAfterStore(conn, P.puback(p.packetId!)); // [MQTT-4.3.2-2] [MQTT-2.3.1-6]
    } else if (p.qos === 2) {
      const id = p.packetId!;
      if (session.persistent) {
        session.qos2Set(id, this.currentOp());
        this.write({ op: "qos2-put", clientId, packetId: id });
      } else session.qos2Set(id, 0);
      this.ackAfterStore(conn, P.pubrec(id)); // [MQTT-4.3.3-2]
    }
  }

  private onPubrel(conn: Connection, id: number): void {
    const session = conn.session!;
    // [MQTT-4.3.3-2] PUBREL releases the id; PUBCOMP answers also an unknown id.
    if (session.qos2Delete(id) && session.persistent) this.write({ op: "qos2-delete", clientId: session.clientId, packetId: id });
    this.ackAfterStore(conn, P.pubcomp(id));
  }

  private onPuback(conn: Connection, id: number): void {
    const session = conn.session!;
    const e = session.inflight.ids.get(id);
    if (e === undefined || e.qos !== 1) return; // unknown id: nothing to do in 3.1.1
    this.complete(session, id, e);
  }

  private onPubrec(conn: Connection, id: number, reasonCode: number): void {
    const session = conn.session!;
    const e = session.inflight.ids.get(id);
    if (e === undefined || e.qos !== 2) return;
    if (reasonCode >= 0x80 && e.state === "sent") {
      // [MQTT-4.3.3-4] only a PUBREC below 0x80 gets a PUBREL: the client refused the message,
      // which ends its flow (its packet id is free again, [MQTT-4.3.3-9]).
      this.complete(session, id, e);
      return;
    }
    if (e.state === "sent") {
      // [MQTT-4.3.3-1] after PUBREC the message is not sent again, only PUBREL.
      e.state = "released";
      session.inflight.deferred?.delete(e); // received on an earlier connection: no resend now
      if (e.persisted) this.write({ op: "queue-update", clientId: session.clientId, seq: e.seq, state: "released", packetId: id });
    }
    this.send(conn, P.pubrel(id)); // [MQTT-2.3.1-6]
  }

  private onPubcomp(conn: Connection, id: number): void {
    const session = conn.session!;
    const e = session.inflight.ids.get(id);
    if (e === undefined || e.state !== "released") return;
    this.complete(session, id, e);
  }

  private complete(session: Session, id: number, e: QueueEntry): void {
    session.inflight.ids.release(id);
    // A PUBACK for a message sent on an earlier connection whose resend was still deferred.
    session.inflight.deferred?.delete(e);
    session.queue.remove(e);
    if (e.persisted) this.write({ op: "queue-delete", clientId: session.clientId, seq: e.seq });
    this.pump(session);
  }

  // -------------------------------------------------------------------------------------------
  // SUBSCRIBE / UNSUBSCRIBE

  private onSubscribe(conn: Connection, p: SubscribePacket, granted: readonly number[] | undefined): void {
    const session = conn.session!;
    const v5 = conn.version === 5;
    // [MQTT-3.8.3-4] No Local on a shared subscription is a protocol error.
    if (v5 && p.subscriptions.some((x) => x.noLocal && parseShared(x.topicFilter) !== undefined)) {
      this.protocolError(conn, 0x82, "No Local on a shared subscription");
      return;
    }
    const codes: number[] = [];
    const fresh: boolean[] = [];
    // [MQTT-3.8.4-4] [MQTT-3.8.4-5] [MQTT-3.9.3-1] one code per filter, in order.
    for (let i = 0; i < p.subscriptions.length; i++) {
      const sub = p.subscriptions[i]!;
      let code: number = Math.min(sub.qos, this.config.maxQos);
      if (granted !== undefined) {
        // A hook's answer is untrusted input: anything but QoS 0..2 or a SUBACK failure code
        // the version can carry is a plain refusal (0x80; 0x87 not authorised in v5).
        const g = granted[i] ?? 0x80;
        if (g === 0 || g === 1 || g === 2) code = Math.min(code, g);
        else if (v5) code = g > 0x80 && isValidReasonCode("suback", 5, g) ? g : 0x87;
        else code = 0x80;
      }
      codes.push(code);
      if (code >= 0x80) {
        fresh.push(false);
        continue;
      }
      // [MQTT-3.8.4-3] an identical filter replaces the subscription (one remains).
      const existed = session.subscription(sub.topicFilter) !== undefined;
      const ids = p.properties.subscriptionIdentifiers;
      const stored: StoredSubscription = {
        filter: sub.topicFilter,
        qos: code as QoS,
        noLocal: sub.noLocal,
        retainAsPublished: sub.retainAsPublished,
        retainHandling: sub.retainHandling,
        subscriptionId: ids !== undefined && ids.length > 0 ? ids[0] : undefined,
      };
      session.setSubscription(stored);
      this.subscribe(session, stored);
      if (session.persistent) this.write({ op: "subscription-put", clientId: session.clientId, subscription: stored });
      fresh.push(!existed);
    }
    this.send(conn, P.suback(p.packetId, codes)); // [MQTT-3.8.4-1] [MQTT-3.8.4-2] [MQTT-2.3.1-7]
    // [MQTT-3.3.1-6] [MQTT-3.8.4-3] retained messages of every matching topic, after the SUBACK.
    for (let i = 0; i < p.subscriptions.length; i++) {
      const code = codes[i]!;
      if (code >= 0x80) continue;
      const sub = p.subscriptions[i]!;
      if (sub.retainHandling === 2 || (sub.retainHandling === 1 && !fresh[i])) continue;
      // Retained messages go to a new non-shared subscription only (3.3.1.3).
      if (parseShared(sub.topicFilter) !== undefined) continue;
      const stored = session.subscription(sub.topicFilter)!;
      const ids = stored.subscriptionId !== undefined ? [stored.subscriptionId] : NO_IDS;
      let expired: string[] | undefined;
      this.retained.match(sub.topicFilter, (topic, m) => {
        // [MQTT-3.3.2-5] an expired retained message is not delivered (and is deleted below).
        if (this.isExpired(m)) {
          (expired ??= []).push(topic);
          return;
        }
        const qos = Math.min(m.qos, code) as QoS;
        // [MQTT-3.3.1-8] sent because of a new subscription: RETAIN=1.
        this.enqueue(session, m, qos, true, ids, true);
      });
      if (expired !== undefined) {
        for (const topic of expired) if (this.retained.delete(topic)) this.write({ op: "retained-delete", topic });
      }
    }
  }

  private onUnsubscribe(conn: Connection, p: UnsubscribePacket): void {
    const session = conn.session!;
    const codes: number[] = [];
    // [MQTT-3.10.4-1] exact, character by character; [MQTT-3.10.4-6] several filters, one UNSUBACK.
    for (const filter of p.topicFilters) {
      const had = session.deleteSubscription(filter);
      if (had) {
        // [MQTT-3.10.4-2] no new messages for it; [MQTT-3.10.4-3] deliveries already queued finish.
        this.unsubscribe(session, filter);
        if (session.persistent) this.write({ op: "subscription-delete", clientId: session.clientId, filter });
      }
      codes.push(had ? 0x00 : 0x11);
    }
    // [MQTT-3.10.4-4] [MQTT-3.10.4-5] always an UNSUBACK with the same id (3.x carries no codes).
    this.send(conn, P.unsuback(p.packetId, conn.version === 5 ? codes : NO_IDS));
  }

  // -------------------------------------------------------------------------------------------
  // Routing and delivery

  /** Routes an accepted message (from a client or a will) and applies its retain flag. */
  private publishMessage(msg: StoredMessage, publisher: string | undefined): void {
    if (msg.retain) {
      if (msg.payload.length === 0) {
        // [MQTT-3.3.1-10] [MQTT-3.3.1-11] an empty retained message deletes and is never stored.
        if (this.retained.delete(msg.topic)) this.write({ op: "retained-delete", topic: msg.topic });
      } else {
        // [MQTT-3.3.1-5] [MQTT-3.3.1-7] store (replace) the retained message; [MQTT-3.1.2-7]
        // retained messages are not session state.
        this.retained.set(msg.topic, msg);
        this.write({ op: "retained-put", message: msg });
      }
    }
    // [MQTT-3.3.1-12] RETAIN=0 leaves the retained store alone.
    this.route(msg, publisher);
  }

  /** [MQTT-4.5.0-1] add the message to every session with a matching subscription, once per
   *  session at the highest granted QoS ([MQTT-3.3.5-1]). */
  private route(msg: StoredMessage, publisher: string | undefined): void {
    const targets = this.targets;
    const mark = ++this.routeMark;
    this.tree.match(msg.topic, (session, sub) => {
      // No Local and Retain As Published are MQTT 5 options: a session an MQTT 3.x connection
      // resumed has plain subscriptions ([MQTT-4.5.0-1], [MQTT-3.3.1-9]).
      if (sub.noLocal && session.clientId === publisher && session.version === 5) return;
      if (session.routeMark !== mark) {
        session.routeMark = mark;
        session.routeQos = sub.qos;
        session.routeRetainAsPublished = sub.retainAsPublished;
        session.routeIds = sub.subscriptionId !== undefined ? [sub.subscriptionId] : undefined;
        targets[this.targetCount++] = session;
      } else {
        if (sub.qos > session.routeQos) session.routeQos = sub.qos;
        if (sub.retainAsPublished) session.routeRetainAsPublished = true;
        if (sub.subscriptionId !== undefined) (session.routeIds ??= []).push(sub.subscriptionId);
      }
    });
    const n = this.targetCount;
    if (n === 0) {
      this.routeShared(msg, publisher, false);
      return;
    }
    this.targetCount = 0;
    if (n > 1) this.fanOut = true;
    let messagePut = false;
    for (let i = 0; i < n; i++) {
      const session = targets[i]!;
      targets[i] = undefined; // a length counter instead of truncating the array (a runtime call)
      // [MQTT-3.8.4-6] min(publish QoS, granted QoS); [MQTT-3.3.1-9] RETAIN=0 to existing subscriptions.
      const qos = (msg.qos < session.routeQos ? msg.qos : session.routeQos) as QoS;
      const retain = session.routeRetainAsPublished && msg.retain && session.version === 5;
      const ids = session.routeIds ?? NO_IDS;
      session.routeIds = undefined;
      messagePut = this.enqueueEntry(session, msg, qos, retain, ids, messagePut);
    }
    if (n > 1) {
      this.fanOut = false;
      this.q0Message = undefined;
      this.q0Packet = undefined;
    }
    this.routeShared(msg, publisher, messagePut);
  }

  /** One delivery per matching shared group, to the member it picks ([MQTT-4.8.2-3]: with that
   *  member's granted QoS). A separate copy from the member's own non-shared subscriptions. */
  private routeShared(msg: StoredMessage, publisher: string | undefined, messagePut: boolean): void {
    this.shared.match(msg.topic, (session, sub) => {
      if (sub.noLocal && session.clientId === publisher && session.version === 5) return;
      const qos = (msg.qos < sub.qos ? msg.qos : sub.qos) as QoS;
      const ids = sub.subscriptionId !== undefined ? [sub.subscriptionId] : NO_IDS;
      messagePut = this.enqueueEntry(session, msg, qos, sub.retainAsPublished && msg.retain && session.version === 5, ids, messagePut);
    });
  }

  private subscribe(s: Session, sub: StoredSubscription): void {
    if (parseShared(sub.filter) !== undefined) this.shared.add(s, sub);
    else this.tree.add(sub.filter, s, sub);
  }

  private unsubscribe(s: Session, filter: string): void {
    if (parseShared(filter) !== undefined) this.shared.remove(filter, s);
    else this.tree.remove(filter, s);
  }

  /** topic + payload bytes of a message, what queue limits count; computed only when a delivery
   *  is queued, once per message (not per delivery, not for a QoS 0 sent at once). */
  private bytesOf(msg: StoredMessage): number {
    // Keyed by id (unique per message), not by object: storing a number needs no write barrier.
    if (msg.id !== this.bytesId) {
      this.bytesId = msg.id;
      this.bytesVal = messageBytes(msg);
    }
    return this.bytesVal;
  }

  /** Enqueue a retained message sent on subscribe: a persisted copy gets its own message id. */
  private enqueue(s: Session, m: StoredMessage, qos: QoS, retain: boolean, ids: readonly number[], copy: boolean): void {
    const needsStore = s.persistent && (qos > 0 || (this.config.queueQos0 && s.conn === undefined));
    const msg = copy && needsStore ? { ...m, id: ++this.lastMessageId } : m;
    this.enqueueEntry(s, msg, qos, retain, ids, false);
  }

  /**
   * Adds one delivery to a session: sent at once when the session is online with room, else
   * queued (within the limits and the overflow policy). Returns whether `message-put` has been
   * written for `msg`.
   */
  private enqueueEntry(s: Session, msg: StoredMessage, qos: QoS, retain: boolean, ids: readonly number[], messagePut: boolean): boolean {
    const c = this.config;
    const q = s.queue;
    const conn = s.conn;
    if (conn !== undefined && this.tooBig(conn, msg, qos, retain, ids)) {
      // [MQTT-3.1.2-25] never sent, and done as if delivered (QoS 1/2: as if acknowledged).
      this.countDrop(s, msg, qos, "too-large");
      return messagePut;
    }
    let persisted: boolean;
    if (qos === 0) {
      if (conn === undefined) {
        // [MQTT-3.1.2-5] QoS 0 is queued for an offline session only with queueQos0.
        if (!(s.persistent && c.queueQos0)) return messagePut;
        persisted = true;
      } else {
        if (q.firstQueued() < 0 && q.storeOnly === 0) {
          this.sendPublishOf(conn, msg, 0, retain, false, undefined, ids, msg.qos < 2); // [MQTT-4.3.1-1]
          return messagePut;
        }
        // With queueQos0 a persistent session's QoS 0 that has to wait is queued like QoS 1: stored,
        // so that it survives a disconnect and may join a backlog paged out to the store.
        persisted = s.persistent && c.queueQos0;
        if (!persisted && !q.tailInMemory) {
          // The backlog is paged out to the store: QoS 0 may be dropped, never reordered.
          this.countDrop(s, msg, 0, "queue-full");
          return messagePut;
        }
        // else it waits behind queued messages (in memory only without queueQos0), in order
      }
    } else persisted = s.persistent;

    const bytes = this.bytesOf(msg);
    if (bytes > c.maxQueuedBytes) {
      // It could never fit: dropping older messages for it (drop-oldest) would only empty the queue.
      this.countDrop(s, msg, qos, "too-large");
      return messagePut;
    }
    if (q.isFull(c.maxQueuedMessages, c.maxQueuedBytes, bytes)) this.dropExpired(s);
    while (q.isFull(c.maxQueuedMessages, c.maxQueuedBytes, bytes)) {
      const victim = c.overflowPolicy === "drop-oldest" ? q.takeOldestQueued() : undefined;
      if (victim === undefined) {
        this.countDrop(s, msg, qos, "queue-full");
        return messagePut;
      }
      if (victim.persisted) this.deleteQueued(s, victim);
      this.countDrop(s, victim.message, victim.qos, "queue-full");
      // drop-oldest takes its victims from memory: page the older stored ones in (also for an
      // offline session) so that the next overflow finds the oldest there, not the new message.
      this.pageIn(s);
    }
    if (!persisted && !q.tailInMemory) {
      this.countDrop(s, msg, qos, "queue-full");
      return messagePut;
    }

    // Fast path: online, nothing waiting, room in the window: sent at once.
    const sendNow = conn !== undefined && qos > 0 && q.firstQueued() < 0 && q.tailInMemory && s.inflight.hasRoom;
    const entry: QueueEntry = {
      seq: q.nextSeq(),
      message: msg,
      qos,
      retain,
      state: sendNow ? "sent" : "queued",
      packetId: undefined,
      subscriptionIds: ids,
      bytes,
      persisted,
    };
    let unordered = false;
    if (sendNow) {
      const id = s.inflight.ids.allocate(entry, idForSeq(entry.seq))!;
      entry.packetId = id;
      unordered = this.mayGoUnordered(s, entry, id);
    }
    if (persisted) {
      if (!messagePut) {
        this.write({ op: "message-put", message: msg });
        messagePut = true;
      }
      this.write({
        op: "queue-put",
        clientId: s.clientId,
        entry: { seq: entry.seq, qos, retain, state: entry.state, packetId: entry.packetId, subscriptionIds: ids },
        messageId: msg.id,
      });
    }
    q.push(entry);
    if (sendNow) {
      if (persisted && qos === 1) this.extendHorizon(s, entry.seq);
      this.sendPublish(conn, entry, false, unordered);
    } else if (conn !== undefined) this.pump(s);
    return messagePut;
  }

  /** Sends what the window allows, in seq order ([MQTT-4.6.0-5] [MQTT-4.6.0-6]); pages the queue in. */
  private pump(s: Session): void {
    const conn = s.conn;
    if (conn === undefined) return;
    const q = s.queue;
    const w = s.inflight;
    if (w.deferred !== undefined) {
      // Deferred resends first, in seq order, as the window frees up.
      for (let k = 0; k < q.inMemory && w.deferred.size > 0 && w.canResend; k++) {
        const e = q.at(k)!;
        if (!w.deferred.delete(e)) continue;
        if (this.tooBig(conn, e.message, e.qos, e.retain, e.subscriptionIds)) {
          this.discard(s, e, "too-large"); // [MQTT-3.1.2-25]
          k--;
        } else this.sendPublish(conn, e, true);
      }
      if (w.deferred.size > 0) return;
      w.deferred = undefined;
    }
    let i = q.firstQueued();
    while (i >= 0 && i < q.inMemory) {
      const e = q.at(i)!;
      if (e.state !== "queued") {
        i++;
        continue;
      }
      // [MQTT-3.3.2-5] a message whose expiry passed before its onward delivery started is
      // deleted; one already sent is not ([MQTT-4.3.3-7]): only queued entries are checked.
      // [MQTT-3.1.2-25] one too big for this client is done as if delivered.
      const drop = this.isExpired(e.message) ? "expired" : this.tooBig(conn, e.message, e.qos, e.retain, e.subscriptionIds) ? "too-large" : undefined;
      if (drop !== undefined) {
        this.discard(s, e, drop);
        continue;
      }
      if (e.qos === 0) {
        q.removeAt(i);
        if (e.persisted) this.write({ op: "queue-delete", clientId: s.clientId, seq: e.seq });
        // A stored QoS 0 entry (queueQos0) waits for its delete: sent twice after a crash otherwise.
        this.sendPublish(conn, e, false, e.message.qos < 2 && !e.persisted);
        continue;
      }
      if (!s.inflight.hasRoom) break;
      const id = s.inflight.ids.allocate(e, idForSeq(e.seq))!;
      q.markSent(e, id);
      const unordered = this.mayGoUnordered(s, e, id);
      if (e.persisted && !unordered) this.write({ op: "queue-update", clientId: s.clientId, seq: e.seq, state: "sent", packetId: id });
      if (e.persisted && e.qos === 1) this.extendHorizon(s, e.seq);
      this.sendPublish(conn, e, false, unordered);
      i++;
    }
    this.pageIn(s);
  }

  /** Asks the store for the next page of the session's queue when its memory window ran low. */
  private pageIn(s: Session): void {
    const q = s.queue;
    if (!q.needsLoad()) return;
    const op = this.newOp();
    q.loading = op;
    this.ops.set(op, { kind: "load", session: s });
    this.emit({ type: "load", op, clientId: s.clientId, afterSeq: q.memTailSeq, max: q.pageSize() });
  }

  private sendPublish(conn: Connection, e: QueueEntry, dup: boolean, unordered = false): void {
    this.sendPublishOf(conn, e.message, e.qos, e.retain, dup, e.packetId, e.subscriptionIds, unordered);
  }

  /** Whether the first send of `e` on packet id `id` may go before earlier persists are durable.
   *  Never for a message published at QoS 2: until its PUBREC is durable a crash makes the
   *  publisher send it again, and a second routing would deliver it twice (QoS 1 publishers
   *  resend too, but at least once allows the repeat). Otherwise: always for a clean session
   *  (nothing of it survives a crash); for a persistent session only a QoS 1 delivery inside the
   *  durable send horizon on its seq's own id, because a crash then restores it unsent below the
   *  horizon and it goes again with DUP=1 on the same id. Anything else (QoS 2, another id) is
   *  marked "sent" with its id first and waits for that write. */
  private mayGoUnordered(s: Session, e: QueueEntry, id: number): boolean {
    if (e.message.qos === 2) return false;
    if (!e.persisted) return true;
    if (s.orderNext) {
      s.orderNext = false; // see deleteQueued
      return false;
    }
    return e.qos === 1 && e.seq <= s.horizon && id === idForSeq(e.seq);
  }

  /** Keeps a persistent session's send horizon ahead of its QoS 1 sends (config.sendHorizonStep):
   *  written up to `step` beyond the seq being sent when the sends come within step / 2 of it. The
   *  write is not urgent: it rides on the next commit, and while it is not durable the sends past
   *  the old horizon are ordered (marked), which makes the driver commit. */
  private extendHorizon(s: Session, seq: number): void {
    const step = this.config.sendHorizonStep;
    if (step <= 0 || seq + step / 2 <= s.horizonWritten) return;
    // Never past the queue's end: a crash then takes only entries that were queued (a backlog)
    // for possibly sent, not messages that arrive later. With little backlog the sends keep
    // their marks (a live stream waits for its publisher's commit anyway).
    const h = Math.min(seq + step, s.queue.lastSeq);
    if (h < seq + step / 4 || h <= s.horizonWritten) return;
    s.horizonWritten = h;
    this.write({ op: "session-horizon", clientId: s.clientId, seq: h });
    this.horizons.push({ session: s, seq: h });
  }

  /** [MQTT-3.3.1-3] DUP says only whether this send repeats an earlier one of ours;
   *  [MQTT-3.3.2-3] the topic is the message's topic, which matched the subscription. */
  private sendPublishOf(conn: Connection, m: StoredMessage, qos: QoS, retain: boolean, dup: boolean, packetId: number | undefined, ids: readonly number[], unordered = false): void {
    const props = this.publishProperties(conn, m, ids);
    this.totals.messagesOut++;
    let packet: PublishPacket;
    if (qos === 0 && !dup && this.fanOut) {
      // QoS 0 deliveries of one message that differ in nothing share one packet object, so the
      // driver encodes it once per protocol version and copies the bytes. Only in a fan-out:
      // remembering the packet costs a write barrier per message (`this` is long-lived).
      if (m === this.q0Message && retain === this.q0Retain && props === this.q0Packet!.properties) packet = this.q0Packet!;
      else {
        packet = P.publish(m.topic, m.payload, 0, retain, false, undefined, props);
        this.q0Message = m;
        this.q0Retain = retain;
        this.q0Packet = packet;
      }
    } else packet = P.publish(m.topic, m.payload, qos, retain, dup, packetId, props);
    this.send(conn, packet, unordered);
  }

  /** The properties of a PUBLISH of `m` to `conn`: the message's own (MQTT 5 only), with the
   *  matching subscription identifiers and the Message Expiry Interval that is left. */
  private publishProperties(conn: Connection, m: StoredMessage, ids: readonly number[]): Properties {
    if (conn.version !== 5) return P.NO_PROPERTIES;
    const mp = m.properties;
    const interval = mp.messageExpiryInterval;
    // [MQTT-3.3.2-6] the interval received minus the whole seconds the message waited here.
    if (interval === undefined || interval === 0 || this.now - m.receivedAt < 1000) {
      return ids.length > 0 ? { ...mp, subscriptionIdentifiers: ids } : mp;
    }
    const left = Math.max(0, interval - Math.floor((this.now - m.receivedAt) / 1000));
    return ids.length > 0 ? { ...mp, messageExpiryInterval: left, subscriptionIdentifiers: ids } : { ...mp, messageExpiryInterval: left };
  }

  /** [MQTT-3.3.2-5] true once the message's Message Expiry Interval has passed (0 or absent:
   *  never, as in Mosquitto). */
  private isExpired(m: StoredMessage): boolean {
    const interval = m.properties.messageExpiryInterval;
    return interval !== undefined && interval > 0 && this.now - m.receivedAt >= interval * 1000;
  }

  /** [MQTT-3.1.2-25] true when a PUBLISH of `m` would exceed the client's Maximum Packet Size.
   *  Measured only for clients that set one. */
  private tooBig(conn: Connection, m: StoredMessage, qos: QoS, retain: boolean, ids: readonly number[]): boolean {
    const max = conn.maxPacketSize;
    if (max === undefined) return false;
    const packet = P.publish(m.topic, m.payload, qos, retain, false, qos === 0 ? undefined : 1, this.publishProperties(conn, m, ids));
    return encodedLength(packet, conn.version) > max;
  }

  /** [MQTT-3.3.2-5] queued entries in memory whose expiry passed are deleted now, so that a full
   *  queue makes room for live messages before refusing one (only queued ones: [MQTT-4.3.3-7]). */
  private dropExpired(s: Session): void {
    const q = s.queue;
    for (let i = q.firstQueued(); i >= 0 && i < q.inMemory; ) {
      const e = q.at(i)!;
      if (e.state === "queued" && this.isExpired(e.message)) this.discard(s, e, "expired");
      else i++;
    }
  }

  /** Ends a delivery without (further) sending it: an expired queued message, or one too big
   *  for the client (done as if acknowledged). Its packet id is freed; nothing is pumped here. */
  private discard(s: Session, e: QueueEntry, reason: DropReason): void {
    if (e.packetId !== undefined && e.state !== "queued") s.inflight.ids.release(e.packetId);
    s.inflight.deferred?.delete(e);
    s.queue.remove(e);
    if (e.persisted) {
      if (e.state === "queued") this.deleteQueued(s, e);
      else this.write({ op: "queue-delete", clientId: s.clientId, seq: e.seq });
    }
    this.countDrop(s, e.message, e.qos, reason);
  }

  /** Deletes a stored entry that was never sent (expired, too large, overflow). Until that delete
   *  is durable a crash would restore the entry below the send horizon: a QoS 2 or QoS 0 one as
   *  "not sent, and nothing after it was" (maybeSent), a QoS 1 one as possibly sent, ahead of
   *  later messages. So no later QoS 1 message may go unmarked before it: the next one is ordered
   *  and marked, and the ones after it wait behind it on the connection. */
  private deleteQueued(s: Session, e: QueueEntry): void {
    this.write({ op: "queue-delete", clientId: s.clientId, seq: e.seq });
    if (e.seq <= s.horizonWritten) s.orderNext = true;
  }

  private countDrop(s: Session, m: StoredMessage, qos: QoS, reason: DropReason): void {
    s.dropped++;
    this.totals.dropped++;
    if (reason === "queue-full") this.totals.droppedQueueFull++;
    else if (reason === "expired") this.totals.droppedExpired++;
    this.observe({ type: "message-dropped", clientId: s.clientId, topic: m.topic, qos, reason, policy: this.config.overflowPolicy });
  }
}
