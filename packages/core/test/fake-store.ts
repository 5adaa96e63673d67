// A store in maps for core tests: applies `persist` batches, answers `load`, and builds the
// Snapshot a restarted broker starts from. `snapshotOf` is the reusable part (what a real store's
// restore() must return for the same writes).
import type {
  MessageId,
  Snapshot,
  StoredMessage,
  StoredQueueEntry,
  StoredSessionMeta,
  StoredSubscription,
  StoreWrite,
} from "@harbormq/core";

type EntryRow = Omit<StoredQueueEntry, "message"> & { readonly messageId: MessageId };

export interface StoreState {
  readonly sessions: Map<string, StoredSessionMeta>;
  readonly subscriptions: Map<string, Map<string, StoredSubscription>>;
  readonly queues: Map<string, Map<number, EntryRow>>;
  readonly lastSeq: Map<string, number>;
  readonly horizons: Map<string, number>;
  readonly qos2: Map<string, Set<number>>;
  readonly messages: Map<MessageId, StoredMessage>;
  readonly retained: Map<string, StoredMessage>;
  lastMessageId: number;
}

export function emptyStoreState(): StoreState {
  return {
    sessions: new Map(),
    subscriptions: new Map(),
    queues: new Map(),
    lastSeq: new Map(),
    horizons: new Map(),
    qos2: new Map(),
    messages: new Map(),
    retained: new Map(),
    lastMessageId: 0,
  };
}

function getOr<K, V>(m: Map<K, V>, k: K, make: () => V): V {
  let v = m.get(k);
  if (v === undefined) m.set(k, (v = make()));
  return v;
}

/** Applies one batch; throws on writes that break the core's contract (so tests see core bugs). */
export function applyWrites(s: StoreState, writes: readonly StoreWrite[]): void {
  for (const w of writes) {
    switch (w.op) {
      case "session-put":
        s.sessions.set(w.session.clientId, w.session);
        break;
      case "session-delete":
        s.sessions.delete(w.clientId);
        s.subscriptions.delete(w.clientId);
        s.queues.delete(w.clientId);
        s.lastSeq.delete(w.clientId);
        s.horizons.delete(w.clientId);
        s.qos2.delete(w.clientId);
        break;
      case "session-horizon":
        requireSession(s, w.clientId, w.op);
        if (w.seq > (s.horizons.get(w.clientId) ?? 0)) s.horizons.set(w.clientId, w.seq);
        break;
      case "subscription-put":
        requireSession(s, w.clientId, w.op);
        getOr(s.subscriptions, w.clientId, () => new Map()).set(w.subscription.filter, w.subscription);
        break;
      case "subscription-delete":
        s.subscriptions.get(w.clientId)?.delete(w.filter);
        break;
      case "message-put":
        s.messages.set(w.message.id, w.message);
        if (w.message.id > s.lastMessageId) s.lastMessageId = w.message.id;
        break;
      case "queue-put": {
        requireSession(s, w.clientId, w.op);
        if (!s.messages.has(w.messageId)) throw new Error(`queue-put refers to unknown message ${w.messageId}`);
        const q = getOr(s.queues, w.clientId, () => new Map());
        if (q.has(w.entry.seq)) throw new Error(`queue-put reuses seq ${w.entry.seq} of ${w.clientId}`);
        if (w.entry.seq <= (s.lastSeq.get(w.clientId) ?? 0)) throw new Error(`queue-put seq ${w.entry.seq} not increasing for ${w.clientId}`);
        q.set(w.entry.seq, { ...w.entry, messageId: w.messageId });
        s.lastSeq.set(w.clientId, w.entry.seq);
        break;
      }
      case "queue-update": {
        const q = s.queues.get(w.clientId);
        const e = q?.get(w.seq);
        if (q === undefined || e === undefined) throw new Error(`queue-update of missing entry ${w.clientId}#${w.seq}`);
        q.set(w.seq, { ...e, state: w.state, packetId: w.packetId });
        break;
      }
      case "queue-delete":
        s.queues.get(w.clientId)?.delete(w.seq);
        break;
      case "qos2-put":
        requireSession(s, w.clientId, w.op);
        getOr(s.qos2, w.clientId, () => new Set()).add(w.packetId);
        break;
      case "qos2-delete":
        s.qos2.get(w.clientId)?.delete(w.packetId);
        break;
      case "retained-put":
        s.retained.set(w.message.topic, w.message);
        if (w.message.id > s.lastMessageId) s.lastMessageId = w.message.id;
        break;
      case "retained-delete":
        s.retained.delete(w.topic);
        break;
      default: {
        const never: never = w;
        throw new Error(`unknown write ${JSON.stringify(never)}`);
      }
    }
  }
}

function requireSession(s: StoreState, clientId: string, op: string): void {
  if (!s.sessions.has(clientId)) throw new Error(`${op} for unknown session ${clientId}`);
}

function toEntry(s: StoreState, row: EntryRow): StoredQueueEntry {
  const message = s.messages.get(row.messageId);
  if (message === undefined) throw new Error(`entry refers to missing message ${row.messageId}`);
  const { messageId: _id, ...rest } = row;
  return { ...rest, message };
}

function messageBytes(m: StoredMessage): number {
  return new TextEncoder().encode(m.topic).length + m.payload.length;
}

/** Entries of a session with seq > afterSeq, in seq order, at most `max`. */
export function loadPage(s: StoreState, clientId: string, afterSeq: number, max: number): StoredQueueEntry[] {
  const q = s.queues.get(clientId);
  if (q === undefined) return [];
  return [...q.values()]
    .filter((e) => e.seq > afterSeq)
    .sort((a, b) => a.seq - b.seq)
    .slice(0, max)
    .map((e) => toEntry(s, e));
}

/** The Snapshot a broker restarts from: queue heads of at most `window` entries. */
export function snapshotOf(s: StoreState, window: number): Snapshot {
  const sessions = [...s.sessions.values()].map((meta) => {
    const rows = [...(s.queues.get(meta.clientId)?.values() ?? [])].sort((a, b) => a.seq - b.seq);
    let bytes = 0;
    for (const r of rows) bytes += messageBytes(s.messages.get(r.messageId)!);
    return {
      meta,
      subscriptions: [...(s.subscriptions.get(meta.clientId)?.values() ?? [])],
      qos2: [...(s.qos2.get(meta.clientId) ?? [])],
      queueHead: rows.slice(0, window).map((r) => toEntry(s, r)),
      queueCount: rows.length,
      queueBytes: bytes,
      lastSeq: s.lastSeq.get(meta.clientId) ?? 0,
      sendHorizon: s.horizons.get(meta.clientId) ?? 0,
    };
  });
  return { sessions, retained: [...s.retained.values()], lastMessageId: s.lastMessageId };
}
