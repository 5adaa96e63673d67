// End to end with a real client (mqtt.js) over TCP, TLS and WebSocket: connect, subscribe,
// publish at QoS 0, 1 and 2, receive. Ephemeral ports everywhere.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as net from "node:net";
import mqtt from "mqtt";
import { Decoder, encode } from "@harbormq/codec";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createBroker, type HarborBroker } from "@harbormq/broker";
import { tcpTransport, tlsTransport } from "@harbormq/transport-tcp";
import { wsTransport } from "@harbormq/transport-ws";

function selfSigned(): { cert: string; key: string } {
  const dir = mkdtempSync(join(tmpdir(), "harbormq-e2e-"));
  const cert = join(dir, "cert.pem");
  const key = join(dir, "key.pem");
  execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", key, "-out", cert], { stdio: "ignore" });
  return { cert, key };
}

const pems = selfSigned();
let broker: HarborBroker;
const urls: Record<string, string> = {};

beforeAll(async () => {
  broker = createBroker({
    transports: [
      tcpTransport({ host: "127.0.0.1", port: 0 }),
      tlsTransport({ host: "127.0.0.1", port: 0, cert: pems.cert, key: pems.key }),
      wsTransport({ host: "127.0.0.1", port: 0 }),
    ],
  });
  await broker.listen();
  for (const a of broker.addresses()) {
    urls[a.transport] =
      a.transport === "tcp" ? `mqtt://127.0.0.1:${a.port}` : a.transport === "tls" ? `mqtts://127.0.0.1:${a.port}` : `ws://127.0.0.1:${a.port}/mqtt`;
  }
});
afterAll(async () => {
  await broker.close();
});

const clientOptions = (name: string, version: 4 | 5, id: string): mqtt.IClientOptions => ({
  clientId: id,
  protocolVersion: version,
  reconnectPeriod: 0,
  ...(name === "tls" ? { ca: readFileSync(pems.cert), servername: "localhost" } : {}),
});

for (const transport of ["tcp", "tls", "ws"] as const) {
  for (const version of [4, 5] as const) {
    describe(`${transport}, MQTT ${version === 4 ? "3.1.1" : "5.0"}`, () => {
      it("connects, subscribes, publishes QoS 0/1/2 and receives each message once", async () => {
        const tag = `${transport}-${version}`;
        const sub = await mqtt.connectAsync(urls[transport]!, clientOptions(transport, version, `sub-${tag}`));
        const pub = await mqtt.connectAsync(urls[transport]!, clientOptions(transport, version, `pub-${tag}`));
        const received: { topic: string; payload: string; qos: number }[] = [];
        sub.on("message", (topic, payload, packet) => received.push({ topic, payload: payload.toString(), qos: packet.qos }));
        const granted = await sub.subscribeAsync(`e2e/${tag}/+`, { qos: 2 });
        expect(granted[0]?.qos).toBe(2);
        await pub.publishAsync(`e2e/${tag}/q0`, "zero", { qos: 0 });
        await pub.publishAsync(`e2e/${tag}/q1`, "one", { qos: 1 });
        await pub.publishAsync(`e2e/${tag}/q2`, "two", { qos: 2 });
        const big = "x".repeat(300_000);
        await pub.publishAsync(`e2e/${tag}/big`, big, { qos: 1 });
        await expect.poll(() => received.length).toBe(4);
        expect(received.slice(0, 3)).toEqual([
          { topic: `e2e/${tag}/q0`, payload: "zero", qos: 0 },
          { topic: `e2e/${tag}/q1`, payload: "one", qos: 1 },
          { topic: `e2e/${tag}/q2`, payload: "two", qos: 2 },
        ]);
        expect(received[3]?.payload.length).toBe(big.length);
        await Promise.all([sub.endAsync(), pub.endAsync()]);
      });
    });
  }
}

describe("retained and persistent sessions over TCP", () => {
  it("delivers a retained message to a late subscriber and queued QoS 1 after reconnect", async () => {
    const url = urls.tcp!;
    const pub = await mqtt.connectAsync(url, { clientId: "r-pub", reconnectPeriod: 0 });
    await pub.publishAsync("e2e/retained", "kept", { qos: 1, retain: true });
    const late = await mqtt.connectAsync(url, { clientId: "r-late", reconnectPeriod: 0 });
    const got: string[] = [];
    late.on("message", (_t, p) => got.push(p.toString()));
    await late.subscribeAsync("e2e/retained", { qos: 1 });
    await expect.poll(() => got).toEqual(["kept"]);
    await late.endAsync();

    const p1 = await mqtt.connectAsync(url, { clientId: "r-persist", clean: false, reconnectPeriod: 0 });
    await p1.subscribeAsync("e2e/offline", { qos: 1 });
    await p1.endAsync();
    await pub.publishAsync("e2e/offline", "while away", { qos: 1 });
    const p2 = mqtt.connect(url, { clientId: "r-persist", clean: false, reconnectPeriod: 0 });
    const offline: string[] = [];
    p2.on("message", (_t, p) => offline.push(p.toString()));
    await expect.poll(() => offline).toEqual(["while away"]);
    await Promise.all([p2.endAsync(), pub.endAsync()]);
  });
});

describe("createBroker().listen()", () => {
  it("fails when a port is taken and releases the transports it had started", async () => {
    const taken = broker.addresses().find((a) => a.transport === "tcp")!.port;
    const other = wsTransport({ host: "127.0.0.1", port: 0 });
    const clash = createBroker({ transports: [other, tcpTransport({ host: "127.0.0.1", port: taken })] });
    await expect(clash.listen()).rejects.toThrow(/EADDRINUSE/);
    expect(clash.addresses().filter((a) => a.transport === "ws")).toEqual([]);
    await clash.close();
  });
});

describe("a TCP subscriber that stops reading", () => {
  it("costs bounded driver memory while an mqtt.js subscriber gets every message", async () => {
    const port = broker.addresses().find((a) => a.transport === "tcp")!.port;
    // A raw client: CONNECT + SUBSCRIBE, then it never reads again.
    const stalled = net.connect(port, "127.0.0.1");
    await new Promise((resolve) => stalled.once("connect", resolve));
    stalled.write(encode({ type: "connect", protocolName: "MQTT", protocolVersion: 4, clean: true, keepAlive: 0,
      clientId: "stalled", will: undefined, username: undefined, password: undefined, properties: {} }, 4));
    stalled.write(encode({ type: "subscribe", packetId: 1, properties: {},
      subscriptions: [{ topicFilter: "flood/#", qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0 }] }, 4));
    // Read until the SUBACK: from then on the broker routes flood/# to it. Then stop reading.
    await new Promise<void>((resolve, reject) => {
      const decoder = new Decoder({ version: 4 });
      const onData = (chunk: Buffer) => {
        decoder.push(chunk);
        for (let p = decoder.next(); p !== undefined; p = decoder.next()) {
          if (p.type === "error") return reject(new Error(p.message));
          else if (p.type === "suback") {
            stalled.pause();
            stalled.off("data", onData);
            resolve();
          }
        }
      };
      stalled.on("data", onData);
    });
    const healthy = await mqtt.connectAsync(urls.tcp!, { clientId: "healthy", reconnectPeriod: 0 });
    let received = 0;
    healthy.on("message", () => received++);
    await healthy.subscribeAsync("flood/#", { qos: 0 });
    const pub = await mqtt.connectAsync(urls.tcp!, { clientId: "flooder", reconnectPeriod: 0 });
    const payload = Buffer.alloc(16 * 1024);
    const total = 1500; // 24 MiB, far beyond socket buffers
    let peak = 0;
    for (let i = 0; i < total; i++) {
      pub.publish(`flood/${i}`, payload, { qos: (i % 2) as 0 | 1 });
      if (i % 50 === 49) {
        await new Promise((resolve) => setImmediate(resolve));
        peak = Math.max(peak, broker.stats.bufferedBytes);
      }
    }
    await expect.poll(() => received, { timeout: 15_000 }).toBe(total);
    peak = Math.max(peak, broker.stats.bufferedBytes);
    // Budget (1 MiB) + the in-flight window of QoS 1 (20 x 16 KiB) + one turn of slack.
    expect(peak).toBeLessThan(4 * 1024 * 1024);
    expect(broker.sessionStats("stalled")!.queued).toBeLessThanOrEqual(broker.config.maxQueuedMessages);
    stalled.destroy();
    await Promise.all([healthy.endAsync(), pub.endAsync()]);
  });
});
