// End-to-end harness: starts the real `harbormq` process (packages/cli/dist/main.js, built by
// `npm test`) on ports picked by binding port 0, reads its JSON log lines, and wraps the real
// clients (mqtt.js, mosquitto_pub / mosquitto_sub, Python paho-mqtt) behind small promises.
// Nothing here sleeps for a fixed time: every wait is for an event, bounded by a timeout that
// only turns a hang into a readable failure.
import { execFile, spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "mqtt";
import type { IClientOptions, IConnackPacket, IPublishPacket, MqttClient } from "mqtt";
import { Decoder, encode } from "@harbormq/codec";
import type { Packet, ProtocolVersion } from "@harbormq/codec";
import { assertBuilt, freePort, mainJs, nodeBinary, root } from "../torture/broker-process.mjs";

// The process helpers shared with the torture scripts (plain JavaScript) live in one place:
// root, mainJs, nodeBinary (the first `node` on PATH outside node_modules: under npm scripts
// node_modules/.bin comes first and may hold another Node, for which the better-sqlite3 addon
// was not built), assertBuilt and freePort.
export { assertBuilt, freePort, mainJs, nodeBinary, root };
export const python = "/usr/bin/python3";

export function tempDir(prefix = "harbormq-e2e-"): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/** Resolves when `check` returns a value other than undefined (polled on every `poke`). */
/** Resolves when `check` returns a value other than undefined (re-checked on every `poke`),
 *  rejects when it throws or after `timeoutMs`. */
function waiter<T>(what: string | (() => string), timeoutMs: number, check: () => T | undefined, subscribe: (poke: () => void) => () => void): Promise<T> {
  try {
    const first = check();
    if (first !== undefined) return Promise.resolve(first);
  } catch (err) {
    return Promise.reject(err);
  }
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      unsubscribe();
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${typeof what === "string" ? what : what()}`));
    }, timeoutMs);
    const unsubscribe = subscribe(() => {
      let v: T | undefined;
      try {
        v = check();
      } catch (err) {
        clearTimeout(timer);
        unsubscribe();
        reject(err);
        return;
      }
      if (v === undefined) return;
      clearTimeout(timer);
      unsubscribe();
      resolve(v);
    });
  });
}

export type LogLine = Readonly<Record<string, unknown>> & { readonly event: string; readonly level: string; readonly msg: string };

export interface BrokerOptions {
  /** Written to a temp file and passed with -c (ports of listeners are added by the harness). */
  readonly config?: Record<string, unknown>;
  readonly ws?: boolean;
  readonly tls?: { readonly cert: string; readonly key: string };
  /** Keep sessions in SQLite under this directory instead of --memory. */
  readonly dataDir?: string;
  readonly verbose?: boolean;
  readonly extraArgs?: readonly string[];
  /** Run under `ulimit -f` (KiB) with SIGXFSZ ignored: a write past it fails with EFBIG, like a
   *  full disk. */
  readonly fileSizeLimitKb?: number;
}

export interface BrokerProcess {
  readonly child: ChildProcess;
  readonly port: number;
  readonly wsPort: number | undefined;
  readonly tlsPort: number | undefined;
  readonly url: string;
  readonly lines: LogLine[];
  readonly stderr: () => string;
  waitForLine(what: string, pred: (l: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  /** SIGTERM (default) and wait for the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  /** Waits for the process to exit by itself; resolves its exit code. */
  exited(timeoutMs?: number): Promise<number | null>;
}

const live = new Set<ChildProcess>();
process.on("exit", () => {
  for (const c of live) c.kill("SIGKILL");
});


/** Set HARBORMQ_E2E_REFERENCE=mosquitto to run the scenarios against Mosquitto instead (a check
 *  of the tests themselves; assertions on harbormq's log lines then fail by design). */
export const reference = process.env["HARBORMQ_E2E_REFERENCE"] === "mosquitto";

/** Spawns the broker with JSON logs and waits for its "listening" lines. */
export async function startBroker(options: BrokerOptions = {}): Promise<BrokerProcess> {
  if (reference) return startMosquitto(options);
  assertBuilt();
  const port = await freePort();
  const wsPort = options.ws === true ? await freePort() : undefined;
  const tlsPort = options.tls !== undefined ? await freePort() : undefined;
  const args = [mainJs, "--json", "--host", "127.0.0.1", "-p", String(port)];
  if (wsPort !== undefined) args.push("--ws-port", String(wsPort));
  if (options.tls !== undefined && tlsPort !== undefined) {
    args.push("--tls-port", String(tlsPort), "--cert", options.tls.cert, "--key", options.tls.key);
  }
  if (options.dataDir !== undefined) args.push("--data", options.dataDir);
  else args.push("--memory");
  if (options.verbose === true) args.push("-v");
  let configDir: { path: string; remove(): void } | undefined;
  if (options.config !== undefined) {
    configDir = tempDir("harbormq-conf-");
    const file = join(configDir.path, "harbormq.json");
    writeFileSync(file, JSON.stringify(options.config));
    args.push("-c", file);
  }
  args.push(...(options.extraArgs ?? []));
  const child =
    options.fileSizeLimitKb === undefined
      ? spawn(nodeBinary, args, { cwd: root, stdio: ["ignore", "pipe", "pipe"] })
      : spawn("/bin/sh", ["-c", `trap '' XFSZ; ulimit -f ${options.fileSizeLimitKb}; exec "$0" "$@"`, nodeBinary, ...args], { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
  live.add(child);
  const lines: LogLine[] = [];
  const listeners = new Set<() => void>();
  const poke = () => {
    for (const l of [...listeners]) l();
  };
  let stderr = "";
  let exitCode: number | null | undefined;
  let buffered = "";
  child.stdout!.setEncoding("utf8");
  child.stdout!.on("data", (chunk: string) => {
    buffered += chunk;
    let nl: number;
    while ((nl = buffered.indexOf("\n")) >= 0) {
      const text = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      try {
        lines.push(JSON.parse(text) as LogLine);
      } catch {
        lines.push({ event: "unparsed", level: "?", msg: text });
      }
    }
    poke();
  });
  child.stderr!.setEncoding("utf8");
  child.stderr!.on("data", (chunk: string) => {
    stderr += chunk;
  });
  child.on("exit", (code, signal) => {
    live.delete(child);
    configDir?.remove();
    exitCode = code ?? (signal === null ? null : -1);
    poke();
  });
  const subscribe = (l: () => void) => {
    listeners.add(l);
    return () => listeners.delete(l);
  };
  const waitForLine = (what: string, pred: (l: LogLine) => boolean, timeoutMs = 10_000) =>
    waiter(
      `log line: ${what}`,
      timeoutMs,
      () => {
        const found = lines.find(pred);
        if (found !== undefined) return found;
        if (exitCode !== undefined) throw new Error(`broker exited (${exitCode}) before ${what}\n${stderr}\n${lines.map((l) => JSON.stringify(l)).join("\n")}`);
        return undefined;
      },
      subscribe,
    );
  const expected = 1 + (wsPort !== undefined ? 1 : 0) + (tlsPort !== undefined ? 1 : 0);
  try {
    await waiter(
      () => `${expected} listening lines; stderr: ${stderr}; stdout: ${lines.map((l) => JSON.stringify(l)).join("\n")}`,
      10_000,
      () => {
        if (exitCode !== undefined) throw new Error(`broker exited (${exitCode}) while starting:\n${stderr}\n${lines.map((l) => JSON.stringify(l)).join("\n")}`);
        return lines.filter((l) => l.event === "listening").length >= expected ? true : undefined;
      },
      subscribe,
    );
  } catch (err) {
    child.kill("SIGKILL");
    throw err;
  }
  return {
    child,
    port,
    wsPort,
    tlsPort,
    url: `mqtt://127.0.0.1:${port}`,
    lines,
    stderr: () => stderr,
    waitForLine,
    exited: (timeoutMs = 10_000) => waiter("broker exit", timeoutMs, () => (exitCode !== undefined ? { code: exitCode } : undefined), subscribe).then((r) => r.code),
    stop(signal = "SIGTERM") {
      if (exitCode !== undefined) return Promise.resolve(exitCode);
      const exited = waiter("broker exit", 10_000, () => (exitCode !== undefined ? { code: exitCode } : undefined), subscribe);
      child.kill(signal);
      return exited.then((r) => r.code, (err: unknown) => {
        child.kill("SIGKILL");
        throw err;
      });
    },
  };
}

async function startMosquitto(options: BrokerOptions): Promise<BrokerProcess> {
  const port = await freePort();
  const dir = tempDir("mosquitto-");
  const c = options.config ?? {};
  const conf = [`listener ${port} 127.0.0.1`, "allow_anonymous true", "persistence false"];
  if (typeof c["maxQueuedMessages"] === "number") conf.push(`max_queued_messages ${c["maxQueuedMessages"]}`);
  if (c["queueQos0"] === true) conf.push("queue_qos0_messages true");
  if (typeof c["maxInflight"] === "number") conf.push(`max_inflight_messages ${c["maxInflight"]}`);
  writeFileSync(join(dir.path, "m.conf"), conf.join("\n") + "\n");
  const child = spawn("/usr/sbin/mosquitto", ["-c", join(dir.path, "m.conf")], { stdio: ["ignore", "pipe", "pipe"] });
  live.add(child);
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  let exitCode: number | null | undefined;
  child.on("exit", (code) => {
    live.delete(child);
    dir.remove();
    exitCode = code;
  });
  for (let i = 0; ; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, "127.0.0.1", () => {
        s.destroy();
        resolve(true);
      });
      s.on("error", () => resolve(false));
    });
    if (ok) break;
    if (i > 100) throw new Error(`mosquitto did not start: ${stderr}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    child, port, wsPort: undefined, tlsPort: undefined, url: `mqtt://127.0.0.1:${port}`, lines: [], stderr: () => stderr,
    waitForLine: () => Promise.reject(new Error("no log lines from mosquitto")),
    exited: () => new Promise((resolve) => {
      if (exitCode !== undefined) return resolve(exitCode);
      child.once("exit", (code) => resolve(code));
    }),
    stop: () => new Promise((resolve) => {
      if (exitCode !== undefined) return resolve(exitCode);
      child.once("exit", (code) => resolve(code));
      child.kill("SIGTERM");
    }),
  };
}

// ---------------------------------------------------------------------------------------------
// mqtt.js

export interface Received {
  readonly topic: string;
  readonly payload: string;
  readonly qos: number;
  readonly retain: boolean;
  readonly dup: boolean;
}

export interface Client {
  readonly mqtt: MqttClient;
  readonly connack: IConnackPacket;
  readonly received: Received[];
  /** Resolves with the first `n` messages once they have arrived. */
  waitFor(n: number, timeoutMs?: number): Promise<Received[]>;
  /** Resolves once the broker closed the connection. */
  closed(timeoutMs?: number): Promise<void>;
  end(): Promise<void>;
}

/** Connects with mqtt.js (no automatic reconnect) and records every message. */
export async function mqttClient(url: string, options: IClientOptions = {}): Promise<Client> {
  const client = connect(url, { reconnectPeriod: 0, connectTimeout: 5000, ...options });
  const received: Received[] = [];
  const listeners = new Set<() => void>();
  let isClosed = false;
  const poke = () => {
    for (const l of [...listeners]) l();
  };
  // Listen before the CONNACK: a resumed session's queue follows it in the same read.
  client.on("message", (topic: string, payload: Buffer, packet: IPublishPacket) => {
    received.push({ topic, payload: payload.toString(), qos: packet.qos, retain: packet.retain, dup: packet.dup });
    poke();
  });
  client.on("close", () => {
    isClosed = true;
    poke();
  });
  const connack = await new Promise<IConnackPacket>((resolve, reject) => {
    client.once("connect", resolve);
    client.once("error", reject);
    client.once("close", () => reject(new Error(`connection to ${url} closed before CONNACK`)));
  });
  client.on("error", () => {
    // Surfaced through `closed`; an unhandled 'error' would crash the test runner.
  });
  const subscribe = (l: () => void) => {
    listeners.add(l);
    return () => listeners.delete(l);
  };
  return {
    mqtt: client,
    connack,
    received,
    waitFor: (n, timeoutMs = 10_000) =>
      waiter(`${n} messages (have ${received.length})`, timeoutMs, () => (received.length >= n ? received.slice(0, n) : undefined), subscribe),
    closed: (timeoutMs = 10_000) => waiter("the connection to close", timeoutMs, () => (isClosed ? true : undefined), subscribe).then(() => undefined),
    end: () => client.endAsync(),
  };
}

// ---------------------------------------------------------------------------------------------
// Command line clients

export function exec(file: string, args: readonly string[], options: { input?: string; timeoutMs?: number } = {}): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = execFile(file, args, { timeout: options.timeoutMs ?? 15_000, encoding: "utf8" }, (err, stdout, stderr) => {
      if (err !== null) reject(new Error(`${file} ${args.join(" ")} failed: ${err.message}\n${stderr}`));
      else resolve({ stdout, stderr });
    });
    if (options.input !== undefined) child.stdin!.end(options.input);
  });
}

/** mosquitto_pub with `args` (host and port added). */
export function mosquittoPub(port: number, args: readonly string[], input?: string) {
  return exec("mosquitto_pub", ["-h", "127.0.0.1", "-p", String(port), ...args], input === undefined ? {} : { input });
}

/** mosquitto_sub with `args` (host and port added); resolves with its output when it exits. */
export function mosquittoSub(port: number, args: readonly string[]) {
  return exec("mosquitto_sub", ["-h", "127.0.0.1", "-p", String(port), ...args]);
}

/** Python prelude: `client(**kwargs)` builds a paho Client with the 1.x callback signatures on
 *  paho 1.x (Debian bookworm) and on 2.x (Debian trixie, which wants CallbackAPIVersion). */
export const pahoPrelude = `
import paho.mqtt.client as mqtt
def client(**kwargs):
    if hasattr(mqtt, "CallbackAPIVersion"):
        return mqtt.Client(mqtt.CallbackAPIVersion.VERSION1, **kwargs)
    return mqtt.Client(**kwargs)
`;

/** Runs a Python paho-mqtt script (after pahoPrelude); returns stdout lines. */
export async function paho(script: string, args: readonly string[] = []): Promise<string[]> {
  const { stdout } = await exec(python, ["-c", pahoPrelude + script, ...args], { timeoutMs: 15_000 });
  return stdout.split("\n").filter((l) => l !== "");
}

/** A self-signed certificate for localhost / 127.0.0.1, made with openssl. */
export async function selfSignedCert(dir: string): Promise<{ cert: string; key: string }> {
  const cert = join(dir, "server.crt");
  const key = join(dir, "server.key");
  await exec("openssl", [
    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
    "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=localhost",
    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
  ]);
  return { cert, key };
}

// ---------------------------------------------------------------------------------------------
// A raw MQTT client on a TCP socket with our codec: it acknowledges nothing by itself, so a test
// controls exactly which PUBACK / PUBREC / PUBREL / PUBCOMP the broker sees.

export interface RawClient {
  readonly socket: net.Socket;
  readonly received: Packet[];
  send(packet: Packet): void;
  /** Writes bytes as they are (hostile input). */
  sendBytes(bytes: Uint8Array): void;
  /** The next packet not yet taken by `next` (waits for it). */
  next(timeoutMs?: number): Promise<Packet>;
  /** Resolves once the broker has closed the socket. */
  closed(timeoutMs?: number): Promise<void>;
  readonly isClosed: () => boolean;
  destroy(): void;
}

export function rawClient(port: number, version: ProtocolVersion = 4): Promise<RawClient> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1");
    const decoder = new Decoder({ version });
    const received: Packet[] = [];
    let taken = 0;
    let closed = false;
    const listeners = new Set<() => void>();
    const poke = () => {
      for (const l of [...listeners]) l();
    };
    const subscribe = (l: () => void) => {
      listeners.add(l);
      return () => listeners.delete(l);
    };
    socket.on("data", (chunk) => {
      decoder.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length));
      for (let item = decoder.next(); item !== undefined; item = decoder.next()) {
        if (item.type === "error") {
          socket.destroy(new Error(`undecodable bytes from the broker: ${item.message}`));
          break;
        }
        received.push(item);
      }
      poke();
    });
    socket.on("error", () => undefined);
    socket.on("close", () => {
      closed = true;
      poke();
    });
    socket.once("connect", () => {
      socket.off("error", reject);
      resolve({
        socket,
        received,
        send: (packet) => socket.write(encode(packet, version)),
        sendBytes: (bytes) => socket.write(bytes),
        next: (timeoutMs = 10_000) =>
          waiter(`packet #${taken + 1} (received ${received.map((p) => p.type).join(",")})`, timeoutMs, () => {
            if (taken < received.length) return received[taken++];
            if (closed) throw new Error(`socket closed while waiting for packet #${taken + 1}`);
            return undefined;
          }, subscribe),
        closed: (timeoutMs = 10_000) => waiter("the broker to close the socket", timeoutMs, () => (closed ? true : undefined), subscribe).then(() => undefined),
        isClosed: () => closed,
        destroy: () => socket.destroy(),
      });
    });
    socket.once("error", reject);
  });
}

/** Packet factories (every field present, as the codec's model requires). */
export const pk = {
  connect: (clientId: string, clean: boolean, keepAlive = 60, version: ProtocolVersion = 4): Packet => ({
    type: "connect", protocolName: version === 3 ? "MQIsdp" : "MQTT", protocolVersion: version, clean, keepAlive,
    clientId, will: undefined, username: undefined, password: undefined, properties: {},
  }),
  subscribe: (packetId: number, topicFilter: string, qos: 0 | 1 | 2): Packet => ({
    type: "subscribe", packetId, properties: {},
    subscriptions: [{ topicFilter, qos, noLocal: false, retainAsPublished: false, retainHandling: 0 }],
  }),
  publish: (topic: string, payload: string, qos: 0 | 1 | 2, packetId?: number, dup = false, retain = false): Packet => ({
    type: "publish", topic, payload: new TextEncoder().encode(payload), qos, retain, dup,
    packetId: qos === 0 ? undefined : packetId, properties: {},
  }),
  ack: (type: "puback" | "pubrec" | "pubrel" | "pubcomp", packetId: number): Packet => ({ type, packetId, reasonCode: 0, properties: {} }),
  disconnect: (): Packet => ({ type: "disconnect", reasonCode: 0, properties: {} }),
  pingreq: (): Packet => ({ type: "pingreq" }),
};
