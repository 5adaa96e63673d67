// One session's outgoing queue: entries in seq order, each queued, sent (awaiting PUBACK/PUBREC) or
// released (PUBREL sent, awaiting PUBCOMP). Bounded in count and bytes (the overflow policy is the
// caller's), and, for persistent sessions, bounded in memory: besides the entries in flight
// (bounded by the in-flight window), at most `window` queued entries and `windowBytes` bytes of
// them are held, the rest live only in the store and are paged back with `load`.
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

/** Compact the deque once this many slots before the head are dead (and they are at least half
 *  of the array), so removal at the head stays O(1) amortised without holding garbage. */
const COMPACT_AT = 64;

export class SessionQueue {
  /** The in-memory part, a prefix of the whole queue in seq order, as a deque: live entries are
   *  `buf[head .. buf.length)`. Acks almost always complete the oldest entry, so removal at the
   *  head is `head++` (no array shift per PUBACK); removal elsewhere moves the shorter side. */
  private buf: (QueueEntry | undefined)[] = [];
  private head = 0;
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
   *  out in seq order), so the first queued entry is at inMemory - waiting. */
  waiting = 0;
  /** Bytes (QueueEntry.bytes) of the entries held in memory, and of the queued ones among them. */
  memBytes = 0;
  waitingBytes = 0;

  constructor(
    /** Queued entries kept in memory; Infinity for queues that are not backed by a store. */
    public window: number,
    /** Bytes of queued entries kept in memory; Infinity for queues not backed by a store. */
    public windowBytes: number = Infinity,
  ) {}

  /** Entries held in memory. */
  get inMemory(): number {
    return this.buf.length - this.head;
  }

  /** The `i`-th entry in memory (0 is the oldest), or undefined past the end. */
  at(i: number): QueueEntry | undefined {
    return i < 0 ? undefined : this.buf[this.head + i];
  }

  /** The in-memory entries as an array, oldest first. Compacts the deque first, so it costs a copy
   *  only after head removals; for tests and rare paths (not per packet). Do not keep it across
   *  queue changes. */
  get mem(): readonly QueueEntry[] {
    this.compact();
    return this.buf as QueueEntry[];
  }

  private compact(): void {
    if (this.head === 0) return;
    this.buf.splice(0, this.head);
    this.head = 0;
  }

  private append(e: QueueEntry): void {
    this.buf.push(e);
    this.memBytes += e.bytes;
    this.memTailSeq = e.seq;
    if (e.state === "queued") {
      this.waiting++;
      this.waitingBytes += e.bytes;
    }
  }

  /** Entries that live only in the store. */
  get storeOnly(): number {
    return this.count - this.inMemory;
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

  /** True when one more queued entry may enter memory: fewer than `window` queued entries and
   *  fewer than `windowBytes` bytes of them held, so they take at most windowBytes plus one
   *  message (a page asked for below half the window always makes progress). Entries in flight do
   *  not count: they are bounded by the in-flight window, and the queued ones behind them stay in
   *  memory for drop-oldest to find. */
  private get hasRoom(): boolean {
    // With nothing queued in memory there is always room for one: a window of 0 (refused by
    // createBroker's options) must not page forever without making progress.
    return this.waiting === 0 || (this.waiting < this.window && this.waitingBytes < this.windowBytes);
  }

  /** True when a new entry would go to memory (in order and within the window). */
  get tailInMemory(): boolean {
    return this.storeOnly === 0 && this.hasRoom;
  }

  /** Adds an entry of the restored queue head, in seq order, if the memory window has room (an
   *  entry in flight always: it must be resent on reconnect). False: it and the rest of the
   *  head stay in the store, to be paged in. */
  restore(e: QueueEntry): boolean {
    if (e.state === "queued" && !this.hasRoom) return false;
    this.append(e);
    return true;
  }

  /** Appends an entry; returns true when it is held in memory, false when it lives only in the store
   *  (only allowed for persisted entries). */
  push(e: QueueEntry): boolean {
    this.count++;
    this.bytes += e.bytes;
    if (this.storeOnly === 1 && this.hasRoom) {
      // storeOnly was 0 before this push
      this.append(e);
      return true;
    }
    return false;
  }

  /** Index of the first entry in memory that is not in flight, or -1. */
  firstQueued(): number {
    if (this.waiting === 0) return -1;
    const n = this.inMemory;
    const guess = n - this.waiting;
    if (this.at(guess)?.state === "queued" && (guess === 0 || this.at(guess - 1)!.state !== "queued")) return guess;
    for (let i = 0; i < n; i++) if (this.at(i)!.state === "queued") return i; // not expected
    return -1;
  }

  /** A queued entry goes in flight. */
  markSent(e: QueueEntry, packetId: number): void {
    if (e.state === "queued") {
      this.waiting--;
      this.waitingBytes -= e.bytes;
    }
    e.state = "sent";
    e.packetId = packetId;
  }

  /** Removes the entry at index `i` of memory (0 is the oldest). */
  removeAt(i: number): QueueEntry {
    const buf = this.buf;
    const h = this.head;
    const at = h + i;
    const e = buf[at]!;
    const last = buf.length - 1;
    if (at === last) buf.pop();
    else if (i < last - at) {
      // Closer to the head: move the older entries up one slot and advance the head.
      for (let k = at; k > h; k--) buf[k] = buf[k - 1];
      buf[h] = undefined;
      this.head = h + 1;
    } else buf.splice(at, 1);
    if (this.head === buf.length) {
      buf.length = 0;
      this.head = 0;
    } else if (this.head >= COMPACT_AT && this.head * 2 >= buf.length) this.compact();
    this.count--;
    this.bytes -= e.bytes;
    this.memBytes -= e.bytes;
    if (e.state === "queued") {
      this.waiting--;
      this.waitingBytes -= e.bytes;
    }
    return e;
  }

  /** Removes an entry held in memory; searched from the head, where acks land. */
  remove(e: QueueEntry): void {
    const buf = this.buf;
    for (let k = this.head; k < buf.length; k++) {
      if (buf[k] === e) {
        this.removeAt(k - this.head);
        return;
      }
    }
  }

  /** Removes and returns the oldest entry that is not in flight (drop-oldest), if it is in memory. */
  takeOldestQueued(): QueueEntry | undefined {
    const i = this.firstQueued();
    return i < 0 ? undefined : this.removeAt(i);
  }

  /** True when the memory window ran low while more entries wait in the store. */
  needsLoad(): boolean {
    return this.loading === undefined && this.storeOnly > 0 && this.waiting <= this.window / 2 && this.waitingBytes <= this.windowBytes / 2;
  }

  /** How many entries a page may bring: the room left in the window, in entries and (at the
   *  queue's average entry size) in bytes, so that a page of big messages is not read only to be
   *  dropped. */
  pageSize(): number {
    let n = this.window - this.waiting;
    if (this.windowBytes !== Infinity && this.count > 0) {
      const average = Math.max(1, this.bytes / this.count);
      n = Math.min(n, Math.ceil((this.windowBytes - this.waitingBytes) / average));
    }
    return Math.max(1, n);
  }

  /** Merges a page answering `load` (entries after memTailSeq, in seq order); returns how many
   *  entries were added (the last ones in memory). */
  merge(entries: readonly StoredQueueEntry[]): number {
    this.loading = undefined;
    let added = 0;
    for (const s of entries) {
      if (s.seq <= this.memTailSeq) continue; // already held (or removed since)
      if (this.storeOnly === 0) break; // the store gave more than we count: keep our books
      const e = entryFromStored(s);
      if (e.state === "queued" && !this.hasRoom) break; // the rest waits for the next page
      this.append(e);
      added++;
    }
    if (added === 0 && this.storeOnly > 0 && this.hasRoom) {
      // The store has nothing more although our counters say it has: trust the store.
      this.count = this.inMemory;
      let b = 0;
      for (let k = this.head; k < this.buf.length; k++) b += this.buf[k]!.bytes;
      this.bytes = b;
    }
    return added;
  }

  /** Drops every entry held only in memory (volatile QoS 0 on disconnect). Returns them. */
  dropVolatile(): QueueEntry[] {
    const gone: QueueEntry[] = [];
    for (let i = this.inMemory - 1; i >= 0; i--) {
      const e = this.at(i)!;
      if (!e.persisted) gone.push(this.removeAt(i));
    }
    return gone;
  }
}
