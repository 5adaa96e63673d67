import "./native.js";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll } from "vitest";
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
