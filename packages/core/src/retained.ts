// Retained messages by topic name ([MQTT-3.3.1-5]), matched against a subscription's filter.
// PLACEHOLDER implementation (linear scan) with the final API; replaced by a trie.
import { matches } from "./topic-match.js";

export class RetainedIndex<M> {
  private readonly byTopic = new Map<string, M>();

  /** Stores or replaces the retained message of `topic`. */
  set(topic: string, message: M): void {
    this.byTopic.set(topic, message);
  }

  /** Deletes the retained message of `topic`; true when there was one. */
  delete(topic: string): boolean {
    return this.byTopic.delete(topic);
  }

  get(topic: string): M | undefined {
    return this.byTopic.get(topic);
  }

  /** Calls `visit` for every retained message whose topic matches `filter`. */
  match(filter: string, visit: (topic: string, message: M) => void): void {
    for (const [topic, m] of this.byTopic) if (matches(filter, topic)) visit(topic, m);
  }

  get size(): number {
    return this.byTopic.size;
  }

  /** All retained messages (for snapshots and tests). */
  values(): IterableIterator<M> {
    return this.byTopic.values();
  }
}
