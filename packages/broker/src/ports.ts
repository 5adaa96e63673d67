// The two ports adapters implement: Transport (bytes in and out) and Store (durability).
// Both are deliberately small; every adapter passes the same contract suite.
import type { Snapshot, StoreWrite, StoredQueueEntry } from "@harbormq/core";

/** One accepted stream of bytes (a TCP socket, a WebSocket, an in-memory pipe). */
export interface Duplex {
  /** A description of the peer for logs, e.g. "127.0.0.1:53122" or "ws://[::1]:40112". */
  readonly remote: string;
  /** Queue bytes for the peer. Returns false when the transport's buffer is over its high-water
   *  mark: the caller should stop writing more than it must and wait for `onDrain`. The bytes are
   *  not retained by the caller after the call (the transport copies if it needs to). */
  write(bytes: Uint8Array): boolean;
  /** Flush what was written, then close. Idempotent. */
  close(): void;
  /** Close at once, dropping unsent bytes (a peer that stopped reading, a shutdown deadline).
   *  Idempotent; onClose still fires once. Optional: without it the driver can only close(). */
  destroy?(): void;
  /** Stop / resume delivering `onData` (backpressure from the driver). */
  pause(): void;
  resume(): void;
  onData(listener: (chunk: Uint8Array) => void): void;
  /** Called once, when the stream ends for any reason (peer EOF, error, local close). */
  onClose(listener: (error?: Error) => void): void;
  /** Called when a write that returned false has drained. */
  onDrain(listener: () => void): void;
}

/** Accepts connections and hands them to the driver. */
export interface Transport {
  /** A short name for logs: "tcp", "tls", "ws", "memory". */
  readonly name: string;
  /** Start accepting; resolves once listening. */
  listen(accept: (duplex: Duplex) => void): Promise<void>;
  /** Stop accepting new connections (existing ones are closed by the driver). */
  close(): Promise<void>;
  /** Where it listens, for logs and tests (e.g. { host: "127.0.0.1", port: 1883 }). */
  address(): { readonly host: string; readonly port: number } | undefined;
}

/** Durable state. `apply` resolves only when the writes are durable (in memory: at once). */
export interface Store {
  /** Read everything needed to rebuild the core (sessions, subscriptions, queue heads of at most
   *  `queueWindow` entries each, retained messages, last ids). */
  restore(queueWindow: number): Promise<Snapshot>;
  /** Apply batches in order, atomically per call. The driver groups the writes of many inputs.
   *  Every write kind must be kept, `session-horizon` included: the core sends QoS 1 messages
   *  below a session's stored horizon without a per-message mark, and after a crash relies on
   *  `sendHorizon` to resend them with DUP (the conformance suite checks it). */
  apply(writes: readonly StoreWrite[]): Promise<void>;
  /** Up to `max` queue entries of `clientId` with seq > afterSeq, in seq order. */
  load(clientId: string, afterSeq: number, max: number): Promise<readonly StoredQueueEntry[]>;
  /** Finish pending writes and release resources (file locks). */
  close(): Promise<void>;
}
