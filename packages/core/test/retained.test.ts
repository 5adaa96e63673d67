// RetainedIndex: the section 4.7 examples from the retained side (a new subscription's filter
// against stored topic names), and properties against the naive filter over all topics.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { RetainedIndex, TopicTree, topicMatches as matches } from "@harbormq/core";
import { DOLLAR, EMPTY_LEVELS, type Example, filterArb, HASH, NO_NORMALISATION, PLUS, topicArb } from "./topic-examples.js";

/** Retains every topic of the group; each filter must select exactly its `yes` topics among
 *  them (and whatever else of the group `matches` accepts). */
function check(examples: readonly Example[]): void {
  const index = new RetainedIndex<string>();
  const topics = [...new Set(examples.flatMap((e) => [...e.yes, ...e.no]))];
  for (const t of topics) index.set(t, `m:${t}`);
  for (const e of examples) {
    const seen: string[] = [];
    index.match(e.filter, (topic, message) => {
      expect(message).toBe(`m:${topic}`);
      seen.push(topic);
    });
    for (const t of e.yes) expect(seen, `${e.filter} ~ ${t}`).toContain(t);
    for (const t of e.no) expect(seen, `${e.filter} !~ ${t}`).not.toContain(t);
    expect(seen.sort()).toEqual(topics.filter((t) => matches(e.filter, t)).sort());
  }
}

describe("MQTT 3.1.1", () => {
  it("[MQTT-3.3.1-6] '#' selects the retained topics at the parent level and below (the examples of 4.7.1.2)", () => check(HASH));
  it("[MQTT-3.3.1-6] '+' selects the retained topics one level deep, empty levels included (the examples of 4.7.1.3)", () => check(PLUS));
  it("[MQTT-4.7.2-1] filters starting with a wildcard skip retained topics starting with '$'", () => check(DOLLAR));
  it("[MQTT-3.3.1-6] empty levels are levels: '/' has two (4.7.3)", () => check(EMPTY_LEVELS));
  it("[MQTT-4.7.3-4] matching does not normalise: case, spaces, leading '/', Unicode forms", () =>
    check(NO_NORMALISATION));
  it("[MQTT-4.7.3-3] stores and matches a 65535-byte topic of 32768 levels without exhausting the stack", () => {
    const topic = new Array<string>(32768).fill("a").join("/");
    const index = new RetainedIndex<number>();
    index.set(topic, 1);
    expect(index.get(topic)).toBe(1);
    for (const filter of ["#", "a/#", topic, new Array<string>(32768).fill("+").join("/")]) {
      const seen: string[] = [];
      index.match(filter, (t) => seen.push(t));
      expect(seen).toEqual([topic]);
    }
    expect(index.delete(topic)).toBe(true);
    expect(index.size).toBe(0);
  });
});

describe("MQTT 5.0", () => {
  it("[MQTT-3.3.1-9] '#' selects the retained topics at the parent level and below (the examples of 4.7.1.2)", () => check(HASH));
  it("[MQTT-3.3.1-9] '+' selects the retained topics one level deep, empty levels included (the examples of 4.7.1.3)", () => check(PLUS));
  it("[MQTT-4.7.2-1] filters starting with a wildcard skip retained topics starting with '$'", () => check(DOLLAR));
  it("[MQTT-3.3.1-9] empty levels are levels: '/' has two (4.7.3)", () => check(EMPTY_LEVELS));
  it("[MQTT-4.7.3-4] matching does not normalise: case, spaces, leading '/', Unicode forms", () =>
    check(NO_NORMALISATION));
});

describe("RetainedIndex", () => {
  it("sets, replaces, gets and deletes by exact topic", () => {
    const index = new RetainedIndex<string>();
    index.set("a/b", "1");
    index.set("a/b", "2");
    index.set("a", "3");
    expect(index.size).toBe(2);
    expect(index.get("a/b")).toBe("2");
    expect(index.get("a")).toBe("3");
    expect(index.get("a/b/c")).toBeUndefined();
    expect(index.get("a/")).toBeUndefined();
    expect(index.delete("a/b/c")).toBe(false);
    expect(index.delete("a")).toBe(true);
    expect(index.delete("a")).toBe(false);
    expect(index.get("a/b")).toBe("2");
    expect([...index.values()]).toEqual(["2"]);
    expect(index.delete("a/b")).toBe(true);
    expect(index.size).toBe(0);
    expect([...index.values()]).toEqual([]);
  });

  it("matches many siblings under '+' and a single branch under an exact level", () => {
    const index = new RetainedIndex<number>();
    for (let i = 0; i < 10_000; i++) index.set(`site/${i}/temp`, i);
    const seen: string[] = [];
    index.match("site/42/+", (t) => seen.push(t));
    expect(seen).toEqual(["site/42/temp"]);
    const all: number[] = [];
    index.match("site/+/temp", (_t, m) => all.push(m));
    expect(all.length).toBe(10_000);
  });
});

// ---------------------------------------------------------------------------------------------
// Properties

type Op = { readonly kind: "set"; readonly topic: string; readonly value: number } | { readonly kind: "delete"; readonly topic: string };
const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant("set" as const), topic: topicArb, value: fc.nat(99) }),
  fc.record({ kind: fc.constant("delete" as const), topic: topicArb }),
);

function collect(index: RetainedIndex<number>, filter: string): [string, number][] {
  const out: [string, number][] = [];
  index.match(filter, (t, m) => out.push([t, m]));
  return out.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
}
function naive(model: Map<string, number>, filter: string): [string, number][] {
  return [...model]
    .filter(([t]) => matches(filter, t))
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
}

describe("RetainedIndex (properties)", () => {
  it("match equals the naive filter over all retained topics, through sets and deletes", () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 60 }), fc.array(filterArb, { minLength: 1, maxLength: 10 }), (ops, filters) => {
        const index = new RetainedIndex<number>();
        const model = new Map<string, number>();
        for (const op of ops) {
          if (op.kind === "set") {
            index.set(op.topic, op.value);
            model.set(op.topic, op.value);
          } else {
            expect(index.delete(op.topic)).toBe(model.delete(op.topic));
          }
          expect(index.size).toBe(model.size);
        }
        for (const f of filters) expect(collect(index, f)).toEqual(naive(model, f));
        for (const [t, v] of model) expect(index.get(t)).toBe(v);
        expect([...index.values()].sort()).toEqual([...model.values()].sort());
        // Each topic is visited at most once, even by overlapping wildcards.
        for (const f of filters) {
          const topics = collect(index, f).map(([t]) => t);
          expect(new Set(topics).size).toBe(topics.length);
        }
        // Deleting everything leaves an empty index that matches nothing.
        for (const t of model.keys()) expect(index.delete(t)).toBe(true);
        expect(index.size).toBe(0);
        expect(index.nodes).toBe(1);
        expect(collect(index, "#")).toEqual([]);
      }),
      { numRuns: 300 },
    );
  });

  it("agrees with TopicTree: filter F selects retained topic T exactly when T is routed to F", () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(topicArb, { maxLength: 20 }),
        fc.uniqueArray(filterArb, { minLength: 1, maxLength: 20 }),
        (topics, filters) => {
          const index = new RetainedIndex<number>();
          topics.forEach((t, i) => index.set(t, i));
          const tree = new TopicTree<string, number>();
          for (const f of filters) tree.add(f, f, 0);
          const fromTree = new Set<string>();
          for (const t of topics) tree.match(t, (_s, _v, f) => fromTree.add(`${f} ${t}`));
          const fromIndex = new Set<string>();
          for (const f of filters) index.match(f, (t) => fromIndex.add(`${f} ${t}`));
          expect([...fromIndex].sort()).toEqual([...fromTree].sort());
        },
      ),
      { numRuns: 300 },
    );
  });
});
