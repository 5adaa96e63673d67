// One session's outgoing queue: entries in seq order, each queued, sent (awaiting PUBACK/PUBREC) or
// released (PUBREL sent, awaiting PUBCOMP). Bounded in count and bytes (the overflow policy is the
// caller's), and, for persistent sessions, bounded in memory: at most `window` entries are held,
// the rest live only in the store and are paged back with `load`.
import type { QoS } from "@harbormq/codec";
import type { StoredMessage, StoredQueueEntry } from "./api.js";

export type EntryState = StoredQueueEntry["state"];

export interface QueueEntry {
  readonly seq: number;
  readonly message: StoredMessage;
  readonly qos: QoS;
  readonly retain: boolean;
  state: EntryState;
  packetId: number | undefined;
  readonly subscriptionIds: readonly number[];
  /** topic + payload bytes, what maxQueuedBytes counts. */
  readonly bytes: number;
  /** False for entries that live only in memory (clean sessions, QoS 0 to an online client). */
  readonly persisted: boolean;
}

/** UTF-8 length of a string without allocating. */
export function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

export function messageBytes(m: StoredMessage): number {
  return utf8Length(m.topic) + m.payload.length;
}

export function entryFromStored(e: StoredQueueEntry): QueueEntry {
  return {
    seq: e.seq,
    message: e.message,
    qos: e.qos,
    retain: e.retain,
    state: e.state,
    packetId: e.packetId,
    subscriptionIds: e.subscriptionIds,
    bytes: messageBytes(e.message),
    persisted: true,
  };
}

export class SessionQueue {
  /** The in-memory part: a prefix of the whole queue, in seq order. */
  readonly mem: QueueEntry[] = [];
  /** Whole queue (memory + store only). */
  count = 0;
  bytes = 0;
  /** Highest seq ever assigned. */
  lastSeq = 0;
  /** Highest seq that entered memory (the cursor for paging). */
  memTailSeq = 0;
  /** Outstanding `load` op, if any. */
  loading: number | undefined = undefined;
  /** Entries in memory in state "queued". In-flight entries always precede queued ones (sends go
   *  out in seq order), so the first queued entry is at mem.length - waiting. */
  waiting = 0;

  constructor(
    /** Entries kept in memory; Infinity for queues that are not backed by a store. */
    public window: number,
  ) {}

  /** Entries that live only in the store. */
  get storeOnly(): number {
    return this.count - this.mem.length;
  }

  get isEmpty(): boolean {
    return this.count === 0;
  }

  nextSeq(): number {
    return ++this.lastSeq;
  }

  /** True when taking one more entry of `bytes` would exceed a limit. */
  isFull(maxMessages: number, maxBytes: number, bytes: number): boolean {
    return this.count + 1 > maxMessages || this.bytes + bytes > maxBytes;
  }

  /** True when a new entry would go to memory (in order and within the window). */
  get tailInMemory(): boolean {
    return this.storeOnly === 0 && this.mem.length < this.window;
  }

  /** Adds an entry restored from the store (queue head), in seq order. */
  restore(e: QueueEntry): void {
    this.mem.push(e);
    this.memTailSeq = e.seq;
    if (e.state === "queued") this.waiting++;
  }

  /** Appends an entry; returns true when it is held in memory, false when it lives only in the store
   *  (only allowed for persisted entries). */
  push(e: QueueEntry): boolean {
    this.count++;
    this.bytes += e.bytes;
    if (this.storeOnly === 1 && this.mem.length < this.window) {
      // storeOnly was 0 before this push
      this.mem.push(e);
      this.memTailSeq = e.seq;
      if (e.state === "queued") this.waiting++;
      return true;
    }
    return false;
  }

  /** Index of the first entry in memory that is not in flight, or -1. */
  firstQueued(): number {
    if (this.waiting === 0) return -1;
    const mem = this.mem;
    const guess = mem.length - this.waiting;
    if (mem[guess]?.state === "queued" && (guess === 0 || mem[guess - 1]!.state !== "queued")) return guess;
    for (let i = 0; i < mem.length; i++) if (mem[i]!.state === "queued") return i; // not expected
    return -1;
  }

  /** A queued entry goes in flight. */
  markSent(e: QueueEntry, packetId: number): void {
    if (e.state === "queued") this.waiting--;
    e.state = "sent";
    e.packetId = packetId;
  }

  /** Removes the entry at index `i` of memory. */
  removeAt(i: number): QueueEntry {
    const e = this.mem[i]!;
    this.mem.splice(i, 1);
    this.count--;
    this.bytes -= e.bytes;
    if (e.state === "queued") this.waiting--;
    return e;
  }

  /** Removes an entry held in memory. */
  remove(e: QueueEntry): void {
    const i = this.mem.indexOf(e);
    if (i >= 0) this.removeAt(i);
  }

  /** Removes and returns the oldest entry that is not in flight (drop-oldest), if it is in memory. */
  takeOldestQueued(): QueueEntry | undefined {
    const i = this.firstQueued();
    return i < 0 ? undefined : this.removeAt(i);
  }

  /** True when the memory window ran low while more entries wait in the store. */
  needsLoad(): boolean {
    return this.loading === undefined && this.storeOnly > 0 && this.mem.length <= this.window / 2;
  }

  /** How many entries a page may bring. */
  pageSize(): number {
    return Math.max(1, this.window - this.mem.length);
  }

  /** Merges a page answering `load` (entries after memTailSeq, in seq order); returns how many
   *  entries were added (the last ones of `mem`). */
  merge(entries: readonly StoredQueueEntry[]): number {
    this.loading = undefined;
    let added = 0;
    for (const s of entries) {
      if (s.seq <= this.memTailSeq) continue; // already held (or removed since)
      if (this.storeOnly === 0) break; // the store gave more than we count: keep our books
      this.mem.push(entryFromStored(s));
      this.memTailSeq = s.seq;
      if (s.state === "queued") this.waiting++;
      added++;
    }
    if (added === 0 && this.storeOnly > 0) {
      // The store has nothing more although our counters say it has: trust the store.
      this.count = this.mem.length;
      let b = 0;
      for (const e of this.mem) b += e.bytes;
      this.bytes = b;
    }
    return added;
  }

  /** Drops every entry held only in memory (volatile QoS 0 on disconnect). Returns them. */
  dropVolatile(): QueueEntry[] {
    const gone: QueueEntry[] = [];
    for (let i = this.mem.length - 1; i >= 0; i--) {
      const e = this.mem[i]!;
      if (!e.persisted) gone.push(this.removeAt(i));
    }
    return gone;
  }
}
