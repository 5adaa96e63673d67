// The in-memory Store: every write is "durable" as soon as apply() resolves (on a microtask), and
// everything is lost with the process. The reference behaviour the SQLite store is tested against.
import type {
  MessageId,
  RestoredSession,
  Snapshot,
  StoreWrite,
  StoredMessage,
  StoredQueueEntry,
  StoredSessionMeta,
  StoredSubscription,
} from "@harbormq/core";
import type { Store } from "./ports.js";

interface MessageRecord {
  readonly message: StoredMessage;
  refs: number;
  readonly bytes: number; // payload + topic UTF-8 bytes, counted in queueBytes
}

interface EntryRecord {
  readonly seq: number;
  readonly messageId: MessageId;
  readonly qos: StoredQueueEntry["qos"];
  readonly retain: boolean;
  state: StoredQueueEntry["state"];
  packetId: number | undefined;
  readonly subscriptionIds: readonly number[];
}

/** One session's queue: records in seq order in two parallel arrays (seqs, records) used as a
 *  deque. Seqs only grow, so a put appends and the usual delete (a PUBACK of the oldest entry)
 *  moves the head; a delete elsewhere leaves a hole (compacted once holes are half the array).
 *  Lookups by seq are binary searches; `load` starts at one and walks forward. */
class Queue {
  private seqs: number[] = [];
  private recs: (EntryRecord | undefined)[] = [];
  private head = 0;
  private holes = 0;
  /** Live entries. */
  size = 0;
  bytes = 0;

  get(seq: number): EntryRecord | undefined {
    const i = this.lowerBound(seq);
    return i < this.seqs.length && this.seqs[i] === seq ? this.recs[i] : undefined;
  }

  has(seq: number): boolean {
    return this.get(seq) !== undefined;
  }

  put(entry: EntryRecord, bytes: number): void {
    const n = this.seqs.length;
    if (n === this.head || this.seqs[n - 1]! < entry.seq) {
      this.seqs.push(entry.seq);
      this.recs.push(entry);
    } else {
      // Rare: seqs arrive in order, except when an undo puts back a deleted entry.
      if (this.head > 0 && entry.seq < this.seqs[this.head]!) {
        this.seqs.splice(this.head, 0, entry.seq);
        this.recs.splice(this.head, 0, entry);
      } else {
        const i = this.lowerBound(entry.seq);
        if (i < n && this.seqs[i] === entry.seq) {
          if (this.recs[i] === undefined) this.holes--;
          else this.size--;
          this.recs[i] = entry;
        } else {
          this.seqs.splice(i, 0, entry.seq);
          this.recs.splice(i, 0, entry);
        }
      }
    }
    this.size++;
    this.bytes += bytes;
  }

  /** Removes an entry; the caller adjusts `bytes`. */
  remove(seq: number): void {
    const i = this.lowerBound(seq);
    if (i >= this.seqs.length || this.seqs[i] !== seq || this.recs[i] === undefined) return;
    this.recs[i] = undefined;
    this.size--;
    if (i === this.head) {
      do this.head++;
      while (this.head < this.recs.length && this.recs[this.head] === undefined && this.holes-- > 0);
      if (this.head === this.recs.length) {
        this.seqs = [];
        this.recs = [];
        this.head = 0;
        this.holes = 0;
      } else if (this.head > 1024 && this.head * 2 > this.recs.length) this.compact();
      return;
    }
    this.holes++;
    if (this.holes > 64 && this.holes * 2 > this.recs.length - this.head) this.compact();
  }

  /** Live records in seq order. */
  *values(): IterableIterator<EntryRecord> {
    for (let i = this.head; i < this.recs.length; i++) {
      const r = this.recs[i];
      if (r !== undefined) yield r;
    }
  }

  /** Entries with seq > afterSeq, at most max, in seq order. */
  slice(afterSeq: number, max: number): EntryRecord[] {
    const out: EntryRecord[] = [];
    for (let i = this.upperBound(afterSeq); i < this.recs.length && out.length < max; i++) {
      const r = this.recs[i];
      if (r !== undefined) out.push(r);
    }
    return out;
  }

  private compact(): void {
    const seqs: number[] = [];
    const recs: EntryRecord[] = [];
    for (let i = this.head; i < this.recs.length; i++) {
      const r = this.recs[i];
      if (r !== undefined) {
        seqs.push(this.seqs[i]!);
        recs.push(r);
      }
    }
    this.seqs = seqs;
    this.recs = recs;
    this.head = 0;
    this.holes = 0;
  }

  /** First index >= head with seqs[i] >= seq. */
  private lowerBound(seq: number): number {
    let lo = this.head;
    let hi = this.seqs.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.seqs[mid]! < seq) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** First index >= head with seqs[i] > seq. */
  private upperBound(seq: number): number {
    let lo = this.head;
    let hi = this.seqs.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.seqs[mid]! <= seq) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

interface SessionRecord {
  /** Undefined until a session-put: writes for an unknown client are kept (and deleted by
   *  session-delete) but restore() only returns sessions that have meta. */
  meta: StoredSessionMeta | undefined;
  readonly subscriptions: Map<string, StoredSubscription>;
  readonly qos2: Set<number>;
  readonly queue: Queue;
  lastSeq: number;
  /** Highest seq of a session-horizon write (0 if none); only ever raised. */
  sendHorizon: number;
}

/** UTF-8 length of a string without allocating (lone surrogates count as U+FFFD, 3 bytes). */
export function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n += 4;
        i++;
      } else n += 3;
    } else n += 3;
  }
  return n;
}

function isEmpty(o: object): boolean {
  for (const _ in o) return false;
  return true;
}

const emptyProperties = Object.freeze({});

/** A private copy, so a caller mutating its message (or a Buffer pool being reused) later
 *  cannot change what the store holds; also normalises Buffer to plain Uint8Array. */
function cloneMessage(m: StoredMessage): StoredMessage {
  return {
    id: m.id,
    topic: m.topic,
    payload: Uint8Array.prototype.slice.call(m.payload),
    qos: m.qos,
    retain: m.retain,
    properties: isEmpty(m.properties) ? emptyProperties : structuredClone(m.properties),
    receivedAt: m.receivedAt,
  };
}

const NO_IDS: readonly number[] = Object.freeze([]);

/** A private copy of subscription ids; the empty list (nearly always) is one frozen array. */
function copyIds(ids: readonly number[]): readonly number[] {
  return ids.length === 0 ? NO_IDS : ids.slice();
}

function cloneSubscription(s: StoredSubscription): StoredSubscription {
  return {
    filter: s.filter,
    qos: s.qos,
    noLocal: s.noLocal,
    retainAsPublished: s.retainAsPublished,
    retainHandling: s.retainHandling,
    subscriptionId: s.subscriptionId,
  };
}

function cloneMeta(m: StoredSessionMeta): StoredSessionMeta {
  return {
    clientId: m.clientId,
    protocolVersion: m.protocolVersion,
    expiryInterval: m.expiryInterval,
    disconnectedAt: m.disconnectedAt,
  };
}

export class StoreClosedError extends Error {
  constructor() {
    super("store is closed");
    this.name = "StoreClosedError";
  }
}

/** In-memory Store. Semantics shared with every Store (see test/store-conformance.ts):
 *  - apply is atomic: a batch with an invalid write (a queue-put naming an unknown message or a
 *    seq already present, a message-put reusing a live id) rejects and changes nothing;
 *  - deleting things that are not there (queue-delete, subscription-delete, qos2-delete,
 *    retained-delete, session-delete) and queue-update of a missing entry are no-ops;
 *  - at the end of each apply, a message no queue entry refers to is deleted;
 *  - session-horizon keeps the highest seq written (a lower one is a no-op), survives session-put
 *    and is reset by session-delete;
 *  - reads (restore, load) see every apply called before them, awaited or not. */
export class MemoryStore implements Store {
  private readonly sessions = new Map<string, SessionRecord>();
  private readonly messages = new Map<MessageId, MessageRecord>();
  private readonly retained = new Map<string, StoredMessage>();
  private lastMessageId = 0;
  private closed = false;

  restore(queueWindow: number): Promise<Snapshot> {
    if (this.closed) return Promise.reject(new StoreClosedError());
    const sessions: RestoredSession[] = [];
    for (const clientId of [...this.sessions.keys()].sort()) {
      const s = this.sessions.get(clientId)!;
      if (s.meta === undefined) continue;
      sessions.push({
        meta: cloneMeta(s.meta),
        subscriptions: [...s.subscriptions.keys()].sort().map((f) => cloneSubscription(s.subscriptions.get(f)!)),
        qos2: [...s.qos2].sort((a, b) => a - b),
        queueHead: this.entriesOut(s.queue.slice(0, queueWindow)),
        queueCount: s.queue.size,
        queueBytes: s.queue.bytes,
        lastSeq: s.lastSeq,
        sendHorizon: s.sendHorizon,
      });
    }
    const retained = [...this.retained.keys()].sort().map((t) => cloneMessage(this.retained.get(t)!));
    return Promise.resolve({ sessions, retained, lastMessageId: this.lastMessageId });
  }

  load(clientId: string, afterSeq: number, max: number): Promise<readonly StoredQueueEntry[]> {
    if (this.closed) return Promise.reject(new StoreClosedError());
    const s = this.sessions.get(clientId);
    if (s === undefined || max <= 0) return Promise.resolve([]);
    return Promise.resolve(this.entriesOut(s.queue.slice(afterSeq, max)));
  }

  apply(writes: readonly StoreWrite[]): Promise<void> {
    if (this.closed) return Promise.reject(new StoreClosedError());
    const touched: MessageId[] = [];
    if (this.cannotFail(writes)) {
      // The common case: nothing in the batch can be refused, so no undo log (a closure per write).
      for (const w of writes) this.applyOne(w, undefined, touched);
    } else {
      const undo: (() => void)[] = [];
      const lastMessageId = this.lastMessageId;
      try {
        for (const w of writes) this.applyOne(w, undo, touched);
      } catch (error) {
        for (let i = undo.length - 1; i >= 0; i--) undo[i]!();
        this.lastMessageId = lastMessageId;
        return Promise.reject(error);
      }
    }
    for (const id of touched) {
      const rec = this.messages.get(id);
      if (rec !== undefined && rec.refs <= 0) this.messages.delete(id);
    }
    return Promise.resolve();
  }

  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }

  // -------------------------------------------------------------------------------------------

  /** True when no write of the batch can throw (see applyOne): message-put of a new id, queue-put
   *  naming a message present or put earlier in the batch, on a seq the session does not hold
   *  and above the session's earlier puts of this batch. Conservative: deletes earlier in the
   *  batch can only free seqs, and messages are only deleted after the batch. */
  private cannotFail(writes: readonly StoreWrite[]): boolean {
    let putIds: Set<MessageId> | undefined;
    let lastSeqs: Map<string, number> | undefined;
    for (const w of writes) {
      if (w.op === "message-put") {
        const id = w.message.id;
        if (this.messages.has(id) || putIds?.has(id) === true) return false;
        (putIds ??= new Set()).add(id);
      } else if (w.op === "queue-put") {
        if (!this.messages.has(w.messageId) && putIds?.has(w.messageId) !== true) return false;
        const seq = w.entry.seq;
        if (this.sessions.get(w.clientId)?.queue.has(seq) === true) return false;
        const last = lastSeqs?.get(w.clientId);
        if (last !== undefined && seq <= last) return false;
        (lastSeqs ??= new Map()).set(w.clientId, seq);
      }
    }
    return true;
  }

  private entriesOut(records: readonly EntryRecord[]): StoredQueueEntry[] {
    const copies = new Map<MessageId, StoredMessage>(); // one copy per message per read
    return records.map((e) => {
      let message = copies.get(e.messageId);
      if (message === undefined) {
        message = cloneMessage(this.messages.get(e.messageId)!.message);
        copies.set(e.messageId, message);
      }
      return {
        seq: e.seq,
        message,
        qos: e.qos,
        retain: e.retain,
        state: e.state,
        packetId: e.packetId,
        subscriptionIds: copyIds(e.subscriptionIds),
      };
    });
  }

  private session(clientId: string, undo: (() => void)[] | undefined): SessionRecord {
    let s = this.sessions.get(clientId);
    if (s === undefined) {
      s = { meta: undefined, subscriptions: new Map(), qos2: new Set(), queue: new Queue(), lastSeq: 0, sendHorizon: 0 };
      this.sessions.set(clientId, s);
      undo?.push(() => this.sessions.delete(clientId));
    }
    return s;
  }

  private unref(messageId: MessageId, touched: MessageId[], undo: (() => void)[] | undefined): void {
    const rec = this.messages.get(messageId)!;
    rec.refs--;
    touched.push(messageId);
    undo?.push(() => rec.refs++);
  }

  /** Applies one write; `undo` (when given) collects how to revert it, for a batch that may fail. */
  private applyOne(w: StoreWrite, undo: (() => void)[] | undefined, touched: MessageId[]): void {
    switch (w.op) {
      case "session-put": {
        const s = this.session(w.session.clientId, undo);
        const before = s.meta;
        s.meta = cloneMeta(w.session);
        undo?.push(() => (s.meta = before));
        return;
      }
      case "session-delete": {
        const s = this.sessions.get(w.clientId);
        if (s === undefined) return;
        for (const e of s.queue.values()) this.unref(e.messageId, touched, undo);
        this.sessions.delete(w.clientId);
        undo?.push(() => this.sessions.set(w.clientId, s));
        return;
      }
      case "subscription-put": {
        const s = this.session(w.clientId, undo);
        const filter = w.subscription.filter;
        const before = s.subscriptions.get(filter);
        s.subscriptions.set(filter, cloneSubscription(w.subscription));
        undo?.push(() => (before === undefined ? s.subscriptions.delete(filter) : s.subscriptions.set(filter, before)));
        return;
      }
      case "subscription-delete": {
        const s = this.sessions.get(w.clientId);
        const before = s?.subscriptions.get(w.filter);
        if (s === undefined || before === undefined) return;
        s.subscriptions.delete(w.filter);
        undo?.push(() => s.subscriptions.set(w.filter, before));
        return;
      }
      case "message-put": {
        const id = w.message.id;
        if (this.messages.has(id)) throw new Error(`message-put: message ${id} already exists`);
        const message = cloneMessage(w.message);
        this.messages.set(id, { message, refs: 0, bytes: message.payload.length + utf8Length(message.topic) });
        touched.push(id);
        undo?.push(() => this.messages.delete(id));
        if (id > this.lastMessageId) this.lastMessageId = id;
        return;
      }
      case "queue-put": {
        const rec = this.messages.get(w.messageId);
        if (rec === undefined) throw new Error(`queue-put: unknown message ${w.messageId} for ${w.clientId}`);
        const s = this.session(w.clientId, undo);
        const seq = w.entry.seq;
        if (s.queue.has(seq)) throw new Error(`queue-put: ${w.clientId} already has seq ${seq}`);
        s.queue.put(
          {
            seq,
            messageId: w.messageId,
            qos: w.entry.qos,
            retain: w.entry.retain,
            state: w.entry.state,
            packetId: w.entry.packetId,
            subscriptionIds: copyIds(w.entry.subscriptionIds),
          },
          rec.bytes,
        );
        rec.refs++;
        const lastSeq = s.lastSeq;
        if (seq > lastSeq) s.lastSeq = seq;
        undo?.push(() => {
          s.queue.remove(seq);
          s.queue.bytes -= rec.bytes;
          rec.refs--;
          s.lastSeq = lastSeq;
        });
        return;
      }
      case "queue-update": {
        const e = this.sessions.get(w.clientId)?.queue.get(w.seq);
        if (e === undefined) return;
        const { state, packetId } = e;
        e.state = w.state;
        e.packetId = w.packetId;
        undo?.push(() => {
          e.state = state;
          e.packetId = packetId;
        });
        return;
      }
      case "queue-delete": {
        const s = this.sessions.get(w.clientId);
        const e = s?.queue.get(w.seq);
        if (s === undefined || e === undefined) return;
        const bytes = this.messages.get(e.messageId)!.bytes;
        s.queue.remove(w.seq);
        s.queue.bytes -= bytes;
        this.unref(e.messageId, touched, undo);
        undo?.push(() => s.queue.put(e, bytes));
        return;
      }
      case "session-horizon": {
        // A session-put replacing meta leaves it alone; only session-delete resets it.
        const s = this.session(w.clientId, undo);
        const before = s.sendHorizon;
        if (w.seq <= before) return;
        s.sendHorizon = w.seq;
        undo?.push(() => (s.sendHorizon = before));
        return;
      }
      case "qos2-put": {
        const s = this.session(w.clientId, undo);
        if (s.qos2.has(w.packetId)) return;
        s.qos2.add(w.packetId);
        undo?.push(() => s.qos2.delete(w.packetId));
        return;
      }
      case "qos2-delete": {
        const s = this.sessions.get(w.clientId);
        if (s === undefined || !s.qos2.delete(w.packetId)) return;
        undo?.push(() => s.qos2.add(w.packetId));
        return;
      }
      case "retained-put": {
        const topic = w.message.topic;
        const before = this.retained.get(topic);
        this.retained.set(topic, cloneMessage(w.message));
        undo?.push(() => (before === undefined ? this.retained.delete(topic) : this.retained.set(topic, before)));
        if (w.message.id > this.lastMessageId) this.lastMessageId = w.message.id;
        return;
      }
      case "retained-delete": {
        const before = this.retained.get(w.topic);
        if (before === undefined) return;
        this.retained.delete(w.topic);
        undo?.push(() => this.retained.set(w.topic, before));
        return;
      }
      default:
        return assertNever(w);
    }
  }
}

function assertNever(x: never): never {
  throw new Error(`unknown store write: ${JSON.stringify(x)}`);
}
