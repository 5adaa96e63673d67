// Property: whatever the interleaving of inputs, event-loop turns and store completions (even out
// of order), the driver never hands a transport an (ordered) send before every persist emitted
// before it is durable, and every send, ordered or `unordered`, is eventually written, once, in
// emission order per connection; persists the core does not wait for (`urgent: false`) are
// committed too, lazily.
// A failed apply stops the driver (fail-stop): from then on nothing more is written, every
// connection is cut, and onStoreFailure is called once.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { Packet } from "@harbormq/codec";
import type { Action, BrokerStats, Input, Millis, StoreWrite } from "@harbormq/core";
import { Driver, type Codec, type Core, type DecodeFailure } from "../src/driver.js";
import type { Duplex, Store } from "../src/ports.js";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** p: persist, l: lazy persist (urgent false), sN: send to connection N, uN: unordered send. */
type Step = "p" | "l" | "s0" | "s1" | "s2" | "u0" | "u1" | "u2";
type Command =
  | { readonly t: "input"; readonly conn: number; readonly script: readonly Step[] }
  | { readonly t: "resolve"; readonly pick: number; readonly fail: boolean }
  | { readonly t: "turn" };

/** Packets are JSON lines; a "send" packet carries its emission number in `packetId`. */
const codec: Codec = {
  decoder() {
    let buffer = "";
    return {
      push: (chunk) => void (buffer += dec.decode(chunk)),
      next() {
        const nl = buffer.indexOf("\n");
        if (nl < 0) return undefined;
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        return JSON.parse(line) as Packet;
      },
    };
  },
  isFailure: (item): item is DecodeFailure => "code" in item,
  encodedLength: (p) => enc.encode(JSON.stringify(p) + "\n").length,
  encodeInto: (p, _v, target, offset) => target.set(enc.encode(JSON.stringify(p) + "\n"), offset),
};

const noStats: BrokerStats = {
  connections: 0, sessions: 0, subscriptions: 0, retained: 0, messagesIn: 0,
  messagesOut: 0, dropped: 0, droppedQueueFull: 0, droppedExpired: 0,
};

class Harness {
  /** Persist ops emitted so far, and which of them the store has made durable. */
  persists = 0;
  readonly durableOps = new Set<number>();
  /** Per send (by emission number): how many persists were emitted before it, and its target. */
  readonly sends: { conn: number; persistsBefore: number; unordered: boolean }[] = [];
  readonly written = new Map<number, number[]>(); // conn -> emission numbers in write order
  readonly violations: string[] = [];
  readonly pending: { ops: number[]; resolve: () => void; reject: (e: Error) => void }[] = [];
  readonly dataListeners = new Map<number, (chunk: Uint8Array) => void>();
  /** Set once the driver reported a store failure; writes after it are violations. */
  failures = 0;
  readonly cut = new Set<number>();
  private readonly out: Action[] = [];
  private nextOp = 1;
  private connIds: number[] = [];

  readonly core: Core = {
    handle: (_now: Millis, input: Input) => {
      if (input.type === "open") this.connIds.push(input.conn);
      if (input.type !== "packet") return;
      const script = (input.packet as unknown as { script: Step[] }).script;
      for (const step of script) {
        if (step === "p" || step === "l") {
          this.persists++;
          this.out.push({ type: "persist", op: this.nextOp++, writes: [{ op: "retained-delete", topic: "t" }], urgent: step === "p" });
        } else {
          const conn = this.connIds[Number(step[1])]!;
          const n = this.sends.length;
          const unordered = step[0] === "u";
          this.sends.push({ conn, persistsBefore: this.persists, unordered });
          this.out.push({ type: "send", conn, version: 4, packet: { type: "puback", packetId: n, reasonCode: 0, properties: {} }, unordered });
        }
      }
    },
    poll: () => this.out.shift(),
    nextDeadline: () => undefined,
    stats: noStats,
  };

  /** Op numbers are persist emission numbers + 1 (one op per persist). */
  private batchOps: number[][] = [];
  failedBatches = 0;
  readonly store: Store = {
    restore: () => Promise.resolve({ sessions: [], retained: [], lastMessageId: 0 }),
    apply: (writes: readonly StoreWrite[]) => {
      // The driver batches in emission order: the batch holds the next writes.length ops.
      const first = this.batchOps.reduce((n, b) => n + b.length, 0) + 1;
      const ops = Array.from({ length: writes.length }, (_, i) => first + i);
      this.batchOps.push(ops);
      return new Promise<void>((resolve, reject) => this.pending.push({ ops, resolve, reject }));
    },
    load: () => Promise.resolve([]),
    close: () => Promise.resolve(),
  };

  duplex(index: number, connOf: () => number): Duplex {
    return {
      remote: `fake:${index}`,
      write: (bytes) => {
        const conn = connOf();
        if (this.failures > 0) this.violations.push(`a write to ${conn} after the store failure (persist 0)`);
        if (this.cut.has(conn)) this.violations.push(`a write to ${conn} after it was cut (persist 0)`);
        for (const line of dec.decode(bytes).split("\n")) {
          if (line === "") continue;
          const n = (JSON.parse(line) as { packetId: number }).packetId;
          const send = this.sends[n]!;
          for (let op = 1; op <= (send.unordered ? 0 : send.persistsBefore); op++) {
            if (!this.durableOps.has(op)) this.violations.push(`send ${n} written before persist ${op} was durable`);
          }
          const list = this.written.get(conn) ?? [];
          list.push(n);
          this.written.set(conn, list);
        }
        return true;
      },
      close: () => void this.cut.add(connOf()),
      destroy: () => void this.cut.add(connOf()),
      pause: () => {},
      resume: () => {},
      onData: (listener) => this.dataListeners.set(index, listener),
      onClose: () => {},
      onDrain: () => {},
    };
  }
}

const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

const command: fc.Arbitrary<Command> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      t: fc.constant("input" as const),
      conn: fc.integer({ min: 0, max: 2 }),
      script: fc.array(fc.constantFrom<Step>("p", "l", "s0", "s1", "s2", "u0", "u1", "u2"), { maxLength: 4 }),
    }),
  },
  // Store completions in any order, some failing.
  { weight: 2, arbitrary: fc.record({ t: fc.constant("resolve" as const), pick: fc.nat(), fail: fc.boolean() }) },
  { weight: 3, arbitrary: fc.constant({ t: "turn" as const }) },
);

describe("driver ordering", () => {
  it("never writes a send before the persists emitted before it are durable; writes every send once, in order; stops at a failed apply", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(command, { maxLength: 40 }), async (commands) => {
        const h = new Harness();
        const driver = new Driver({ core: h.core, codec, store: h.store, maxPacketSize: 1 << 20, lazyCommitMs: 1, onStoreFailure: () => void h.failures++ });
        for (let i = 0; i < 3; i++) {
          const id = i + 1; // the driver numbers connections from 1 in accept order
          driver.accept(h.duplex(i, () => id));
        }
        await turn();
        for (const c of commands) {
          if (c.t === "input") {
            h.dataListeners.get(c.conn)!(enc.encode(JSON.stringify({ type: "pingreq", script: c.script }) + "\n"));
          } else if (c.t === "resolve") {
            if (h.pending.length === 0) continue;
            const [batch] = h.pending.splice(c.pick % h.pending.length, 1);
            if (!c.fail) for (const op of batch!.ops) h.durableOps.add(op);
            if (c.fail) {
              h.failedBatches++;
              batch!.reject(new Error("disk full"));
            }
            else batch!.resolve();
            await Promise.resolve();
          } else {
            await turn();
          }
        }
        // Drain: resolve everything still pending until nothing is left (lazy batches included:
        // their timer fires after lazyCommitMs).
        for (let rounds = 0; rounds < 100; rounds++) {
          await new Promise((resolve) => setTimeout(resolve, 2));
          const batch = h.pending.shift();
          if (batch === undefined && rounds > 3) break;
          if (batch !== undefined) {
            for (const op of batch.ops) h.durableOps.add(op);
            batch.resolve();
          }
        }
        expect(h.violations).toEqual([]);
        const failed = h.failedBatches > 0;
        expect(h.failures).toBe(failed ? 1 : 0);
        for (const [conn, list] of h.written) {
          const expected = h.sends.flatMap((s, n) => (s.conn === conn ? [n] : []));
          // In order, without gaps; after a failure only a prefix went out.
          expect(list).toEqual(failed ? expected.slice(0, list.length) : expected);
        }
        if (failed) expect([...h.cut].sort()).toEqual([1, 2, 3]);
        else {
          expect([...h.written.values()].reduce((n, l) => n + l.length, 0)).toBe(h.sends.length);
          expect(h.durableOps.size).toBe(h.persists); // every persist was committed, lazy ones too
        }
      }),
      {
        numRuns: 200,
        examples: [
          // An unordered send overtakes a batch in flight, but not an ordered send before it.
          [[
            { t: "input", conn: 0, script: ["p", "u0", "s1", "u1"] },
            { t: "turn" },
            { t: "input", conn: 1, script: ["l", "u2"] },
            { t: "turn" },
            { t: "resolve", pick: 0, fail: false },
            { t: "turn" },
          ]],
          // Two batches in flight, the later one completes first.
          [[
            { t: "input", conn: 0, script: ["p"] },
            { t: "turn" },
            { t: "input", conn: 1, script: ["p", "s0"] },
            { t: "turn" },
            { t: "resolve", pick: 1, fail: false },
            { t: "turn" },
          ]],
          // The first batch fails while a send waits behind the second: it never goes out.
          [[
            { t: "input", conn: 0, script: ["s1", "p", "s0"] },
            { t: "turn" },
            { t: "input", conn: 1, script: ["p", "s2"] },
            { t: "turn" },
            { t: "resolve", pick: 1, fail: false },
            { t: "resolve", pick: 0, fail: true },
            { t: "turn" },
            { t: "input", conn: 2, script: ["s0"] },
            { t: "turn" },
          ]],
        ],
      },
    );
  });
});
