import { describe, expect, it, vi } from "vitest";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tls from "node:tls";
import type { Duplex, Transport } from "@harbormq/broker";
import { socketDuplex, tcpTransport, tlsTransport } from "@harbormq/transport-tcp";
import { checkOrderedStream, transportConformance } from "../../broker/test/transport-conformance.js";

function connectTcp(t: Transport): Promise<Duplex> {
  const { port } = t.address()!;
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1", () => resolve(socketDuplex(socket)));
    socket.once("error", reject);
  });
}

/** A throwaway self-signed certificate for localhost, made with openssl at run time. */
export function selfSigned(): { cert: string; key: string; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), "harbormq-tls-"));
  const cert = join(dir, "cert.pem");
  const key = join(dir, "key.pem");
  execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", key, "-out", cert], { stdio: "ignore" });
  return { cert, key, dir };
}

const pems = selfSigned();

function connectTls(t: Transport): Promise<Duplex> {
  const { port } = t.address()!;
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ port, host: "127.0.0.1", ca: readFileSync(pems.cert), servername: "localhost" }, () =>
      resolve(socketDuplex(socket)),
    );
    socket.once("error", reject);
  });
}

/** A TCP transport on an ephemeral loopback port. */
const local = (): Transport => tcpTransport({ host: "127.0.0.1", port: 0 });

transportConformance("tcp", local, connectTcp);
// Paths for one, PEM text for the other: both forms are accepted.
transportConformance("tls (files)", () => tlsTransport({ host: "127.0.0.1", port: 0, cert: pems.cert, key: pems.key }), connectTls);
transportConformance(
  "tls (PEM text)",
  () => tlsTransport({ host: "127.0.0.1", port: 0, cert: readFileSync(pems.cert, "utf8"), key: readFileSync(pems.key, "utf8") }),
  connectTls,
);

describe("MQTT 3.1.1", () => {
  it("[MQTT-7.1.1-1] carries an ordered, lossless two-way byte stream", () => checkOrderedStream(local, connectTcp));
});
describe("MQTT 5.0", () => {
  it("[MQTT-4.2.0-1] carries an ordered, lossless two-way byte stream", () => checkOrderedStream(local, connectTcp));
});

describe("tcp listener", () => {
  it("reports its ephemeral port once listening, and a second listener on that port fails to start", async () => {
    const first = local();
    expect(first.address()).toBeUndefined();
    await first.listen(() => {});
    try {
      const { host, port } = first.address()!;
      expect(host).toBe("127.0.0.1");
      expect(port).toBeGreaterThan(0);
      const second = tcpTransport({ host: "127.0.0.1", port });
      await expect(second.listen(() => {})).rejects.toMatchObject({ code: "EADDRINUSE" });
    } finally {
      await first.close();
    }
  });

  // Found by review: each listen() added another 'connection' listener, so after a failed
  // listen() and a retry every socket also reached the accept of the failed attempt.
  it("a listen() retried after EADDRINUSE hands sockets only to the new accept", async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
    const port = (blocker.address() as net.AddressInfo).port;
    const t = tcpTransport({ host: "127.0.0.1", port });
    const stale: Duplex[] = [];
    const fresh: Duplex[] = [];
    await expect(t.listen((d) => stale.push(d))).rejects.toMatchObject({ code: "EADDRINUSE" });
    await new Promise<void>((resolve) => blocker.close(() => resolve()));
    await t.listen((d) => fresh.push(d));
    try {
      const client = await connectTcp(t);
      await vi.waitFor(() => expect(fresh).toHaveLength(1));
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(stale).toHaveLength(0);
      client.destroy?.();
    } finally {
      await t.close();
    }
  });

  // Found by review: close() during listen() did nothing (not listening yet), and the port was
  // bound afterwards.
  it("close() during listen() leaves the port unbound", async () => {
    const t = local();
    const listening = t.listen(() => {});
    await t.close();
    await listening.catch(() => undefined);
    expect(t.address()).toBeUndefined();
    // close() of a transport that never listened, and listen() again, work too.
    await local().close();
    await t.listen(() => {});
    expect(t.address()).toBeDefined();
    await t.close();
    expect(t.address()).toBeUndefined();
  });
});

describe("socket duplex", () => {
  it("fires every onClose listener once, those added before the close and one added after", async () => {
    const t = local();
    let accept: (d: Duplex) => void = () => {};
    const accepted = new Promise<Duplex>((resolve) => (accept = resolve));
    await t.listen((d) => accept(d));
    const client = await connectTcp(t);
    const server = await accepted;
    try {
      const calls: string[] = [];
      server.onClose(() => calls.push("first"));
      server.onClose(() => calls.push("second"));
      server.onClose(() => calls.push("third"));
      const closed = new Promise<void>((resolve) => server.onClose(() => resolve()));
      client.close();
      await closed;
      const late = new Promise<void>((resolve) => server.onClose(() => (calls.push("late"), resolve())));
      await late;
      await new Promise((r) => setTimeout(r, 20));
      expect(calls).toEqual(["first", "second", "third", "late"]);
    } finally {
      client.destroy?.();
      await t.close();
    }
  });

  it("close() destroys a socket whose peer neither reads nor closes once closeTimeout has passed", async () => {
    const t = tcpTransport({ host: "127.0.0.1", port: 0, closeTimeout: 150 });
    let accept: (d: Duplex) => void = () => {};
    const accepted = new Promise<Duplex>((resolve) => (accept = resolve));
    await t.listen((d) => accept(d));
    const client = net.connect(t.address()!.port, "127.0.0.1");
    client.on("error", () => {});
    client.pause(); // never reads: the server's buffered bytes cannot flush
    const server = await accepted;
    try {
      const closed = new Promise<"closed">((resolve) => server.onClose(() => resolve("closed")));
      const data = new Promise<"data">((resolve) => server.onData(() => resolve("data")));
      const chunk = new Uint8Array(1024 * 1024);
      for (let i = 0; i < 32 && server.write(chunk); i++);
      expect(server.write(chunk)).toBe(false);
      // The close timer runs on a fake clock: no sleeping, no timing threshold. Socket IO stays real.
      vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
      try {
        server.close();
        vi.advanceTimersByTime(149);
        // Still open 1 ms before the deadline: a byte from the peer is still delivered (close()
        // only ended our sending side), and it arrives before any close.
        client.write(Uint8Array.of(0));
        expect(await Promise.race([data, closed])).toBe("data");
        vi.advanceTimersByTime(1);
        expect(await closed).toBe("closed");
      } finally {
        vi.useRealTimers();
      }
    } finally {
      client.destroy();
      await t.close();
    }
  });
});
