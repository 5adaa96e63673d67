// Opening a data directory: lock, format version, corruption, options, group commit, indexes.
import "./native.js";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, describe, expect, it } from "vitest";
import type { StoreWrite } from "@harbormq/core";
import { message, queuePut } from "../../broker/test/store-conformance.js";
import {
  APPLICATION_ID,
  DATABASE_FILE,
  SCHEMA_VERSION,
  StoreCorruptError,
  StoreLockedError,
  StoreOpenError,
  StoreVersionError,
  openSqliteStore,
} from "../src/index.js";
import { SCHEMA_V1 } from "../src/schema.js";
import { PAGE_SQL } from "../src/sqlite-store.js";

const root = mkdtempSync(join(tmpdir(), "harbormq-open-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const newDir = (): string => join(root, `d${n++}`);
const sha = (file: string): string => createHash("sha256").update(readFileSync(file)).digest("hex");
const sessionPut = (clientId: string): StoreWrite => ({ op: "session-put", session: { clientId, protocolVersion: 4, expiryInterval: 100, disconnectedAt: undefined } });

describe("data directory lock", () => {
  it("refuses a second store on the same directory while the first is open, then allows it", async () => {
    const dir = newDir();
    const first = await openSqliteStore({ dir });
    await first.apply([sessionPut("a")]);
    const second = openSqliteStore({ dir });
    await expect(second).rejects.toBeInstanceOf(StoreLockedError);
    await expect(second).rejects.toThrow(/in use by another broker/);
    // the first store is unaffected
    await first.apply([sessionPut("b")]);
    expect((await first.restore(10)).sessions.map((s) => s.meta.clientId)).toEqual(["a", "b"]);
    await first.close();
    const third = await openSqliteStore({ dir });
    expect((await third.restore(10)).sessions.map((s) => s.meta.clientId)).toEqual(["a", "b"]);
    await third.close();
  });

  it("refuses a plain SQLite connection too, so no other tool writes under a running broker", async () => {
    const dir = newDir();
    const store = await openSqliteStore({ dir });
    const other = new Database(join(dir, DATABASE_FILE), { timeout: 0 });
    expect(() => other.prepare("SELECT count(*) FROM sessions").get()).toThrow(/locked|busy/i);
    other.close();
    await store.close();
  });
});

describe("format checks (the file is never written when they fail)", () => {
  it("refuses a database of a newer format version", async () => {
    const dir = newDir();
    const store = await openSqliteStore({ dir });
    await store.apply([sessionPut("a")]);
    await store.close();
    const file = join(dir, DATABASE_FILE);
    const raw = new Database(file);
    raw.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    raw.pragma("journal_mode = DELETE"); // a single file to compare
    raw.close();
    const before = sha(file);
    const opened = openSqliteStore({ dir });
    await expect(opened).rejects.toBeInstanceOf(StoreVersionError);
    await expect(opened).rejects.toThrow(new RegExp(`version ${SCHEMA_VERSION + 1}.*upgrade harbormq`));
    expect(sha(file)).toBe(before);
  });

  it("refuses a file that is not a SQLite database", async () => {
    const dir = newDir();
    mkdirSync(dir);
    const file = join(dir, DATABASE_FILE);
    writeFileSync(file, "this is not a database, it is a text file that happens to be long enough to look like one".repeat(100));
    const before = sha(file);
    const opened = openSqliteStore({ dir });
    await expect(opened).rejects.toBeInstanceOf(StoreCorruptError);
    await expect(opened).rejects.toThrow(/not a SQLite database.*left untouched/);
    expect(sha(file)).toBe(before);
  });

  it("refuses a SQLite file whose pages are damaged", async () => {
    const dir = newDir();
    const store = await openSqliteStore({ dir });
    await store.apply([sessionPut("a")]);
    await store.close();
    const file = join(dir, DATABASE_FILE);
    const raw = new Database(file);
    raw.pragma("journal_mode = DELETE");
    raw.close();
    const bytes = readFileSync(file);
    bytes.fill(0xa5, 16, 100); // the rest of the header: page size, counters, schema cookie
    writeFileSync(file, bytes);
    const before = sha(file);
    const opened = openSqliteStore({ dir });
    await expect(opened).rejects.toBeInstanceOf(StoreOpenError);
    expect(sha(file)).toBe(before);
  });

  it("refuses another application's SQLite database", async () => {
    const dir = newDir();
    mkdirSync(dir);
    const file = join(dir, DATABASE_FILE);
    const raw = new Database(file);
    raw.exec("CREATE TABLE notes (x TEXT); INSERT INTO notes VALUES ('mine')");
    raw.close();
    const before = sha(file);
    await expect(openSqliteStore({ dir })).rejects.toBeInstanceOf(StoreCorruptError);
    expect(sha(file)).toBe(before);
    const other = new Database(file);
    other.pragma("application_id = 1234");
    other.close();
    await expect(openSqliteStore({ dir })).rejects.toThrow(/application_id 1234/);
  });

  it("marks a new database with harbormq's application id and format version, in WAL mode", async () => {
    const dir = newDir();
    await (await openSqliteStore({ dir })).close();
    const raw = new Database(join(dir, DATABASE_FILE), { readonly: true });
    expect(raw.pragma("application_id", { simple: true })).toBe(APPLICATION_ID);
    expect(raw.pragma("user_version", { simple: true })).toBe(SCHEMA_VERSION);
    expect(raw.pragma("journal_mode", { simple: true })).toBe("wal");
    raw.close();
  });

  it("opens an empty (zero-byte) file as a new database", async () => {
    const dir = newDir();
    mkdirSync(dir);
    writeFileSync(join(dir, DATABASE_FILE), "");
    const store = await openSqliteStore({ dir });
    expect(await store.restore(1)).toEqual({ sessions: [], retained: [], lastMessageId: 0 });
    await store.close();
  });
});

describe("format version 1 (before send_horizon)", () => {
  /** A version 1 file as harbormq 1 left it: its DDL, its pragmas, rows written by hand. */
  const writeV1 = (dir: string): string => {
    mkdirSync(dir);
    const file = join(dir, DATABASE_FILE);
    const raw = new Database(file);
    raw.exec(SCHEMA_V1);
    raw.pragma(`application_id = ${APPLICATION_ID}`);
    raw.pragma("user_version = 1");
    raw.exec(`
      INSERT INTO sessions VALUES ('a', 5, 60, 1234, 3), ('b', 4, 4294967295, NULL, 0), ('ghost', NULL, NULL, NULL, 7);
      INSERT INTO subscriptions VALUES ('a', 'x/#', 1, 0, 0, 0, 9);
      INSERT INTO messages VALUES (1, 't/1', x'0102', 1, 0, NULL, 1001, 5, 3);
      INSERT INTO queue VALUES ('a', 1, 1, 1, 0, 1, 1, '9', 5), ('a', 3, 1, 1, 0, 0, NULL, NULL, 5), ('ghost', 7, 1, 1, 0, 0, NULL, NULL, 5);
      INSERT INTO qos2 VALUES ('b', 12);
      INSERT INTO retained VALUES ('r', 2, x'03', 0, 1, NULL, 1002);
      UPDATE counters SET last_message_id = 2;`);
    raw.pragma("journal_mode = WAL");
    raw.close();
    return file;
  };

  it("is migrated to the current version on open, keeping all its data, sendHorizon 0", async () => {
    const dir = newDir();
    const file = writeV1(dir);
    const store = await openSqliteStore({ dir });
    const snap = await store.restore(10);
    expect(snap.lastMessageId).toBe(2);
    expect(snap.retained.map((m) => [m.topic, m.id, Array.from(m.payload)])).toEqual([["r", 2, [3]]]);
    expect(snap.sessions.map((s) => [s.meta, s.subscriptions.map((x) => x.filter), s.qos2, s.queueCount, s.queueBytes, s.lastSeq, s.sendHorizon])).toEqual([
      [{ clientId: "a", protocolVersion: 5, expiryInterval: 60, disconnectedAt: 1234 }, ["x/#"], [], 2, 10, 3, 0],
      [{ clientId: "b", protocolVersion: 4, expiryInterval: 4294967295, disconnectedAt: undefined }, [], [12], 0, 0, 0, 0],
    ]);
    expect(snap.sessions[0]!.queueHead.map((e) => [e.seq, e.state, e.packetId, e.subscriptionIds, e.message.id])).toEqual([
      [1, "sent", 1, [9], 1],
      [3, "queued", undefined, [], 1],
    ]);
    // the migrated store works, and the ghost's rows (no session-put) are still there
    await store.apply([{ op: "session-horizon", clientId: "a", seq: 3 }, { op: "session-horizon", clientId: "ghost", seq: 5 }, sessionPut("ghost")]);
    const ghost = (await store.restore(10)).sessions.find((s) => s.meta.clientId === "ghost")!;
    expect([ghost.queueCount, ghost.lastSeq, ghost.sendHorizon]).toEqual([1, 7, 5]);
    await store.close();
    const raw = new Database(file, { readonly: true });
    expect(raw.pragma("user_version", { simple: true })).toBe(SCHEMA_VERSION);
    expect(raw.prepare("SELECT client_id, send_horizon FROM sessions ORDER BY client_id").raw().all()).toEqual([["a", 3], ["b", 0], ["ghost", 5]]);
    raw.close();
    const again = await openSqliteStore({ dir }); // already current: opened as is
    expect((await again.restore(10)).sessions.map((s) => s.sendHorizon)).toEqual([3, 0, 5]);
    await again.close();
  });

  it("ends up with the same schema as a new database", async () => {
    const schema = (file: string): unknown => {
      const raw = new Database(file, { readonly: true });
      try {
        return raw.prepare("SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY name").all();
      } finally {
        raw.close();
      }
    };
    const oldDir = newDir();
    const oldFile = writeV1(oldDir);
    await (await openSqliteStore({ dir: oldDir })).close();
    const newDir_ = newDir();
    await (await openSqliteStore({ dir: newDir_ })).close();
    expect(schema(oldFile)).toEqual(schema(join(newDir_, DATABASE_FILE)));
  });
});

describe("options", () => {
  it("takes exactly one of dir and file, and a known synchronous mode", async () => {
    await expect(openSqliteStore({})).rejects.toBeInstanceOf(TypeError);
    await expect(openSqliteStore({ dir: newDir(), file: ":memory:" })).rejects.toBeInstanceOf(TypeError);
    await expect(openSqliteStore({ file: ":memory:", synchronous: "off" as "full" })).rejects.toThrow(/synchronous/);
  });

  it("uses synchronous FULL by default and NORMAL on request", async () => {
    const full = await openSqliteStore({ dir: newDir() });
    expect(full.synchronous).toBe("full");
    await full.close();
    const normal = await openSqliteStore({ dir: newDir(), synchronous: "normal" });
    expect(normal.synchronous).toBe("normal");
    await normal.close();
  });

  it("creates a missing data directory, nested", async () => {
    const dir = join(newDir(), "a", "b");
    await (await openSqliteStore({ dir })).close();
    expect(existsSync(join(dir, DATABASE_FILE))).toBe(true);
  });
});

describe("group commit", () => {
  it("commits every apply of one event-loop turn in one transaction, resolving after it", async () => {
    const store = await openSqliteStore({ dir: newDir() });
    const before = store.stats;
    const calls = Array.from({ length: 50 }, (_, i) => store.apply([sessionPut(`c${i}`)]));
    expect(store.stats).toEqual(before); // nothing committed synchronously
    await Promise.all(calls);
    expect(store.stats).toEqual({ commits: before.commits + 1, applies: before.applies + 50 });
    await store.apply([sessionPut("x")]);
    expect(store.stats.commits).toBe(before.commits + 2);
    await store.close();
  });

  it("commits pending applies before close", async () => {
    const dir = newDir();
    const store = await openSqliteStore({ dir });
    const p = store.apply([sessionPut("late")]);
    await store.close();
    await p;
    const again = await openSqliteStore({ dir });
    expect((await again.restore(1)).sessions.map((s) => s.meta.clientId)).toEqual(["late"]);
    await again.close();
  });
});

describe("large queues", () => {
  it("pages a queue with a range scan of its primary key, never a full scan or a sort", () => {
    const dir = newDir();
    return openSqliteStore({ dir }).then(async (store) => {
      await store.close();
      const raw = new Database(join(dir, DATABASE_FILE), { readonly: true });
      const plan = (raw.prepare(`EXPLAIN QUERY PLAN ${PAGE_SQL}`).all("a", 0, 10) as { detail: string }[]).map((r) => r.detail);
      raw.close();
      expect(plan.join(" | ")).toMatch(/SEARCH q USING PRIMARY KEY \(client_id=\? AND seq>\?\)/);
      expect(plan.join(" | ")).toMatch(/SEARCH m USING INTEGER PRIMARY KEY \(rowid=\?\)/);
      expect(plan.join(" | ")).not.toMatch(/SCAN|TEMP B-TREE/);
    });
  });

  it("restores a 1,000,000-entry queue reading only the head window, and pages it in order", async () => {
    const dir = newDir();
    const store = await openSqliteStore({ dir });
    await store.apply([sessionPut("big"), { op: "message-put", message: message(1, "big/topic", Array.from({ length: 100 }, (_, i) => i)) }, queuePut("big", 1, 1)]);
    await store.close();
    // Fill the queue with SQL (a million apply() calls would take the whole test budget).
    const raw = new Database(join(dir, DATABASE_FILE));
    raw.exec(`
      WITH RECURSIVE s(n) AS (SELECT 2 UNION ALL SELECT n + 1 FROM s WHERE n < 1000000)
      INSERT INTO queue (client_id, seq, message_id, qos, retain, state, packet_id, subscription_ids, bytes)
        SELECT 'big', n, 1, 1, 0, 0, NULL, NULL, 109 FROM s;
      UPDATE messages SET refs = 1000000 WHERE id = 1;
      UPDATE sessions SET last_seq = 1000000 WHERE client_id = 'big';`);
    raw.close();
    const reopened = await openSqliteStore({ dir });
    const heapBefore = process.memoryUsage().heapUsed;
    const snap = await reopened.restore(1000);
    const heapGrowth = process.memoryUsage().heapUsed - heapBefore;
    const big = snap.sessions[0]!;
    expect(big.queueHead.length).toBe(1000);
    expect(big.queueHead[999]!.seq).toBe(1000);
    expect([big.queueCount, big.queueBytes, big.lastSeq]).toEqual([1_000_000, 109_000_000, 1_000_000]);
    // a million entry objects would be hundreds of MB; the head window is well under 32 MB
    expect(heapGrowth).toBeLessThan(32 * 1024 * 1024);
    const page = await reopened.load("big", 765_432, 1000);
    expect(page.map((e) => e.seq)).toEqual(Array.from({ length: 1000 }, (_, i) => 765_433 + i));
    expect((await reopened.load("big", 999_990, 1000)).length).toBe(10);
    await reopened.close();
  }, 60_000);
});
