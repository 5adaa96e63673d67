// Property tests for the pieces on their own: packet id allocation / in-flight window, the
// session queue (limits, memory window, paging), and the deadline heap.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { StoredMessage, StoredQueueEntry } from "@harbormq/core";
import { DeadlineHeap, type Timer } from "../src/deadlines.js";
import { InflightWindow, MAX_PACKET_ID, PacketIds } from "../src/inflight.js";
import { keepAliveDeadline } from "../src/keepalive.js";
import { Sim } from "./sim.js";
import { SessionQueue, utf8Length, type QueueEntry } from "../src/queue.js";

const msg = (id: number, payload = "x"): StoredMessage => ({
  id,
  topic: "t",
  payload: new TextEncoder().encode(payload),
  qos: 1,
  retain: false,
  properties: {},
  receivedAt: 0,
});

const entry = (seq: number, persisted = true): QueueEntry => ({
  seq,
  message: msg(seq),
  qos: 1,
  retain: false,
  state: "queued",
  packetId: undefined,
  subscriptionIds: [],
  bytes: 2,
  persisted,
});

describe("MQTT 3.1.1", () => {
  describe("packet ids (inflight.ts)", () => {
    it("[MQTT-2.3.1-4] never hands out an id in use, in 1..65535, under any allocate/release order", () => {
      fc.assert(
        fc.property(fc.array(fc.oneof(fc.constant("alloc" as const), fc.nat(200)), { maxLength: 400 }), (ops) => {
          const ids = new PacketIds<number>();
          const live = new Set<number>();
          for (const op of ops) {
            if (op === "alloc") {
              const id = ids.allocate(0)!;
              expect(id).toBeGreaterThanOrEqual(1);
              expect(id).toBeLessThanOrEqual(MAX_PACKET_ID);
              expect(live.has(id)).toBe(false);
              live.add(id);
            } else {
              const victim = [...live][op % Math.max(1, live.size)];
              if (victim !== undefined) {
                expect(ids.release(victim)).toBe(true);
                live.delete(victim);
              }
            }
            expect(ids.size).toBe(live.size);
          }
        }),
        { numRuns: 200 },
      );
    });

    it("wraps around 65535 and skips ids still in use; refuses when all are taken", () => {
      const ids = new PacketIds<number>();
      let wrong = 0;
      for (let i = 1; i <= MAX_PACKET_ID; i++) if (ids.allocate(i) !== i) wrong++;
      expect(wrong).toBe(0);
      expect(ids.allocate(0)).toBeUndefined();
      ids.release(7);
      ids.release(3);
      expect(ids.allocate(0)).toBe(3);
      expect(ids.allocate(0)).toBe(7);
      const w = new InflightWindow<number>(2);
      w.ids.claim(9, 0);
      expect(w.hasRoom).toBe(true);
      w.ids.allocate(0);
      expect(w.hasRoom).toBe(false);
    });
  });

  describe("session queue (queue.ts)", () => {
    it("counts every entry, keeps at most `window` in memory, pages the rest in seq order", () => {
      fc.assert(
        fc.property(
          fc.integer({ min: 1, max: 8 }),
          fc.array(fc.oneof(fc.constant("push" as const), fc.constant("take" as const), fc.constant("load" as const)), { maxLength: 200 }),
          (window, ops) => {
            const q = new SessionQueue(window);
            const store: number[] = []; // seqs of every entry the "store" holds, in order
            const delivered: number[] = [];
            for (const op of ops) {
              if (op === "push") {
                const e = entry(q.nextSeq());
                store.push(e.seq);
                const inMem = q.push(e);
                expect(inMem).toBe(q.mem.includes(e));
              } else if (op === "take") {
                const e = q.takeOldestQueued();
                if (e !== undefined) {
                  delivered.push(e.seq);
                  store.splice(store.indexOf(e.seq), 1);
                }
              } else if (q.needsLoad()) {
                q.loading = 1;
                const page: StoredQueueEntry[] = store
                  .filter((s) => s > q.memTailSeq)
                  .slice(0, q.pageSize())
                  .map((s) => ({ seq: s, message: msg(s), qos: 1, retain: false, state: "queued", packetId: undefined, subscriptionIds: [] }));
                q.merge(page);
              }
              expect(q.mem.length).toBeLessThanOrEqual(window);
              expect(q.count).toBe(store.length);
              // memory is a prefix of the store, in order
              expect(q.mem.map((e) => e.seq)).toEqual(store.slice(0, q.mem.length));
            }
            // everything taken came out in seq order
            expect(delivered).toEqual([...delivered].sort((a, b) => a - b));
          },
        ),
        { numRuns: 300 },
      );
    });

    it("a byte window too: memory holds fewer than windowBytes bytes plus one message, pages in seq order, and drains everything", () => {
      fc.assert(
        fc.property(
          fc.integer({ min: 1, max: 8 }),
          fc.integer({ min: 1, max: 40 }),
          fc.array(fc.oneof(fc.integer({ min: 1, max: 20 }), fc.constant("take" as const), fc.constant("load" as const)), { maxLength: 200 }),
          (window, windowBytes, ops) => {
            const q = new SessionQueue(window, windowBytes);
            const sizes = new Map<number, number>();
            const store: number[] = [];
            const delivered: number[] = [];
            const stored = (seq: number): StoredQueueEntry => ({
              seq, message: msg(seq, "x".repeat(sizes.get(seq)! - 1)), qos: 1, retain: false, state: "queued", packetId: undefined, subscriptionIds: [],
            });
            const load = (): void => {
              if (!q.needsLoad()) return;
              q.loading = 1;
              q.merge(store.filter((seq) => seq > q.memTailSeq).slice(0, q.pageSize()).map(stored));
            };
            const take = (): boolean => {
              const e = q.takeOldestQueued();
              if (e === undefined) return false;
              delivered.push(e.seq);
              store.splice(store.indexOf(e.seq), 1);
              return true;
            };
            const check = (): void => {
              const mem = q.mem;
              expect(mem.length).toBeLessThanOrEqual(window);
              expect(q.memBytes).toBe(mem.reduce((n, e) => n + e.bytes, 0));
              // Without its newest entry, memory is under the byte window.
              if (mem.length > 1) expect(q.memBytes - mem[mem.length - 1]!.bytes).toBeLessThan(windowBytes);
              expect(q.count).toBe(store.length);
              expect(mem.map((e) => e.seq)).toEqual(store.slice(0, mem.length));
            };
            for (const op of ops) {
              if (typeof op === "number") {
                const seq = q.nextSeq();
                sizes.set(seq, op);
                store.push(seq);
                // "t" + payload: QueueEntry.bytes is topic + payload
                q.push({ ...entry(seq), message: stored(seq).message, bytes: op });
              } else if (op === "take") take();
              else load();
              check();
            }
            // Taking and paging alone drain the whole queue, in order.
            for (let guard = 0; store.length > 0 && guard < 10_000; guard++) {
              if (!take()) load();
              check();
            }
            expect(store).toEqual([]);
            expect(delivered).toEqual([...delivered].sort((a, b) => a - b));
          },
        ),
        { numRuns: 300 },
      );
    });

    it("a window of 0 entries or 0 bytes still pages one entry at a time (no load that brings nothing)", () => {
      for (const q of [new SessionQueue(0), new SessionQueue(10, 0)]) {
        for (let i = 0; i < 3; i++) q.push(entry(q.nextSeq()));
        const out: number[] = [];
        for (let round = 0; round < 10 && q.count > 0; round++) {
          if (q.needsLoad()) {
            q.loading = 1;
            const after = q.memTailSeq;
            expect(q.merge([1, 2, 3].filter((s) => s > after).map((s) => ({ seq: s, message: msg(s), qos: 1 as const, retain: false, state: "queued" as const, packetId: undefined, subscriptionIds: [] })))).toBeGreaterThan(0);
          }
          const e = q.takeOldestQueued();
          if (e !== undefined) out.push(e.seq);
        }
        expect(out).toEqual([1, 2, 3]);
      }
    });

    it("drop-oldest never takes an entry in flight; isFull applies both limits", () => {
      const q = new SessionQueue(Infinity);
      const a = entry(q.nextSeq());
      const b = entry(q.nextSeq());
      q.push(a);
      q.push(b);
      q.markSent(a, 1);
      expect(q.takeOldestQueued()).toBe(b);
      expect(q.takeOldestQueued()).toBeUndefined();
      expect(q.isFull(1, Infinity, 1)).toBe(true);
      expect(q.isFull(10, 2, 1)).toBe(true);
      expect(q.isFull(10, 4, 2)).toBe(false);
    });

    it("an empty page when counters say more resets the counters to memory", () => {
      const q = new SessionQueue(2);
      for (let i = 0; i < 4; i++) q.push(entry(q.nextSeq()));
      q.takeOldestQueued();
      q.takeOldestQueued();
      expect(q.needsLoad()).toBe(true);
      q.merge([]);
      expect(q.count).toBe(0);
      expect(q.bytes).toBe(0);
    });

    it("dropVolatile removes only memory-only entries", () => {
      const q = new SessionQueue(Infinity);
      q.push(entry(q.nextSeq(), true));
      q.push(entry(q.nextSeq(), false));
      expect(q.dropVolatile().map((e) => e.seq)).toEqual([2]);
      expect(q.count).toBe(1);
    });

    it("removal anywhere (mostly the oldest, as in-order acks do) keeps memory equal to an array model", () => {
      // The queue is a deque (head index, compaction); this holds it to a plain array across
      // long runs of head removals (past the compaction threshold), middle and tail removals.
      fc.assert(
        fc.property(
          fc.array(fc.oneof({ weight: 3, arbitrary: fc.constant(-1) }, { weight: 4, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.nat(300) }), { maxLength: 600 }),
          (ops) => {
            const q = new SessionQueue(Infinity);
            const model: QueueEntry[] = [];
            for (const op of ops) {
              if (op < 0) {
                const e = entry(q.nextSeq(), false);
                q.push(e);
                model.push(e);
              } else if (model.length > 0) {
                const i = op % model.length;
                const [e] = model.splice(i, 1);
                if (op % 2 === 0) q.remove(e!);
                else expect(q.removeAt(i)).toBe(e);
              }
              expect(q.inMemory).toBe(model.length);
              expect(q.count).toBe(model.length);
              expect(q.at(0)).toBe(model[0]);
              expect(q.at(model.length - 1)).toBe(model[model.length - 1]);
              expect(q.at(model.length)).toBeUndefined();
            }
            expect(q.mem).toEqual(model);
            expect(q.firstQueued()).toBe(model.length > 0 ? 0 : -1);
          },
        ),
        { numRuns: 200 },
      );
    });

    it("utf8Length agrees with TextEncoder", () => {
      fc.assert(
        fc.property(fc.string({ unit: "grapheme" }), (s) => {
          expect(utf8Length(s)).toBe(new TextEncoder().encode(s).length);
        }),
        { numRuns: 300 },
      );
    });
  });

  describe("deadlines (deadlines.ts, keepalive.ts)", () => {
    it("pops timers in time order", () => {
      fc.assert(
        fc.property(fc.array(fc.nat(1_000_000), { maxLength: 300 }), (times) => {
          const h = new DeadlineHeap();
          for (const at of times) h.push({ at, kind: "keep-alive", conn: 1, clientId: "", gen: 0 } satisfies Timer);
          const out: number[] = [];
          for (let t = h.pop(); t !== undefined; t = h.pop()) out.push(t.at);
          expect(out).toEqual([...times].sort((a, b) => a - b));
        }),
        { numRuns: 200 },
      );
    });

    it("retain() keeps exactly the accepted timers, still popped in time order", () => {
      fc.assert(
        fc.property(fc.uniqueArray(fc.tuple(fc.nat(1_000_000), fc.boolean()), { selector: ([at]) => at, maxLength: 300 }), fc.nat(50), (timers, popsBefore) => {
          const h = new DeadlineHeap();
          for (const [at, live] of timers) h.push({ at, kind: "keep-alive", conn: live ? 1 : 2, clientId: "", gen: 0 } satisfies Timer);
          const popped: Timer[] = [];
          for (let i = 0; i < popsBefore; i++) {
            const t = h.pop();
            if (t !== undefined) popped.push(t);
          }
          h.retain((t) => t.conn === 1);
          const out: number[] = [];
          for (let t = h.pop(); t !== undefined; t = h.pop()) out.push(t.at);
          const sorted = [...timers].sort((a, b) => a[0] - b[0]);
          // what was not popped before retain, filtered to the live ones, in order
          const rest = sorted.slice(popped.length).filter(([, live]) => live).map(([at]) => at);
          expect(out).toEqual(rest);
        }),
        { numRuns: 200 },
      );
    });

    it("a client reconnecting in a loop does not grow the timer heap (stale timers are compacted)", () => {
      const sim = new Sim();
      for (let i = 0; i < 1000; i++) {
        sim.connect("c", { version: 5, clean: false, sessionExpiry: 0xfffffffe, keepAlive: 65_535 });
        sim.disconnect("c");
      }
      // White-box: at most one live timer per session plus twice that in stale ones before compaction.
      expect((sim.broker as unknown as { timers: DeadlineHeap }).timers.size).toBeLessThan(200);
      // The session's expiry still works after all that compaction.
      expect(sim.broker.sessionStats("c")).toBeDefined();
      sim.advance(0xfffffffe * 1000 + 1);
      expect(sim.broker.sessionStats("c")).toBeUndefined();
    });

    it("[MQTT-3.1.2-24] keep alive deadline is 1.5 x keep alive after the last packet; none for 0", () => {
      expect(keepAliveDeadline(1_000, 10, 1.5)).toBe(16_000);
      expect(keepAliveDeadline(1_000, 0, 1.5)).toBeUndefined();
    });
  });
});
