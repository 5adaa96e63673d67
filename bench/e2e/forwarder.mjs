// The load generator's ceiling: a minimal MQTT forwarding server built on @harbormq/codec over
// node:net, with no session logic at all (no queues, no in-flight window, no retained, no store).
// It answers CONNECT, SUBSCRIBE (exact filters and a trailing "#" only) and PINGREQ, acks QoS 1
// PUBLISHes at once and writes each PUBLISH to every matching subscriber as QoS 0 or QoS 1 with a
// connection-local packet id (subscriber PUBACKs are read and ignored). A broker cannot beat it on
// the same machine; the harness's figures against it are the measuring tool's own limit.
//
//   node bench/e2e/forwarder.mjs PORT
import net from "node:net";
import { Decoder, encode } from "../../packages/codec/dist/index.js";

const port = Number(process.argv[2] ?? 1883);
/** filter -> Set of connections; prefix filters ("a/b/#") kept apart. */
const exact = new Map();
const prefixes = [];

function matching(topic, fn) {
  const set = exact.get(topic);
  if (set !== undefined) for (const c of set) fn(c.conn, c.qos);
  for (const p of prefixes) if (topic.startsWith(p.prefix)) fn(p.conn, p.qos);
}

/** Output is gathered per connection and written once per input chunk (like a broker's
 *  per-turn batching), so the forwarder is not bound by one syscall per message. */
const dirty = [];
function out(conn, bytes) {
  if (conn.out.length === 0) dirty.push(conn);
  conn.out.push(bytes);
  conn.outBytes += bytes.length;
}
function flushAll() {
  for (const c of dirty) {
    if (!c.socket.destroyed) c.socket.write(c.out.length === 1 ? c.out[0] : Buffer.concat(c.out, c.outBytes));
    c.out = [];
    c.outBytes = 0;
  }
  dirty.length = 0;
}

const server = net.createServer((socket) => {
  socket.setNoDelay(true);
  const decoder = new Decoder();
  const conn = { socket, version: 4, nextId: 0, subs: [], out: [], outBytes: 0 };
  const send = (packet) => out(conn, encode(packet, conn.version));
  socket.on("data", (chunk) => {
    decoder.push(chunk);
    for (let r = decoder.next(); r !== undefined; r = decoder.next()) {
      if (r.type === "error") {
        socket.destroy();
        break;
      }
      switch (r.type) {
        case "connect":
          conn.version = r.protocolVersion;
          send({ type: "connack", sessionPresent: false, reasonCode: 0, properties: {} });
          break;
        case "subscribe":
          for (const s of r.subscriptions) {
            const entry = { conn, qos: s.qos > 1 ? 1 : s.qos };
            if (s.topicFilter.endsWith("#")) prefixes.push({ ...entry, prefix: s.topicFilter.slice(0, -1) });
            else {
              let set = exact.get(s.topicFilter);
              if (set === undefined) exact.set(s.topicFilter, (set = new Set()));
              set.add(entry);
            }
            conn.subs.push(entry);
          }
          send({ type: "suback", packetId: r.packetId, reasonCodes: r.subscriptions.map((s) => (s.qos > 1 ? 1 : s.qos)), properties: {} });
          break;
        case "publish": {
          if (r.qos === 1) send({ type: "puback", packetId: r.packetId, reasonCode: 0, properties: {} });
          const p = r;
          matching(p.topic, (to, qos) => {
            const q = Math.min(qos, p.qos);
            to.nextId = to.nextId === 65535 ? 1 : to.nextId + 1;
            const msg = { type: "publish", topic: p.topic, payload: p.payload, qos: q, retain: false, dup: false, packetId: q ? to.nextId : undefined, properties: {} };
            out(to, encode(msg, to.version));
          });
          break;
        }
        case "pingreq":
          send({ type: "pingresp" });
          break;
        case "disconnect":
          socket.end();
          break;
        default:
          break; // puback from subscribers, unsubscribe: ignored
      }
    }
    flushAll();
  });
  const drop = () => {
    for (const [f, set] of exact) {
      for (const e of set) if (e.conn === conn) set.delete(e);
      if (set.size === 0) exact.delete(f);
    }
    for (let i = prefixes.length - 1; i >= 0; i--) if (prefixes[i].conn === conn) prefixes.splice(i, 1);
  };
  socket.on("close", drop);
  socket.on("error", () => {});
});
server.listen(port, "127.0.0.1", () => console.log(`listening ${port}`));
process.on("SIGTERM", () => process.exit(0));
process.on("SIGINT", () => process.exit(0));
