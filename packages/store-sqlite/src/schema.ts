// The on-disk format. `PRAGMA user_version` is the format version and `PRAGMA application_id`
// marks the file as harbormq's. A change to the tables bumps SCHEMA_VERSION and adds a migration
// from the previous version to MIGRATIONS; SCHEMA_V1 itself never changes.

export const SCHEMA_VERSION = 2;
/** "HBMQ" */
export const APPLICATION_ID = 0x48424d51;

/** Version 1. Sessions own subscriptions, queue entries and QoS 2 state by client_id; queue
 *  entries refer to messages by id and `messages.refs` counts them, so a message routed to many
 *  sessions is stored once. Queue and QoS 2 rows are clustered by their primary key (WITHOUT
 *  ROWID), which is also the index `load` pages with. */
export const SCHEMA_V1 = `
CREATE TABLE sessions (
  client_id        TEXT PRIMARY KEY NOT NULL,
  protocol_version INTEGER,          -- NULL: rows of a client without session-put (not restored)
  expiry_interval  INTEGER,
  disconnected_at  INTEGER,
  last_seq         INTEGER NOT NULL DEFAULT 0  -- highest queue seq ever used
) WITHOUT ROWID;

CREATE TABLE subscriptions (
  client_id           TEXT NOT NULL,
  filter              TEXT NOT NULL,
  qos                 INTEGER NOT NULL,
  no_local            INTEGER NOT NULL,
  retain_as_published INTEGER NOT NULL,
  retain_handling     INTEGER NOT NULL,
  subscription_id     INTEGER,
  PRIMARY KEY (client_id, filter)
) WITHOUT ROWID;

CREATE TABLE messages (
  id          INTEGER PRIMARY KEY,
  topic       TEXT NOT NULL,
  payload     BLOB NOT NULL,
  qos         INTEGER NOT NULL,
  retain      INTEGER NOT NULL,
  properties  TEXT,                  -- JSON, NULL when empty
  received_at INTEGER NOT NULL,
  bytes       INTEGER NOT NULL,      -- payload + topic UTF-8 bytes
  refs        INTEGER NOT NULL       -- queue entries referring to it
);
-- Small: only messages whose last reference went away in the current apply live here.
CREATE INDEX messages_unreferenced ON messages (id) WHERE refs <= 0;

CREATE TABLE queue (
  client_id        TEXT NOT NULL,
  seq              INTEGER NOT NULL,
  message_id       INTEGER NOT NULL,
  qos              INTEGER NOT NULL,
  retain           INTEGER NOT NULL,
  state            INTEGER NOT NULL,  -- 0 queued, 1 sent, 2 released
  packet_id        INTEGER,
  subscription_ids TEXT,              -- "1,2,3", NULL when none
  bytes            INTEGER NOT NULL,  -- of the message, for queueBytes
  PRIMARY KEY (client_id, seq)
) WITHOUT ROWID;

CREATE TABLE qos2 (
  client_id TEXT NOT NULL,
  packet_id INTEGER NOT NULL,
  PRIMARY KEY (client_id, packet_id)
) WITHOUT ROWID;

CREATE TABLE retained (
  topic       TEXT PRIMARY KEY NOT NULL,
  id          INTEGER NOT NULL,
  payload     BLOB NOT NULL,
  qos         INTEGER NOT NULL,
  retain      INTEGER NOT NULL,
  properties  TEXT,
  received_at INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE counters (
  id              INTEGER PRIMARY KEY CHECK (id = 1),
  last_message_id INTEGER NOT NULL  -- highest message id ever used, deleted ones included
);
INSERT INTO counters (id, last_message_id) VALUES (1, 0);
`;

/** MIGRATIONS[v] turns a version v database into version v + 1; openDatabase runs them in the
 *  transaction that checks the version. A new database is created as version 1 and migrated
 *  like an old one, so there is one schema, whichever way a file got to the current version. */
export const MIGRATIONS: Readonly<Record<number, string>> = {
  // 1 -> 2: the session's send horizon (session-horizon writes, restored as sendHorizon), kept
  // with the session row like last_seq; existing sessions start at 0 (nothing sent before it).
  1: "ALTER TABLE sessions ADD COLUMN send_horizon INTEGER NOT NULL DEFAULT 0;",
};
