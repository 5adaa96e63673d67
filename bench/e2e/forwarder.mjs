// The load generator's ceiling: a minimal MQTT forwarding server built on @harbormq/codec over
// node:net, with no session logic at all (no queues, no in-flight window, no retained, no store).
// It answers CONNECT, SUBSCRIBE (exact filters and a trailing "#" only) and PINGREQ, acks QoS 1
// PUBLISHes at once and writes each PUBLISH to every matching subscriber as QoS 0 or QoS 1 with a
// connection-local packet id (subscriber PUBACKs are read and ignored). A broker cannot beat it on
// the same machine; the harness's figures against it are the measuring tool's own limit.
//
// With --window=N (broker "forwarder-w20" in bench/e2e/brokers.mjs) it keeps at most N QoS 1
// PUBLISHes unacknowledged per subscriber, as a broker's in-flight window does (harbormq's
// maxInflight and Mosquitto's max_inflight_messages, both 20 by default), and holds the rest in an
// array until PUBACKs free the window: the ceiling of a Node server that honours that window and
// does nothing else.
//
//   node bench/e2e/forwarder.mjs PORT [--window=N]
import net from "node:net";
import { Decoder, encode } from "../../packages/codec/dist/index.js";

const port = Number(process.argv[2] ?? 1883);
const windowArg = process.argv.find((a) => a.startsWith("--window="));
/** In-flight QoS 1 PUBLISHes per subscriber; 0: no window. */
const window = windowArg === undefined ? 0 : Number(windowArg.slice("--window=".length));
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

function deliver(to, topic, payload, qos) {
  if (qos === 1) {
    to.nextId = to.nextId === 65535 ? 1 : to.nextId + 1;
    to.inflight++;
  }
  const msg = { type: "publish", topic, payload, qos, retain: false, dup: false, packetId: qos ? to.nextId : undefined, properties: {} };
  out(to, encode(msg, to.version));
}

const server = net.createServer((socket) => {
  socket.setNoDelay(true);
  const decoder = new Decoder();
  const conn = { socket, version: 4, nextId: 0, subs: [], out: [], outBytes: 0, inflight: 0, waiting: [], head: 0 };
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
            if (q === 1 && window > 0) {
              // the payload is a view into the socket's chunk: copy it if it has to wait
              if (to.inflight >= window) to.waiting.push({ topic: p.topic, payload: p.payload.slice() });
              else deliver(to, p.topic, p.payload, 1);
            } else deliver(to, p.topic, p.payload, q);
          });
          break;
        }
        case "puback":
          if (window > 0 && conn.inflight > 0) {
            conn.inflight--;
            if (conn.head < conn.waiting.length) {
              const m = conn.waiting[conn.head++];
              deliver(conn, m.topic, m.payload, 1);
              if (conn.head > 1024 && conn.head * 2 > conn.waiting.length) {
                conn.waiting = conn.waiting.slice(conn.head);
                conn.head = 0;
              }
            }
          }
          break;
        case "pingreq":
          send({ type: "pingresp" });
          break;
        case "disconnect":
          socket.end();
          break;
        default:
          break; // unsubscribe: ignored
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
