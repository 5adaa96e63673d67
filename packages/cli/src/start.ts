// Composes the broker for the command: the store the settings ask for, the transports (wrapped
// with a packet tracer when debug logging is on) and createBroker() with logging hooks.
import { createBroker, MemoryStore } from "@harbormq/broker";
import type { Duplex, Logger as BrokerLogger, Store, Transport } from "@harbormq/broker";
import { Decoder } from "@harbormq/codec";
import type { Packet } from "@harbormq/codec";
import type { BrokerEvent, BrokerStats } from "@harbormq/core";
import { openSqliteStore } from "@harbormq/store-sqlite";
import type { Settings } from "./config.js";
import type { Fields, Logger } from "./log.js";

export interface RunningBroker {
  /** "memory" or the SQLite database file. */
  readonly persistence: string;
  close(): Promise<void>;
  stats(): Readonly<BrokerStats>;
}

export interface StartOptions {
  readonly settings: Settings;
  readonly transports: readonly Transport[];
  readonly logger: Logger;
  readonly onEvent: (event: BrokerEvent) => void;
  /** The broker stopped because a store write failed (see createBroker's onFatal). */
  readonly onFatal?: (error: Error) => void;
}

async function openStore(settings: Settings): Promise<{ store: Store; description: string }> {
  const p = settings.persistence;
  if (p.kind === "memory") return { store: new MemoryStore(), description: "memory" };
  // File system errors come back as StoreOpenError naming the file (store-sqlite translate()).
  const store = await openSqliteStore(p.synchronous === undefined ? { dir: p.dir } : { dir: p.dir, synchronous: p.synchronous });
  return { store, description: store.file };
}

function fieldValue(v: unknown): string | number | boolean | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === "string" || typeof v === "number" || typeof v === "boolean") return v;
  try {
    return JSON.stringify(v);
  } catch {
    return String(v);
  }
}

function toFields(fields: Record<string, unknown> | undefined): Fields {
  const out: Record<string, string | number | boolean | undefined> = {};
  if (fields !== undefined) for (const [k, v] of Object.entries(fields)) out[k] = fieldValue(v);
  return out;
}

/** The broker's own log calls. Events reach us through the onEvent hook, and "listening" is
 *  logged per transport by the command, so those are not repeated. */
export function brokerLogger(logger: Logger): BrokerLogger {
  const forward = (level: "debug" | "info" | "warn" | "error") => (message: string, fields?: Record<string, unknown>) => {
    if (message === "listening") return;
    if (fields !== undefined && typeof fields["type"] === "string" && ("clientId" in fields || "conn" in fields)) return;
    logger.log(level, "broker", message, toFields(fields));
  };
  // A level that is off is left out: the driver calls `logger.debug?.(...)`, so it does not even
  // build the fields of a line nobody logs (one per disconnect at the default level).
  const out: { -readonly [K in keyof BrokerLogger]: BrokerLogger[K] } = {};
  for (const level of ["debug", "info", "warn", "error"] as const) if (logger.enabled(level)) out[level] = forward(level);
  return out;
}

/** A short description of a packet for a debug line. */
export function packetFields(p: Packet): Fields {
  switch (p.type) {
    case "connect":
      return { type: p.type, id: p.clientId, version: p.protocolVersion, clean: p.clean, keepAlive: p.keepAlive, will: p.will?.topic, username: p.username };
    case "connack":
      return { type: p.type, sessionPresent: p.sessionPresent, code: p.reasonCode };
    case "publish":
      return { type: p.type, topic: p.topic, qos: p.qos, retain: p.retain, dup: p.dup, packetId: p.packetId, bytes: p.payload.length };
    case "puback":
    case "pubrec":
    case "pubrel":
    case "pubcomp":
      return { type: p.type, packetId: p.packetId, code: p.reasonCode === 0 ? undefined : p.reasonCode };
    case "subscribe":
      return { type: p.type, packetId: p.packetId, filters: p.subscriptions.map((s) => `${s.topicFilter}@${s.qos}`).join(",") };
    case "suback":
      return { type: p.type, packetId: p.packetId, codes: p.reasonCodes.join(",") };
    case "unsubscribe":
      return { type: p.type, packetId: p.packetId, filters: p.topicFilters.join(",") };
    case "unsuback":
      return { type: p.type, packetId: p.packetId };
    case "disconnect":
    case "auth":
      return { type: p.type, code: p.reasonCode };
    case "pingreq":
    case "pingresp":
      return { type: p.type };
  }
}

/** Logs every packet in and out of each connection of `transport` at debug level. It decodes a
 *  copy of the byte stream; the broker's own decoding is untouched. */
export function traceTransport(transport: Transport, logger: Logger, maxPacketSize: number): Transport {
  const traceDuplex = (d: Duplex): Duplex => {
    const incoming = new Decoder({ maxPacketSize });
    const outgoing = new Decoder();
    let inBroken = false;
    let outBroken = false;
    const drain = (decoder: Decoder, direction: "in" | "out"): boolean => {
      for (;;) {
        const item = decoder.next();
        if (item === undefined) return true;
        if (item.type === "error") {
          logger.debug("packet", `packet ${direction} undecodable`, { remote: d.remote, code: item.code, detail: item.message });
          return false;
        }
        if (direction === "in" && item.type === "connect") outgoing.version = item.protocolVersion;
        logger.debug("packet", `packet ${direction}`, { remote: d.remote, ...packetFields(item) });
      }
    };
    return {
      remote: d.remote,
      write(bytes) {
        if (!outBroken) {
          outgoing.push(bytes.slice());
          outBroken = !drain(outgoing, "out");
        }
        return d.write(bytes);
      },
      close: () => d.close(),
      // Without it the driver's hard cut-offs (shutdown deadline, maxPendingBytes, a failed store
      // write) would fall back to close(), which waits for a peer that may never read.
      ...(d.destroy === undefined ? {} : { destroy: () => d.destroy?.() }),
      pause: () => d.pause(),
      resume: () => d.resume(),
      onData(listener) {
        d.onData((chunk) => {
          if (!inBroken) {
            incoming.push(chunk);
            inBroken = !drain(incoming, "in");
          }
          listener(chunk);
        });
      },
      onClose(listener) {
        d.onClose((error) => {
          logger.debug("connection-closed", "connection closed", { remote: d.remote, transport: transport.name, error: error?.message });
          listener(error);
        });
      },
      onDrain: (listener) => d.onDrain(listener),
    };
  };
  return {
    name: transport.name,
    listen: (accept) =>
      transport.listen((d) => {
        logger.debug("connection-opened", "connection opened", { remote: d.remote, transport: transport.name });
        accept(traceDuplex(d));
      }),
    close: () => transport.close(),
    address: () => transport.address(),
  };
}

/** Opens the store, creates the broker and starts listening. Rejects (after releasing what it
 *  opened) when a port or the data directory cannot be used. */
export async function startBroker(options: StartOptions): Promise<RunningBroker> {
  const { settings, logger } = options;
  const { store, description } = await openStore(settings);
  const transports = logger.enabled("debug")
    ? options.transports.map((t) => traceTransport(t, logger, settings.broker.maxPacketSize))
    : options.transports;
  const broker = createBroker({
    transports,
    store,
    config: settings.broker,
    hooks: { onEvent: options.onEvent },
    logger: brokerLogger(logger),
    ...(options.onFatal === undefined ? {} : { onFatal: options.onFatal }),
  });
  try {
    await broker.listen();
  } catch (err) {
    await broker.close().catch(() => undefined);
    throw err;
  }
  return { persistence: description, close: () => broker.close(), stats: () => broker.stats };
}
