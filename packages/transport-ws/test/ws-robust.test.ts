// Regression tests for WebSocket findings of a robustness review: a request target that `new URL`
// cannot parse, frames after a text frame, and listen()/close() of the transport's own server.
import * as net from "node:net";
import { describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { encode } from "@harbormq/codec";
import { createBroker, type Duplex } from "@harbormq/broker";
import { memoryTransport } from "@harbormq/transport-memory";
import { wsTransport } from "@harbormq/transport-ws";
import { connect, publish, RawClient, subscribe } from "../../broker/test/fixtures/raw-client.js";
import { until } from "../../broker/test/transport-conformance.js";

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

const upgradeRequest = (target: string): string =>
  `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n";

/** A client frame (masked, as RFC 6455 requires of clients). */
const frame = (opcode: number, payload: Uint8Array): Buffer => {
  const mask = [1, 2, 3, 4];
  const head =
    payload.length < 126
      ? [0x80 | opcode, 0x80 | payload.length]
      : [0x80 | opcode, 0x80 | 126, payload.length >> 8, payload.length & 0xff];
  return Buffer.from([...head, ...mask, ...Array.from(payload, (b, i) => b ^ mask[i % 4]!)]);
};

/** A broker on a memory and a WebSocket transport, with a memory client subscribed to `filter`. */
async function brokerWithSubscriber(filter: string) {
  const memory = memoryTransport();
  const ws = wsTransport({ host: "127.0.0.1", port: 0 });
  const broker = createBroker({ transports: [memory, ws] });
  await broker.listen();
  const sub = new RawClient(memory.connect());
  sub.send(connect("sub"));
  await until(() => sub.count("connack") === 1, "connack");
  sub.send(subscribe(filter, 0));
  await until(() => sub.count("suback") === 1, "suback");
  return { broker, ws, sub, port: ws.address()!.port };
}

describe("MQTT 3.1.1", () => {
  // ws.close(1003) only starts the closing handshake: binary frames the peer sent after its text
  // frame were still delivered to the driver until the peer answered (up to ws's 30 s).
  it("[MQTT-6.0.0-1] nothing sent after a text frame is processed (no PUBLISH is routed)", async () => {
    const { broker, sub, port } = await brokerWithSubscriber("after-text/#");
    const client = await new Promise<WebSocket>((resolve, reject) => {
      const c = new WebSocket(`ws://127.0.0.1:${port}/mqtt`, ["mqtt"]);
      c.once("open", () => resolve(c));
      c.once("error", reject);
    });
    client.on("error", () => undefined);
    client.send("not mqtt"); // text frame: the server must close
    client.send(encode(connect("hostile"), 4));
    client.send(encode(publish("after-text/x", "should not be routed"), 4));
    await sleep(300);
    client.terminate();
    expect(sub.count("publish")).toBe(0);
    await broker.close();
  });

  it("[MQTT-6.0.0-1] a peer that ignores the close frame after its text frame cannot publish, and is cut", async () => {
    const { broker, sub, port } = await brokerWithSubscriber("late/#");
    // A raw WebSocket client that never answers the server's close frame.
    const socket = net.connect(port, "127.0.0.1");
    socket.on("error", () => undefined);
    let cut = false;
    socket.on("close", () => (cut = true));
    await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
    socket.write(upgradeRequest("/mqtt"));
    let response = Buffer.alloc(0);
    socket.on("data", (d: Buffer) => void (response = Buffer.concat([response, d])));
    await until(() => response.includes("\r\n\r\n"), "101");
    expect(response.toString("latin1").startsWith("HTTP/1.1 101")).toBe(true);
    const head = response.indexOf("\r\n\r\n") + 4;
    // The text frame and MQTT packets behind it in the same TCP segment.
    socket.write(
      Buffer.concat([
        frame(0x1, new TextEncoder().encode("not mqtt")),
        frame(0x2, encode(connect("late"), 4)),
        frame(0x2, encode(publish("late/x", "routed after the text frame"), 4)),
      ]),
    );
    for (let i = 0; i < 100 && !cut; i++) await sleep(10);
    // The server sent its close frame (1003) and then cut the connection without waiting for ours.
    expect(Array.from(response.subarray(head, head + 4))).toEqual([0x88, 0x14, 0x03, 0xeb]);
    expect(cut).toBe(true);
    expect(sub.count("publish")).toBe(0);
    socket.destroy();
    await broker.close();
  });
});

describe("wsTransport robustness", () => {
  // `new URL(req.url, "http://localhost")` throws on targets Node's HTTP parser accepts; the
  // throw inside the 'upgrade' listener was an uncaught exception: one request crashed the broker.
  it("an upgrade request with an unparsable URL gets 400, not an uncaught exception", async () => {
    const errors: unknown[] = [];
    const onError = (error: unknown): void => void errors.push(error);
    process.on("uncaughtException", onError);
    const ws = wsTransport({ host: "127.0.0.1", port: 0 });
    const broker = createBroker({ transports: [ws] });
    await broker.listen();
    const answers: { response: string; closed: boolean }[] = [];
    try {
      for (const target of ["//[", "http://[::1/mqtt", "http://a:99999/mqtt"]) {
        const socket = net.connect(ws.address()!.port, "127.0.0.1");
        socket.on("error", () => undefined);
        let response = "";
        let closed = false;
        socket.on("data", (d: Buffer) => void (response += d.toString("latin1")));
        socket.on("close", () => (closed = true));
        await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
        socket.write(upgradeRequest(target));
        for (let i = 0; i < 100 && !closed; i++) await sleep(5);
        answers.push({ response: response.split("\r\n")[0]!, closed });
        socket.destroy();
      }
    } finally {
      process.off("uncaughtException", onError);
      await broker.close();
    }
    expect(errors.map(String)).toEqual([]);
    expect(answers).toEqual(Array(3).fill({ response: "HTTP/1.1 400 Bad Request", closed: true }));
  });

  it("a listen() retried after EADDRINUSE hands WebSockets only to the new accept", async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
    const port = (blocker.address() as net.AddressInfo).port;
    const t = wsTransport({ host: "127.0.0.1", port });
    const stale: Duplex[] = [];
    const fresh: Duplex[] = [];
    await expect(t.listen((d) => stale.push(d))).rejects.toMatchObject({ code: "EADDRINUSE" });
    await new Promise<void>((resolve) => blocker.close(() => resolve()));
    await t.listen((d) => fresh.push(d));
    try {
      const client = await new Promise<WebSocket>((resolve, reject) => {
        const c = new WebSocket(`ws://127.0.0.1:${port}/mqtt`, ["mqtt"]);
        c.once("open", () => resolve(c));
        c.once("error", reject);
      });
      await until(() => fresh.length === 1, "accept");
      await sleep(20);
      expect(stale).toHaveLength(0);
      client.terminate();
    } finally {
      await t.close();
    }
  });

  // Before, close() during listen() closed the HTTP server before it was bound: it never bound,
  // and listen() never settled.
  it("close() during listen() leaves the port unbound, and listen() settles", async () => {
    const t = wsTransport({ host: "127.0.0.1", port: 0 });
    const listening = t.listen(() => {});
    await t.close();
    const settled = await Promise.race([listening.then(() => true, () => true), sleep(1000).then(() => false)]);
    expect(settled).toBe(true);
    expect(t.address()).toBeUndefined();
    await t.listen(() => {});
    expect(t.address()).toBeDefined();
    await t.close();
    expect(t.address()).toBeUndefined();
  });
});
