// Subscription index: topic filters (with `+` and `#`) -> subscribers, matched against topic names.
// A trie keyed by filter level with a `+` and a `#` slot per node, so that matching a topic costs
// O(levels x wildcard branching), not O(subscriptions).

const PLUS = 43; // "+"
const HASH = 35; // "#"
const DOLLAR = 36; // "$"

/** One filter level. Every slot is created lazily: a leaf is a small object with no Map. */
class Node<S, V> {
  /** Exact-level children, by level text. */
  children: Map<string, Node<S, V>> | undefined = undefined;
  /** The `+` child. */
  plus: Node<S, V> | undefined = undefined;
  /** The `#` child: a leaf holding the subscribers of "<this level>/#". */
  hash: Node<S, V> | undefined = undefined;
  /** Subscribers of the filter ending at this node, and that filter's text. */
  subs: Map<S, V> | undefined = undefined;
  filter = "";
}

export class TopicTree<S, V> {
  private readonly root = new Node<S, V>();
  private count = 0;
  private nodeCount = 1;
  // Scratch stacks of match() (node, level start), reused across calls so that matching
  // allocates nothing; a nested match() from a visitor pushes above its caller's frames.
  private readonly stackNodes: Node<S, V>[] = [];
  private readonly stackPos: number[] = [];

  /** Adds or replaces `subscriber`'s subscription to `filter`. Returns true when it was new. */
  add(filter: string, subscriber: S, value: V): boolean {
    let node = this.root;
    const len = filter.length;
    let start = 0;
    while (start <= len) {
      let end = filter.indexOf("/", start);
      if (end === -1) end = len;
      const n = end - start;
      if (n === 1 && filter.charCodeAt(start) === PLUS) {
        let plus = node.plus;
        if (plus === undefined) {
          node.plus = plus = new Node();
          this.nodeCount++;
        }
        node = plus;
      } else if (n === 1 && filter.charCodeAt(start) === HASH) {
        let hash = node.hash;
        if (hash === undefined) {
          node.hash = hash = new Node();
          this.nodeCount++;
        }
        node = hash;
      } else {
        const level = filter.substring(start, end);
        let children = node.children;
        if (children === undefined) node.children = children = new Map();
        let child = children.get(level);
        if (child === undefined) {
          children.set(level, (child = new Node()));
          this.nodeCount++;
        }
        node = child;
      }
      start = end + 1;
    }
    let subs = node.subs;
    if (subs === undefined) {
      node.subs = subs = new Map();
      node.filter = filter;
    }
    const size = subs.size;
    subs.set(subscriber, value);
    if (subs.size === size) return false;
    this.count++;
    return true;
  }

  /** The value of `subscriber`'s subscription to `filter`, if any. */
  get(filter: string, subscriber: S): V | undefined {
    let node: Node<S, V> | undefined = this.root;
    const len = filter.length;
    let start = 0;
    while (start <= len && node !== undefined) {
      let end = filter.indexOf("/", start);
      if (end === -1) end = len;
      const n = end - start;
      if (n === 1 && filter.charCodeAt(start) === PLUS) node = node.plus;
      else if (n === 1 && filter.charCodeAt(start) === HASH) node = node.hash;
      else node = node.children?.get(filter.substring(start, end));
      start = end + 1;
    }
    return node?.subs?.get(subscriber);
  }

  /** Removes `subscriber`'s subscription to `filter`. Returns true when it existed. Nodes left
   *  empty are pruned, so that a tree whose subscriptions are all removed is back to one node. */
  remove(filter: string, subscriber: S): boolean {
    const path: Node<S, V>[] = [];
    const keys: string[] = [];
    let node: Node<S, V> | undefined = this.root;
    const len = filter.length;
    let start = 0;
    while (start <= len) {
      let end = filter.indexOf("/", start);
      if (end === -1) end = len;
      const level = filter.substring(start, end);
      path.push(node);
      keys.push(level);
      node = level === "+" ? node.plus : level === "#" ? node.hash : node.children?.get(level);
      if (node === undefined) return false;
      start = end + 1;
    }
    const subs = node.subs;
    if (subs === undefined || !subs.delete(subscriber)) return false;
    this.count--;
    if (subs.size !== 0) return true;
    node.subs = undefined;
    node.filter = "";
    // Prune bottom-up while the node holds nothing.
    for (let i = path.length - 1; i >= 0; i--) {
      if (node.subs !== undefined || node.children !== undefined || node.plus !== undefined || node.hash !== undefined) break;
      this.nodeCount--;
      const parent: Node<S, V> = path[i]!;
      const key = keys[i]!;
      if (key === "+") parent.plus = undefined;
      else if (key === "#") parent.hash = undefined;
      else {
        const children = parent.children!;
        children.delete(key);
        if (children.size === 0) parent.children = undefined;
      }
      node = parent;
    }
    return true;
  }

  /** Calls `visit` once per (subscriber, filter) pair whose filter matches `topic`
   *  ([MQTT-4.7.2-1]: `#` and `+` at the first level do not match topics starting with `$`).
   *  A subscriber with several matching filters is visited once per filter.
   *  `visit` must not add or remove subscriptions of this tree. */
  match(topic: string, visit: (subscriber: S, value: V, filter: string) => void): void {
    const len = topic.length;
    const nodes = this.stackNodes;
    const positions = this.stackPos;
    const base = nodes.length;
    const root = this.root;
    // [MQTT-4.7.2-1] the root's wildcard slots are skipped for a `$` topic.
    const dollar = len > 0 && topic.charCodeAt(0) === DOLLAR;
    let node: Node<S, V> = root;
    let start = 0;
    for (;;) {
      // `#` matches the remaining levels, zero included: "sport/#" matches "sport".
      const hash = node.hash;
      if (hash !== undefined && !(dollar && node === root)) visitAll(hash, visit);
      let next: Node<S, V> | undefined;
      if (start > len) {
        // The topic is consumed: the filter ending here matches.
        visitAll(node, visit);
      } else {
        let end = topic.indexOf("/", start);
        if (end === -1) end = len;
        const children = node.children;
        if (children !== undefined) next = children.get(topic.substring(start, end));
        const plus = node.plus;
        if (plus !== undefined && !(dollar && node === root)) {
          if (next === undefined) next = plus;
          else {
            nodes.push(plus);
            positions.push(end + 1);
          }
        }
        start = end + 1;
      }
      if (next !== undefined) {
        node = next;
        continue;
      }
      if (nodes.length === base) return;
      node = nodes.pop()!;
      start = positions.pop()!;
    }
  }

  /** Number of (filter, subscriber) pairs. */
  get size(): number {
    return this.count;
  }

  /** Number of trie nodes, the root included (1 when empty): for memory statistics and tests. */
  get nodes(): number {
    return this.nodeCount;
  }
}

function visitAll<S, V>(node: Node<S, V>, visit: (subscriber: S, value: V, filter: string) => void): void {
  const subs = node.subs;
  if (subs === undefined) return;
  const filter = node.filter;
  for (const [s, v] of subs) visit(s, v, filter);
}
