// The Transport contract suite: every transport package runs it with its own factory and a way
// to open a client end, e.g.
//   transportConformance("tcp", () => tcpTransport({ host: "127.0.0.1", port: 0 }), connectTcp)
import { afterEach, describe, expect, it } from "vitest";
import type { Duplex, Transport } from "../src/ports.js";

/** Resolves on the next macrotask, after pending IO callbacks. */
export const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Waits (in event-loop turns, bounded by vitest's test timeout) until `check` holds. */
export async function until(check: () => boolean, what = "condition"): Promise<void> {
  for (let i = 0; !check(); i++) {
    if (i > 200_000) throw new Error(`timed out waiting for ${what}`);
    await (i < 50 ? turn() : new Promise((resolve) => setTimeout(resolve, 2)));
  }
}

/** Collects what a Duplex delivers. */
export class Sink {
  readonly chunks: Uint8Array[] = [];
  bytes = 0;
  closes = 0;
  drains = 0;
  constructor(readonly duplex: Duplex) {
    duplex.onData((chunk) => {
      this.chunks.push(chunk.slice());
      this.bytes += chunk.length;
    });
    duplex.onClose(() => this.closes++);
    duplex.onDrain(() => this.drains++);
  }
  concat(): Uint8Array {
    const out = new Uint8Array(this.bytes);
    let offset = 0;
    for (const chunk of this.chunks) {
      out.set(chunk, offset);
      offset += chunk.length;
    }
    return out;
  }
  text(): string {
    return new TextDecoder().decode(this.concat());
  }
}

function pattern(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed | 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The transport requirement of both MQTT versions ([MQTT-7.1.1-1] in 3.1.1, [MQTT-4.2.0-1] in
 *  5.0): an ordered, lossless, two-way byte stream, whatever the write sizes. Each transport's test
 *  file names the rule ids around a call to this. */
export async function checkOrderedStream(
  factory: () => Transport,
  connectClient: (transport: Transport) => Promise<Duplex>,
): Promise<void> {
  const transport = factory();
  let server: Sink | undefined;
  await transport.listen((duplex) => (server = new Sink(duplex)));
  const client = new Sink(await connectClient(transport));
  try {
    await until(() => server !== undefined, "accept");
    const data = pattern(300_000, 11);
    for (let offset = 0, size = 1; offset < data.length; offset += size, size = ((size * 7) % 65_536) + 1) {
      const chunk = data.subarray(offset, Math.min(data.length, offset + size));
      client.duplex.write(chunk);
      server!.duplex.write(chunk);
    }
    await until(() => client.bytes === data.length && server!.bytes === data.length, "streams");
    expect(equalBytes(server!.concat(), data)).toBe(true);
    expect(equalBytes(client.concat(), data)).toBe(true);
  } finally {
    client.duplex.close();
    server?.duplex.close();
    await transport.close();
  }
}

export function transportConformance(
  name: string,
  factory: () => Transport,
  connectClient: (transport: Transport) => Promise<Duplex>,
): void {
  describe(`transport conformance: ${name}`, () => {
    let transport: Transport | undefined;
    const opened: Duplex[] = [];

    afterEach(async () => {
      for (const duplex of opened) duplex.close();
      opened.length = 0;
      await transport?.close();
      transport = undefined;
    });

    /** Listens, connects one client and returns both ends once the server accepted. */
    async function pair(): Promise<{ server: Sink; client: Sink }> {
      if (transport === undefined) {
        transport = factory();
        await transport.listen((duplex) => {
          opened.push(duplex);
          pending.shift()?.(duplex);
        });
      }
      const waiting = new Promise<Duplex>((resolve) => pending.push(resolve));
      const client = await connectClient(transport);
      opened.push(client);
      const server = await waiting;
      return { server: new Sink(server), client: new Sink(client) };
    }
    const pending: ((duplex: Duplex) => void)[] = [];

    it("reports a name and, once listening, an address", async () => {
      transport = factory();
      expect(transport.name).toBeTypeOf("string");
      await transport.listen(() => {});
      expect(transport.address()).toBeDefined();
    });

    it("carries bytes both ways and names the remote", async () => {
      const { server, client } = await pair();
      expect(server.duplex.remote.length).toBeGreaterThan(0);
      expect(client.duplex.write(new TextEncoder().encode("ping"))).toBe(true);
      await until(() => server.bytes === 4, "server bytes");
      expect(server.text()).toBe("ping");
      server.duplex.write(new TextEncoder().encode("pong!"));
      await until(() => client.bytes === 5, "client bytes");
      expect(client.text()).toBe("pong!");
    });

    it("delivers large writes intact in both directions", async () => {
      const { server, client } = await pair();
      const big = pattern(3 * 1024 * 1024 + 7, 42);
      server.duplex.write(big);
      const up = pattern(1024 * 1024 + 3, 7);
      client.duplex.write(up);
      await until(() => client.bytes >= big.length && server.bytes >= up.length, "large transfers");
      expect(equalBytes(client.concat(), big)).toBe(true);
      expect(equalBytes(server.concat(), up)).toBe(true);
    });

    it("close from the server flushes first and fires onClose once on each side", async () => {
      const { server, client } = await pair();
      const tail = pattern(200_000, 3);
      server.duplex.write(tail);
      server.duplex.close();
      server.duplex.close(); // idempotent
      await until(() => client.closes > 0 && server.closes > 0, "both closed");
      expect(equalBytes(client.concat(), tail)).toBe(true);
      for (let i = 0; i < 5; i++) await turn();
      expect(server.closes).toBe(1);
      expect(client.closes).toBe(1);
      expect(server.duplex.write(new Uint8Array([1]))).toBe(false);
    });

    it("close from the client fires onClose once on the server", async () => {
      const { server, client } = await pair();
      client.duplex.write(new Uint8Array([1, 2, 3]));
      client.duplex.close();
      await until(() => server.closes > 0 && client.closes > 0, "both closed");
      expect(Array.from(server.concat())).toEqual([1, 2, 3]);
      for (let i = 0; i < 5; i++) await turn();
      expect(server.closes).toBe(1);
      expect(client.closes).toBe(1);
    });

    it("destroy ends the stream at once, even when the peer is not reading", async () => {
      const { server, client } = await pair();
      expect(server.duplex.destroy).toBeTypeOf("function");
      client.duplex.pause();
      server.duplex.write(pattern(1024 * 1024, 5));
      server.duplex.destroy!();
      server.duplex.destroy!();
      await until(() => server.closes === 1, "server closed");
      // A paused socket notices the end only when it reads again.
      client.duplex.resume();
      await until(() => client.closes === 1, "client closed");
      for (let i = 0; i < 5; i++) await turn();
      expect(server.closes).toBe(1);
      expect(client.closes).toBe(1);
    });

    it("pause stops onData until resume, and nothing is lost", async () => {
      const { server, client } = await pair();
      server.duplex.pause();
      await turn();
      client.duplex.write(new TextEncoder().encode("held"));
      for (let i = 0; i < 20; i++) await turn();
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(server.bytes).toBe(0);
      server.duplex.resume();
      await until(() => server.bytes === 4, "data after resume");
      expect(server.text()).toBe("held");
    });

    it("write returns false when the peer does not read, then onDrain fires once it does", async () => {
      const { server, client } = await pair();
      client.duplex.pause();
      await turn();
      const chunk = pattern(64 * 1024, 9);
      let written = 0;
      let ok = true;
      // A socket's kernel buffers take a few MiB; stop well before unbounded.
      for (let i = 0; ok && i < 2048; i++) {
        ok = server.duplex.write(chunk);
        written += chunk.length;
        if (i % 16 === 15) await turn();
      }
      expect(ok).toBe(false);
      expect(server.drains).toBe(0);
      client.duplex.resume();
      await until(() => server.drains > 0, "drain");
      await until(() => client.bytes === written, "all bytes");
      expect(server.drains).toBe(1);
    });

    it("serves many connections independently", async () => {
      const pairs: { server: Sink; client: Sink }[] = [];
      for (let i = 0; i < 40; i++) pairs.push(await pair());
      pairs.forEach(({ client }, i) => client.duplex.write(new TextEncoder().encode(`client-${i}`)));
      await until(() => pairs.every(({ server }, i) => server.bytes === `client-${i}`.length), "all data");
      pairs.forEach(({ server }, i) => {
        expect(server.text()).toBe(`client-${i}`);
        server.duplex.write(new TextEncoder().encode(`reply-${i}`));
      });
      await until(() => pairs.every(({ client }, i) => client.bytes === `reply-${i}`.length), "all replies");
      pairs.forEach(({ client }, i) => expect(client.text()).toBe(`reply-${i}`));
      pairs[3]!.server.duplex.close();
      await until(() => pairs[3]!.client.closes === 1, "one closed");
      expect(pairs.filter(({ client }) => client.closes > 0)).toHaveLength(1);
    });
  });
}
