// The Store contract, run by every Store adapter (like aedes-persistence's abstract.js):
// `storeConformance("memory", async () => ({ store: new MemoryStore() }))`. A durable store also
// passes `reopen` (close, open the same data again) and gets the restart tests.
//
// Semantics every store shares, beyond the doc comments of ports.ts and core/api.ts:
// - apply is atomic per call: a batch with an invalid write (queue-put naming an unknown message
//   or an existing seq, message-put reusing a live id) rejects and leaves nothing behind, and
//   other apply calls (even ones committed in the same group commit) are unaffected;
// - deleting what is not there, and queue-update of a missing entry, are no-ops;
// - at the end of each apply, a message no queue entry refers to is deleted (its id is not
//   reused: lastMessageId stays);
// - writes for a client without session-put are kept but only sessions with meta are restored;
// - session-horizon keeps the highest seq written for the client; session-put leaves it alone,
//   session-delete resets it to 0;
// - restore lists sessions by client id, subscriptions by filter, qos2 ascending, retained by topic;
// - reads (restore, load) see every apply called before them, awaited or not.
import fc from "fast-check";
import { afterEach, describe, expect, it } from "vitest";
import type {
  Snapshot,
  StoreWrite,
  StoredMessage,
  StoredQueueEntry,
  StoredSessionMeta,
  StoredSubscription,
} from "@harbormq/core";
import type { Store } from "../src/ports.js";

export interface OpenedStore {
  readonly store: Store;
  /** For durable stores: close `store`, open the same data again, return the new store. */
  readonly reopen?: () => Promise<Store>;
}

export interface ConformanceOptions {
  /** fast-check runs of the model-based test (each opens a fresh store). */
  readonly numRuns?: number;
}

// ---------------------------------------------------------------------------------------------
// Builders

export function message(id: number, topic = `t/${id}`, payload: readonly number[] = [id & 0xff], extra: Partial<StoredMessage> = {}): StoredMessage {
  return { id, topic, payload: new Uint8Array(payload), qos: 1, retain: false, properties: {}, receivedAt: 1000 + id, ...extra };
}

export function meta(clientId: string, extra: Partial<StoredSessionMeta> = {}): StoredSessionMeta {
  return { clientId, protocolVersion: 4, expiryInterval: 0xffffffff, disconnectedAt: undefined, ...extra };
}

export function sub(filter: string, qos: 0 | 1 | 2 = 1, extra: Partial<StoredSubscription> = {}): StoredSubscription {
  return { filter, qos, noLocal: false, retainAsPublished: false, retainHandling: 0, subscriptionId: undefined, ...extra };
}

type EntryFields = Omit<StoredQueueEntry, "message">;

export function queuePut(clientId: string, seq: number, messageId: number, extra: Partial<EntryFields> = {}): StoreWrite {
  return {
    op: "queue-put",
    clientId,
    messageId,
    entry: { seq, qos: 1, retain: false, state: "queued", packetId: undefined, subscriptionIds: [], ...extra },
  };
}

const sessionPut = (clientId: string, extra: Partial<StoredSessionMeta> = {}): StoreWrite => ({ op: "session-put", session: meta(clientId, extra) });
const horizon = (clientId: string, seq: number): StoreWrite => ({ op: "session-horizon", clientId, seq });
const messagePut = (m: StoredMessage): StoreWrite => ({ op: "message-put", message: m });

/** Plain data for toEqual: Buffer and Uint8Array payloads compare by content. */
function plain<T>(value: T): unknown {
  if (value instanceof Uint8Array) return { bytes: Array.from(value) };
  if (Array.isArray(value)) return value.map(plain);
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = plain(v);
    return out;
  }
  return value;
}

function utf8Bytes(s: string): number {
  return new TextEncoder().encode(s).length;
}

async function loadAll(store: Store, clientId: string, page = 3): Promise<StoredQueueEntry[]> {
  const out: StoredQueueEntry[] = [];
  let after = 0;
  for (;;) {
    const batch = await store.load(clientId, after, page);
    if (batch.length === 0) return out;
    expect(batch.length).toBeLessThanOrEqual(page);
    out.push(...batch);
    after = batch[batch.length - 1]!.seq;
  }
}

const seqs = (entries: readonly StoredQueueEntry[]): number[] => entries.map((e) => e.seq);

function session(snap: Snapshot, clientId: string) {
  return snap.sessions.find((s) => s.meta.clientId === clientId);
}

// ---------------------------------------------------------------------------------------------

export function storeConformance(name: string, open: () => Promise<OpenedStore>, options: ConformanceOptions = {}): void {
  describe(`Store conformance: ${name}`, () => {
    let current: Store | undefined;
    let opened: OpenedStore | undefined;
    const fresh = async (): Promise<Store> => {
      opened = await open();
      current = opened.store;
      return current;
    };
    const reopen = async (): Promise<Store> => {
      current = await opened!.reopen!();
      return current;
    };
    afterEach(async () => {
      await current?.close().catch(() => undefined);
      current = undefined;
    });

    describe("sessions", () => {
      it("restores an empty snapshot from an empty store", async () => {
        const store = await fresh();
        expect(await store.restore(10)).toEqual({ sessions: [], retained: [], lastMessageId: 0 });
      });

      it("session-put stores meta and replaces it; sessions are listed by client id", async () => {
        const store = await fresh();
        await store.apply([sessionPut("b"), sessionPut("a", { protocolVersion: 5, expiryInterval: 60 })]);
        await store.apply([sessionPut("b", { disconnectedAt: 12345, expiryInterval: 7 })]);
        const snap = await store.restore(10);
        expect(snap.sessions.map((s) => s.meta)).toEqual([
          meta("a", { protocolVersion: 5, expiryInterval: 60 }),
          meta("b", { disconnectedAt: 12345, expiryInterval: 7 }),
        ]);
        expect(session(snap, "a")).toEqual({ meta: meta("a", { protocolVersion: 5, expiryInterval: 60 }), subscriptions: [], qos2: [], queueHead: [], queueCount: 0, queueBytes: 0, lastSeq: 0, sendHorizon: 0 });
      });

      it("restores many sessions, each with its own state", async () => {
        const store = await fresh();
        const writes: StoreWrite[] = [messagePut(message(1))];
        for (let i = 0; i < 500; i++) {
          const id = `client-${String(i).padStart(4, "0")}`;
          writes.push(sessionPut(id, { expiryInterval: i }), { op: "subscription-put", clientId: id, subscription: sub(`t/${i}`) }, queuePut(id, i + 1, 1));
          if (i % 2) writes.push({ op: "qos2-put", clientId: id, packetId: i });
        }
        await store.apply(writes);
        const snap = await store.restore(5);
        expect(snap.sessions.length).toBe(500);
        snap.sessions.forEach((s, i) => {
          expect(s.meta.expiryInterval).toBe(i);
          expect(s.subscriptions.map((x) => x.filter)).toEqual([`t/${i}`]);
          expect(s.qos2).toEqual(i % 2 ? [i] : []);
          expect(seqs(s.queueHead)).toEqual([i + 1]);
          expect(s.lastSeq).toBe(i + 1);
        });
      });

      it("keeps client ids with any characters apart", async () => {
        const store = await fresh();
        const ids = ["", "é", "a b", "a/b", "a'b", "\u{1F600}", "x".repeat(300)];
        await store.apply(ids.map((id) => sessionPut(id)));
        const snap = await store.restore(10);
        expect(snap.sessions.map((s) => s.meta.clientId).sort()).toEqual([...ids].sort());
      });

      it("session-delete removes the session and everything it owns, and nothing else", async () => {
        const store = await fresh();
        await store.apply([
          sessionPut("a"),
          sessionPut("b"),
          { op: "subscription-put", clientId: "a", subscription: sub("x/#") },
          { op: "subscription-put", clientId: "b", subscription: sub("y/#") },
          { op: "qos2-put", clientId: "a", packetId: 7 },
          { op: "qos2-put", clientId: "b", packetId: 8 },
          messagePut(message(1)),
          messagePut(message(2)),
          queuePut("a", 1, 1),
          queuePut("a", 2, 2),
          queuePut("b", 1, 2),
        ]);
        await store.apply([{ op: "session-delete", clientId: "a" }]);
        const snap = await store.restore(10);
        expect(snap.sessions.map((s) => s.meta.clientId)).toEqual(["b"]);
        expect(await store.load("a", 0, 10)).toEqual([]);
        expect(seqs(await store.load("b", 0, 10))).toEqual([1]);
        expect(session(snap, "b")!.subscriptions).toEqual([sub("y/#")]);
        expect(session(snap, "b")!.qos2).toEqual([8]);
        // message 1 was only in a's queue: gone; message 2 is still referenced by b
        await expect(store.apply([queuePut("b", 2, 1)])).rejects.toThrow();
        await store.apply([queuePut("b", 2, 2)]);
        // a session created again under the same id starts empty, lastSeq 0
        await store.apply([sessionPut("a")]);
        expect(session(await store.restore(10), "a")).toEqual({ meta: meta("a"), subscriptions: [], qos2: [], queueHead: [], queueCount: 0, queueBytes: 0, lastSeq: 0, sendHorizon: 0 });
      });

      it("session-delete of an unknown session is a no-op", async () => {
        const store = await fresh();
        await store.apply([{ op: "session-delete", clientId: "nobody" }]);
        expect(await store.restore(10)).toEqual({ sessions: [], retained: [], lastMessageId: 0 });
      });

      it("restores only sessions with meta; session-delete also removes writes made without one", async () => {
        const store = await fresh();
        await store.apply([
          { op: "subscription-put", clientId: "ghost", subscription: sub("g") },
          messagePut(message(1)),
          queuePut("ghost", 1, 1),
        ]);
        expect((await store.restore(10)).sessions).toEqual([]);
        expect(seqs(await store.load("ghost", 0, 10))).toEqual([1]);
        await store.apply([sessionPut("ghost")]);
        expect(session(await store.restore(10), "ghost")!.subscriptions).toEqual([sub("g")]);
        await store.apply([{ op: "session-delete", clientId: "ghost" }]);
        expect(await store.load("ghost", 0, 10)).toEqual([]);
        await store.apply([sessionPut("ghost")]);
        expect(session(await store.restore(10), "ghost")!.subscriptions).toEqual([]);
      });
    });

    describe("send horizon", () => {
      it("session-horizon is restored as sendHorizon, 0 when never written", async () => {
        const store = await fresh();
        await store.apply([sessionPut("a"), sessionPut("b"), horizon("a", 7)]);
        const snap = await store.restore(10);
        expect(session(snap, "a")!.sendHorizon).toBe(7);
        expect(session(snap, "b")!.sendHorizon).toBe(0);
      });

      it("keeps the highest seq written: a lower one, in the same call or a later one, changes nothing", async () => {
        const store = await fresh();
        await store.apply([sessionPut("a"), horizon("a", 5), horizon("a", 9), horizon("a", 6)]);
        expect(session(await store.restore(10), "a")!.sendHorizon).toBe(9);
        await store.apply([horizon("a", 3)]);
        await store.apply([horizon("a", 9)]);
        expect(session(await store.restore(10), "a")!.sendHorizon).toBe(9);
        await store.apply([horizon("a", 12)]);
        expect(session(await store.restore(10), "a")!.sendHorizon).toBe(12);
      });

      it("is independent of the queue: lastSeq, entries and their deletes do not move it", async () => {
        const store = await fresh();
        await store.apply([sessionPut("a"), messagePut(message(1)), queuePut("a", 1, 1), queuePut("a", 2, 1), queuePut("a", 3, 1), horizon("a", 2)]);
        // a drain as the core writes it: PUBACK deletes interleaved with horizon raises
        await store.apply([{ op: "queue-delete", clientId: "a", seq: 1 }, horizon("a", 3), { op: "queue-delete", clientId: "a", seq: 2 }, { op: "queue-delete", clientId: "a", seq: 3 }]);
        const a = session(await store.restore(10), "a")!;
        expect(a).toMatchObject({ queueCount: 0, lastSeq: 3, sendHorizon: 3 });
        expect(await store.load("a", 0, 10)).toEqual([]);
      });

      it("session-put on an existing session keeps it", async () => {
        const store = await fresh();
        await store.apply([sessionPut("a"), horizon("a", 4)]);
        await store.apply([sessionPut("a", { expiryInterval: 5, disconnectedAt: 77 })]);
        expect(session(await store.restore(10), "a")).toMatchObject({ meta: meta("a", { expiryInterval: 5, disconnectedAt: 77 }), sendHorizon: 4 });
        await store.apply([horizon("a", 6), sessionPut("a", { protocolVersion: 5 })]);
        expect(session(await store.restore(10), "a")).toMatchObject({ meta: meta("a", { protocolVersion: 5 }), sendHorizon: 6 });
      });

      it("session-delete resets it: a session created again starts from 0", async () => {
        const store = await fresh();
        await store.apply([sessionPut("a"), sessionPut("b"), horizon("a", 8), horizon("b", 2)]);
        await store.apply([{ op: "session-delete", clientId: "a" }]);
        await store.apply([sessionPut("a")]);
        let snap = await store.restore(10);
        expect(session(snap, "a")!.sendHorizon).toBe(0);
        expect(session(snap, "b")!.sendHorizon).toBe(2);
        // in one call: raised, deleted, created again, raised to less than before
        await store.apply([horizon("a", 9), { op: "session-delete", clientId: "a" }, sessionPut("a"), horizon("a", 1)]);
        snap = await store.restore(10);
        expect(session(snap, "a")!.sendHorizon).toBe(1);
        await store.apply([horizon("b", 5), { op: "session-delete", clientId: "b" }, sessionPut("b")]);
        expect(session(await store.restore(10), "b")!.sendHorizon).toBe(0);
      });

      it("a horizon for a client without session-put is kept but not restored until a session-put", async () => {
        const store = await fresh();
        await store.apply([horizon("ghost", 11)]);
        expect((await store.restore(10)).sessions).toEqual([]);
        await store.apply([horizon("ghost", 4), sessionPut("ghost")]);
        expect(session(await store.restore(10), "ghost")).toEqual({ meta: meta("ghost"), subscriptions: [], qos2: [], queueHead: [], queueCount: 0, queueBytes: 0, lastSeq: 0, sendHorizon: 11 });
        // and a session-delete of the ghost removes it too
        await store.apply([horizon("ghost2", 3), { op: "session-delete", clientId: "ghost2" }, sessionPut("ghost2")]);
        expect(session(await store.restore(10), "ghost2")!.sendHorizon).toBe(0);
      });

      it("a call with a horizon write and an invalid write changes nothing, neighbours unaffected", async () => {
        const store = await fresh();
        await store.apply([sessionPut("a"), sessionPut("b"), horizon("a", 2)]);
        const before = plain(await store.restore(10));
        await expect(store.apply([horizon("a", 50), horizon("c", 5), sessionPut("c"), queuePut("a", 1, 999)])).rejects.toThrow();
        expect(plain(await store.restore(10))).toEqual(before);
        // the same in one group commit, between valid calls raising the same and other horizons
        const p1 = store.apply([horizon("a", 4)]);
        const bad = store.apply([horizon("a", 40), horizon("b", 40), { op: "session-delete", clientId: "a" }, queuePut("b", 1, 999)]);
        const p3 = store.apply([horizon("b", 3), horizon("a", 3)]);
        await expect(bad).rejects.toThrow();
        await p1;
        await p3;
        const snap = await store.restore(10);
        expect(snap.sessions.map((s) => [s.meta.clientId, s.sendHorizon])).toEqual([["a", 4], ["b", 3]]);
      });
    });

    describe("subscriptions", () => {
      it("subscription-put stores, replaces by filter, subscription-delete removes; listed by filter", async () => {
        const store = await fresh();
        const full = sub("b/+", 2, { noLocal: true, retainAsPublished: true, retainHandling: 2, subscriptionId: 268_435_455 });
        await store.apply([sessionPut("c"), { op: "subscription-put", clientId: "c", subscription: sub("z") }, { op: "subscription-put", clientId: "c", subscription: full }, { op: "subscription-put", clientId: "c", subscription: sub("a/#", 0) }]);
        await store.apply([{ op: "subscription-put", clientId: "c", subscription: sub("z", 2, { retainHandling: 1 }) }]);
        expect(session(await store.restore(10), "c")!.subscriptions).toEqual([sub("a/#", 0), full, sub("z", 2, { retainHandling: 1 })]);
        await store.apply([{ op: "subscription-delete", clientId: "c", filter: "b/+" }, { op: "subscription-delete", clientId: "c", filter: "not-there" }, { op: "subscription-delete", clientId: "nobody", filter: "z" }]);
        expect(session(await store.restore(10), "c")!.subscriptions).toEqual([sub("a/#", 0), sub("z", 2, { retainHandling: 1 })]);
      });

      it("keeps each session's subscriptions apart", async () => {
        const store = await fresh();
        await store.apply([sessionPut("a"), sessionPut("b"), { op: "subscription-put", clientId: "a", subscription: sub("same", 0) }, { op: "subscription-put", clientId: "b", subscription: sub("same", 2) }]);
        await store.apply([{ op: "subscription-delete", clientId: "a", filter: "same" }]);
        const snap = await store.restore(10);
        expect(session(snap, "a")!.subscriptions).toEqual([]);
        expect(session(snap, "b")!.subscriptions).toEqual([sub("same", 2)]);
      });
    });

    describe("QoS 2 receive state", () => {
      // The storage half of the QoS 2 receiver rule (3.1.1 [MQTT-4.3.3-2]): ids awaiting PUBREL.
      it("qos2-put / qos2-delete keep the packet ids awaiting PUBREL, ascending", async () => {
        const store = await fresh();
        await store.apply([sessionPut("c"), { op: "qos2-put", clientId: "c", packetId: 65535 }, { op: "qos2-put", clientId: "c", packetId: 1 }, { op: "qos2-put", clientId: "c", packetId: 300 }]);
        await store.apply([{ op: "qos2-put", clientId: "c", packetId: 300 }]); // idempotent
        expect(session(await store.restore(10), "c")!.qos2).toEqual([1, 300, 65535]);
        await store.apply([{ op: "qos2-delete", clientId: "c", packetId: 300 }, { op: "qos2-delete", clientId: "c", packetId: 2 }, { op: "qos2-delete", clientId: "x", packetId: 1 }]);
        expect(session(await store.restore(10), "c")!.qos2).toEqual([1, 65535]);
      });
    });

    describe("messages and queues", () => {
      it("round-trips every field of a message and of a queue entry", async () => {
        const store = await fresh();
        const m = message(42, "dév/ü/\u{1F600}", [0, 255, 1, 2], {
          qos: 2,
          retain: true,
          receivedAt: 1_700_000_000_123,
          properties: {
            payloadFormatIndicator: 1,
            messageExpiryInterval: 3600,
            contentType: "application/json",
            responseTopic: "reply/here",
            correlationData: new Uint8Array([9, 8, 7]),
            userProperties: [["k", "v"], ["k", "v2"], ["é", ""]],
          },
        });
        await store.apply([sessionPut("c"), messagePut(m), queuePut("c", 5, 42, { qos: 2, retain: true, state: "sent", packetId: 65535, subscriptionIds: [3, 1, 268_435_455] })]);
        const [e] = await store.load("c", 0, 10);
        expect(plain(e)).toEqual(plain({ seq: 5, message: m, qos: 2, retain: true, state: "sent", packetId: 65535, subscriptionIds: [3, 1, 268_435_455] }));
        expect(e!.message.payload).toBeInstanceOf(Uint8Array);
      });

      it("round-trips an empty payload and an empty topic-free properties object", async () => {
        const store = await fresh();
        await store.apply([sessionPut("c"), messagePut(message(1, "t", [])), queuePut("c", 1, 1, { qos: 0 })]);
        const [e] = await store.load("c", 0, 1);
        expect(e!.message.payload.length).toBe(0);
        expect(e!.message.properties).toEqual({});
        expect(e!.qos).toBe(0);
      });

      it("round-trips a 1 MiB payload and every byte value", async () => {
        const store = await fresh();
        const big = Array.from({ length: 1 << 20 }, (_, i) => (i * 7 + (i >> 8)) & 0xff);
        await store.apply([sessionPut("c"), messagePut(message(1, "big", big)), queuePut("c", 1, 1), { op: "retained-put", message: message(2, "big/r", big) }]);
        const [e] = await store.load("c", 0, 1);
        expect(e!.message.payload.length).toBe(1 << 20);
        expect(Buffer.compare(Buffer.from(e!.message.payload), Buffer.from(big))).toBe(0);
        const snap = await store.restore(1);
        expect(Buffer.compare(Buffer.from(snap.retained[0]!.payload), Buffer.from(big))).toBe(0);
        expect(snap.sessions[0]!.queueBytes).toBe((1 << 20) + 3);
      });

      it("stores a message routed to many sessions once and deletes it with its last entry", async () => {
        const store = await fresh();
        const clients = ["a", "b", "c"];
        await store.apply([...clients.map((c) => sessionPut(c)), messagePut(message(1, "shared", [1, 2, 3])), ...clients.map((c) => queuePut(c, 1, 1))]);
        for (const c of clients) expect(plain((await store.load(c, 0, 1))[0]!.message)).toEqual(plain(message(1, "shared", [1, 2, 3])));
        await store.apply([{ op: "queue-delete", clientId: "a", seq: 1 }]);
        await store.apply([{ op: "queue-delete", clientId: "b", seq: 1 }]);
        // still referenced by c: a new entry may refer to it
        await store.apply([queuePut("a", 2, 1)]);
        await store.apply([{ op: "queue-delete", clientId: "a", seq: 2 }, { op: "queue-delete", clientId: "c", seq: 1 }]);
        // no entry refers to it any more: deleted
        await expect(store.apply([queuePut("a", 3, 1)])).rejects.toThrow();
        expect((await store.restore(10)).lastMessageId).toBe(1);
      });

      it("keeps a message whose refcount drops to zero and rises again within one apply", async () => {
        const store = await fresh();
        await store.apply([sessionPut("a"), messagePut(message(1)), queuePut("a", 1, 1)]);
        await store.apply([{ op: "queue-delete", clientId: "a", seq: 1 }, queuePut("a", 2, 1)]);
        expect(seqs(await store.load("a", 0, 10))).toEqual([2]);
        expect((await store.load("a", 0, 10))[0]!.message.id).toBe(1);
      });

      it("drops a message-put no queue entry refers to at the end of its apply", async () => {
        const store = await fresh();
        await store.apply([sessionPut("a"), messagePut(message(5))]);
        await expect(store.apply([queuePut("a", 1, 5)])).rejects.toThrow();
        expect((await store.restore(10)).lastMessageId).toBe(5);
      });

      it("rejects a message-put reusing the id of a live message", async () => {
        const store = await fresh();
        await store.apply([sessionPut("a"), messagePut(message(1)), queuePut("a", 1, 1)]);
        await expect(store.apply([messagePut(message(1, "other"))])).rejects.toThrow();
        expect((await store.load("a", 0, 1))[0]!.message.topic).toBe("t/1");
      });

      it("rejects a queue-put reusing a seq of the session", async () => {
        const store = await fresh();
        await store.apply([sessionPut("a"), messagePut(message(1)), queuePut("a", 1, 1)]);
        await expect(store.apply([messagePut(message(2)), queuePut("a", 1, 2)])).rejects.toThrow();
        expect((await store.load("a", 0, 10)).map((e) => e.message.id)).toEqual([1]);
      });

      it("queue-update changes state and packet id; a missing entry is a no-op", async () => {
        const store = await fresh();
        await store.apply([sessionPut("a"), messagePut(message(1)), queuePut("a", 1, 1, { qos: 2 }), queuePut("a", 2, 1)]);
        await store.apply([{ op: "queue-update", clientId: "a", seq: 1, state: "sent", packetId: 10 }]);
        expect((await store.load("a", 0, 1))[0]).toMatchObject({ seq: 1, state: "sent", packetId: 10, qos: 2 });
        await store.apply([{ op: "queue-update", clientId: "a", seq: 1, state: "released", packetId: 10 }, { op: "queue-update", clientId: "a", seq: 99, state: "sent", packetId: 1 }, { op: "queue-update", clientId: "zz", seq: 1, state: "sent", packetId: 1 }]);
        expect((await store.load("a", 0, 10)).map((e) => [e.seq, e.state, e.packetId])).toEqual([[1, "released", 10], [2, "queued", undefined]]);
        await store.apply([{ op: "queue-update", clientId: "a", seq: 1, state: "queued", packetId: undefined }]);
        expect((await store.load("a", 0, 1))[0]).toMatchObject({ state: "queued", packetId: undefined });
        expect(await store.load("zz", 0, 10)).toEqual([]);
      });

      it("load pages a queue in seq order after any seq", async () => {
        const store = await fresh();
        const writes: StoreWrite[] = [sessionPut("a"), sessionPut("b")];
        for (let i = 1; i <= 20; i++) writes.push(messagePut(message(i)), queuePut("a", i * 2, i), queuePut("b", i, i));
        await store.apply(writes);
        expect(seqs(await loadAll(store, "a", 3))).toEqual(Array.from({ length: 20 }, (_, i) => (i + 1) * 2));
        expect(seqs(await store.load("a", 7, 3))).toEqual([8, 10, 12]);
        expect(seqs(await store.load("a", 8, 2))).toEqual([10, 12]);
        expect(seqs(await store.load("a", 40, 5))).toEqual([]);
        expect(seqs(await store.load("a", 0, 0))).toEqual([]);
        expect(seqs(await store.load("a", 30, Infinity))).toEqual([32, 34, 36, 38, 40]);
        expect(seqs(session(await store.restore(Infinity), "b")!.queueHead)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
        expect((await store.load("a", 0, 20)).map((e) => e.message.id)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
        expect(seqs(await loadAll(store, "b", 7))).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
        await store.apply([{ op: "queue-delete", clientId: "a", seq: 10 }, { op: "queue-delete", clientId: "a", seq: 2 }]);
        expect(seqs(await store.load("a", 0, 4))).toEqual([4, 6, 8, 12]);
        expect(seqs(await store.load("nobody", 0, 4))).toEqual([]);
      });

      it("load returns the caller a copy: mutating it, or the written message, changes nothing stored", async () => {
        const store = await fresh();
        const m = message(1, "t", [1, 2, 3], { properties: { userProperties: [["a", "b"]], correlationData: new Uint8Array([5]) } });
        const payload = m.payload as Uint8Array;
        const subscriptionIds = [4];
        await store.apply([sessionPut("a"), messagePut(m), queuePut("a", 1, 1, { subscriptionIds })]);
        payload[0] = 99;
        subscriptionIds.push(5);
        (m.properties.correlationData as Uint8Array)[0] = 99;
        const [e] = await store.load("a", 0, 1);
        expect(Array.from(e!.message.payload)).toEqual([1, 2, 3]);
        expect(Array.from(e!.message.properties.correlationData!)).toEqual([5]);
        expect(e!.subscriptionIds).toEqual([4]);
        (e!.message.payload as Uint8Array)[1] = 99;
        (e!.subscriptionIds as number[]).push(6);
        const [again] = await store.load("a", 0, 1);
        expect(Array.from(again!.message.payload)).toEqual([1, 2, 3]);
        expect(again!.subscriptionIds).toEqual([4]);
      });
    });

    describe("restore", () => {
      it("returns queue heads of at most the window, with totals of the whole queue", async () => {
        const store = await fresh();
        const writes: StoreWrite[] = [sessionPut("a"), sessionPut("b"), sessionPut("empty")];
        let bytes = 0;
        for (let i = 1; i <= 10; i++) {
          const m = message(i, i % 2 ? "topic/é" : "t", Array.from({ length: i }, () => i));
          bytes += m.payload.length + utf8Bytes(m.topic);
          writes.push(messagePut(m), queuePut("a", i, i));
        }
        writes.push(queuePut("b", 3, 1), queuePut("b", 9, 2));
        await store.apply(writes);
        for (const window of [0, 1, 4, 10, 1000]) {
          const a = session(await store.restore(window), "a")!;
          expect(seqs(a.queueHead)).toEqual(Array.from({ length: Math.min(window, 10) }, (_, i) => i + 1));
          expect([a.queueCount, a.queueBytes, a.lastSeq]).toEqual([10, bytes, 10]);
        }
        const snap = await store.restore(1);
        expect(session(snap, "b")).toMatchObject({ queueCount: 2, queueBytes: 1 + 9 + 1 + 1, lastSeq: 9 });
        expect(seqs(session(snap, "b")!.queueHead)).toEqual([3]);
        expect(session(snap, "empty")).toMatchObject({ queueHead: [], queueCount: 0, queueBytes: 0, lastSeq: 0, sendHorizon: 0 });
        expect(snap.lastMessageId).toBe(10);
      });

      it("counts in-flight and released entries in the totals", async () => {
        const store = await fresh();
        await store.apply([sessionPut("a"), messagePut(message(1, "ab", [1, 2])), queuePut("a", 1, 1, { state: "sent", packetId: 1 }), queuePut("a", 2, 1, { state: "released", packetId: 2, qos: 2 }), queuePut("a", 3, 1)]);
        expect(session(await store.restore(10), "a")).toMatchObject({ queueCount: 3, queueBytes: 12, lastSeq: 3 });
      });

      it("lastSeq is the highest seq ever used and lastMessageId the highest id ever used, deleted or not", async () => {
        const store = await fresh();
        await store.apply([sessionPut("a"), messagePut(message(7)), queuePut("a", 1, 7), queuePut("a", 9, 7), messagePut(message(3)), queuePut("a", 4, 3)]);
        await store.apply([{ op: "queue-delete", clientId: "a", seq: 9 }, { op: "queue-delete", clientId: "a", seq: 1 }]);
        let snap = await store.restore(10);
        expect(session(snap, "a")).toMatchObject({ queueCount: 1, lastSeq: 9 });
        expect(snap.lastMessageId).toBe(7);
        await store.apply([{ op: "queue-delete", clientId: "a", seq: 4 }]);
        snap = await store.restore(10);
        expect(session(snap, "a")).toMatchObject({ queueCount: 0, queueBytes: 0, lastSeq: 9 });
        expect(snap.lastMessageId).toBe(7);
      });
    });

    describe("retained messages", () => {
      it("retained-put stores and replaces by topic, retained-delete removes; listed by topic", async () => {
        const store = await fresh();
        const props = { contentType: "text/plain", userProperties: [["a", "1"]] as const };
        await store.apply([{ op: "retained-put", message: message(3, "b/t", [3], { retain: true }) }, { op: "retained-put", message: message(2, "a/t", [2], { retain: true, qos: 2, properties: props }) }]);
        await store.apply([{ op: "retained-put", message: message(5, "b/t", [5, 5], { retain: true, qos: 0 }) }]);
        let snap = await store.restore(10);
        expect(plain(snap.retained)).toEqual(plain([message(2, "a/t", [2], { retain: true, qos: 2, properties: props }), message(5, "b/t", [5, 5], { retain: true, qos: 0 })]));
        expect(snap.lastMessageId).toBe(5);
        await store.apply([{ op: "retained-delete", topic: "a/t" }, { op: "retained-delete", topic: "nothing" }]);
        snap = await store.restore(10);
        expect(snap.retained.map((m) => m.topic)).toEqual(["b/t"]);
        expect(snap.lastMessageId).toBe(5);
      });

      it("keeps a retained message independent of a queued message with the same id", async () => {
        const store = await fresh();
        const m = message(1, "r", [1]);
        await store.apply([sessionPut("a"), messagePut(m), queuePut("a", 1, 1), { op: "retained-put", message: m }]);
        await store.apply([{ op: "queue-delete", clientId: "a", seq: 1 }]);
        expect((await store.restore(10)).retained.map((r) => r.id)).toEqual([1]);
        await store.apply([{ op: "retained-delete", topic: "r" }, messagePut(message(2)), queuePut("a", 2, 2)]);
        expect((await store.restore(10)).retained).toEqual([]);
        expect(seqs(await store.load("a", 0, 5))).toEqual([2]);
      });
    });

    describe("ordering and atomicity", () => {
      it("applies the writes of one call in order", async () => {
        const store = await fresh();
        await store.apply([
          sessionPut("a", { expiryInterval: 1 }),
          sessionPut("a", { expiryInterval: 2 }),
          { op: "subscription-put", clientId: "a", subscription: sub("f", 0) },
          { op: "subscription-delete", clientId: "a", filter: "f" },
          { op: "subscription-put", clientId: "a", subscription: sub("g", 1) },
          { op: "qos2-put", clientId: "a", packetId: 1 },
          { op: "qos2-delete", clientId: "a", packetId: 1 },
          messagePut(message(1)),
          queuePut("a", 1, 1),
          { op: "queue-update", clientId: "a", seq: 1, state: "sent", packetId: 4 },
          { op: "queue-delete", clientId: "a", seq: 1 },
          queuePut("a", 2, 1),
          { op: "retained-put", message: message(9, "r") },
          { op: "retained-delete", topic: "r" },
        ]);
        const a = session(await store.restore(10), "a")!;
        expect(a.meta.expiryInterval).toBe(2);
        expect(a.subscriptions).toEqual([sub("g", 1)]);
        expect(a.qos2).toEqual([]);
        expect(seqs(a.queueHead)).toEqual([2]);
        expect(a.queueHead[0]!.state).toBe("queued");
        expect((await store.restore(10)).retained).toEqual([]);
      });

      it("session-delete then session-put in one call starts a fresh session", async () => {
        const store = await fresh();
        await store.apply([sessionPut("a"), { op: "subscription-put", clientId: "a", subscription: sub("f") }, messagePut(message(1)), queuePut("a", 5, 1), { op: "qos2-put", clientId: "a", packetId: 3 }]);
        await store.apply([{ op: "session-delete", clientId: "a" }, sessionPut("a", { protocolVersion: 5 }), messagePut(message(2)), queuePut("a", 1, 2)]);
        const a = session(await store.restore(10), "a")!;
        expect(a).toMatchObject({ meta: meta("a", { protocolVersion: 5 }), subscriptions: [], qos2: [], queueCount: 1, lastSeq: 1 });
        expect(a.queueHead.map((e) => e.message.id)).toEqual([2]);
      });

      it("applies calls in call order, and reads see calls not yet awaited", async () => {
        const store = await fresh();
        const p1 = store.apply([sessionPut("a"), messagePut(message(1)), queuePut("a", 1, 1)]);
        const p2 = store.apply([{ op: "queue-update", clientId: "a", seq: 1, state: "sent", packetId: 2 }]);
        const p3 = store.apply([messagePut(message(2)), queuePut("a", 2, 2), { op: "queue-delete", clientId: "a", seq: 1 }]);
        const loaded = store.load("a", 0, 10);
        const restored = store.restore(10);
        const order: string[] = [];
        await Promise.all([p1.then(() => order.push("p1")), p2.then(() => order.push("p2")), p3.then(() => order.push("p3")), loaded.then(() => order.push("load"))]);
        expect(order.slice(0, 3)).toEqual(["p1", "p2", "p3"]);
        expect(seqs(await loaded)).toEqual([2]);
        expect(session(await restored, "a")).toMatchObject({ queueCount: 1, lastSeq: 2 });
      });

      it("a failing call leaves nothing behind and does not affect the calls around it", async () => {
        const store = await fresh();
        await store.apply([sessionPut("a"), { op: "subscription-put", clientId: "a", subscription: sub("keep") }, messagePut(message(1)), queuePut("a", 1, 1), { op: "retained-put", message: message(2, "r") }]);
        const before = plain(await store.restore(10));
        const p1 = store.apply([sessionPut("b")]);
        const bad = store.apply([
          sessionPut("a", { expiryInterval: 1 }),
          sessionPut("c"),
          { op: "subscription-put", clientId: "a", subscription: sub("new") },
          { op: "subscription-delete", clientId: "a", filter: "keep" },
          { op: "qos2-put", clientId: "a", packetId: 1 },
          messagePut(message(50)),
          queuePut("a", 2, 50),
          { op: "queue-update", clientId: "a", seq: 1, state: "sent", packetId: 1 },
          { op: "queue-delete", clientId: "a", seq: 1 },
          { op: "retained-put", message: message(51, "r2") },
          { op: "retained-delete", topic: "r" },
          { op: "session-horizon", clientId: "a", seq: 1 },
          queuePut("a", 3, 999), // unknown message: the whole call fails
        ]);
        const p3 = store.apply([sessionPut("d")]);
        const bad2 = store.apply([{ op: "session-delete", clientId: "a" }, queuePut("a", 1, 12345)]);
        await expect(bad).rejects.toThrow();
        await expect(bad2).rejects.toThrow();
        await p1;
        await p3;
        const after = await store.restore(10);
        expect(after.sessions.map((s) => s.meta.clientId)).toEqual(["a", "b", "d"]);
        expect(plain({ ...after, sessions: after.sessions.filter((s) => s.meta.clientId === "a") })).toEqual(before);
        // and the store still works
        await store.apply([messagePut(message(60)), queuePut("a", 2, 60)]);
        expect(seqs(await store.load("a", 0, 10))).toEqual([1, 2]);
        expect((await store.restore(10)).lastMessageId).toBe(60);
      });
    });

    describe("model", () => {
      it("matches a reference model over random batches of writes", async () => {
        await fc.assert(
          fc.asyncProperty(fc.array(fc.array(intentArb, { minLength: 1, maxLength: 8 }), { minLength: 1, maxLength: 12 }), fc.integer({ min: 0, max: 6 }), fc.boolean(), async (batches, window, restart) => {
            const { store: s, reopen: again } = await open();
            let store = s;
            try {
              const model = new Model();
              for (const [i, batch] of batches.entries()) {
                const writes = model.translate(batch);
                await store.apply(writes);
                if (restart && again !== undefined && i === batches.length >> 1) store = await again();
              }
              const snap = await store.restore(window);
              expect(plain(snap)).toEqual(plain(model.snapshot(window)));
              for (const c of CLIENTS) expect(plain(await loadAll(store, c, 2))).toEqual(plain(model.entries(c)));
            } finally {
              await store.close();
            }
          }),
          { numRuns: options.numRuns ?? 100 },
        );
      });

      it("matches the model when batches are issued without waiting and some of them are invalid", async () => {
        const batchArb = fc.record({ intents: fc.array(intentArb, { minLength: 1, maxLength: 6 }), invalid: fc.boolean() });
        // turns: groups of apply calls issued in one go (one group commit in a batching store)
        const turnsArb = fc.array(fc.array(batchArb, { minLength: 1, maxLength: 6 }), { minLength: 1, maxLength: 5 });
        await fc.assert(
          fc.asyncProperty(turnsArb, async (turns) => {
            const { store } = await open();
            try {
              let model = new Model();
              for (const turn of turns) {
                const calls: Promise<void>[] = [];
                const expectFail: boolean[] = [];
                for (const b of turn) {
                  const before = model.clone();
                  const writes = model.translate(b.intents);
                  if (b.invalid) {
                    // an unknown message at the end: the whole call must leave nothing behind
                    writes.push(queuePut("a", 1_000_000 + calls.length, 999_999_999));
                    model = before;
                  }
                  calls.push(store.apply(writes));
                  expectFail.push(b.invalid);
                }
                const settled = await Promise.allSettled(calls);
                expect(settled.map((r) => r.status === "rejected")).toEqual(expectFail);
              }
              expect(plain(await store.restore(3))).toEqual(plain(model.snapshot(3)));
              for (const c of CLIENTS) expect(plain(await loadAll(store, c, 4))).toEqual(plain(model.entries(c)));
            } finally {
              await store.close();
            }
          }),
          { numRuns: options.numRuns ?? 100 },
        );
      });
    });

    describe("restart", () => {
      it("keeps everything across close and open (durable stores)", async (ctx) => {
        const store = await fresh();
        if (opened!.reopen === undefined) {
          ctx.skip();
          return;
        }
        const m = message(3, "x/é", [1, 2, 3], { qos: 2, properties: { correlationData: new Uint8Array([1]), userProperties: [["k", "v"]], messageExpiryInterval: 60 } });
        await store.apply([
          sessionPut("a", { protocolVersion: 5, expiryInterval: 30, disconnectedAt: 999 }),
          sessionPut("b"),
          { op: "subscription-put", clientId: "a", subscription: sub("x/#", 2, { subscriptionId: 7, noLocal: true }) },
          { op: "qos2-put", clientId: "a", packetId: 77 },
          messagePut(m),
          messagePut(message(4)),
          queuePut("a", 1, 3, { qos: 2, state: "sent", packetId: 9, subscriptionIds: [7] }),
          queuePut("a", 2, 4),
          queuePut("a", 3, 4),
          queuePut("b", 1, 3, { qos: 1 }),
          { op: "retained-put", message: message(8, "ret", [8], { retain: true }) },
          horizon("a", 2),
        ]);
        await store.apply([{ op: "queue-delete", clientId: "a", seq: 3 }, messagePut(message(10)), queuePut("b", 2, 10), { op: "queue-delete", clientId: "b", seq: 2 }, horizon("b", 1)]);
        const before = plain(await store.restore(2));
        const loadedBefore = plain(await loadAll(store, "a"));
        const reopened = await reopen();
        expect(plain(await reopened.restore(2))).toEqual(before);
        expect(plain(await loadAll(reopened, "a"))).toEqual(loadedBefore);
        expect((await reopened.restore(2)).lastMessageId).toBe(10);
        // message 4 is still referenced and message 10 is gone after the restart too
        await reopened.apply([queuePut("b", 5, 4)]);
        await expect(reopened.apply([queuePut("b", 6, 10)])).rejects.toThrow();
        expect(session(await reopened.restore(10), "b")).toMatchObject({ lastSeq: 5, queueCount: 2, sendHorizon: 1 });
        expect(session(await reopened.restore(10), "a")!.sendHorizon).toBe(2);
      });
    });

    it("rejects apply after close", async () => {
      const store = await fresh();
      await store.close();
      await expect(store.apply([sessionPut("a")])).rejects.toThrow();
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Reference model for the model-based test: maps and arrays, nothing clever.

const CLIENTS = ["a", "b", "c"] as const;
type Client = (typeof CLIENTS)[number];

type Intent =
  | { readonly kind: "session-put"; readonly client: Client; readonly expiry: number }
  | { readonly kind: "session-delete"; readonly client: Client }
  | { readonly kind: "sub-put"; readonly client: Client; readonly filter: string; readonly qos: 0 | 1 | 2 }
  | { readonly kind: "sub-delete"; readonly client: Client; readonly filter: string }
  | { readonly kind: "qos2-put"; readonly client: Client; readonly packetId: number }
  | { readonly kind: "qos2-delete"; readonly client: Client; readonly packetId: number }
  /** A session-horizon write (any seq: the store keeps the highest). */
  | { readonly kind: "horizon"; readonly client: Client; readonly seq: number }
  /** A new message routed to some clients (stored once). */
  | { readonly kind: "publish"; readonly clients: readonly Client[]; readonly topic: string; readonly size: number }
  /** Queue an existing live message again (pick = index into live messages). */
  | { readonly kind: "requeue"; readonly client: Client; readonly pick: number }
  | { readonly kind: "update"; readonly client: Client; readonly pick: number; readonly state: "queued" | "sent" | "released" }
  | { readonly kind: "delete"; readonly client: Client; readonly pick: number }
  /** `count` new messages queued for one client with consecutive seqs (a backlog building up). */
  | { readonly kind: "burst"; readonly client: Client; readonly count: number }
  /** A drain over `count` consecutive queue entries from `pick`: mark each sent (or released) with
   *  the next packet id, delete each (its PUBACK), or both interleaved as a draining session does
   *  (delete entry i, mark entry i + lag sent; or, for QoS 1 with a send horizon, delete entry i
   *  and raise the horizon to entry i + lag). */
  | { readonly kind: "drain"; readonly client: Client; readonly pick: number; readonly count: number; readonly mode: "sent" | "released" | "delete" | "ack-and-send" | "ack-and-horizon"; readonly lag: number; readonly firstId: number }
  | { readonly kind: "retain"; readonly topic: string; readonly size: number }
  | { readonly kind: "unretain"; readonly topic: string };

const clientArb = fc.constantFrom(...CLIENTS);
const filterArb = fc.constantFrom("a", "a/+", "#", "b/é");
const topicArb = fc.constantFrom("a", "a/b", "é/ü", "");
const intentArb: fc.Arbitrary<Intent> = fc.oneof(
  fc.record({ kind: fc.constant("session-put" as const), client: clientArb, expiry: fc.nat(100) }),
  fc.record({ kind: fc.constant("session-delete" as const), client: clientArb }),
  fc.record({ kind: fc.constant("sub-put" as const), client: clientArb, filter: filterArb, qos: fc.constantFrom(0 as const, 1 as const, 2 as const) }),
  fc.record({ kind: fc.constant("sub-delete" as const), client: clientArb, filter: filterArb }),
  fc.record({ kind: fc.constant("qos2-put" as const), client: clientArb, packetId: fc.integer({ min: 1, max: 5 }) }),
  fc.record({ kind: fc.constant("qos2-delete" as const), client: clientArb, packetId: fc.integer({ min: 1, max: 5 }) }),
  fc.record({ kind: fc.constant("horizon" as const), client: clientArb, seq: fc.nat(40) }),
  { arbitrary: fc.record({ kind: fc.constant("publish" as const), clients: fc.subarray([...CLIENTS]), topic: topicArb, size: fc.nat(5) }), weight: 4 },
  fc.record({ kind: fc.constant("requeue" as const), client: clientArb, pick: fc.nat(20) }),
  { arbitrary: fc.record({ kind: fc.constant("update" as const), client: clientArb, pick: fc.nat(20), state: fc.constantFrom("queued" as const, "sent" as const, "released" as const) }), weight: 2 },
  { arbitrary: fc.record({ kind: fc.constant("delete" as const), client: clientArb, pick: fc.nat(20) }), weight: 3 },
  fc.record({ kind: fc.constant("retain" as const), topic: topicArb, size: fc.nat(3) }),
  fc.record({ kind: fc.constant("unretain" as const), topic: topicArb }),
  fc.record({ kind: fc.constant("burst" as const), client: clientArb, count: fc.integer({ min: 1, max: 8 }) }),
  {
    arbitrary: fc.record({
      kind: fc.constant("drain" as const),
      client: clientArb,
      pick: fc.nat(20),
      count: fc.integer({ min: 1, max: 8 }),
      mode: fc.constantFrom("sent" as const, "released" as const, "delete" as const, "ack-and-send" as const, "ack-and-horizon" as const),
      lag: fc.integer({ min: 0, max: 3 }),
      // Near 65535 the packet ids of a run wrap around to 1.
      firstId: fc.oneof(fc.integer({ min: 1, max: 100 }), fc.integer({ min: 65530, max: 65535 })),
    }),
    weight: 3,
  },
);

interface ModelSession {
  meta: StoredSessionMeta | undefined;
  subs: Map<string, StoredSubscription>;
  qos2: Set<number>;
  queue: StoredQueueEntry[];
  lastSeq: number;
  sendHorizon: number;
}

class Model {
  private sessions = new Map<string, ModelSession>();
  private retained = new Map<string, StoredMessage>();
  private nextId = 1;
  private lastMessageId = 0;

  clone(): Model {
    const copy = new Model();
    copy.sessions = structuredClone(this.sessions);
    copy.retained = structuredClone(this.retained);
    copy.nextId = this.nextId;
    copy.lastMessageId = this.lastMessageId;
    return copy;
  }

  private session(c: string): ModelSession {
    let s = this.sessions.get(c);
    if (s === undefined) {
      s = { meta: undefined, subs: new Map(), qos2: new Set(), queue: [], lastSeq: 0, sendHorizon: 0 };
      this.sessions.set(c, s);
    }
    return s;
  }

  private liveMessages(): StoredMessage[] {
    const byId = new Map<number, StoredMessage>();
    for (const s of this.sessions.values()) for (const e of s.queue) byId.set(e.message.id, e.message);
    return [...byId.values()].sort((a, b) => a.id - b.id);
  }

  /** Applies intents to the model and returns the equivalent store writes. */
  translate(intents: readonly Intent[]): StoreWrite[] {
    const writes: StoreWrite[] = [];
    const enqueue = (c: string, m: StoredMessage, pick: number): void => {
      const s = this.session(c);
      const seq = s.lastSeq + 1 + (pick % 3); // gaps are allowed
      s.lastSeq = seq;
      const fields = { seq, qos: m.qos, retain: false, state: "queued" as const, packetId: undefined, subscriptionIds: pick % 2 ? [pick] : [] };
      s.queue.push({ ...fields, message: m });
      writes.push({ op: "queue-put", clientId: c, messageId: m.id, entry: fields });
    };
    for (const it of intents) {
      switch (it.kind) {
        case "session-put": {
          const m = meta(it.client, { expiryInterval: it.expiry });
          this.session(it.client).meta = m;
          writes.push({ op: "session-put", session: m });
          break;
        }
        case "session-delete":
          this.sessions.delete(it.client);
          writes.push({ op: "session-delete", clientId: it.client });
          break;
        case "sub-put":
          this.session(it.client).subs.set(it.filter, sub(it.filter, it.qos));
          writes.push({ op: "subscription-put", clientId: it.client, subscription: sub(it.filter, it.qos) });
          break;
        case "sub-delete":
          this.sessions.get(it.client)?.subs.delete(it.filter);
          writes.push({ op: "subscription-delete", clientId: it.client, filter: it.filter });
          break;
        case "qos2-put":
          this.session(it.client).qos2.add(it.packetId);
          writes.push({ op: "qos2-put", clientId: it.client, packetId: it.packetId });
          break;
        case "qos2-delete":
          this.sessions.get(it.client)?.qos2.delete(it.packetId);
          writes.push({ op: "qos2-delete", clientId: it.client, packetId: it.packetId });
          break;
        case "horizon": {
          const s = this.session(it.client);
          s.sendHorizon = Math.max(s.sendHorizon, it.seq);
          writes.push({ op: "session-horizon", clientId: it.client, seq: it.seq });
          break;
        }
        case "publish": {
          const id = this.nextId++;
          this.lastMessageId = id;
          const m = message(id, it.topic, Array.from({ length: it.size }, (_, i) => (id + i) & 0xff), { qos: (id % 3) as 0 | 1 | 2 });
          writes.push({ op: "message-put", message: m });
          for (const c of it.clients) enqueue(c, m, id);
          break;
        }
        case "requeue": {
          // only messages live before this batch started are safe to reference in every store;
          // messages of this batch are live too (refcounts are checked at the end of the apply)
          const live = this.liveMessages();
          const m = live[it.pick % Math.max(1, live.length)];
          if (m !== undefined) enqueue(it.client, m, it.pick);
          break;
        }
        case "update": {
          const q = this.sessions.get(it.client)?.queue;
          const e = q?.[it.pick % Math.max(1, q.length)];
          if (q === undefined || e === undefined) break;
          const packetId = it.state === "queued" ? undefined : (e.seq % 65535) + 1;
          q[q.indexOf(e)] = { ...e, state: it.state, packetId };
          writes.push({ op: "queue-update", clientId: it.client, seq: e.seq, state: it.state, packetId });
          break;
        }
        case "delete": {
          const q = this.sessions.get(it.client)?.queue;
          const e = q?.[it.pick % Math.max(1, q.length)];
          if (q === undefined || e === undefined) break;
          q.splice(q.indexOf(e), 1);
          writes.push({ op: "queue-delete", clientId: it.client, seq: e.seq });
          break;
        }
        case "burst": {
          for (let i = 0; i < it.count; i++) {
            const id = this.nextId++;
            this.lastMessageId = id;
            const m = message(id, "a/b", [id & 0xff], { qos: 1 });
            writes.push({ op: "message-put", message: m });
            enqueue(it.client, m, 0);
          }
          break;
        }
        case "drain": {
          const q = this.sessions.get(it.client)?.queue;
          if (q === undefined || q.length === 0) break;
          const start = it.pick % q.length;
          const run = q.slice(start, start + it.count).map((e) => e.seq);
          let id = it.firstId;
          const mark = (seq: number, state: "sent" | "released"): void => {
            const i = q.findIndex((e) => e.seq === seq);
            const packetId = id;
            id = id === 65535 ? 1 : id + 1;
            if (i >= 0) q[i] = { ...q[i]!, state, packetId };
            writes.push({ op: "queue-update", clientId: it.client, seq, state, packetId });
          };
          const remove = (seq: number): void => {
            const i = q.findIndex((e) => e.seq === seq);
            if (i >= 0) q.splice(i, 1);
            writes.push({ op: "queue-delete", clientId: it.client, seq });
          };
          const raise = (seq: number): void => {
            const s = this.session(it.client);
            s.sendHorizon = Math.max(s.sendHorizon, seq);
            writes.push({ op: "session-horizon", clientId: it.client, seq });
          };
          if (it.mode === "sent" || it.mode === "released") for (const seq of run) mark(seq, it.mode);
          else if (it.mode === "delete") for (const seq of run) remove(seq);
          else if (it.mode === "ack-and-horizon") {
            // ack entry i, send entry i + lag: deletes and horizon raises alternate.
            for (let i = 0; i < run.length; i++) {
              remove(run[i]!);
              raise(run[i + it.lag] ?? run[i]!);
            }
          } else {
            // ack entry i, send entry i + lag: the same entry may be marked after its delete.
            for (let i = 0; i < run.length; i++) {
              remove(run[i]!);
              const next = run[i + it.lag];
              if (next !== undefined) mark(next, "sent");
              else mark(run[i]!, "sent");
            }
          }
          break;
        }
        case "retain": {
          const id = this.nextId++;
          this.lastMessageId = id;
          const m = message(id, it.topic, Array.from({ length: it.size }, () => id & 0xff), { retain: true });
          this.retained.set(it.topic, m);
          writes.push({ op: "retained-put", message: m });
          break;
        }
        case "unretain":
          this.retained.delete(it.topic);
          writes.push({ op: "retained-delete", topic: it.topic });
          break;
      }
    }
    return writes;
  }

  snapshot(window: number): Snapshot {
    const sessions = [...this.sessions.entries()]
      .filter(([, s]) => s.meta !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([, s]) => ({
        meta: s.meta!,
        subscriptions: [...s.subs.values()].sort((a, b) => (a.filter < b.filter ? -1 : a.filter > b.filter ? 1 : 0)),
        qos2: [...s.qos2].sort((a, b) => a - b),
        queueHead: s.queue.slice(0, window),
        queueCount: s.queue.length,
        queueBytes: s.queue.reduce((n, e) => n + e.message.payload.length + utf8Bytes(e.message.topic), 0),
        lastSeq: s.lastSeq,
        sendHorizon: s.sendHorizon,
      }));
    const retained = [...this.retained.values()].sort((a, b) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : 0));
    return { sessions, retained, lastMessageId: this.lastMessageId };
  }

  entries(c: string): StoredQueueEntry[] {
    return this.sessions.get(c)?.queue.slice() ?? [];
  }
}
