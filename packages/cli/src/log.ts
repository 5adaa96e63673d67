// Log lines of the `harbormq` command: one line per event, readable text by default
// (`2026-01-01T12:00:00.000Z INFO  client connected id=a remote=... version=3.1.1`) or one JSON
// object per line with --json. Broker events are translated here; the core only reports data.
import type { BrokerEvent } from "@harbormq/core";
import type { LogFormat, LogLevel } from "./config.js";

const rank: Record<LogLevel, number> = { error: 0, warn: 1, info: 2, debug: 3 };

export type Fields = Readonly<Record<string, string | number | boolean | undefined>>;

export interface Logger {
  readonly level: LogLevel;
  enabled(level: LogLevel): boolean;
  log(level: LogLevel, event: string, message: string, fields?: Fields): void;
  error(event: string, message: string, fields?: Fields): void;
  warn(event: string, message: string, fields?: Fields): void;
  info(event: string, message: string, fields?: Fields): void;
  debug(event: string, message: string, fields?: Fields): void;
}

/** Control characters (C0, DEL, C1) and the Unicode line and paragraph separators. */
const controls = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;
const shortEscapes: Readonly<Record<string, string>> = { "\n": "\\n", "\r": "\\r", "\t": "\\t" };

/** The message of a text line with its control characters escaped (`\n`, `\x1b`, `\u2028`):
 *  one event is one line, and a newline in an error text or a client's value cannot start a
 *  line that looks like another event (found by review). */
export function escapeControls(text: string): string {
  return text.replace(controls, (c) => {
    const code = c.charCodeAt(0);
    return shortEscapes[c] ?? (code < 0x100 ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16)}`);
  });
}

/** A value in a text line: bare when it is simple, JSON-quoted otherwise. */
function textValue(v: string | number | boolean): string {
  if (typeof v !== "string") return String(v);
  // JSON.stringify escapes C0 controls but not DEL, C1 or U+2028/2029.
  return /^[\w.:/@[\]+-]+$/.test(v) ? v : escapeControls(JSON.stringify(v));
}

export function formatLine(format: LogFormat, time: Date, level: LogLevel, event: string, message: string, fields: Fields = {}): string {
  if (format === "json") {
    const o: Record<string, unknown> = { time: time.toISOString(), level, event, msg: message };
    for (const [k, v] of Object.entries(fields)) if (v !== undefined) o[k] = v;
    return JSON.stringify(o);
  }
  let line = `${time.toISOString()} ${level.toUpperCase().padEnd(5)} ${escapeControls(message)}`;
  for (const [k, v] of Object.entries(fields)) if (v !== undefined) line += ` ${k}=${textValue(v)}`;
  return line;
}

export function createLogger(
  options: { level: LogLevel; format: LogFormat },
  write: (line: string) => void,
  clock: () => Date = () => new Date(),
): Logger {
  const max = rank[options.level];
  const enabled = (level: LogLevel) => rank[level] <= max;
  const log = (level: LogLevel, event: string, message: string, fields?: Fields) => {
    if (rank[level] > max) return;
    write(`${formatLine(options.format, clock(), level, event, message, fields)}\n`);
  };
  return {
    level: options.level,
    enabled,
    log,
    error: (e, m, f) => log("error", e, m, f),
    warn: (e, m, f) => log("warn", e, m, f),
    info: (e, m, f) => log("info", e, m, f),
    debug: (e, m, f) => log("debug", e, m, f),
  };
}

/** MQTT 5 reason code names (section 2.4), for logs. */
const reasonNames: Readonly<Record<number, string>> = {
  0x00: "success",
  0x04: "disconnect with will",
  0x80: "unspecified error",
  0x81: "malformed packet",
  0x82: "protocol error",
  0x83: "implementation specific error",
  0x84: "unsupported protocol version",
  0x85: "client identifier not valid",
  0x86: "bad user name or password",
  0x87: "not authorized",
  0x88: "server unavailable",
  0x89: "server busy",
  0x8a: "banned",
  0x8b: "server shutting down",
  0x8c: "bad authentication method",
  0x8d: "keep alive timeout",
  0x8e: "session taken over",
  0x8f: "topic filter invalid",
  0x90: "topic name invalid",
  0x91: "packet identifier in use",
  0x92: "packet identifier not found",
  0x93: "receive maximum exceeded",
  0x94: "topic alias invalid",
  0x95: "packet too large",
  0x96: "message rate too high",
  0x97: "quota exceeded",
  0x98: "administrative action",
  0x99: "payload format invalid",
  0x9a: "retain not supported",
  0x9b: "qos not supported",
  0x9c: "use another server",
  0x9d: "server moved",
  0x9e: "shared subscriptions not supported",
  0x9f: "connection rate exceeded",
  0xa0: "maximum connect time",
  0xa1: "subscription identifiers not supported",
  0xa2: "wildcard subscriptions not supported",
};

export function reasonName(code: number): string {
  return `${reasonNames[code] ?? "reason"} (0x${code.toString(16).padStart(2, "0")})`;
}

const versionName = { 3: "3.1", 4: "3.1.1", 5: "5.0" } as const;

/** "[::ffff:10.0.0.1]:5000" (IPv4 on a dual-stack socket) reads better as "10.0.0.1:5000". */
export function displayRemote(remote: string): string {
  if (!remote.startsWith("[::ffff:")) return remote;
  return remote.replace(/\[::ffff:(\d+\.\d+\.\d+\.\d+)\]/, "$1");
}

/** Individual drop lines per second before they are summarised. */
export const dropBurst = 10;

/** Logs broker events: remembers each connected client's remote address for its disconnect
 *  line, and past a burst of drops in one second logs one summary line per client (with
 *  `count`) instead of a line per message. Call `flush` about once a second and at shutdown. */
export class EventLog {
  private readonly remotes = new Map<number, string>();
  private windowStart = -Infinity;
  private dropsInWindow = 0;
  private readonly suppressed = new Map<string, { count: number; topic: string; qos: number; reason: string; policy: string }>();

  constructor(
    private readonly logger: Logger,
    private readonly now: () => number,
  ) {}

  readonly onEvent = (e: BrokerEvent): void => {
    switch (e.type) {
      // Connect and disconnect lines are info: below that, nothing is remembered or formatted
      // (a connection churn at level warn paid a regular expression per connect).
      case "client-connected":
        if (!this.logger.enabled("info")) return;
        this.remotes.set(e.conn, e.remote);
        logEvent(this.logger, { ...e, remote: displayRemote(e.remote) });
        return;
      case "client-disconnected": {
        if (!this.logger.enabled("info")) return;
        const remote = this.remotes.get(e.conn);
        this.remotes.delete(e.conn);
        logEvent(this.logger, e, remote === undefined ? undefined : displayRemote(remote));
        return;
      }
      case "message-dropped": {
        const t = this.now();
        if (t - this.windowStart >= 1000) {
          this.flush();
          this.windowStart = t;
          this.dropsInWindow = 0;
        }
        if (++this.dropsInWindow <= dropBurst) {
          logEvent(this.logger, e);
          return;
        }
        const s = this.suppressed.get(e.clientId);
        if (s === undefined) this.suppressed.set(e.clientId, { count: 1, topic: e.topic, qos: e.qos, reason: e.reason, policy: e.policy });
        else s.count++;
        return;
      }
      default:
        logEvent(this.logger, e);
    }
  };

  /** Logs the drops held back since the last flush. */
  flush(): void {
    for (const [id, s] of this.suppressed) {
      this.logger.warn("message-dropped", "messages dropped", { id, count: s.count, topic: s.topic, qos: s.qos, reason: s.reason, policy: s.policy, note: "summary" });
    }
    this.suppressed.clear();
  }
}

/** Logs one broker event (the core's `observe` action). Publishes are per-message: debug only. */
export function logEvent(logger: Logger, e: BrokerEvent, remote?: string): void {
  switch (e.type) {
    case "client-connected":
      logger.info("client-connected", "client connected", {
        id: e.clientId,
        remote: e.remote,
        version: versionName[e.protocolVersion],
        clean: e.clean,
        sessionPresent: e.sessionPresent,
        keepAlive: e.keepAlive,
        conn: e.conn,
      });
      return;
    case "client-disconnected":
      logger.info("client-disconnected", "client disconnected", {
        id: e.clientId,
        remote,
        reason: e.reason === 0 ? "normal disconnection (0x00)" : reasonName(e.reason),
        detail: e.message === "" ? undefined : e.message,
        graceful: e.graceful,
        conn: e.conn,
      });
      return;
    case "connect-refused":
      logger.warn("connect-refused", "connection refused", {
        id: e.clientId,
        reason: reasonName(e.reason),
        detail: e.message === "" ? undefined : e.message,
        conn: e.conn,
      });
      return;
    case "protocol-error":
      logger.warn("protocol-error", "protocol error", {
        id: e.clientId,
        reason: reasonName(e.reason),
        detail: e.message === "" ? undefined : e.message,
        conn: e.conn,
      });
      return;
    case "message-published":
      if (!logger.enabled("debug")) return;
      logger.debug("message-published", "message published", {
        id: e.clientId,
        topic: e.topic,
        qos: e.qos,
        retain: e.retain,
        bytes: e.bytes,
      });
      return;
    case "message-dropped":
      logger.warn("message-dropped", "message dropped", {
        id: e.clientId,
        topic: e.topic,
        qos: e.qos,
        reason: e.reason,
        policy: e.policy,
      });
      return;
    case "will-published":
      logger.info("will-published", "will published", { id: e.clientId, topic: e.topic });
      return;
    case "session-expired":
      logger.info("session-expired", "session expired", { id: e.clientId });
      return;
    case "publish-denied":
      logger.warn("publish-denied", "publish denied", { id: e.clientId, topic: e.topic, qos: e.qos, reason: reasonName(e.reason) });
      return;
    case "store-failed":
      logger.error("store-failed", "store write failed; the publishers waiting on it were disconnected", { op: e.op });
      return;
    default: {
      // Events added to the core later are still logged, with their fields as they are.
      const other: { readonly type: string } = e;
      const fields: Record<string, string | number | boolean | undefined> = {};
      for (const [k, v] of Object.entries(other)) {
        if (k !== "type" && (typeof v === "string" || typeof v === "number" || typeof v === "boolean")) fields[k] = v;
      }
      logger.info(other.type, other.type.replace(/-/g, " "), fields);
    }
  }
}
