// The SQLite store in a worker thread: the same SqliteStore, but its commits (fsync) and page
// reads run on another thread, off the broker's event loop. Requests go by postMessage and are
// answered by id; a worker that dies fails every pending and later call (fail-stop).
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import type { Store } from "@harbormq/broker";
import type { Snapshot, StoreWrite, StoredQueueEntry } from "@harbormq/core";
import { StoreCorruptError, StoreLockedError, StoreOpenError, StoreVersionError } from "./errors.js";
import type { SqliteStoreOptions } from "./sqlite-store.js";

// From src/ (vitest runs the sources) and from dist/ alike this is dist/worker.js: the worker is
// plain Node, which runs compiled JavaScript only, so the tests need a build first (`npm test`
// builds before running vitest).
const WORKER_URL = new URL("../dist/worker.js", import.meta.url);

// ---------------------------------------------------------------------------------------------
// The protocol between this module and worker.ts (structured clone copies every message).

/** @internal */
export type Request =
  | { readonly id: number; readonly op: "restore"; readonly queueWindow: number }
  | { readonly id: number; readonly op: "apply"; readonly writes: readonly StoreWrite[] }
  | { readonly id: number; readonly op: "load"; readonly clientId: string; readonly afterSeq: number; readonly max: number }
  | { readonly id: number; readonly op: "stats" }
  | { readonly id: number; readonly op: "close" };

/** @internal An Error reduced to what structured clone keeps, and what rebuilds its class. */
export interface SerializedError {
  readonly name: string;
  readonly message: string;
  readonly stack?: string;
  readonly code?: string;
  readonly file?: string;
  readonly found?: number;
  readonly supported?: number;
  readonly cause?: SerializedError;
}

/** @internal Id 0 answers the open (the worker sends it unasked). */
export type Reply = { readonly id: number; readonly ok: true; readonly value: unknown } | { readonly id: number; readonly ok: false; readonly error: SerializedError };

/** @internal */
export interface Opened {
  readonly file: string;
  readonly synchronous: "full" | "normal" | "other";
}

/** Transactions committed and apply() calls they carried (group commit: applies >= commits). */
export interface StoreStats {
  readonly commits: number;
  readonly applies: number;
}

/** The worker's error as the class the caller would get from SqliteStore, with its message. */
function revive(e: SerializedError): Error {
  const options = e.cause === undefined ? undefined : { cause: revive(e.cause) };
  let error: Error;
  switch (e.name) {
    case "StoreLockedError":
      error = new StoreLockedError(e.file ?? "", options);
      break;
    case "StoreCorruptError":
      error = new StoreCorruptError(e.file ?? "", "", options);
      break;
    case "StoreVersionError":
      error = new StoreVersionError(e.file ?? "", e.found ?? 0, e.supported ?? 0);
      break;
    case "StoreOpenError":
      error = new StoreOpenError(e.message, e.file ?? "", options);
      break;
    case "TypeError":
      error = new TypeError(e.message, options);
      break;
    case "RangeError":
      error = new RangeError(e.message, options);
      break;
    default:
      error = new Error(e.message, options);
      error.name = e.name; // e.g. SqliteError
  }
  error.message = e.message;
  if (e.code !== undefined) (error as Error & { code?: string }).code = e.code;
  // The worker's stack says where it failed; the parent's would only show this message handler.
  if (e.stack !== undefined) error.stack = e.stack;
  return error;
}

interface Call {
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: unknown) => void;
}

/**
 * Opens a SqliteStore (same options, same errors: StoreLockedError, StoreVersionError,
 * StoreCorruptError, TypeError for bad options) in a worker thread. Each apply() and each page
 * read costs one structured clone of its batch or page; in exchange the broker's thread never
 * waits for a commit or a read.
 */
export function openSqliteStoreInWorker(options: SqliteStoreOptions): Promise<WorkerSqliteStore> {
  const script = fileURLToPath(WORKER_URL);
  if (!existsSync(script)) return Promise.reject(new Error(`harbormq: ${script} is missing; build @harbormq/store-sqlite first (npx tsc -b)`));
  let worker: Worker;
  try {
    worker = new Worker(WORKER_URL, { workerData: options });
  } catch (error) {
    return Promise.reject(error); // options structured clone cannot copy
  }
  return new WorkerSqliteStore(worker).opened;
}

/** A Store whose SqliteStore runs in a worker thread; see openSqliteStoreInWorker. */
export class WorkerSqliteStore implements Store {
  /** Resolves with this store once the worker has opened the database. */
  readonly opened: Promise<WorkerSqliteStore>;

  private readonly worker: Worker;
  private readonly pending = new Map<number, Call>();
  private nextId = 1;
  /** Set once the worker died or failed: every later call rejects with it. */
  private failure: Error | undefined;
  private closing: Promise<void> | undefined;
  private closeId = -1;
  private closeAnswered = false;
  private info: Opened = { file: "", synchronous: "other" };
  private lastError: Error | undefined;
  private readonly exited: Promise<void>;

  /** @internal Use openSqliteStoreInWorker. */
  constructor(worker: Worker) {
    this.worker = worker;
    this.opened = new Promise<unknown>((resolve, reject) => this.pending.set(0, { resolve, reject })).then(
      (value) => {
        this.info = value as Opened;
        this.release();
        return this;
      },
      (error: unknown) => {
        // The worker ends by itself after a failed open; terminate in case it does not.
        void this.worker.terminate();
        throw error;
      },
    );
    worker.on("message", (reply: Reply) => this.onReply(reply));
    // An uncaught exception in the worker: it is followed by "exit", which fails the calls.
    worker.on("error", (error: Error) => (this.lastError = error));
    worker.on("messageerror", (error: Error) => {
      // An answer that could not be copied: which call it was is unknown, so fail them all.
      this.lastError = error;
      void this.worker.terminate();
    });
    this.exited = new Promise((resolve) =>
      worker.once("exit", (code: number) => {
        this.onExit(code);
        resolve();
      }),
    );
  }

  /** The database file (as SqliteStore.file). */
  get file(): string {
    return this.info.file;
  }

  /** The effective durability setting (PRAGMA synchronous), read when the store was opened. */
  get synchronous(): "full" | "normal" | "other" {
    return this.info.synchronous;
  }

  restore(queueWindow: number): Promise<Snapshot> {
    const id = this.nextId++;
    return this.call(id, { id, op: "restore", queueWindow }) as Promise<Snapshot>;
  }

  apply(writes: readonly StoreWrite[]): Promise<void> {
    const id = this.nextId++;
    return this.call(id, { id, op: "apply", writes }) as Promise<void>;
  }

  load(clientId: string, afterSeq: number, max: number): Promise<readonly StoredQueueEntry[]> {
    const id = this.nextId++;
    return this.call(id, { id, op: "load", clientId, afterSeq, max }) as Promise<readonly StoredQueueEntry[]>;
  }

  /** SqliteStore's stats, read in the worker after every request sent before this one. */
  stats(): Promise<StoreStats> {
    const id = this.nextId++;
    return this.call(id, { id, op: "stats" }) as Promise<StoreStats>;
  }

  /** Commits the pending applies, closes the database (releasing its lock), and resolves once the
   *  worker thread has ended. Idempotent. */
  close(): Promise<void> {
    if (this.closing !== undefined) return this.closing;
    const id = this.nextId++;
    const answered = this.call(id, { id, op: "close" });
    this.closeId = id;
    // Kept referenced to the end: the process must not exit between the answer and the thread's end.
    if (this.failure === undefined) this.worker.ref();
    this.closing = answered.then(() => this.exited);
    return this.closing;
  }

  // -------------------------------------------------------------------------------------------

  private call(id: number, request: Request): Promise<unknown> {
    if (this.closing !== undefined) return Promise.reject(new Error("store is closed"));
    if (this.failure !== undefined) return Promise.reject(this.failure);
    return new Promise<unknown>((resolve, reject) => {
      // Copies the request now (structured clone): the caller may reuse its buffers at once. Not
      // transferred: detaching the caller's payloads would break it.
      this.worker.postMessage(request); // throws DataCloneError for what cannot be copied: rejects this call
      // Referenced while a call is pending, so the process waits for its writes; not while idle,
      // so an open store does not keep a process alive (like SqliteStore, which has no handle).
      if (this.pending.size === 0) this.worker.ref();
      this.pending.set(id, { resolve, reject });
    });
  }

  private onReply(reply: Reply): void {
    const call = this.pending.get(reply.id);
    if (call === undefined) return;
    this.pending.delete(reply.id);
    if (reply.id === this.closeId) this.closeAnswered = true;
    this.release();
    if (reply.ok) call.resolve(reply.value);
    else call.reject(revive(reply.error));
  }

  /** Lets the process exit while nothing is pending (and the store is not closing). */
  private release(): void {
    if (this.pending.size === 0 && this.closing === undefined) this.worker.unref();
  }

  private onExit(code: number): void {
    if (this.closeAnswered) return; // the end close() asked for (every answer came before close's)
    const cause = this.lastError;
    this.failure = new Error(
      `harbormq: the SQLite store's worker thread stopped (exit code ${code})${cause === undefined ? "" : `: ${cause.message}`}; the store is unusable`,
      cause === undefined ? undefined : { cause },
    );
    const calls = [...this.pending.values()];
    this.pending.clear();
    for (const c of calls) c.reject(this.failure);
  }
}

/** @internal For tests: the worker thread, to kill it. */
export function workerOf(store: WorkerSqliteStore): Worker {
  return store["worker"];
}
