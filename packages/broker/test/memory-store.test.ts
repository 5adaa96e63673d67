import { describe, expect, it } from "vitest";
import { MemoryStore, utf8Length } from "../src/memory-store.js";
import { message, queuePut, storeConformance } from "./store-conformance.js";

storeConformance("MemoryStore", async () => ({ store: new MemoryStore() }), { numRuns: 300 });

describe("MemoryStore", () => {
  it("resolves apply on a microtask, with the writes already visible", async () => {
    const store = new MemoryStore();
    let resolved = false;
    const p = store.apply([{ op: "session-put", session: { clientId: "a", protocolVersion: 4, expiryInterval: 0, disconnectedAt: undefined } }]).then(() => (resolved = true));
    expect(resolved).toBe(false);
    await Promise.resolve();
    expect(resolved).toBe(true);
    await p;
  });

  it("pages a long queue with deletions at the head and in the middle", async () => {
    const store = new MemoryStore();
    await store.apply([{ op: "message-put", message: message(1) }, ...Array.from({ length: 500 }, (_, i) => queuePut("a", i + 1, 1))]);
    await store.apply(Array.from({ length: 400 }, (_, i) => ({ op: "queue-delete" as const, clientId: "a", seq: i < 300 ? i + 1 : 2 * i })));
    const all = await store.load("a", 0, 1000);
    const expected = Array.from({ length: 500 }, (_, i) => i + 1).filter((s) => s > 300 && !(s % 2 === 0 && s >= 600) && !(s >= 600 && s <= 798 && s % 2 === 0));
    expect(all.map((e) => e.seq)).toEqual(expected);
    expect((await store.load("a", 450, 3)).map((e) => e.seq)).toEqual(expected.filter((s) => s > 450).slice(0, 3));
  });

  it("measures UTF-8 length like TextEncoder, surrogate pairs included", () => {
    for (const s of ["", "abc", "é", "€", "\u{1F600}", "a\uD800b", "\uDC00", "x\u{10FFFF}y"]) {
      expect(utf8Length(s)).toBe(new TextEncoder().encode(s).length);
    }
  });
});
