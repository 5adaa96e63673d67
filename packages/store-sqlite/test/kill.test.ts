// Crash safety of the store alone: a child process applies writes as fast as it can, printing each
// write once apply() resolved, and is killed with SIGKILL. Every write it printed is in the
// database afterwards (and nothing half-applied is). The broker-level torture test lives elsewhere.
import "./native.js";
import { execFileSync, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { StoredQueueEntry } from "@harbormq/core";
import { SqliteStore, StoreLockedError, openSqliteStore } from "../src/index.js";

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, "..", "..", "..");
// Inside the repo's node_modules so the child resolves better-sqlite3 like the package does.
const out = join(repo, "node_modules", ".cache", "harbormq-store-sqlite-test");
const root = mkdtempSync(join(tmpdir(), "harbormq-kill-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const CHILD = `
import { writeSync } from "node:fs";
import { openSqliteStore } from "${pathToFileURL(join(repo, "packages", "store-sqlite", "dist", "index.js")).href}";
const [dir, synchronous] = process.argv.slice(2);
function say(line) {
  for (;;) {
    try { writeSync(1, line + "\\n"); return; } catch (e) { if (e.code !== "EAGAIN") throw e; }
  }
}
const store = await openSqliteStore({ dir, synchronous });
const snap = await store.restore(1);
let id = snap.lastMessageId;
let seq = snap.sessions[0]?.lastSeq ?? 0;
await store.apply([{ op: "session-put", session: { clientId: "c", protocolVersion: 4, expiryInterval: 4294967295, disconnectedAt: undefined } }]);
say("ready");
for (;;) {
  const turn = [];
  for (let k = 0; k < 8; k++) {
    const m = ++id;
    const s = ++seq;
    const writes = [
      { op: "message-put", message: { id: m, topic: "kill/" + m, payload: new Uint8Array(64).fill(m & 255), qos: 1, retain: false, properties: {}, receivedAt: m } },
      { op: "queue-put", clientId: "c", messageId: m, entry: { seq: s, qos: 1, retain: false, state: "queued", packetId: undefined, subscriptionIds: [] } },
    ];
    // delete an older entry now and then: deletions must be durable too
    const del = s % 3 === 0 && s > 5 ? s - 5 : 0;
    if (del) writes.push({ op: "queue-delete", clientId: "c", seq: del });
    turn.push(store.apply(writes).then(() => say("put " + s + (del ? " del " + del : ""))));
  }
  await Promise.all(turn);
}
`;

beforeAll(() => {
  // The child runs the compiled package (tsc -b is a no-op when dist is current; `npm test` builds first).
  execFileSync(join(repo, "node_modules", ".bin", "tsc"), ["-b", "packages/store-sqlite"], { cwd: repo, stdio: "pipe" });
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, "child.mjs"), CHILD);
}, 120_000);

interface Run {
  readonly put: Set<number>;
  readonly deleted: Set<number>;
  readonly stderr: string;
  /** What opening the same directory gave while the child was running. */
  readonly lockError: unknown;
}

/** Runs the child until it has acknowledged `acks` puts, then SIGKILLs it. */
function runAndKill(dir: string, synchronous: "full" | "normal", acks: number): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(out, "child.mjs"), dir, synchronous], { stdio: ["ignore", "pipe", "pipe"] });
    const put = new Set<number>();
    const deleted = new Set<number>();
    let stderr = "";
    let rest = "";
    let lockError: unknown;
    let probed = false;
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.stdout.on("data", (d: Buffer) => {
      const lines = (rest + d.toString()).split("\n");
      rest = lines.pop()!;
      for (const line of lines) {
        if (line === "ready" && !probed) {
          probed = true;
          // the child holds the directory: a second store must be refused
          try {
            const intruder = new SqliteStore({ dir });
            void intruder.close();
          } catch (error) {
            lockError = error;
          }
        }
        const m = /^put (\d+)(?: del (\d+))?$/.exec(line);
        if (m === null) continue;
        put.add(Number(m[1]));
        if (m[2] !== undefined) deleted.add(Number(m[2]));
      }
      if (put.size >= acks && child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    });
    child.on("error", reject);
    child.on("close", (code, signal) => {
      if (signal !== "SIGKILL") reject(new Error(`child exited with ${code} ${signal}: ${stderr}`));
      else resolve({ put, deleted, stderr, lockError });
    });
  });
}

async function readBack(dir: string): Promise<{ entries: StoredQueueEntry[]; lastSeq: number }> {
  const store = await openSqliteStore({ dir }); // also proves the lock died with the process
  const entries: StoredQueueEntry[] = [];
  try {
    for (let after = 0; ; ) {
      const page = await store.load("c", after, 500);
      if (page.length === 0) break;
      entries.push(...page);
      after = page[page.length - 1]!.seq;
    }
    const snap = await store.restore(1);
    expect(snap.sessions[0]!.queueCount).toBe(entries.length);
    return { entries, lastSeq: snap.sessions[0]!.lastSeq };
  } finally {
    await store.close();
  }
}

/** The child's rule: the apply that puts seq t also deletes seq t - 5 when t % 3 == 0. */
const deletedBy = (t: number): number => (t % 3 === 0 && t > 5 ? t - 5 : 0);

describe("SIGKILL", () => {
  it("keeps every write whose apply() resolved, across repeated kill -9 (synchronous full and normal)", async () => {
    const dir = join(root, "kill");
    for (const [cycle, synchronous] of (["full", "normal", "full"] as const).entries()) {
      const run = await runAndKill(dir, synchronous, 200 + cycle * 150);
      expect(run.put.size).toBeGreaterThanOrEqual(200);
      expect(run.lockError).toBeInstanceOf(StoreLockedError);
      const { entries, lastSeq } = await readBack(dir);
      // Applies are issued and committed in seq order, so the database holds exactly the applies
      // up to lastSeq: every acknowledged one, maybe a few more, none half.
      const maxAcked = Math.max(...run.put);
      expect(lastSeq).toBeGreaterThanOrEqual(maxAcked);
      const expected: number[] = [];
      const gone = new Set<number>();
      for (let t = 1; t <= lastSeq; t++) gone.add(deletedBy(t));
      for (let t = 1; t <= lastSeq; t++) if (!gone.has(t)) expected.push(t);
      const present = entries.map((e) => e.seq);
      const lost = expected.filter((t) => !present.includes(t));
      const extra = present.filter((t) => !expected.includes(t));
      expect({ cycle, lost, extra }).toEqual({ cycle, lost: [], extra: [] });
      for (const s of run.deleted) expect(present.includes(s)).toBe(false);
      // each entry's message came with it
      for (const e of entries) {
        expect(e.message.topic).toBe(`kill/${e.message.id}`);
        expect(e.message.payload.length).toBe(64);
        expect(e.message.payload[0]).toBe(e.message.id & 255);
      }
    }
  }, 60_000);
});
