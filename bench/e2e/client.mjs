// The load generator's MQTT client: @harbormq/codec over a raw node:net socket, no library in
// between. Writes are gathered per event-loop turn into one buffer (one syscall per turn), QoS 1
// deliveries are acknowledged at once, and everything is counted by the caller's callbacks.
import net from "node:net";
import { Decoder, encode, encodeInto, encodedLength } from "../../packages/codec/dist/index.js";

const connectPacket = (clientId, clean, keepAlive, version) => ({
  type: "connect",
  protocolName: version === 3 ? "MQIsdp" : "MQTT",
  protocolVersion: version,
  clean,
  keepAlive,
  clientId,
  will: undefined,
  username: undefined,
  password: undefined,
  properties: {},
});

export class Client {
  /** Every client not yet closed, so a failed scenario can be cleaned up (Client.destroyAll()). */
  static live = new Set();
  static destroyAll() {
    for (const c of Client.live) c.socket.destroy();
    Client.live.clear();
  }
  /** Called with every PUBLISH received (after its PUBACK is queued). */
  onPublish = null;
  /** Called with the packet id of every PUBACK received. */
  onPuback = null;
  /** Called once when the socket closes. */
  onClose = null;
  closed = false;
  sessionPresent = false;

  constructor(socket, version) {
    this.socket = socket;
    this.version = version;
    this.decoder = new Decoder({ version });
    this.pending = [];
    this.pendingBytes = 0;
    this.flushScheduled = false;
    this.nextId = 0;
    this.waiters = new Map(); // packet type -> resolve (connack, suback)
    this.flush = this.flush.bind(this);
    socket.setNoDelay(true);
    socket.on("data", (chunk) => this.onData(chunk));
    socket.on("error", () => {});
    Client.live.add(this);
    socket.on("close", () => {
      this.closed = true;
      Client.live.delete(this);
      for (const w of this.waiters.values()) w.reject(new Error("connection closed"));
      this.waiters.clear();
      this.onClose?.();
    });
  }

  /** Opens a socket and completes CONNECT / CONNACK (rejects on a refusal or a close). */
  /** `onPublish` is installed before CONNECT is sent: a resumed session's messages may arrive in
   *  the same read as the CONNACK, before the returned promise settles. */
  static connect(port, { clientId, clean = true, keepAlive = 0, version = 4, host = "127.0.0.1", onPublish = null }) {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ port, host });
      const c = new Client(socket, version);
      c.onPublish = onPublish;
      socket.once("error", reject);
      socket.once("connect", () => {
        c.expect("connack").then((p) => {
          if (p.reasonCode !== 0) reject(new Error(`CONNACK ${p.reasonCode}`));
          else {
            c.sessionPresent = p.sessionPresent;
            resolve(c);
          }
        }, reject);
        c.write(encode(connectPacket(clientId, clean, keepAlive, version), version));
      });
    });
  }

  expect(type) {
    return new Promise((resolve, reject) => this.waiters.set(type, { resolve, reject }));
  }

  onData(chunk) {
    this.decoder.push(chunk);
    for (let p = this.decoder.next(); p !== undefined; p = this.decoder.next()) {
      switch (p.type) {
        case "publish":
          if (p.qos === 1) this.write(encode({ type: "puback", packetId: p.packetId, reasonCode: 0, properties: {} }, this.version));
          this.onPublish?.(p);
          break;
        case "puback":
          this.onPuback?.(p.packetId);
          break;
        case "error":
          this.socket.destroy();
          return;
        default: {
          const w = this.waiters.get(p.type);
          if (w !== undefined) {
            this.waiters.delete(p.type);
            w.resolve(p);
          }
        }
      }
    }
  }

  write(bytes) {
    this.pending.push(bytes);
    this.pendingBytes += bytes.length;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(this.flush);
    }
  }

  flush() {
    this.flushScheduled = false;
    if (this.pending.length === 0 || this.closed) return;
    const out = this.pending.length === 1 ? this.pending[0] : Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    this.socket.write(out);
  }

  async subscribe(filters, qos) {
    const id = this.allocateId();
    const done = this.expect("suback");
    const subscriptions = filters.map((f) => ({ topicFilter: f, qos, noLocal: false, retainAsPublished: false, retainHandling: 0 }));
    this.write(encode({ type: "subscribe", packetId: id, subscriptions, properties: {} }, this.version));
    const suback = await done;
    if (suback.reasonCodes.some((c) => c >= 0x80)) throw new Error(`SUBACK ${suback.reasonCodes}`);
    return suback.reasonCodes;
  }

  allocateId() {
    this.nextId = this.nextId === 65535 ? 1 : this.nextId + 1;
    return this.nextId;
  }

  /** Publishes; returns the packet id (QoS 1) or 0. */
  publish(topic, payload, qos) {
    const packetId = qos > 0 ? this.allocateId() : undefined;
    const p = { type: "publish", topic, payload, qos, retain: false, dup: false, packetId, properties: {} };
    const buf = Buffer.allocUnsafe(encodedLength(p, this.version));
    encodeInto(p, this.version, buf, 0);
    this.write(buf);
    return packetId ?? 0;
  }

  /** Sends DISCONNECT and resolves when the socket has closed. */
  disconnect() {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      const prev = this.onClose;
      this.onClose = () => {
        prev?.();
        resolve();
      };
      this.write(encode({ type: "disconnect", reasonCode: 0, properties: {} }, this.version));
      this.flush();
      this.socket.end();
    });
  }

  destroy() {
    this.socket.destroy();
  }
}
