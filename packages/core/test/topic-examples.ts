// The section 4.7 examples and the small-alphabet topic / filter arbitraries, shared by the tests
// of the three matchers (topic-match, TopicTree, RetainedIndex) so that all three are held to the
// same table. Each example lists topics the filter must match (`yes`) and must not (`no`).
import fc from "fast-check";

export type Example = { readonly filter: string; readonly yes: readonly string[]; readonly no: readonly string[] };

/** The examples of 4.7.1.2 (multi-level wildcard). */
export const HASH: readonly Example[] = [
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
export const PLUS: readonly Example[] = [
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
export const DOLLAR: readonly Example[] = [
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
export const EMPTY_LEVELS: readonly Example[] = [
  { filter: "/", yes: ["/"], no: ["//", "a/", "/a"] },
  { filter: "+/+", yes: ["/"], no: ["//"] },
  { filter: "+/+/+", yes: ["//", "a//b"], no: ["/", "///"] },
  { filter: "a//b", yes: ["a//b"], no: ["a/b", "a///b"] },
];
/** 4.7.3: no normalisation, case-sensitive, spaces significant. */
export const NO_NORMALISATION: readonly Example[] = [
  { filter: "ACCOUNTS", yes: ["ACCOUNTS"], no: ["Accounts", "accounts"] },
  { filter: "Accounts payable", yes: ["Accounts payable"], no: ["Accounts  payable", "Accounts", "Accountspayable"] },
  { filter: "/finance", yes: ["/finance"], no: ["finance", "finance/"] },
  { filter: "finance", yes: ["finance"], no: ["/finance", "finance/", " finance"] },
  // Precomposed U+00E9 and "e" + combining U+0301 are different topic names.
  { filter: "caf\u00e9/+", yes: ["caf\u00e9/x"], no: ["cafe\u0301/x", "CAF\u00c9/x"] },
  { filter: "+/\u{1F600}", yes: ["x/\u{1F600}"], no: ["x/\u{1F601}", "x/\uD83D"] },
];

/** Valid topic names and filters over a small alphabet, so that matches are frequent. */
export const topicArb = fc
  .array(fc.constantFrom("a", "b", "ab", "", "$", "$a"), { minLength: 1, maxLength: 5 })
  .map((ls) => ls.join("/"))
  .filter((t) => t.length > 0);
export const filterArb = fc
  .tuple(fc.array(fc.constantFrom("a", "b", "ab", "", "$a", "+", "+"), { maxLength: 5 }), fc.boolean())
  .map(([ls, hash]) => (hash ? [...ls, "#"] : ls).join("/"))
  .filter((f) => f.length > 0);
