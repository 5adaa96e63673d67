// The persistent-queue benchmark's reference server: a minimal MQTT server on @harbormq/codec
// over node:net that keeps one offline session's queue in a plain array and nothing else (no
// store, no topic tree, no limits, no retained, no wills). It answers CONNECT (session present
// when it has a queue for the client id), SUBSCRIBE (one exact filter per client id) and
// DISCONNECT, acks QoS 1 PUBLISHes at once, queues them for subscribed offline clients, and on
// reconnect sends the queue as QoS 1 PUBLISHes with at most `--inflight` (default 20)
// unacknowledged, written every `--eager` bytes (default 512, as the driver's eagerWriteBytes) and
// at the end of each input chunk. It shows what a one-thread Node server on our codec reaches
// through the same client and window with no broker logic at all. It is not a strict upper
// bound: it is not CPU-bound (the window's round trips through two event loops set its rate), so
// its figure varies with the write strategy (`--eager`) and with the machine's load, and a
// broker's repetition can beat one of its repetitions. Mosquitto, in C, is not bound by it.
//
//   node bench/queue/ceiling-server.mjs PORT [--inflight=N] [--eager=BYTES|Infinity]
import net from "node:net";
import { Decoder, encode, encodeInto, encodedLength } from "../../packages/codec/dist/index.js";

const port = Number(process.argv[2] ?? 1883);
const inflight = Number(process.argv.find((a) => a.startsWith("--inflight="))?.split("=")[1] ?? 20);
/** Bytes of answers after which a read's PUBACKs are answered with a write (Infinity: one write per read). */
const eager = Number(process.argv.find((a) => a.startsWith("--eager="))?.split("=")[1] ?? 512);
/** clientId -> { filter, queue: Uint8Array[] (payloads), head, online conn | undefined } */
const sessions = new Map();
/** topic -> sessions subscribed to it */
const byTopic = new Map();

const server = net.createServer((socket) => {
  socket.setNoDelay(true);
  const conn = { socket, decoder: new Decoder(), version: 4, session: undefined, out: [], outBytes: 0, sent: 0, acked: 0, nextId: 0 };
  const out = (bytes) => {
    conn.out.push(bytes);
    conn.outBytes += bytes.length;
  };
  const flush = () => {
    if (conn.out.length > 0 && !socket.destroyed) {
      socket.write(conn.out.length === 1 ? conn.out[0] : Buffer.concat(conn.out, conn.outBytes));
      conn.out = [];
      conn.outBytes = 0;
    }
  };
  const pump = () => {
    const s = conn.session;
    if (s === undefined) return;
    while (s.head < s.queue.length && conn.sent - conn.acked < inflight) {
      conn.nextId = conn.nextId === 65535 ? 1 : conn.nextId + 1;
      const p = { type: "publish", topic: s.filter, payload: s.queue[s.head++], qos: 1, retain: false, dup: false, packetId: conn.nextId, properties: {} };
      const buf = Buffer.allocUnsafe(encodedLength(p, conn.version));
      encodeInto(p, conn.version, buf, 0);
      out(buf);
      conn.sent++;
    }
    if (s.head === s.queue.length && s.head > 0) {
      s.queue = [];
      s.head = 0;
    }
  };
  socket.on("data", (chunk) => {
    conn.decoder.push(chunk);
    for (let p = conn.decoder.next(); p !== undefined; p = conn.decoder.next()) {
      switch (p.type) {
        case "connect": {
          conn.version = p.protocolVersion;
          let s = sessions.get(p.clientId);
          const present = s !== undefined && !p.clean;
          if (s === undefined || p.clean) {
            if (s !== undefined) byTopic.get(s.filter)?.delete(s);
            s = { clientId: p.clientId, filter: undefined, queue: [], head: 0, conn: undefined, persistent: !p.clean };
            sessions.set(p.clientId, s);
          }
          s.conn = conn;
          conn.session = s;
          out(encode({ type: "connack", sessionPresent: present, reasonCode: 0, properties: {} }, conn.version));
          pump();
          break;
        }
        case "subscribe": {
          const s = conn.session;
          s.filter = p.subscriptions[0].topicFilter;
          let set = byTopic.get(s.filter);
          if (set === undefined) byTopic.set(s.filter, (set = new Set()));
          set.add(s);
          out(encode({ type: "suback", packetId: p.packetId, reasonCodes: p.subscriptions.map(() => 1), properties: {} }, conn.version));
          break;
        }
        case "publish": {
          const set = byTopic.get(p.topic);
          if (set !== undefined) for (const s of set) if (s.persistent && s.conn === undefined) s.queue.push(p.payload.slice());
          if (p.qos === 1) out(encode({ type: "puback", packetId: p.packetId, reasonCode: 0, properties: {} }, conn.version));
          break;
        }
        case "puback":
          conn.acked++;
          pump();
          // like the broker's driver (eagerWriteBytes): a window's next messages go out in a few
          // writes while the acknowledgements of one read are processed, so several chunks are in
          // flight at once instead of one window bouncing between client and server
          if (conn.outBytes >= eager) flush();
          break;
        case "pingreq":
          out(encode({ type: "pingresp" }, conn.version));
          break;
        case "disconnect":
          socket.end();
          break;
        case "error":
          socket.destroy();
          return;
        default:
          break;
      }
    }
    flush();
  });
  const gone = () => {
    const s = conn.session;
    if (s === undefined || s.conn !== conn) return;
    s.conn = undefined;
    // unacknowledged sends go back to the queue's head (the bench's subscriber acks everything)
    s.head = Math.max(0, s.head - (conn.sent - conn.acked));
    if (!s.persistent) {
      sessions.delete(s.clientId);
      byTopic.get(s.filter)?.delete(s);
    }
  };
  socket.on("error", gone);
  socket.on("close", gone);
});
server.listen(port, "127.0.0.1", () => process.stdout.write(`listening ${port}\n`));
