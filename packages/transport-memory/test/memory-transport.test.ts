import { describe, expect, it } from "vitest";
import { memoryTransport, type MemoryTransport } from "@harbormq/transport-memory";
import { checkOrderedStream, transportConformance, Sink, until } from "../../broker/test/transport-conformance.js";

transportConformance("memory", () => memoryTransport(), async (t) => (t as MemoryTransport).connect());

describe("memoryTransport", () => {
  it("refuses connect() before listen() and after close()", async () => {
    const t = memoryTransport();
    expect(() => t.connect()).toThrow(/not listening/);
    await t.listen(() => {});
    t.connect().close();
    await t.close();
    expect(() => t.connect()).toThrow(/not listening/);
    expect(t.address()).toBeUndefined();
  });

  it("applies its high-water mark to the reader's backlog", async () => {
    const t = memoryTransport({ highWaterMark: 10 });
    let server: Sink | undefined;
    await t.listen((d) => (server = new Sink(d)));
    const client = t.connect();
    await until(() => server !== undefined);
    server!.duplex.pause();
    expect(client.write(new Uint8Array(6))).toBe(true);
    expect(client.write(new Uint8Array(6))).toBe(false);
    server!.duplex.resume();
    await until(() => server!.bytes === 12);
  });
});

describe("MQTT 3.1.1", () => {
  it("[MQTT-7.1.1-1] carries an ordered, lossless two-way byte stream", () => checkOrderedStream(() => memoryTransport(), async (t) => (t as MemoryTransport).connect()));
});
describe("MQTT 5.0", () => {
  it("[MQTT-4.2.0-1] carries an ordered, lossless two-way byte stream", () => checkOrderedStream(() => memoryTransport(), async (t) => (t as MemoryTransport).connect()));
});
