// MQTT 5 properties of a stored message as JSON text: byte-valued properties (correlation data,
// authentication data) become {"$b64": "..."}; an empty object is stored as NULL.
import type { StoredMessage } from "@harbormq/core";

type Properties = StoredMessage["properties"];

const empty: Properties = Object.freeze({});

export function encodeProperties(properties: Properties): string | null {
  let out: Record<string, unknown> | undefined;
  for (const [key, value] of Object.entries(properties)) {
    if (value === undefined) continue;
    out ??= {};
    out[key] = value instanceof Uint8Array ? { $b64: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString("base64") } : value;
  }
  return out === undefined ? null : JSON.stringify(out);
}

export function decodeProperties(text: string | null): Properties {
  if (text === null) return empty;
  const parsed = JSON.parse(text) as Record<string, unknown>;
  for (const [key, value] of Object.entries(parsed)) {
    if (value !== null && typeof value === "object" && !Array.isArray(value) && "$b64" in value) {
      parsed[key] = new Uint8Array(Buffer.from((value as { $b64: string }).$b64, "base64"));
    }
  }
  return parsed as Properties;
}
