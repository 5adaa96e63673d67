// In-process transport: `memoryTransport().connect()` returns the client end of a duplex pipe
// whose other end the broker accepts. Used by tests and by embedders that run a client in the
// same process. It behaves like a socket where it matters: delivery is asynchronous, a paused
// reader makes the writer's buffer grow, and `write` returns false over a high-water mark.
import type { Duplex, Transport } from "@harbormq/broker";

export interface MemoryTransportOptions {
  /** Bytes buffered for a reader before the writer's `write` returns false. Default 64 KiB. */
  readonly highWaterMark?: number;
}

export interface MemoryTransport extends Transport {
  /** Opens a connection to the listening broker and returns the client end. */
  connect(): Duplex;
}

const schedule: (fn: () => void) => void =
  typeof setImmediate === "function" ? (fn) => setImmediate(fn) : (fn) => setTimeout(fn, 0);

/** One end of a pipe. `inbound` holds what the peer wrote and this end has not delivered yet. */
class PipeEnd implements Duplex {
  peer!: PipeEnd;
  private readonly inbound: Uint8Array[] = [];
  private inboundBytes = 0;
  /** The peer closed: deliver what is buffered, then end. */
  private eof = false;
  private paused = false;
  private closing = false;
  private closed = false;
  private deliveryScheduled = false;
  /** write() returned false: fire onDrain once the peer has taken the backlog. */
  private needDrain = false;
  private dataListener: ((chunk: Uint8Array) => void) | undefined;
  private closeListeners: ((error?: Error) => void)[] = [];
  private drainListener: (() => void) | undefined;

  constructor(
    readonly remote: string,
    private readonly highWaterMark: number,
  ) {}

  write(bytes: Uint8Array): boolean {
    if (this.closing || this.closed) return false;
    const peer = this.peer;
    if (peer.closed) return false;
    // Copy: the receiver may keep slices of the chunk (a decoder buffering a partial packet).
    peer.inbound.push(bytes.slice());
    peer.inboundBytes += bytes.length;
    peer.scheduleDelivery();
    if (peer.inboundBytes >= this.highWaterMark) {
      this.needDrain = true;
      return false;
    }
    return true;
  }

  close(): void {
    if (this.closing || this.closed) return;
    this.closing = true;
    // Flush first: the peer sees our bytes, then EOF; we are closed once it has seen the EOF.
    this.peer.eof = true;
    this.peer.scheduleDelivery();
  }

  destroy(): void {
    if (this.closed) return;
    // Both ends end now; bytes not yet delivered are lost, as with a reset socket.
    this.peer.inbound.length = 0;
    this.peer.inboundBytes = 0;
    this.finish();
    this.peer.finish();
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.scheduleDelivery();
  }

  onData(listener: (chunk: Uint8Array) => void): void {
    this.dataListener = listener;
    this.scheduleDelivery();
  }

  onClose(listener: (error?: Error) => void): void {
    this.closeListeners.push(listener);
  }

  onDrain(listener: () => void): void {
    this.drainListener = listener;
  }

  private scheduleDelivery(): void {
    if (this.deliveryScheduled || this.closed) return;
    this.deliveryScheduled = true;
    schedule(() => {
      this.deliveryScheduled = false;
      this.deliver();
    });
  }

  private deliver(): void {
    if (this.closed) return;
    while (!this.paused && this.dataListener !== undefined && this.inbound.length > 0) {
      const chunk = this.inbound.shift()!;
      this.inboundBytes -= chunk.length;
      this.dataListener(chunk);
      if (this.closed) return;
    }
    if (this.inboundBytes === 0 || this.inboundBytes < this.peer.highWaterMark) this.peer.drained();
    if (this.eof && this.inbound.length === 0) {
      // The peer's close completes once its bytes and the EOF reached us; we close as a socket
      // without half-open support would.
      this.finish();
      this.peer.finish();
    }
  }

  private drained(): void {
    if (!this.needDrain || this.closed || this.closing) return;
    this.needDrain = false;
    const listener = this.drainListener;
    if (listener !== undefined) listener();
  }

  /** Ends this side: no more data, onClose listeners once. */
  finish(error?: Error): void {
    if (this.closed) return;
    this.closed = true;
    this.closing = true;
    this.inbound.length = 0;
    this.inboundBytes = 0;
    const listeners = this.closeListeners;
    this.closeListeners = [];
    for (const listener of listeners) listener(error);
    // If we closed without the peer asking, it sees EOF after its buffered bytes.
    if (!this.peer.closed) {
      this.peer.eof = true;
      this.peer.scheduleDelivery();
    }
  }
}

/** A transport of in-process pipes, for tests and embedding. */
export function memoryTransport(options: MemoryTransportOptions = {}): MemoryTransport {
  const highWaterMark = options.highWaterMark ?? 64 * 1024;
  let accept: ((duplex: Duplex) => void) | undefined;
  let nextId = 1;
  return {
    name: "memory",
    listen(acceptFn) {
      accept = acceptFn;
      return Promise.resolve();
    },
    close() {
      accept = undefined;
      return Promise.resolve();
    },
    address() {
      return accept === undefined ? undefined : { host: "memory", port: 0 };
    },
    connect() {
      const acceptFn = accept;
      if (acceptFn === undefined) throw new Error("memory transport is not listening");
      const id = nextId++;
      const server = new PipeEnd(`memory:${id}`, highWaterMark);
      const client = new PipeEnd("memory:broker", highWaterMark);
      server.peer = client;
      client.peer = server;
      // Accept asynchronously, as a socket server would.
      schedule(() => acceptFn(server));
      return client;
    },
  };
}
