// Retained messages by topic name ([MQTT-3.3.1-5]), matched against a subscription's filter.
// A trie keyed by topic level, so that a filter walks only the branches it can match: an exact
// level is one lookup, `+` visits the children of one node, `#` a single subtree.

import { levelKey, linkChild, unlinkChild } from "./topic-tree.js";

const PLUS = 43; // "+"
const HASH = 35; // "#"
const DOLLAR = 36; // "$"

/** One topic level. As in topic-tree.ts, a lone child is pointed at directly (no Map), and
 *  fields are assigned in the constructor (faster than class-field initialisers on Node 20). */
class Node<M> {
  /** This node's level text in its parent. */
  declare readonly key: string;
  /** The only child itself, or a Map by level text when there are several. */
  declare children: Node<M> | Map<string, Node<M>> | undefined;
  /** The topic ending at this node when it holds a message. */
  declare topic: string;
  declare message: M | undefined;
  declare has: boolean;

  constructor(key: string) {
    this.key = key;
    this.children = undefined;
    this.topic = "";
    this.message = undefined;
    this.has = false;
  }
}

/** The child of `node` for level `text[start, end)`; a lone child is compared in place. */
function childAt<M>(node: Node<M>, text: string, start: number, end: number): Node<M> | undefined {
  const children = node.children;
  if (children === undefined) return undefined;
  if (children instanceof Node) {
    const key = children.key;
    return key.length === end - start && text.startsWith(key, start) ? children : undefined;
  }
  return children.get(text.substring(start, end));
}

export class RetainedIndex<M> {
  private readonly root = new Node<M>("");
  private count = 0;
  private nodeCount = 1;
  // The level text of the node last created at each depth (see levelKey() in topic-tree.ts:
  // `client/{id}/status` repeats "status" under every id).
  private readonly recentKeys: string[] = [];

  /** Stores or replaces the retained message of `topic`. */
  set(topic: string, message: M): void {
    let node = this.root;
    const len = topic.length;
    let start = 0;
    for (let depth = 0; start <= len; depth++) {
      let end = topic.indexOf("/", start);
      if (end === -1) end = len;
      let child = childAt(node, topic, start, end);
      if (child === undefined) {
        child = new Node<M>(levelKey(this.recentKeys, depth, topic, start, end));
        linkChild(node, child);
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
    let node = this.find(topic, path);
    if (node === undefined || !node.has) return false;
    node.has = false;
    node.message = undefined;
    node.topic = "";
    this.count--;
    // path[i] is the parent of the node at depth i+1.
    for (let i = path.length - 1; i >= 0 && !node.has && node.children === undefined; i--) {
      const parent: Node<M> = path[i]!;
      unlinkChild(parent, node);
      this.nodeCount--;
      node = parent;
    }
    return true;
  }

  get(topic: string): M | undefined {
    const node = this.find(topic, undefined);
    return node !== undefined && node.has ? node.message : undefined;
  }

  /** Calls `visit` for every retained message whose topic matches `filter`
   *  ([MQTT-4.7.2-1]: a filter starting with `+` or `#` skips topics starting with `$`).
   *  `visit` must not set or delete retained messages of this index. */
  match(filter: string, visit: (topic: string, message: M) => void): void {
    const len = filter.length;
    const root = this.root;
    // Explicit stack of (node, filter level start): no recursion depth limit on long filters.
    const nodes: Node<M>[] = [root];
    const positions: number[] = [0];
    for (;;) {
      let node = nodes.pop();
      if (node === undefined) return;
      let start = positions.pop()!;
      while (node !== undefined) {
        if (start > len) {
          // The filter is consumed: the topic ending here matches.
          if (node.has) visit(node.topic, node.message as M);
          break;
        }
        let end = filter.indexOf("/", start);
        if (end === -1) end = len;
        const n = end - start;
        const atRoot = node === root;
        if (n === 1 && filter.charCodeAt(start) === HASH) {
          // `#` matches this level (the parent: "sport/#" matches "sport") and everything below;
          // the root holds no topic (topics have at least one character, [MQTT-4.7.3-1]).
          if (node.has) visit(node.topic, node.message as M);
          forEachChild(node, atRoot, (child) => visitSubtree(child, visit));
          break;
        }
        if (n === 1 && filter.charCodeAt(start) === PLUS) {
          const next = end + 1;
          forEachChild(node, atRoot, (child) => {
            nodes.push(child);
            positions.push(next);
          });
          break;
        }
        node = childAt(node, filter, start, end);
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
      pushChildren(node, stack);
    }
  }

  private find(topic: string, path: Node<M>[] | undefined): Node<M> | undefined {
    let node: Node<M> | undefined = this.root;
    const len = topic.length;
    let start = 0;
    while (start <= len) {
      let end = topic.indexOf("/", start);
      if (end === -1) end = len;
      path?.push(node);
      node = childAt(node, topic, start, end);
      if (node === undefined) return undefined;
      start = end + 1;
    }
    return node;
  }
}

/** Calls `fn` for each child; at the root, skips the levels starting with `$` ([MQTT-4.7.2-1]:
 *  reached through a wildcard, they must not match). Retained matching runs once per
 *  subscription, not per message: a closure here is not on the publish hot path. */
function forEachChild<M>(node: Node<M>, atRoot: boolean, fn: (child: Node<M>) => void): void {
  const children = node.children;
  if (children === undefined) return;
  if (children instanceof Node) {
    if (!(atRoot && children.key.charCodeAt(0) === DOLLAR)) fn(children);
    return;
  }
  for (const child of children.values()) if (!(atRoot && child.key.charCodeAt(0) === DOLLAR)) fn(child);
}

function pushChildren<M>(node: Node<M>, stack: Node<M>[]): void {
  const children = node.children;
  if (children === undefined) return;
  if (children instanceof Node) stack.push(children);
  else for (const child of children.values()) stack.push(child);
}

function visitSubtree<M>(node: Node<M>, visit: (topic: string, message: M) => void): void {
  const stack: Node<M>[] = [node];
  for (let cur = stack.pop(); cur !== undefined; cur = stack.pop()) {
    if (cur.has) visit(cur.topic, cur.message as M);
    pushChildren(cur, stack);
  }
}
