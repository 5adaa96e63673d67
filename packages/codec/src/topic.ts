// Topic name and topic filter syntax (section 4.7 of both specs, shared subscriptions 5.0 4.8.2).
import { utf8Length, utf8Problem } from "./primitives.js";

const PLUS = 0x2b;
const HASH = 0x23;
const SLASH = 0x2f;

/** A valid UTF-8 string of 1..65535 bytes ([MQTT-4.7.3-1] [MQTT-4.7.3-2] [MQTT-4.7.3-3]). */
function validTopicString(s: string): boolean {
  if (typeof s !== "string" || s.length === 0) return false;
  if (s.length > 0xffff / 3 && utf8Length(s) > 0xffff) return false;
  return utf8Problem(s) === undefined;
}

/**
 * A topic name a PUBLISH may carry: non-empty, no U+0000, well-formed, at most 65535 bytes, and
 * no wildcard characters ([MQTT-3.3.2-2] [MQTT-4.7.1-1] / 5.0 [MQTT-4.7.0-1]).
 */
export function isValidTopicName(topic: string): boolean {
  if (!validTopicString(topic)) return false;
  for (let i = 0; i < topic.length; i++) {
    const c = topic.charCodeAt(i);
    if (c === PLUS || c === HASH) return false;
  }
  return true;
}

/** Plain filter rules: '#' alone in the last level, '+' alone in its level (3.1.1 / 5.0 4.7.1). */
function validFilterLevels(f: string, from: number): boolean {
  const n = f.length;
  for (let i = from; i < n; i++) {
    const c = f.charCodeAt(i);
    if (c === HASH) {
      // [MQTT-4.7.1-2] (5.0 [MQTT-4.7.1-1]) '#' stands alone or after '/', and is last
      if (i !== n - 1) return false;
      if (i > from && f.charCodeAt(i - 1) !== SLASH) return false;
    } else if (c === PLUS) {
      // [MQTT-4.7.1-3] (5.0 [MQTT-4.7.1-2]) '+' fills a whole level
      if (i > from && f.charCodeAt(i - 1) !== SLASH) return false;
      if (i < n - 1 && f.charCodeAt(i + 1) !== SLASH) return false;
    }
  }
  return true;
}

/**
 * A topic filter a SUBSCRIBE / UNSUBSCRIBE may carry: the topic string rules, the wildcard rules,
 * and for "$share/..." the shared subscription form "$share/{ShareName}/{filter}" with a non-empty
 * ShareName free of '/', '+', '#' (5.0 [MQTT-4.8.2-1] [MQTT-4.8.2-2]; applied to every version, as
 * Mosquitto does).
 */
export function isValidTopicFilter(filter: string): boolean {
  if (!validTopicString(filter)) return false;
  if (filter.startsWith("$share/")) {
    const nameStart = 7;
    const slash = filter.indexOf("/", nameStart);
    if (slash <= nameStart) return false; // no ShareName or no '/' after it
    for (let i = nameStart; i < slash; i++) {
      const c = filter.charCodeAt(i);
      if (c === PLUS || c === HASH) return false;
    }
    if (slash === filter.length - 1) return false; // no topic filter after the ShareName
    return validFilterLevels(filter, slash + 1);
  }
  return validFilterLevels(filter, 0);
}

/** True for a shared subscription filter ("$share/..."). */
export function isSharedFilter(filter: string): boolean {
  return filter.startsWith("$share/");
}
