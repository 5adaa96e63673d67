// @harbormq/store-sqlite: the durable Store (better-sqlite3, WAL, group commit).
export { DATABASE_FILE, SqliteStore, openSqliteStore } from "./sqlite-store.js";
export type { SqliteStoreOptions } from "./sqlite-store.js";
export { StoreCorruptError, StoreLockedError, StoreOpenError, StoreVersionError } from "./errors.js";
export { APPLICATION_ID, SCHEMA_VERSION } from "./schema.js";
