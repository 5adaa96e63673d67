// TCP (node:net) and TLS (node:tls) transports: each accepted socket becomes a Duplex for the
// driver. Nagle is off (noDelay): the driver already batches writes per connection per turn.
import { readFileSync } from "node:fs";
import * as net from "node:net";
import * as tls from "node:tls";
import { bindServer, type Duplex, type Transport } from "@harbormq/broker";

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

/** The SocketDuplex of a socket, so the socket's listeners can be shared functions. */
const kDuplex = Symbol("harbormq.duplex");
type OwnedSocket = net.Socket & { [kDuplex]?: SocketDuplex };

// One function per event for every socket (`this` is the socket), rather than closures per
// connection: an idle connection's memory is mostly such small objects (issue 7).
function onSocketError(this: OwnedSocket, err: Error): void {
  const d = this[kDuplex];
  if (d !== undefined) d.error ??= err;
}
function onSocketClose(this: OwnedSocket): void {
  this[kDuplex]?.handleClose();
}
function onSocketDrain(this: OwnedSocket): void {
  this[kDuplex]?.handleDrain();
}

/** A net.Socket (or tls.TLSSocket) as the driver's Duplex: one object with prototype methods. */
class SocketDuplex implements Duplex {
  readonly remote: string;
  error: Error | undefined = undefined;
  private closed = false;
  private needDrain = false;
  /** The 'drain' listener is attached on the first write that fills the socket's buffer. */
  private drainAttached = false;
  /** The driver registers one close listener; further ones (rare) go to `moreCloseListeners`. */
  private closeListener: ((error?: Error) => void) | undefined = undefined;
  private moreCloseListeners: ((error?: Error) => void)[] | undefined = undefined;
  private drainListener: (() => void) | undefined = undefined;

  constructor(
    private readonly socket: OwnedSocket,
    private readonly closeTimeout: number,
  ) {
    this.remote =
      socket.remoteFamily === "IPv6"
        ? `[${socket.remoteAddress ?? "?"}]:${socket.remotePort ?? 0}`
        : `${socket.remoteAddress ?? "?"}:${socket.remotePort ?? 0}`;
    socket.setNoDelay(true); // a no-op for servers created with noDelay
    socket[kDuplex] = this;
    socket.on("error", onSocketError);
    socket.on("close", onSocketClose);
  }

  /** The socket closed (called by its 'close' listener). */
  handleClose(): void {
    if (this.closed) return;
    this.closed = true;
    const first = this.closeListener;
    const more = this.moreCloseListeners;
    this.closeListener = undefined;
    this.moreCloseListeners = undefined;
    first?.(this.error);
    if (more !== undefined) for (const listener of more) listener(this.error);
  }

  /** The socket's buffer drained (called by its 'drain' listener). */
  handleDrain(): void {
    if (!this.needDrain) return;
    this.needDrain = false;
    this.drainListener?.();
  }

  write(bytes: Uint8Array): boolean {
    const socket = this.socket;
    if (this.closed || socket.writableEnded || socket.destroyed) return false;
    const ok = socket.write(bytes);
    if (!ok) {
      this.needDrain = true;
      if (!this.drainAttached) {
        this.drainAttached = true;
        socket.on("drain", onSocketDrain);
      }
    }
    return ok;
  }

  close(): void {
    const socket = this.socket;
    if (this.closed || socket.writableEnded) return;
    // Flush and send FIN; do not wait forever for a peer that neither reads nor closes.
    socket.end(() => socket.destroy());
    const timer = setTimeout(() => socket.destroy(), this.closeTimeout);
    timer.unref();
    socket.once("close", () => clearTimeout(timer));
  }

  destroy(): void {
    this.socket.destroy();
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  onData(listener: (chunk: Uint8Array) => void): void {
    this.socket.on("data", listener);
  }

  onClose(listener: (error?: Error) => void): void {
    if (this.closed) queueMicrotask(() => listener(this.error));
    else if (this.closeListener === undefined) this.closeListener = listener;
    else (this.moreCloseListeners ??= []).push(listener);
  }

  onDrain(listener: () => void): void {
    this.drainListener = listener;
  }
}

/** Wraps a connected net.Socket (or tls.TLSSocket) as a Duplex. Also used by tests for the client end. */
export function socketDuplex(socket: net.Socket, options: { closeTimeout?: number } = {}): Duplex {
  return new SocketDuplex(socket, options.closeTimeout ?? 5000);
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
  /** Set by listen(), cleared by close() and by a failed listen(): the server's listeners are
   *  added once, here, so a retried listen() never leaves a stale accept behind. */
  let accept: ((duplex: Duplex) => void) | undefined;
  /** The current listen(): resolves to whether the port was bound. */
  let started: Promise<boolean> | undefined;
  let bound = false;
  server.on(connectionEvent, (socket: net.Socket) => {
    // A connection accepted between close() and the server's unbinding.
    if (accept === undefined) socket.destroy();
    else accept(socketDuplex(socket, { closeTimeout }));
  });
  // A failed TLS handshake only concerns that socket.
  if (connectionEvent === "secureConnection") server.on("tlsClientError", (_err: Error, socket: net.Socket) => socket.destroy());
  server.on("error", (error) => {
    if (bound) options.onError?.(error);
  });
  return {
    name,
    listen(acceptFn) {
      if (started !== undefined) return Promise.reject(new Error(`the ${name} transport is already listening`));
      accept = acceptFn;
      let failure: unknown;
      const attempt = bindServer(
        server,
        () => server.listen(port, host),
        (error) => (failure = error),
      ).then((ok) => (bound = ok));
      started = attempt;
      return attempt.then((ok) => {
        if (ok) return;
        if (started === attempt) {
          started = undefined;
          accept = undefined;
        }
        throw failure;
      });
    },
    close() {
      accept = undefined;
      const pending = started;
      started = undefined;
      if (pending === undefined) return Promise.resolve();
      // A listen() still in progress binds later: wait for it, then unbind, so that no port stays
      // bound after close() resolved. Stop accepting at once; the 'close' event would wait for the
      // connections, which the driver closes itself, so do not wait for it.
      return pending.then((ok) => {
        if (!ok) return;
        bound = false;
        server.close();
      });
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
