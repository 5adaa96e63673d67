// Keep alive ([MQTT-3.1.2-24]): a connection with a non-zero keep alive that sends nothing for
// keepAlive x factor (1.5 by default) seconds is closed as if the network failed (the will goes out).
import type { Millis } from "./api.js";

/** The time at which a connection silent since `lastActivity` is timed out, or undefined for keep alive 0. */
export function keepAliveDeadline(lastActivity: Millis, keepAliveSeconds: number, factor: number): Millis | undefined {
  if (keepAliveSeconds === 0) return undefined;
  return lastActivity + Math.ceil(keepAliveSeconds * 1000 * factor);
}

/** True when the connection has been silent for too long at `now`. */
export function keepAliveExpired(now: Millis, lastActivity: Millis, keepAliveSeconds: number, factor: number): boolean {
  const d = keepAliveDeadline(lastActivity, keepAliveSeconds, factor);
  return d !== undefined && now >= d;
}
