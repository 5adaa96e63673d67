// @harbormq/store-sqlite: the durable Store (better-sqlite3, WAL, group commit), on the caller's
// thread (SqliteStore) or in a worker thread (openSqliteStoreInWorker).
export { DATABASE_FILE, SqliteStore, openSqliteStore } from "./sqlite-store.js";
export type { SqliteStoreOptions } from "./sqlite-store.js";
export { WorkerSqliteStore, openSqliteStoreInWorker } from "./worker-store.js";
export type { StoreStats } from "./worker-store.js";
export { StoreCorruptError, StoreLockedError, StoreOpenError, StoreVersionError } from "./errors.js";
export { APPLICATION_ID, SCHEMA_VERSION } from "./schema.js";
