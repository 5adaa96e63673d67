// Matching one topic filter against one topic name (section 4.7).

/** True when `filter` matches `topic`. Both are assumed valid (checked by the codec). */
export function matches(filter: string, topic: string): boolean {
  // [MQTT-4.7.2-1] a filter starting with a wildcard does not match a topic starting with `$`.
  if (topic.charCodeAt(0) === 36 /* $ */ && (filter.charCodeAt(0) === 35 /* # */ || filter.charCodeAt(0) === 43 /* + */)) {
    return false;
  }
  const f = filter.split("/");
  const t = topic.split("/");
  for (let i = 0; i < f.length; i++) {
    const level = f[i];
    if (level === "#") return true; // matches the parent level too ("a/#" matches "a")
    if (i >= t.length) return false;
    if (level !== "+" && level !== t[i]) return false;
  }
  return f.length === t.length;
}
