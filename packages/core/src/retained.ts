// Retained messages by topic name ([MQTT-3.3.1-5]), matched against a subscription's filter.
// A trie keyed by topic level, so that a filter walks only the branches it can match: an exact
// level is one lookup, `+` visits the children of one node, `#` a single subtree.

const PLUS = 43; // "+"
const HASH = 35; // "#"
const DOLLAR = 36; // "$"

/** One topic level. Fields are assigned in the constructor (faster than class-field
 *  initialisers on Node 20, see topic-tree.ts). */
class Node<M> {
  declare children: Map<string, Node<M>> | undefined;
  /** The topic ending at this node when it holds a message. */
  declare topic: string;
  declare message: M | undefined;
  declare has: boolean;

  constructor() {
    this.children = undefined;
    this.topic = "";
    this.message = undefined;
    this.has = false;
  }
}

export class RetainedIndex<M> {
  private readonly root = new Node<M>();
  private count = 0;
  private nodeCount = 1;

  /** Stores or replaces the retained message of `topic`. */
  set(topic: string, message: M): void {
    let node = this.root;
    const len = topic.length;
    let start = 0;
    while (start <= len) {
      let end = topic.indexOf("/", start);
      if (end === -1) end = len;
      const level = topic.substring(start, end);
      let children = node.children;
      if (children === undefined) node.children = children = new Map();
      let child = children.get(level);
      if (child === undefined) {
        children.set(level, (child = new Node()));
        this.nodeCount++;
      }
      node = child;
      start = end + 1;
    }
    if (!node.has) {
      node.has = true;
      node.topic = topic;
      this.count++;
    }
    node.message = message;
  }

  /** Deletes the retained message of `topic`; true when there was one. Empty nodes are pruned. */
  delete(topic: string): boolean {
    const path: Node<M>[] = [];
    const keys: string[] = [];
    let node: Node<M> | undefined = this.root;
    const len = topic.length;
    let start = 0;
    while (start <= len) {
      let end = topic.indexOf("/", start);
      if (end === -1) end = len;
      const level = topic.substring(start, end);
      path.push(node);
      keys.push(level);
      node = node.children?.get(level);
      if (node === undefined) return false;
      start = end + 1;
    }
    if (!node.has) return false;
    node.has = false;
    node.message = undefined;
    node.topic = "";
    this.count--;
    for (let i = path.length - 1; i >= 0 && !node.has && node.children === undefined; i--) {
      const parent: Node<M> = path[i]!;
      const children = parent.children!;
      children.delete(keys[i]!);
      this.nodeCount--;
      if (children.size === 0) parent.children = undefined;
      node = parent;
    }
    return true;
  }

  get(topic: string): M | undefined {
    const node = this.find(topic);
    return node !== undefined && node.has ? node.message : undefined;
  }

  /** Calls `visit` for every retained message whose topic matches `filter`
   *  ([MQTT-4.7.2-1]: a filter starting with `+` or `#` skips topics starting with `$`).
   *  `visit` must not set or delete retained messages of this index. */
  match(filter: string, visit: (topic: string, message: M) => void): void {
    const len = filter.length;
    // Explicit stack of (node, filter level start): no recursion depth limit on long filters.
    const nodes: Node<M>[] = [this.root];
    const positions: number[] = [0];
    for (;;) {
      const node = nodes.pop();
      if (node === undefined) return;
      let start = positions.pop()!;
      let cur: Node<M> | undefined = node;
      while (cur !== undefined) {
        const atRoot = cur === this.root;
        if (start > len) {
          // The filter is consumed: the topic ending here matches.
          if (cur.has) visit(cur.topic, cur.message as M);
          break;
        }
        let end = filter.indexOf("/", start);
        if (end === -1) end = len;
        const n = end - start;
        const children: Map<string, Node<M>> | undefined = cur.children;
        if (n === 1 && filter.charCodeAt(start) === HASH) {
          // `#` matches this level (the parent: "sport/#" matches "sport") and everything below.
          if (!atRoot && cur.has) visit(cur.topic, cur.message as M);
          if (children !== undefined) {
            for (const [key, child] of children) {
              if (atRoot && key.charCodeAt(0) === DOLLAR) continue; // [MQTT-4.7.2-1]
              visitSubtree(child, visit);
            }
          }
          break;
        }
        if (children === undefined) break;
        if (n === 1 && filter.charCodeAt(start) === PLUS) {
          for (const [key, child] of children) {
            if (atRoot && key.charCodeAt(0) === DOLLAR) continue; // [MQTT-4.7.2-1]
            nodes.push(child);
            positions.push(end + 1);
          }
          break;
        }
        cur = children.get(filter.substring(start, end));
        start = end + 1;
      }
    }
  }

  get size(): number {
    return this.count;
  }

  /** Number of trie nodes, the root included (1 when empty): for memory statistics and tests. */
  get nodes(): number {
    return this.nodeCount;
  }

  /** All retained messages (for snapshots and tests), depth first. */
  *values(): IterableIterator<M> {
    const stack: Node<M>[] = [this.root];
    for (let node = stack.pop(); node !== undefined; node = stack.pop()) {
      if (node.has) yield node.message as M;
      if (node.children !== undefined) for (const child of node.children.values()) stack.push(child);
    }
  }

  private find(topic: string): Node<M> | undefined {
    let node: Node<M> | undefined = this.root;
    const len = topic.length;
    let start = 0;
    while (start <= len && node !== undefined) {
      let end = topic.indexOf("/", start);
      if (end === -1) end = len;
      node = node.children?.get(topic.substring(start, end));
      start = end + 1;
    }
    return node;
  }
}

function visitSubtree<M>(node: Node<M>, visit: (topic: string, message: M) => void): void {
  const stack: Node<M>[] = [node];
  for (let cur = stack.pop(); cur !== undefined; cur = stack.pop()) {
    if (cur.has) visit(cur.topic, cur.message as M);
    if (cur.children !== undefined) for (const child of cur.children.values()) stack.push(child);
  }
}
