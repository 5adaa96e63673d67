// The end-to-end harness checks what it measures: a broker that loses or reorders messages gets
// an error, never a figure; and the report keeps other sections and the hand-written analysis.
// Needs the codec built (npm test builds first); skipped otherwise.
import { existsSync } from "node:fs";
import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";

const built = existsSync(new URL("../../packages/codec/dist/index.js", import.meta.url));

type Fault = "none" | "drop" | "reorder";

/** A tiny forwarding broker (exact topic "bench/in/#" subscribers only) with an injected fault. */
async function faultyBroker(fault: Fault): Promise<{ port: number; close: () => Promise<void> }> {
  const { Decoder, encode } = await import("../../packages/codec/dist/index.js");
  const subs = new Set<net.Socket>();
  const sockets = new Set<net.Socket>();
  let seen = 0;
  let held: Uint8Array | undefined;
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => (sockets.delete(socket), subs.delete(socket)));
    socket.on("error", () => {});
    const decoder = new Decoder();
    socket.on("data", (chunk) => {
      decoder.push(chunk);
      for (let p = decoder.next(); p !== undefined; p = decoder.next()) {
        if (p.type === "connect") socket.write(encode({ type: "connack", sessionPresent: false, reasonCode: 0, properties: {} }, 4));
        else if (p.type === "subscribe") {
          subs.add(socket);
          socket.write(encode({ type: "suback", packetId: p.packetId, reasonCodes: [0], properties: {} }, 4));
        } else if (p.type === "publish") {
          const out = encode({ ...p, qos: 0, packetId: undefined, dup: false, retain: false }, 4);
          seen++;
          if (fault === "drop" && seen % 50 === 0) continue;
          if (fault === "reorder" && seen % 50 === 25 && held === undefined) {
            held = out; // delivered after the next one
            continue;
          }
          for (const s of subs) {
            s.write(out);
            if (held !== undefined && held !== out) {
              s.write(held);
              held = undefined;
            }
          }
        } else if (p.type === "disconnect") socket.end();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    port,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

describe.skipIf(!built)("end-to-end harness", () => {
  let close: (() => Promise<void>) | undefined;
  afterEach(async () => {
    const { Client } = await import("./client.mjs");
    Client.destroyAll();
    await close?.();
    close = undefined;
  });

  it("measures a broker that delivers everything in order", async () => {
    const { fanIn } = await import("./scenarios.mjs");
    const b = await faultyBroker("none");
    close = b.close;
    const r = await fanIn({ port: b.port }, { messages: 1600, qos: 0, publishers: 4, window: 16, idleMs: 2000 });
    expect(r.extra.messages).toBe(1600);
    expect(r.value).toBeGreaterThan(0);
  });

  it("measures with the publishers in worker threads too", async () => {
    const { fanIn } = await import("./scenarios.mjs");
    const b = await faultyBroker("none");
    close = b.close;
    const r = await fanIn({ port: b.port }, { messages: 1600, qos: 0, publishers: 4, window: 16, idleMs: 2000, threads: 2 });
    expect(r.extra.messages).toBe(1600);
    expect(r.extra).toHaveProperty("threads", 2);
  });

  it("gives a broker that loses messages an error, not a figure", async () => {
    const { fanIn, Incorrect } = await import("./scenarios.mjs");
    const b = await faultyBroker("drop");
    close = b.close;
    const run = fanIn({ port: b.port }, { messages: 1600, qos: 0, publishers: 4, window: 16, idleMs: 300 });
    await expect(run).rejects.toBeInstanceOf(Incorrect);
    await expect(run).rejects.toThrow(/stalled|received/);
  });

  it("gives a broker that reorders messages an error, not a figure", async () => {
    const { fanIn, Incorrect } = await import("./scenarios.mjs");
    const b = await faultyBroker("reorder");
    close = b.close;
    const run = fanIn({ port: b.port }, { messages: 1600, qos: 0, publishers: 4, window: 16, idleMs: 2000 });
    await expect(run).rejects.toBeInstanceOf(Incorrect);
    await expect(run).rejects.toThrow(/out of order/);
  });
});

describe.skipIf(!built)("windowed forwarder (ceiling of a server that honours an in-flight window)", () => {
  it("keeps at most 20 QoS 1 PUBLISHes unacknowledged per subscriber and sends the next, in order, per PUBACK", async () => {
    const { Decoder, encode } = await import("../../packages/codec/dist/index.js");
    const { startBroker } = await import("./brokers.mjs");
    const broker = await startBroker("forwarder-w20");
    const sockets: net.Socket[] = [];
    try {
      const open = async (id: string) => {
        const socket = net.connect({ port: broker.port, host: "127.0.0.1" });
        sockets.push(socket);
        const got: { type: string; packetId?: number; payload?: Uint8Array }[] = [];
        const decoder = new Decoder();
        socket.on("data", (chunk) => {
          decoder.push(chunk);
          for (let p = decoder.next(); p !== undefined; p = decoder.next()) got.push(p as (typeof got)[number]);
        });
        await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
        const send = (p: object) => socket.write(encode(p as never, 4));
        send({ type: "connect", protocolName: "MQTT", protocolVersion: 4, clean: true, keepAlive: 0, clientId: id, will: undefined, username: undefined, password: undefined, properties: {} });
        return { got, send };
      };
      const until = async (ok: () => boolean) => {
        for (let i = 0; i < 200 && !ok(); i++) await new Promise((r) => setTimeout(r, 10));
      };
      const sub = await open("w-sub");
      sub.send({ type: "subscribe", packetId: 1, subscriptions: [{ topicFilter: "w/#", qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0 }], properties: {} });
      await until(() => sub.got.some((p) => p.type === "suback"));
      const pub = await open("w-pub");
      for (let i = 0; i < 50; i++) pub.send({ type: "publish", topic: "w/t", payload: new TextEncoder().encode(String(i)), qos: 1, retain: false, dup: false, packetId: i + 1, properties: {} });
      const publishes = () => sub.got.filter((p) => p.type === "publish");
      await until(() => pub.got.filter((p) => p.type === "puback").length === 50);
      await new Promise((r) => setTimeout(r, 100));
      expect(publishes()).toHaveLength(20);
      sub.send({ type: "puback", packetId: publishes()[0]!.packetId, reasonCode: 0, properties: {} });
      await until(() => publishes().length === 21);
      await new Promise((r) => setTimeout(r, 50));
      expect(publishes().map((p) => new TextDecoder().decode(p.payload))).toEqual(Array.from({ length: 21 }, (_, i) => String(i)));
    } finally {
      for (const s of sockets) s.destroy();
      await broker.stop();
    }
  });
});

describe("end-to-end report", () => {
  it("states ratios so that > 1 always means harbormq leads", async () => {
    const { advantage } = await import("./report.mjs");
    expect(advantage(300, 100, "higher")).toBe(3);
    expect(advantage(1000, 4000, "lower")).toBe(4);
    expect(advantage(undefined, 100, "higher")).toBeUndefined();
  });

  it("replaces only its own section", async () => {
    const { replaceSection } = await import("./report.mjs");
    const doc = "# B\n\n## Codec\nc\n\n## End-to-end\nold\n\n## Store\ns\n";
    const out = replaceSection(doc, "## End-to-end", "## End-to-end\nnew\n");
    expect(out).toBe("# B\n\n## Codec\nc\n\n## End-to-end\nnew\n\n## Store\ns\n");
    expect(replaceSection("# B\n", "## End-to-end", "## End-to-end\nx\n")).toBe("# B\n\n## End-to-end\nx\n");
  });

  it("shows an error instead of a figure for a broker that failed a repetition", async () => {
    const { markdown } = await import("./report.mjs");
    const run = {
      mode: "short",
      started: "2026-01-01T00:00:00.000Z",
      reps: 2,
      sizes: { fanIn: 10 },
      machine: { cores: 2, cpu: "x", loadavgAtEnd: [0, 0, 0] },
      versions: { node: "v20" },
      scenarios: [{ id: "fan-in-qos0", title: "Fan-in", unit: "msg/s", better: "higher" }],
      brokers: [
        { id: "harbormq-memory", label: "harbormq (memory)" },
        { id: "aedes", label: "Aedes" },
      ],
      results: [
        { scenario: "fan-in-qos0", broker: "harbormq-memory", runs: [{ value: 1000 }, { value: 3000 }], errors: [], median: 2000 },
        { scenario: "fan-in-qos0", broker: "aedes", runs: [{ value: 500 }, { error: "received 9 of 10" }], errors: ["received 9 of 10"] },
      ],
    };
    const row = markdown(run)
      .split("\n")
      .find((l) => l.startsWith("| Fan-in"));
    expect(row).toContain("| 2,000 |");
    expect(row).toContain("**error** (1 of 2 runs): received 9 of 10");
    expect(row).not.toContain("500");
    expect(row?.trim().endsWith("| - |")).toBe(true); // no ratio against a broker without a figure
  });
});
