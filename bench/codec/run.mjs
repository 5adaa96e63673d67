// Codec benchmark: @harbormq/codec (packages/codec/dist, run `npm run build` first) against
// mqtt-packet in the same process, same packets, same bytes.
//
//   node bench/codec/run.mjs [--rounds 5] [--ms 150] [--only publish] [--json]
//
// decode: one op = one packet read from a ready buffer of many concatenated packets (streaming:
//         one Decoder / one mqtt-packet parser per pass over the buffer).
// encode: one op = one packet turned into a fresh byte array (ours `encode`, mqtt-packet
//         `generate`, its fastest API that returns bytes).
// encode-stream: ours `encodeInto` a reused buffer (bytes copied) against mqtt-packet
//         `writeToStream` to a sink that drops the chunks (no bytes copied): tilted their way.
// encode-header (PUBLISH only): ours `encodeHeader` into a reused buffer, then the header and the
//         payload handed to the same sink as two chunks (no payload copy on either side), against
//         the same `writeToStream`.
// Each figure: one warm-up round, then `rounds` timed rounds of >= `ms` milliseconds, ours and
// theirs interleaved round by round; the median round is reported, and the ratio is the median
// of the per-round ratios (robust to load from other processes).
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";
import os from "node:os";
import { Buffer } from "node:buffer";

const require = createRequire(import.meta.url);
const mqtt = require("mqtt-packet");
const distUrl = new URL("../../packages/codec/dist/index.js", import.meta.url);
let codec;
try {
  codec = await import(distUrl.href);
} catch (e) {
  console.error(`cannot load ${distUrl.pathname}: run \`npm run build\` first (${e.message})`);
  process.exit(2);
}
const { Decoder, encode, encodeInto, encodedLength, encodeHeader, encodedHeaderLength } = codec;

// ----------------------------------------------------------------------------------------------
// Options

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1] : dflt;
};
const ROUNDS = Number(opt("rounds", 5));
const ROUND_MS = Number(opt("ms", 150));
const ONLY = opt("only", "");
const JSON_OUT = args.includes("--json");

// ----------------------------------------------------------------------------------------------
// Cases: the same packet in both models

const bytesOf = (n) => {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + 7) & 0xff;
  return b;
};
const buf = (u) => Buffer.from(u.buffer, u.byteOffset, u.byteLength);

function publishCase(qos, size) {
  const payload = bytesOf(size);
  const label = size >= 1024 ? `${size / 1024} KiB` : `${size} B`;
  return {
    name: `PUBLISH v4 QoS ${qos} ${label}`,
    version: 4,
    ours: { type: "publish", topic: "sensors/building-7/floor-3/temp", payload, qos, retain: false, dup: false, packetId: qos ? 4242 : undefined, properties: {} },
    theirs: { cmd: "publish", topic: "sensors/building-7/floor-3/temp", payload: buf(payload), qos, retain: false, dup: false, messageId: qos ? 4242 : undefined },
  };
}

const corr = bytesOf(16);
const v5Publish = {
  name: "PUBLISH v5 QoS 1 256 B + props",
  version: 5,
  ours: {
    type: "publish",
    topic: "orders/eu/created",
    payload: bytesOf(256),
    qos: 1,
    retain: false,
    dup: false,
    packetId: 77,
    properties: {
      payloadFormatIndicator: 0,
      messageExpiryInterval: 3600,
      contentType: "application/json",
      responseTopic: "orders/eu/replies/client-17",
      correlationData: corr,
      userProperties: [
        ["trace-id", "4bf92f3577b34da6a3ce929d0e0e4736"],
        ["tenant", "acme"],
      ],
    },
  },
  theirs: {
    cmd: "publish",
    topic: "orders/eu/created",
    payload: buf(bytesOf(256)),
    qos: 1,
    retain: false,
    dup: false,
    messageId: 77,
    properties: {
      payloadFormatIndicator: false,
      messageExpiryInterval: 3600,
      contentType: "application/json",
      responseTopic: "orders/eu/replies/client-17",
      correlationData: buf(corr),
      userProperties: { "trace-id": "4bf92f3577b34da6a3ce929d0e0e4736", tenant: "acme" },
    },
  },
};

const v5Connect = {
  name: "CONNECT v5 will+auth+props",
  version: 5,
  ours: {
    type: "connect",
    protocolName: "MQTT",
    protocolVersion: 5,
    clean: false,
    keepAlive: 60,
    clientId: "device-0f3a9c2e-7781",
    will: { topic: "devices/0f3a9c2e/status", payload: new TextEncoder().encode("offline"), qos: 1, retain: true, properties: { willDelayInterval: 30, contentType: "text/plain" } },
    username: "device-0f3a9c2e",
    password: new TextEncoder().encode("s3cr3t-t0ken-value"),
    properties: { sessionExpiryInterval: 86400, receiveMaximum: 100, maximumPacketSize: 1048576, topicAliasMaximum: 10, userProperties: [["fw", "2.4.1"]] },
  },
  theirs: {
    cmd: "connect",
    protocolId: "MQTT",
    protocolVersion: 5,
    clean: false,
    keepalive: 60,
    clientId: "device-0f3a9c2e-7781",
    will: { topic: "devices/0f3a9c2e/status", payload: Buffer.from("offline"), qos: 1, retain: true, properties: { willDelayInterval: 30, contentType: "text/plain" } },
    username: "device-0f3a9c2e",
    password: Buffer.from("s3cr3t-t0ken-value"),
    properties: { sessionExpiryInterval: 86400, receiveMaximum: 100, maximumPacketSize: 1048576, topicAliasMaximum: 10, userProperties: { fw: "2.4.1" } },
  },
};

const cases = [
  publishCase(0, 16),
  publishCase(0, 1024),
  publishCase(0, 65536),
  publishCase(1, 16),
  publishCase(1, 1024),
  publishCase(1, 65536),
  v5Publish,
  v5Connect,
].filter((c) => c.name.toLowerCase().includes(ONLY.toLowerCase()));

// ----------------------------------------------------------------------------------------------
// Measurement

let sink = 0; // keeps results observable so nothing is optimised away

/** ops/s of `batch` (a function doing some work and returning its op count) over one round. */
function round(batch, ms) {
  let ops = 0;
  const start = process.hrtime.bigint();
  const limit = BigInt(Math.round(ms * 1e6));
  let elapsed = 0n;
  do {
    ops += batch();
    elapsed = process.hrtime.bigint() - start;
  } while (elapsed < limit);
  return (ops * 1e9) / Number(elapsed);
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};

/** Median ops/s of ours and theirs, interleaved round by round after one warm-up each. */
function compare(oursBatch, theirsBatch) {
  round(oursBatch, ROUND_MS);
  round(theirsBatch, ROUND_MS);
  const o = [];
  const t = [];
  for (let r = 0; r < ROUNDS; r++) {
    o.push(round(oursBatch, ROUND_MS));
    t.push(round(theirsBatch, ROUND_MS));
  }
  // the ratio is the median of per-round ratios: adjacent rounds see the same machine load
  return { ours: median(o), theirs: median(t), ratio: median(o.map((x, i) => x / t[i])) };
}

function concat(one, count) {
  const all = new Uint8Array(one.length * count);
  for (let i = 0; i < count; i++) all.set(one, i * one.length);
  return all;
}

function check(cond, msg) {
  if (!cond) {
    console.error(`sanity check failed: ${msg}`);
    process.exit(1);
  }
}

const results = [];
for (const c of cases) {
  const { version } = c;
  const ourBytes = encode(c.ours, version);
  const theirBytes = mqtt.generate(c.theirs, { protocolVersion: version });
  check(ourBytes.length === theirBytes.length, `${c.name}: encodings differ in length (${ourBytes.length} vs ${theirBytes.length})`);

  // ---- decode: both parse the same concatenation of our encoding
  const count = Math.max(256, Math.min(20_000, Math.floor((8 << 20) / ourBytes.length)));
  const stream = concat(ourBytes, count);
  const streamBuf = buf(stream);
  const oursDecode = () => {
    const d = new Decoder({ version });
    d.push(stream);
    let n = 0;
    for (let p = d.next(); p !== undefined; p = d.next()) {
      if (p.type === "error") throw new Error(`decode error ${p.code}: ${p.message}`);
      n++;
      sink += p.type.length;
    }
    return n;
  };
  let theirCount = 0;
  const parser = mqtt.parser({ protocolVersion: version });
  parser.on("packet", (p) => {
    theirCount++;
    sink += p.cmd.length;
  });
  parser.on("error", (e) => {
    throw e;
  });
  const theirsDecode = () => {
    theirCount = 0;
    parser.parse(streamBuf);
    return theirCount;
  };
  check(oursDecode() === count, `${c.name}: ours decoded a wrong count`);
  check(theirsDecode() === count, `${c.name}: mqtt-packet parsed a wrong count`);
  const dec = compare(oursDecode, theirsDecode);
  results.push({ case: c.name, op: "decode", bytes: ourBytes.length, ...dec });

  // ---- encode to a fresh byte array per packet
  const N = ourBytes.length > 10_000 ? 16 : 256;
  const oursEncode = () => {
    for (let i = 0; i < N; i++) sink += encode(c.ours, version).length;
    return N;
  };
  const opts = { protocolVersion: version };
  const theirsEncode = () => {
    for (let i = 0; i < N; i++) sink += mqtt.generate(c.theirs, opts).length;
    return N;
  };
  const enc = compare(oursEncode, theirsEncode);
  results.push({ case: c.name, op: "encode", bytes: ourBytes.length, ...enc });

  // ---- encode into a reused buffer / to a dropping stream
  const target = new Uint8Array(encodedLength(c.ours, version) * N);
  const oursInto = () => {
    let at = 0;
    for (let i = 0; i < N; i++) at += encodeInto(c.ours, version, target, at);
    sink += at;
    return N;
  };
  const nullStream = {
    write(chunk) {
      sink += chunk.length;
      return true;
    },
    destroy(e) {
      throw e;
    },
  };
  const theirsStream = () => {
    for (let i = 0; i < N; i++) mqtt.writeToStream(c.theirs, nullStream, opts);
    return N;
  };
  const into = compare(oursInto, theirsStream);
  results.push({ case: c.name, op: "encode-stream", bytes: ourBytes.length, ...into });

  // ---- PUBLISH: the header into a reused buffer, the payload passed on as its own chunk
  if (c.ours.type === "publish" && encodeHeader !== undefined) {
    const headerTarget = new Uint8Array(encodedHeaderLength(c.ours, version) * N);
    const payload = c.ours.payload;
    const oursHeader = () => {
      let at = 0;
      for (let i = 0; i < N; i++) {
        const n = encodeHeader(c.ours, version, headerTarget, at);
        nullStream.write(headerTarget.subarray(at, at + n));
        nullStream.write(payload);
        at += n;
      }
      return N;
    };
    const head = compare(oursHeader, theirsStream);
    results.push({ case: c.name, op: "encode-header", bytes: ourBytes.length, ...head });
  }
  if (!JSON_OUT) process.stderr.write(".");
}
if (!JSON_OUT) process.stderr.write("\n");

// ----------------------------------------------------------------------------------------------
// Report

const version = (pkg) => JSON.parse(readFileSync(new URL(`../../node_modules/${pkg}/package.json`, import.meta.url), "utf8")).version;
const env = {
  node: process.version,
  mqttPacket: version("mqtt-packet"),
  cpu: os.cpus()[0]?.model ?? "?",
  cores: os.cpus().length,
  loadavg: os.loadavg().map((l) => l.toFixed(2)).join(" "),
  rounds: ROUNDS,
  roundMs: ROUND_MS,
};
if (JSON_OUT) {
  console.log(JSON.stringify({ env, results }, null, 2));
} else {
  const fmt = (x) => (x >= 1e6 ? `${(x / 1e6).toFixed(2)} M` : x >= 1e3 ? `${(x / 1e3).toFixed(1)} k` : x.toFixed(0));
  console.log(`node ${env.node}, mqtt-packet ${env.mqttPacket}, ${env.cpu} x${env.cores}, load ${env.loadavg}, ${ROUNDS} rounds x ${ROUND_MS} ms, median`);
  const rows = [["case", "op", "bytes", "ours ops/s", "mqtt-packet ops/s", "ours/mqtt-packet"]];
  for (const r of results) rows.push([r.case, r.op, String(r.bytes), fmt(r.ours), fmt(r.theirs), `${r.ratio.toFixed(2)}x`]);
  const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
  const line = (row) => `| ${row.map((cell, i) => (i >= 2 ? cell.padStart(widths[i]) : cell.padEnd(widths[i]))).join(" | ")} |`;
  console.log(line(rows[0]));
  console.log(`|${widths.map((w, i) => (i >= 2 ? "-".repeat(w + 1) + ":" : "-".repeat(w + 2))).join("|")}|`);
  for (const row of rows.slice(1)) console.log(line(row));
}
if (sink === 0.5) console.log(""); // never true; keeps `sink` live
