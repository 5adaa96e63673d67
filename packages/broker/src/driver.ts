// The driver: owns the event loop around the pure core. Bytes from transports become inputs,
// actions become socket writes, store batches, hook calls and events.
//
// Turns and ordering. Work arrives in "turns" (a data callback, a timer, a store or hook answer).
// During a turn sends are queued per connection and persists are collected into one open batch.
// At the end of the turn (setImmediate, so every socket read in the same poll phase shares it)
// the batch goes to the store as ONE `store.apply` (group commit) and each connection's ready
// sends are encoded into ONE buffer and written with ONE `write`. A connection's own answers to
// what it just sent (ready sends queued to it while its read was processed) are written right
// after that read, so that its peer works while the rest of the turn is processed.
// A send carries a barrier: the number of the last batch holding a persist emitted before it.
// It is written only once every batch up to its barrier has settled, which is api.ts's rule
// "no send on the wire before every earlier persist is durable" (a PUBACK only for a stored
// message, DUP-only repeats after a crash). With the memory store the batch settles on a
// microtask, so those sends still leave in the same tick. An `unordered` send (api.ts) waits only
// for the sends queued before it on its connection.
//
// Lazy commits. The open batch is committed at the end of the turn when something waits for it:
// an urgent persist (the core waits for its `stored`: an acknowledgement hangs on it), an ordered
// send or a `load`. Otherwise (a subscriber's PUBACKs only delete queue entries, which a crash may
// lose: the messages go again with DUP) it stays open for later writes to join, up to
// `lazyCommitMs` or `lazyCommitWrites`, so a draining session pays one commit (one fsync with
// SQLite) per many turns instead of one per turn.
//
// Backpressure. When a connection's write returns false the driver stops reading it (pause)
// and stops writing to it until drain. Meanwhile its sends wait in the driver; once they exceed
// `congestedBudget` bytes QoS 0 PUBLISHes to it are dropped (at most once allows it; counted as
// message-dropped "queue-full"), so a short burst to a healthy reader loses nothing while a stalled
// reader costs a bounded amount of memory. QoS 1/2 deliveries are bounded by
// the core's in-flight window and stay queued in the core's session queue, and acks are bounded
// because the peer's input is paused. `maxPendingBytes` is a last-resort cap: a connection whose
// unsent backlog exceeds it is closed.
//
// Store failure is fail-stop. When an apply fails, the core has already moved on as if the writes
// would become durable (it queued the next PUBLISHes, released PUBRELs, granted subscriptions),
// so its memory is ahead of the store. Nothing it sends from then on can be trusted: a PUBACK or
// SUBACK for a write that was lost, a PUBREL whose queue-update was lost. So the driver stops:
// it writes nothing more, cuts every connection without flushing, feeds the core nothing more and
// reports the failure (onStoreFailure). What clients were acknowledged is durable; what they were
// not, they resend after reconnecting to a broker restored from the store.
import type { Packet, ProtocolVersion } from "@harbormq/codec";
import type { Action, BrokerEvent, BrokerStats, ConnId, Input, Millis, OpId, StoreWrite } from "@harbormq/core";
import type { Hooks, Logger, Verdict } from "./hooks.js";
import type { Duplex, Store } from "./ports.js";

/** The core as the driver sees it (`Broker` of @harbormq/core). */
export interface Core {
  handle(now: Millis, input: Input): void;
  poll(): Action | undefined;
  nextDeadline(): Millis | undefined;
  readonly stats: Readonly<BrokerStats>;
}

/** A decode failure: the MQTT reason code (0x81 malformed, 0x95 too large, ...) and a message. */
export interface DecodeFailure {
  readonly code: number;
  readonly message: string;
}

export interface PacketDecoder {
  push(chunk: Uint8Array): void;
  next(): Packet | DecodeFailure | undefined;
}

/** The codec functions the driver needs (@harbormq/codec), injectable for tests. */
export interface Codec {
  decoder(maxPacketSize: number): PacketDecoder;
  isFailure(item: Packet | DecodeFailure): item is DecodeFailure;
  encodedLength(packet: Packet, version: ProtocolVersion): number;
  encodeInto(packet: Packet, version: ProtocolVersion, target: Uint8Array, offset: number): unknown;
}

/** A monotonic clock comparable across restarts (wall-clock origin + monotonic offset). */
export const monotonicNow = (): Millis => performance.timeOrigin + performance.now();

export interface DriverOptions {
  readonly core: Core;
  readonly codec: Codec;
  readonly store: Store;
  readonly hooks?: Hooks;
  readonly logger?: Logger;
  readonly maxPacketSize: number;
  /** Unsent bytes a congested connection may hold in the driver before QoS 0 messages to it are
   *  dropped. Default 1 MiB. */
  readonly congestedBudget?: number;
  /** Unsent bytes a congested connection may hold in the driver before it is closed. Default 16 MiB. */
  readonly maxPendingBytes?: number;
  readonly clock?: () => Millis;
  /** Longest a batch nothing waits for stays open (ms). Default 20. */
  readonly lazyCommitMs?: number;
  /** Writes after which such a batch is committed anyway. Default 4096. */
  readonly lazyCommitWrites?: number;
  /** While a read is processed, a connection's own answers are written as soon as this many bytes
   *  of them are queued, not only at the end of the read. Default 512; Infinity turns it off. */
  readonly eagerWriteBytes?: number;
  /** Called once when a store write fails. The driver has then stopped (fail-stop): every
   *  connection is cut without flushing, nothing more reaches the core, and the core's memory is
   *  ahead of the store, so the embedder must not restart this driver but restore a new core
   *  from the store (the CLI exits non-zero for its supervisor to restart it). */
  readonly onStoreFailure?: (error: unknown) => void;
}

export interface DriverStats {
  readonly connectionsOpen: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly writes: number;
  readonly storeBatches: number;
  readonly storeWrites: number;
  /** QoS 0 messages dropped because their connection was congested. */
  readonly droppedCongested: number;
  /** Encoded bytes queued in the driver, not yet handed to a transport (all connections). */
  readonly bufferedBytes: number;
}

interface PendingSend {
  readonly packet: Packet;
  readonly version: ProtocolVersion;
  readonly size: number;
  /** The packet already encoded (a packet sent to several connections), else undefined. */
  readonly bytes: Uint8Array | undefined;
  readonly barrier: number;
}

class Connection {
  readonly pending: PendingSend[] = [];
  pendingBytes = 0;
  /** The core asked to close: flush, then close; ignore further input. */
  closeRequested = false;
  closeIssued = false;
  /** The transport reported the end of the stream. */
  ended = false;
  congested = false;
  clientId: string | undefined = undefined;
  constructor(
    readonly id: ConnId,
    readonly duplex: Duplex,
    readonly decoder: PacketDecoder,
    readonly transport: string,
  ) {}
}

const immediate: (fn: () => void) => void =
  typeof setImmediate === "function" ? (fn) => setImmediate(fn) : (fn) => setTimeout(fn, 0);

/** Longest delay setTimeout accepts. */
const maxTimerDelay = 2_147_483_647;

export class Driver {
  private readonly core: Core;
  private readonly codec: Codec;
  private readonly store: Store;
  private readonly hooks: Hooks;
  private readonly logger: Logger;
  private readonly clock: () => Millis;
  private readonly maxPacketSize: number;
  private readonly maxPendingBytes: number;
  private readonly congestedBudget: number;

  private readonly conns = new Map<ConnId, Connection>();
  private nextConnId = 1;
  private readonly dirty = new Set<Connection>();
  /** Connections holding sends that wait for a batch to settle. */
  private readonly blocked = new Set<Connection>();
  private turnScheduled = false;
  private stopped = false;
  /** A store apply failed: the driver has stopped for good (see "Store failure" above). */
  private failed = false;
  private readonly onStoreFailure: ((error: unknown) => void) | undefined;

  // Group commit: the open batch collects persists of this turn; batches settle in order.
  private openBatch = 0;
  private openWrites: StoreWrite[] = [];
  private openOps: OpId[] = [];
  /** Something waits for the open batch: commit it at the end of this turn. */
  private openNeeded = false;
  private lazyTimer: ReturnType<typeof setTimeout> | undefined = undefined;
  private readonly lazyCommitMs: number;
  private readonly lazyCommitWrites: number;
  private readonly eagerWriteBytes: number;
  /** Shutting down: every batch is committed at once. */
  private closing = false;
  private batchCounter = 0;
  private lastIssued = 0;
  private durable = 0;
  /** Ops of batches that became durable ahead of an earlier one. */
  private readonly settledAhead = new Map<number, readonly OpId[]>();
  private readonly applying = new Set<Promise<void>>();
  private pendingAnswers = 0;
  /** `load` actions waiting for the batches emitted before them (in barrier order). */
  private readonly deferredLoads: { readonly barrier: number; readonly action: Extract<Action, { type: "load" }> }[] = [];
  /** Delay before a failed page read is tried again. */
  private readonly loadRetryMs: number = 1000;

  private timer: ReturnType<typeof setTimeout> | undefined;
  private timerAt: Millis | undefined;
  private connectionsEmptied: (() => void) | undefined;

  private statBytesIn = 0;
  private statBytesOut = 0;
  private statWrites = 0;
  private statBatches = 0;
  private statStoreWrites = 0;
  private statDroppedCongested = 0;
  /** The last QoS 0 PUBLISH sized in send, its size and, once a second connection gets the same packet
   *  object (the core shares one QoS 0 PUBLISH across a fan-out), its bytes: sized and encoded
   *  once per (packet, version), copied to each connection. Dropped at the end of the turn. */
  private lastPacket: Packet | undefined = undefined;
  private lastVersion: ProtocolVersion = 4;
  private lastSize = 0;
  private lastBytes: Uint8Array | undefined = undefined;
  private bufferedBytes = 0;

  constructor(options: DriverOptions) {
    this.core = options.core;
    this.codec = options.codec;
    this.store = options.store;
    this.hooks = options.hooks ?? {};
    this.logger = options.logger ?? {};
    this.clock = options.clock ?? monotonicNow;
    this.maxPacketSize = options.maxPacketSize;
    this.maxPendingBytes = options.maxPendingBytes ?? 16 * 1024 * 1024;
    this.congestedBudget = options.congestedBudget ?? 1024 * 1024;
    this.onStoreFailure = options.onStoreFailure;
    this.lazyCommitMs = options.lazyCommitMs ?? 20;
    this.lazyCommitWrites = options.lazyCommitWrites ?? 4096;
    this.eagerWriteBytes = options.eagerWriteBytes ?? 512;
  }

  get stats(): DriverStats {
    return {
      connectionsOpen: this.conns.size,
      bytesIn: this.statBytesIn,
      bytesOut: this.statBytesOut,
      writes: this.statWrites,
      storeBatches: this.statBatches,
      storeWrites: this.statStoreWrites,
      droppedCongested: this.statDroppedCongested,
      bufferedBytes: this.bufferedBytes,
    };
  }

  /** Hands a new stream to the core. `transport` names it in logs. */
  accept(duplex: Duplex, transport = "?"): void {
    if (this.stopped) {
      duplex.close();
      return;
    }
    const conn = new Connection(this.nextConnId++, duplex, this.codec.decoder(this.maxPacketSize), transport);
    this.conns.set(conn.id, conn);
    duplex.onData((chunk) => this.onData(conn, chunk));
    duplex.onClose((error) => this.onClosed(conn, error));
    duplex.onDrain(() => this.onDrain(conn));
    this.feed({ type: "open", conn: conn.id, remote: duplex.remote });
    this.scheduleTurnEnd();
  }

  private onData(conn: Connection, chunk: Uint8Array): void {
    // A connection the core is closing has nothing more to say: after a protocol error the rest
    // of its stream is ignored, so a hostile peer costs nothing more.
    if (conn.closeRequested || conn.ended || this.stopped) return;
    this.statBytesIn += chunk.length;
    const decoder = conn.decoder;
    decoder.push(chunk);
    const now = this.clock();
    let flushedAt = conn.pendingBytes;
    for (;;) {
      const item = decoder.next();
      if (item === undefined) break;
      if (this.codec.isFailure(item)) {
        this.core.handle(now, { type: "malformed", conn: conn.id, reason: item.code, message: item.message });
        this.drain();
        // The stream cannot be resynchronised; whatever the core decided, it ends here.
        if (!conn.closeRequested) this.requestClose(conn);
        break;
      }
      this.core.handle(now, { type: "packet", conn: conn.id, packet: item });
      this.drain();
      if (conn.closeRequested) break;
      if (conn.pendingBytes - flushedAt >= this.eagerWriteBytes) {
        this.flush(conn);
        flushedAt = conn.pendingBytes;
      }
    }
    // This connection's own answers (PUBACKs, a subscriber's next deliveries after its PUBACKs)
    // go now, not at the end of the turn: its peer starts on them while the other connections
    // read in this turn are processed, so broker and clients overlap instead of taking turns.
    // Within a long read they already went out every eagerWriteBytes (above): a subscriber
    // acknowledging a window of 20 in one read gets its next 20 as a few writes, and so its
    // acknowledgements come back in a few reads. Several chunks are then in flight at once
    // instead of one window bouncing between two processes that take turns.
    // Sends to other connections still gather into one write per connection per turn.
    if (conn.pending.length > 0) this.flush(conn); // writes only what no batch holds back
    this.scheduleTurnEnd();
  }

  private onClosed(conn: Connection, error: Error | undefined): void {
    if (conn.ended) return;
    conn.ended = true;
    this.bufferedBytes -= conn.pendingBytes;
    conn.pending.length = 0;
    conn.pendingBytes = 0;
    this.conns.delete(conn.id);
    this.dirty.delete(conn);
    this.blocked.delete(conn);
    if (error !== undefined) this.logger.debug?.("connection error", { conn: conn.id, error: error.message });
    if (!this.stopped) {
      this.feed({ type: "closed", conn: conn.id });
      this.scheduleTurnEnd();
    }
    if (this.conns.size === 0) this.connectionsEmptied?.();
  }

  private onDrain(conn: Connection): void {
    if (conn.ended) return;
    conn.congested = false;
    if (!conn.closeRequested) conn.duplex.resume();
    this.dirty.add(conn);
    this.scheduleTurnEnd();
  }

  /** handle() one input, then drain poll(). */
  private feed(input: Input): void {
    this.core.handle(this.clock(), input);
    this.drain();
  }

  private drain(): void {
    for (let action = this.core.poll(); action !== undefined; action = this.core.poll()) this.execute(action);
  }

  private execute(action: Action): void {
    switch (action.type) {
      case "send":
        this.send(action.conn, action.packet, action.version, action.unordered === true);
        return;
      case "close": {
        const conn = this.conns.get(action.conn);
        if (conn === undefined) return;
        this.logger.debug?.("closing connection", { conn: conn.id, reason: action.reason, message: action.message });
        this.requestClose(conn);
        return;
      }
      case "persist":
        if (this.openBatch === 0) this.openBatch = ++this.batchCounter;
        for (const write of action.writes) this.openWrites.push(write);
        this.openOps.push(action.op);
        if (action.urgent !== false) this.openNeeded = true;
        return;
      case "authenticate": {
        const hook = this.hooks.authenticate;
        const connect = action.connect;
        const remote = this.conns.get(action.conn)?.duplex.remote ?? "";
        this.answer(
          action.op,
          hook === undefined
            ? () => true
            : () => hook({ clientId: connect.clientId, username: connect.username, password: connect.password, remote }),
          (verdict) => ({ type: "authed", op: action.op, verdict: toVerdict(verdict, 0x86), granted: undefined }),
          () => ({ type: "authed", op: action.op, verdict: { ok: false, reasonCode: 0x80 }, granted: undefined }),
        );
        return;
      }
      case "authorize-publish": {
        const hook = this.hooks.authorizePublish;
        const ctx = { clientId: action.clientId, topic: action.topic, qos: action.qos, retain: action.retain };
        this.answer(
          action.op,
          hook === undefined ? () => true : () => hook(ctx),
          (verdict) => ({ type: "authed", op: action.op, verdict: toVerdict(verdict, 0x87), granted: undefined }),
          () => ({ type: "authed", op: action.op, verdict: { ok: false, reasonCode: 0x80 }, granted: undefined }),
        );
        return;
      }
      case "authorize-subscribe": {
        const hook = this.hooks.authorizeSubscribe;
        const subs = action.subscriptions;
        this.answer(
          action.op,
          () =>
            Promise.all(
              subs.map((s) =>
                hook === undefined ? true : hook({ clientId: action.clientId, filter: s.topicFilter, qos: s.qos }),
              ),
            ),
          (answers) => ({
            type: "authed",
            op: action.op,
            verdict: { ok: true },
            // A hook may lower the QoS, never raise it above what was asked.
            granted: answers.map((a, i) =>
              a === true ? subs[i]!.qos : a === false ? 0x80 : a < 0x80 ? Math.min(a, subs[i]!.qos) : a,
            ),
          }),
          () => ({ type: "authed", op: action.op, verdict: { ok: true }, granted: subs.map(() => 0x80) }),
        );
        return;
      }
      case "load": {
        // A page read must see every write the core emitted before asking for it: a load that
        // overtook the open batch would miss entries queued in the same turn, and the core takes
        // a short page as "nothing more in the store". So it waits for those batches.
        const barrier = this.openBatch !== 0 ? this.openBatch : this.lastIssued;
        if (this.openBatch !== 0) this.openNeeded = true;
        if (barrier > this.durable) this.deferredLoads.push({ barrier, action });
        else this.load(action);
        return;
      }
      case "observe":
        this.observe(action.event);
        return;
      default:
        assertNever(action);
    }
  }

  private send(connId: ConnId, packet: Packet, version: ProtocolVersion, unordered: boolean): void {
    const conn = this.conns.get(connId);
    if (conn === undefined || conn.ended || conn.closeIssued) return;
    let size: number;
    let bytes: Uint8Array | undefined;
    if (packet === this.lastPacket && version === this.lastVersion) {
      size = this.lastSize;
      bytes = this.lastBytes;
      if (bytes === undefined) {
        bytes = new Uint8Array(size);
        this.codec.encodeInto(packet, version, bytes, 0);
        this.lastBytes = bytes;
      }
    } else {
      try {
        // Sizing checks everything the encoder checks (reason-code tables, lengths, ...).
        size = this.codec.encodedLength(packet, version);
      } catch (error) {
        // A packet the codec refuses (a core bug, or a hook answer nobody validated) must cost
        // that one connection, never the process.
        this.logger.error?.("cannot encode a packet; closing the connection", { conn: conn.id, packet: packet.type, error: String(error) });
        conn.pending.length = 0;
        this.bufferedBytes -= conn.pendingBytes;
        conn.pendingBytes = 0;
        conn.closeRequested = true;
        conn.closeIssued = true;
        conn.duplex.close();
        return;
      }
      bytes = undefined;
      // Only a QoS 0 PUBLISH is shared across connections (the core builds every other packet
      // per connection); remembering one costs a write barrier, so the others are not.
      if (packet.type === "publish" && packet.qos === 0) {
        this.lastPacket = packet;
        this.lastVersion = version;
        this.lastSize = size;
        this.lastBytes = undefined;
      }
    }
    if (
      conn.congested &&
      packet.type === "publish" &&
      packet.qos === 0 &&
      conn.pendingBytes + size > this.congestedBudget &&
      !conn.closeRequested
    ) {
      // At most once: a subscriber that cannot keep up loses QoS 0 messages, not the broker's memory.
      this.statDroppedCongested++;
      this.observe({
        type: "message-dropped",
        clientId: conn.clientId ?? "",
        topic: packet.topic,
        qos: 0,
        reason: "queue-full",
        policy: "drop-new",
      });
      return;
    }
    let barrier: number;
    if (unordered) {
      // Only behind the sends queued before it on this connection (their barriers never decrease).
      barrier = conn.pending.length > 0 ? conn.pending[conn.pending.length - 1]!.barrier : 0;
    } else if (this.openBatch !== 0) {
      barrier = this.openBatch;
      this.openNeeded = true;
    } else barrier = this.lastIssued;
    conn.pending.push({ packet, version, size, bytes, barrier });
    conn.pendingBytes += size;
    this.bufferedBytes += size;
    this.dirty.add(conn);
    if (barrier > this.durable) this.blocked.add(conn);
    if (conn.pendingBytes > this.maxPendingBytes && conn.congested) {
      this.logger.warn?.("closing a connection that does not read", { conn: conn.id, pendingBytes: conn.pendingBytes });
      this.bufferedBytes -= conn.pendingBytes;
      conn.pending.length = 0;
      conn.pendingBytes = 0;
      this.requestClose(conn);
      conn.closeIssued = true;
      if (conn.duplex.destroy !== undefined) conn.duplex.destroy();
      else conn.duplex.close();
    }
  }

  private requestClose(conn: Connection): void {
    conn.closeRequested = true;
    conn.duplex.pause();
    this.dirty.add(conn);
  }

  /** Reads a page of a session's queue. A failed read is retried, never answered as an empty
   *  page: the core would take that for the end of the queue and forget the rest. */
  private load(action: Extract<Action, { type: "load" }>): void {
    const { op, clientId, afterSeq, max } = action;
    this.pendingAnswers++;
    Promise.resolve()
      .then(() => this.store.load(clientId, afterSeq, max))
      .then(
        (entries) => {
          this.pendingAnswers--;
          if (this.stopped) return;
          this.feed({ type: "loaded", op, entries });
          this.scheduleTurnEnd();
        },
        (error: unknown) => {
          this.pendingAnswers--;
          if (this.stopped) return;
          this.logger.error?.("store load failed; retrying", { op, clientId, error: String(error) });
          const retry = setTimeout(() => {
            if (!this.stopped) this.load(action);
          }, this.loadRetryMs);
          (retry as { unref?: () => void }).unref?.();
        },
      );
  }

  /** Runs a hook or store read off the current turn and feeds its answer (or the fallback). */
  private answer<T>(op: OpId, call: () => T | Promise<T>, toInput: (value: T) => Input, onError: () => Input): void {
    this.pendingAnswers++;
    Promise.resolve()
      .then(call)
      .then(toInput, (error: unknown) => {
        this.logger.error?.("hook or store read failed", { op, error: String(error) });
        return onError();
      })
      .then((input) => {
        this.pendingAnswers--;
        if (this.stopped) return;
        this.feed(input);
        this.scheduleTurnEnd();
      })
      .catch((error: unknown) => {
        // Nothing above should throw (hook answers are validated); if it does, say so rather
        // than leave an unhandled rejection, which ends a Node process.
        this.logger.error?.("handling a hook answer failed", { op, error: String(error) });
      });
  }

  /** Events go to the logger and the hooks; each call is guarded on its own, so one failing
   *  hook (throwing, or an async one rejecting) neither stops the others nor the broker. */
  private observe(event: BrokerEvent): void {
    const hooks = this.hooks;
    this.callHook("onEvent", hooks.onEvent, event);
    switch (event.type) {
      case "client-connected": {
        const conn = this.conns.get(event.conn);
        if (conn !== undefined) conn.clientId = event.clientId;
        this.log("info", "client connected", event);
        this.callHook("onClientConnected", hooks.onClientConnected, event);
        break;
      }
      case "client-disconnected":
        this.log("info", "client disconnected", event);
        this.callHook("onClientDisconnected", hooks.onClientDisconnected, event);
        break;
      case "message-published":
        this.log("debug", "message published", event);
        this.callHook("onMessagePublished", hooks.onMessagePublished, event);
        break;
      case "message-dropped":
        this.log("debug", "message dropped", event);
        this.callHook("onMessageDropped", hooks.onMessageDropped, event);
        break;
      case "connect-refused":
      case "protocol-error":
        this.log("warn", event.type, event);
        break;
      default:
        // Other events (wills, expiries, ...) only go to onEvent and the log.
        this.log("info", event.type, event);
    }
  }

  private log(level: "debug" | "info" | "warn", message: string, event: BrokerEvent): void {
    const write = this.logger[level];
    if (write === undefined) return;
    try {
      write.call(this.logger, message, { ...event });
    } catch {
      // a logger that throws loses its line, nothing else
    }
  }

  private callHook<E extends BrokerEvent>(name: string, hook: ((event: E) => void) | undefined, event: E): void {
    if (hook === undefined) return;
    const failed = (error: unknown): void => {
      try {
        this.logger.error?.("event hook failed", { hook: name, event: event.type, error: String(error) });
      } catch {
        // nothing more to do
      }
    };
    try {
      // typed void, but an async function fits that type: its rejection must not go unhandled
      const result = hook(event) as unknown;
      if (typeof (result as PromiseLike<unknown> | undefined)?.then === "function") (result as PromiseLike<unknown>).then(undefined, failed);
    } catch (error) {
      failed(error);
    }
  }

  private scheduleTurnEnd(): void {
    if (this.turnScheduled) return;
    this.turnScheduled = true;
    immediate(() => {
      this.turnScheduled = false;
      this.endTurn();
    });
  }

  /** Commits the open batch (if something waits for it, or lazily later), writes what is ready,
   *  re-arms the timer. */
  private endTurn(): void {
    if (this.failed) return;
    if (this.openBatch !== 0) {
      if (this.openNeeded || this.closing || this.openWrites.length >= this.lazyCommitWrites) this.commit();
      else if (this.lazyTimer === undefined) {
        this.lazyTimer = setTimeout(() => {
          this.lazyTimer = undefined;
          if (this.failed || this.openBatch === 0) return;
          this.openNeeded = true;
          this.endTurn();
        }, this.lazyCommitMs);
      }
    }
    for (const conn of this.dirty) this.flush(conn);
    this.dirty.clear();
    this.lastPacket = undefined;
    this.lastBytes = undefined;
    this.armTimer();
  }

  private commit(): void {
    const batch = this.openBatch;
    const writes = this.openWrites;
    const ops = this.openOps;
    this.openBatch = 0;
    this.openWrites = [];
    this.openOps = [];
    this.openNeeded = false;
    this.clearLazyTimer();
    this.lastIssued = batch;
    this.statBatches++;
    this.statStoreWrites += writes.length;
    let applied: Promise<void>;
    try {
      applied = this.store.apply(writes);
    } catch (error) {
      applied = Promise.reject(error);
    }
    const settled = applied.then(
      () => this.settle(batch, ops),
      (error: unknown) => this.fail(batch, writes.length, error),
    );
    this.applying.add(settled);
    void settled.finally(() => this.applying.delete(settled));
  }

  private clearLazyTimer(): void {
    if (this.lazyTimer !== undefined) clearTimeout(this.lazyTimer);
    this.lazyTimer = undefined;
  }

  /** Fail-stop after a failed apply (see "Store failure" at the top). */
  private fail(batch: number, writes: number, error: unknown): void {
    if (this.failed) return;
    this.failed = true;
    this.stopped = true;
    this.logger.error?.("store apply failed: stopping; restart from the store", { batch, writes, error: String(error) });
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.clearLazyTimer();
    this.settledAhead.clear();
    this.deferredLoads.length = 0;
    this.dirty.clear();
    this.blocked.clear();
    this.openBatch = 0;
    this.openWrites = [];
    this.openOps = [];
    for (const conn of [...this.conns.values()]) {
      this.bufferedBytes -= conn.pendingBytes;
      conn.pending.length = 0;
      conn.pendingBytes = 0;
      conn.closeRequested = true;
      conn.closeIssued = true;
      if (conn.duplex.destroy !== undefined) conn.duplex.destroy();
      else conn.duplex.close();
    }
    try {
      this.onStoreFailure?.(error);
    } catch (hookError) {
      this.logger.error?.("onStoreFailure threw", { error: String(hookError) });
    }
  }

  /** Batches settle strictly in order; `stored` inputs follow that order. */
  private settle(batch: number, ops: readonly OpId[]): void {
    if (this.failed) return;
    this.settledAhead.set(batch, ops);
    let next = this.settledAhead.get(this.durable + 1);
    while (next !== undefined) {
      this.settledAhead.delete(this.durable + 1);
      this.durable++;
      for (const op of next) this.core.handle(this.clock(), { type: "stored", op, ok: true });
      while (this.deferredLoads.length > 0 && this.deferredLoads[0]!.barrier <= this.durable) this.load(this.deferredLoads.shift()!.action);
      this.drain();
      next = this.settledAhead.get(this.durable + 1);
    }
    // Sends that waited for this batch can go now, in the same tick; persists the answers
    // produced form the next batch right away.
    for (const conn of this.blocked) this.dirty.add(conn);
    this.blocked.clear();
    this.endTurn();
  }

  private flush(conn: Connection): void {
    if (conn.ended) return;
    const pending = conn.pending;
    if (!conn.congested || conn.closeRequested) {
      let ready = 0;
      let bytes = 0;
      while (ready < pending.length && pending[ready]!.barrier <= this.durable) bytes += pending[ready++]!.size;
      if (ready > 0) {
        const buffer = new Uint8Array(bytes);
        let offset = 0;
        for (let i = 0; i < ready; i++) {
          const p = pending[i]!;
          if (p.bytes !== undefined) buffer.set(p.bytes, offset);
          else this.codec.encodeInto(p.packet, p.version, buffer, offset);
          offset += p.size;
        }
        pending.splice(0, ready);
        conn.pendingBytes -= bytes;
        this.bufferedBytes -= bytes;
        this.statBytesOut += bytes;
        this.statWrites++;
        if (!conn.duplex.write(buffer) && !conn.closeRequested) {
          conn.congested = true;
          conn.duplex.pause();
        }
      }
    }
    if (pending.length > 0 && pending[0]!.barrier > this.durable) this.blocked.add(conn);
    if (conn.closeRequested && !conn.closeIssued && pending.length === 0) {
      conn.closeIssued = true;
      conn.duplex.close();
    }
  }

  private armTimer(): void {
    if (this.stopped) return;
    const deadline = this.core.nextDeadline();
    if (deadline === this.timerAt) return;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = deadline;
    if (deadline === undefined) return;
    const delay = Math.min(maxTimerDelay, Math.max(0, Math.ceil(deadline - this.clock())));
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.timerAt = undefined;
      if (this.stopped) return;
      this.feed({ type: "tick" });
      this.endTurn();
    }, delay);
    // The transports keep the process alive while listening; the timer alone should not.
    (this.timer as { unref?: () => void }).unref?.();
  }

  /** Graceful shutdown: the core closes every connection (and may publish wills and persist),
   *  the store gets every pending write, the clients get their last bytes, then the sockets close. */
  async shutdown(timeoutMs = 5000): Promise<void> {
    if (this.stopped) return;
    this.closing = true;
    this.feed({ type: "shutdown" });
    this.endTurn();
    // Hook answers still pending are not awaited (a hook may never answer); store writes are.
    while (this.applying.size > 0 || this.openBatch !== 0) {
      await Promise.allSettled([...this.applying]);
      await new Promise((resolve) => immediate(() => resolve(undefined)));
      this.endTurn();
    }
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    for (const conn of this.conns.values()) {
      if (!conn.closeRequested) this.requestClose(conn);
      this.flush(conn);
    }
    if (this.conns.size > 0) {
      const drained = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), timeoutMs);
        this.connectionsEmptied = () => {
          clearTimeout(timer);
          resolve(true);
        };
      });
      // Peers that did not take their last bytes in time are cut off.
      if (!drained) for (const conn of [...this.conns.values()]) conn.duplex.destroy?.();
    }
  }
}

/** A hook's answer is untrusted: anything but `true`, `false` or a well-formed verdict (an async
 *  hook that forgot to return gives undefined) is a refusal with `refusal`. */
function toVerdict(verdict: Verdict, refusal: number): { readonly ok: true } | { readonly ok: false; readonly reasonCode: number } {
  if (verdict === true) return { ok: true };
  if (typeof verdict === "object" && verdict !== null) {
    if (verdict.ok === true) return { ok: true };
    if (verdict.ok === false) return { ok: false, reasonCode: Number.isInteger(verdict.reasonCode) ? verdict.reasonCode : refusal };
  }
  return { ok: false, reasonCode: refusal };
}

function assertNever(value: never): never {
  throw new Error(`unexpected ${JSON.stringify(value)}`);
}
