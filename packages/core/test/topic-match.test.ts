// Section 4.7 examples for the one-filter predicate, and a differential property against a
// deliberately naive split-based reference.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { topicMatches as matches } from "@harbormq/core";
import { DOLLAR, EMPTY_LEVELS, type Example, filterArb, HASH, NO_NORMALISATION, PLUS, topicArb } from "./topic-examples.js";

function check(examples: readonly Example[]): void {
  for (const { filter, yes, no } of examples) {
    for (const topic of yes) expect(matches(filter, topic), `${filter} ~ ${topic}`).toBe(true);
    for (const topic of no) expect(matches(filter, topic), `${filter} !~ ${topic}`).toBe(false);
  }
}

describe("MQTT 3.1.1", () => {
  it("'#' matches the parent level and any number of child levels (the examples of 4.7.1.2)", () => check(HASH));
  it("'+' matches exactly one level, empty levels included (the examples of 4.7.1.3)", () => check(PLUS));
  it("[MQTT-4.7.2-1] filters starting with a wildcard do not match topics starting with '$'", () => check(DOLLAR));
  it("empty levels are levels: '/' has two (4.7.3)", () => check(EMPTY_LEVELS));
  it("[MQTT-4.7.3-4] matching does not normalise: case, spaces, leading '/', Unicode forms", () =>
    check(NO_NORMALISATION));
});

describe("MQTT 5.0", () => {
  it("'#' matches the parent level and any number of child levels (the examples of 4.7.1.2)", () => check(HASH));
  it("'+' matches exactly one level, empty levels included (the examples of 4.7.1.3)", () => check(PLUS));
  it("[MQTT-4.7.2-1] filters starting with a wildcard do not match topics starting with '$'", () => check(DOLLAR));
  it("empty levels are levels: '/' has two (4.7.3)", () => check(EMPTY_LEVELS));
  it("[MQTT-4.7.3-4] matching does not normalise: case, spaces, leading '/', Unicode forms", () =>
    check(NO_NORMALISATION));
});

/** The obvious definition, kept naive on purpose (splits, allocates). */
function reference(filter: string, topic: string): boolean {
  if (topic.startsWith("$") && (filter.startsWith("+") || filter.startsWith("#"))) return false;
  const f = filter.split("/");
  const t = topic.split("/");
  for (let i = 0; i < f.length; i++) {
    if (f[i] === "#") return true;
    if (i >= t.length) return false;
    if (f[i] !== "+" && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}

describe("matches (properties)", () => {
  it("agrees with the split-based reference", () => {
    fc.assert(
      fc.property(filterArb, topicArb, (filter, topic) => {
        expect(matches(filter, topic)).toBe(reference(filter, topic));
      }),
      { numRuns: 2000 },
    );
  });

  it("an exact filter matches only its own topic", () => {
    fc.assert(
      fc.property(topicArb, topicArb, (a, b) => {
        expect(matches(a, b)).toBe(a === b);
      }),
      { numRuns: 1000 },
    );
  });

  it("'#' matches every topic not starting with '$'", () => {
    fc.assert(
      fc.property(topicArb, (t) => {
        expect(matches("#", t)).toBe(!t.startsWith("$"));
      }),
    );
  });
});
