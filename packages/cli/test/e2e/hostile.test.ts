// Hostile input on single connections of the real `harbormq` process: each one ends only that
// connection, with the reason the log names, while a well-behaved subscriber on the same broker
// keeps receiving an uninterrupted, ordered stream throughout.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { mqttClient, pk, rawClient, reference, startBroker } from "./harness.js";
import type { BrokerProcess, Client, LogLine, RawClient } from "./harness.js";

describe("MQTT 3.1.1", () => {
  describe("hostile input (harbormq process)", () => {
    let broker: BrokerProcess;
    let subscriber: Client;
    let publisher: Client;
    let published = 0;
    let pumping = true;
    let pump: Promise<void>;

    beforeAll(async () => {
      // A small packet limit makes "too large" visible at the header; a short connect timeout
      // ends the trickling CONNECT quickly.
      broker = await startBroker({ ws: true, config: { maxPacketSize: 1024 * 1024, connectTimeout: 1500 } });
      subscriber = await mqttClient(broker.url, { clientId: "steady-sub" });
      await subscriber.mqtt.subscribeAsync("steady/t", { qos: 1 });
      publisher = await mqttClient(broker.url, { clientId: "steady-pub" });
      // The well-behaved pair: one QoS 1 message after another, for the whole file.
      pump = (async () => {
        while (pumping) {
          await publisher.mqtt.publishAsync("steady/t", String(published), { qos: 1 });
          published++;
          // A steady trickle, not a flood: the point is continuity, not load.
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
      })();
    });

    afterAll(async () => {
      pumping = false;
      await pump;
      const got = await subscriber.waitFor(published);
      // Every message, in order, none lost while the hostile connections came and went.
      expect(got.map((m) => m.payload)).toEqual(Array.from({ length: published }, (_, i) => String(i)));
      expect(published).toBeGreaterThan(0);
      await Promise.all([subscriber.end(), publisher.end()]);
      const code = await broker?.stop();
      if (!reference) expect(code).toBe(0);
    });

    /** Hostile connections log a disconnect (or a protocol error) with this reason code. */
    function closedWith(code: number): Promise<LogLine> {
      const hex = `0x${code.toString(16).padStart(2, "0")}`;
      return broker.waitForLine(`a close with reason ${hex}`, (l) =>
        (l.event === "client-disconnected" || l.event === "protocol-error") && String(l["reason"]).includes(hex),
      );
    }

    async function stillReceiving(): Promise<void> {
      const have = subscriber.received.length;
      await subscriber.waitFor(have + 5);
      expect(subscriber.mqtt.connected).toBe(true);
    }

    it("[MQTT-4.8.0-1] garbage bytes: the connection is closed as malformed", async () => {
      const raw: RawClient = await rawClient(broker.port);
      raw.sendBytes(new Uint8Array([0x00, 0xff, 0xff, 0xff, 0xff, 0x7f, 0xde, 0xad, 0xbe, 0xef]));
      await raw.closed();
      expect(raw.received).toEqual([]);
      if (!reference) await closedWith(0x81);
      await stillReceiving();
    });

    it("a declared 200 MB packet is refused at its header as too large, without waiting for the body", async () => {
      const raw = await rawClient(broker.port);
      raw.send(pk.connect("hostile-big", true));
      expect(await raw.next()).toMatchObject({ type: "connack", reasonCode: 0 });
      // PUBLISH QoS 0 with remaining length 200 000 000 (varint), then a few bytes of body.
      const length = 200_000_000;
      const varint: number[] = [];
      for (let x = length; ; ) {
        const byte = x % 128;
        x = Math.floor(x / 128);
        varint.push(x > 0 ? byte | 0x80 : byte);
        if (x === 0) break;
      }
      raw.sendBytes(new Uint8Array([0x30, ...varint, 0x00, 0x01, 0x61]));
      await raw.closed();
      if (!reference) await closedWith(0x95);
      await stillReceiving();
    });

    it("a CONNECT trickling in one byte per second is cut off by connectTimeout", async () => {
      const raw = await rawClient(broker.port);
      const { encode } = await import("@harbormq/codec");
      const bytes = encode(pk.connect("hostile-slow", true), 4);
      let sent = 0;
      const timer = setInterval(() => {
        if (sent < bytes.length && !raw.isClosed()) raw.sendBytes(bytes.subarray(sent, ++sent));
      }, 1000);
      try {
        await raw.closed(10_000);
      } finally {
        clearInterval(timer);
      }
      // Closed long before the CONNECT was complete, and never answered.
      expect(sent).toBeLessThan(bytes.length);
      expect(raw.received).toEqual([]);
      if (reference) return;
      const line = await closedWith(0x8d);
      expect(String(line["detail"])).toMatch(/CONNECT/);
      await stillReceiving();
    });

    it("[MQTT-3.1.0-1] a PUBLISH before CONNECT closes the connection as a protocol error", async () => {
      const raw = await rawClient(broker.port);
      raw.send(pk.publish("steady/t", "injected", 0));
      await raw.closed();
      expect(raw.received).toEqual([]);
      if (!reference) await closedWith(0x82);
      // The injected message never reached the subscriber.
      await stillReceiving();
      expect(subscriber.received.some((m) => m.payload === "injected")).toBe(false);
    });

    it("[MQTT-6.0.0-1] a text WebSocket frame closes that WebSocket", async () => {
      const ws = new WebSocket(`ws://127.0.0.1:${broker.wsPort}/mqtt`, "mqtt");
      await new Promise((resolve, reject) => {
        ws.once("open", resolve);
        ws.once("error", reject);
      });
      const closed = new Promise<number>((resolve) => ws.once("close", (code) => resolve(code)));
      ws.send("CONNECT, but as text");
      expect(await closed).toBe(1003); // unsupported data
      await stillReceiving();
    });

    it("[MQTT-3.1.0-2] a second CONNECT on a connection closes it", async () => {
      const raw = await rawClient(broker.port);
      raw.send(pk.connect("hostile-twice", true));
      expect(await raw.next()).toMatchObject({ type: "connack", reasonCode: 0 });
      raw.send(pk.connect("hostile-twice", true));
      await raw.closed();
      await stillReceiving();
    });
  });
});
