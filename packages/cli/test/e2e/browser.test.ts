// mqtt.js in headless Chromium (the system's /usr/bin/chromium driven by playwright-core) talks
// to the real `harbormq` process over WebSocket: it subscribes and receives, and publishes to a
// subscriber outside the browser. The page and mqtt.js's browser bundle come from a tiny HTTP
// server on loopback.
import { existsSync, readFileSync } from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { chromium } from "playwright-core";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mosquittoPub, mqttClient, reference, root, startBroker } from "./harness.js";
import type { BrokerProcess } from "./harness.js";

// The page's global object, named in the functions that tab.evaluate and tab.waitForFunction run
// inside the browser (the tests type-check without the DOM lib; each use casts it to its shape).
declare const window: unknown;

const chromiumPath = "/usr/bin/chromium";
const bundle = join(root, "node_modules/mqtt/dist/mqtt.min.js");

const page = `<!doctype html>
<meta charset="utf-8">
<title>harbormq browser test</title>
<script src="/mqtt.min.js"></script>
<script>
  window.got = [];
  window.ready = false;
  window.failure = undefined;
  const params = new URLSearchParams(location.search);
  const client = mqtt.connect(params.get("broker"), { clientId: "browser-1", protocolVersion: 4, reconnectPeriod: 0 });
  client.on("error", (e) => (window.failure = String(e)));
  client.on("message", (topic, payload, packet) => window.got.push({ topic, payload: payload.toString(), qos: packet.qos }));
  client.on("connect", () => {
    client.subscribe("browser/in", { qos: 1 }, (err) => {
      if (err) window.failure = String(err);
      else window.ready = true;
    });
  });
  window.publishFromPage = (topic, text) => new Promise((resolve, reject) =>
    client.publish(topic, text, { qos: 1 }, (err) => (err ? reject(String(err)) : resolve(true))));
</script>`;

describe("MQTT 3.1.1", () => {
  describe.skipIf(!existsSync(chromiumPath))("mqtt.js in headless Chromium over WebSocket (harbormq process)", () => {
    let broker: BrokerProcess;
    let server: http.Server;
    let browser: Browser;
    let pageUrl: string;

    beforeAll(async () => {
      server = http.createServer((req, res) => {
        if (req.url?.startsWith("/mqtt.min.js")) {
          res.writeHead(200, { "content-type": "text/javascript" }).end(readFileSync(bundle));
        } else if (req.url === "/" || req.url?.startsWith("/?")) {
          res.writeHead(200, { "content-type": "text/html" }).end(page);
        } else {
          res.writeHead(404).end();
        }
      });
      const [b] = await Promise.all([
        startBroker({ ws: true }),
        new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve)),
      ]);
      broker = b;
      const { port } = server.address() as AddressInfo;
      pageUrl = `http://127.0.0.1:${port}/?broker=${encodeURIComponent(`ws://127.0.0.1:${broker.wsPort}/mqtt`)}`;
      browser = await chromium.launch({
        executablePath: chromiumPath,
        args: [
          "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
          "--disable-component-update", "--disable-sync", "--no-first-run",
        ],
      });
    });

    afterAll(async () => {
      await browser?.close();
      server?.close();
      const code = await broker?.stop();
      if (!reference) expect(code).toBe(0);
    });

    it("[MQTT-6.0.0-4] connects, subscribes, receives and publishes", async () => {
      const tab = await browser.newPage();
      await tab.goto(pageUrl);
      await tab.waitForFunction(() => (window as unknown as { ready: boolean; failure?: string }).ready || (window as unknown as { failure?: string }).failure !== undefined, undefined, { timeout: 10_000 });
      expect(await tab.evaluate(() => (window as unknown as { failure?: string }).failure)).toBeUndefined();

      await mosquittoPub(broker.port, ["-q", "1", "-t", "browser/in", "-m", "hello browser"]);
      await tab.waitForFunction(() => (window as unknown as { got: unknown[] }).got.length >= 1, undefined, { timeout: 10_000 });
      expect(await tab.evaluate(() => (window as unknown as { got: unknown[] }).got)).toEqual([
        { topic: "browser/in", payload: "hello browser", qos: 1 },
      ]);

      const outside = await mqttClient(broker.url);
      await outside.mqtt.subscribeAsync("browser/out", { qos: 1 });
      await tab.evaluate(() => (window as unknown as { publishFromPage(t: string, p: string): Promise<boolean> }).publishFromPage("browser/out", "hello node"));
      expect((await outside.waitFor(1))[0]).toMatchObject({ topic: "browser/out", payload: "hello node" });
      await outside.end();
      await tab.close();
      if (reference) return;
      const connected = await broker.waitForLine("the browser's connect", (l) => l.event === "client-connected" && l["id"] === "browser-1");
      expect(String(connected["remote"])).toMatch(/^ws:\/\//);
    });
  });
});
