// Subscription index: topic filters (with `+` and `#`) -> subscribers, matched against topic names.
// A trie keyed by filter level with a `+` and a `#` slot per node, so that matching a topic costs
// O(levels x wildcard branching), not O(subscriptions).

const PLUS = 43; // "+"
const HASH = 35; // "#"
const DOLLAR = 36; // "$"

/** Subscriber lists longer than this get a subscriber -> position Map for add / remove. */
const INDEX_FROM = 8;

/** One filter level. Every slot is created lazily: a leaf with one subscriber is one object, and
 *  a node with one exact child points at it directly (no Map: chains like `client/{id}/cmd`).
 *  Fields are assigned in the constructor rather than declared with initialisers: Node 20's V8
 *  builds objects with class-field initialisers slower (about 1.2x on insert, measured). */
class Node<S, V> {
  /** This node's level text in its parent ("+" / "#" for wildcard slots). */
  declare readonly key: string;
  /** Exact-level children: the only one itself, or a Map by level text when there are several. */
  declare children: Node<S, V> | Map<string, Node<S, V>> | undefined;
  /** The `+` child. */
  declare plus: Node<S, V> | undefined;
  /** The `#` child: a leaf holding the subscribers of "<this level>/#". */
  declare hash: Node<S, V> | undefined;
  /** The filter ending at this node while it has subscribers, else "" (filters are never empty). */
  declare filter: string;
  /** The only subscriber (and its value) while there is one; with two or more all are in `more`. */
  declare sub: S | undefined;
  declare val: V | undefined;
  declare more: Subscribers<S, V> | undefined;

  constructor(key: string) {
    this.key = key;
    this.children = undefined;
    this.plus = undefined;
    this.hash = undefined;
    this.filter = "";
    this.sub = undefined;
    this.val = undefined;
    this.more = undefined;
  }
}

/** The exact child of `node` for level `text[start, end)`. A lone child is compared in place,
 *  without allocating the level's substring. */
function childAt<S, V>(node: Node<S, V>, text: string, start: number, end: number): Node<S, V> | undefined {
  const children = node.children;
  if (children === undefined) return undefined;
  if (children instanceof Node) {
    const key = children.key;
    return key.length === end - start && text.startsWith(key, start) ? children : undefined;
  }
  return children.get(text.substring(start, end));
}

/** What the tries of TopicTree and RetainedIndex share: a level text and the exact children, a
 *  lone child pointed at directly. Only the insert and prune paths are shared: each file keeps its
 *  own childAt(), which match() runs per level, so that its property loads see one node class. */
export interface LevelNode<N> {
  readonly key: string;
  children: N | Map<string, N> | undefined;
}

/** The text for a new node at `depth` of level `text[start, end)`: the level text of the node last
 *  created at that depth when it is equal, else a new substring that becomes the last one. Sharing
 *  it saves a copy per node: the same leaf names repeat under many parents (`client/{id}/cmd`),
 *  and a short copy costs 24-32 bytes. */
export function levelKey(recent: string[], depth: number, text: string, start: number, end: number): string {
  const key = recent[depth];
  if (key !== undefined && key.length === end - start && text.startsWith(key, start)) return key;
  return (recent[depth] = text.substring(start, end));
}

/** Adds `child` to the exact children of `parent`; a second child turns the lone one into a Map. */
export function linkChild<N extends LevelNode<N>>(parent: N, child: N): void {
  const children = parent.children;
  if (children === undefined) parent.children = child;
  else if (children instanceof Map) children.set(child.key, child);
  else parent.children = new Map<string, N>().set(children.key, children).set(child.key, child);
}

/** Removes `child` from the exact children of `parent`, back to the lone-child form when one is
 *  left, so that memory recovers as entries go. */
export function unlinkChild<N extends LevelNode<N>>(parent: N, child: N): void {
  const children = parent.children;
  if (children === child) parent.children = undefined;
  else if (children instanceof Map) {
    children.delete(child.key);
    if (children.size === 1) parent.children = children.values().next().value;
  }
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

/** Subscriptions by topic filter. `S` identifies a subscriber (compared with `===`), `V` is the
 *  subscription's data. Deterministic: the order in which `match` visits depends only on the
 *  sequence of add / remove calls. Shared subscriptions are the caller's business: add the
 *  filter without its `$share/{group}/` prefix. */
export class TopicTree<S, V> {
  private readonly root = new Node<S, V>("");
  private count = 0;
  private nodeCount = 1;
  // Scratch stacks of match() (node, level start), reused across calls so that matching
  // allocates nothing; a nested match() from a visitor pushes above its caller's frames.
  private readonly stackNodes: Node<S, V>[] = [];
  private readonly stackPos: number[] = [];
  // The level text of the node last created at each depth (see levelKey()).
  private readonly recentKeys: string[] = [];
  // Last-topic cache: a stream of PUBLISHes to one topic (a device streaming readings) matches
  // the same pairs every time. When match() sees the same topic twice in a row it records the
  // visited (subscriber, value, filter) triples; from the third time on it replays them without
  // walking, until add() or remove() changes the tree. Other traffic pays one string compare.
  private lastTopic = "";
  private cached = false;
  private readonly cache: unknown[] = [];
  /** Bumped by every change, so that a recording interrupted by a change is not kept. */
  private epoch = 0;
  /** match() calls in progress: nested calls (from a visitor) bypass the cache. */
  private depth = 0;

  /** Adds or replaces `subscriber`'s subscription to `filter`. Returns true when it was new. */
  add(filter: string, subscriber: S, value: V): boolean {
    let node = this.root;
    const len = filter.length;
    let start = 0;
    for (let depth = 0; start <= len; depth++) {
      let end = filter.indexOf("/", start);
      if (end === -1) end = len;
      const n = end - start;
      if (n === 1 && filter.charCodeAt(start) === PLUS) {
        let plus = node.plus;
        if (plus === undefined) {
          node.plus = plus = new Node("+");
          this.nodeCount++;
        }
        node = plus;
      } else if (n === 1 && filter.charCodeAt(start) === HASH) {
        let hash = node.hash;
        if (hash === undefined) {
          node.hash = hash = new Node("#");
          this.nodeCount++;
        }
        node = hash;
      } else {
        let child = childAt(node, filter, start, end);
        if (child === undefined) {
          child = new Node<S, V>(levelKey(this.recentKeys, depth, filter, start, end));
          linkChild(node, child);
          this.nodeCount++;
        }
        node = child;
      }
      start = end + 1;
    }
    this.invalidate(); // a new pair, or a new value for an existing one
    if (!addSubscriber(node, filter, subscriber, value)) return false;
    this.count++;
    return true;
  }

  /** The value of `subscriber`'s subscription to `filter`, if any. */
  get(filter: string, subscriber: S): V | undefined {
    const node = this.find(filter, undefined);
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
    let node = this.find(filter, path);
    if (node === undefined || !removeSubscriber(node, subscriber)) return false;
    this.invalidate();
    this.count--;
    // Prune bottom-up while the node holds nothing; path[i] is the parent of the node at depth i+1.
    for (let i = path.length - 1; i >= 0; i--) {
      if (node.filter !== "" || node.children !== undefined || node.plus !== undefined || node.hash !== undefined) break;
      this.nodeCount--;
      const parent: Node<S, V> = path[i]!;
      if (parent.plus === node) parent.plus = undefined;
      else if (parent.hash === node) parent.hash = undefined;
      else unlinkChild(parent, node);
      node = parent;
    }
    return true;
  }

  /** The node where `filter` ends, if it exists; pushes the nodes above it onto `path`. */
  private find(filter: string, path: Node<S, V>[] | undefined): Node<S, V> | undefined {
    let node: Node<S, V> | undefined = this.root;
    const len = filter.length;
    let start = 0;
    while (start <= len) {
      let end = filter.indexOf("/", start);
      if (end === -1) end = len;
      const n = end - start;
      path?.push(node);
      if (n === 1 && filter.charCodeAt(start) === PLUS) node = node.plus;
      else if (n === 1 && filter.charCodeAt(start) === HASH) node = node.hash;
      else node = childAt(node, filter, start, end);
      if (node === undefined) return undefined;
      start = end + 1;
    }
    return node;
  }

  /** Calls `visit` once per (subscriber, filter) pair whose filter matches `topic`
   *  ([MQTT-4.7.2-1]: `#` and `+` at the first level do not match topics starting with `$`).
   *  A subscriber with several matching filters is visited once per filter.
   *  `visit` must not add or remove subscriptions of this tree. */
  match(topic: string, visit: (subscriber: S, value: V, filter: string) => void): void {
    if (this.depth !== 0) {
      this.walk(topic, visit, undefined);
      return;
    }
    this.depth = 1;
    try {
      if (topic !== this.lastTopic) {
        this.lastTopic = topic;
        this.cached = false;
        this.walk(topic, visit, undefined);
      } else if (this.cached) {
        const cache = this.cache;
        for (let i = 0; i < cache.length; i += 3) visit(cache[i] as S, cache[i + 1] as V, cache[i + 2] as string);
      } else {
        // Second time in a row: walk once more and record.
        const cache = this.cache;
        cache.length = 0;
        const epoch = this.epoch;
        this.walk(topic, visit, cache);
        this.cached = epoch === this.epoch;
      }
    } finally {
      this.depth = 0;
    }
  }

  /** Forgets the last-topic cache (and the references it holds). */
  private invalidate(): void {
    this.epoch++;
    if (this.lastTopic !== "") {
      this.lastTopic = "";
      this.cached = false;
      this.cache.length = 0;
    }
  }

  /** The trie walk of match(); appends the visited triples to `record` when given. */
  private walk(topic: string, visit: (subscriber: S, value: V, filter: string) => void, record: unknown[] | undefined): void {
    const len = topic.length;
    const nodes = this.stackNodes;
    const positions = this.stackPos;
    const base = nodes.length;
    const root = this.root;
    // [MQTT-4.7.2-1] the root's wildcard slots are skipped for a `$` topic.
    const dollar = len > 0 && topic.charCodeAt(0) === DOLLAR;
    let node: Node<S, V> = root;
    let start = 0;
    try {
      for (;;) {
        // `#` matches the remaining levels, zero included: "sport/#" matches "sport".
        const hash = node.hash;
        if (hash !== undefined && !(dollar && node === root)) visitAll(hash, visit, record);
        let next: Node<S, V> | undefined;
        if (start > len) {
          // The topic is consumed: the filter ending here matches.
          visitAll(node, visit, record);
        } else {
          let end = topic.indexOf("/", start);
          if (end === -1) end = len;
          next = childAt(node, topic, start, end);
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
    } finally {
      // A visitor that threw leaves frames behind: drop them (a nested match stops at its own base).
      if (nodes.length !== base) {
        nodes.length = base;
        positions.length = base;
      }
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

function visitAll<S, V>(
  node: Node<S, V>,
  visit: (subscriber: S, value: V, filter: string) => void,
  record: unknown[] | undefined,
): void {
  const filter = node.filter;
  if (filter === "") return;
  const more = node.more;
  if (more === undefined) {
    record?.push(node.sub, node.val, filter);
    visit(node.sub as S, node.val as V, filter);
    return;
  }
  const subs = more.subs;
  const vals = more.vals;
  for (let i = 0; i < subs.length; i++) {
    record?.push(subs[i], vals[i], filter);
    visit(subs[i] as S, vals[i] as V, filter);
  }
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
