// TopicTree: the section 4.7 examples through the trie, and model-based properties against the
// one-filter predicate `matches` over a plain Map of subscriptions.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { TopicTree, topicMatches as matches } from "@harbormq/core";
import { DOLLAR, EMPTY_LEVELS, type Example, filterArb, HASH, NO_NORMALISATION, PLUS, topicArb } from "./topic-examples.js";

/** Subscribes every filter of the group in one tree; each topic must select exactly the
 *  filters whose `yes` list names it (and none whose `no` list does). */
function check(examples: readonly Example[]): void {
  const tree = new TopicTree<string, number>();
  examples.forEach((e, i) => tree.add(e.filter, `c${i}`, i));
  for (const e of examples) {
    for (const topic of [...e.yes, ...e.no]) {
      const seen: string[] = [];
      tree.match(topic, (_s, _v, filter) => seen.push(filter));
      const expected = examples.filter((x) => x.yes.includes(topic) || (!x.no.includes(topic) && matches(x.filter, topic)));
      expect(seen.sort(), topic).toEqual(expected.map((x) => x.filter).sort());
      expect(seen.includes(e.filter), `${e.filter} ~ ${topic}`).toBe(e.yes.includes(topic));
    }
  }
}

describe("MQTT 3.1.1", () => {
  it("'#' matches the parent level and any number of child levels (the examples of 4.7.1.2)", () => check(HASH));
  it("'+' matches exactly one level, empty levels included (the examples of 4.7.1.3)", () => check(PLUS));
  it("[MQTT-4.7.2-1] filters starting with a wildcard do not match topics starting with '$'", () => check(DOLLAR));
  it("empty levels are levels: '/' has two (4.7.3)", () => check(EMPTY_LEVELS));
  it("[MQTT-4.7.3-4] matching does not normalise: case, spaces, leading '/', Unicode forms", () =>
    check(NO_NORMALISATION));
  it("[MQTT-4.7.3-3] matches a 65535-byte topic of 32768 levels without exhausting the stack", () => {
    const topic = new Array<string>(32768).fill("a").join("/");
    const tree = new TopicTree<string, number>();
    tree.add(topic, "exact", 1);
    tree.add(topic.slice(0, -1) + "+", "plus", 2);
    tree.add("a/#", "hash", 3);
    tree.add(new Array<string>(32768).fill("+").join("/"), "all-plus", 4);
    const seen: string[] = [];
    tree.match(topic, (s) => seen.push(s));
    expect(seen.sort()).toEqual(["all-plus", "exact", "hash", "plus"]);
    expect(tree.remove(topic, "exact")).toBe(true);
    expect(tree.get(topic, "exact")).toBeUndefined();
  });
});

describe("MQTT 5.0", () => {
  it("'#' matches the parent level and any number of child levels (the examples of 4.7.1.2)", () => check(HASH));
  it("'+' matches exactly one level, empty levels included (the examples of 4.7.1.3)", () => check(PLUS));
  it("[MQTT-4.7.2-1] filters starting with a wildcard do not match topics starting with '$'", () => check(DOLLAR));
  it("empty levels are levels: '/' has two (4.7.3)", () => check(EMPTY_LEVELS));
  it("[MQTT-4.7.3-4] matching does not normalise: case, spaces, leading '/', Unicode forms", () =>
    check(NO_NORMALISATION));
});

describe("TopicTree", () => {
  it("add reports new pairs, replaces values, and remove reports existing pairs", () => {
    const tree = new TopicTree<number, string>();
    expect(tree.add("a/+", 1, "x")).toBe(true);
    expect(tree.add("a/+", 1, "y")).toBe(false);
    expect(tree.add("a/+", 2, "z")).toBe(true);
    expect(tree.size).toBe(2);
    expect(tree.get("a/+", 1)).toBe("y");
    expect(tree.get("a/#", 1)).toBeUndefined();
    const seen: [number, string, string][] = [];
    tree.match("a/b", (s, v, f) => seen.push([s, v, f]));
    expect(seen).toEqual([
      [1, "y", "a/+"],
      [2, "z", "a/+"],
    ]);
    expect(tree.remove("a/+", 3)).toBe(false);
    expect(tree.remove("a/b", 1)).toBe(false);
    expect(tree.remove("a", 1)).toBe(false);
    expect(tree.remove("a/+", 1)).toBe(true);
    expect(tree.remove("a/+", 1)).toBe(false);
    expect(tree.size).toBe(1);
  });

  it("visits a subscriber once per matching filter", () => {
    const tree = new TopicTree<string, number>();
    for (const f of ["a/b", "a/+", "a/#", "#", "+/b", "+/+"]) tree.add(f, "s", 0);
    const seen: string[] = [];
    tree.match("a/b", (_s, _v, f) => seen.push(f));
    expect(seen.sort()).toEqual(["#", "+/+", "+/b", "a/#", "a/+", "a/b"]);
  });

  it("prunes emptied nodes and keeps sibling branches", () => {
    const tree = new TopicTree<string, number>();
    tree.add("a/b/c", "s", 0);
    tree.add("a/+/#", "s", 0);
    const nodes = tree.nodes;
    tree.add("a/b/c/d/e", "s", 0);
    expect(tree.nodes).toBe(nodes + 2);
    tree.remove("a/b/c/d/e", "s");
    expect(tree.nodes).toBe(nodes);
    tree.remove("a/b/c", "s");
    const seen: string[] = [];
    tree.match("a/b/c", (_s, _v, f) => seen.push(f));
    expect(seen).toEqual(["a/+/#"]);
    tree.remove("a/+/#", "s");
    expect(tree.nodes).toBe(1);
    expect(tree.size).toBe(0);
  });

  it("keeps many subscribers of one filter through adds, replaces and removes", () => {
    const tree = new TopicTree<number, number>();
    for (let i = 0; i < 20; i++) expect(tree.add("a/+", i, i)).toBe(true);
    for (let i = 0; i < 20; i += 3) expect(tree.add("a/+", i, 100 + i)).toBe(false);
    for (let i = 1; i < 20; i += 2) expect(tree.remove("a/+", i)).toBe(true);
    for (let i = 0; i < 20; i++) expect(tree.get("a/+", i)).toBe(i % 2 === 1 ? undefined : i % 3 === 0 ? 100 + i : i);
    const seen: number[] = [];
    tree.match("a/x", (s, v) => {
      expect(tree.get("a/+", s)).toBe(v);
      seen.push(s);
    });
    expect(seen.sort((x, y) => x - y)).toEqual([0, 2, 4, 6, 8, 10, 12, 14, 16, 18]);
    for (let i = 0; i < 20; i += 2) expect(tree.remove("a/+", i)).toBe(true);
    expect(tree.size).toBe(0);
    expect(tree.nodes).toBe(1);
  });

  it("stays usable after a visitor throws mid-match", () => {
    const tree = new TopicTree<string, number>();
    for (const f of ["a/b", "a/+", "+/b", "#", "+/+"]) tree.add(f, f, 0);
    expect(() =>
      tree.match("a/b", (s) => {
        if (s === "a/b") throw new Error("boom");
      }),
    ).toThrow("boom");
    // No frames of the aborted walk are left behind in the reused stack.
    expect((tree as unknown as { stackNodes: unknown[] }).stackNodes).toHaveLength(0);
    const seen: string[] = [];
    tree.match("a/b", (s) => seen.push(s));
    expect(seen.sort()).toEqual(["#", "+/+", "+/b", "a/+", "a/b"]);
  });

  it("replays a repeated topic from its cache, and sees every change made between matches", () => {
    const tree = new TopicTree<string, number>();
    tree.add("a/+", "x", 1);
    const seen = (topic: string): string[] => {
      const out: string[] = [];
      tree.match(topic, (s, v, f) => out.push(`${s}:${v}:${f}`));
      return out.sort();
    };
    for (let i = 0; i < 4; i++) expect(seen("a/b")).toEqual(["x:1:a/+"]);
    tree.add("a/b", "y", 2);
    expect(seen("a/b")).toEqual(["x:1:a/+", "y:2:a/b"]);
    expect(seen("a/b")).toEqual(["x:1:a/+", "y:2:a/b"]);
    expect(seen("a/b")).toEqual(["x:1:a/+", "y:2:a/b"]);
    tree.add("a/+", "x", 7); // a new value for an existing pair
    expect(seen("a/b")).toEqual(["x:7:a/+", "y:2:a/b"]);
    expect(seen("a/b")).toEqual(["x:7:a/+", "y:2:a/b"]);
    tree.remove("a/b", "y");
    expect(seen("a/b")).toEqual(["x:7:a/+"]);
    expect(seen("a/c")).toEqual(["x:7:a/+"]);
    expect(seen("a/b")).toEqual(["x:7:a/+"]);
    tree.remove("a/+", "x");
    expect(seen("a/b")).toEqual([]);
    expect(seen("a/b")).toEqual([]);
    expect(seen("a/b")).toEqual([]);
  });

  it("a visitor that throws while a repeated topic is recorded leaves no partial cache", () => {
    const tree = new TopicTree<string, number>();
    for (const f of ["a/b", "a/+", "#"]) tree.add(f, f, 0);
    const all = (): string[] => {
      const out: string[] = [];
      tree.match("a/b", (s) => out.push(s));
      return out.sort();
    };
    expect(all()).toEqual(["#", "a/+", "a/b"]);
    let calls = 0;
    expect(() =>
      tree.match("a/b", () => {
        if (++calls === 2) throw new Error("boom");
      }),
    ).toThrow("boom");
    expect(all()).toEqual(["#", "a/+", "a/b"]);
    expect(all()).toEqual(["#", "a/+", "a/b"]);
  });

  it("allows a nested match from inside a visitor", () => {
    const tree = new TopicTree<string, number>();
    tree.add("a/+", "x", 1);
    tree.add("+/b", "y", 2);
    tree.add("c", "z", 3);
    const outer: string[] = [];
    const inner: string[] = [];
    tree.match("a/b", (s) => {
      outer.push(s);
      tree.match("c", (t) => inner.push(t));
    });
    expect(outer.sort()).toEqual(["x", "y"]);
    expect(inner).toEqual(["z", "z"]);
  });
});

// ---------------------------------------------------------------------------------------------
// Properties

// Up to 12 subscribers per filter, so that both the inline, the array and the indexed forms occur.
const subscriberArb = fc.integer({ min: 1, max: 12 });

type Model = Map<string, Map<number, number>>;
type Visit = [number, number, string];

function expected(model: Model, topic: string): Visit[] {
  const out: Visit[] = [];
  for (const [filter, subs] of model) if (matches(filter, topic)) for (const [s, v] of subs) out.push([s, v, filter]);
  return sortVisits(out);
}
function actual(tree: TopicTree<number, number>, topic: string): Visit[] {
  const out: Visit[] = [];
  tree.match(topic, (s, v, f) => out.push([s, v, f]));
  return sortVisits(out);
}
function sortVisits(v: Visit[]): Visit[] {
  return v.sort((a, b) => (a[2] < b[2] ? -1 : a[2] > b[2] ? 1 : a[0] - b[0]));
}
function modelSize(model: Model): number {
  let n = 0;
  for (const subs of model.values()) n += subs.size;
  return n;
}

class AddCommand implements fc.Command<Model, TopicTree<number, number>> {
  constructor(
    readonly filter: string,
    readonly subscriber: number,
    readonly value: number,
  ) {}
  check(): boolean {
    return true;
  }
  run(model: Model, tree: TopicTree<number, number>): void {
    let subs = model.get(this.filter);
    if (subs === undefined) model.set(this.filter, (subs = new Map()));
    const isNew = !subs.has(this.subscriber);
    subs.set(this.subscriber, this.value);
    expect(tree.add(this.filter, this.subscriber, this.value)).toBe(isNew);
    expect(tree.size).toBe(modelSize(model));
  }
  toString(): string {
    return `add(${JSON.stringify(this.filter)}, ${this.subscriber}, ${this.value})`;
  }
}
class RemoveCommand implements fc.Command<Model, TopicTree<number, number>> {
  constructor(
    readonly filter: string,
    readonly subscriber: number,
  ) {}
  check(): boolean {
    return true;
  }
  run(model: Model, tree: TopicTree<number, number>): void {
    const subs = model.get(this.filter);
    const existed = subs?.delete(this.subscriber) ?? false;
    if (subs?.size === 0) model.delete(this.filter);
    expect(tree.remove(this.filter, this.subscriber)).toBe(existed);
    expect(tree.size).toBe(modelSize(model));
  }
  toString(): string {
    return `remove(${JSON.stringify(this.filter)}, ${this.subscriber})`;
  }
}
class MatchCommand implements fc.Command<Model, TopicTree<number, number>> {
  constructor(readonly topic: string) {}
  check(): boolean {
    return true;
  }
  run(model: Model, tree: TopicTree<number, number>): void {
    expect(actual(tree, this.topic)).toEqual(expected(model, this.topic));
  }
  toString(): string {
    return `match(${JSON.stringify(this.topic)})`;
  }
}
/** Matches one topic three times in a row: the walk, the recording walk, the cached replay. */
class MatchRepeatedCommand implements fc.Command<Model, TopicTree<number, number>> {
  constructor(readonly topic: string) {}
  check(): boolean {
    return true;
  }
  run(model: Model, tree: TopicTree<number, number>): void {
    const want = expected(model, this.topic);
    for (let i = 0; i < 3; i++) expect(actual(tree, this.topic)).toEqual(want);
  }
  toString(): string {
    return `matchRepeated(${JSON.stringify(this.topic)})`;
  }
}
/** Removes a subscription the model holds (random removes rarely hit one). */
class RemoveExistingCommand implements fc.Command<Model, TopicTree<number, number>> {
  constructor(readonly pick: number) {}
  check(model: Model): boolean {
    return model.size > 0;
  }
  run(model: Model, tree: TopicTree<number, number>): void {
    const filters = [...model.keys()];
    const filter = filters[this.pick % filters.length]!;
    const subs = model.get(filter)!;
    const subscriber = [...subs.keys()][this.pick % subs.size]!;
    new RemoveCommand(filter, subscriber).run(model, tree);
  }
  toString(): string {
    return `removeExisting(${this.pick})`;
  }
}

describe("TopicTree (properties)", () => {
  it("visits exactly the (subscriber, filter) pairs that `matches` selects", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(filterArb, subscriberArb), { maxLength: 40 }),
        fc.array(topicArb, { minLength: 1, maxLength: 10 }),
        (subscriptions, topics) => {
          const tree = new TopicTree<number, number>();
          const model: Model = new Map();
          subscriptions.forEach(([f, s], i) => {
            tree.add(f, s, i);
            let subs = model.get(f);
            if (subs === undefined) model.set(f, (subs = new Map()));
            subs.set(s, i);
          });
          expect(tree.size).toBe(modelSize(model));
          for (const t of topics) expect(actual(tree, t)).toEqual(expected(model, t));
        },
      ),
      { numRuns: 300 },
    );
  });

  it("stays equal to a Map model through random add / remove / match sequences, and empties fully", () => {
    const commands = fc.commands(
      [
        fc.tuple(filterArb, subscriberArb, fc.nat(9)).map(([f, s, v]) => new AddCommand(f, s, v)),
        // A few hot filters collect many subscribers.
        fc.tuple(fc.constantFrom("a/+", "#", "a", "$a/#"), subscriberArb, fc.nat(9)).map(([f, s, v]) => new AddCommand(f, s, v)),
        fc.tuple(filterArb, subscriberArb).map(([f, s]) => new RemoveCommand(f, s)),
        fc.nat().map((n) => new RemoveExistingCommand(n)),
        topicArb.map((t) => new MatchCommand(t)),
        topicArb.map((t) => new MatchRepeatedCommand(t)),
        // The same topic over and over, so that cached results meet adds and removes.
        fc.constant(new MatchRepeatedCommand("a/b")),
        fc.constant(new MatchCommand("a/b")),
      ],
      { maxCommands: 80 },
    );
    fc.assert(
      fc.property(commands, (cmds) => {
        const model: Model = new Map();
        const tree = new TopicTree<number, number>();
        fc.modelRun(() => ({ model, real: tree }), cmds);
        // Removing everything leaves the bare root.
        for (const [filter, subs] of model) for (const s of subs.keys()) expect(tree.remove(filter, s)).toBe(true);
        expect(tree.size).toBe(0);
        expect(tree.nodes).toBe(1);
        for (const t of ["a", "$a/b", "/", "a/b/ab"]) expect(actual(tree, t)).toEqual([]);
      }),
      { numRuns: 300 },
    );
  });
});
