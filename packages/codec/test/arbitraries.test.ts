// Sanity of the shared arbitraries: they only produce canonical, spec-valid packets.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { arbPacket, arbTopicFilter, arbTopicName, packetTypes, arbPacketOfType } from "./arbitraries.js";
import type { ProtocolVersion } from "../src/index.js";

describe("arbitraries", () => {
  for (const v of [3, 4, 5] as ProtocolVersion[]) {
    it(`produce every packet kind of version ${v} in canonical form`, () => {
      for (const t of packetTypes(v)) {
        for (const p of fc.sample(arbPacketOfType(t, v), 20)) {
          expect(p.type).toBe(t);
          if (p.type !== "pingreq" && p.type !== "pingresp" && v !== 5) expect(p.properties).toEqual({});
          if (p.type === "publish") expect(p.packetId === undefined).toBe(p.qos === 0);
        }
      }
      expect(fc.sample(arbPacket(v), 50).length).toBe(50);
    });
  }
  it("topic names have no wildcards and topic filters are non-empty", () => {
    for (const t of fc.sample(arbTopicName, 200)) expect(t).toMatch(/^[^+#\u0000]+$/u);
    for (const f of fc.sample(arbTopicFilter, 200)) expect(f.length).toBeGreaterThan(0);
  });
});
