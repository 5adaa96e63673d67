// A virtual-time simulator for the core (quinn's Pair::drive): fake clients that record what they
// receive, a driver that executes actions like the real one (a send waits until every earlier
// persist is durable), a store in maps that can hold confirmations back, fail, or crash.
import type {
  ConnectPacket,
  Packet,
  Properties,
  ProtocolVersion,
  PublishPacket,
  QoS,
  Subscription,
  Will,
} from "@harbormq/codec";
import {
  Broker,
  defaultConfig,
  type Action,
  type AuthVerdict,
  type BrokerConfig,
  type BrokerEvent,
  type ConnId,
  type OpId,
  type StoreWrite,
} from "@harbormq/core";
import { applyWrites, emptyStoreState, loadPage, snapshotOf, type StoreState } from "./fake-store.js";

export const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
export const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

// ---- client packet factories --------------------------------------------------------------

export interface ConnectOptions {
  clientId?: string;
  clean?: boolean;
  keepAlive?: number;
  will?: Partial<Will> & { topic: string };
  version?: ProtocolVersion;
  protocolName?: string;
  username?: string;
  sessionExpiry?: number;
  /** MQTT 5 Receive Maximum. */
  receiveMaximum?: number;
  /** Further MQTT 5 CONNECT properties (Maximum Packet Size, Topic Alias Maximum, ...). */
  properties?: Properties;
}

export function connectPacket(name: string, o: ConnectOptions = {}): ConnectPacket {
  const version = o.version ?? 4;
  const will: Will | undefined =
    o.will === undefined
      ? undefined
      : { topic: o.will.topic, payload: o.will.payload ?? enc("gone"), qos: o.will.qos ?? 0, retain: o.will.retain ?? false, properties: o.will.properties ?? {} };
  return {
    type: "connect",
    protocolName: o.protocolName ?? (version === 3 ? "MQIsdp" : "MQTT"),
    protocolVersion: version,
    clean: o.clean ?? true,
    keepAlive: o.keepAlive ?? 0,
    clientId: o.clientId ?? name,
    will,
    username: o.username,
    password: undefined,
    properties: {
      ...(o.sessionExpiry !== undefined && { sessionExpiryInterval: o.sessionExpiry }),
      ...(o.receiveMaximum !== undefined && { receiveMaximum: o.receiveMaximum }),
      ...o.properties,
    },
  };
}

export interface PublishOptions {
  retain?: boolean;
  dup?: boolean;
  packetId?: number;
  /** MQTT 5 PUBLISH properties. */
  properties?: Properties;
}

export function publishPacket(topic: string, payload: string | Uint8Array, qos: QoS, o: PublishOptions = {}): PublishPacket {
  return {
    type: "publish",
    topic,
    payload: typeof payload === "string" ? enc(payload) : payload,
    qos,
    retain: o.retain ?? false,
    dup: o.dup ?? false,
    packetId: qos === 0 ? undefined : (o.packetId ?? 1),
    properties: o.properties ?? {},
  };
}

export const sub = (topicFilter: string, qos: QoS = 0): Subscription => ({ topicFilter, qos, noLocal: false, retainAsPublished: false, retainHandling: 0 });

export const ack = <T extends "puback" | "pubrec" | "pubrel" | "pubcomp">(type: T, packetId: number) =>
  ({ type, packetId, reasonCode: 0, properties: {} }) as const;

// ---- the simulator ----------------------------------------------------------------------------

export interface Client {
  readonly name: string;
  conn: ConnId | undefined;
  /** Every packet received on the current and earlier connections, in order. */
  readonly received: Packet[];
  /** Close reason of the last connection that the broker closed (undefined while open). */
  closedReason: number | undefined;
  closedBy: "broker" | "client" | "crash" | undefined;
  nextPacketId: number;
}

type WireItem = { readonly kind: "persist"; readonly op: OpId; readonly writes: readonly StoreWrite[]; confirmed: boolean; failed: boolean } | { readonly kind: "action"; readonly action: Action };

export interface SimOptions {
  /** Confirm persists at once (default true). When false, call confirm()/confirmAll(). */
  autoStore?: boolean;
  /** Answers `authenticate`; undefined leaves the op pending (answer with sim.authed). */
  authenticate?: (c: ConnectPacket) => AuthVerdict | undefined;
  /** true allows, false refuses (0x87), a number refuses with that reason code, undefined leaves it pending. */
  authorizePublish?: (clientId: string, topic: string) => boolean | number | undefined;
  authorizeSubscribe?: (clientId: string, subs: readonly Subscription[]) => number[] | undefined;
}

export class Sim {
  broker: Broker;
  now = 0;
  store: StoreState = emptyStoreState();
  readonly clients = new Map<string, Client>();
  readonly events: BrokerEvent[] = [];
  /** Every action the broker emitted, in order (since the last crash). */
  readonly actions: Action[] = [];
  /** Every send the broker emitted but the driver still holds (behind an unconfirmed persist). */
  private wire: WireItem[] = [];
  private readonly byConn = new Map<ConnId, Client>();
  private nextConn = 1;
  private failNextPersist = 0;
  readonly pendingHooks: Action[] = [];
  autoStore: boolean;
  crashes = 0;
  /** Called as each packet reaches a client (while later sends may still be held). */
  onReceive: ((name: string, packet: Packet) => void) | undefined = undefined;

  constructor(
    readonly config: Partial<BrokerConfig> = {},
    readonly opts: SimOptions = {},
  ) {
    this.broker = new Broker(config);
    this.autoStore = opts.autoStore ?? true;
  }

  client(name: string): Client {
    let c = this.clients.get(name);
    if (c === undefined) {
      c = { name, conn: undefined, received: [], closedReason: undefined, closedBy: undefined, nextPacketId: 1 };
      this.clients.set(name, c);
    }
    return c;
  }

  input(i: Parameters<Broker["handle"]>[1]): void {
    this.broker.handle(this.now, i);
    this.drive();
  }

  /** Drains the broker and executes its actions like the driver does. */
  drive(): void {
    for (let a = this.broker.poll(); a !== undefined; a = this.broker.poll()) {
      this.actions.push(a);
      switch (a.type) {
        case "persist":
          this.wire.push({ kind: "persist", op: a.op, writes: a.writes, confirmed: false, failed: false });
          break;
        case "send":
        case "close":
        case "load":
          this.wire.push({ kind: "action", action: a });
          break;
        case "observe":
          this.events.push(a.event);
          break;
        case "authenticate": {
          const v = this.opts.authenticate?.(a.connect);
          if (v === undefined) this.pendingHooks.push(a);
          else this.later({ type: "authed", op: a.op, verdict: v, granted: undefined });
          break;
        }
        case "authorize-publish": {
          const v = this.opts.authorizePublish?.(a.clientId, a.topic);
          if (v === undefined) this.pendingHooks.push(a);
          else this.later({ type: "authed", op: a.op, verdict: v === true ? { ok: true } : { ok: false, reasonCode: v === false ? 0x87 : v }, granted: undefined });
          break;
        }
        case "authorize-subscribe": {
          const g = this.opts.authorizeSubscribe?.(a.clientId, a.subscriptions);
          if (g === undefined) this.pendingHooks.push(a);
          else this.later({ type: "authed", op: a.op, verdict: { ok: true }, granted: g });
          break;
        }
        default: {
          const never: never = a;
          throw new Error(`unknown action ${JSON.stringify(never)}`);
        }
      }
    }
    if (this.autoStore) for (const w of this.wire) if (w.kind === "persist" && !w.confirmed) this.settle(w, true);
    this.flushWire();
    const later = this.laterInputs;
    if (later.length > 0) {
      this.laterInputs = [];
      for (const i of later) this.broker.handle(this.now, i);
      this.drive();
    }
  }

  private laterInputs: Parameters<Broker["handle"]>[1][] = [];
  private later(i: Parameters<Broker["handle"]>[1]): void {
    this.laterInputs.push(i);
  }

  private settle(w: WireItem & { kind: "persist" }, ok: boolean): void {
    w.confirmed = true;
    if (ok && this.failNextPersist > 0) {
      this.failNextPersist--;
      ok = false;
    }
    w.failed = !ok;
    if (ok) applyWrites(this.store, w.writes);
    this.later({ type: "stored", op: w.op, ok });
  }

  /** Executes wire items from the front while no unconfirmed persist blocks them; behind one,
   *  an `unordered` send still goes unless an earlier send to its connection is held (the
   *  driver's rule). */
  private flushWire(): void {
    let blocked = false;
    const held = new Set<number>();
    const rest: WireItem[] = [];
    for (const w of this.wire) {
      if (w.kind === "persist") {
        if (!w.confirmed) blocked = true;
        if (blocked) rest.push(w);
        continue;
      }
      const a = w.action;
      if (blocked && !(a.type === "send" && a.unordered === true && !held.has(a.conn))) {
        rest.push(w);
        if (a.type === "send" || a.type === "close") held.add(a.conn);
        continue;
      }
      if (a.type === "send") {
        const c = this.byConn.get(a.conn);
        if (c !== undefined) {
          c.received.push(a.packet);
          this.onReceive?.(c.name, a.packet);
        }
      } else if (a.type === "close") {
        const c = this.byConn.get(a.conn);
        if (c !== undefined) {
          if (c.conn === a.conn) {
            c.conn = undefined;
            c.closedReason = a.reason;
            c.closedBy = "broker";
          }
          this.byConn.delete(a.conn);
          // The driver reports the socket closed.
          this.later({ type: "closed", conn: a.conn });
        }
      } else if (a.type === "load") {
        this.later({ type: "loaded", op: a.op, entries: loadPage(this.store, a.clientId, a.afterSeq, a.max) });
      }
    }
    this.wire = rest;
  }

  /** Unconfirmed persists, oldest first. */
  pendingPersists(): OpId[] {
    return this.wire.filter((w): w is WireItem & { kind: "persist" } => w.kind === "persist" && !w.confirmed).map((w) => w.op);
  }

  /** Confirms the oldest unconfirmed persist (ok or failed). */
  confirm(ok = true): boolean {
    const w = this.wire.find((x): x is WireItem & { kind: "persist" } => x.kind === "persist" && !x.confirmed);
    if (w === undefined) return false;
    this.settle(w, ok);
    this.flushWire();
    this.drive();
    return true;
  }

  confirmAll(): void {
    while (this.confirm(true));
  }

  failNext(n = 1): void {
    this.failNextPersist += n;
  }

  /** The process dies: unconfirmed writes and held sends are lost; a new broker restores. */
  crash(): void {
    this.crashes++;
    this.wire = [];
    this.laterInputs = [];
    this.pendingHooks.length = 0;
    for (const c of this.clients.values()) {
      if (c.conn !== undefined) {
        this.byConn.delete(c.conn);
        c.conn = undefined;
        c.closedBy = "crash";
        c.closedReason = undefined;
      }
    }
    this.actions.length = 0;
    // The store restores queue heads of the new process's window (which may differ from the old one).
    this.broker = new Broker(this.config, snapshotOf(this.store, this.config.queueWindow ?? defaultConfig.queueWindow));
    this.drive();
  }

  // ---- time -----------------------------------------------------------------------------------

  /** Moves virtual time forward by `ms`, ticking at every deadline on the way. */
  advance(ms: number): void {
    const end = this.now + ms;
    for (;;) {
      const d = this.broker.nextDeadline();
      if (d === undefined || d > end) break;
      this.now = Math.max(this.now, d);
      this.input({ type: "tick" });
    }
    this.now = end;
    this.input({ type: "tick" });
  }

  // ---- clients --------------------------------------------------------------------------------

  /** Opens a connection for the client; `takeover` keeps the old one open (the broker must close it). */
  open(name: string, takeover = false): Client {
    const c = this.client(name);
    if (c.conn !== undefined) {
      // A takeover leaves the old socket open for the broker to close; the client stops reading it.
      if (takeover) this.byConn.delete(c.conn);
      else this.drop(name);
    }
    const conn = this.nextConn++;
    c.conn = conn;
    c.closedReason = undefined;
    c.closedBy = undefined;
    this.byConn.set(conn, c);
    this.input({ type: "open", conn, remote: `sim:${name}` });
    return c;
  }

  /** Sends a packet from the client (no-op when it is not connected). */
  send(name: string, packet: Packet): void {
    const c = this.client(name);
    if (c.conn === undefined) return;
    this.input({ type: "packet", conn: c.conn, packet });
  }

  /** Opens a connection and sends CONNECT; returns the CONNACK (or undefined). */
  connect(name: string, o: ConnectOptions = {}, takeover = false) {
    const c = this.open(name, takeover);
    const before = c.received.length;
    this.send(name, connectPacket(name, o));
    return c.received.slice(before).find((p) => p.type === "connack");
  }

  /** Client sends DISCONNECT; the driver closes the socket. */
  disconnect(name: string): void {
    const c = this.client(name);
    const conn = c.conn;
    if (conn === undefined) return;
    this.send(name, { type: "disconnect", reasonCode: 0, properties: {} });
    if (c.conn !== undefined) this.drop(name);
    else this.input({ type: "closed", conn });
  }

  /** The network drops (abnormal close). */
  drop(name: string): void {
    const c = this.client(name);
    const conn = c.conn;
    if (conn === undefined) return;
    c.conn = undefined;
    c.closedBy = "client";
    this.byConn.delete(conn);
    this.input({ type: "closed", conn });
  }

  publish(name: string, topic: string, payload: string | Uint8Array, qos: QoS = 0, o: PublishOptions = {}): number | undefined {
    const c = this.client(name);
    let id: number | undefined;
    if (qos > 0) id = o.packetId ?? c.nextPacketId++;
    this.send(name, publishPacket(topic, payload, qos, { ...o, ...(id !== undefined ? { packetId: id } : {}) }));
    return id;
  }

  subscribe(name: string, subs: readonly (Subscription | string | [string, QoS])[], packetId?: number, properties: Properties = {}) {
    const c = this.client(name);
    const id = packetId ?? c.nextPacketId++;
    const before = c.received.length;
    this.send(name, {
      type: "subscribe",
      packetId: id,
      subscriptions: subs.map((s) => (typeof s === "string" ? sub(s, 0) : Array.isArray(s) ? sub(s[0], s[1]) : s)),
      properties,
    });
    return c.received.slice(before).find((p) => p.type === "suback");
  }

  unsubscribe(name: string, filters: readonly string[], packetId?: number) {
    const c = this.client(name);
    const id = packetId ?? c.nextPacketId++;
    const before = c.received.length;
    this.send(name, { type: "unsubscribe", packetId: id, topicFilters: filters, properties: {} });
    return c.received.slice(before).find((p) => p.type === "unsuback");
  }

  // ---- inspection -----------------------------------------------------------------------------

  received(name: string): Packet[] {
    return this.client(name).received;
  }

  /** Removes and returns what the client received so far. */
  take(name: string): Packet[] {
    const r = this.client(name).received;
    return r.splice(0, r.length);
  }

  publishes(name: string): PublishPacket[] {
    return this.received(name).filter((p): p is PublishPacket => p.type === "publish");
  }

  isOpen(name: string): boolean {
    return this.client(name).conn !== undefined;
  }

  closedReason(name: string): number | undefined {
    return this.client(name).closedReason;
  }

  /** Acknowledges every PUBLISH the client received (PUBACK, or PUBREC then PUBCOMP on PUBREL). */
  ackAll(name: string): void {
    for (let guard = 0; guard < 100; guard++) {
      const pending = this.take(name);
      let sent = 0;
      for (const p of pending) {
        if (p.type === "publish" && p.qos === 1) (this.send(name, ack("puback", p.packetId!)), sent++);
        else if (p.type === "publish" && p.qos === 2) (this.send(name, ack("pubrec", p.packetId!)), sent++);
        else if (p.type === "pubrel") (this.send(name, ack("pubcomp", p.packetId)), sent++);
      }
      if (sent === 0) return;
    }
  }

  eventsOf<T extends BrokerEvent["type"]>(type: T): Extract<BrokerEvent, { type: T }>[] {
    return this.events.filter((e): e is Extract<BrokerEvent, { type: T }> => e.type === type);
  }

  writesOf<T extends StoreWrite["op"]>(op: T): Extract<StoreWrite, { op: T }>[] {
    const out: Extract<StoreWrite, { op: T }>[] = [];
    for (const a of this.actions) if (a.type === "persist") for (const w of a.writes) if (w.op === op) out.push(w as Extract<StoreWrite, { op: T }>);
    return out;
  }
}

/** MQTT 5 options of a persistent session that outlives its connection. */
export const V5_PERSISTENT = { version: 5 as const, clean: false, sessionExpiry: 3600 };

/** A persistent subscriber "s" on `filter` at `qos`, offline, and a connected publisher "p"
 *  (both MQTT 5 with `v5`, so that messages can carry an expiry). */
export function offline(config = {}, qos: 0 | 1 | 2 = 1, filter = "t", v5 = false) {
  const sim = new Sim(config);
  sim.connect("s", v5 ? V5_PERSISTENT : { clean: false });
  sim.subscribe("s", [[filter, qos]]);
  sim.disconnect("s");
  sim.take("s");
  sim.connect("p", v5 ? { version: 5 } : {});
  return sim;
}

/** Receives and acknowledges everything until quiet; returns the payloads in order. */
export function drain(sim: Sim, name: string): string[] {
  const got: string[] = [];
  for (let round = 0; round < 10_000; round++) {
    const batch = sim.take(name);
    if (batch.length === 0) break;
    for (const p of batch) {
      if (p.type === "publish") {
        got.push(dec(p.payload));
        if (p.qos === 1) sim.send(name, ack("puback", p.packetId!));
        if (p.qos === 2) sim.send(name, ack("pubrec", p.packetId!));
      } else if (p.type === "pubrel") sim.send(name, ack("pubcomp", p.packetId));
    }
  }
  return got;
}
