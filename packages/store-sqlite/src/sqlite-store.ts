// The durable Store: better-sqlite3 in WAL mode with group commit. Every apply() of one turn of
// the event loop goes into one transaction (one fsync), each call inside its own savepoint so a
// failing call leaves nothing behind without failing its neighbours; promises resolve after COMMIT.
import { closeSync, existsSync, mkdirSync, openSync, readSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import type { Store } from "@harbormq/broker";
import type {
  MessageId,
  RestoredSession,
  Snapshot,
  StoreWrite,
  StoredMessage,
  StoredQueueEntry,
  StoredSessionMeta,
  StoredSubscription,
} from "@harbormq/core";
import { StoreCorruptError, StoreLockedError, StoreOpenError, StoreVersionError } from "./errors.js";
import { decodeProperties, encodeProperties } from "./properties.js";
import { APPLICATION_ID, MIGRATIONS, SCHEMA_V1, SCHEMA_VERSION } from "./schema.js";

type QueueUpdateWrite = Extract<StoreWrite, { op: "queue-update" }>;
type QueueDeleteWrite = Extract<StoreWrite, { op: "queue-delete" }>;

type DB = Database.Database;
type Statement = Database.Statement;

export interface SqliteStoreOptions {
  /** Data directory (created if missing); the database is `<dir>/harbormq.db`. */
  readonly dir?: string;
  /** Database file instead of `dir`; ":memory:" for a throwaway database (no lock, no WAL). */
  readonly file?: string;
  /** "full" (default): a COMMIT is on disk before apply() resolves, also across power loss.
   *  "normal": WAL is fsynced only at checkpoints; a process crash loses nothing, a power loss
   *  or OS crash may lose the last transactions (never corrupts). See README. */
  readonly synchronous?: "full" | "normal";
}

export const DATABASE_FILE = "harbormq.db";

const STATES = ["queued", "sent", "released"] as const;
const stateCode = { queued: 0, sent: 1, released: 2 } as const;
const SQLITE_MAGIC = "SQLite format 3\0";

/** The database files stores of this process have open, by identity (device and inode: another
 *  spelling of the path, a symlink or a hard link is the same file). SQLite's lock is a POSIX
 *  fcntl lock, and closing ANY descriptor of a file drops all of the process's locks on it, so a
 *  second open of a file this process holds must be refused before anything opens it with fs
 *  (openDatabase reads the header that way). Kept on globalThis so that two copies of this
 *  package loaded in one process see each other's stores. */
const openFiles: Set<string> = ((globalThis as unknown as Record<symbol, Set<string> | undefined>)[Symbol.for("@harbormq/store-sqlite:open-files")] ??=
  new Set<string>());

/** Device and inode of `file`, or undefined when there is no such file (then no store has it). */
function fileIdentity(file: string): string | undefined {
  const st = statSync(file, { bigint: true, throwIfNoEntry: false });
  return st === undefined ? undefined : `${st.dev}:${st.ino}`;
}

interface Pending {
  readonly writes: readonly StoreWrite[];
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

function utf8Length(s: string): number {
  return Buffer.byteLength(s, "utf8");
}

/** A plain Uint8Array over better-sqlite3's Buffer (no copy). */
function bytes(b: Buffer): Uint8Array {
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Opens (creating if needed) the store; see SqliteStoreOptions. Throws a StoreOpenError subclass
 *  (StoreLockedError, StoreVersionError, StoreCorruptError) when the data cannot be used. */
export function openSqliteStore(options: SqliteStoreOptions): Promise<SqliteStore> {
  try {
    return Promise.resolve(new SqliteStore(options));
  } catch (error) {
    return Promise.reject(error);
  }
}

export class SqliteStore implements Store {
  readonly file: string;
  private readonly db: DB;
  /** This store's entry in openFiles (undefined for ":memory:"). */
  private readonly identity: string | undefined;
  private pending: Pending[] = [];
  private scheduled = false;
  private closed = false;
  private lastMessageId: number;
  /** Highest seq queued per client in the current transaction (or savepoint), written to
   *  sessions.last_seq once at its end. */
  private readonly seqs = new Map<string, number>();
  /** Highest session-horizon per client in the current transaction (or savepoint), written to
   *  sessions.send_horizon once at its end, like `seqs`: a draining session raises it with
   *  nearly every send, and one statement per client per commit is enough. */
  private readonly horizons = new Map<string, number>();
  private txLastMessageId = 0;
  private touchedMessages = false;
  private commits = 0;
  private applies = 0;

  private readonly s: ReturnType<typeof prepare>;
  /** Queue-puts of the current apply still to come, per message put in it (refs prepaid). */
  private readonly prepaid = new Map<MessageId, { left: number; readonly bytes: number }>();
  /** queue-update / queue-delete writes of the current apply not run yet (see flushRuns). */
  private updates: QueueUpdateWrite[] = [];
  private deletes: QueueDeleteWrite[] = [];
  private readonly applyFast: (batch: readonly Pending[]) => void;
  private readonly applyIsolated: (batch: readonly Pending[], failures: (unknown | undefined)[]) => void;

  constructor(options: SqliteStoreOptions) {
    if ((options.dir === undefined) === (options.file === undefined)) throw new TypeError("openSqliteStore: give exactly one of `dir` and `file`");
    this.file = options.file ?? join(options.dir!, DATABASE_FILE);
    if (options.dir !== undefined) {
      try {
        mkdirSync(options.dir, { recursive: true });
      } catch (error) {
        throw translate(error, this.file);
      }
    }
    const synchronous = options.synchronous ?? "full";
    if (synchronous !== "full" && synchronous !== "normal") throw new TypeError(`openSqliteStore: synchronous must be "full" or "normal", got ${String(synchronous)}`);
    const memory = this.file === ":memory:";
    // Before anything opens the file: a store of this process holds it (see openFiles).
    const held = memory ? undefined : fileIdentity(this.file);
    if (held !== undefined && openFiles.has(held)) throw new StoreLockedError(this.file);
    this.db = openDatabase(this.file, synchronous);
    try {
      this.s = prepare(this.db);
    } catch (error) {
      this.db.close();
      throw new StoreCorruptError(this.file, `unexpected schema: ${(error as Error).message}`, { cause: error });
    }
    // (a new database file exists only now)
    this.identity = held ?? (memory ? undefined : fileIdentity(this.file));
    if (this.identity !== undefined) openFiles.add(this.identity);
    this.lastMessageId = (this.s.getCounters.get() as { last_message_id: number }).last_message_id;
    // The common case: every apply of the turn is valid, so all of them run in one transaction
    // without savepoints. If one throws, the transaction is rolled back and the turn is redone by
    // applyIsolated, with a savepoint per apply (nested db.transaction() calls are savepoints),
    // so only the invalid calls fail.
    this.applyFast = this.db.transaction((batch: readonly Pending[]) => {
      this.txLastMessageId = this.lastMessageId;
      for (const p of batch) this.write(p.writes);
      this.endTransaction();
    });
    const applyOne = this.db.transaction((writes: readonly StoreWrite[]) => {
      this.write(writes);
      this.flushSessionCounters();
    });
    this.applyIsolated = this.db.transaction((batch: readonly Pending[], failures: (unknown | undefined)[]) => {
      this.txLastMessageId = this.lastMessageId;
      for (const p of batch) {
        const before = this.txLastMessageId;
        try {
          applyOne(p.writes);
          failures.push(undefined);
        } catch (error) {
          this.txLastMessageId = before;
          this.dropSessionCounters();
          failures.push(error);
        }
      }
      this.endTransaction();
    });
  }

  /** Transactions committed and apply() calls they carried (group commit: applies >= commits). */
  get stats(): { readonly commits: number; readonly applies: number } {
    return { commits: this.commits, applies: this.applies };
  }

  /** The effective durability setting (PRAGMA synchronous). */
  get synchronous(): "full" | "normal" | "other" {
    const v = this.db.pragma("synchronous", { simple: true }) as number;
    return v === 2 ? "full" : v === 1 ? "normal" : "other";
  }

  restore(queueWindow: number): Promise<Snapshot> {
    if (this.closed) return Promise.reject(new Error("store is closed"));
    try {
      this.flush();
      const s = this.s;
      const rows = s.sessions.all() as SessionRow[];
      rows.sort((a, b) => cmp(a.client_id, b.client_id));
      const sessions: RestoredSession[] = rows.map((r) => {
        const totals = s.totals.get(r.client_id) as { n: number; bytes: number };
        return {
          meta: sessionMeta(r),
          subscriptions: (s.subscriptions.all(r.client_id) as SubscriptionRow[]).map(subscription).sort((a, b) => cmp(a.filter, b.filter)),
          qos2: (s.qos2.all(r.client_id) as number[]).sort((a, b) => a - b),
          queueHead: this.page(r.client_id, 0, queueWindow),
          queueCount: totals.n,
          queueBytes: totals.bytes,
          lastSeq: r.last_seq,
          sendHorizon: r.send_horizon,
        };
      });
      const retained = (s.retained.all() as MessageRow[]).map(messageFromRow).sort((a, b) => cmp(a.topic, b.topic));
      return Promise.resolve({ sessions, retained, lastMessageId: this.lastMessageId });
    } catch (error) {
      return Promise.reject(error);
    }
  }

  load(clientId: string, afterSeq: number, max: number): Promise<readonly StoredQueueEntry[]> {
    if (this.closed) return Promise.reject(new Error("store is closed"));
    try {
      this.flush();
      return Promise.resolve(this.page(clientId, afterSeq, max));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  apply(writes: readonly StoreWrite[]): Promise<void> {
    if (this.closed) return Promise.reject(new Error("store is closed"));
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ writes, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        // setImmediate, not a microtask: it runs after the I/O callbacks of this loop turn, so
        // the applies of every connection that had data this turn share one COMMIT.
        setImmediate(this.flushSoon);
      }
    });
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    try {
      this.flush(); // a failed COMMIT rejects the pending applies, not close()
      this.db.close(); // releases the exclusive lock
      if (this.identity !== undefined) openFiles.delete(this.identity);
      return Promise.resolve();
    } catch (error) {
      return Promise.reject(error);
    }
  }

  // -------------------------------------------------------------------------------------------

  private readonly flushSoon = (): void => {
    this.scheduled = false;
    if (!this.closed) this.flush();
  };

  /** Commits every pending apply in one transaction, then settles their promises. */
  private flush(): void {
    if (this.pending.length === 0) return;
    const batch = this.pending;
    this.pending = [];
    const failures: (unknown | undefined)[] = [];
    try {
      this.applyFast(batch);
    } catch {
      // An invalid apply, or the COMMIT failed (rolled back either way): redo call by call.
      this.dropSessionCounters();
      try {
        this.applyIsolated(batch, failures);
      } catch (error) {
        // COMMIT itself failed (disk full, I/O error): nothing of the batch is durable.
        this.dropSessionCounters();
        for (const p of batch) p.reject(error);
        return;
      }
    }
    if (this.txLastMessageId > this.lastMessageId) this.lastMessageId = this.txLastMessageId;
    this.commits++;
    this.applies += batch.length;
    for (let i = 0; i < batch.length; i++) {
      const failure = failures[i];
      if (failure === undefined) batch[i]!.resolve();
      else batch[i]!.reject(failure);
    }
  }

  private page(clientId: string, afterSeq: number, max: number): StoredQueueEntry[] {
    if (!(max >= 1)) return [];
    // LIMIT -1: no limit (a window of Infinity means "all of it").
    const rows = this.s.page.all(clientId, afterSeq, Number.isFinite(max) ? Math.floor(max) : -1) as PageRow[];
    const messages = new Map<MessageId, StoredMessage>(); // one object per message per page
    return rows.map((r) => {
      let message = messages.get(r[6]);
      if (message === undefined) {
        message = {
          id: r[6],
          topic: r[7],
          payload: bytes(r[8]),
          qos: r[9] as StoredMessage["qos"],
          retain: r[10] === 1,
          properties: decodeProperties(r[11]),
          receivedAt: r[12],
        };
        messages.set(r[6], message);
      }
      return {
        seq: r[0],
        message,
        qos: r[1] as StoredQueueEntry["qos"],
        retain: r[2] === 1,
        state: STATES[r[3]]!,
        packetId: r[4] ?? undefined,
        subscriptionIds: r[5] === null ? [] : r[5].split(",").map(Number),
      };
    });
  }

  /** Writes the buffered last_seq and send_horizon raises (see `seqs`, `horizons`). */
  private flushSessionCounters(): void {
    for (const [clientId, seq] of this.seqs) this.s.lastSeq.run(clientId, seq);
    this.seqs.clear();
    for (const [clientId, seq] of this.horizons) this.s.horizon.run(clientId, seq);
    this.horizons.clear();
  }

  /** Forgets the buffered raises of writes that were rolled back. */
  private dropSessionCounters(): void {
    this.seqs.clear();
    this.horizons.clear();
  }

  private endTransaction(): void {
    this.flushSessionCounters();
    if (this.txLastMessageId > this.lastMessageId) this.s.setLastMessageId.run(this.txLastMessageId);
  }

  /** The writes of one apply() call (last_seq and send_horizon raises are left in `seqs` and
   *  `horizons` for the caller). */
  private write(writes: readonly StoreWrite[]): void {
    const s = this.s;
    this.touchedMessages = false;
    // Left over only by an apply that threw (its savepoint was rolled back).
    this.updates = [];
    this.deletes = [];
    const prepaid = this.prepaid;
    prepaid.clear();
    // Count the queue-puts of each message put in this apply, to insert it with its final
    // refcount: one statement less per entry, and it never passes through refs = 0.
    for (const w of writes) {
      if (w.op === "message-put") prepaid.set(w.message.id, { left: 0, bytes: w.message.payload.length + utf8Length(w.message.topic) });
      else if (w.op === "queue-put") {
        const p = prepaid.get(w.messageId);
        if (p !== undefined) p.left++;
      }
    }
    for (const w of writes) {
      if (w.op === "queue-update") {
        this.updates.push(w);
        continue;
      }
      if (w.op === "queue-delete") {
        this.deletes.push(w);
        continue;
      }
      if (w.op === "session-horizon") {
        // Kept in `horizons` to the end of the transaction: besides it only session-delete touches
        // send_horizon (and drops the buffered value), session-put leaves it alone. It touches no
        // queue row, so the buffered queue runs stay unbroken (a drain interleaves horizon raises
        // with PUBACK deletes).
        const h = this.horizons.get(w.clientId);
        if (h === undefined || w.seq > h) this.horizons.set(w.clientId, w.seq);
        continue;
      }
      if (this.updates.length > 0 || this.deletes.length > 0) this.flushRuns();
      switch (w.op) {
        case "session-put": {
          const m = w.session;
          s.sessionPut.run(m.clientId, m.protocolVersion, m.expiryInterval, m.disconnectedAt ?? null);
          break;
        }
        case "session-delete": {
          const id = w.clientId;
          s.unrefSession.run(id);
          s.deleteQueue.run(id);
          s.deleteSubscriptions.run(id);
          s.deleteQos2.run(id);
          s.deleteSession.run(id);
          this.seqs.delete(id);
          this.horizons.delete(id);
          this.touchedMessages = true;
          break;
        }
        case "subscription-put": {
          const x = w.subscription;
          s.subscriptionPut.run(w.clientId, x.filter, x.qos, x.noLocal ? 1 : 0, x.retainAsPublished ? 1 : 0, x.retainHandling, x.subscriptionId ?? null);
          break;
        }
        case "subscription-delete":
          s.subscriptionDelete.run(w.clientId, w.filter);
          break;
        case "message-put": {
          const m = w.message;
          const p = prepaid.get(m.id)!;
          s.messagePut.run(m.id, m.topic, m.payload, m.qos, m.retain ? 1 : 0, encodeProperties(m.properties), m.receivedAt, p.bytes, p.left);
          if (m.id > this.txLastMessageId) this.txLastMessageId = m.id;
          if (p.left === 0) this.touchedMessages = true;
          break;
        }
        case "queue-put": {
          const e = w.entry;
          const p = prepaid.get(w.messageId);
          let bytes: number;
          if (p !== undefined && p.left > 0) {
            p.left--; // counted when the message was inserted
            bytes = p.bytes;
          } else {
            const ref = s.ref.get(w.messageId) as { bytes: number } | undefined;
            if (ref === undefined) throw new Error(`queue-put: unknown message ${w.messageId} for ${w.clientId}`);
            bytes = ref.bytes;
          }
          s.queuePut.run(w.clientId, e.seq, w.messageId, e.qos, e.retain ? 1 : 0, stateCode[e.state], e.packetId ?? null, e.subscriptionIds.length === 0 ? null : e.subscriptionIds.join(","), bytes);
          const last = this.seqs.get(w.clientId);
          if (last === undefined || e.seq > last) this.seqs.set(w.clientId, e.seq);
          break;
        }
        case "qos2-put":
          s.qos2Put.run(w.clientId, w.packetId);
          break;
        case "qos2-delete":
          s.qos2Delete.run(w.clientId, w.packetId);
          break;
        case "retained-put": {
          const m = w.message;
          s.retainedPut.run(m.topic, m.id, m.payload, m.qos, m.retain ? 1 : 0, encodeProperties(m.properties), m.receivedAt);
          if (m.id > this.txLastMessageId) this.txLastMessageId = m.id;
          break;
        }
        case "retained-delete":
          s.retainedDelete.run(w.topic);
          break;
        default:
          throw new Error(`unknown store write: ${JSON.stringify(w satisfies never)}`);
      }
    }
    if (this.updates.length > 0 || this.deletes.length > 0) this.flushRuns();
    // A message no queue entry refers to is deleted at the end of the apply (see the contract).
    if (this.touchedMessages) s.deleteUnreferenced.run();
  }

  /**
   * Runs the buffered queue-updates, then the buffered queue-deletes. A queue drains as runs:
   * each PUBACK deletes the next seq, each send marks the next seq sent with the next packet id;
   * such a run (one client, consecutive seqs, and for updates one state and consecutive packet
   * ids) is one range statement instead of a statement per entry. Both kinds only touch queue
   * rows by (client, seq), and any other write flushes them first, so the one reordering (every
   * update of the buffer before every delete) leaves the same rows: an update after a delete of
   * the same entry changed nothing before, and the delete still removes the row now.
   */
  private flushRuns(): void {
    const s = this.s;
    const u = this.updates;
    this.updates = [];
    for (let i = 0; i < u.length; ) {
      const a = u[i]!;
      let j = i + 1;
      if (a.packetId !== undefined) {
        while (j < u.length) {
          const b = u[j]!;
          const prev = u[j - 1]!;
          if (b.clientId !== a.clientId || b.state !== a.state || b.seq !== prev.seq + 1 || b.packetId !== prev.packetId! + 1) break;
          j++;
        }
      }
      if (j - i > 1) s.queueUpdateRange.run(stateCode[a.state], a.packetId! - a.seq, a.clientId, a.seq, u[j - 1]!.seq);
      else s.queueUpdate.run(stateCode[a.state], a.packetId ?? null, a.clientId, a.seq);
      i = j;
    }
    const d = this.deletes;
    this.deletes = [];
    for (let i = 0; i < d.length; ) {
      const a = d[i]!;
      let j = i + 1;
      while (j < d.length && d[j]!.clientId === a.clientId && d[j]!.seq === d[j - 1]!.seq + 1) j++;
      if (j - i > 1) {
        const last = d[j - 1]!.seq;
        s.unrefRange.run(a.clientId, a.seq, last);
        s.deleteQueueRange.run(a.clientId, a.seq, last);
        this.touchedMessages = true;
      } else {
        const messageId = s.queueDelete.get(a.clientId, a.seq) as number | undefined;
        if (messageId !== undefined) {
          s.unref.run(messageId);
          this.touchedMessages = true;
        }
      }
      i = j;
    }
  }
}

// ---------------------------------------------------------------------------------------------

/** Opens the file, takes the exclusive lock, checks format and version, creates the schema in a
 *  new database or migrates an older one. Nothing is written to a file that fails a check (its
 *  -wal neither; a -shm, SQLite's index of the WAL, may be created, see inspectReadOnly). The
 *  caller has made sure that no store of this process has the file open (openFiles). */
function openDatabase(file: string, synchronous: "full" | "normal"): DB {
  const memory = file === ":memory:";
  const shm = `${file}-shm`;
  let createdShm = false;
  if (!memory && existsSync(file) && statSync(file).size > 0) {
    // Plain fs is safe here only because no store of this process holds the file: closing the
    // descriptor would drop its lock (see openFiles).
    const header = Buffer.alloc(16);
    try {
      const fd = openSync(file, "r");
      try {
        readSync(fd, header, 0, 16, 0);
      } finally {
        closeSync(fd);
      }
    } catch (error) {
      throw translate(error, file); // a directory named like the file (EISDIR), no permission, ...
    }
    if (header.toString("latin1") !== SQLITE_MAGIC) throw new StoreCorruptError(file, "not a SQLite database");
    if (existsSync(`${file}-wal`)) {
      const hadShm = existsSync(shm);
      inspectReadOnly(file);
      createdShm = !hadShm && existsSync(shm);
    }
  }
  let db: DB;
  try {
    db = new Database(file, { timeout: 0 });
  } catch (error) {
    throw translate(error, file);
  }
  try {
    if (!memory) {
      // The lock: in EXCLUSIVE locking mode SQLite keeps the file lock it takes for the first
      // write until the connection closes, and the OS drops it when the process dies (kill -9
      // included), so there is no stale lock to detect. Set before the first WAL access, it also
      // keeps the WAL index in process memory (no -shm file).
      db.pragma("locking_mode = EXCLUSIVE");
    }
    db.exec("BEGIN EXCLUSIVE");
    // We hold the exclusive lock now, so no other connection has the database open (one in WAL
    // mode holds a shared lock as long as it is open) and nothing uses the -shm that
    // inspectReadOnly created: this connection keeps its WAL index in memory.
    if (createdShm) {
      try {
        rmSync(shm, { force: true });
      } catch {
        // Only tidiness: a leftover -shm is rebuilt or ignored by whoever opens the file next.
      }
    }
    try {
      // Checked again under the lock: the file may have changed since inspectReadOnly.
      const version = checkFormat(db, file);
      if (version === 0) {
        db.exec(SCHEMA_V1);
        db.pragma(`application_id = ${APPLICATION_ID}`);
        migrate(db, 1);
      } else if (version < SCHEMA_VERSION) {
        migrate(db, version); // an older harbormq's file: upgraded in place, keeping its data
      }
      db.exec("COMMIT");
    } catch (error) {
      db.exec("ROLLBACK");
      throw error;
    }
    if (!memory) {
      const mode = db.pragma("journal_mode = WAL", { simple: true }) as string;
      if (mode !== "wal") throw new StoreOpenError(`harbormq: cannot put ${file} in WAL mode (got ${mode})`, file);
    }
    db.pragma(`synchronous = ${synchronous === "full" ? "FULL" : "NORMAL"}`);
    // 32 MiB of page cache instead of SQLite's 2 MiB: queue pages and the messages they join stay
    // in memory while a session drains. Memory use stays bounded by this, not by queue length.
    db.pragma("cache_size = -32768");
    return db;
  } catch (error) {
    db.close();
    throw translate(error, file);
  }
}

/** Throws the StoreOpenError that refuses the database, or returns its format version (0: a new,
 *  empty database). Reads only. */
function checkFormat(db: DB, file: string): number {
  const appId = db.pragma("application_id", { simple: true }) as number;
  const version = db.pragma("user_version", { simple: true }) as number;
  if (appId !== APPLICATION_ID && appId !== 0) throw new StoreCorruptError(file, `another application's SQLite database (application_id ${appId})`);
  if (version > SCHEMA_VERSION) throw new StoreVersionError(file, version, SCHEMA_VERSION);
  if (version === 0) {
    const objects = db.prepare("SELECT count(*) FROM sqlite_schema").pluck().get() as number;
    if (objects > 0 || appId !== 0) throw new StoreCorruptError(file, "a SQLite database without harbormq's format version");
  } else if (appId !== APPLICATION_ID) {
    throw new StoreCorruptError(file, "a SQLite database without harbormq's application id");
  }
  return version;
}

/**
 * Runs checkFormat on a read-only connection, for a database with a -wal file (a crash, or a
 * process that has it open). The read-write connection of openDatabase cannot refuse such a file
 * without writing it: closing the last connection of a WAL database checkpoints the WAL into the
 * main file and deletes the WAL, and better-sqlite3 exposes neither SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE
 * nor SQLITE_FCNTL_PERSIST_WAL to prevent that. A read-only connection never checkpoints, but it
 * cannot keep the WAL index in memory (that takes EXCLUSIVE locking mode, which a read-only
 * connection cannot use: SQLITE_IOERR_LOCK), so it creates a -shm file when there is none; that
 * one is left behind on a refusal. Without a -wal there is nothing to checkpoint, and the checks
 * run on the read-write connection alone.
 */
function inspectReadOnly(file: string): void {
  let db: DB;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true, timeout: 0 });
  } catch (error) {
    throw translate(error, file);
  }
  try {
    checkFormat(db, file);
  } catch (error) {
    throw translate(error, file);
  } finally {
    db.close();
  }
}

/** Brings a database of format `from` to SCHEMA_VERSION, inside the caller's transaction (a
 *  failure rolls the whole upgrade back and leaves the file as it was). */
function migrate(db: DB, from: number): void {
  for (let v = from; v < SCHEMA_VERSION; v++) {
    const sql = MIGRATIONS[v];
    if (sql === undefined) throw new Error(`harbormq: no migration from data format version ${v}`);
    db.exec(sql);
  }
  db.pragma(`user_version = ${SCHEMA_VERSION}`);
}

function translate(error: unknown, file: string): unknown {
  if (error instanceof StoreOpenError) return error;
  const code = (error as { code?: unknown }).code;
  if (code === "SQLITE_BUSY" || code === "SQLITE_LOCKED") return new StoreLockedError(file, { cause: error });
  if (code === "SQLITE_NOTADB" || code === "SQLITE_CORRUPT") return new StoreCorruptError(file, (error as Error).message, { cause: error });
  // SQLite's own text ("unable to open database file") names no file: the operator would not
  // know which directory to fix (found by review).
  if (typeof code === "string" && code.startsWith("SQLITE_CANTOPEN")) {
    return new StoreOpenError(
      `harbormq: cannot open ${file} (${(error as Error).message}): check that its directory exists and this user can write to it, and that ${file} is not a directory`,
      file,
      { cause: error },
    );
  }
  if (typeof code === "string" && (code.startsWith("SQLITE_READONLY") || code.startsWith("SQLITE_PERM"))) {
    return new StoreOpenError(`harbormq: cannot write ${file} (${(error as Error).message}): check that this user can write it and its directory`, file, { cause: error });
  }
  if (code === "EISDIR") return new StoreOpenError(`harbormq: ${file} is a directory, not a database file: move it away`, file, { cause: error });
  if (code === "EACCES" || code === "EPERM" || code === "EROFS" || code === "ENOTDIR") {
    return new StoreOpenError(`harbormq: cannot open ${file} (${(error as Error).message})`, file, { cause: error });
  }
  return error;
}

interface SessionRow {
  client_id: string;
  protocol_version: 3 | 4 | 5;
  expiry_interval: number;
  disconnected_at: number | null;
  last_seq: number;
  send_horizon: number;
}

interface SubscriptionRow {
  filter: string;
  qos: 0 | 1 | 2;
  no_local: number;
  retain_as_published: number;
  retain_handling: 0 | 1 | 2;
  subscription_id: number | null;
}

interface MessageRow {
  id: number;
  topic: string;
  payload: Buffer;
  qos: 0 | 1 | 2;
  retain: number;
  properties: string | null;
  received_at: number;
}

/** seq, qos, retain, state, packet_id, subscription_ids, message id, topic, payload, message
 *  qos, message retain, properties, received_at */
type PageRow = [number, number, number, 0 | 1 | 2, number | null, string | null, number, string, Buffer, number, number, string | null, number];

function sessionMeta(r: SessionRow): StoredSessionMeta {
  return { clientId: r.client_id, protocolVersion: r.protocol_version, expiryInterval: r.expiry_interval, disconnectedAt: r.disconnected_at ?? undefined };
}

function subscription(r: SubscriptionRow): StoredSubscription {
  return {
    filter: r.filter,
    qos: r.qos,
    noLocal: r.no_local === 1,
    retainAsPublished: r.retain_as_published === 1,
    retainHandling: r.retain_handling,
    subscriptionId: r.subscription_id ?? undefined,
  };
}

function messageFromRow(r: MessageRow): StoredMessage {
  return { id: r.id, topic: r.topic, payload: bytes(r.payload), qos: r.qos, retain: r.retain === 1, properties: decodeProperties(r.properties), receivedAt: r.received_at };
}

/** A page of a queue: a range scan of the queue's primary key, one message lookup per entry. */
export const PAGE_SQL = `SELECT q.seq, q.qos, q.retain, q.state, q.packet_id, q.subscription_ids,
    m.id, m.topic, m.payload, m.qos, m.retain, m.properties, m.received_at
  FROM queue q JOIN messages m ON m.id = q.message_id
  WHERE q.client_id = ? AND q.seq > ? ORDER BY q.seq LIMIT ?`;

function prepare(db: DB) {
  const p = (sql: string): Statement => db.prepare(sql);
  return {
    getCounters: p("SELECT last_message_id FROM counters WHERE id = 1"),
    setLastMessageId: p("UPDATE counters SET last_message_id = ? WHERE id = 1"),
    sessions: p("SELECT client_id, protocol_version, expiry_interval, disconnected_at, last_seq, send_horizon FROM sessions WHERE protocol_version IS NOT NULL"),
    subscriptions: p("SELECT filter, qos, no_local, retain_as_published, retain_handling, subscription_id FROM subscriptions WHERE client_id = ?"),
    qos2: p("SELECT packet_id FROM qos2 WHERE client_id = ?").pluck(),
    totals: p("SELECT count(*) AS n, coalesce(sum(bytes), 0) AS bytes FROM queue WHERE client_id = ?"),
    retained: p("SELECT id, topic, payload, qos, retain, properties, received_at FROM retained"),
    page: p(PAGE_SQL).raw(),
    sessionPut: p(
      `INSERT INTO sessions (client_id, protocol_version, expiry_interval, disconnected_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (client_id) DO UPDATE SET protocol_version = excluded.protocol_version,
         expiry_interval = excluded.expiry_interval, disconnected_at = excluded.disconnected_at`,
    ),
    lastSeq: p(
      `INSERT INTO sessions (client_id, last_seq) VALUES (?, ?)
       ON CONFLICT (client_id) DO UPDATE SET last_seq = max(last_seq, excluded.last_seq)`,
    ),
    // Like lastSeq: creates the row of a client without session-put (not restored until one).
    horizon: p(
      `INSERT INTO sessions (client_id, send_horizon) VALUES (?, ?)
       ON CONFLICT (client_id) DO UPDATE SET send_horizon = max(send_horizon, excluded.send_horizon)`,
    ),
    // One statement for the whole queue of a session: refs drop by the entries per message.
    unrefSession: p(
      `UPDATE messages SET refs = refs - d.n
       FROM (SELECT message_id, count(*) AS n FROM queue WHERE client_id = ? GROUP BY message_id) AS d
       WHERE messages.id = d.message_id`,
    ),
    deleteQueue: p("DELETE FROM queue WHERE client_id = ?"),
    deleteSubscriptions: p("DELETE FROM subscriptions WHERE client_id = ?"),
    deleteQos2: p("DELETE FROM qos2 WHERE client_id = ?"),
    deleteSession: p("DELETE FROM sessions WHERE client_id = ?"),
    subscriptionPut: p(
      `INSERT OR REPLACE INTO subscriptions (client_id, filter, qos, no_local, retain_as_published, retain_handling, subscription_id)
       VALUES (?, ?, ?, ?, ?, ?, ?)`,
    ),
    subscriptionDelete: p("DELETE FROM subscriptions WHERE client_id = ? AND filter = ?"),
    messagePut: p("INSERT INTO messages (id, topic, payload, qos, retain, properties, received_at, bytes, refs) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"),
    ref: p("UPDATE messages SET refs = refs + 1 WHERE id = ? RETURNING bytes"),
    unref: p("UPDATE messages SET refs = refs - 1 WHERE id = ?"),
    deleteUnreferenced: p("DELETE FROM messages WHERE refs <= 0"),
    queuePut: p(
      `INSERT INTO queue (client_id, seq, message_id, qos, retain, state, packet_id, subscription_ids, bytes)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    queueUpdate: p("UPDATE queue SET state = ?, packet_id = ? WHERE client_id = ? AND seq = ?"),
    // A run of consecutive seqs given consecutive packet ids: packet_id = seq + offset.
    queueUpdateRange: p("UPDATE queue SET state = ?, packet_id = seq + ? WHERE client_id = ? AND seq BETWEEN ? AND ?"),
    unrefRange: p(
      `UPDATE messages SET refs = refs - d.n
       FROM (SELECT message_id, count(*) AS n FROM queue WHERE client_id = ? AND seq BETWEEN ? AND ? GROUP BY message_id) AS d
       WHERE messages.id = d.message_id`,
    ),
    deleteQueueRange: p("DELETE FROM queue WHERE client_id = ? AND seq BETWEEN ? AND ?"),
    queueDelete: p("DELETE FROM queue WHERE client_id = ? AND seq = ? RETURNING message_id").pluck(),
    qos2Put: p("INSERT OR IGNORE INTO qos2 (client_id, packet_id) VALUES (?, ?)"),
    qos2Delete: p("DELETE FROM qos2 WHERE client_id = ? AND packet_id = ?"),
    retainedPut: p(
      `INSERT OR REPLACE INTO retained (topic, id, payload, qos, retain, properties, received_at)
       VALUES (?, ?, ?, ?, ?, ?, ?)`,
    ),
    retainedDelete: p("DELETE FROM retained WHERE topic = ?"),
  };
}
