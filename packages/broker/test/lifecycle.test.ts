// Regression tests for createBroker's lifecycle (found by review): close() or a fail-stop while
// listen() is still starting must leave no transport listening, and a listen() retried after a
// failed one must serve clients. The WebSocket findings of the same review are tested in
// packages/transport-ws/test/ws-robust.test.ts, the transports' own listen/close in their packages.
import * as net from "node:net";
import { describe, expect, it } from "vitest";
import { encode } from "@harbormq/codec";
import { createBroker, MemoryStore, type Duplex, type Transport } from "@harbormq/broker";
import { memoryTransport } from "@harbormq/transport-memory";
import { tcpTransport } from "@harbormq/transport-tcp";
import type { Snapshot } from "@harbormq/core";
import { connect } from "./fixtures/raw-client.js";
import { until } from "./transport-conformance.js";

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** A transport that binds when the test opens its gate. Like a plain server, its close() only
 *  unbinds what is bound: a close() before the bind does not stop the bind coming later. */
interface GatedTransport extends Transport {
  bound: boolean;
  listens: number;
  /** Lets a listen() in progress bind. */
  open(): void;
}
function gatedTransport(): GatedTransport {
  let open: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => (open = resolve));
  const t: GatedTransport = {
    name: "gated",
    bound: false,
    listens: 0,
    open: () => open(),
    async listen(_accept: (duplex: Duplex) => void) {
      t.listens++;
      await gate;
      t.bound = true;
    },
    close() {
      t.bound = false;
      return Promise.resolve();
    },
    address() {
      return t.bound ? { host: "gated", port: 1 } : undefined;
    },
  };
  return t;
}

/** A MemoryStore whose restore() waits for the test, and whose writes can be made to fail. */
class SlowStore extends MemoryStore {
  failWrites = false;
  open: () => void = () => undefined;
  private readonly gate = new Promise<void>((resolve) => (this.open = resolve));
  override async restore(queueWindow: number): Promise<Snapshot> {
    await this.gate;
    return super.restore(queueWindow);
  }
  override apply(...args: Parameters<MemoryStore["apply"]>): Promise<void> {
    if (this.failWrites) return Promise.reject(new Error("SQLITE_FULL: database or disk is full"));
    return super.apply(...args);
  }
}

/** Whether something accepts TCP connections on this loopback port. */
const accepts = (port: number): Promise<boolean> =>
  new Promise<boolean>((resolve) => {
    const s = net.connect(port, "127.0.0.1", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });

describe("createBroker lifecycle", () => {
  it("close() during listen() leaves no transport listening", async () => {
    const tcp = tcpTransport({ host: "127.0.0.1", port: 0 });
    const broker = createBroker({ transports: [tcp] });
    const listening = broker.listen();
    await broker.close();
    await expect(listening).rejects.toThrow(/close\(\)/);
    await sleep(20);
    const address = tcp.address();
    const accepted = address === undefined ? false : await accepts(address.port);
    // Clean up whatever was left open so the worker can exit.
    if (address !== undefined) await tcp.close();
    expect(address).toBeUndefined();
    expect(accepted).toBe(false);
  });

  it("close() while the store restores starts no transport; close() waits for listen()", async () => {
    const store = new SlowStore();
    const gated = gatedTransport();
    gated.open();
    const broker = createBroker({ transports: [gated], store });
    const listening = broker.listen();
    let closed = 0;
    const closing = broker.close().then(() => closed++);
    const again = broker.close().then(() => closed++); // a second close() waits as well
    await sleep(20);
    expect(closed).toBe(0);
    store.open();
    await Promise.all([closing, again]);
    await expect(listening).rejects.toThrow(/close\(\)/);
    expect(gated.listens).toBe(0);
    expect(gated.bound).toBe(false);
  });

  it("close() while a transport is starting closes it once it has started", async () => {
    const gated = gatedTransport();
    const broker = createBroker({ transports: [memoryTransport(), gated] });
    const listening = broker.listen();
    await until(() => gated.listens === 1, "listen");
    let closed = false;
    const closing = broker.close().then(() => (closed = true));
    await sleep(20);
    expect(closed).toBe(false); // waits for the transport being started
    gated.open();
    await closing;
    await expect(listening).rejects.toThrow(/close\(\)/);
    expect(gated.bound).toBe(false);
  });

  it("a transport that fails while another is starting: both end unbound, listen() rejects once both settled", async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
    const port = (blocker.address() as net.AddressInfo).port;
    const gated = gatedTransport();
    const broker = createBroker({ transports: [tcpTransport({ host: "127.0.0.1", port }), gated] });
    let settled = false;
    const listening = broker.listen().finally(() => (settled = true));
    listening.catch(() => undefined);
    await sleep(50);
    expect(settled).toBe(false);
    gated.open();
    await expect(listening).rejects.toThrow(/EADDRINUSE/);
    expect(gated.bound).toBe(false);
    await new Promise<void>((resolve) => blocker.close(() => resolve()));
    await broker.close();
  });

  it("a fail-stop while a transport is starting closes it once started, before onFatal", async () => {
    const store = new SlowStore();
    store.open();
    const memory = memoryTransport();
    const gated = gatedTransport();
    const fatal: { error: Error; bound: boolean }[] = [];
    const broker = createBroker({
      transports: [memory, gated],
      store,
      onFatal: (error) => fatal.push({ error, bound: gated.bound }),
    });
    const listening = broker.listen();
    await until(() => gated.listens === 1, "listen");
    // A persistent session is written at CONNECT: that write fails.
    store.failWrites = true;
    const client = memory.connect();
    let cut = false;
    client.onData(() => undefined);
    client.onClose(() => (cut = true));
    client.write(encode(connect("fail-during-start", false), 4));
    await until(() => cut, "fail-stop");
    gated.open();
    await listening;
    await until(() => fatal.length === 1, "onFatal");
    expect(fatal[0]!.error.message).toMatch(/disk is full/);
    expect(fatal[0]!.bound).toBe(false);
    expect(gated.bound).toBe(false);
    await broker.close();
  });

  it("listen() retried after EADDRINUSE serves clients (no stale accept of the failed attempt)", async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
    const port = (blocker.address() as net.AddressInfo).port;
    const broker = createBroker({ transports: [tcpTransport({ host: "127.0.0.1", port })] });
    await expect(broker.listen()).rejects.toThrow(/EADDRINUSE/);
    await new Promise<void>((resolve) => blocker.close(() => resolve()));
    await broker.listen();
    const socket = net.connect(port, "127.0.0.1");
    const received: Buffer[] = [];
    let closed = false;
    socket.on("data", (d: Buffer) => void received.push(d));
    socket.on("close", () => (closed = true));
    socket.on("error", () => undefined);
    await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
    socket.write(encode(connect("retry"), 4));
    for (let i = 0; i < 100 && received.length === 0 && !closed; i++) await sleep(5);
    await sleep(50);
    const bytes = Buffer.concat(received);
    socket.destroy();
    await broker.close();
    expect({ closed, bytes: Array.from(bytes) }).toEqual({ closed: false, bytes: [0x20, 0x02, 0x00, 0x00] }); // one CONNACK, accepted
  });
});
