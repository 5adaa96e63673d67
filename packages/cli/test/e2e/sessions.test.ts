// The persistent-session scenarios of issue 5 against the real `harbormq` process, with real
// clients mixed: mosquitto_sub / mosquitto_pub, Python paho-mqtt and mqtt.js. "Arrives in order"
// is checked without timing: a last QoS 1 marker is published after everything else, so once it
// has arrived every earlier message that was going to arrive has arrived.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mosquittoPub, mosquittoSub, mqttClient, paho, pk, rawClient, reference, startBroker } from "./harness.js";
import type { BrokerProcess, RawClient } from "./harness.js";

/** Reads PUBLISHes off a raw connection in wire order, acknowledging each as its QoS requires,
 *  until the one whose payload is `stop` has completed. Returns "payload qos dup" per message. */
async function receiveUntil(raw: RawClient, stop: string): Promise<string[]> {
  const got: string[] = [];
  let stopId: number | undefined;
  for (;;) {
    const p = await raw.next();
    if (p.type === "publish") {
      const payload = new TextDecoder().decode(p.payload);
      got.push(`${payload} ${p.qos} ${p.dup ? 1 : 0}`);
      if (p.qos === 1) raw.send(pk.ack("puback", p.packetId!));
      if (p.qos === 2) raw.send(pk.ack("pubrec", p.packetId!));
      if (payload === stop) {
        if (p.qos !== 2) return got;
        stopId = p.packetId;
      }
    } else if (p.type === "pubrel") {
      raw.send(pk.ack("pubcomp", p.packetId));
      if (p.packetId === stopId) return got;
    } else {
      throw new Error(`unexpected ${p.type}`);
    }
  }
}

/** paho-mqtt: connect (clean flag), optionally subscribe, print the CONNACK then every
 *  message as "topic payload qos retain", disconnect after the message whose payload is `stop`. */
const pahoListen = `
import sys
import paho.mqtt.client as mqtt
port, cid, clean, topic, qos, stop = int(sys.argv[1]), sys.argv[2], sys.argv[3] == "1", sys.argv[4], int(sys.argv[5]), sys.argv[6]
c = client(client_id=cid, clean_session=clean, protocol=mqtt.MQTTv311)
def on_connect(client, userdata, flags, rc):
    print("connack", flags.get("session present"), rc, flush=True)
    if topic != "-":
        client.subscribe(topic, qos)
    elif stop == "-":
        client.disconnect()
def on_subscribe(client, userdata, mid, granted):
    print("suback", *granted, flush=True)
    if stop == "-":
        client.disconnect()
def on_message(client, userdata, m):
    print(m.topic, m.payload.decode(), m.qos, int(m.retain), flush=True)
    if m.payload.decode() == stop:
        client.disconnect()
c.on_connect, c.on_subscribe, c.on_message = on_connect, on_subscribe, on_message
c.connect("127.0.0.1", port, 60)
c.loop_forever()
`;

function pahoSession(port: number, clientId: string, clean: boolean, topic: string | undefined, qos: number, stop: string | undefined) {
  return paho(pahoListen, [String(port), clientId, clean ? "1" : "0", topic ?? "-", String(qos), stop ?? "-"]);
}

describe("MQTT 3.1.1", () => {
  describe("persistent sessions (harbormq process, real clients)", () => {
    let broker: BrokerProcess;
    let q0Broker: BrokerProcess;
    let limitBroker: BrokerProcess;

    beforeAll(async () => {
      [broker, q0Broker, limitBroker] = await Promise.all([
        startBroker(),
        startBroker({ config: { queueQos0: true } }),
        startBroker({ config: { maxQueuedMessages: 100, overflowPolicy: "drop-new" } }),
      ]);
    });
    afterAll(async () => {
      const codes = await Promise.all([broker, q0Broker, limitBroker].map((b) => b?.stop()));
      if (reference) return;
      expect(codes).toEqual([0, 0, 0]);
      // Scenario 4's drops are counted in the broker's stats, logged when it stops.
      expect(limitBroker.lines.find((l) => l.event === "stopped")).toMatchObject({ droppedQueueFull: 50 });
    });

    async function offlineScenario(b: BrokerProcess, id: string): Promise<string[]> {
      // mosquitto_sub -c: a clean-session-0 subscription, then it goes offline (-E exits after SUBACK).
      await mosquittoSub(b.port, ["-c", "-i", id, "-q", "2", "-t", `${id}/#`, "-E"]);
      for (const [qos, payload] of [[1, "m1"], [0, "z1"], [2, "m2"], [0, "z2"], [2, "m3"], [1, "end"]] as const) {
        await mosquittoPub(b.port, ["-q", String(qos), "-t", `${id}/t`, "-m", payload]);
      }
      // Reconnect, clean session 0, without subscribing again; a raw client sees the wire order
      // (mqtt.js and paho hand a QoS 2 message over only at its PUBREL, out of wire order).
      const raw = await rawClient(b.port);
      raw.send(pk.connect(id, false));
      expect(await raw.next()).toMatchObject({ type: "connack", sessionPresent: true, reasonCode: 0 });
      const got = await receiveUntil(raw, "end");
      raw.send(pk.disconnect());
      await raw.closed();
      return got;
    }

    it("1. [MQTT-3.1.2-4] [MQTT-3.1.2-5] [MQTT-3.2.2-2] [MQTT-4.1.0-1] [MQTT-4.6.0-6] QoS 1 and 2 messages published while a clean-session-0 subscriber is offline arrive on reconnect, in order, without subscribing again; QoS 0 ones do not", async () => {
      const got = await offlineScenario(broker, "scn1");
      expect(got).toEqual(["m1 1 0", "m2 2 0", "m3 2 0", "end 1 0"]);
    });

    it("1b. [MQTT-3.1.2-5] with queueQos0 the QoS 0 messages are queued too, in order", async () => {
      const got = await offlineScenario(q0Broker, "scn1b");
      expect(got).toEqual(["m1 1 0", "z1 0 0", "m2 2 0", "z2 0 0", "m3 2 0", "end 1 0"]);
    });

    it("2. [MQTT-3.1.2-6] [MQTT-3.2.2-1] [MQTT-3.1.4-3] clean session 1 discards the old session; reconnecting with the other flag changes the session type", async () => {
      const url = broker.url;
      // A persistent session with a subscription.
      const a = await mqttClient(url, { clientId: "scn2", clean: false });
      expect(a.connack.sessionPresent).toBe(false);
      await a.mqtt.subscribeAsync("scn2/old", { qos: 1 });
      await a.end();
      await mosquittoPub(broker.port, ["-q", "1", "-t", "scn2/old", "-m", "queued-for-old"]);

      // Clean session 1: no session present, the old one (subscription and queue) is gone.
      const b = await mqttClient(url, { clientId: "scn2", clean: true });
      expect(b.connack.sessionPresent).toBe(false);
      await b.mqtt.subscribeAsync("scn2/clean", { qos: 1 });
      await b.end();

      // Back to clean session 0: nothing to resume (a clean session is never kept), so no
      // session present and neither the old nor the clean session's subscription delivers.
      const c = await mqttClient(url, { clientId: "scn2", clean: false });
      expect(c.connack.sessionPresent).toBe(false);
      await c.mqtt.subscribeAsync("scn2/marker", { qos: 1 });
      await mosquittoPub(broker.port, ["-q", "1", "-t", "scn2/old", "-m", "old"]);
      await mosquittoPub(broker.port, ["-q", "1", "-t", "scn2/clean", "-m", "clean"]);
      await mosquittoPub(broker.port, ["-q", "1", "-t", "scn2/marker", "-m", "marker"]);
      expect((await c.waitFor(1)).map((m) => m.payload)).toEqual(["marker"]);
      await c.end();

      // This session is persistent now: it is resumed with its subscription.
      await mosquittoPub(broker.port, ["-q", "1", "-t", "scn2/marker", "-m", "while-offline"]);
      const d = await mqttClient(url, { clientId: "scn2", clean: false });
      expect(d.connack.sessionPresent).toBe(true);
      expect((await d.waitFor(1)).map((m) => m.payload)).toEqual(["while-offline"]);
      expect(d.received).toHaveLength(1);
      await d.end();

      // And clean session 1 discards it again.
      const e = await mqttClient(url, { clientId: "scn2", clean: true });
      expect(e.connack.sessionPresent).toBe(false);
      await e.end();
      const f = await mqttClient(url, { clientId: "scn2", clean: false });
      expect(f.connack.sessionPresent).toBe(false);
      await f.end();
    });

    it("3. [MQTT-3.1.2-5] [MQTT-3.3.1-5] [MQTT-3.3.1-6] ten retained publishes to one topic while the subscriber is offline: all ten are delivered, a new subscriber gets only the last", async () => {
      const out0 = await pahoSession(broker.port, "scn3", false, "scn3/state", 1, undefined);
      expect(out0).toEqual(["connack 0 0", "suback 1"]);
      for (let i = 0; i < 10; i++) await mosquittoPub(broker.port, ["-r", "-q", "1", "-t", "scn3/state", "-m", `r${i}`]);
      const out = await pahoSession(broker.port, "scn3", false, undefined, 0, "r9");
      expect(out[0]).toBe("connack 1 0");
      expect(out.slice(1).map((l) => l.split(" ").slice(0, 3).join(" "))).toEqual(
        Array.from({ length: 10 }, (_, i) => `scn3/state r${i} 1`),
      );
      // A new subscriber sees the retained message: only the last one, with RETAIN set.
      const { stdout } = await mosquittoSub(broker.port, ["-t", "scn3/state", "-q", "1", "-C", "1", "-v", "-F", "%t %p %r"]);
      expect(stdout.trim()).toBe("scn3/state r9 1");
      await mosquittoPub(broker.port, ["-r", "-t", "scn3/state", "-n"]);
    });

    it("4. queue limit 100: 100 messages are delivered, the rest dropped, counted and logged", async () => {
      const sub = await mqttClient(limitBroker.url, { clientId: "scn4", clean: false });
      await sub.mqtt.subscribeAsync("scn4/t", { qos: 1 });
      await sub.end();
      const lines = Array.from({ length: 150 }, (_, i) => `m${i}`).join("\n") + "\n";
      await mosquittoPub(limitBroker.port, ["-q", "1", "-t", "scn4/t", "-l"], lines);

      const again = await mqttClient(limitBroker.url, { clientId: "scn4", clean: false });
      expect(again.connack.sessionPresent).toBe(true);
      await again.waitFor(100);
      // Everything queued has been sent once this marker, published after, arrives.
      await mosquittoPub(limitBroker.port, ["-q", "1", "-t", "scn4/t", "-m", "marker"]);
      const got = (await again.waitFor(101)).map((m) => m.payload);
      expect(got).toEqual([...Array.from({ length: 100 }, (_, i) => `m${i}`), "marker"]);
      await again.end();
      if (reference) return;
      // Each drop is logged (individually or, past a burst, in a summary line with a count).
      await limitBroker.waitForLine("drop lines adding up to 50", () => {
        const drops = limitBroker.lines.filter((l) => l.event === "message-dropped" && l["id"] === "scn4");
        return drops.reduce((n, l) => n + (typeof l["count"] === "number" ? l["count"] : 1), 0) === 50;
      });
      const first = limitBroker.lines.find((l) => l.event === "message-dropped");
      expect(first).toMatchObject({ level: "warn", id: "scn4", topic: "scn4/t", reason: "queue-full", policy: "drop-new" });
    });

    it("5. [MQTT-3.1.4-2] [MQTT-3.2.2-2] takeover: a second connection with the same client id closes the first and resumes its session", async () => {
      const first = await mqttClient(broker.url, { clientId: "scn5", clean: false });
      await first.mqtt.subscribeAsync("scn5/t", { qos: 1 });
      const second = await mqttClient(broker.url, { clientId: "scn5", clean: false });
      await first.closed();
      expect(second.connack.sessionPresent).toBe(true);
      // The session, with its subscription, now belongs to the second connection.
      await mosquittoPub(broker.port, ["-q", "1", "-t", "scn5/t", "-m", "to-second"]);
      expect((await second.waitFor(1)).map((m) => m.payload)).toEqual(["to-second"]);
      expect(first.received).toEqual([]);
      await second.end();
      if (reference) return;
      const taken = await broker.waitForLine("the first connection's disconnect", (l) => l.event === "client-disconnected" && l["id"] === "scn5");
      expect(String(taken["reason"])).toMatch(/taken over|0x8e/);
    });
  });
});
