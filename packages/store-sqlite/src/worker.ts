// The store's worker thread (started by openSqliteStoreInWorker, worker-store.ts): opens a
// SqliteStore with the options in workerData and serves the parent's requests in arrival order.
import { parentPort, workerData } from "node:worker_threads";
import { SqliteStore } from "./sqlite-store.js";
import type { SqliteStoreOptions } from "./sqlite-store.js";
import type { Opened, Reply, Request, SerializedError } from "./worker-store.js";

if (parentPort === null) throw new Error("harbormq: store-sqlite's worker.js runs in a worker thread (see openSqliteStoreInWorker)");
const port = parentPort;

/** What the parent needs to rebuild the error: its class (by name), message, and the fields of
 *  the store's open errors. better-sqlite3's SqliteError keeps its `code`. */
function serializeError(error: unknown, depth = 0): SerializedError {
  if (!(error instanceof Error)) return { name: "Error", message: String(error) };
  const e = error as Error & { code?: unknown; file?: unknown; found?: unknown; supported?: unknown };
  const out: { -readonly [K in keyof SerializedError]: SerializedError[K] } = { name: e.name, message: e.message };
  if (e.stack !== undefined) out.stack = e.stack;
  if (typeof e.code === "string") out.code = e.code;
  if (typeof e.file === "string") out.file = e.file;
  if (typeof e.found === "number") out.found = e.found;
  if (typeof e.supported === "number") out.supported = e.supported;
  if (e.cause !== undefined && depth < 3) out.cause = serializeError(e.cause, depth + 1);
  return out;
}

function post(reply: Reply): void {
  try {
    port.postMessage(reply);
  } catch (error) {
    // Only a value structured clone cannot copy gets here (a bug); the caller still gets an answer.
    port.postMessage({ id: reply.id, ok: false, error: serializeError(error) } satisfies Reply);
  }
}

function settle(id: number, result: Promise<unknown>): void {
  result.then(
    (value) => post({ id, ok: true, value }),
    (error: unknown) => post({ id, ok: false, error: serializeError(error) }),
  );
}

let store: SqliteStore | undefined;
try {
  store = new SqliteStore(workerData as SqliteStoreOptions);
} catch (error) {
  // No message listener is added: the thread ends once this answer is posted (it is delivered
  // before the parent sees the thread exit).
  post({ id: 0, ok: false, error: serializeError(error) });
}

if (store !== undefined) {
  const s = store;
  // Each request calls the store synchronously, in arrival order, so reads see every earlier
  // apply (SqliteStore's restore and load commit what is pending first). Every message that is
  // queued when the thread wakes up is handled in the same turn of its event loop, so applies
  // sent together meet in SqliteStore's setImmediate group commit: one transaction, one fsync.
  const onMessage = (request: Request): void => {
    switch (request.op) {
      case "apply":
        settle(request.id, s.apply(request.writes));
        break;
      case "load":
        settle(request.id, s.load(request.clientId, request.afterSeq, request.max));
        break;
      case "restore":
        settle(request.id, s.restore(request.queueWindow));
        break;
      case "stats":
        post({ id: request.id, ok: true, value: s.stats });
        break;
      case "close":
        settle(request.id, s.close());
        // Nothing more comes (the parent sends no request after close): without a listener the
        // thread ends after its last answer is posted.
        port.off("message", onMessage);
        break;
      default:
        post({ id: (request as { id: number }).id, ok: false, error: { name: "TypeError", message: `unknown store request ${JSON.stringify(request satisfies never)}` } });
    }
  };
  port.on("message", onMessage);
  post({ id: 0, ok: true, value: { file: s.file, synchronous: s.synchronous } satisfies Opened });
}
