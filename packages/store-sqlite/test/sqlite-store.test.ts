import "./native.js";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { storeConformance } from "../../broker/test/store-conformance.js";
import { openSqliteStore } from "../src/index.js";

const root = mkdtempSync(join(tmpdir(), "harbormq-sqlite-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;

storeConformance("SqliteStore (file, synchronous full)", async () => {
  const dir = join(root, `s${n++}`);
  let store = await openSqliteStore({ dir });
  return {
    store,
    reopen: async () => {
      await store.close();
      store = await openSqliteStore({ dir });
      return store;
    },
  };
}, { numRuns: 40 });

storeConformance("SqliteStore (:memory:)", async () => ({ store: await openSqliteStore({ file: ":memory:" }) }), { numRuns: 60 });

describe("durability setting", () => {
  it("is FULL unless NORMAL is asked for, and the database really runs with it", async () => {
    const full = await openSqliteStore({ dir: join(root, "sync-default") });
    const normal = await openSqliteStore({ dir: join(root, "sync-normal"), synchronous: "normal" });
    try {
      expect(full.synchronous).toBe("full");
      expect(normal.synchronous).toBe("normal");
    } finally {
      await full.close();
      await normal.close();
    }
  });
});
