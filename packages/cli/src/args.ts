// Command line flags of `harbormq`, in Mosquitto's spirit (-p, -c, -v), parsed with node:util
// parseArgs. Parsing never exits: it returns either the flags or a message for stderr.
import { parseArgs } from "node:util";

export interface CliFlags {
  readonly help: boolean;
  readonly version: boolean;
  readonly config: string | undefined;
  readonly port: number | undefined;
  readonly host: string | undefined;
  readonly wsPort: number | undefined;
  readonly wsPath: string | undefined;
  readonly tlsPort: number | undefined;
  readonly cert: string | undefined;
  readonly key: string | undefined;
  readonly data: string | undefined;
  readonly memory: boolean;
  readonly verbose: boolean;
  readonly json: boolean;
}

export type ParsedArgs = { readonly ok: true; readonly flags: CliFlags } | { readonly ok: false; readonly error: string };

export const usage = `Usage: harbormq [options]

Starts an MQTT 3.1 / 3.1.1 / 5.0 broker. With no options it listens on TCP port 1883 on all
interfaces and keeps sessions in ./harbormq-data.

Options:
  -p, --port PORT      TCP listener port (default 1883; 0 picks a free port)
      --host HOST      address the listeners bind (default :: or 0.0.0.0)
      --ws-port PORT   also listen for MQTT over WebSocket on PORT (path /mqtt)
      --ws-path PATH   WebSocket path (default /mqtt)
      --tls-port PORT  also listen for MQTT over TLS on PORT (needs --cert and --key)
      --cert FILE      TLS certificate (PEM)
      --key FILE       TLS private key (PEM)
  -c, --config FILE    JSON configuration file (see docs/configuration.md); flags override it
      --data DIR       directory of the session store (default ./harbormq-data)
      --memory         keep sessions in memory only (nothing is written to disk)
  -v, --verbose        debug logging: one line per packet
      --json           log JSON lines instead of text
  -h, --help           show this help and exit
      --version        print the version and exit
`;

function parsePort(flag: string, value: string | undefined): number | string | undefined {
  if (value === undefined) return undefined;
  if (!/^\d{1,5}$/.test(value) || Number(value) > 65535) {
    return `harbormq: ${flag} expects a port number 0..65535, got ${JSON.stringify(value)}`;
  }
  return Number(value);
}

export function parseFlags(argv: readonly string[]): ParsedArgs {
  let values;
  let positionals;
  try {
    ({ values, positionals } = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: true,
      options: {
        help: { type: "boolean", short: "h" },
        version: { type: "boolean" },
        config: { type: "string", short: "c" },
        port: { type: "string", short: "p" },
        host: { type: "string" },
        "ws-port": { type: "string" },
        "ws-path": { type: "string" },
        "tls-port": { type: "string" },
        cert: { type: "string" },
        key: { type: "string" },
        data: { type: "string" },
        memory: { type: "boolean" },
        verbose: { type: "boolean", short: "v" },
        json: { type: "boolean" },
      },
    }));
  } catch (err) {
    return { ok: false, error: `harbormq: ${(err as Error).message}\nTry 'harbormq --help'.` };
  }
  if (positionals.length > 0) {
    return { ok: false, error: `harbormq: unexpected argument ${JSON.stringify(positionals[0])}\nTry 'harbormq --help'.` };
  }
  // An empty value is a mistake, mostly an unset variable (`--host "$HOST"`): an empty --host
  // would bind every interface without a word, while "host": "" in the file is refused (found
  // by review).
  for (const name of ["host", "data", "cert", "key", "config"] as const) {
    if (values[name] === "") return { ok: false, error: `harbormq: --${name} needs a non-empty value\nTry 'harbormq --help'.` };
  }
  const port = parsePort("--port", values.port);
  const wsPort = parsePort("--ws-port", values["ws-port"]);
  const tlsPort = parsePort("--tls-port", values["tls-port"]);
  for (const p of [port, wsPort, tlsPort]) if (typeof p === "string") return { ok: false, error: p };
  if (values.memory === true && values.data !== undefined) {
    return { ok: false, error: "harbormq: --memory and --data exclude each other" };
  }
  const wsPath = values["ws-path"];
  if (wsPath !== undefined && !wsPath.startsWith("/")) {
    return { ok: false, error: `harbormq: --ws-path must start with "/", got ${JSON.stringify(wsPath)}` };
  }
  return {
    ok: true,
    flags: {
      help: values.help ?? false,
      version: values.version ?? false,
      config: values.config,
      port: port as number | undefined,
      host: values.host,
      wsPort: wsPort as number | undefined,
      wsPath,
      tlsPort: tlsPort as number | undefined,
      cert: values.cert,
      key: values.key,
      data: values.data,
      memory: values.memory ?? false,
      verbose: values.verbose ?? false,
      json: values.json ?? false,
    },
  };
}
