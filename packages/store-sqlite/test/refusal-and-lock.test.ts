// Regression tests (found by review): a refused database stays untouched also when a crash left a
// WAL, and a refused second open in this process keeps the first store's lock for other processes.
import "./native.js";
import { createHash } from "node:crypto";
import { execFileSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, describe, expect, it } from "vitest";
import type { StoreWrite } from "@harbormq/core";
import { APPLICATION_ID, DATABASE_FILE, SCHEMA_VERSION, StoreCorruptError, StoreLockedError, StoreVersionError, openSqliteStore } from "../src/index.js";
import { SCHEMA_V1 } from "../src/schema.js";

const root = mkdtempSync(join(tmpdir(), "harbormq-refusal-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const newDir = (): string => {
  const d = join(root, `d${n++}`);
  mkdirSync(d, { recursive: true });
  return d;
};
const sha = (file: string): string => (existsSync(file) ? createHash("sha256").update(readFileSync(file)).digest("hex") : "missing");
const sessionPut = (clientId: string): StoreWrite => ({ op: "session-put", session: { clientId, protocolVersion: 4, expiryInterval: 100, disconnectedAt: undefined } });

/** The files a broker killed with -9 leaves behind: the database and a WAL holding its last
 *  transactions (copied while the writer is still open, so nothing was checkpointed). */
function crashedDatabase(prepare: (db: Database.Database) => void): string {
  const live = newDir();
  const db = new Database(join(live, DATABASE_FILE));
  db.pragma("journal_mode = WAL");
  db.pragma("wal_autocheckpoint = 0");
  prepare(db);
  const dir = newDir();
  copyFileSync(join(live, DATABASE_FILE), join(dir, DATABASE_FILE));
  copyFileSync(join(live, `${DATABASE_FILE}-wal`), join(dir, `${DATABASE_FILE}-wal`));
  db.close();
  return dir;
}

/** Runs in another process: tries to take the write lock of `file`; "locked: ..." or "got the lock". */
function otherProcessTries(file: string): string {
  const script = `
    const Database = require("better-sqlite3");
    const db = new Database(${JSON.stringify(file)}, { timeout: 0 });
    try { db.exec("BEGIN EXCLUSIVE"); db.exec("ROLLBACK"); process.stdout.write("got the lock"); }
    catch (e) { process.stdout.write("locked: " + e.code); }
    finally { db.close(); }`;
  return execFileSync(process.execPath, ["-e", script], { cwd: process.cwd(), encoding: "utf8" });
}

describe("refused data is left untouched, also with a WAL left by a crash", () => {
  // Closing the last read-write connection of a WAL database checkpoints the WAL into the main
  // file and deletes it, so the checks run on a read-only connection first (it may create a
  // -shm, which these tests do not compare).
  it("a newer format version with a hot WAL: StoreVersionError, and neither file changes", async () => {
    const dir = crashedDatabase((db) => {
      db.exec("CREATE TABLE future (x)");
      db.pragma(`application_id = ${APPLICATION_ID}`);
      db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
      db.exec("INSERT INTO future VALUES (1), (2), (3)");
    });
    const file = join(dir, DATABASE_FILE);
    const wal = `${file}-wal`;
    const before = [sha(file), sha(wal)];
    await expect(openSqliteStore({ dir })).rejects.toBeInstanceOf(StoreVersionError);
    expect([sha(file), sha(wal)]).toEqual(before);
  });

  it("another application's database with a hot WAL: StoreCorruptError, and neither file changes", async () => {
    const dir = crashedDatabase((db) => {
      db.exec("CREATE TABLE other (x)");
      db.pragma("application_id = 1234");
      db.exec("INSERT INTO other VALUES ('precious')");
    });
    const file = join(dir, DATABASE_FILE);
    const wal = `${file}-wal`;
    const before = [sha(file), sha(wal)];
    await expect(openSqliteStore({ dir })).rejects.toBeInstanceOf(StoreCorruptError);
    expect([sha(file), sha(wal)]).toEqual(before);
  });

  it("a harbormq version 1 database with a hot WAL is migrated with the WAL's transactions, locked, and no -shm is left", async () => {
    const dir = crashedDatabase((db) => {
      db.exec(SCHEMA_V1);
      db.pragma(`application_id = ${APPLICATION_ID}`);
      db.pragma("user_version = 1");
      db.exec("INSERT INTO sessions VALUES ('a', 4, 100, NULL, 0)"); // only in the WAL
    });
    const file = join(dir, DATABASE_FILE);
    const store = await openSqliteStore({ dir });
    // The read-only inspection's -shm is removed once the store holds the lock (its own WAL
    // index lives in memory).
    expect(existsSync(`${file}-shm`)).toBe(false);
    expect(otherProcessTries(file)).toMatch(/^locked/);
    expect((await store.restore(10)).sessions.map((s) => [s.meta.clientId, s.sendHorizon])).toEqual([["a", 0]]);
    await store.apply([sessionPut("b")]);
    await store.close();
    expect(existsSync(`${file}-shm`)).toBe(false);
    const raw = new Database(file, { readonly: true });
    expect(raw.pragma("user_version", { simple: true })).toBe(SCHEMA_VERSION);
    expect(raw.prepare("SELECT client_id FROM sessions ORDER BY client_id").pluck().all()).toEqual(["a", "b"]);
    raw.close();
  });
});

describe("the data-directory lock holds for other processes", () => {
  // SQLite's lock is a POSIX fcntl lock, and POSIX drops ALL of a process's fcntl locks on a file
  // when the process closes ANY descriptor of it. openDatabase() reads the header with plain fs,
  // so a second open of a file this process holds must be refused before that read: otherwise a
  // refused second openSqliteStore() released the first store's lock, and another broker process
  // could open the directory and write under the running one.
  it("a refused second open in the same process does not release the first store's lock", async () => {
    const dir = newDir();
    const file = join(dir, DATABASE_FILE);
    const first = await openSqliteStore({ dir });
    await first.apply([sessionPut("a")]);
    expect(otherProcessTries(file)).toMatch(/^locked/); // the lock works...
    await expect(openSqliteStore({ dir })).rejects.toBeInstanceOf(StoreLockedError);
    expect(otherProcessTries(file)).toMatch(/^locked/); // ...and still works now
    await first.close();
    expect(otherProcessTries(file)).toBe("got the lock");
  });

  it("the same file under another path (a symlinked directory, `file` instead of `dir`) is refused too, keeping the lock", async () => {
    const dir = newDir();
    const file = join(dir, DATABASE_FILE);
    const alias = join(newDir(), "alias");
    symlinkSync(dir, alias);
    const first = await openSqliteStore({ dir });
    await expect(openSqliteStore({ dir: alias })).rejects.toBeInstanceOf(StoreLockedError);
    await expect(openSqliteStore({ file: join(alias, DATABASE_FILE) })).rejects.toBeInstanceOf(StoreLockedError);
    expect(otherProcessTries(file)).toMatch(/^locked/);
    await first.close();
    // closed: the file is free again, under any of its names
    const second = await openSqliteStore({ file: join(alias, DATABASE_FILE) });
    expect(otherProcessTries(file)).toMatch(/^locked/);
    await second.close();
  });
});
