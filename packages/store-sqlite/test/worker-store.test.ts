// The SQLite store in a worker thread: the shared Store contract, open errors keeping their
// classes, group commit across the thread boundary, close, and fail-stop when the worker dies.
// The worker runs dist/worker.js (plain Node runs no TypeScript): `npm test` builds first, and
// beforeAll runs `tsc -b` on this package (a no-op when dist is current) for a bare vitest run.
import "./native.js";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { StoreWrite } from "@harbormq/core";
import { message, queuePut, storeConformance } from "../../broker/test/store-conformance.js";
import {
  DATABASE_FILE,
  SCHEMA_VERSION,
  StoreCorruptError,
  StoreLockedError,
  StoreOpenError,
  StoreVersionError,
  WorkerSqliteStore,
  openSqliteStore,
  openSqliteStoreInWorker,
} from "../src/index.js";
import { workerOf } from "../src/worker-store.js";

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, "..", "..", "..");
const root = mkdtempSync(join(tmpdir(), "harbormq-worker-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const newDir = (): string => join(root, `d${n++}`);
const sessionPut = (clientId: string): StoreWrite => ({ op: "session-put", session: { clientId, protocolVersion: 4, expiryInterval: 100, disconnectedAt: undefined } });

beforeAll(() => {
  execFileSync(join(repo, "node_modules", ".bin", "tsc"), ["-b", "packages/store-sqlite"], { cwd: repo, stdio: "pipe" });
}, 120_000);

for (const synchronous of ["full", "normal"] as const) {
  storeConformance(`WorkerSqliteStore (file, synchronous ${synchronous})`, async () => {
    const dir = newDir();
    let store = await openSqliteStoreInWorker({ dir, synchronous });
    return {
      store,
      reopen: async () => {
        await store.close();
        store = await openSqliteStoreInWorker({ dir, synchronous });
        return store;
      },
    };
  }, { numRuns: synchronous === "full" ? 25 : 10 });
}

storeConformance("WorkerSqliteStore (:memory:)", async () => ({ store: await openSqliteStoreInWorker({ file: ":memory:" }) }), { numRuns: 30 });

/** The rejection of a promise that must reject. */
async function failure(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (error) {
    return error as Error;
  }
  throw new Error("expected a rejection");
}

describe("open errors keep their class and message", () => {
  it("StoreLockedError while another store (in a worker or not) holds the directory", async () => {
    const dir = newDir();
    const first = await openSqliteStoreInWorker({ dir });
    expect(first.synchronous).toBe("full");
    expect(first.file).toBe(join(dir, DATABASE_FILE));
    const fromWorker = await failure(openSqliteStoreInWorker({ dir }));
    const direct = await failure(openSqliteStore({ dir }));
    expect(fromWorker).toBeInstanceOf(StoreLockedError);
    expect(fromWorker.message).toBe(direct.message);
    expect((fromWorker as StoreLockedError).file).toBe(join(dir, DATABASE_FILE));
    expect((fromWorker.cause as { code?: string }).code).toBe("SQLITE_BUSY");
    await first.close();
    // and the other way round: a SqliteStore on this thread keeps the worker out
    const here = await openSqliteStore({ dir });
    expect(await failure(openSqliteStoreInWorker({ dir }))).toBeInstanceOf(StoreLockedError);
    await here.close();
  });

  it("StoreVersionError for a newer format version", async () => {
    const dir = newDir();
    await (await openSqliteStore({ dir })).close();
    const raw = new Database(join(dir, DATABASE_FILE));
    raw.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    raw.close();
    const fromWorker = await failure(openSqliteStoreInWorker({ dir }));
    const direct = await failure(openSqliteStore({ dir }));
    expect(fromWorker).toBeInstanceOf(StoreVersionError);
    expect(fromWorker.message).toBe(direct.message);
    expect((fromWorker as StoreVersionError).found).toBe(SCHEMA_VERSION + 1);
    expect((fromWorker as StoreVersionError).supported).toBe(SCHEMA_VERSION);
  });

  it("StoreCorruptError for a file that is not a database, or a damaged one", async () => {
    const text = newDir();
    mkdirSync(text);
    writeFileSync(join(text, DATABASE_FILE), "not a database".repeat(500));
    const fromWorker = await failure(openSqliteStoreInWorker({ dir: text }));
    expect(fromWorker).toBeInstanceOf(StoreCorruptError);
    expect(fromWorker.message).toBe((await failure(openSqliteStore({ dir: text }))).message);

    const damaged = newDir();
    mkdirSync(damaged);
    const bytes = Buffer.alloc(8192, 0x5a);
    bytes.write("SQLite format 3\0", 0, "latin1"); // a valid header over garbage pages
    writeFileSync(join(damaged, DATABASE_FILE), bytes);
    const e = await failure(openSqliteStoreInWorker({ dir: damaged }));
    const direct = await failure(openSqliteStore({ dir: damaged }));
    expect(direct).toBeInstanceOf(StoreOpenError);
    expect(e.constructor).toBe(direct.constructor);
    expect(e.message).toBe(direct.message);

    const other = newDir();
    mkdirSync(other);
    const raw = new Database(join(other, DATABASE_FILE));
    raw.exec("CREATE TABLE notes (x TEXT)");
    raw.close();
    const foreign = await failure(openSqliteStoreInWorker({ dir: other }));
    expect(foreign).toBeInstanceOf(StoreCorruptError);
    expect(foreign.message).toBe((await failure(openSqliteStore({ dir: other }))).message);
  });

  it("TypeError for bad options", async () => {
    for (const options of [{}, { dir: newDir(), file: ":memory:" }, { file: ":memory:", synchronous: "off" as "full" }]) {
      const e = await failure(openSqliteStoreInWorker(options));
      expect(e).toBeInstanceOf(TypeError);
      expect(e.message).toBe((await failure(openSqliteStore(options))).message);
    }
  });

  it("an invalid batch rejects with SqliteStore's message (and the SQLite code)", async () => {
    const store = await openSqliteStoreInWorker({ file: ":memory:" });
    const e = await failure(store.apply([sessionPut("a"), queuePut("a", 1, 42)]));
    expect(e.message).toBe("queue-put: unknown message 42 for a");
    await store.apply([{ op: "message-put", message: message(1) }, queuePut("a", 1, 1), queuePut("a", 2, 1)]);
    const duplicate = await failure(store.apply([queuePut("a", 1, 1)]));
    expect(duplicate.name).toBe("SqliteError");
    expect((duplicate as Error & { code?: string }).code).toMatch(/^SQLITE_CONSTRAINT/);
    await store.close();
  });
});

describe("group commit across the thread boundary", () => {
  it("commits applies sent in one turn in fewer transactions than applies, all resolved after commit", async () => {
    const dir = newDir();
    const store = await openSqliteStoreInWorker({ dir });
    const before = await store.stats();
    const calls = Array.from({ length: 200 }, (_, i) => store.apply([sessionPut(`c${i}`)]));
    await Promise.all(calls);
    const after = await store.stats();
    expect(after.applies - before.applies).toBe(200);
    expect(after.commits - before.commits).toBeGreaterThanOrEqual(1);
    expect(after.commits - before.commits).toBeLessThan(200);
    // every resolved apply is committed: visible to another connection once the lock is gone
    await store.close();
    const raw = new Database(join(dir, DATABASE_FILE));
    expect(raw.prepare("SELECT count(*) FROM sessions").pluck().get()).toBe(200);
    raw.close();
  });
});

describe("close", () => {
  it("commits pending applies, releases the lock, ends the worker; later calls reject", async () => {
    const dir = newDir();
    const store = await openSqliteStoreInWorker({ dir });
    const late = store.apply([sessionPut("late")]);
    let exited = false;
    workerOf(store).once("exit", () => (exited = true));
    const closing = store.close();
    expect(store.close()).toBe(closing); // idempotent
    await closing;
    await late;
    expect(exited).toBe(true);
    for (const call of [store.apply([sessionPut("x")]), store.load("late", 0, 1), store.restore(1), store.stats()]) {
      await expect(call).rejects.toThrow(/store is closed/);
    }
    const again = await openSqliteStoreInWorker({ dir }); // the lock is free
    expect((await again.restore(1)).sessions.map((s) => s.meta.clientId)).toEqual(["late"]);
    await again.close();
  });

  it("the caller's payloads are copied, not detached", async () => {
    const store = await openSqliteStoreInWorker({ file: ":memory:" });
    const m = message(1, "t", [1, 2, 3]);
    await store.apply([sessionPut("a"), { op: "message-put", message: m }, queuePut("a", 1, 1)]);
    expect(Array.from(m.payload)).toEqual([1, 2, 3]);
    expect(m.payload.buffer.byteLength).toBe(3);
    await store.close();
  });
});

describe("fail-stop when the worker dies", () => {
  it("rejects the pending calls and every later one, never hangs; the lock dies with the thread", async () => {
    const dir = newDir();
    const store = await openSqliteStoreInWorker({ dir });
    await store.apply([sessionPut("a")]);
    const pending = Array.from({ length: 20 }, (_, i) => store.apply([sessionPut(`p${i}`)]));
    const read = store.restore(10);
    void workerOf(store).terminate();
    // sent to the dying thread before its exit is seen: pending, never answered
    const afterKill = Array.from({ length: 5 }, (_, i) => store.apply([sessionPut(`k${i}`)]));
    const results = await Promise.allSettled([...pending, read]);
    // those sent before the kill may have been answered; the rest reject, none is left waiting
    for (const r of results) if (r.status === "rejected") expect((r.reason as Error).message).toMatch(/worker thread stopped/);
    for (const call of afterKill) await expect(call).rejects.toThrow(/worker thread stopped/);
    for (const call of [store.apply([sessionPut("b")]), store.load("a", 0, 1), store.restore(1), store.stats(), store.close()]) {
      await expect(call).rejects.toThrow(/worker thread stopped/);
    }
    const again = await openSqliteStoreInWorker({ dir });
    const ids = (await again.restore(1)).sessions.map((s) => s.meta.clientId);
    expect(ids).toContain("a");
    // what was acknowledged before the kill is there
    results.forEach((r, i) => {
      if (r.status === "fulfilled" && i < pending.length) expect(ids).toContain(`p${i}`);
    });
    await again.close();
  });
});

describe("process lifetime", () => {
  it("an open, idle store lets the process exit; pending writes keep it alive until committed", () => {
    const dir = newDir();
    const script = join(root, "lifetime.mjs");
    writeFileSync(
      script,
      `import { openSqliteStoreInWorker } from ${JSON.stringify(pathToFileURL(join(repo, "packages", "store-sqlite", "dist", "index.js")).href)};
const store = await openSqliteStoreInWorker({ dir: process.argv[2] });
const session = (clientId) => ({ op: "session-put", session: { clientId, protocolVersion: 4, expiryInterval: 1, disconnectedAt: undefined } });
await store.apply([session("first")]);
// not awaited, and the store is never closed: the process still exits, after the commit
void store.apply([session("second")]);
`,
    );
    execFileSync(process.execPath, [script, dir], { stdio: "pipe", timeout: 15_000 });
    const raw = new Database(join(dir, DATABASE_FILE));
    expect(raw.prepare("SELECT client_id FROM sessions ORDER BY client_id").pluck().all()).toEqual(["first", "second"]);
    raw.close();
  });
});

it("is a WorkerSqliteStore", async () => {
  const store = await openSqliteStoreInWorker({ file: ":memory:" });
  expect(store).toBeInstanceOf(WorkerSqliteStore);
  await store.close();
});
