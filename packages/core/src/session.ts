// A session ([MQTT-4.1.0-1]): subscriptions, the outgoing queue with its in-flight window, and the
// QoS 2 receive state, keyed by client id ([MQTT-3.1.3-2]). Persistent sessions (clean session 0)
// outlive their connection and are mirrored to the store; clean ones live with the connection.
import type { ProtocolVersion, Will } from "@harbormq/codec";
import type { Millis, OpId, StoredSubscription } from "./api.js";
import type { Connection } from "./connection.js";
import { InflightWindow } from "./inflight.js";
import { SessionQueue, type QueueEntry } from "./queue.js";

export class Session {
  conn: Connection | undefined = undefined;
  /** Filter -> subscription; allocated on first use (a connection that never subscribes, like
   *  most publishers, stays small). */
  private subs: Map<string, StoredSubscription> | undefined = undefined;

  subscription(filter: string): StoredSubscription | undefined {
    return this.subs?.get(filter);
  }

  setSubscription(sub: StoredSubscription): void {
    (this.subs ??= new Map()).set(sub.filter, sub);
  }

  deleteSubscription(filter: string): boolean {
    return this.subs !== undefined && this.subs.delete(filter);
  }

  /** Removes every subscription; returns their filters. */
  clearSubscriptions(): string[] {
    const filters = this.subs === undefined ? [] : [...this.subs.keys()];
    this.subs = undefined;
    return filters;
  }
  readonly queue: SessionQueue;
  readonly inflight: InflightWindow<QueueEntry>;
  /** Incoming QoS 2 ids accepted and not yet released ([MQTT-4.3.3-2]) -> the persist op that
   *  recorded them (a duplicate PUBLISH waits for that op before its PUBREC). */
  private qos2?: Map<number, OpId>; // allocated on first use: most sessions never receive QoS 2

  qos2Get(id: number): OpId | undefined {
    return this.qos2?.get(id);
  }

  qos2Set(id: number, op: OpId): void {
    (this.qos2 ??= new Map()).set(id, op);
  }

  qos2Delete(id: number): boolean {
    return this.qos2 !== undefined && this.qos2.delete(id);
  }
  dropped = 0;
  /** MQTT 5: the will of the last connection, waiting for its Will Delay Interval (or the end of
   *  the session, whichever comes first); a new connection to the session cancels it. */
  pendingWill: Will | undefined = undefined;
  /** Bumped on every attach / detach: a session-expiry timer armed under another generation is stale. */
  gen = 0;
  /** Send horizon (persistent sessions): no QoS 1 entry with a higher seq has been sent. `horizon`
   *  is durable (its `session-horizon` write was stored), `horizonWritten` the highest written.
   *  A QoS 1 first delivery at or below `horizon`, on its seq's own packet id, needs no durable
   *  "sent" mark before it goes: after a crash the restored entry goes again with DUP=1 and the
   *  same id. `restoredHorizon`: entries up to it may have been sent before the restart. */
  horizon = 0;
  horizonWritten = 0;
  restoredHorizon = 0;
  /** A never-sent entry below the horizon was deleted: the next QoS 1 send is marked (deleteQueued). */
  orderNext = false;

  // Routing scratch (broker.route): one message at a time, no allocation per matched session.
  routeMark = 0;
  routeQos: 0 | 1 | 2 = 0;
  routeRetainAsPublished = false;
  routeIds: number[] | undefined = undefined;

  constructor(
    readonly clientId: string,
    public persistent: boolean,
    public version: ProtocolVersion,
    /** Seconds the session lives after disconnect; 0xFFFFFFFF = forever. */
    public expiryInterval: number,
    public disconnectedAt: Millis | undefined,
    maxInflight: number,
    queueWindow: number,
    queueWindowBytes: number,
  ) {
    this.queue = new SessionQueue(persistent ? queueWindow : Infinity, persistent ? queueWindowBytes : Infinity);
    this.inflight = new InflightWindow<QueueEntry>(maxInflight);
  }
}
