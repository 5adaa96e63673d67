// Real clients against the real `harbormq` process over every listener: mqtt.js over TCP, TLS
// (a self-signed certificate made with openssl at test time) and WebSocket; mosquitto_pub /
// mosquitto_sub (MQTT 3.1, 3.1.1, 5.0, and TLS); Python paho-mqtt.
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { exec, mosquittoPub, mqttClient, paho, pahoPrelude, reference, root, selfSignedCert, startBroker, tempDir } from "./harness.js";
import type { BrokerProcess } from "./harness.js";

const pahoPublish = `
import sys
import paho.mqtt.client as mqtt
import paho.mqtt.publish as publish
port, topic, payload, qos = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
publish.single(topic, payload, qos=qos, hostname="127.0.0.1", port=port, protocol=mqtt.MQTTv311)
print("published", flush=True)
`;

const pahoSubscribe = `
import sys
import paho.mqtt.client as mqtt
port, topic, count = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
got = []
def on_connect(c, u, flags, rc):
    c.subscribe(topic, 1)
def on_subscribe(c, u, mid, granted):
    print("subscribed", flush=True)
def on_message(c, u, m):
    print(m.topic, m.payload.decode(), flush=True)
    got.append(m)
    if len(got) >= count:
        c.disconnect()
c = client(protocol=mqtt.MQTTv311)
c.on_connect, c.on_subscribe, c.on_message = on_connect, on_subscribe, on_message
c.connect("127.0.0.1", port, 30)
c.loop_forever()
`;

/** Starts a command and resolves once `ready` appears on its stdout; `done` gives all output. */
function startCommand(file: string, args: string[], ready: string) {
  // stdbuf: mosquitto_sub's debug lines ("received SUBACK") are block-buffered into a pipe.
  const child = spawn("stdbuf", ["-oL", file, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stderr.on("data", (d: Buffer) => (err += d.toString()));
  const done = new Promise<string>((resolve, reject) => {
    child.on("exit", (code) => (code === 0 ? resolve(out) : reject(new Error(`${file} exited ${code}: ${err}`))));
  });
  const started = new Promise<void>((resolve, reject) => {
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
      if (out.includes(ready)) resolve();
    });
    child.on("exit", () => reject(new Error(`${file} exited before "${ready}": ${err}`)));
  });
  return { child, started, done };
}

describe("MQTT 3.1.1", () => {
  describe("real clients over TCP, TLS and WebSocket (harbormq process)", () => {
    let broker: BrokerProcess;
    let certs: { cert: string; key: string };
    const dir = tempDir();

    beforeAll(async () => {
      certs = await selfSignedCert(dir.path);
      broker = await startBroker({ ws: true, tls: certs });
    });
    afterAll(async () => {
      const code = await broker?.stop();
      dir.remove();
      if (!reference) expect(code).toBe(0);
    });

    it("README check: mosquitto_sub -t 'test/#' -v receives mosquitto_pub -t test/hello -m world", async () => {
      const readme = readFileSync(join(root, "README.md"), "utf8");
      expect(readme).toContain("npm ci && npm start");
      expect(readme).toContain("mosquitto_sub -t 'test/#' -v &");
      expect(readme).toContain("mosquitto_pub -t test/hello -m world");
      const sub = startCommand("mosquitto_sub", ["-p", String(broker.port), "-t", "test/#", "-v", "-C", "1", "-d"], "SUBACK");
      await sub.started;
      await mosquittoPub(broker.port, ["-t", "test/hello", "-m", "world"]);
      expect(await sub.done).toContain("test/hello world");
    });

    it.each([
      ["mqttv31", "3.1"],
      ["mqttv311", "3.1.1"],
      ["mqttv5", "5.0"],
    ])("mosquitto_pub / mosquitto_sub speak MQTT %s", async (v, version) => {
      const topic = `mosq/${v}`;
      const sub = startCommand("mosquitto_sub", ["-h", "127.0.0.1", "-p", String(broker.port), "-V", v, "-q", "1", "-t", topic, "-C", "3", "-F", "%t %p %q", "-d"], "SUBACK");
      await sub.started;
      for (const qos of [0, 1, 2]) await mosquittoPub(broker.port, ["-V", v, "-q", String(qos), "-t", topic, "-m", `q${qos}`]);
      const lines = (await sub.done).split("\n").filter((l) => l.startsWith(topic));
      // Delivered at min(published, subscribed) QoS.
      expect(lines).toEqual([`${topic} q0 0`, `${topic} q1 1`, `${topic} q2 1`]);
      if (reference) return;
      const connected = broker.lines.filter((l) => l.event === "client-connected" && l["version"] === version);
      expect(connected.length).toBeGreaterThanOrEqual(4);
    });

    it("mosquitto_pub / mosquitto_sub over TLS verify the broker's certificate", async () => {
      const port = String(broker.tlsPort);
      const sub = startCommand("mosquitto_sub", ["-h", "localhost", "-p", port, "--cafile", certs.cert, "-t", "tls/t", "-C", "1", "-d"], "SUBACK");
      await sub.started;
      await exec("mosquitto_pub", ["-h", "localhost", "-p", port, "--cafile", certs.cert, "-t", "tls/t", "-m", "secret"]);
      expect(await sub.done).toContain("secret");
    });

    it("paho-mqtt publishes to mosquitto_sub and receives from mosquitto_pub", async () => {
      const sub = startCommand("mosquitto_sub", ["-h", "127.0.0.1", "-p", String(broker.port), "-t", "paho/out", "-C", "1", "-v", "-d"], "SUBACK");
      await sub.started;
      expect(await paho(pahoPublish, [String(broker.port), "paho/out", "from-paho", "1"])).toEqual(["published"]);
      expect(await sub.done).toContain("paho/out from-paho");

      const psub = startCommand("/usr/bin/python3", ["-c", pahoPrelude + pahoSubscribe, String(broker.port), "paho/in", "2"], "subscribed");
      await psub.started;
      await mosquittoPub(broker.port, ["-q", "1", "-t", "paho/in", "-m", "one"]);
      await mosquittoPub(broker.port, ["-q", "2", "-t", "paho/in", "-m", "two"]);
      expect((await psub.done).trim().split("\n").filter((l) => l.startsWith("paho/in"))).toEqual(["paho/in one", "paho/in two"]);
    });

    it("mqtt.js over TCP (MQTT 3.1.1 and 5.0), QoS 0, 1 and 2", async () => {
      for (const protocolVersion of [4, 5] as const) {
        const sub = await mqttClient(broker.url, { protocolVersion });
        const pub = await mqttClient(broker.url, { protocolVersion });
        const topic = `js/tcp/${protocolVersion}`;
        await sub.mqtt.subscribeAsync(topic, { qos: 2 });
        for (const qos of [0, 1, 2] as const) await pub.mqtt.publishAsync(topic, `q${qos}`, { qos });
        const got = await sub.waitFor(3);
        expect(got.map((m) => `${m.payload} ${m.qos}`).sort()).toEqual(["q0 0", "q1 1", "q2 2"]);
        await Promise.all([sub.end(), pub.end()]);
      }
    });

    it("mqtt.js over TLS, checking the certificate against the self-signed CA", async () => {
      const url = `mqtts://localhost:${broker.tlsPort}`;
      const sub = await mqttClient(url, { ca: readFileSync(certs.cert), rejectUnauthorized: true });
      await sub.mqtt.subscribeAsync("js/tls", { qos: 1 });
      // A TCP publisher reaches a TLS subscriber: one broker, many listeners.
      await mosquittoPub(broker.port, ["-q", "1", "-t", "js/tls", "-m", "over-tls"]);
      expect((await sub.waitFor(1))[0]).toMatchObject({ topic: "js/tls", payload: "over-tls", qos: 1 });
      await sub.end();
      // An untrusted certificate is refused by the client: the listener really is TLS.
      await expect(mqttClient(url, { rejectUnauthorized: true })).rejects.toThrow();
    });

    it("[MQTT-6.0.0-2] [MQTT-6.0.0-4] mqtt.js over WebSocket (path /mqtt, subprotocol mqtt)", async () => {
      const url = `ws://127.0.0.1:${broker.wsPort}/mqtt`;
      const sub = await mqttClient(url, { protocolVersion: 4 });
      const pub = await mqttClient(url, { protocolVersion: 5 });
      await sub.mqtt.subscribeAsync("js/ws/#", { qos: 1 });
      const big = "x".repeat(200_000); // spans many WebSocket frames and TCP reads
      await pub.mqtt.publishAsync("js/ws/big", big, { qos: 1 });
      await pub.mqtt.publishAsync("js/ws/small", "small", { qos: 1 });
      const got = await sub.waitFor(2);
      expect(got.map((m) => [m.topic, m.payload.length])).toEqual([["js/ws/big", 200_000], ["js/ws/small", 5]]);
      await Promise.all([sub.end(), pub.end()]);
    });
  });
});
