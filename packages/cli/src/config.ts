// The configuration file of `harbormq` (JSON): its io-ts schema, an error reporter that names
// the key path, the value and what was expected, and the merge with command line flags.
// Unknown keys are errors: a typo must not silently fall back to a default.
import * as t from "io-ts";
import { isLeft } from "fp-ts/lib/Either.js";
import { defaultConfig } from "@harbormq/core";
import type { BrokerConfig } from "@harbormq/core";
import type { CliFlags } from "./args.js";

// ---------------------------------------------------------------------------------------------
// Combinators. io-ts's own `t.exact` strips unknown keys and `t.union` reports every branch; these
// give exactly one error per mistake, with a message saying what was expected.

const hasOwn = (o: object, k: string): boolean => Object.prototype.hasOwnProperty.call(o, k);

function describe(u: unknown): string {
  if (u === undefined) return "undefined";
  if (typeof u === "number" && !Number.isFinite(u)) return String(u);
  try {
    const s = JSON.stringify(u);
    return s.length > 60 ? `${s.slice(0, 57)}...` : s;
  } catch {
    return String(u);
  }
}

/** An integer in [min, max]. */
function int(min: number, max: number): t.Type<number, number, unknown> {
  const name = max === Number.MAX_SAFE_INTEGER ? `an integer >= ${min}` : `an integer from ${min} to ${max}`;
  return new t.Type<number, number, unknown>(
    name,
    (u): u is number => typeof u === "number" && Number.isInteger(u) && u >= min && u <= max,
    (u, c) =>
      typeof u === "number" && Number.isInteger(u) && u >= min && u <= max ? t.success(u) : t.failure(u, c, name),
    t.identity,
  );
}

/** A finite number >= min. */
function num(min: number): t.Type<number, number, unknown> {
  const name = `a number >= ${min}`;
  return new t.Type<number, number, unknown>(
    name,
    (u): u is number => typeof u === "number" && Number.isFinite(u) && u >= min,
    (u, c) => (typeof u === "number" && Number.isFinite(u) && u >= min ? t.success(u) : t.failure(u, c, name)),
    t.identity,
  );
}

/** One of a few literal values. */
function oneOf<const V extends string | number | boolean>(values: readonly V[]): t.Type<V, V, unknown> {
  const name = `one of ${values.map((v) => JSON.stringify(v)).join(", ")}`;
  const is = (u: unknown): u is V => values.includes(u as V);
  return new t.Type<V, V, unknown>(name, is, (u, c) => (is(u) ? t.success(u) : t.failure(u, c, name)), t.identity);
}

const str = new t.Type<string, string, unknown>(
  "a string",
  (u): u is string => typeof u === "string",
  (u, c) => (typeof u === "string" ? t.success(u) : t.failure(u, c, "a string")),
  t.identity,
);
const nonEmpty = new t.Type<string, string, unknown>(
  "a non-empty string",
  (u): u is string => typeof u === "string" && u.length > 0,
  (u, c) => (typeof u === "string" && u.length > 0 ? t.success(u) : t.failure(u, c, "a non-empty string")),
  t.identity,
);
const bool = new t.Type<boolean, boolean, unknown>(
  "true or false",
  (u): u is boolean => typeof u === "boolean",
  (u, c) => (typeof u === "boolean" ? t.success(u) : t.failure(u, c, "true or false")),
  t.identity,
);

/** `a` or the literal `word` (JSON has no Infinity: "unlimited", "never"). */
function orWord<A>(a: t.Type<A, A, unknown>, word: string): t.Type<A | string, A | string, unknown> {
  const name = `${a.name} or ${JSON.stringify(word)}`;
  return new t.Type<A | string, A | string, unknown>(
    name,
    (u): u is A | string => u === word || a.is(u),
    (u, c) => (u === word ? t.success(word) : a.is(u) ? t.success(u) : t.failure(u, c, name)),
    t.identity,
  );
}

type Required<P extends t.Props> = { [K in keyof P]: t.TypeOf<P[K]> };
type Optional<P extends t.Props> = { [K in keyof P]?: t.TypeOf<P[K]> };

/** An object with `required` and `optional` keys and no others. */
function closed<R extends t.Props, O extends t.Props>(
  name: string,
  required: R,
  optional: O,
): t.Type<Required<R> & Optional<O>, unknown, unknown> {
  type A = Required<R> & Optional<O>;
  const keys = [...Object.keys(required), ...Object.keys(optional)];
  const validate = (u: unknown, c: t.Context): t.Validation<A> => {
    if (typeof u !== "object" || u === null || Array.isArray(u)) return t.failure(u, c, `an object (${name})`);
    const o = u as Record<string, unknown>;
    const errors: t.ValidationError[] = [];
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(o)) {
      if (!keys.includes(k)) {
        errors.push({
          value: o[k],
          context: [...c, { key: k, type: t.never, actual: o[k] }],
          message: `no such key; ${name} takes ${keys.join(", ")}`,
        });
      }
    }
    for (const [k, type] of Object.entries(required)) {
      if (!hasOwn(o, k)) {
        errors.push({ value: undefined, context: [...c, { key: k, type, actual: undefined }], message: `${type.name} (required)` });
        continue;
      }
      const r = type.validate(o[k], [...c, { key: k, type, actual: o[k] }]);
      if (isLeft(r)) errors.push(...r.left);
      else out[k] = r.right;
    }
    for (const [k, type] of Object.entries(optional)) {
      if (!hasOwn(o, k)) continue;
      const r = type.validate(o[k], [...c, { key: k, type, actual: o[k] }]);
      if (isLeft(r)) errors.push(...r.left);
      else out[k] = r.right;
    }
    return errors.length > 0 ? t.failures(errors) : t.success(out as A);
  };
  return new t.Type<A, unknown, unknown>(name, (u): u is A => !isLeft(validate(u, [])), validate, t.identity);
}

/** An array whose elements are validated with `item`. */
function arrayOf<A>(item: t.Type<A, unknown, unknown>): t.Type<A[], unknown, unknown> {
  const validate = (u: unknown, c: t.Context): t.Validation<A[]> => {
    if (!Array.isArray(u)) return t.failure(u, c, `an array of ${item.name}`);
    const errors: t.ValidationError[] = [];
    const out: A[] = [];
    u.forEach((v, i) => {
      const r = item.validate(v, [...c, { key: String(i), type: item, actual: v }]);
      if (isLeft(r)) errors.push(...r.left);
      else out.push(r.right);
    });
    return errors.length > 0 ? t.failures(errors) : t.success(out);
  };
  return new t.Type<A[], unknown, unknown>(`array of ${item.name}`, (u): u is A[] => !isLeft(validate(u, [])), validate, t.identity);
}

/** Picks the codec of an object by its `type` key. */
function tagged<M extends Record<string, t.Type<any, unknown, unknown>>>(
  name: string,
  members: M,
): t.Type<t.TypeOf<M[keyof M]>, unknown, unknown> {
  const tags = Object.keys(members);
  const validate = (u: unknown, c: t.Context): t.Validation<t.TypeOf<M[keyof M]>> => {
    if (typeof u !== "object" || u === null || Array.isArray(u)) return t.failure(u, c, `an object (${name})`);
    const tag = (u as Record<string, unknown>)["type"];
    const member = typeof tag === "string" && hasOwn(members, tag) ? members[tag] : undefined;
    if (member === undefined) {
      return t.failures([
        {
          value: tag,
          context: [...c, { key: "type", type: t.never, actual: tag }],
          message: `one of ${tags.map((x) => JSON.stringify(x)).join(", ")}`,
        },
      ]);
    }
    return member.validate(u, c);
  };
  return new t.Type<t.TypeOf<M[keyof M]>, unknown, unknown>(name, (u): u is t.TypeOf<M[keyof M]> => !isLeft(validate(u, [])), validate, t.identity);
}

// ---------------------------------------------------------------------------------------------
// The schema.

const port = int(0, 65535);

const TcpListener = closed("a tcp listener", { type: oneOf(["tcp"]) }, { port, host: nonEmpty });
const TlsListener = closed("a tls listener", { type: oneOf(["tls"]), cert: nonEmpty, key: nonEmpty }, { port, host: nonEmpty });
const WsListener = closed(
  "a ws listener",
  { type: oneOf(["ws"]) },
  {
    port,
    host: nonEmpty,
    path: new t.Type<string, string, unknown>(
      'a path starting with "/"',
      (u): u is string => typeof u === "string" && u.startsWith("/"),
      (u, c) => (typeof u === "string" && u.startsWith("/") ? t.success(u) : t.failure(u, c, 'a path starting with "/"')),
      t.identity,
    ),
  },
);
const Listener = tagged("a listener", { tcp: TcpListener, tls: TlsListener, ws: WsListener });

const LogLevel = oneOf(["error", "warn", "info", "debug"]);
export type LogLevel = t.TypeOf<typeof LogLevel>;
const LogFormat = oneOf(["text", "json"]);
export type LogFormat = t.TypeOf<typeof LogFormat>;
const Synchronous = oneOf(["full", "normal"]);
export type Synchronous = t.TypeOf<typeof Synchronous>;

/** The keys of BrokerConfig a file may set (hook switches are for embedders, not the CLI). */
const brokerKeys = {
  maxQos: oneOf([0, 1, 2]),
  maxInflight: int(1, 65535),
  maxQueuedMessages: int(1, Number.MAX_SAFE_INTEGER),
  maxQueuedBytes: orWord(int(1, Number.MAX_SAFE_INTEGER), "unlimited"),
  overflowPolicy: oneOf(["drop-new", "drop-oldest"]),
  queueQos0: bool,
  queueWindow: int(1, Number.MAX_SAFE_INTEGER),
  queueWindowBytes: int(1, Number.MAX_SAFE_INTEGER),
  topicAliasMaximum: int(0, 65535),
  sendHorizonStep: int(0, 1_000_000_000),
  persistentSessionExpiry: orWord(int(0, 0xffffffff), "never"),
  maxPacketSize: int(2, 268_435_460),
  keepAliveFactor: num(1),
  connectTimeout: int(1, 2_147_483_647),
  maxClientIdLength: int(23, 65535),
  willOnShutdown: bool,
  assignedIdPrefix: str,
  observePublishes: bool,
};

export const ConfigFile = closed(
  "the configuration",
  {},
  {
    listeners: arrayOf(Listener),
    logging: closed("logging", {}, { level: LogLevel, format: LogFormat }),
    persistence: closed("persistence", {}, { dir: nonEmpty, memory: bool, synchronous: Synchronous }),
    ...brokerKeys,
  },
);
export type ConfigFile = t.TypeOf<typeof ConfigFile>;

/** One line per error: `listeners.0.port: got 70000, expected an integer from 0 to 65535`. */
export function reportErrors(errors: t.Errors): string[] {
  const lines: string[] = [];
  for (const e of errors) {
    const path = e.context
      .map((c) => c.key)
      .filter((k) => k !== "")
      .join(".");
    const expected = e.message ?? e.context[e.context.length - 1]?.type.name ?? "?";
    const where = path === "" ? "(top level)" : path;
    lines.push(
      e.message?.startsWith("no such key")
        ? `${where}: ${e.message}`
        : `${where}: got ${describe(e.value)}, expected ${expected}`,
    );
  }
  return [...new Set(lines)];
}

export type Parsed<A> = { readonly ok: true; readonly value: A } | { readonly ok: false; readonly errors: readonly string[] };

/** Validates parsed JSON against the schema. */
export function decodeConfig(json: unknown): Parsed<ConfigFile> {
  const r = ConfigFile.decode(json);
  return isLeft(r) ? { ok: false, errors: reportErrors(r.left) } : { ok: true, value: r.right };
}

/** Parses the text of a configuration file. */
export function parseConfigText(text: string): Parsed<ConfigFile> {
  let json: unknown;
  try {
    // A UTF-8 byte order mark (Windows editors, PowerShell's Out-File) is not JSON, but it is
    // invisible in the error message: skip it.
    json = JSON.parse(text.startsWith("\uFEFF") ? text.slice(1) : text);
  } catch (err) {
    return { ok: false, errors: [`not valid JSON: ${(err as Error).message}`] };
  }
  return decodeConfig(json);
}

// ---------------------------------------------------------------------------------------------
// Resolved settings: the file merged with the flags and the defaults.

export type ListenerSettings =
  /** `host` undefined: all interfaces (IPv6 and IPv4 where available, else IPv4). */
  | { readonly type: "tcp"; readonly port: number; readonly host: string | undefined }
  /** `certFrom` / `keyFrom`: where each path came from, for errors ("--cert", "listeners.0.key"). */
  | {
      readonly type: "tls";
      readonly port: number;
      readonly host: string | undefined;
      readonly cert: string;
      readonly key: string;
      readonly certFrom: string;
      readonly keyFrom: string;
    }
  | { readonly type: "ws"; readonly port: number; readonly host: string | undefined; readonly path: string };

export type PersistenceSettings =
  | { readonly kind: "memory" }
  | { readonly kind: "sqlite"; readonly dir: string; readonly synchronous: Synchronous | undefined };

export interface Settings {
  readonly listeners: readonly ListenerSettings[];
  readonly broker: BrokerConfig;
  readonly logging: { readonly level: LogLevel; readonly format: LogFormat };
  readonly persistence: PersistenceSettings;
}

export const defaultPorts = { tcp: 1883, tls: 8883, ws: 8080 } as const;
export const defaultDataDir = "./harbormq-data";

/** Merges flags over the file over the defaults. Errors are for stderr (no key path prefix). */
export function resolveSettings(file: ConfigFile, flags: CliFlags): Parsed<Settings> {
  const errors: string[] = [];
  const fileListeners = file.listeners ?? [{ type: "tcp" as const }];
  let listeners: ListenerSettings[] = fileListeners.map((l, index): ListenerSettings => {
    switch (l.type) {
      case "tcp":
        return { type: "tcp", port: l.port ?? defaultPorts.tcp, host: l.host };
      case "tls":
        return {
          type: "tls",
          port: l.port ?? defaultPorts.tls,
          host: l.host,
          cert: l.cert,
          key: l.key,
          certFrom: `listeners.${index}.cert`,
          keyFrom: `listeners.${index}.key`,
        };
      case "ws":
        return { type: "ws", port: l.port ?? defaultPorts.ws, host: l.host, path: l.path ?? "/mqtt" };
    }
  });
  // A port flag replaces the listeners of its kind with one on that port. It keeps the first
  // one's bind address (and path, cert, key): `-p` changes a port, it must not turn a listener
  // bound to 127.0.0.1 into one open on every interface (found by review). --host, applied
  // below, is the way to change the address.
  if (flags.port !== undefined) {
    const first = listeners.find((l) => l.type === "tcp");
    listeners = [{ type: "tcp", port: flags.port, host: first?.host }, ...listeners.filter((l) => l.type !== "tcp")];
  }
  if (flags.wsPort !== undefined) {
    const first = listeners.find((l) => l.type === "ws");
    listeners = [
      ...listeners.filter((l) => l.type !== "ws"),
      { type: "ws", port: flags.wsPort, host: first?.host, path: flags.wsPath ?? first?.path ?? "/mqtt" },
    ];
  } else if (flags.wsPath !== undefined) {
    if (!listeners.some((l) => l.type === "ws")) errors.push("--ws-path needs --ws-port or a ws listener in the config");
    listeners = listeners.map((l) => (l.type === "ws" ? { ...l, path: flags.wsPath! } : l));
  }
  if (flags.tlsPort !== undefined) {
    const first = listeners.find((l) => l.type === "tls");
    const cert = flags.cert ?? first?.cert;
    const key = flags.key ?? first?.key;
    if (cert === undefined || key === undefined) errors.push("--tls-port needs --cert FILE and --key FILE");
    else {
      const certFrom = flags.cert !== undefined ? "--cert" : (first?.certFrom ?? "--cert");
      const keyFrom = flags.key !== undefined ? "--key" : (first?.keyFrom ?? "--key");
      listeners = [
        ...listeners.filter((l) => l.type !== "tls"),
        { type: "tls", port: flags.tlsPort, host: first?.host, cert, key, certFrom, keyFrom },
      ];
    }
  } else if (flags.cert !== undefined || flags.key !== undefined) {
    if (!listeners.some((l) => l.type === "tls")) errors.push("--cert and --key need --tls-port");
    listeners = listeners.map((l) =>
      l.type !== "tls"
        ? l
        : {
            ...l,
            ...(flags.cert !== undefined && { cert: flags.cert, certFrom: "--cert" }),
            ...(flags.key !== undefined && { key: flags.key, keyFrom: "--key" }),
          },
    );
  }
  if (flags.host !== undefined) listeners = listeners.map((l) => ({ ...l, host: flags.host }));
  if (listeners.length === 0) errors.push("no listeners: give at least one in the config or with -p");
  // Two listeners on one explicit port would fail at bind time with a less helpful message.
  const seen = new Map<string, ListenerSettings>();
  for (const l of listeners) {
    if (l.port === 0) continue;
    const k = `${l.host ?? "*"}:${l.port}`;
    const other = seen.get(k);
    if (other !== undefined) errors.push(`listeners ${other.type} and ${l.type} both use port ${l.port}`);
    seen.set(k, l);
  }

  const logging = {
    level: flags.verbose ? ("debug" as const) : (file.logging?.level ?? "info"),
    format: flags.json ? ("json" as const) : (file.logging?.format ?? "text"),
  };

  const broker: BrokerConfig = {
    ...defaultConfig,
    ...(file.maxQos !== undefined && { maxQos: file.maxQos }),
    ...(file.maxInflight !== undefined && { maxInflight: file.maxInflight }),
    ...(file.maxQueuedMessages !== undefined && { maxQueuedMessages: file.maxQueuedMessages }),
    ...(file.maxQueuedBytes !== undefined && {
      maxQueuedBytes: file.maxQueuedBytes === "unlimited" ? Infinity : (file.maxQueuedBytes as number),
    }),
    ...(file.overflowPolicy !== undefined && { overflowPolicy: file.overflowPolicy }),
    ...(file.queueQos0 !== undefined && { queueQos0: file.queueQos0 }),
    ...(file.queueWindow !== undefined && { queueWindow: file.queueWindow }),
    ...(file.queueWindowBytes !== undefined && { queueWindowBytes: file.queueWindowBytes }),
    ...(file.topicAliasMaximum !== undefined && { topicAliasMaximum: file.topicAliasMaximum }),
    ...(file.sendHorizonStep !== undefined && { sendHorizonStep: file.sendHorizonStep }),
    ...(file.persistentSessionExpiry !== undefined && {
      persistentSessionExpiry:
        file.persistentSessionExpiry === "never" ? 0xffffffff : (file.persistentSessionExpiry as number),
    }),
    ...(file.maxPacketSize !== undefined && { maxPacketSize: file.maxPacketSize }),
    ...(file.keepAliveFactor !== undefined && { keepAliveFactor: file.keepAliveFactor }),
    ...(file.connectTimeout !== undefined && { connectTimeout: file.connectTimeout }),
    ...(file.maxClientIdLength !== undefined && { maxClientIdLength: file.maxClientIdLength }),
    ...(file.willOnShutdown !== undefined && { willOnShutdown: file.willOnShutdown }),
    ...(file.assignedIdPrefix !== undefined && { assignedIdPrefix: file.assignedIdPrefix }),
    // The CLI uses message-published events only for debug lines: below debug, skip them
    // (an event per PUBLISH otherwise) unless the file asks for them.
    observePublishes: file.observePublishes ?? logging.level === "debug",
  };

  const p = file.persistence;
  let persistence: PersistenceSettings;
  if (flags.memory) persistence = { kind: "memory" };
  else if (flags.data !== undefined) persistence = { kind: "sqlite", dir: flags.data, synchronous: p?.synchronous };
  else if (p?.memory === true) {
    if (p.dir !== undefined) errors.push('persistence: "memory": true and "dir" exclude each other');
    persistence = { kind: "memory" };
  } else persistence = { kind: "sqlite", dir: p?.dir ?? defaultDataDir, synchronous: p?.synchronous };

  if (errors.length > 0) return { ok: false, errors };
  return { ok: true, value: { listeners, broker, logging, persistence } };
}
