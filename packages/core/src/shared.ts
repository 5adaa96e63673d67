// Shared subscriptions ([MQTT 5.0 4.8.2], also accepted from MQTT 3.1.1 clients, as Mosquitto and
// EMQX do): `$share/{ShareName}/{filter}`. Each message matching a group's filter goes to ONE of
// its member sessions (round robin, online members first), with that member's granted QoS
// ([MQTT-4.8.2-3]). Once chosen, the delivery belongs to that session like any other: a QoS 2 flow
// cut off is finished with the same client when it reconnects, and never goes to another member
// ([MQTT-4.8.2-4] [MQTT-4.8.2-5]); a PUBACK / PUBREC >= 0x80 ends it ([MQTT-4.8.2-6]).
import type { StoredSubscription } from "./api.js";
import type { Session } from "./session.js";
import { TopicTree } from "./topic-tree.js";

const PREFIX = "$share/";

/** The ShareName and the filter of a shared subscription's filter, or undefined for an ordinary
 *  filter (the codec has checked the form, [MQTT-4.8.2-1], for MQTT 5). */
export function parseShared(filter: string): { readonly shareName: string; readonly filter: string } | undefined {
  if (!filter.startsWith(PREFIX)) return undefined;
  const slash = filter.indexOf("/", PREFIX.length);
  if (slash <= PREFIX.length || slash === filter.length - 1) return undefined;
  const shareName = filter.slice(PREFIX.length, slash);
  if (shareName.includes("+") || shareName.includes("#")) return undefined;
  return { shareName, filter: filter.slice(slash + 1) };
}

export class SharedGroup {
  readonly members: Session[] = [];
  readonly subs = new Map<Session, StoredSubscription>();
  private next = 0;
  constructor(
    /** The whole `$share/{ShareName}/{filter}` string: the group's key. */
    readonly key: string,
  ) {}

  /** Removes a member; the member that was next stays next. */
  removeMember(session: Session): void {
    const i = this.members.indexOf(session);
    this.members.splice(i, 1);
    if (i < this.next) this.next--;
    if (this.next >= this.members.length) this.next = 0;
  }

  /** The member to deliver the next message to: round robin, skipping offline members while an
   *  online one exists (an offline persistent member queues the message, so it is only chosen
   *  when nobody is online). */
  pick(): Session | undefined {
    const n = this.members.length;
    if (n === 0) return undefined;
    for (let i = 0; i < n; i++) {
      const s = this.members[(this.next + i) % n]!;
      if (s.conn !== undefined) {
        this.next = (this.next + i + 1) % n;
        return s;
      }
    }
    const s = this.members[this.next % n]!;
    this.next = (this.next + 1) % n;
    return s;
  }
}

/** Every shared group, matched by its filter. */
export class SharedSubscriptions {
  private readonly groups = new Map<string, SharedGroup>();
  private readonly tree = new TopicTree<SharedGroup, SharedGroup>();
  private count = 0;

  /** Subscriptions held by members (what BrokerStats.subscriptions counts for shared ones). */
  get size(): number {
    return this.count;
  }

  add(session: Session, sub: StoredSubscription): void {
    const parsed = parseShared(sub.filter)!;
    let group = this.groups.get(sub.filter);
    if (group === undefined) {
      group = new SharedGroup(sub.filter);
      this.groups.set(sub.filter, group);
      this.tree.add(parsed.filter, group, group);
    }
    if (!group.subs.has(session)) {
      group.members.push(session);
      this.count++;
    }
    group.subs.set(session, sub);
  }

  remove(filter: string, session: Session): void {
    const group = this.groups.get(filter);
    if (group === undefined || !group.subs.delete(session)) return;
    group.removeMember(session);
    this.count--;
    if (group.members.length === 0) {
      this.groups.delete(filter);
      this.tree.remove(parseShared(filter)!.filter, group);
    }
  }

  /** Calls `deliver` once per group whose filter matches `topic`, with the chosen member. */
  match(topic: string, deliver: (session: Session, sub: StoredSubscription) => void): void {
    if (this.groups.size === 0) return;
    this.tree.match(topic, (group) => {
      const s = group.pick();
      if (s !== undefined) deliver(s, group.subs.get(s)!);
    });
  }
}
