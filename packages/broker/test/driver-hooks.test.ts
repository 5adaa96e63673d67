// Hooks are untrusted code: an answer that is not a verdict, a hook that throws or rejects, and
// one event hook failing must not crash the broker, hang a client or silence other hooks.
// (Found by a review in session 5; each test failed before its fix.)
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createBroker, type Hooks, type Verdict } from "@harbormq/broker";
import { memoryTransport, type MemoryTransport } from "@harbormq/transport-memory";
import { connect, publish, RawClient } from "./fixtures/raw-client.js";
import { turn, until } from "./transport-conformance.js";

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Unhandled rejections raised while a test runs (each would crash a Node process by default). */
let rejections: unknown[] = [];
const onRejection = (reason: unknown): void => void rejections.push(reason);
beforeEach(() => {
  rejections = [];
  process.on("unhandledRejection", onRejection);
});
afterEach(() => {
  process.off("unhandledRejection", onRejection);
});

async function startMemory(hooks: Hooks, config: Record<string, unknown> = {}) {
  const transport: MemoryTransport = memoryTransport();
  const broker = createBroker({ transports: [transport], hooks, config });
  await broker.listen();
  return { broker, transport };
}

describe("hook answers nobody validated", () => {
  // An async hook that falls off its end resolves with undefined (easy in JS, or with `as any`).
  // toVerdict() passes undefined through and the core reads `verdict.ok`: a TypeError inside
  // core.handle(), thrown in the driver's promise chain, i.e. an unhandled rejection (process
  // crash under Node's default --unhandled-rejections=throw), and the connection gets no CONNACK.
  it("an authenticate hook resolving with undefined refuses the client, without an unhandled rejection", async () => {
    const { broker, transport } = await startMemory({
      authenticate: (async () => undefined) as unknown as () => Promise<Verdict>,
    });
    const c = new RawClient(transport.connect());
    c.send(connect("forgetful"));
    for (let i = 0; i < 200 && c.count("connack") === 0; i++) await sleep(5);
    expect(rejections.map(String)).toEqual([]);
    expect(c.received[0]).toMatchObject({ type: "connack" });
    expect((c.received[0] as { reasonCode: number }).reasonCode).not.toBe(0);
    await broker.close();
  });

  it("an authorizePublish hook resolving with null does not reject unhandled and the QoS 1 publish is answered", async () => {
    const { broker, transport } = await startMemory({
      authorizePublish: (async () => null) as unknown as () => Promise<Verdict>,
    });
    const c = new RawClient(transport.connect());
    c.send(connect("pub"));
    await until(() => c.count("connack") === 1, "connack");
    c.send(publish("t/1", "x", 1, 1));
    for (let i = 0; i < 200 && c.count("puback") === 0; i++) await sleep(5);
    expect(rejections.map(String)).toEqual([]);
    expect(c.count("puback")).toBe(1);
    await broker.close();
  });

  // observe() catches a hook that throws, but not one that returns a rejected promise: an
  // `async onEvent` (assignable to the `void` return type) that fails crashes the process.
  it("an async onEvent / onClientConnected hook that rejects is contained like one that throws", async () => {
    const { broker, transport } = await startMemory({
      onEvent: async () => {
        throw new Error("metrics backend down");
      },
      onClientConnected: async () => {
        throw new Error("audit log down");
      },
    });
    const c = new RawClient(transport.connect());
    c.send(connect("ev"));
    await until(() => c.count("connack") === 1, "connack");
    for (let i = 0; i < 10; i++) await turn();
    expect(rejections.map(String)).toEqual([]);
    await broker.close();
  });
});

describe("event hooks are independent", () => {
  // observe() calls onEvent first inside one try: when it throws, the rest of the block is
  // skipped, so onClientConnected / onClientDisconnected are never called, nothing is logged and
  // the connection's clientId is not recorded (message-dropped events then carry clientId "").
  it("a throwing onEvent does not suppress onClientConnected / onClientDisconnected", async () => {
    const seen: string[] = [];
    const { broker, transport } = await startMemory({
      onEvent: () => {
        throw new Error("onEvent bug");
      },
      onClientConnected: (e) => void seen.push(`connected ${e.clientId}`),
      onClientDisconnected: (e) => void seen.push(`disconnected ${e.clientId ?? "?"}`),
    });
    const c = new RawClient(transport.connect());
    c.send(connect("indep"));
    await until(() => c.count("connack") === 1, "connack");
    c.send({ type: "disconnect", reasonCode: 0, properties: {} });
    await until(() => c.closed, "closed");
    for (let i = 0; i < 10; i++) await turn();
    expect(seen).toEqual(["connected indep", "disconnected indep"]);
    await broker.close();
  });
});

