import { describe, expect, it } from "vitest";
import { parseFlags } from "../src/args.js";

describe("harbormq flags", () => {
  it("has defaults that need no setup", () => {
    const r = parseFlags([]);
    expect(r).toEqual({
      ok: true,
      flags: {
        help: false,
        version: false,
        config: undefined,
        port: undefined,
        host: undefined,
        wsPort: undefined,
        wsPath: undefined,
        tlsPort: undefined,
        cert: undefined,
        key: undefined,
        data: undefined,
        memory: false,
        verbose: false,
        json: false,
      },
    });
  });

  it("parses short and long flags", () => {
    const r = parseFlags(["-p", "1884", "-c", "x.json", "-v", "--ws-port=9001", "--tls-port", "8883", "--cert", "c.pem", "--key", "k.pem", "--host", "127.0.0.1", "--json", "--memory"]);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.flags).toMatchObject({
      port: 1884,
      config: "x.json",
      verbose: true,
      wsPort: 9001,
      tlsPort: 8883,
      cert: "c.pem",
      key: "k.pem",
      host: "127.0.0.1",
      json: true,
      memory: true,
    });
  });

  it.each([
    [["-p", "70000"], "--port expects a port number 0..65535, got \"70000\""],
    [["-p", "abc"], "--port expects a port number"],
    [["--ws-port", "-1"], "--ws-port"],
    [["--bogus"], "Unknown option '--bogus'"],
    [["extra"], 'unexpected argument "extra"'],
    [["--memory", "--data", "d"], "--memory and --data exclude each other"],
    [["--ws-path", "mqtt"], "--ws-path must start with"],
  ])("rejects %j", (argv, message) => {
    const r = parseFlags(argv);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toContain(message);
  });
});
