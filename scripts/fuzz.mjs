#!/usr/bin/env node
// Fuzzes the built codec (packages/codec/dist; run `npm run build` first): the Decoder must never
// throw and never hang on any input, whatever the chunking, version or size limit. Bounded: stops
// by itself after `--runs` inputs (default 1,000,000; env FUZZ_RUNS overrides the default).
//
//   node scripts/fuzz.mjs [--runs N] [--seed S] [--hang-ms 10000]
//   node scripts/fuzz.mjs --replay <hex> --version 4 [--chunk 1] [--max 0]   (re-run one input)
//
// Inputs: random bytes, and valid packets from the shared fast-check arbitraries
// (packages/codec/test/arbitraries.ts, bundled on the fly with rolldown) mutated by bit flips,
// truncation, length-field corruption, splices and byte edits. Valid packets must also decode
// exactly, and every packet the decoder accepts must re-encode to bytes that decode to the same
// packet. Exits 1 with the failing input in hex on a throw, a hang (no progress for --hang-ms,
// the decoding runs in a worker watched by the main thread) or a broken decoder invariant.
import { Worker, isMainThread, parentPort, workerData } from "node:worker_threads";
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const root = new URL("../", import.meta.url);
const MAX_INPUT = 1 << 16;
// The module under test; FUZZ_CODEC=<path> points at another build (used to test this script).
const codecUrl = process.env.FUZZ_CODEC ? new URL(process.env.FUZZ_CODEC, `file://${process.cwd()}/`).href : new URL("packages/codec/dist/index.js", root).href; // inputs are capped to this size (bytes) so they fit the shared record

const toHex = (u) => Array.from(u, (b) => b.toString(16).padStart(2, "0")).join("");
const fromHex = (h) => Uint8Array.from(h.replace(/[^0-9a-f]/gi, "").match(/../g) ?? [], (x) => parseInt(x, 16));

function parseArgs(argv) {
  const get = (name) => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const envRuns = process.env.FUZZ_RUNS;
  return {
    runs: Number(get("runs") ?? envRuns ?? 1_000_000),
    seed: Number(get("seed") ?? Date.now() % 0x7fffffff),
    hangMs: Number(get("hang-ms") ?? 10_000),
    replay: get("replay"),
    version: Number(get("version") ?? 4),
    chunk: Number(get("chunk") ?? 0),
    max: Number(get("max") ?? 0),
  };
}

// ------------------------------------------------------------------------------------------------
// The property: decode `input` and check the decoder's contract. Returns a summary or throws a
// FuzzFailure (a thrown codec exception is wrapped, so the caller can print the input).

class FuzzFailure extends Error {}

const show = (x) => JSON.stringify(x, (_, v) => (v instanceof Uint8Array ? `hex:${toHex(v)}` : v));
/** Structural equality of decoded packets (Uint8Array by content). */
function samePacket(a, b) {
  if (a === b) return true;
  if (a instanceof Uint8Array || b instanceof Uint8Array) {
    return a instanceof Uint8Array && b instanceof Uint8Array && a.length === b.length && a.every((x, i) => x === b[i]);
  }
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a).filter((k) => a[k] !== undefined);
  const kb = Object.keys(b).filter((k) => b[k] !== undefined);
  return ka.length === kb.length && ka.every((k) => samePacket(a[k], b[k]));
}

/** chunk: 0 = one push, 1 = byte by byte, n > 1 = pieces of up to n bytes; max: maxPacketSize or 0. */
function decodeAll(codec, input, version, chunk, max, reencode) {
  const { Decoder, encode } = codec;
  const d = max > 0 ? new Decoder({ version, maxPacketSize: max }) : new Decoder({ version });
  const packets = [];
  let error;
  let pushed = 0;
  const drain = () => {
    for (;;) {
      const before = d.buffered;
      let r;
      try {
        r = d.next();
      } catch (e) {
        throw new FuzzFailure(`Decoder.next() threw: ${e?.stack ?? e}`);
      }
      if (r === undefined) return true;
      if (typeof r !== "object" || r === null || typeof r.type !== "string") throw new FuzzFailure(`next() returned ${String(r)}`);
      if (r.type === "error") {
        if (typeof r.code !== "number" || typeof r.message !== "string") throw new FuzzFailure(`malformed DecodeError ${JSON.stringify(r)}`);
        error = r;
        return false;
      }
      // progress: every packet consumes at least its 2-byte fixed header
      if (!(d.buffered <= before - 2)) {
        throw new FuzzFailure(`packet ${r.type} yielded without consuming input (buffered ${before} -> ${d.buffered})`);
      }
      packets.push(r);
      if (packets.length * 2 > pushed) throw new FuzzFailure(`${packets.length} packets from ${pushed} bytes`);
      if (reencode) {
        // whatever the decoder accepts, the encoder takes, and its bytes decode to the same packet
        const v = r.type === "connect" ? r.protocolVersion : d.version ?? version;
        let bytes;
        try {
          bytes = encode(r, v);
        } catch (e) {
          throw new FuzzFailure(`a decoded ${r.type} does not re-encode: ${e?.message ?? e}`);
        }
        const again = new Decoder({ version: v });
        again.push(bytes);
        const r2 = again.next();
        if (!samePacket(r, r2)) throw new FuzzFailure(`a decoded ${r.type} re-encodes to ${toHex(bytes)}, which decodes to ${show(r2)}`);
      }
    }
  };
  const step = chunk <= 0 ? input.length || 1 : chunk;
  for (let at = 0; at < input.length; at += step) {
    const piece = input.subarray(at, Math.min(input.length, at + step));
    try {
      d.push(piece);
    } catch (e) {
      throw new FuzzFailure(`Decoder.push() threw: ${e?.stack ?? e}`);
    }
    pushed += piece.length;
    if (!drain()) break;
  }
  if (error === undefined) drain();
  const buffered = d.buffered;
  if (!(buffered >= 0 && buffered <= pushed)) throw new FuzzFailure(`buffered=${buffered} after ${pushed} bytes`);
  return { packets, error, buffered };
}

// ------------------------------------------------------------------------------------------------
// Worker: generate, mutate, decode.

function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function loadCorpus(codec, seed) {
  const { rolldown } = await import("rolldown");
  const bundle = await rolldown({
    input: fileURLToPath(new URL("packages/codec/test/arbitraries.ts", root)),
    external: ["fast-check"],
    logLevel: "silent",
  });
  const { output } = await bundle.generate({ format: "esm" });
  // inside the repo so that the bundle's `import "fast-check"` resolves from node_modules
  const dir = new URL("node_modules/.cache/harbormq-fuzz/", root);
  mkdirSync(dir, { recursive: true });
  const file = new URL(`arbitraries-${process.pid}.mjs`, dir);
  writeFileSync(file, output[0].code);
  const arb = await import(file.href);
  rmSync(file, { force: true });
  const fc = (await import("fast-check")).default;
  const corpus = [];
  for (const [version, packet] of fc.sample(arb.arbVersionedPacket, { numRuns: 3000, seed })) {
    const bytes = codec.encode(packet, version);
    corpus.push({ version, bytes, type: packet.type });
  }
  return corpus;
}

const STRATEGIES = ["random", "valid", "bitflip", "truncate", "length", "splice", "edit", "concat"];

function fuzzWorker({ runs, seed, shared }) {
  const progress = new Int32Array(shared, 0, 4); // [done, inputLength, version, chunk]
  const record = new Uint8Array(shared, 16, MAX_INPUT);
  return (async () => {
    const codec = await import(codecUrl);
    const corpus = await loadCorpus(codec, seed);
    const byVersion = { 3: [], 4: [], 5: [] };
    for (const c of corpus) byVersion[c.version].push(c);
    const rnd = mulberry32(seed);
    const int = (n) => Math.floor(rnd() * n);
    const pick = (xs) => xs[int(xs.length)];
    const stats = { inputs: 0, bytes: 0, packets: 0, errors: {}, strategies: {}, ok: 0 };

    // every valid packet decodes to exactly one packet, whatever the chunking
    for (const c of corpus) {
      for (const chunk of [0, 1]) {
        let r;
        try {
          r = decodeAll(codec, c.bytes, c.version, chunk, 0, false);
        } catch (e) {
          return fail(e instanceof FuzzFailure ? e.message : `harness error: ${e?.stack ?? e}`, c.bytes, c.version, chunk, 0);
        }
        if (r.error !== undefined || r.packets.length !== 1 || r.buffered !== 0) {
          return fail(`valid ${c.type} (v${c.version}, chunk ${chunk}) decoded as ${r.error ? `error 0x${r.error.code.toString(16)} ${r.error.message}` : `${r.packets.length} packets, ${r.buffered} left`}`, c.bytes, c.version, chunk, 0);
        }
      }
    }

    function fail(message, input, version, chunk, max) {
      parentPort.postMessage({ type: "fail", message, hex: toHex(input), version, chunk, max });
      return undefined;
    }

    function varint(n) {
      const out = [];
      do {
        let b = n % 128;
        n = Math.floor(n / 128);
        if (n > 0) b |= 0x80;
        out.push(b);
      } while (n > 0);
      return out;
    }

    function mutate(strategy) {
      const base = pick(corpus);
      let version = base.version;
      let bytes;
      switch (strategy) {
        case "random": {
          bytes = new Uint8Array(int(4) === 0 ? int(600) : int(40));
          for (let i = 0; i < bytes.length; i++) bytes[i] = int(256);
          if (bytes.length > 0 && int(2) === 0) bytes[0] = (1 + int(15)) << 4 | (int(4) === 0 ? int(16) : pick([0, 2]));
          version = pick([3, 4, 5]);
          break;
        }
        case "valid":
          bytes = base.bytes;
          break;
        case "bitflip": {
          bytes = base.bytes.slice();
          for (let k = 1 + int(4); k > 0; k--) {
            const i = int(bytes.length);
            bytes[i] ^= 1 << int(8);
          }
          break;
        }
        case "truncate":
          bytes = base.bytes.subarray(0, int(base.bytes.length));
          break;
        case "length": {
          const b = Array.from(base.bytes);
          // the remaining length starts at byte 1 and takes 1..4 bytes
          let end = 1;
          while (end < b.length && end < 5 && b[end] & 0x80) end++;
          const choice = int(6);
          let field;
          if (choice === 0) field = varint(int(268_435_456));
          else if (choice === 1) field = [0x80 | int(128), 0x80 | int(128), 0x80 | int(128), 0x80 | int(128), int(128)]; // 5 bytes: malformed
          else if (choice === 2) field = [...varint(int(128)).map((x) => x | 0x80), 0x00]; // over-long form
          else if (choice === 3) field = varint(Math.max(0, b.length - end - 1 + pick([-2, -1, 1, 2, 1000])));
          else field = null;
          if (field !== null) {
            b.splice(1, end - 1, ...field);
          } else {
            // a 2-byte length prefix inside the packet (strings, binaries, packet ids)
            const i = 2 + int(Math.max(1, b.length - 3));
            if (i + 1 < b.length) {
              const v = pick([0, 1, 0xffff, 0x7fff, ((b[i] << 8) | b[i + 1]) + pick([-1, 1, 2])]) & 0xffff;
              b[i] = v >> 8;
              b[i + 1] = v & 0xff;
            }
          }
          bytes = Uint8Array.from(b);
          break;
        }
        case "splice": {
          const other = pick(corpus);
          const a = base.bytes.subarray(0, int(base.bytes.length + 1));
          const c = other.bytes.subarray(int(other.bytes.length + 1));
          bytes = new Uint8Array(a.length + c.length);
          bytes.set(a);
          bytes.set(c, a.length);
          break;
        }
        case "edit": {
          const b = Array.from(base.bytes);
          for (let k = 1 + int(3); k > 0; k--) {
            const i = int(b.length + 1);
            const op = int(3);
            if (op === 0) b.splice(i, 0, pick([0x00, 0xff, 0x80, 0x7f, 0xc0, 0xed, 0xa0, int(256)]));
            else if (op === 1) b.splice(i, 1);
            else b[Math.min(i, b.length - 1)] = int(256);
          }
          bytes = Uint8Array.from(b.slice(0, Math.max(0, b.length)));
          break;
        }
        case "concat": {
          const parts = [base.bytes];
          for (let k = int(4); k > 0; k--) parts.push(pick(byVersion[version]).bytes);
          if (int(2) === 0) {
            const last = parts.length - 1;
            parts[last] = parts[last].subarray(0, int(parts[last].length + 1));
          }
          bytes = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
          let at = 0;
          for (const p of parts) {
            bytes.set(p, at);
            at += p.length;
          }
          break;
        }
      }
      if (bytes.length > MAX_INPUT) bytes = bytes.subarray(0, MAX_INPUT);
      return { bytes, version };
    }

    parentPort.postMessage({ type: "ready" });
    const t0 = Date.now();
    for (let i = 0; i < runs; i++) {
      const strategy = STRATEGIES[int(STRATEGIES.length)];
      const { bytes, version } = mutate(strategy);
      const chunkChoice = int(8);
      const chunk = chunkChoice < 5 ? 0 : chunkChoice === 5 ? 1 : 2 + int(16);
      const max = int(10) === 0 ? pick([2, 16, 64, 128]) : 0;
      record.set(bytes);
      Atomics.store(progress, 1, bytes.length);
      Atomics.store(progress, 2, version);
      Atomics.store(progress, 3, chunk | (max << 8));
      let r;
      try {
        r = decodeAll(codec, bytes, version, chunk, max, true);
      } catch (e) {
        return fail(e instanceof FuzzFailure ? e.message : `harness error: ${e?.stack ?? e}`, bytes, version, chunk, max);
      }
      if (strategy === "valid" && max === 0 && (r.error !== undefined || r.packets.length !== 1)) {
        return fail("a valid packet did not decode", bytes, version, chunk, max);
      }
      stats.inputs++;
      stats.bytes += bytes.length;
      stats.packets += r.packets.length;
      stats.strategies[strategy] = (stats.strategies[strategy] ?? 0) + 1;
      if (r.error !== undefined) {
        const k = `0x${r.error.code.toString(16)}`;
        stats.errors[k] = (stats.errors[k] ?? 0) + 1;
      } else stats.ok++;
      Atomics.store(progress, 0, i + 1);
      if ((i + 1) % 100_000 === 0) parentPort.postMessage({ type: "progress", done: i + 1, ms: Date.now() - t0 });
    }
    parentPort.postMessage({ type: "done", stats, ms: Date.now() - t0, corpus: corpus.length });
    return undefined;
  })();
}

// ------------------------------------------------------------------------------------------------
// Main thread: start the worker, watch for hangs, report.

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (!existsSync(fileURLToPath(codecUrl))) {
    console.error(`fuzz: ${fileURLToPath(codecUrl)} not found: run \`npm run build\` first`);
    process.exit(2);
  }
  if (opts.replay !== undefined) {
    const codec = await import(codecUrl);
    const input = fromHex(opts.replay);
    try {
      const r = decodeAll(codec, input, opts.version, opts.chunk, opts.max, true);
      console.log(`ok: ${r.packets.length} packets, ${r.error ? `error 0x${r.error.code.toString(16)} ${r.error.message}` : "no error"}, ${r.buffered} bytes buffered`);
      for (const p of r.packets) console.log(p);
    } catch (e) {
      console.error(`FAIL: ${e.message}`);
      process.exit(1);
    }
    return;
  }
  if (!Number.isFinite(opts.runs) || opts.runs < 0) {
    console.error("--runs must be a non-negative number");
    process.exit(2);
  }
  console.log(`fuzz: ${opts.runs.toLocaleString("en")} inputs, seed ${opts.seed}, hang timeout ${opts.hangMs} ms`);
  const shared = new SharedArrayBuffer(16 + MAX_INPUT);
  const progress = new Int32Array(shared, 0, 4);
  const record = new Uint8Array(shared, 16, MAX_INPUT);
  const worker = new Worker(fileURLToPath(import.meta.url), { workerData: { runs: opts.runs, seed: opts.seed, shared } });
  let lastDone = -1;
  let lastChange = Date.now();
  let finished = false;
  let armed = false; // the watchdog starts once the worker has built its corpus
  const replayHint = (hex, version, chunk, max) => `node scripts/fuzz.mjs --replay ${hex.length > 400 ? "<hex>" : hex} --version ${version} --chunk ${chunk} --max ${max}`;
  const watchdog = setInterval(() => {
    const done = Atomics.load(progress, 0);
    if (!armed) return;
    if (done !== lastDone) {
      lastDone = done;
      lastChange = Date.now();
    } else if (Date.now() - lastChange > opts.hangMs) {
      const len = Atomics.load(progress, 1);
      const version = Atomics.load(progress, 2);
      const cm = Atomics.load(progress, 3);
      console.error(`\nFAIL: hang: input #${done + 1} made no progress for ${opts.hangMs} ms (version ${version}, chunk ${cm & 0xff}, maxPacketSize ${cm >> 8})`);
      const hex = toHex(record.subarray(0, len));
      console.error(`input (${len} bytes): ${hex}`);
      console.error(`replay: ${replayHint(hex, version, cm & 0xff, cm >> 8)}`);
      finished = true;
      void worker.terminate().then(() => process.exit(1));
    }
  }, 250);
  worker.on("message", (m) => {
    if (m.type === "ready") {
      armed = true;
      lastChange = Date.now();
    } else if (m.type === "progress") {
      const rate = Math.round((m.done / m.ms) * 1000);
      console.log(`  ${m.done.toLocaleString("en")} / ${opts.runs.toLocaleString("en")} inputs (${rate.toLocaleString("en")}/s)`);
    } else if (m.type === "fail") {
      finished = true;
      clearInterval(watchdog);
      console.error(`\nFAIL: ${m.message}`);
      console.error(`version ${m.version}, chunk ${m.chunk}, maxPacketSize ${m.max}, seed ${opts.seed}`);
      console.error(`input (${m.hex.length / 2} bytes): ${m.hex}`);
      console.error(`replay: ${replayHint(m.hex, m.version, m.chunk, m.max)}`);
      void worker.terminate().then(() => process.exit(1));
    } else if (m.type === "done") {
      finished = true;
      clearInterval(watchdog);
      const s = m.stats;
      console.log(`ok: ${s.inputs.toLocaleString("en")} inputs (${(s.bytes / 1e6).toFixed(1)} MB) in ${(m.ms / 1000).toFixed(1)} s, seed ${opts.seed}, ${m.corpus} valid seed packets`);
      console.log(`  decoded packets: ${s.packets.toLocaleString("en")}; inputs ending cleanly: ${s.ok.toLocaleString("en")}`);
      console.log(`  decode errors by reason code: ${JSON.stringify(s.errors)}`);
      console.log(`  inputs by strategy: ${JSON.stringify(s.strategies)}`);
      void worker.terminate().then(() => process.exit(0));
    }
  });
  worker.on("error", (e) => {
    if (finished) return;
    finished = true;
    clearInterval(watchdog);
    const len = Atomics.load(progress, 1);
    console.error(`\nFAIL: worker crashed: ${e?.stack ?? e}`);
    console.error(`last input (${len} bytes): ${toHex(record.subarray(0, len))}`);
    process.exit(1);
  });
  worker.on("exit", (code) => {
    if (!finished) {
      console.error(`FAIL: worker exited early with code ${code}`);
      process.exit(1);
    }
  });
}

if (isMainThread) {
  await main();
} else {
  await fuzzWorker(workerData);
}
