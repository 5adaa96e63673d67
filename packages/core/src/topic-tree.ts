// Subscription index: topic filters (with `+` and `#`) -> subscribers, matched against topic names.
// A trie keyed by filter level with a `+` and a `#` slot per node, so that matching a topic costs
// O(levels x wildcard branching), not O(subscriptions).

const PLUS = 43; // "+"
const HASH = 35; // "#"
const DOLLAR = 36; // "$"

/** Subscriber lists longer than this get a subscriber -> position Map for add / remove. */
const INDEX_FROM = 8;

/** One filter level. Every slot is created lazily: a leaf with one subscriber is one object. */
class Node<S, V> {
  /** Exact-level children, by level text. */
  children: Map<string, Node<S, V>> | undefined = undefined;
  /** The `+` child. */
  plus: Node<S, V> | undefined = undefined;
  /** The `#` child: a leaf holding the subscribers of "<this level>/#". */
  hash: Node<S, V> | undefined = undefined;
  /** The filter ending at this node while it has subscribers, else "" (filters are never empty). */
  filter = "";
  /** The only subscriber (and its value) while there is one; with two or more all are in `more`. */
  sub: S | undefined = undefined;
  val: V | undefined = undefined;
  more: Subscribers<S, V> | undefined = undefined;
}

/** Two or more subscribers of one filter: parallel dense arrays, fast to iterate when matching. */
class Subscribers<S, V> {
  index: Map<S, number> | undefined = undefined;
  constructor(
    readonly subs: S[],
    readonly vals: V[],
  ) {}

  indexOf(subscriber: S): number {
    if (this.index !== undefined) return this.index.get(subscriber) ?? -1;
    return this.subs.indexOf(subscriber);
  }
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
    if (!addSubscriber(node, filter, subscriber, value)) return false;
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
    if (node === undefined || node.filter === "") return undefined;
    const more = node.more;
    if (more === undefined) return node.sub === subscriber ? node.val : undefined;
    const i = more.indexOf(subscriber);
    return i < 0 ? undefined : more.vals[i];
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
    if (!removeSubscriber(node, subscriber)) return false;
    this.count--;
    // Prune bottom-up while the node holds nothing.
    for (let i = path.length - 1; i >= 0; i--) {
      if (node.filter !== "" || node.children !== undefined || node.plus !== undefined || node.hash !== undefined) break;
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
  const filter = node.filter;
  if (filter === "") return;
  const more = node.more;
  if (more === undefined) {
    visit(node.sub as S, node.val as V, filter);
    return;
  }
  const subs = more.subs;
  const vals = more.vals;
  for (let i = 0; i < subs.length; i++) visit(subs[i] as S, vals[i] as V, filter);
}

/** Adds or replaces a subscriber of the filter ending at `node`; true when it was new. */
function addSubscriber<S, V>(node: Node<S, V>, filter: string, subscriber: S, value: V): boolean {
  if (node.filter === "") {
    node.filter = filter;
    node.sub = subscriber;
    node.val = value;
    return true;
  }
  const more = node.more;
  if (more === undefined) {
    if (node.sub === subscriber) {
      node.val = value;
      return false;
    }
    node.more = new Subscribers([node.sub as S, subscriber], [node.val as V, value]);
    node.sub = undefined;
    node.val = undefined;
    return true;
  }
  const i = more.indexOf(subscriber);
  if (i >= 0) {
    more.vals[i] = value;
    return false;
  }
  const n = more.subs.push(subscriber);
  more.vals.push(value);
  if (more.index !== undefined) more.index.set(subscriber, n - 1);
  else if (n > INDEX_FROM) more.index = new Map(more.subs.map((s, k) => [s, k]));
  return true;
}

/** Removes a subscriber of the filter ending at `node`; true when it was there. Positions are
 *  not stable (the last subscriber moves into the hole), which keeps removal O(1). */
function removeSubscriber<S, V>(node: Node<S, V>, subscriber: S): boolean {
  if (node.filter === "") return false;
  const more = node.more;
  if (more === undefined) {
    if (node.sub !== subscriber) return false;
    node.filter = "";
    node.sub = undefined;
    node.val = undefined;
    return true;
  }
  const i = more.indexOf(subscriber);
  if (i < 0) return false;
  const { subs, vals, index } = more;
  const last = subs.length - 1;
  if (i !== last) {
    subs[i] = subs[last] as S;
    vals[i] = vals[last] as V;
    index?.set(subs[i] as S, i);
  }
  subs.pop();
  vals.pop();
  index?.delete(subscriber);
  if (last === 1) {
    node.sub = subs[0];
    node.val = vals[0];
    node.more = undefined;
  } else if (index !== undefined && last <= INDEX_FROM / 2) {
    more.index = undefined;
  }
  return true;
}
