// Validation of createBroker() options at the composition boundary (io-ts + fp-ts Either):
// every error names the key and the expected type. Not used on the per-packet path.
import { defaultConfig, type BrokerConfig } from "@harbormq/core";
import * as E from "fp-ts/lib/Either.js";
import { pipe } from "fp-ts/lib/function.js";
import * as t from "io-ts";

const nonNegative = t.refinement(t.number, (n) => n >= 0 && !Number.isNaN(n), "non-negative number");
/** Limits where 0 would stop the broker: no window to send or page through, no packet size. */
const atLeastOne = t.refinement(t.number, (n) => n >= 1, "number >= 1");

/** Keys whose type is narrower than the type of their default value. */
const special: Partial<Record<keyof BrokerConfig, t.Mixed>> = {
  maxQos: t.union([t.literal(0), t.literal(1), t.literal(2)]),
  overflowPolicy: t.union([t.literal("drop-new"), t.literal("drop-oldest")]),
  maxInflight: atLeastOne,
  queueWindow: atLeastOne,
  queueWindowBytes: atLeastOne,
  maxPacketSize: atLeastOne,
  keepAliveFactor: atLeastOne,
  connectTimeout: atLeastOne,
};

function codecFor(key: string, value: unknown): t.Mixed {
  const narrow = special[key as keyof BrokerConfig];
  if (narrow !== undefined) return narrow;
  switch (typeof value) {
    case "number":
      return nonNegative;
    case "boolean":
      return t.boolean;
    default:
      return t.string;
  }
}

/** Built from `defaultConfig`, so a limit the core adds is validated without touching this file. */
const configProps: t.Props = Object.fromEntries(
  Object.entries(defaultConfig).map(([key, value]) => [key, codecFor(key, value)]),
);
export const PartialConfig = t.exact(t.partial(configProps), "Partial<BrokerConfig>");

const fn = new t.Type<(...args: never[]) => unknown>(
  "function",
  (u): u is (...args: never[]) => unknown => typeof u === "function",
  (u, c) => (typeof u === "function" ? t.success(u as (...args: never[]) => unknown) : t.failure(u, c)),
  t.identity,
);

const TransportShape = t.type({ name: t.string, listen: fn, close: fn, address: fn }, "Transport");
const StoreShape = t.type({ restore: fn, apply: fn, load: fn, close: fn }, "Store");
const hookNames = [
  "authenticate",
  "authorizePublish",
  "authorizeSubscribe",
  "onClientConnected",
  "onClientDisconnected",
  "onMessagePublished",
  "onMessageDropped",
  "onEvent",
] as const;
const HooksShape = t.exact(t.partial(Object.fromEntries(hookNames.map((h) => [h, fn]))), "Hooks");

export const BrokerOptionsShape = t.intersection([
  t.type({ transports: t.array(TransportShape) }),
  t.partial({
    store: StoreShape,
    config: PartialConfig,
    hooks: HooksShape,
    logger: t.UnknownRecord,
    shutdownTimeout: nonNegative,
    congestedBudget: nonNegative,
    maxPendingBytes: nonNegative,
  }),
]);

function describe(errors: t.Errors): string[] {
  return errors.map((error) => {
    const path = error.context
      .map((c) => c.key)
      .filter((k) => k !== "" && !/^\d+$/.test(k))
      .join(".");
    const expected = error.context[error.context.length - 1]?.type.name ?? "?";
    return `${path || "(options)"}: expected ${expected}, got ${JSON.stringify(error.value) ?? String(error.value)}`;
  });
}

/** Unknown config keys are errors too: a typo should not silently fall back to a default. */
function unknownKeys(config: unknown): string[] {
  if (typeof config !== "object" || config === null) return [];
  return Object.keys(config)
    .filter((k) => !(k in defaultConfig))
    .map((k) => `config.${k}: unknown key (known: ${Object.keys(defaultConfig).join(", ")})`);
}

/** Checks a partial configuration and completes it with the defaults. */
export function resolveConfig(config: unknown): E.Either<readonly string[], BrokerConfig> {
  const unknown = unknownKeys(config);
  if (unknown.length > 0) return E.left(unknown);
  return pipe(
    PartialConfig.decode(config ?? {}),
    E.mapLeft((errors) => describe(errors).map((m) => `config.${m}`)),
    E.map((partial) => ({ ...defaultConfig, ...(partial as Partial<BrokerConfig>) })),
  );
}

/** Checks the shape of createBroker() options (not the behaviour of the objects inside). */
export function checkOptions(options: unknown): E.Either<readonly string[], unknown> {
  const unknown =
    typeof options === "object" && options !== null ? unknownKeys((options as { config?: unknown }).config) : [];
  return pipe(
    BrokerOptionsShape.decode(options),
    E.mapLeft(describe),
    E.chain((o) => (unknown.length > 0 ? E.left(unknown) : E.right(o))),
  );
}
