// TCP (node:net) and TLS (node:tls) transports: each accepted socket becomes a Duplex for the
// driver. Nagle is off (noDelay): the driver already batches writes per connection per turn.
import { readFileSync } from "node:fs";
import * as net from "node:net";
import * as tls from "node:tls";
import type { Duplex, Transport } from "@harbormq/broker";

export interface TcpTransportOptions {
  /** Default "0.0.0.0"; tests use "127.0.0.1". */
  readonly host?: string;
  /** 0 picks an ephemeral port (see `address()`). Default 1883. */
  readonly port?: number;
  /** Ms to wait for a closing socket to flush before destroying it. Default 5000. */
  readonly closeTimeout?: number;
  /** Server errors after listen() (EMFILE on accept, ...); without it they are ignored rather
   *  than crashing the process. */
  readonly onError?: (error: Error) => void;
}

export interface TlsTransportOptions extends TcpTransportOptions {
  /** PEM text or a path to a PEM file. */
  readonly cert: string | Uint8Array;
  /** PEM text or a path to a PEM file. */
  readonly key: string | Uint8Array;
  /** Optional CA bundle (PEM text or path) and client certificate policy. */
  readonly ca?: string | Uint8Array;
  readonly requestCert?: boolean;
  readonly rejectUnauthorized?: boolean;
}

/** Wraps a connected net.Socket (or tls.TLSSocket) as a Duplex. Also used by tests for the client end. */
export function socketDuplex(socket: net.Socket, options: { closeTimeout?: number } = {}): Duplex {
  const closeTimeout = options.closeTimeout ?? 5000;
  const remote =
    socket.remoteFamily === "IPv6"
      ? `[${socket.remoteAddress ?? "?"}]:${socket.remotePort ?? 0}`
      : `${socket.remoteAddress ?? "?"}:${socket.remotePort ?? 0}`;
  let error: Error | undefined;
  let closed = false;
  let needDrain = false;
  let closeListeners: ((error?: Error) => void)[] = [];
  let drainListener: (() => void) | undefined;
  socket.setNoDelay(true);
  socket.on("error", (err) => {
    error ??= err;
  });
  socket.on("close", () => {
    closed = true;
    const listeners = closeListeners;
    closeListeners = [];
    for (const listener of listeners) listener(error);
  });
  socket.on("drain", () => {
    if (!needDrain) return;
    needDrain = false;
    drainListener?.();
  });
  return {
    remote,
    write(bytes) {
      if (closed || socket.writableEnded || socket.destroyed) return false;
      const ok = socket.write(bytes);
      if (!ok) needDrain = true;
      return ok;
    },
    close() {
      if (closed || socket.writableEnded) return;
      // Flush and send FIN; do not wait forever for a peer that neither reads nor closes.
      socket.end(() => socket.destroy());
      const timer = setTimeout(() => socket.destroy(), closeTimeout);
      timer.unref();
      socket.once("close", () => clearTimeout(timer));
    },
    destroy() {
      socket.destroy();
    },
    pause() {
      socket.pause();
    },
    resume() {
      socket.resume();
    },
    onData(listener) {
      socket.on("data", listener);
    },
    onClose(listener) {
      if (closed) queueMicrotask(() => listener(error));
      else closeListeners.push(listener);
    },
    onDrain(listener) {
      drainListener = listener;
    },
  };
}

function serverTransport(
  name: string,
  server: net.Server,
  connectionEvent: "connection" | "secureConnection",
  options: TcpTransportOptions,
): Transport {
  const host = options.host ?? "0.0.0.0";
  const port = options.port ?? (name === "tls" ? 8883 : 1883);
  const closeTimeout = options.closeTimeout ?? 5000;
  let listening = false;
  return {
    name,
    listen(accept) {
      server.on(connectionEvent, (socket: net.Socket) => accept(socketDuplex(socket, { closeTimeout })));
      // A failed TLS handshake only concerns that socket.
      server.on("tlsClientError", (_err: Error, socket: net.Socket) => socket.destroy());
      return new Promise((resolve, reject) => {
        server.once("error", reject);
        server.listen(port, host, () => {
          server.off("error", reject);
          server.on("error", (error) => options.onError?.(error));
          listening = true;
          resolve();
        });
      });
    },
    close() {
      if (!listening) return Promise.resolve();
      listening = false;
      // Stops accepting at once; the 'close' event would wait for the connections, which the
      // driver closes itself, so do not wait for it.
      server.close();
      return Promise.resolve();
    },
    address() {
      const address = server.address();
      if (address === null || typeof address === "string") return undefined;
      return { host: address.address, port: address.port };
    },
  };
}

/** MQTT over plain TCP. */
export function tcpTransport(options: TcpTransportOptions = {}): Transport {
  const server = net.createServer({ noDelay: true });
  return serverTransport("tcp", server, "connection", options);
}

function pem(value: string | Uint8Array): string | Buffer {
  if (typeof value !== "string") return Buffer.from(value);
  return value.includes("-----BEGIN") ? value : readFileSync(value);
}

/** MQTT over TLS; `cert` and `key` are PEM text or file paths. */
export function tlsTransport(options: TlsTransportOptions): Transport {
  const secure: tls.TlsOptions = { cert: pem(options.cert), key: pem(options.key), noDelay: true };
  if (options.ca !== undefined) secure.ca = pem(options.ca);
  if (options.requestCert !== undefined) secure.requestCert = options.requestCert;
  if (options.rejectUnauthorized !== undefined) secure.rejectUnauthorized = options.rejectUnauthorized;
  const server = tls.createServer(secure);
  return serverTransport("tls", server, "secureConnection", options);
}
