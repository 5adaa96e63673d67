// Subscription index: topic filters (with `+` and `#`) -> subscribers, matched against topic names.
// PLACEHOLDER implementation (linear scan) with the final API; replaced by a trie.
import { matches } from "./topic-match.js";

export class TopicTree<S, V> {
  private readonly entries = new Map<string, Map<S, V>>();
  private count = 0;

  /** Adds or replaces `subscriber`'s subscription to `filter`. Returns true when it was new. */
  add(filter: string, subscriber: S, value: V): boolean {
    let subs = this.entries.get(filter);
    if (subs === undefined) this.entries.set(filter, (subs = new Map()));
    const isNew = !subs.has(subscriber);
    subs.set(subscriber, value);
    if (isNew) this.count++;
    return isNew;
  }

  /** Removes `subscriber`'s subscription to `filter`. Returns true when it existed. */
  remove(filter: string, subscriber: S): boolean {
    const subs = this.entries.get(filter);
    if (subs === undefined || !subs.delete(subscriber)) return false;
    if (subs.size === 0) this.entries.delete(filter);
    this.count--;
    return true;
  }

  /** Calls `visit` once per (subscriber, filter) pair whose filter matches `topic`
   *  ([MQTT-4.7.2-1]: `#` and `+` at the first level do not match topics starting with `$`).
   *  A subscriber with several matching filters is visited once per filter. */
  match(topic: string, visit: (subscriber: S, value: V, filter: string) => void): void {
    for (const [filter, subs] of this.entries) {
      if (!matches(filter, topic)) continue;
      for (const [s, v] of subs) visit(s, v, filter);
    }
  }

  /** Number of (filter, subscriber) pairs. */
  get size(): number {
    return this.count;
  }
}
