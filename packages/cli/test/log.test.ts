import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import type { LogFormat, LogLevel } from "../src/config.js";
import { EventLog, createLogger, displayRemote, dropBurst, formatLine, logEvent, reasonName } from "../src/log.js";

const at = new Date("2026-01-02T03:04:05.678Z");

function capture(level: LogLevel, format: LogFormat) {
  const lines: string[] = [];
  const logger = createLogger({ level, format }, (l) => lines.push(l), () => at);
  return { logger, lines };
}

describe("log lines", () => {
  it("formats readable text with simple values bare and others quoted", () => {
    expect(formatLine("text", at, "info", "x", "client connected", { id: "a b", remote: "127.0.0.1:5", clean: false, n: 3, skip: undefined })).toBe(
      '2026-01-02T03:04:05.678Z INFO  client connected id="a b" remote=127.0.0.1:5 clean=false n=3',
    );
  });

  it("formats one JSON object per line", () => {
    const line = formatLine("json", at, "warn", "message-dropped", "message dropped", { id: "c", qos: 1 });
    expect(JSON.parse(line)).toEqual({ time: at.toISOString(), level: "warn", event: "message-dropped", msg: "message dropped", id: "c", qos: 1 });
    expect(line).not.toContain("\n");
  });

  it("filters by level", () => {
    const { logger, lines } = capture("info", "text");
    logger.debug("d", "hidden");
    logger.info("i", "shown");
    logger.error("e", "shown too");
    expect(lines).toHaveLength(2);
    expect(lines.every((l) => l.endsWith("\n"))).toBe(true);
  });

  it("logs connects with id, remote, version, clean and session present", () => {
    const { logger, lines } = capture("info", "json");
    logEvent(logger, {
      type: "client-connected", conn: 7, clientId: "sensor-1", remote: "10.0.0.1:4000",
      protocolVersion: 4, clean: false, sessionPresent: true, keepAlive: 60,
    });
    expect(JSON.parse(lines[0]!)).toMatchObject({
      event: "client-connected", id: "sensor-1", remote: "10.0.0.1:4000", version: "3.1.1", clean: false, sessionPresent: true,
    });
  });

  it("logs disconnects and protocol errors with a named reason", () => {
    const { logger, lines } = capture("info", "text");
    logEvent(logger, { type: "client-disconnected", conn: 1, clientId: "a", reason: 0x8d, message: "", graceful: false });
    logEvent(logger, { type: "protocol-error", conn: 2, clientId: undefined, reason: 0x81, message: "bad remaining length" });
    expect(lines[0]).toContain('client disconnected id=a reason="keep alive timeout (0x8d)" graceful=false');
    expect(lines[1]).toContain('WARN  protocol error reason="malformed packet (0x81)" detail="bad remaining length"');
    expect(reasonName(0xfe)).toBe("reason (0xfe)");
  });

  it("logs drops as warnings and publishes only in debug", () => {
    const info = capture("info", "text");
    logEvent(info.logger, { type: "message-published", clientId: "p", topic: "t", qos: 1, retain: false, bytes: 3 });
    logEvent(info.logger, { type: "message-dropped", clientId: "s", topic: "t", qos: 1, reason: "queue-full", policy: "drop-new" });
    expect(info.lines).toHaveLength(1);
    expect(info.lines[0]).toContain("WARN  message dropped id=s topic=t qos=1 reason=queue-full policy=drop-new");
    const debug = capture("debug", "text");
    logEvent(debug.logger, { type: "message-published", clientId: "p", topic: "t", qos: 1, retain: false, bytes: 3 });
    expect(debug.lines[0]).toContain("DEBUG message published id=p topic=t");
  });
});

describe("event log", () => {
  const drop = (clientId: string) => ({ type: "message-dropped" as const, clientId, topic: "t", qos: 1 as const, reason: "queue-full" as const, policy: "drop-new" as const });

  it("shows IPv4 clients on a dual-stack socket as plain IPv4", () => {
    expect(displayRemote("[::ffff:10.1.2.3]:5000")).toBe("10.1.2.3:5000");
    expect(displayRemote("[::1]:5000")).toBe("[::1]:5000");
  });

  it("names the remote address of a disconnecting client and calls a DISCONNECT normal", () => {
    const { logger, lines } = capture("info", "json");
    const log = new EventLog(logger, () => 0);
    log.onEvent({ type: "client-connected", conn: 3, clientId: "c", remote: "[::ffff:127.0.0.1]:9", protocolVersion: 5, clean: true, sessionPresent: false, keepAlive: 0 });
    log.onEvent({ type: "client-disconnected", conn: 3, clientId: "c", reason: 0, message: "", graceful: true });
    expect(JSON.parse(lines[0]!)).toMatchObject({ remote: "127.0.0.1:9", version: "5.0" });
    expect(JSON.parse(lines[1]!)).toMatchObject({ event: "client-disconnected", remote: "127.0.0.1:9", reason: "normal disconnection (0x00)" });
  });

  it("at level warn remembers and formats no remote address (connect lines are info)", () => {
    const { logger, lines } = capture("warn", "text");
    const log = new EventLog(logger, () => 0);
    log.onEvent({ type: "client-connected", conn: 4, clientId: "c", remote: "[::ffff:127.0.0.1]:9", protocolVersion: 4, clean: true, sessionPresent: false, keepAlive: 0 });
    expect((log as unknown as { remotes: Map<number, string> }).remotes.size).toBe(0);
    log.onEvent({ type: "client-disconnected", conn: 4, clientId: "c", reason: 0, message: "", graceful: true });
    expect(lines).toEqual([]);
  });

  it("logs a burst of drops individually, then one summary per client with the count", () => {
    let now = 0;
    const { logger, lines } = capture("info", "json");
    const log = new EventLog(logger, () => now);
    for (let i = 0; i < dropBurst + 25; i++) log.onEvent(drop(i % 2 === 0 ? "a" : "b"));
    expect(lines).toHaveLength(dropBurst);
    log.flush();
    const parsed = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    const total = parsed.reduce((n, l) => n + (typeof l["count"] === "number" ? l["count"] : 1), 0);
    expect(total).toBe(dropBurst + 25);
    expect(parsed.filter((l) => l["count"] !== undefined).map((l) => l["id"]).sort()).toEqual(["a", "b"]);
    // A new second starts a new burst.
    now = 1000;
    log.onEvent(drop("a"));
    expect(JSON.parse(lines[lines.length - 1]!)).not.toHaveProperty("count");
  });

  it("docs/configuration.md gives the burst and the summary line the code writes", () => {
    const doc = readFileSync(fileURLToPath(new URL("../../../docs/configuration.md", import.meta.url)), "utf8").replace(/\s+/g, " ");
    expect(doc).toContain(`In a window the first ${dropBurst} drops, of all clients together, get a warning line each`);
    expect(doc).toContain("`messages dropped ... count=N note=summary`");
    const { logger, lines } = capture("info", "text");
    const log = new EventLog(logger, () => 0);
    for (let i = 0; i < dropBurst + 3; i++) log.onEvent(drop("a"));
    log.flush();
    expect(lines).toHaveLength(dropBurst + 1);
    expect(lines[dropBurst]).toMatch(/ WARN {2}messages dropped id=a count=3 .*note=summary\n$/);
  });
});

describe("brokerLogger (the driver's logger)", () => {
  it("leaves out the levels that are off, so the driver skips building their fields; forwards the others", async () => {
    const { brokerLogger } = await import("../src/start.js");
    const lines: string[] = [];
    const warn = brokerLogger(createLogger({ level: "warn", format: "text" }, (l) => lines.push(l), () => at));
    expect(Object.keys(warn).sort()).toEqual(["error", "warn"]);
    warn.warn?.("closing a connection that does not read", { conn: 1, pendingBytes: 10 });
    expect(lines).toEqual(["2026-01-02T03:04:05.678Z WARN  closing a connection that does not read conn=1 pendingBytes=10\n"]);
    const debug = brokerLogger(createLogger({ level: "debug", format: "text" }, () => undefined, () => at));
    expect(Object.keys(debug).sort()).toEqual(["debug", "error", "info", "warn"]);
  });
});
