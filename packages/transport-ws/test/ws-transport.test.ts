import * as http from "node:http";
import { describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import type { Duplex, Transport } from "@harbormq/broker";
import { webSocketDuplex, wsTransport } from "@harbormq/transport-ws";
import { checkOrderedStream, Sink, transportConformance, until } from "../../broker/test/transport-conformance.js";

function open(url: string, protocols: string[] = ["mqtt"]): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols);
    ws.once("open", () => resolve(ws));
    ws.once("error", reject);
  });
}

async function connectWs(t: Transport): Promise<Duplex> {
  const { port } = t.address()!;
  const ws = await open(`ws://127.0.0.1:${port}/mqtt`);
  return webSocketDuplex(ws, "client", { socket: (ws as unknown as { _socket: import("node:net").Socket })._socket });
}

/** A WebSocket transport on an ephemeral loopback port. */
const local = (): Transport => wsTransport({ host: "127.0.0.1", port: 0 });

transportConformance("ws", local, connectWs);

for (const version of ["MQTT 3.1.1", "MQTT 5.0"]) describe(version, () => {
  it("[MQTT-6.0.0-4] selects the subprotocol mqtt, or mqttv3.1 for MQTT 3.1 clients", async () => {
    const t = local();
    await t.listen(() => {});
    const url = `ws://127.0.0.1:${t.address()!.port}/mqtt`;
    const a = await open(url, ["foo", "mqtt"]);
    expect(a.protocol).toBe("mqtt");
    const b = await open(url, ["mqttv3.1"]);
    expect(b.protocol).toBe("mqttv3.1");
    a.terminate();
    b.terminate();
    await t.close();
  });

  it("[MQTT-6.0.0-1] closes the connection on a text frame", async () => {
    const t = local();
    let server: Sink | undefined;
    await t.listen((d) => (server = new Sink(d)));
    const ws = await open(`ws://127.0.0.1:${t.address()!.port}/mqtt`);
    await until(() => server !== undefined);
    ws.send("hello");
    await until(() => server!.closes === 1, "close");
    expect(server!.bytes).toBe(0);
    await t.close();
  });

  it("[MQTT-6.0.0-2] delivers bytes of every binary frame in order, whatever the framing", async () => {
    const t = local();
    let server: Sink | undefined;
    await t.listen((d) => (server = new Sink(d)));
    const ws = await open(`ws://127.0.0.1:${t.address()!.port}/mqtt`);
    await until(() => server !== undefined);
    ws.send(Uint8Array.from([1, 2]));
    ws.send(Uint8Array.from([3]));
    ws.send(Uint8Array.from([4, 5, 6]));
    await until(() => server!.bytes === 6);
    expect(Array.from(server!.concat())).toEqual([1, 2, 3, 4, 5, 6]);
    ws.terminate();
    await t.close();
  });
});

describe("wsTransport", () => {
  it("attaches to an existing http.Server on a custom path and leaves other upgrades alone", async () => {
    const server = http.createServer((_req, res) => res.end("hello"));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const t = wsTransport({ server, path: "/broker" });
    let accepted = 0;
    await t.listen(() => accepted++);
    const port = (server.address() as import("node:net").AddressInfo).port;
    const ws = await open(`ws://127.0.0.1:${port}/broker`);
    await until(() => accepted === 1);
    expect(t.address()?.port).toBe(port);
    const body = await (await fetch(`http://127.0.0.1:${port}/`)).text();
    expect(body).toBe("hello");
    ws.terminate();
    await t.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it("rejects upgrades on other paths of its own server", async () => {
    const t = local();
    await t.listen(() => {});
    await expect(open(`ws://127.0.0.1:${t.address()!.port}/other`)).rejects.toThrow();
    await t.close();
  });
});

describe("MQTT 3.1.1", () => {
  it("[MQTT-7.1.1-1] carries an ordered, lossless two-way byte stream", () => checkOrderedStream(local, connectWs));
});
describe("MQTT 5.0", () => {
  it("[MQTT-4.2.0-1] carries an ordered, lossless two-way byte stream", () => checkOrderedStream(local, connectWs));
});

describe("MQTT 5.0", () => {
  it("[MQTT-6.0.0-2] the broker decodes packets split across frames and several packets in one frame", async () => {
    const { createBroker } = await import("@harbormq/broker");
    const { Decoder, encode } = await import("@harbormq/codec");
    const broker = createBroker({ transports: [local()] });
    await broker.listen();
    try {
      const ws = await open(`ws://127.0.0.1:${broker.addresses()[0]!.port}/mqtt`);
      const decoder = new Decoder({ version: 5 });
      const got: string[] = [];
      ws.on("message", (data: Buffer) => {
        decoder.push(new Uint8Array(data));
        for (let p = decoder.next(); p !== undefined; p = decoder.next()) got.push(p.type === "publish" ? `publish ${p.topic}` : p.type);
      });
      const connect = encode({
        type: "connect", protocolName: "MQTT", protocolVersion: 5, clean: true, keepAlive: 0, clientId: "frames",
        will: undefined, username: undefined, password: undefined, properties: {},
      }, 5);
      // CONNECT split over three frames, one of them a single byte.
      ws.send(connect.subarray(0, 1));
      ws.send(connect.subarray(1, 7));
      ws.send(connect.subarray(7));
      await until(() => got.includes("connack"), "connack");
      // SUBSCRIBE and two PUBLISHes in one frame, the second PUBLISH's tail in the next frame.
      const subscribe = encode({
        type: "subscribe", packetId: 1, properties: {},
        subscriptions: [{ topicFilter: "f/#", qos: 0, noLocal: false, retainAsPublished: false, retainHandling: 0 }],
      }, 5);
      const pub = (topic: string) => encode({
        type: "publish", topic, payload: new Uint8Array(10), qos: 0, retain: false, dup: false, packetId: undefined, properties: {},
      }, 5);
      const a = pub("f/a");
      const b = pub("f/b");
      const frame = new Uint8Array(subscribe.length + a.length + 4);
      frame.set(subscribe, 0);
      frame.set(a, subscribe.length);
      frame.set(b.subarray(0, 4), subscribe.length + a.length);
      ws.send(frame);
      ws.send(b.subarray(4));
      await until(() => got.filter((g) => g.startsWith("publish")).length === 2, "publishes");
      expect(got).toEqual(["connack", "suback", "publish f/a", "publish f/b"]);
      ws.close();
    } finally {
      await broker.close();
    }
  });
});
