// Outgoing packet identifiers of one session and the in-flight window they bound.
// [MQTT-2.3.1-2] [MQTT-2.3.1-4] a new QoS 1/2 PUBLISH gets an id not in use by that session;
// a resend reuses its id ([MQTT-4.4.0-1]).

export const MAX_PACKET_ID = 65_535;

/** The packet id a queue entry gets when it is free: a function of its seq, so that after a crash
 *  a QoS 1 message sent without a durable "sent" mark goes again on the same id ([MQTT-4.4.0-1]). */
export function idForSeq(seq: number): number {
  return ((seq - 1) % MAX_PACKET_ID) + 1;
}

/** Packet ids in use by one session, allocated round robin (1..65535, wrapping), skipping ids in use. */
export class PacketIds<T> {
  private inUse: Map<number, T> | undefined = undefined; // allocated on first use (idle sessions stay small)
  private next = 1;

  /** Allocates a free id for `value` (`preferred` when it is free), or undefined when all 65535
   *  are in use. */
  allocate(value: T, preferred = 0): number | undefined {
    const inUse = (this.inUse ??= new Map());
    if (inUse.size >= MAX_PACKET_ID) return undefined;
    let id = preferred > 0 && !inUse.has(preferred) ? preferred : this.next;
    while (inUse.has(id)) id = id === MAX_PACKET_ID ? 1 : id + 1;
    inUse.set(id, value);
    this.next = id === MAX_PACKET_ID ? 1 : id + 1;
    return id;
  }

  /** Marks `id` as used (a restored or resent in-flight message keeps its id). */
  claim(id: number, value: T): void {
    (this.inUse ??= new Map()).set(id, value);
  }

  get(id: number): T | undefined {
    return this.inUse?.get(id);
  }

  has(id: number): boolean {
    return this.inUse !== undefined && this.inUse.has(id);
  }

  /** Frees `id`; true when it was in use. */
  release(id: number): boolean {
    return this.inUse !== undefined && this.inUse.delete(id);
  }

  get size(): number {
    return this.inUse === undefined ? 0 : this.inUse.size;
  }

  clear(): void {
    this.inUse = undefined;
  }
}

/** The in-flight window: how many QoS 1/2 messages may await acknowledgement at once. */
export class InflightWindow<T> {
  readonly ids = new PacketIds<T>();
  /** In-flight messages whose resend after a reconnect waits for room: an MQTT 5 client may
   *  reconnect with a Receive Maximum below what was in flight ([MQTT-3.3.4-9]). Usually empty. */
  deferred: Set<T> | undefined = undefined;
  constructor(
    /** The current limit: config.maxInflight, lowered to an MQTT 5 client's Receive Maximum. */
    public max: number,
  ) {}

  /** True when another message may be sent now. */
  get hasRoom(): boolean {
    return this.ids.size < this.max && this.ids.size < 65_535;
  }

  /** True when a deferred resend may go now: fewer than `max` messages on the wire. */
  get canResend(): boolean {
    return this.ids.size - (this.deferred?.size ?? 0) < this.max;
  }

  get size(): number {
    return this.ids.size;
  }
}
