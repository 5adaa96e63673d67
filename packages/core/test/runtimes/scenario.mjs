// One persistent-session scenario driven through the core and the codec, written in plain
// JavaScript with no imports so that the very same file runs in Node, Bun, Deno and a browser.
// The caller passes the two modules (compiled @harbormq/core and @harbormq/codec).
//
// Client A (v3.1.1) connects with clean session 0, subscribes to t/# at QoS 1 and drops its
// connection; client B (v5) publishes "hello" to t/x at QoS 1; every store write is confirmed;
// A reconnects with clean session 0 and gets the message ([MQTT-3.1.2-4] [MQTT-3.1.2-5]).
// Client bytes go in through a Decoder, actions come out, and sent packets are encoded to hex:
// the transcript is the list of actions in order.

const hexOf = (bytes) => {
  let s = "";
  for (let i = 0; i < bytes.length; i++) s += (bytes[i] < 16 ? "0" : "") + bytes[i].toString(16);
  return s;
};
const utf8 = (s) => new TextEncoder().encode(s);

/** @param {{ core: any, codec: any }} modules  @returns {string[]} the transcript */
export function runScenario({ core, codec }) {
  const { Broker, defaultConfig } = core;
  const { Decoder, encode } = codec;
  const broker = new Broker(defaultConfig);
  const transcript = [];
  const decoders = new Map(); // conn -> Decoder of the bytes the client sent
  const pending = []; // store and hook answers, given back in order after each drain
  let now = 1_000;

  function describe(action) {
    switch (action.type) {
      case "send":
        return `send ${action.conn} v${action.version} ${action.packet.type} ${hexOf(encode(action.packet, action.version))}`;
      case "close":
        return `close ${action.conn} 0x${action.reason.toString(16)}`;
      case "persist":
        pending.push({ type: "stored", op: action.op, ok: true });
        return `persist ${action.op} ${action.writes.map((w) => w.op).join(",")}`;
      case "authenticate":
        pending.push({ type: "authed", op: action.op, verdict: { ok: true }, granted: undefined });
        return `authenticate ${action.op} ${action.conn}`;
      case "authorize-publish":
        pending.push({ type: "authed", op: action.op, verdict: { ok: true }, granted: undefined });
        return `authorize-publish ${action.op} ${action.conn} ${action.topic}`;
      case "authorize-subscribe":
        pending.push({ type: "authed", op: action.op, verdict: { ok: true }, granted: undefined });
        return `authorize-subscribe ${action.op} ${action.conn}`;
      case "load":
        pending.push({ type: "loaded", op: action.op, entries: [] });
        return `load ${action.op} ${action.clientId} ${action.afterSeq} ${action.max}`;
      case "observe":
        return `observe ${action.event.type}`;
      default:
        return `unknown ${action.type}`;
    }
  }

  /** handle() one input, then poll() until undefined, then answer the store/hooks, repeatedly. */
  function input(inp) {
    now += 10;
    broker.handle(now, inp);
    for (let a = broker.poll(); a !== undefined; a = broker.poll()) transcript.push(describe(a));
    while (pending.length > 0) {
      const answer = pending.shift();
      transcript.push(`< ${answer.type} ${answer.op}`);
      broker.handle(now, answer);
      for (let a = broker.poll(); a !== undefined; a = broker.poll()) transcript.push(describe(a));
    }
  }

  function open(conn) {
    transcript.push(`> open ${conn}`);
    decoders.set(conn, new Decoder());
    input({ type: "open", conn, remote: `client-${conn}` });
  }

  /** The client sends `packet`: encoded, fed to the connection's decoder in 3-byte chunks. */
  function send(conn, packet, version) {
    const bytes = encode(packet, version);
    transcript.push(`> ${conn} ${packet.type} ${hexOf(bytes)}`);
    const d = decoders.get(conn);
    for (let at = 0; at < bytes.length; at += 3) {
      d.push(bytes.subarray(at, at + 3));
      for (let r = d.next(); r !== undefined; r = d.next()) {
        if (r.type === "error") input({ type: "malformed", conn, reason: r.code, message: r.message });
        else input({ type: "packet", conn, packet: r });
      }
    }
  }

  function closed(conn) {
    transcript.push(`> closed ${conn}`);
    input({ type: "closed", conn });
  }

  const connect = (clientId, version, clean) => ({
    type: "connect",
    protocolName: "MQTT",
    protocolVersion: version,
    clean,
    keepAlive: 60,
    clientId,
    will: undefined,
    username: undefined,
    password: undefined,
    properties: version === 5 ? { sessionExpiryInterval: 0 } : {},
  });

  // A: persistent session with a QoS 1 subscription, then an abrupt drop
  open(1);
  send(1, connect("A", 4, false), 4);
  send(1, { type: "subscribe", packetId: 1, subscriptions: [{ topicFilter: "t/#", qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0 }], properties: {} }, 4);
  closed(1);

  // B: publishes at QoS 1 while A is away
  open(2);
  send(2, connect("B", 5, true), 5);
  send(2, { type: "publish", topic: "t/x", payload: utf8("hello"), qos: 1, retain: false, dup: false, packetId: 7, properties: {} }, 5);
  send(2, { type: "disconnect", reasonCode: 0, properties: {} }, 5);
  closed(2);

  // A comes back: session present, the queued message is delivered and acknowledged
  open(3);
  send(3, connect("A", 4, false), 4);
  const delivered = transcript.filter((l) => l.startsWith("send 3 v4 publish "));
  for (const line of delivered) {
    const bytes = line.slice(line.lastIndexOf(" ") + 1);
    // packet id: after the fixed header (2 bytes here), the topic (2 + 3 bytes)
    const packetId = parseInt(bytes.slice(14, 18), 16);
    send(3, { type: "puback", packetId, reasonCode: 0, properties: {} }, 4);
  }
  send(3, { type: "disconnect", reasonCode: 0, properties: {} }, 4);
  closed(3);
  return transcript;
}
