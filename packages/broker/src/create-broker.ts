// createBroker(): compose a broker from transports, a store, configuration, hooks and a logger.
import { Decoder, encodeInto, encodedLength, type Packet } from "@harbormq/codec";
import { Broker, zeroStats, type BrokerConfig, type BrokerStats, type SessionStats, type Snapshot } from "@harbormq/core";
import * as E from "fp-ts/lib/Either.js";
import { Driver, monotonicNow, type Codec, type DecodeFailure, type DriverStats } from "./driver.js";
import type { Hooks, Logger } from "./hooks.js";
import { MemoryStore } from "./memory-store.js";
import { checkOptions, resolveConfig } from "./options.js";
import type { Store, Transport } from "./ports.js";

export interface BrokerOptions {
  readonly transports: readonly Transport[];
  /** Default: a fresh MemoryStore (nothing survives the process). */
  readonly store?: Store;
  /** Every limit of the core; missing keys take `defaultConfig`. The authenticate / authorize
   *  flags, and observePublishes (for onMessagePublished / onEvent), are set from the hooks
   *  present unless given explicitly. */
  readonly config?: Partial<BrokerConfig>;
  readonly hooks?: Hooks;
  readonly logger?: Logger;
  /** Ms that close() waits for clients to take their last bytes. Default 5000. */
  readonly shutdownTimeout?: number;
  /** Bytes the driver holds for a connection that is not draining before QoS 0 messages to it
   *  are dropped. Default 1 MiB. */
  readonly congestedBudget?: number;
  /** Bytes the driver holds for a connection that is not draining before closing it. Default 16 MiB. */
  readonly maxPendingBytes?: number;
  /** Called once if the broker stops on its own because a store write failed (fail-stop: every
   *  connection was cut, the transports and the store are closed). Restart by creating a new
   *  broker on the store's data: it restores exactly what was acknowledged. */
  readonly onFatal?: (error: Error) => void;
}

export interface TransportAddress {
  readonly transport: string;
  readonly host: string;
  readonly port: number;
}

export interface HarborBroker {
  /** Restores the store into the core, then starts every transport. Rejects if a transport
   *  cannot start (after stopping the others; listen() may be called again) or if close() is
   *  called before it finished. */
  listen(): Promise<void>;
  /** Graceful shutdown: stop accepting, let the core close every session (wills if configured),
   *  make every pending write durable, send last bytes, close the clients, close the store.
   *  During listen() it waits for the transports being started, then closes them too. */
  close(): Promise<void>;
  readonly config: BrokerConfig;
  readonly stats: Readonly<BrokerStats & DriverStats>;
  /** Where each transport listens (after listen()). */
  addresses(): readonly TransportAddress[];
  /** Queue and in-flight counters of one session (undefined if unknown or before listen()). */
  sessionStats(clientId: string): SessionStats | undefined;
}

/** The codec as the driver uses it. */
export const codec: Codec = {
  decoder: (maxPacketSize) => new Decoder({ maxPacketSize }),
  isFailure: (item): item is DecodeFailure => (item as { type?: unknown }).type === "error",
  encodedLength: (packet: Packet, version) => encodedLength(packet, version),
  encodeInto: (packet: Packet, version, target, offset) => encodeInto(packet, version, target, offset),
};

const emptyDriverStats: DriverStats = {
  connectionsOpen: 0,
  bytesIn: 0,
  bytesOut: 0,
  writes: 0,
  storeBatches: 0,
  storeWrites: 0,
  droppedCongested: 0,
  bufferedBytes: 0,
};

export function createBroker(options: BrokerOptions): HarborBroker {
  const checked = checkOptions(options);
  if (E.isLeft(checked)) throw new TypeError(`invalid broker options:\n  ${checked.left.join("\n  ")}`);
  const hooks = options.hooks ?? {};
  const resolved = resolveConfig({
    authenticate: hooks.authenticate !== undefined,
    authorizePublish: hooks.authorizePublish !== undefined,
    authorizeSubscribe: hooks.authorizeSubscribe !== undefined,
    observePublishes: hooks.onMessagePublished !== undefined || hooks.onEvent !== undefined,
    ...options.config,
  });
  if (E.isLeft(resolved)) throw new TypeError(`invalid broker options:\n  ${resolved.left.join("\n  ")}`);
  const config = resolved.right;
  const store = options.store ?? new MemoryStore();
  const transports = options.transports;
  let core: Broker | undefined;
  let driver: Driver | undefined;
  type State = "new" | "starting" | "listening" | "closing" | "closed" | "failed";
  let state: State = "new";
  /** Read through a call so that TypeScript does not narrow it across awaits. */
  const now = (): State => state;
  /** The listen() in progress: close() and a fail-stop wait for it, then stop what it started. */
  let starting: Promise<void> | undefined;
  let closing: Promise<void> | undefined;
  let failing: Promise<void> | undefined;
  /** Fail-stop after a failed store write (the driver has already cut every connection). */
  const fatal = (error: unknown): void => {
    if (state === "closed" || state === "failed") return;
    state = "failed";
    const err = error instanceof Error ? error : new Error(String(error));
    options.logger?.error?.("store write failed; the broker stopped", { error: err.message });
    const pending = starting;
    failing = (async () => {
      // Transports still starting would bind after being closed: close them once started.
      await pending?.catch(() => undefined);
      await Promise.allSettled(transports.map((t) => t.close()));
      await store.close().catch(() => undefined);
    })();
    void failing.then(() => options.onFatal?.(err));
  };
  const addresses = (): TransportAddress[] => {
    const out: TransportAddress[] = [];
    for (const t of transports) {
      const address = t.address();
      if (address !== undefined) out.push({ transport: t.name, host: address.host, port: address.port });
    }
    return out;
  };

  const interrupted = (): Error => new Error("close() was called before listen() finished");

  /** listen(): restore, then start every transport. close() or a fail-stop may come at any await. */
  const start = async (): Promise<void> => {
    let snapshot: Snapshot;
    try {
      snapshot = await store.restore(config.queueWindow);
    } catch (error) {
      if (now() === "starting") state = "new";
      throw error;
    }
    if (now() !== "starting") throw interrupted(); // close() is waiting: start nothing
    const started = new Broker(config, snapshot);
    core = started;
    const d = new Driver({
      core: started,
      codec,
      store,
      hooks,
      logger: options.logger ?? {},
      maxPacketSize: config.maxPacketSize,
      clock: monotonicNow,
      ...(options.congestedBudget === undefined ? {} : { congestedBudget: options.congestedBudget }),
      ...(options.maxPendingBytes === undefined ? {} : { maxPendingBytes: options.maxPendingBytes }),
      onStoreFailure: fatal,
    });
    driver = d;
    // allSettled, not all: closing the transports while one is still starting would leave it bound.
    const results = await Promise.allSettled(transports.map((t) => t.listen((duplex) => d.accept(duplex, t.name))));
    const failure = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
    // The store failed while the transports started: fatal() closes them once this returns, and
    // onFatal reports it.
    if (now() === "failed") return;
    if (now() !== "starting") {
      // close() was called meanwhile and waits for this: it closes the transports and the driver.
      throw failure === undefined ? interrupted() : failure.reason;
    }
    if (failure !== undefined) {
      // One transport failed (port in use, ...): stop the others, leave the store usable.
      await Promise.allSettled(transports.map((t) => t.close()));
      await d.shutdown(0);
      if (now() === "starting") state = "new";
      throw failure.reason;
    }
    state = "listening";
    options.logger?.info?.("listening", { addresses: addresses() });
  };

  const shutdown = async (): Promise<void> => {
    state = "closing";
    // A listen() in progress sees "closing" and stops; its transports are closed below.
    await starting?.catch(() => undefined);
    if (now() !== "failed") {
      await Promise.all(transports.map((t) => t.close()));
      await driver?.shutdown(options.shutdownTimeout ?? 5000);
      await store.close();
    }
    // A write that failed during the shutdown stopped the broker (fail-stop): it stays "failed",
    // and close() resolves after onFatal has been called.
    if (now() === "failed") {
      await failing;
      return;
    }
    state = "closed";
  };

  return {
    config,
    get stats() {
      return { ...(core?.stats ?? zeroStats), ...(driver?.stats ?? emptyDriverStats) };
    },
    sessionStats(clientId) {
      return core?.sessionStats(clientId);
    },
    addresses,
    async listen() {
      if (state !== "new") throw new Error(`listen() on a broker that is ${state}`);
      state = "starting";
      const pending = start();
      starting = pending;
      try {
        await pending;
      } finally {
        starting = undefined;
      }
    },
    close() {
      if (state === "failed") return failing ?? Promise.resolve();
      closing ??= shutdown();
      return closing;
    },
  };
}

