// The packet tracer of -v wraps every connection: it must hand the driver the whole Duplex,
// destroy() included, or the driver's hard cut-offs silently become close().
import { describe, expect, it } from "vitest";
import type { Duplex, Transport } from "@harbormq/broker";
import { createLogger } from "../src/log.js";
import { traceTransport } from "../src/start.js";

/** A Duplex that records which of its members were called. */
function recordingDuplex(withDestroy: boolean): { duplex: Duplex; calls: string[] } {
  const calls: string[] = [];
  const duplex: Duplex = {
    remote: "10.0.0.1:5000",
    write: () => (calls.push("write"), true),
    close: () => void calls.push("close"),
    ...(withDestroy ? { destroy: () => void calls.push("destroy") } : {}),
    pause: () => void calls.push("pause"),
    resume: () => void calls.push("resume"),
    onData: () => void calls.push("onData"),
    onClose: () => void calls.push("onClose"),
    onDrain: () => void calls.push("onDrain"),
  };
  return { duplex, calls };
}

/** The connection `traceTransport` hands to the driver for `inner`. */
async function traced(inner: Duplex): Promise<Duplex> {
  const transport: Transport = {
    name: "fake",
    listen: async (accept) => accept(inner),
    close: async () => {},
    address: () => undefined,
  };
  const lines: string[] = [];
  const logger = createLogger({ level: "debug", format: "text" }, (l) => lines.push(l));
  let out: Duplex | undefined;
  await traceTransport(transport, logger, 1024).listen((d) => (out = d));
  return out!;
}

describe("traceTransport (-v)", () => {
  it("forwards every member of the connection, destroy() included", async () => {
    const { duplex, calls } = recordingDuplex(true);
    const d = await traced(duplex);
    expect(Object.keys(d).sort()).toEqual(Object.keys(duplex).sort());
    expect(d.remote).toBe(duplex.remote);
    d.write(new Uint8Array([0xc0, 0x00])); // PINGREQ, so the tracer decodes something
    d.pause();
    d.resume();
    d.onData(() => {});
    d.onClose(() => {});
    d.onDrain(() => {});
    d.destroy?.();
    d.close();
    expect(calls).toEqual(["write", "pause", "resume", "onData", "onClose", "onDrain", "destroy", "close"]);
  });

  it("leaves destroy() out for a connection that has none, so the driver knows to close() instead", async () => {
    const { duplex } = recordingDuplex(false);
    const d = await traced(duplex);
    expect(d.destroy).toBeUndefined();
  });
});
