// MQTT over WebSocket (section 6) with `ws`: binary frames only, subprotocol "mqtt" (or the
// MQTT 3.1 "mqttv3.1"), path /mqtt by default, on its own HTTP server or an existing one.
// Frames are not packets: the driver's decoder reassembles the byte stream ([MQTT-6.0.0-2]).
import * as http from "node:http";
import type { IncomingMessage } from "node:http";
import type { Duplex as NodeDuplex } from "node:stream";
import { WebSocket, WebSocketServer } from "ws";
import { bindServer, type Duplex, type Transport } from "@harbormq/broker";

export interface WsTransportOptions {
  /** Default "0.0.0.0"; ignored with `server`. */
  readonly host?: string;
  /** 0 picks an ephemeral port. Default 8080; ignored with `server`. */
  readonly port?: number;
  /** Default "/mqtt". */
  readonly path?: string;
  /** Attach to this HTTP(S) server instead of creating one; upgrades on other paths are left alone. */
  readonly server?: http.Server;
  /** bufferedAmount above which `write` returns false. Default 64 KiB. */
  readonly highWaterMark?: number;
  /** Largest WebSocket message accepted (bytes); ws buffers a whole message before delivering it,
   *  so set it near the broker's maxPacketSize (the CLI does). Default 256 MiB + a few, MQTT's own limit. */
  readonly maxPayload?: number;
  /** Errors of its own HTTP server after listen(); without it they are ignored rather than
   *  crashing the process. */
  readonly onError?: (error: Error) => void;
}

/** Subprotocols we accept, in order of preference ([MQTT-6.0.0-4]). */
const protocols = ["mqtt", "mqttv3.1"];

/** Wraps an open WebSocket as a Duplex. `socket` is its TCP socket (for 'drain'); used for the
 *  client end in tests too. */
export function webSocketDuplex(
  ws: WebSocket,
  remote: string,
  options: { highWaterMark?: number; socket?: NodeDuplex } = {},
): Duplex {
  const highWaterMark = options.highWaterMark ?? 64 * 1024;
  let error: Error | undefined;
  let closed = false;
  /** [MQTT-6.0.0-1] a non-binary frame arrived: nothing this peer sends afterwards is processed. */
  let refused = false;
  let needDrain = false;
  let closeListeners: ((error?: Error) => void)[] = [];
  let drainListener: (() => void) | undefined;
  ws.binaryType = "nodebuffer";
  ws.on("error", (err) => {
    error ??= err;
  });
  ws.on("close", () => {
    closed = true;
    const listeners = closeListeners;
    closeListeners = [];
    for (const listener of listeners) listener(error);
  });
  const onSocketDrain = () => {
    if (!needDrain || ws.bufferedAmount >= highWaterMark) return;
    needDrain = false;
    drainListener?.();
  };
  options.socket?.on("drain", onSocketDrain);
  return {
    remote,
    write(bytes) {
      if (closed || ws.readyState !== WebSocket.OPEN) return false;
      ws.send(bytes, { binary: true });
      if (ws.bufferedAmount >= highWaterMark) {
        needDrain = true;
        return false;
      }
      return true;
    },
    close() {
      if (closed) return;
      if (ws.readyState === WebSocket.CONNECTING) {
        ws.terminate();
        return;
      }
      // The closing handshake needs the peer's close frame: read again if paused.
      if (ws.isPaused) ws.resume();
      ws.close(1000);
    },
    destroy() {
      ws.terminate();
    },
    pause() {
      if (ws.readyState === WebSocket.OPEN) ws.pause();
    },
    resume() {
      if (ws.readyState === WebSocket.OPEN) ws.resume();
    },
    onData(listener) {
      ws.on("message", (data, isBinary) => {
        // ws.close() only starts the closing handshake: frames keep arriving until the peer
        // answers (a hostile one never does), and none of them may reach the driver.
        if (refused) return;
        // [MQTT-6.0.0-1] only binary frames carry MQTT; anything else closes the network connection.
        if (!isBinary) {
          refused = true;
          error ??= new Error("text frame on an MQTT WebSocket");
          ws.close(1003, "binary frames only");
          // Cut the connection once the close frame is flushed instead of waiting for the answer.
          const socket = options.socket;
          if (socket === undefined || socket.destroyed) ws.terminate();
          else socket.end(() => ws.terminate());
          return;
        }
        if (Array.isArray(data)) for (const part of data) listener(part);
        else if (data instanceof ArrayBuffer) listener(new Uint8Array(data));
        else listener(data);
      });
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

/** The path of a request target, or undefined if it cannot be parsed: `new URL` throws on targets
 *  Node's HTTP parser accepts ("//[", "http://[::1/mqtt", "http://a:99999/mqtt"). */
function pathOf(target: string): string | undefined {
  try {
    return new URL(target, "http://localhost").pathname;
  } catch {
    return undefined;
  }
}

/** Answers an upgrade request with an HTTP error and closes its socket. */
function refuseUpgrade(socket: NodeDuplex, status: number): void {
  socket.on("error", () => socket.destroy());
  socket.once("finish", () => socket.destroy());
  socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? ""}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
}

function remoteOf(req: IncomingMessage): string {
  const address = req.socket.remoteAddress ?? "?";
  const host = address.includes(":") ? `[${address}]` : address;
  return `ws://${host}:${req.socket.remotePort ?? 0}`;
}

/** MQTT over WebSocket. */
export function wsTransport(options: WsTransportOptions = {}): Transport {
  const path = options.path ?? "/mqtt";
  const highWaterMark = options.highWaterMark ?? 64 * 1024;
  const own = options.server === undefined;
  const server = options.server ?? http.createServer((_req, res) => {
    res.writeHead(426, { "content-type": "text/plain" }).end("MQTT over WebSocket only\n");
  });
  const wss = new WebSocketServer({
    noServer: true,
    perMessageDeflate: false,
    maxPayload: options.maxPayload ?? 268_435_460,
    handleProtocols: (offered) => protocols.find((p) => offered.has(p)) ?? false,
  });
  /** Set by listen(), cleared by close() and by a failed listen(). */
  let accept: ((duplex: Duplex) => void) | undefined;
  /** The current listen(): resolves to whether it bound the port of its own server. */
  let started: Promise<boolean> | undefined;
  let bound = false;
  const onUpgrade = (req: IncomingMessage, socket: NodeDuplex, head: Buffer): void => {
    const pathname = pathOf(req.url ?? "/");
    if (pathname === undefined) {
      // Not ours to judge on a shared server; on our own, a bad request must not throw.
      if (own) refuseUpgrade(socket, 400);
      return;
    }
    if (pathname !== path || accept === undefined) {
      if (own) socket.destroy();
      return;
    }
    socket.on("error", () => socket.destroy());
    wss.handleUpgrade(req, socket, head, (ws) => {
      // close() was called during the handshake.
      if (accept === undefined) ws.terminate();
      else accept(webSocketDuplex(ws, remoteOf(req), { highWaterMark, socket: req.socket }));
    });
  };
  if (own) {
    server.on("error", (error) => {
      if (bound) options.onError?.(error);
    });
  }
  return {
    name: "ws",
    listen(acceptFn) {
      if (started !== undefined) return Promise.reject(new Error("the ws transport is already listening"));
      accept = acceptFn;
      // Added here, not at creation, so that a server we are attached to carries it only while
      // we listen; close() and a failed listen() remove it.
      server.on("upgrade", onUpgrade);
      let failure: unknown;
      const attempt = !own
        ? Promise.resolve(false)
        : bindServer(
            server,
            () => server.listen(options.port ?? 8080, options.host ?? "0.0.0.0"),
            (error) => (failure = error),
          ).then((ok) => (bound = ok));
      started = attempt;
      return attempt.then((ok) => {
        if (ok || !own) return;
        if (started === attempt) {
          started = undefined;
          accept = undefined;
          server.off("upgrade", onUpgrade);
        }
        throw failure;
      });
    },
    close() {
      accept = undefined;
      const pending = started;
      started = undefined;
      server.off("upgrade", onUpgrade);
      if (pending === undefined) return Promise.resolve();
      // A listen() still in progress binds later: wait for it, then unbind, so that no port stays
      // bound after close() resolved. Stops accepting at once; existing WebSockets are closed by
      // the driver.
      return pending.then((ok) => {
        if (!ok) return;
        bound = false;
        server.close();
        server.closeIdleConnections();
      });
    },
    address() {
      const address = server.address();
      if (address === null || typeof address === "string") return undefined;
      return { host: address.address, port: address.port };
    },
  };
}
