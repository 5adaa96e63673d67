// The core's contract with its driver: what goes in (Input), what comes out (Action), what the
// store keeps (StoreWrite, Snapshot) and every limit (BrokerConfig). No IO here, only data.
import type {
  ConnectPacket,
  Packet,
  Properties,
  ProtocolVersion,
  QoS,
  ReasonCode,
  Subscription,
} from "@harbormq/codec";

/** Allocated by the driver, one per transport stream; never reused while the driver runs. */
export type ConnId = number;
/** Allocated by the core for every question it asks the driver (persist, authorize, load). */
export type OpId = number;
/** Milliseconds, supplied by the driver. Monotonic within a run and comparable across restarts
 *  (the driver derives it from the wall clock), so session expiry survives a restart. */
export type Millis = number;

// ---------------------------------------------------------------------------------------------
// Inputs

export type AuthVerdict =
  | { readonly ok: true }
  /** 3.x: sent as return code 4 (bad user name or password) or 5 (not authorised) derived from
   *  the v5 code (0x86 -> 4, anything else -> 5); 5.0: sent as is. */
  | { readonly ok: false; readonly reasonCode: ReasonCode };

export type Input =
  | { readonly type: "open"; readonly conn: ConnId; readonly remote: string }
  | { readonly type: "packet"; readonly conn: ConnId; readonly packet: Packet }
  /** The decoder rejected the stream (codec DecodeError.code / message). */
  | { readonly type: "malformed"; readonly conn: ConnId; readonly reason: ReasonCode; readonly message: string }
  /** EOF or socket error: an abnormal close unless a DISCONNECT came first. */
  | { readonly type: "closed"; readonly conn: ConnId }
  /** The store made the writes of `persist` action `op` durable (ok) or failed (not ok). */
  | { readonly type: "stored"; readonly op: OpId; readonly ok: boolean }
  /** Answer to an `authenticate`, `authorize-publish` or `authorize-subscribe` action. For
   *  authorize-subscribe, `granted` may lower the QoS per filter (0x80 / >= 0x80 denies). */
  | { readonly type: "authed"; readonly op: OpId; readonly verdict: AuthVerdict; readonly granted: readonly number[] | undefined }
  /** A page of a session's queue answering `load` (empty when the store has no more). */
  | { readonly type: "loaded"; readonly op: OpId; readonly entries: readonly StoredQueueEntry[] }
  /** Time passed; `now` is the argument of handle(). */
  | { readonly type: "tick" }
  /** Graceful broker shutdown: close every connection; wills only if config.willOnShutdown. */
  | { readonly type: "shutdown" };

// ---------------------------------------------------------------------------------------------
// Actions

export type Action =
  /** Write a packet to a connection (encode with the connection's protocol version).
   *  Ordering contract: the driver executes actions in order and does not put a `send` on the
   *  wire before every `persist` emitted before it is durable (group commit makes this cheap);
   *  this is what keeps "QoS 1 repeats only as DUP" true across a crash. An `unordered` send is
   *  exempt: nothing a crash could lose from earlier persists makes it wrong (QoS 0 PUBLISHes,
   *  deliveries of clean sessions, and QoS 1 first deliveries inside the session's durable send
   *  horizon, see `session-horizon`). It still keeps its place among the connection's sends. */
  | { readonly type: "send"; readonly conn: ConnId; readonly packet: Packet; readonly version: ProtocolVersion; readonly unordered?: boolean }
  /** Close a connection after flushing what was sent before. `reason` is for logs/metrics. */
  | { readonly type: "close"; readonly conn: ConnId; readonly reason: ReasonCode; readonly message: string }
  /** Make `writes` durable, in order, atomically; answer with a `stored` input for `op`.
   *  `urgent: false`: the core does not wait for this `stored` (no acknowledgement hangs on it),
   *  so the driver may hold the writes back to commit them with later ones (bounded), unless an
   *  ordered send or a `load` waits for them. Absent means urgent. */
  | { readonly type: "persist"; readonly op: OpId; readonly writes: readonly StoreWrite[]; readonly urgent?: boolean }
  /** Ask the authentication hook about a CONNECT; answer with `authed`. */
  | { readonly type: "authenticate"; readonly op: OpId; readonly conn: ConnId; readonly connect: ConnectPacket }
  /** Only emitted when config.authorizePublish is true. */
  | { readonly type: "authorize-publish"; readonly op: OpId; readonly conn: ConnId; readonly clientId: string; readonly topic: string; readonly qos: QoS; readonly retain: boolean }
  /** Only emitted when config.authorizeSubscribe is true. */
  | { readonly type: "authorize-subscribe"; readonly op: OpId; readonly conn: ConnId; readonly clientId: string; readonly subscriptions: readonly Subscription[] }
  /** Read up to `max` entries of a session's queue with seq > afterSeq, in seq order; answer with `loaded`. */
  | { readonly type: "load"; readonly op: OpId; readonly clientId: string; readonly afterSeq: number; readonly max: number }
  /** Logs and metrics. */
  | { readonly type: "observe"; readonly event: BrokerEvent };

export type DropReason = "queue-full" | "expired" | "too-large" | "disconnected";

export type BrokerEvent =
  | { readonly type: "client-connected"; readonly conn: ConnId; readonly clientId: string; readonly remote: string; readonly protocolVersion: ProtocolVersion; readonly clean: boolean; readonly sessionPresent: boolean; readonly keepAlive: number }
  | { readonly type: "client-disconnected"; readonly conn: ConnId; readonly clientId: string | undefined; readonly reason: ReasonCode; readonly message: string; readonly graceful: boolean }
  | { readonly type: "connect-refused"; readonly conn: ConnId; readonly clientId: string; readonly reason: ReasonCode; readonly message: string }
  | { readonly type: "protocol-error"; readonly conn: ConnId; readonly clientId: string | undefined; readonly reason: ReasonCode; readonly message: string }
  | { readonly type: "message-published"; readonly clientId: string | undefined; readonly topic: string; readonly qos: QoS; readonly retain: boolean; readonly bytes: number }
  /** A message a session's queue could not take (overflow policy), an expired one, or a QoS 0
   *  message that waited in memory behind queued ones when its persistent session went offline
   *  ("disconnected": QoS 0 is queued for an offline session only with queueQos0). */
  | { readonly type: "message-dropped"; readonly clientId: string; readonly topic: string; readonly qos: QoS; readonly reason: DropReason; readonly policy: OverflowPolicy }
  | { readonly type: "will-published"; readonly clientId: string; readonly topic: string }
  | { readonly type: "session-expired"; readonly clientId: string }
  /** A PUBLISH the authorize-publish hook denied: acknowledged per its QoS but not routed ([MQTT-3.3.5-2]). */
  | { readonly type: "publish-denied"; readonly clientId: string; readonly topic: string; readonly qos: QoS; readonly reason: ReasonCode }
  /** A `persist` was answered with ok=false; publishers waiting on it were closed without an ack. */
  | { readonly type: "store-failed"; readonly op: OpId };

// ---------------------------------------------------------------------------------------------
// What the store keeps. A message routed to many sessions is written once (`message-put`) and
// referenced by id from each queue entry; the store deletes a message when no entry refers to it.

export type MessageId = number;

export interface StoredMessage {
  readonly id: MessageId;
  readonly topic: string;
  readonly payload: Uint8Array;
  readonly qos: QoS; // as published
  readonly retain: boolean; // as published
  readonly properties: Properties; // v5 properties to forward (user properties, content type, ...)
  /** Driver time the message was accepted; with messageExpiryInterval gives its expiry. */
  readonly receivedAt: Millis;
}

export interface StoredSubscription {
  readonly filter: string;
  readonly qos: QoS;
  readonly noLocal: boolean;
  readonly retainAsPublished: boolean;
  readonly retainHandling: 0 | 1 | 2;
  readonly subscriptionId: number | undefined;
}

/** One outgoing message of a persistent session, queued or in flight, in `seq` order. */
export interface StoredQueueEntry {
  readonly seq: number; // per session, strictly increasing, never reused
  readonly message: StoredMessage;
  readonly qos: QoS; // granted: min(published, subscription)
  readonly retain: boolean; // RETAIN flag to deliver with
  /** "queued": not sent yet; "sent": PUBLISH sent with packetId, awaiting PUBACK / PUBREC;
   *  "released": PUBREC received and PUBREL sent, awaiting PUBCOMP (message no longer needed). */
  readonly state: "queued" | "sent" | "released";
  readonly packetId: number | undefined;
  readonly subscriptionIds: readonly number[];
}

export interface StoredSessionMeta {
  readonly clientId: string;
  readonly protocolVersion: ProtocolVersion;
  /** Seconds; 0xFFFFFFFF = never. MQTT 3.x persistent sessions use config.persistentSessionExpiry. */
  readonly expiryInterval: number;
  /** Driver time of the last disconnect, undefined while connected (or when never disconnected). */
  readonly disconnectedAt: Millis | undefined;
}

export type StoreWrite =
  | { readonly op: "session-put"; readonly session: StoredSessionMeta }
  /** Deletes the session and everything it owns: subscriptions, queue, QoS 2 receive state. */
  | { readonly op: "session-delete"; readonly clientId: string }
  | { readonly op: "subscription-put"; readonly clientId: string; readonly subscription: StoredSubscription }
  | { readonly op: "subscription-delete"; readonly clientId: string; readonly filter: string }
  | { readonly op: "message-put"; readonly message: StoredMessage }
  | { readonly op: "queue-put"; readonly clientId: string; readonly entry: Omit<StoredQueueEntry, "message">; readonly messageId: MessageId }
  /** Changes state/packetId of an existing entry. */
  | { readonly op: "queue-update"; readonly clientId: string; readonly seq: number; readonly state: StoredQueueEntry["state"]; readonly packetId: number | undefined }
  | { readonly op: "queue-delete"; readonly clientId: string; readonly seq: number }
  /** The session's send horizon: no QoS 1 entry with a higher seq has been sent to the client.
   *  Only ever raised; stored with the session (a write for a client without a session-put is
   *  kept like its other rows) and deleted by session-delete. Restored as `sendHorizon`. */
  | { readonly op: "session-horizon"; readonly clientId: string; readonly seq: number }
  /** QoS 2 receive state ([MQTT-4.3.3]): a PUBLISH with this id was accepted, PUBREL not yet seen. */
  | { readonly op: "qos2-put"; readonly clientId: string; readonly packetId: number }
  | { readonly op: "qos2-delete"; readonly clientId: string; readonly packetId: number }
  | { readonly op: "retained-put"; readonly message: StoredMessage }
  | { readonly op: "retained-delete"; readonly topic: string };

export interface RestoredSession {
  readonly meta: StoredSessionMeta;
  readonly subscriptions: readonly StoredSubscription[];
  readonly qos2: readonly number[];
  /** The first entries of the queue in seq order (at most the restore window); `queueCount` and
   *  `queueBytes` cover the whole queue, `lastSeq` is the highest seq ever used (0 if none). */
  readonly queueHead: readonly StoredQueueEntry[];
  readonly queueCount: number;
  readonly queueBytes: number;
  readonly lastSeq: number;
  /** The highest seq of a `session-horizon` write (0 if none): QoS 1 entries at or below it may
   *  have been sent before the restart. */
  readonly sendHorizon: number;
}

export interface Snapshot {
  readonly sessions: readonly RestoredSession[];
  readonly retained: readonly StoredMessage[];
  /** Highest message id ever used (0 if none); the core continues after it. */
  readonly lastMessageId: number;
}

export const emptySnapshot: Snapshot = { sessions: [], retained: [], lastMessageId: 0 };

// ---------------------------------------------------------------------------------------------
// Configuration: every limit, with its default in `defaultConfig`.

export type OverflowPolicy = "drop-new" | "drop-oldest";

export interface BrokerConfig {
  /** Highest QoS granted to a subscription. */
  readonly maxQos: QoS;
  /** Outgoing QoS 1/2 messages in flight per session. */
  readonly maxInflight: number;
  /** Per session queue bound (queued + in flight); `maxQueuedBytes` counts payload + topic bytes. */
  readonly maxQueuedMessages: number;
  readonly maxQueuedBytes: number; // Infinity = unlimited
  readonly overflowPolicy: OverflowPolicy;
  /** Queue QoS 0 messages for offline persistent sessions. */
  readonly queueQos0: boolean;
  /** Queued entries of one session kept in memory (besides those in flight, which always are);
   *  the rest is paged with `load`. */
  readonly queueWindow: number;
  /** Bytes (payload + topic) of one session's queued entries kept in memory, beyond which the
   *  rest is paged too; they may exceed it by one message. */
  readonly queueWindowBytes: number;
  /** Seconds an MQTT 3.x persistent session lives after disconnect; 0xFFFFFFFF = forever. */
  readonly persistentSessionExpiry: number;
  /** Largest packet accepted (bytes, whole packet). A bigger one is refused (0x95) as soon as its
   *  fixed header arrives; the default (16 MiB) bounds what one connection can make the broker
   *  buffer. MQTT allows up to 268,435,460 (set it that high to accept anything). */
  readonly maxPacketSize: number;
  /** Server side keep-alive grace: the connection is closed after keepAlive * factor seconds of silence. */
  readonly keepAliveFactor: number;
  /** Close a connection that has not sent CONNECT within this many ms. */
  readonly connectTimeout: Millis;
  /** Maximum client id length accepted (bytes of UTF-8). */
  readonly maxClientIdLength: number;
  /** Emit `authenticate` for every CONNECT (false: accept all). */
  readonly authenticate: boolean;
  readonly authorizePublish: boolean;
  readonly authorizeSubscribe: boolean;
  /** Publish wills when the broker shuts down. */
  readonly willOnShutdown: boolean;
  /** Prefix of ids assigned to clients that connect with an empty id. */
  readonly assignedIdPrefix: string;
  /** Packets of one connection held while a hook (authenticate / authorize) is pending; one more
   *  closes the connection with 0x97 (quota exceeded). */
  readonly maxBufferedPackets: number;
  /** Emit `observe` `message-published` for every accepted PUBLISH (debug logs,
   *  `onMessagePublished` hooks; createBroker turns it on when such a hook is given). Off by
   *  default: it costs an action and an event object per message; `stats.messagesIn` counts anyway. */
  readonly observePublishes: boolean;
  /** MQTT 5 Topic Alias Maximum announced in CONNACK: how many topic aliases a client may define
   *  per connection (at most 65535; default 10, as Mosquitto). 0: none (CONNACK says nothing; a PUBLISH with an alias is a
   *  protocol error, 0x94). The server never sends aliases itself. */
  readonly topicAliasMaximum: number;
  /** Send horizon of persistent sessions (docs/architecture.md): how far ahead of its QoS 1 sends
   *  a session's backlog is declared "may have been sent", so that those sends need no durable
   *  per-message mark (one write per about step / 2 sends instead). After a crash up to this many
   *  queued messages that were never sent go with DUP=1 and are not dropped as expired. 0: off
   *  (every QoS 1 send to a persistent session waits for its durable mark). */
  readonly sendHorizonStep: number;
}

export const defaultConfig: BrokerConfig = {
  maxQos: 2,
  maxInflight: 20,
  maxQueuedMessages: 1000,
  maxQueuedBytes: Infinity,
  overflowPolicy: "drop-new",
  queueQos0: false,
  queueWindow: 1000,
  queueWindowBytes: 1024 * 1024,
  persistentSessionExpiry: 0xffffffff,
  maxPacketSize: 16 * 1024 * 1024,
  keepAliveFactor: 1.5,
  connectTimeout: 10_000,
  maxClientIdLength: 65_535,
  authenticate: false,
  authorizePublish: false,
  authorizeSubscribe: false,
  willOnShutdown: false,
  assignedIdPrefix: "harbormq-",
  maxBufferedPackets: 100,
  observePublishes: false,
  topicAliasMaximum: 10,
  sendHorizonStep: 2048,
};

export interface SessionStats {
  readonly queued: number;
  readonly queuedBytes: number;
  /** The part of the queue held in memory (the rest lives only in the store). */
  readonly inMemory: number;
  readonly inMemoryBytes: number;
  readonly inflight: number;
  /** Of `inflight`: messages not on the wire now, waiting to be sent again (the session is
   *  offline, or they wait for room under the window or Receive Maximum after a reconnect or a
   *  restart). */
  readonly inflightWaiting: number;
  readonly dropped: number;
}

export interface BrokerStats {
  readonly connections: number;
  readonly sessions: number;
  readonly subscriptions: number;
  readonly retained: number;
  readonly messagesIn: number;
  readonly messagesOut: number;
  readonly dropped: number;
  readonly droppedQueueFull: number;
  readonly droppedExpired: number;
}

/** All counters at zero: the stats of a broker before its first input. */
export const zeroStats: BrokerStats = Object.freeze({
  connections: 0,
  sessions: 0,
  subscriptions: 0,
  retained: 0,
  messagesIn: 0,
  messagesOut: 0,
  dropped: 0,
  droppedQueueFull: 0,
  droppedExpired: 0,
});
