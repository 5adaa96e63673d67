// Every timer of the broker in one binary min-heap with lazy deletion: a timer is never removed,
// it is checked against its owner's current state when it fires (and re-armed if the owner moved
// its deadline). Cost is O(log n) per armed timer and nothing per idle connection per tick.
import type { ConnId, Millis } from "./api.js";

export type TimerKind = "connect-timeout" | "keep-alive" | "session-expiry" | "will-delay";

export interface Timer {
  readonly at: Millis;
  readonly kind: TimerKind;
  /** Connection timers: the connection; session timers: 0. */
  readonly conn: ConnId;
  /** Session timers: the client id; connection timers: "". */
  readonly clientId: string;
  /** The owner's generation when armed; a mismatch at fire time means the timer is stale. */
  readonly gen: number;
}

export class DeadlineHeap {
  private readonly heap: Timer[] = [];

  get size(): number {
    return this.heap.length;
  }

  push(t: Timer): void {
    const h = this.heap;
    h.push(t);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (h[p]!.at <= t.at) break;
      h[i] = h[p]!;
      i = p;
    }
    h[i] = t;
  }

  peek(): Timer | undefined {
    return this.heap[0];
  }

  /** Keeps only the timers `keep` accepts and restores the heap order: O(n), for compaction when
   *  stale timers (of closed connections, of sessions that reconnected) outnumber live ones. */
  retain(keep: (t: Timer) => boolean): void {
    const h = this.heap;
    let n = 0;
    for (let i = 0; i < h.length; i++) if (keep(h[i]!)) h[n++] = h[i]!;
    h.length = n;
    for (let i = (n >> 1) - 1; i >= 0; i--) this.siftDown(i);
  }

  private siftDown(start: number): void {
    const h = this.heap;
    const n = h.length;
    const t = h[start]!;
    let i = start;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && h[r]!.at < h[l]!.at ? r : l;
      if (h[c]!.at >= t.at) break;
      h[i] = h[c]!;
      i = c;
    }
    h[i] = t;
  }

  pop(): Timer | undefined {
    const h = this.heap;
    const top = h[0];
    const last = h.pop();
    if (top === undefined || last === undefined || h.length === 0) return top;
    h[0] = last;
    this.siftDown(0);
    return top;
  }
}
