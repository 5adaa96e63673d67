// Fixed header and framing errors: reserved flags, remaining length encoding, lengths that
// disagree with the content, oversized packets, reserved packet types, and the dead decoder.
import { describe, expect, it } from "vitest";
import { Decoder, encode, type DecodeError } from "../src/index.js";
import { decodeAll, expectError, expectPacket, frame, hex, props, str } from "./helpers.js";

const MALFORMED = 0x81;
const TOO_LARGE = 0x95;

/** Minimal valid body per packet type code, for flag tests. */
const bodies: Record<number, string> = {
  2: "0000",
  4: "0001",
  5: "0001",
  6: "0001",
  7: "0001",
  8: "0001" + str("a") + "00",
  9: "000100",
  10: "0001" + str("a"),
  11: "0001",
  12: "",
  13: "",
  14: "",
};
const required: Record<number, number> = { 2: 0, 4: 0, 5: 0, 6: 2, 7: 0, 8: 2, 9: 0, 10: 2, 11: 0, 12: 0, 13: 0, 14: 0 };

describe("MQTT 3.1.1", () => {
  it("[MQTT-2.2.2-1] [MQTT-2.2.2-2] every flag value other than the required one is malformed, the required one decodes", () => {
    for (const [typeStr, want] of Object.entries(required)) {
      const type = Number(typeStr);
      for (let flags = 0; flags < 16; flags++) {
        const bytes = frame((type << 4) | flags, bodies[type]!);
        if (flags === want) expectPacket(bytes, 4);
        else expect(expectError(bytes, 4, MALFORMED).message).toMatch(/flags/);
      }
    }
  });

  it("[MQTT-3.6.1-1] PUBREL flags must be 0010", () => {
    expect(expectPacket(frame(0x62, "0007"), 4)).toEqual({ type: "pubrel", packetId: 7, reasonCode: 0, properties: {} });
    expectError(frame(0x60, "0007"), 4, MALFORMED);
    expectError(frame(0x63, "0007"), 4, MALFORMED);
  });

  it("[MQTT-3.8.1-1] SUBSCRIBE flags must be 0010", () => {
    expectPacket(frame(0x82, bodies[8]!), 4);
    expectError(frame(0x80, bodies[8]!), 4, MALFORMED);
    expectError(frame(0x8a, bodies[8]!), 4, MALFORMED);
  });

  it("[MQTT-3.10.1-1] UNSUBSCRIBE flags must be 0010", () => {
    expectPacket(frame(0xa2, bodies[10]!), 4);
    expectError(frame(0xa0, bodies[10]!), 4, MALFORMED);
    expectError(frame(0xa6, bodies[10]!), 4, MALFORMED);
  });

  it("[MQTT-3.14.1-1] DISCONNECT reserved flags must be zero", () => {
    expect(expectPacket(hex("e000"), 4)).toEqual({ type: "disconnect", reasonCode: 0, properties: {} });
    expectError(hex("e100"), 4, MALFORMED);
    expectError(hex("e800"), 4, MALFORMED);
  });

  it("MQTT 3.1 (level 3) also accepts PUBREL / SUBSCRIBE / UNSUBSCRIBE resent with DUP (1010)", () => {
    expectPacket(frame(0x6a, "0001"), 3);
    expectPacket(frame(0x8a, bodies[8]!), 3);
    expectPacket(frame(0xaa, bodies[10]!), 3);
    expectError(frame(0x6a, "0001"), 4, MALFORMED);
  });

  it("packet type 0 is reserved and malformed; type 15 (AUTH) is malformed before 5.0", () => {
    expectError(hex("0000"), 4, MALFORMED);
    expect(expectError(hex("f000"), 4, MALFORMED).message).toMatch(/AUTH/);
    expectError(hex("f000"), 3, MALFORMED);
  });

  it("a remaining length longer than 4 bytes is malformed", () => {
    expect(expectError(hex("30ffffffff7f"), 4, MALFORMED).message).toMatch(/4 bytes/);
    // the error comes as soon as the fifth length byte is seen, before any body
    expect(decodeAll([hex("30 80 80 80 80")], 4)).toMatchObject([{ type: "error", code: MALFORMED }]);
  });

  it("an over-long (non-minimal) remaining length is malformed", () => {
    expectError(hex("c08000"), 4, MALFORMED);
    expectError(hex("c0808000"), 4, MALFORMED);
    expectPacket(hex("c000"), 4);
  });

  it("a declared length longer than the content leaves the decoder waiting; a shorter one is malformed", () => {
    const d = new Decoder({ version: 4 });
    d.push(hex("4003 0001"));
    expect(d.next()).toBeUndefined();
    expect(d.buffered).toBe(4);
    // PUBACK with remaining length 1: too short for its packet identifier
    expect(expectError(hex("4001 00"), 4, MALFORMED).message).toMatch(/truncated/);
    // CONNACK declaring 3 bytes carries a trailing byte
    expect(expectError(hex("2003 000000"), 4, MALFORMED).message).toMatch(/trailing/);
    expect(expectError(hex("c001 00"), 4, MALFORMED).message).toMatch(/trailing/);
    expectError(hex("4003 000100"), 4, MALFORMED);
  });

  it("a fixed header announcing more than maxPacketSize is refused with 0x95 before the body arrives", () => {
    const d = new Decoder({ version: 4, maxPacketSize: 100 });
    d.push(hex("30 ff 7f")); // announces 16383 bytes of body
    const e = d.next() as DecodeError;
    expect(e).toMatchObject({ type: "error", code: TOO_LARGE });
    expect(e.message).toMatch(/16386/);
    expect(d.buffered).toBe(0);
    // exactly at the limit is fine
    const ok = new Decoder({ version: 4, maxPacketSize: 4 });
    ok.push(hex("4002 0001"));
    expect(ok.next()).toMatchObject({ type: "puback" });
    const over = new Decoder({ version: 4, maxPacketSize: 3 });
    over.push(hex("4002"));
    expect(over.next()).toMatchObject({ type: "error", code: TOO_LARGE });
  });

  it("the default maximum accepts the largest remaining length the header can announce", () => {
    const d = new Decoder({ version: 4 });
    d.push(hex("30 ff ff ff 7f 0001 61"));
    expect(d.next()).toBeUndefined();
  });

  it("after an error the decoder is dead: every later call returns the same error and input is ignored", () => {
    const d = new Decoder({ version: 4 });
    d.push(hex("0000"));
    const e = d.next();
    expect(e).toMatchObject({ type: "error", code: MALFORMED });
    d.push(encode({ type: "pingreq" }, 4));
    expect(d.next()).toBe(e);
    expect(d.next()).toBe(e);
    expect(d.buffered).toBe(0);
  });

  it("the decoder keeps no reference to chunks it has fully consumed", () => {
    /** Every Uint8Array reachable from the decoder's own fields (arrays included). */
    const held = (d: Decoder): Uint8Array[] => {
      const out: Uint8Array[] = [];
      const walk = (v: unknown, depth: number): void => {
        if (v instanceof Uint8Array) out.push(v);
        else if (Array.isArray(v)) v.forEach((x) => walk(x, depth));
        else if (v !== null && typeof v === "object" && depth < 2) Object.values(v).forEach((x) => walk(x, depth + 1));
      };
      walk(d, 0);
      return out;
    };
    const bytes = encode({ type: "publish", topic: "a/b", payload: new Uint8Array(50).fill(1), qos: 0, retain: false, dup: false, packetId: undefined, properties: {} }, 4);
    const first = bytes.slice(0, 10);
    const second = bytes.slice(10);
    const extra = hex("c0"); // half of a following PINGREQ
    const d = new Decoder({ version: 4 });
    d.push(first);
    d.push(second);
    d.push(extra);
    expect(d.next()).toMatchObject({ type: "publish" });
    const refs = held(d);
    expect(refs).not.toContain(first);
    expect(refs).not.toContain(second);
    expect(refs).toContain(extra); // not consumed yet
    d.push(hex("00"));
    expect(d.next()).toEqual({ type: "pingreq" });
    expect(held(d)).not.toContain(extra);
  });

  it("PINGREQ and PINGRESP carry no body", () => {
    expect(expectPacket(hex("c000"), 4)).toEqual({ type: "pingreq" });
    expect(expectPacket(hex("d000"), 4)).toEqual({ type: "pingresp" });
    expectError(hex("d00100"), 4, MALFORMED);
  });

  it("before CONNECT, a packet of another type is decoded as 3.1.1 without learning a version", () => {
    const d = new Decoder();
    d.push(hex("c000"));
    expect(d.next()).toEqual({ type: "pingreq" });
    expect(d.version).toBeUndefined();
  });
});

describe("MQTT 5.0", () => {
  it("[MQTT-2.1.3-1] reserved fixed-header flag bits must have the listed values", () => {
    for (const [typeStr, want] of Object.entries(required)) {
      const type = Number(typeStr);
      if (type === 9 || type === 11) continue; // bodies above are 3.x shaped
      for (let flags = 0; flags < 16; flags++) {
        const bytes = frame((type << 4) | flags, type === 8 ? "0001" + props() + str("a") + "00" : type === 10 ? "0001" + props() + str("a") : type === 2 ? "000000" : bodies[type]!);
        if (flags === want) expectPacket(bytes, 5);
        else expectError(bytes, 5, MALFORMED);
      }
    }
  });

  it("[MQTT-3.6.1-1] PUBREL flags must be 0010", () => {
    expectPacket(frame(0x62, "0001"), 5);
    expectError(frame(0x60, "0001"), 5, MALFORMED);
  });

  it("[MQTT-3.8.1-1] SUBSCRIBE flags must be 0010", () => {
    expectPacket(frame(0x82, "0001", props(), str("a"), "00"), 5);
    expectError(frame(0x83, "0001", props(), str("a"), "00"), 5, MALFORMED);
  });

  it("[MQTT-3.10.1-1] UNSUBSCRIBE flags must be 0010", () => {
    expectPacket(frame(0xa2, "0001", props(), str("a")), 5);
    expectError(frame(0xa0, "0001", props(), str("a")), 5, MALFORMED);
  });

  it("[MQTT-3.14.1-1] DISCONNECT reserved flags must be zero (answered with 0x81)", () => {
    expectPacket(hex("e000"), 5);
    expectError(hex("e400"), 5, MALFORMED);
  });

  it("[MQTT-3.15.1-1] AUTH flags must all be zero", () => {
    expect(expectPacket(hex("f000"), 5)).toEqual({ type: "auth", reasonCode: 0, properties: {} });
    expectError(hex("f100"), 5, MALFORMED);
    expectError(hex("f800"), 5, MALFORMED);
  });

  it("[MQTT-1.5.5-1] a variable byte integer must use the fewest bytes: over-long remaining length and property length are malformed", () => {
    expectError(hex("e08000"), 5, MALFORMED);
    expectError(hex("e0818000"), 5, MALFORMED);
    // DISCONNECT 0x00 with property length encoded as 80 00 (0 in two bytes)
    expect(expectError(frame(0xe0, "00 8000"), 5, MALFORMED).message).toMatch(/over-long/);
    // a subscription identifier 1 encoded in two bytes
    expect(expectError(frame(0x82, "0001", props("0b 8100"), str("a"), "00"), 5, MALFORMED).message).toMatch(/over-long/);
  });

  it("[MQTT-1.5.5-1] the encoder writes minimal variable byte integers", () => {
    for (const [n, bytes] of [
      [0, "00"],
      [127, "7f"],
      [128, "8001"],
      [16383, "ff7f"],
      [16384, "808001"],
      [2097151, "ffff7f"],
      [2097152, "80808001"],
      [268435455, "ffffff7f"],
    ] as const) {
      const p = encode({ type: "subscribe", packetId: 1, subscriptions: [{ topicFilter: "a", qos: 0, noLocal: false, retainAsPublished: false, retainHandling: 0 }], properties: { subscriptionIdentifiers: [Math.max(1, n)] } }, 5);
      if (n === 0) continue;
      expect(Buffer.from(p).toString("hex")).toContain(`0b${bytes}`);
    }
  });

  it("[MQTT-2.2.2-1] a packet without properties still carries a property length of 0", () => {
    expect(Buffer.from(encode({ type: "connack", sessionPresent: false, reasonCode: 0, properties: {} }, 5)).toString("hex")).toBe("2003000000");
    expect(Buffer.from(encode({ type: "subscribe", packetId: 1, subscriptions: [{ topicFilter: "a", qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0 }], properties: {} }, 5)).toString("hex")).toBe(
      "8207000100" + "000161" + "01",
    );
    expect(Buffer.from(encode({ type: "publish", topic: "t", payload: new Uint8Array(0), qos: 0, retain: false, dup: false, packetId: undefined, properties: {} }, 5)).toString("hex")).toBe("3004000174" + "00");
    // a CONNECT without properties must carry the 0 property length too (mandatory, not optional)
    expectError(frame(0x10, str("MQTT"), "05 02 003c", str("c")), 5, MALFORMED);
  });

  it("v5 short forms: acknowledgements of 2 or 3 bytes and DISCONNECT / AUTH of 0 or 1 byte decode with reason 0 / no properties", () => {
    expect(expectPacket(hex("4002 0005"), 5)).toEqual({ type: "puback", packetId: 5, reasonCode: 0, properties: {} });
    expect(expectPacket(hex("5003 0005 10"), 5)).toEqual({ type: "pubrec", packetId: 5, reasonCode: 0x10, properties: {} });
    expect(expectPacket(hex("e001 8e"), 5)).toEqual({ type: "disconnect", reasonCode: 0x8e, properties: {} });
    expect(expectPacket(hex("f001 18"), 5)).toEqual({ type: "auth", reasonCode: 0x18, properties: {} });
    expect(Buffer.from(encode({ type: "puback", packetId: 5, reasonCode: 0, properties: {} }, 5)).toString("hex")).toBe("40020005");
    expect(Buffer.from(encode({ type: "puback", packetId: 5, reasonCode: 0x10, properties: {} }, 5)).toString("hex")).toBe("4003000510");
    expect(Buffer.from(encode({ type: "disconnect", reasonCode: 0, properties: {} }, 5)).toString("hex")).toBe("e000");
  });
});
