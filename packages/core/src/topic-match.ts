// Matching one topic filter against one topic name (section 4.7), without allocating: the
// reference predicate for TopicTree / RetainedIndex and for one-off checks in the core.

const SLASH = 47; // "/"
const PLUS = 43; // "+"
const HASH = 35; // "#"
const DOLLAR = 36; // "$"

/** True when `filter` matches `topic`. Both are assumed valid (checked by the codec:
 *  [MQTT-4.7.1-1] no wildcard in a topic name, [MQTT-4.7.1-2] `#` last and alone in its level,
 *  [MQTT-4.7.1-3] `+` alone in its level, [MQTT-4.7.3-1] at least one character).
 *  Levels compare code unit by code unit: [MQTT-4.7.3-4] no normalisation, case-sensitive. */
export function matches(filter: string, topic: string): boolean {
  const fl = filter.length;
  const tl = topic.length;
  // [MQTT-4.7.2-1] a filter starting with a wildcard does not match a topic starting with `$`.
  if (tl > 0 && topic.charCodeAt(0) === DOLLAR) {
    const c = filter.charCodeAt(0);
    if (c === HASH || c === PLUS) return false;
  }
  // fi / ti: start of the current level in filter / topic; ti > tl once the topic is consumed.
  let fi = 0;
  let ti = 0;
  for (;;) {
    let fe = filter.indexOf("/", fi);
    if (fe === -1) fe = fl;
    const flen = fe - fi;
    // `#` matches the remaining levels, zero included: "sport/#" matches "sport".
    if (flen === 1 && filter.charCodeAt(fi) === HASH) return true;
    if (ti > tl) return false;
    let te = ti;
    while (te < tl && topic.charCodeAt(te) !== SLASH) te++;
    // `+` matches exactly one level, an empty one included.
    if (!(flen === 1 && filter.charCodeAt(fi) === PLUS)) {
      if (te - ti !== flen) return false;
      for (let k = 0; k < flen; k++) if (filter.charCodeAt(fi + k) !== topic.charCodeAt(ti + k)) return false;
    }
    fi = fe + 1;
    ti = te + 1;
    if (fi > fl) return ti > tl;
  }
}

