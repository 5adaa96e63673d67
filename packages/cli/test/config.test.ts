import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { encode, type ProtocolVersion } from "@harbormq/codec";
import { defaultConfig } from "@harbormq/core";
import { parseFlags } from "../src/args.js";
import type { CliFlags } from "../src/args.js";
import { decodeConfig, parseConfigText, resolveSettings } from "../src/config.js";
import type { ConfigFile } from "../src/config.js";

function flags(argv: string[] = []): CliFlags {
  const r = parseFlags(argv);
  if (!r.ok) throw new Error(r.error);
  return r.flags;
}

function errorsOf(json: unknown): readonly string[] {
  const r = decodeConfig(json);
  if (r.ok) throw new Error("expected the config to be rejected");
  return r.errors;
}

function settings(file: ConfigFile, argv: string[] = []) {
  const r = resolveSettings(file, flags(argv));
  if (!r.ok) throw new Error(r.errors.join("\n"));
  return r.value;
}

describe("configuration file", () => {
  it("accepts the full example of docs/configuration.md", () => {
    const doc = readFileSync(fileURLToPath(new URL("../../../docs/configuration.md", import.meta.url)), "utf8");
    const blocks = [...doc.matchAll(/```json\n([\s\S]*?)```/g)].map((m) => m[1]!);
    expect(blocks.length).toBeGreaterThan(0);
    for (const block of blocks) {
      const r = parseConfigText(block);
      expect(r.ok ? [] : r.errors).toEqual([]);
    }
    const r = parseConfigText(blocks[0]!);
    if (!r.ok) return;
    // The example lists every key of the schema.
    expect(Object.keys(r.value).sort()).toEqual(
      [
        "listeners", "logging", "persistence", "maxQos", "maxInflight", "maxQueuedMessages", "maxQueuedBytes",
        "overflowPolicy", "queueQos0", "queueWindow", "queueWindowBytes", "persistentSessionExpiry", "maxPacketSize",
        "keepAliveFactor", "connectTimeout", "maxClientIdLength", "willOnShutdown", "assignedIdPrefix", "observePublishes",
        "topicAliasMaximum", "sendHorizonStep",
      ].sort(),
    );
    // And its values are the defaults, so the doc cannot drift from the code.
    const s = settings(r.value);
    expect(s.broker).toEqual({ ...defaultConfig });
    expect(s.listeners).toHaveLength(3);
  });

  it("every BrokerConfig key is settable in the file or deliberately left to embedders", () => {
    // Hook switches and the hook backlog only matter with createBroker() hooks; the command has none.
    const embedderOnly = ["authenticate", "authorizePublish", "authorizeSubscribe", "maxBufferedPackets"];
    const asJson = (v: unknown) => (v === Infinity ? "unlimited" : v === 0xffffffff ? "never" : v);
    for (const [key, value] of Object.entries(defaultConfig)) {
      if (embedderOnly.includes(key)) continue;
      const r = decodeConfig({ [key]: asJson(value) });
      expect(r.ok ? [] : r.errors, `BrokerConfig.${key}: add it to the config schema or list it as embedder-only`).toEqual([]);
    }
  });

  it("with no file and no flags: one TCP listener on 1883 on every interface, disk store", () => {
    const s = settings({});
    expect(s.listeners).toEqual([{ type: "tcp", port: 1883, host: undefined }]);
    expect(s.broker).toEqual(defaultConfig);
    expect(s.persistence).toEqual({ kind: "sqlite", dir: "./harbormq-data", synchronous: undefined });
    expect(s.logging).toEqual({ level: "info", format: "text" });
  });

  it("the default connectTimeout cuts off even the shortest CONNECT trickled in at one byte per second", () => {
    // A CONNECT with no will, user or password; MQTT 3.1 requires a client id of 1 to 23 bytes.
    const shortest = (version: ProtocolVersion) =>
      encode({ type: "connect", protocolName: version === 3 ? "MQIsdp" : "MQTT", protocolVersion: version, clean: true,
        keepAlive: 0, clientId: version === 3 ? "a" : "", will: undefined, username: undefined, password: undefined,
        properties: {} }, version).length;
    const bytes = Math.min(shortest(3), shortest(4), shortest(5));
    expect(bytes).toBe(14);
    // At one byte per second, sent from the moment the connection opens, the last byte arrives
    // (bytes - 1) s after the connection opened: the timeout must fall before that.
    expect(defaultConfig.connectTimeout).toBeLessThan((bytes - 1) * 1000);
    // The command takes the core's default unless the file sets one.
    expect(settings({}).broker.connectTimeout).toBe(defaultConfig.connectTimeout);
    expect(settings({ connectTimeout: 2000 }).broker.connectTimeout).toBe(2000);
  });

  it("names the key path, the value and what was expected", () => {
    expect(errorsOf({ listeners: [{ type: "tcp", port: 70000 }] })).toEqual([
      "listeners.0.port: got 70000, expected an integer from 0 to 65535",
    ]);
    expect(errorsOf({ maxQos: 3 })).toEqual(["maxQos: got 3, expected one of 0, 1, 2"]);
    expect(errorsOf({ overflowPolicy: "drop-all" })).toEqual([
      'overflowPolicy: got "drop-all", expected one of "drop-new", "drop-oldest"',
    ]);
    expect(errorsOf({ queueQos0: "yes" })).toEqual(['queueQos0: got "yes", expected true or false']);
    expect(errorsOf({ keepAliveFactor: 0.5 })).toEqual(["keepAliveFactor: got 0.5, expected a number >= 1"]);
    expect(errorsOf({ maxQueuedBytes: "lots" })).toEqual([
      'maxQueuedBytes: got "lots", expected an integer >= 1 or "unlimited"',
    ]);
    expect(errorsOf({ listeners: [{ type: "tls", port: 8883 }] })).toEqual([
      "listeners.0.cert: got undefined, expected a non-empty string (required)",
      "listeners.0.key: got undefined, expected a non-empty string (required)",
    ]);
    expect(errorsOf({ listeners: [{ type: "quic" }] })).toEqual([
      'listeners.0.type: got "quic", expected one of "tcp", "tls", "ws"',
    ]);
    expect(errorsOf({ listeners: [{ type: "ws", path: "mqtt" }] })).toEqual([
      'listeners.0.path: got "mqtt", expected a path starting with "/"',
    ]);
    expect(errorsOf({ persistence: { synchronous: "maybe" } })).toEqual([
      'persistence.synchronous: got "maybe", expected one of "full", "normal"',
    ]);
    expect(errorsOf([])).toEqual(["(top level): got [], expected an object (the configuration)"]);
  });

  it("rejects unknown keys, at any depth", () => {
    const top = errorsOf({ maxQoS: 1 });
    expect(top).toHaveLength(1);
    expect(top[0]).toMatch(/^maxQoS: no such key; the configuration takes listeners, logging, persistence, maxQos/);
    expect(errorsOf({ logging: { colour: true } })[0]).toBe("logging.colour: no such key; logging takes level, format");
    expect(errorsOf({ listeners: [{ type: "tcp", path: "/x" }] })[0]).toBe(
      "listeners.0.path: no such key; a tcp listener takes type, port, host",
    );
  });

  it("reports every mistake at once", () => {
    expect(errorsOf({ maxQos: 5, maxInflight: 0, extra: 1 })).toHaveLength(3);
  });

  it("reports JSON syntax errors", () => {
    const r = parseConfigText("{ maxQos: 1 }");
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.errors[0]).toMatch(/^not valid JSON: /);
  });

  it("never throws on any JSON value", () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        const r = decodeConfig(v);
        if (!r.ok) expect(r.errors.length).toBeGreaterThan(0);
      }),
      { numRuns: 300 },
    );
  });

  it("round-trips every valid limit into BrokerConfig", () => {
    fc.assert(
      fc.property(
        fc.record({
          maxQos: fc.constantFrom(0 as const, 1 as const, 2 as const),
          maxInflight: fc.integer({ min: 1, max: 65535 }),
          maxQueuedMessages: fc.integer({ min: 1, max: 1e9 }),
          queueQos0: fc.boolean(),
          connectTimeout: fc.integer({ min: 1, max: 1e6 }),
          persistentSessionExpiry: fc.integer({ min: 0, max: 0xffffffff }),
        }),
        (limits) => {
          const r = decodeConfig(limits);
          expect(r.ok).toBe(true);
          if (r.ok) expect(settings(r.value).broker).toEqual({ ...defaultConfig, ...limits });
        },
      ),
      { numRuns: 200 },
    );
  });

  it("maps the words unlimited and never", () => {
    const r = decodeConfig({ maxQueuedBytes: "unlimited", persistentSessionExpiry: "never" });
    if (!r.ok) throw new Error(r.errors.join());
    expect(settings(r.value).broker.maxQueuedBytes).toBe(Infinity);
    expect(settings(r.value).broker.persistentSessionExpiry).toBe(0xffffffff);
  });
});

describe("flags override the file", () => {
  const file: ConfigFile = {
    listeners: [
      { type: "tcp", port: 1000 },
      { type: "tcp", port: 1001, host: "127.0.0.1" },
      { type: "tls", port: 1002, cert: "c.pem", key: "k.pem" },
      { type: "ws", port: 1003, path: "/ws" },
    ],
    logging: { level: "warn", format: "text" },
    persistence: { dir: "/var/lib/x" },
  };

  it("-p replaces the tcp listeners", () => {
    const s = settings(file, ["-p", "2000"]);
    expect(s.listeners.filter((l) => l.type === "tcp")).toEqual([{ type: "tcp", port: 2000, host: undefined }]);
    expect(s.listeners).toHaveLength(3);
  });

  it("--ws-port keeps the file's ws path; --ws-path changes it", () => {
    expect(settings(file, ["--ws-port", "2001"]).listeners.find((l) => l.type === "ws")).toEqual({
      type: "ws", port: 2001, host: undefined, path: "/ws",
    });
    expect(settings(file, ["--ws-path", "/m"]).listeners.find((l) => l.type === "ws")).toMatchObject({ port: 1003, path: "/m" });
  });

  it("--tls-port takes cert and key from flags or the file", () => {
    expect(settings(file, ["--tls-port", "2002"]).listeners.find((l) => l.type === "tls")).toMatchObject({
      port: 2002, cert: "c.pem", key: "k.pem",
    });
    expect(settings({}, ["--tls-port", "2002", "--cert", "a", "--key", "b"]).listeners).toEqual([
      { type: "tcp", port: 1883, host: undefined },
      { type: "tls", port: 2002, host: undefined, cert: "a", key: "b", certFrom: "--cert", keyFrom: "--key" },
    ]);
    const r = resolveSettings({}, flags(["--tls-port", "2002"]));
    expect(r.ok ? [] : r.errors).toEqual(["--tls-port needs --cert FILE and --key FILE"]);
    const r2 = resolveSettings({}, flags(["--cert", "a", "--key", "b"]));
    expect(r2.ok ? [] : r2.errors).toEqual(["--cert and --key need --tls-port"]);
  });

  it("--host sets every listener's address", () => {
    for (const l of settings(file, ["--host", "::1"]).listeners) expect(l.host).toBe("::1");
  });

  it("-v and --json override logging", () => {
    expect(settings(file, ["-v", "--json"]).logging).toEqual({ level: "debug", format: "json" });
    expect(settings(file).logging).toEqual({ level: "warn", format: "text" });
  });

  it("--memory and --data override persistence", () => {
    expect(settings(file).persistence).toEqual({ kind: "sqlite", dir: "/var/lib/x", synchronous: undefined });
    expect(settings(file, ["--memory"]).persistence).toEqual({ kind: "memory" });
    expect(settings(file, ["--data", "d"]).persistence).toEqual({ kind: "sqlite", dir: "d", synchronous: undefined });
    expect(settings({ persistence: { memory: true } }).persistence).toEqual({ kind: "memory" });
  });

  it("rejects two listeners on one port", () => {
    const r = resolveSettings({ listeners: [{ type: "tcp", port: 5 }, { type: "ws", port: 5 }] }, flags());
    expect(r.ok ? [] : r.errors).toEqual(["listeners tcp and ws both use port 5"]);
  });
});
