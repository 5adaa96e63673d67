// What an embedder plugs into createBroker(): auth hooks (sync or async) and event callbacks,
// plus a minimal logger. All optional.
import type { QoS } from "@harbormq/codec";
import type { BrokerEvent } from "@harbormq/core";

export interface AuthenticateContext {
  readonly clientId: string;
  readonly username: string | undefined;
  readonly password: Uint8Array | undefined;
  readonly remote: string;
}
export interface AuthorizePublishContext {
  readonly clientId: string;
  readonly topic: string;
  readonly qos: QoS;
  readonly retain: boolean;
}
export interface AuthorizeSubscribeContext {
  readonly clientId: string;
  readonly filter: string;
  readonly qos: QoS;
}

/** `true` accepts, `false` refuses (0x86 for authenticate, 0x87 otherwise), or an explicit verdict. */
export type Verdict = boolean | { readonly ok: true } | { readonly ok: false; readonly reasonCode: number };
type MaybePromise<T> = T | Promise<T>;

export interface Hooks {
  authenticate?(ctx: AuthenticateContext): MaybePromise<Verdict>;
  authorizePublish?(ctx: AuthorizePublishContext): MaybePromise<Verdict>;
  /** `true` grants the requested QoS, `false` refuses (0x80), a number 0..2 grants that QoS, a
   *  number >= 0x80 refuses with that reason code (MQTT 5). */
  authorizeSubscribe?(ctx: AuthorizeSubscribeContext): MaybePromise<boolean | number>;
  onClientConnected?(event: Extract<BrokerEvent, { type: "client-connected" }>): void;
  onClientDisconnected?(event: Extract<BrokerEvent, { type: "client-disconnected" }>): void;
  onMessagePublished?(event: Extract<BrokerEvent, { type: "message-published" }>): void;
  onMessageDropped?(event: Extract<BrokerEvent, { type: "message-dropped" }>): void;
  /** Every event, including the ones above. */
  onEvent?(event: BrokerEvent): void;
}

/** Structured logging; each method is optional (pino, console or nothing fit). */
export interface Logger {
  debug?(message: string, fields?: Record<string, unknown>): void;
  info?(message: string, fields?: Record<string, unknown>): void;
  warn?(message: string, fields?: Record<string, unknown>): void;
  error?(message: string, fields?: Record<string, unknown>): void;
}
