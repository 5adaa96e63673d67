// A helper for socket-server transports (TCP, TLS, WebSocket): bind once, cleanly.

/** The part of a node:net / node:http server that bindServer uses. */
export interface BindableServer {
  once(event: string, listener: (...args: any[]) => void): unknown; // Node's own listener type
  off(event: string, listener: (...args: any[]) => void): unknown;
}

/**
 * Calls `listen` (which binds `server`) and resolves `true` once the server listens, `false` with
 * `onFailure(error)` called once when it cannot (EADDRINUSE, or an invalid port or host, which
 * throws at once). Either way the listeners it added are removed, so that a failed attempt leaves
 * nothing behind for a retry.
 */
export function bindServer(server: BindableServer, listen: () => void, onFailure: (error: unknown) => void): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const listening = (): void => {
      server.off("error", failed);
      resolve(true);
    };
    const failed = (error: unknown): void => {
      server.off("listening", listening);
      server.off("error", failed);
      onFailure(error);
      resolve(false);
    };
    server.once("listening", listening);
    server.once("error", failed);
    try {
      listen();
    } catch (error) {
      failed(error);
    }
  });
}
