// Section 4.7 examples for the one-filter predicate, and a differential property against a
// deliberately naive split-based reference.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { topicMatches as matches } from "@harbormq/core";

type Example = { readonly filter: string; readonly yes: readonly string[]; readonly no: readonly string[] };

/** The examples of 4.7.1.2 (multi-level wildcard). */
const HASH: readonly Example[] = [
  {
    filter: "sport/tennis/player1/#",
    yes: ["sport/tennis/player1", "sport/tennis/player1/ranking", "sport/tennis/player1/score/wimbledon"],
    no: ["sport/tennis/player2", "sport/tennis", "sport/tennis/player10", "sport/tennis/player1x/ranking"],
  },
  { filter: "sport/#", yes: ["sport", "sport/", "sport/tennis", "sport/tennis/player1"], no: ["sports", "/sport", "spor"] },
  { filter: "#", yes: ["sport", "/", "a/b/c", "/finance"], no: [] },
  { filter: "/#", yes: ["/", "/finance", "/a/b"], no: ["finance", "a/b"] },
];
/** The examples of 4.7.1.3 (single-level wildcard). */
const PLUS: readonly Example[] = [
  {
    filter: "sport/tennis/+",
    yes: ["sport/tennis/player1", "sport/tennis/player2", "sport/tennis/"],
    no: ["sport/tennis/player1/ranking", "sport/tennis", "sport/tennisx/player1"],
  },
  { filter: "sport/+", yes: ["sport/", "sport/x"], no: ["sport", "sport/x/y"] },
  { filter: "+", yes: ["finance", "x"], no: ["/finance", "a/b", "finance/"] },
  { filter: "+/+", yes: ["/finance", "finance/", "/", "a/b"], no: ["finance", "a/b/c"] },
  { filter: "/+", yes: ["/finance", "/"], no: ["finance", "/a/b"] },
  { filter: "+/tennis/#", yes: ["sport/tennis", "sport/tennis/player1", "/tennis"], no: ["sport/football", "tennis"] },
  { filter: "sport/+/player1", yes: ["sport/tennis/player1", "sport//player1"], no: ["sport/player1", "sport/a/b/player1"] },
];
/** 4.7.2: topics beginning with `$`. */
const DOLLAR: readonly Example[] = [
  { filter: "#", yes: ["SYS/monitor"], no: ["$SYS/monitor/Clients", "$SYS", "$", "$share/g/t"] },
  { filter: "+/monitor/Clients", yes: ["SYS/monitor/Clients"], no: ["$SYS/monitor/Clients"] },
  { filter: "+", yes: ["SYS"], no: ["$SYS", "$"] },
  { filter: "+/#", yes: ["a", "a/b"], no: ["$SYS", "$SYS/a"] },
  { filter: "$SYS/#", yes: ["$SYS/monitor/Clients", "$SYS", "$SYS/"], no: ["SYS/monitor", "$SYSX"] },
  { filter: "$SYS/monitor/+", yes: ["$SYS/monitor/Clients"], no: ["$SYS/monitor", "SYS/monitor/Clients"] },
  // Only the first level counts: `$` further down is an ordinary character.
  { filter: "a/+", yes: ["a/$SYS", "a/$"], no: ["$a/b"] },
  { filter: "a/#", yes: ["a/$SYS/x"], no: ["$a"] },
  { filter: "/#", yes: ["/$SYS"], no: ["$SYS"] },
];
/** 4.7.3: one character at least, empty levels are levels. */
const EMPTY_LEVELS: readonly Example[] = [
  { filter: "/", yes: ["/"], no: ["//", "a/", "/a"] },
  { filter: "+/+", yes: ["/"], no: ["//"] },
  { filter: "+/+/+", yes: ["//", "a//b"], no: ["/", "///"] },
  { filter: "a//b", yes: ["a//b"], no: ["a/b", "a///b"] },
];
/** 4.7.3: no normalisation, case-sensitive, spaces significant. */
const NO_NORMALISATION: readonly Example[] = [
  { filter: "ACCOUNTS", yes: ["ACCOUNTS"], no: ["Accounts", "accounts"] },
  { filter: "Accounts payable", yes: ["Accounts payable"], no: ["Accounts  payable", "Accounts", "Accountspayable"] },
  { filter: "/finance", yes: ["/finance"], no: ["finance", "finance/"] },
  { filter: "finance", yes: ["finance"], no: ["/finance", "finance/", " finance"] },
  // Precomposed U+00E9 and "e" + combining U+0301 are different topic names.
  { filter: "caf\u00e9/+", yes: ["caf\u00e9/x"], no: ["cafe\u0301/x", "CAF\u00c9/x"] },
  { filter: "+/\u{1F600}", yes: ["x/\u{1F600}"], no: ["x/\u{1F601}", "x/\uD83D"] },
];

function check(examples: readonly Example[]): void {
  for (const { filter, yes, no } of examples) {
    for (const topic of yes) expect(matches(filter, topic), `${filter} ~ ${topic}`).toBe(true);
    for (const topic of no) expect(matches(filter, topic), `${filter} !~ ${topic}`).toBe(false);
  }
}

describe("MQTT 3.1.1", () => {
  it("[MQTT-4.7.1-2] '#' matches the parent level and any number of child levels", () => check(HASH));
  it("[MQTT-4.7.1-3] '+' matches exactly one level, empty levels included", () => check(PLUS));
  it("[MQTT-4.7.2-1] filters starting with a wildcard do not match topics starting with '$'", () => check(DOLLAR));
  it("[MQTT-4.7.3-1] empty levels are levels: '/' has two", () => check(EMPTY_LEVELS));
  it("[MQTT-4.7.3-4] matching does not normalise: case, spaces, leading '/', Unicode forms", () =>
    check(NO_NORMALISATION));
});

describe("MQTT 5.0", () => {
  it("[MQTT-4.7.1-1] '#' matches the parent level and any number of child levels", () => check(HASH));
  it("[MQTT-4.7.1-2] '+' matches exactly one level, empty levels included", () => check(PLUS));
  it("[MQTT-4.7.2-1] filters starting with a wildcard do not match topics starting with '$'", () => check(DOLLAR));
  it("[MQTT-4.7.3-1] empty levels are levels: '/' has two", () => check(EMPTY_LEVELS));
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

/** Valid topic names and filters over a small alphabet, so that matches are frequent. */
const topicArb = fc
  .array(fc.constantFrom("a", "b", "ab", "", "$", "$a"), { minLength: 1, maxLength: 5 })
  .map((ls) => ls.join("/"))
  .filter((t) => t.length > 0);
const filterArb = fc
  .tuple(fc.array(fc.constantFrom("a", "b", "ab", "", "$a", "+", "+"), { maxLength: 5 }), fc.boolean())
  .map(([ls, hash]) => (hash ? [...ls, "#"] : ls).join("/"))
  .filter((f) => f.length > 0);

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
