// Runs the `harbormq` command: flags and config file -> settings -> transports, store and
// broker, with logs and graceful shutdown on SIGINT / SIGTERM. Exit codes: 0 after a clean
// shutdown (or --help / --version), 1 when the broker cannot start (a port in use), 2 for a
// usage or configuration error (nothing was started), 74 when a store write failed while running
// (fail-stop: restart it and it restores what was acknowledged).
import { readFileSync } from "node:fs";
import * as net from "node:net";
import * as tls from "node:tls";
import type { Transport } from "@harbormq/broker";
import { tcpTransport, tlsTransport } from "@harbormq/transport-tcp";
import { wsTransport } from "@harbormq/transport-ws";
import { parseFlags, usage } from "./args.js";
import { parseConfigText, resolveSettings } from "./config.js";
import type { ConfigFile, ListenerSettings, Settings } from "./config.js";
import { EventLog, createLogger } from "./log.js";
import type { Logger } from "./log.js";
import { startBroker } from "./start.js";
import type { RunningBroker } from "./start.js";

export interface Io {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
}

/** What `prepare` decided: exit now with a code, or start with these settings. */
export type Prepared =
  | { readonly kind: "exit"; readonly code: number }
  | { readonly kind: "start"; readonly settings: Settings; readonly tls: ReadonlyMap<ListenerSettings, { cert: Buffer; key: Buffer }> };

export function version(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version?: unknown };
    return typeof pkg.version === "string" ? pkg.version : "unknown";
  } catch {
    return "unknown";
  }
}

/** Everything before any socket is opened: flags, config file, certificate files. */
export function prepare(argv: readonly string[], io: Io): Prepared {
  const parsed = parseFlags(argv);
  if (!parsed.ok) {
    io.stderr(`${parsed.error}\n`);
    return { kind: "exit", code: 2 };
  }
  const flags = parsed.flags;
  if (flags.help) {
    io.stdout(usage);
    return { kind: "exit", code: 0 };
  }
  if (flags.version) {
    io.stdout(`harbormq ${version()}\n`);
    return { kind: "exit", code: 0 };
  }
  let file: ConfigFile = {};
  if (flags.config !== undefined) {
    let text: string;
    try {
      text = readFileSync(flags.config, "utf8");
    } catch (err) {
      io.stderr(`harbormq: cannot read the configuration file ${flags.config}: ${(err as Error).message}\n`);
      return { kind: "exit", code: 2 };
    }
    const r = parseConfigText(text);
    if (!r.ok) {
      io.stderr(`harbormq: ${flags.config}: invalid configuration:\n${r.errors.map((e) => `  ${e}\n`).join("")}`);
      return { kind: "exit", code: 2 };
    }
    file = r.value;
  }
  const resolved = resolveSettings(file, flags);
  if (!resolved.ok) {
    io.stderr(resolved.errors.map((e) => `harbormq: ${e}\n`).join(""));
    return { kind: "exit", code: 2 };
  }
  const settings = resolved.value;
  // Read and parse certificates now: a missing or unusable file is a configuration error, not a
  // crash at bind time (tls.createServer parses them outside any error handling).
  const certs = new Map<ListenerSettings, { cert: Buffer; key: Buffer }>();
  const errors: string[] = [];
  for (const l of settings.listeners) {
    if (l.type !== "tls") continue;
    const read = (where: string, path: string): Buffer | undefined => {
      try {
        return readFileSync(path);
      } catch (err) {
        errors.push(`${where}: cannot read ${JSON.stringify(path)}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
        return undefined;
      }
    };
    const cert = read(l.certFrom, l.cert);
    const key = read(l.keyFrom, l.key);
    if (cert === undefined || key === undefined) continue;
    const problem = tlsProblem(cert, key);
    if (problem === undefined) certs.set(l, { cert, key });
    else if (problem.what === "cert") errors.push(`${l.certFrom}: ${JSON.stringify(l.cert)} is not a usable certificate (PEM): ${problem.message}`);
    else if (problem.what === "key") errors.push(`${l.keyFrom}: ${JSON.stringify(l.key)} is not a usable private key (PEM): ${problem.message}`);
    else errors.push(`${l.keyFrom}: ${JSON.stringify(l.key)} does not match the certificate ${JSON.stringify(l.cert)} (${l.certFrom}): ${problem.message}`);
  }
  if (errors.length > 0) {
    io.stderr(errors.map((e) => `harbormq: ${e}\n`).join(""));
    return { kind: "exit", code: 2 };
  }
  return { kind: "start", settings, tls: certs };
}

/** Parses a certificate and key the way the TLS listener will, one at a time so that the error
 *  names the file at fault; undefined when they are usable together. */
function tlsProblem(cert: Buffer, key: Buffer): { what: "cert" | "key" | "pair"; message: string } | undefined {
  const attempt = (options: tls.SecureContextOptions): string | undefined => {
    try {
      tls.createSecureContext(options);
      return undefined;
    } catch (err) {
      return (err as Error).message;
    }
  };
  const c = attempt({ cert });
  if (c !== undefined) return { what: "cert", message: c };
  const k = attempt({ key });
  if (k !== undefined) return { what: "key", message: k };
  const p = attempt({ cert, key });
  return p === undefined ? undefined : { what: "pair", message: p };
}

/** Whether this host can bind an IPv6 socket (":: " then also accepts IPv4 on Linux). */
export function ipv6Available(): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once("error", () => resolve(false));
    server.listen(0, "::", () => server.close(() => resolve(true)));
  });
}

export function makeTransports(
  settings: Settings,
  tls: ReadonlyMap<ListenerSettings, { cert: Buffer; key: Buffer }>,
  anyHost: string,
): Transport[] {
  return settings.listeners.map((l) => {
    const host = l.host ?? anyHost;
    switch (l.type) {
      case "tcp":
        return tcpTransport({ host, port: l.port });
      case "tls": {
        const files = tls.get(l);
        if (files === undefined) throw new Error("certificate files not read");
        return tlsTransport({ host, port: l.port, cert: files.cert, key: files.key });
      }
      case "ws":
        // One MQTT packet per WebSocket message is the norm; bound a message like a packet (plus
        // slack for a few small packets sharing a frame) so ws never buffers a huge frame.
        return wsTransport({ host, port: l.port, path: l.path, maxPayload: settings.broker.maxPacketSize + 65_536 });
    }
  });
}

function describeListenError(err: unknown): string {
  const e = err as NodeJS.ErrnoException & { port?: number; address?: string };
  if (e.code === "EADDRINUSE") return `address in use (${e.address ?? "?"}:${e.port ?? "?"})`;
  if (e.code === "EACCES") return `permission denied (${e.address ?? "?"}:${e.port ?? "?"})`;
  if (e.code === "EADDRNOTAVAIL") return `address not available (${e.address ?? "?"})`;
  if (e.code === "ERR_DLOPEN_FAILED" || /NODE_MODULE_VERSION/.test(e.message ?? "")) {
    // One line: a log line is one event.
    return `the SQLite store (better-sqlite3) cannot load in Node ${process.version}: ${e.message}; ` +
      "rebuild it for this Node (npm rebuild better-sqlite3) or run without disk with --memory";
  }
  return e.message ?? String(err);
}

/** The whole command. Resolves with the exit code once the broker has stopped. */
export async function run(
  argv: readonly string[],
  io: Io,
  signals: { on(signal: "SIGINT" | "SIGTERM", listener: () => void): void } = process,
): Promise<number> {
  const prepared = prepare(argv, io);
  if (prepared.kind === "exit") return prepared.code;
  const { settings, tls } = prepared;
  const logger = createLogger(settings.logging, io.stdout);
  if (signals === process) {
    // A bug must not vanish from a JSON log pipeline as a bare stack trace on stderr.
    const fatal = (kind: string) => (err: unknown) => {
      logger.error("crash", `${kind}: ${err instanceof Error ? err.message : String(err)}`, {
        stack: err instanceof Error ? err.stack : undefined,
      });
      process.exitCode = 70;
      process.stdout.write("", () => process.exit(70));
    };
    process.on("uncaughtException", fatal("uncaught exception"));
    process.on("unhandledRejection", fatal("unhandled rejection"));
  }
  const anyHost = (await ipv6Available()) ? "::" : "0.0.0.0";
  let transports: Transport[];
  try {
    transports = makeTransports(settings, tls, anyHost);
  } catch (err) {
    // prepare() checked the certificates; whatever else a transport refuses is still the
    // configuration's fault, not a crash.
    io.stderr(`harbormq: cannot set up the listeners: ${(err as Error).message}\n`);
    return 2;
  }

  const events = new EventLog(logger, () => performance.now());
  const flusher = setInterval(() => events.flush(), 1000);
  flusher.unref();
  let broker: RunningBroker;
  // A failed store write stops the broker (fail-stop); the process then exits with EX_IOERR so
  // that its supervisor restarts it from the store.
  let onFatal: (error: Error) => void = () => undefined;
  let storeFailed = false;
  const failed = new Promise<number>((resolve) => {
    onFatal = (error) => {
      storeFailed = true;
      clearInterval(flusher);
      events.flush();
      logger.error("store-failed", `a store write failed; the broker stopped and exits for a restart from the store: ${error.message}`);
      resolve(EXIT_STORE_FAILED);
    };
  });
  try {
    broker = await startBroker({ settings, transports, logger, onEvent: events.onEvent, onFatal: (error) => onFatal(error) });
  } catch (err) {
    clearInterval(flusher);
    logger.error("start-failed", `cannot start: ${describeListenError(err)}`);
    return 1;
  }
  for (const t of transports) {
    const a = t.address();
    const l = settings.listeners[transports.indexOf(t)];
    logger.info("listening", "listening", {
      transport: t.name,
      host: a?.host,
      port: a?.port,
      path: l?.type === "ws" ? l.path : undefined,
    });
  }
  logger.info("started", "broker started", {
    version: version(),
    persistence: broker.persistence,
    maxQos: settings.broker.maxQos,
    maxQueuedMessages: settings.broker.maxQueuedMessages,
  });

  const stopped = new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) {
        // A second signal: the user insists.
        logger.warn("shutdown-forced", "second signal, exiting now", { signal });
        resolve(1);
        return;
      }
      stopping = true;
      logger.info("shutdown", "shutting down", { signal });
      broker.close().then(
        () => {
          clearInterval(flusher);
          events.flush();
          const st = broker.stats();
          logger.info("stopped", "broker stopped", {
            messagesIn: st.messagesIn,
            messagesOut: st.messagesOut,
            dropped: st.dropped,
            droppedQueueFull: st.droppedQueueFull,
          });
          // A write that failed during the shutdown: the exit status says so (the store-failed
          // line has been logged by onFatal).
          resolve(storeFailed ? EXIT_STORE_FAILED : 0);
        },
        (err: unknown) => {
          logger.error("shutdown-failed", `shutdown failed: ${String(err)}`);
          resolve(1);
        },
      );
    };
    signals.on("SIGINT", () => stop("SIGINT"));
    signals.on("SIGTERM", () => stop("SIGTERM"));
  });
  return await Promise.race([stopped, failed]);
}

/** Exit code after a failed store write (sysexits EX_IOERR). */
export const EXIT_STORE_FAILED = 74;

export type { Logger };
