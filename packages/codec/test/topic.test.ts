// Topic names and topic filters (section 4.7), shared subscription filters (5.0 section 4.8.2).
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isValidTopicFilter, isValidTopicName } from "../src/index.js";
import { arbTopicFilter, arbTopicName } from "./arbitraries.js";

const validFilters = ["#", "+", "a", "a/b", "a/+", "+/+", "/+", "+/", "a/#", "/#", "+/#", "sport/tennis/+/score", "/", "//", "$SYS/#", "a b", "\uFEFF"];
const invalidFilters = ["", "a#", "#a", "a/#/b", "#/", "##", "a+", "+a", "a/b+/c", "++", "a\u0000b", "a\uD800"];

describe("MQTT 3.1.1", () => {
  it("[MQTT-4.7.1-1] wildcards are allowed in filters but never in topic names", () => {
    expect(isValidTopicFilter("a/+/#")).toBe(true);
    for (const t of ["a/+/c", "#", "a/#", "+"]) expect(isValidTopicName(t)).toBe(false);
    expect(isValidTopicName("a/b/c")).toBe(true);
  });

  it("[MQTT-4.7.1-2] '#' must stand alone or after '/', and be the last character", () => {
    for (const f of ["#", "a/#", "/#", "+/#"]) expect(isValidTopicFilter(f), f).toBe(true);
    for (const f of ["a#", "a/#/b", "#/", "##", "a/b#"]) expect(isValidTopicFilter(f), f).toBe(false);
  });

  it("[MQTT-4.7.1-3] '+' may be used at any level but must fill the whole level", () => {
    for (const f of ["+", "+/a", "a/+", "a/+/b", "+/+", "/+", "+/"]) expect(isValidTopicFilter(f), f).toBe(true);
    for (const f of ["a+", "+a", "a/b+/c", "++", "a/++"]) expect(isValidTopicFilter(f), f).toBe(false);
  });

  it("[MQTT-4.7.3-1] topic names and filters are at least one character long", () => {
    expect(isValidTopicName("")).toBe(false);
    expect(isValidTopicFilter("")).toBe(false);
    expect(isValidTopicName("/")).toBe(true);
  });

  it("[MQTT-4.7.3-2] topic names and filters must not contain U+0000", () => {
    expect(isValidTopicName("a\u0000")).toBe(false);
    expect(isValidTopicFilter("a/\u0000/#")).toBe(false);
  });

  it("[MQTT-4.7.3-3] topic names and filters are at most 65535 bytes of UTF-8", () => {
    expect(isValidTopicName("x".repeat(65535))).toBe(true);
    expect(isValidTopicName("x".repeat(65536))).toBe(false);
    expect(isValidTopicName("\u00e9".repeat(32767) + "x")).toBe(true); // 65535 bytes
    expect(isValidTopicName("\u00e9".repeat(32768))).toBe(false); // 65536 bytes
    expect(isValidTopicFilter("\u20ac".repeat(21846))).toBe(false); // 65538 bytes
  });

  it("table of valid and invalid filters", () => {
    for (const f of validFilters) expect(isValidTopicFilter(f), JSON.stringify(f)).toBe(true);
    for (const f of invalidFilters) expect(isValidTopicFilter(f), JSON.stringify(f)).toBe(false);
  });

  it("generated topic names and filters are valid; every valid name is a valid filter", () => {
    fc.assert(fc.property(arbTopicName, (t) => isValidTopicName(t) && isValidTopicFilter(t)), { numRuns: 300 });
    fc.assert(fc.property(arbTopicFilter, (f) => isValidTopicFilter(f)), { numRuns: 300 });
  });
});

describe("MQTT 5.0", () => {
  it("[MQTT-4.7.0-1] wildcards are allowed in topic filters but never in topic names", () => {
    expect(isValidTopicName("a/+")).toBe(false);
    expect(isValidTopicName("a/#")).toBe(false);
    expect(isValidTopicFilter("a/+")).toBe(true);
  });

  it("[MQTT-4.7.1-1] '#' alone or after '/', and last", () => {
    expect(isValidTopicFilter("sport/#")).toBe(true);
    expect(isValidTopicFilter("sport/tennis#")).toBe(false);
    expect(isValidTopicFilter("sport/tennis/#/ranking")).toBe(false);
  });

  it("[MQTT-4.7.1-2] '+' fills a whole level", () => {
    expect(isValidTopicFilter("+/tennis/#")).toBe(true);
    expect(isValidTopicFilter("sport+")).toBe(false);
  });

  it("[MQTT-4.7.3-1] [MQTT-4.7.3-2] [MQTT-4.7.3-3] non-empty, no U+0000, at most 65535 bytes", () => {
    expect(isValidTopicName("")).toBe(false);
    expect(isValidTopicName("\u0000")).toBe(false);
    expect(isValidTopicFilter("y".repeat(65536))).toBe(false);
    expect(isValidTopicFilter("y".repeat(65535))).toBe(true);
  });

  it("[MQTT-4.8.2-1] a shared subscription filter starts with $share/ and has a ShareName of at least one character", () => {
    expect(isValidTopicFilter("$share/g/a/b")).toBe(true);
    expect(isValidTopicFilter("$share/g/#")).toBe(true);
    expect(isValidTopicFilter("$share//a")).toBe(false);
    expect(isValidTopicFilter("$share/")).toBe(false);
    // "$share" alone or "$shared/..." is an ordinary filter
    expect(isValidTopicFilter("$share")).toBe(true);
    expect(isValidTopicFilter("$shared/x")).toBe(true);
  });

  it("[MQTT-4.8.2-2] the ShareName has no '/', '+' or '#' and is followed by '/' and a topic filter", () => {
    expect(isValidTopicFilter("$share/g+/a")).toBe(false);
    expect(isValidTopicFilter("$share/#/a")).toBe(false);
    expect(isValidTopicFilter("$share/g")).toBe(false);
    expect(isValidTopicFilter("$share/g/")).toBe(false);
    expect(isValidTopicFilter("$share/g/a#")).toBe(false);
    expect(isValidTopicFilter("$share/g//")).toBe(true);
  });
});
