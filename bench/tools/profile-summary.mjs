// Summarises a V8 .cpuprofile (node --cpu-prof) by self time: the functions where the samples
// landed, with their file:line and share of the busy samples (idle excluded; `idle` gives the
// idle share of all samples), and the same rolled up per file.
//
//   node bench/tools/profile-summary.mjs FILE.cpuprofile [--top=25] [--json]
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

export function summarise(profile, n = 25) {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfTicks = new Map();
  for (const id of profile.samples) selfTicks.set(id, (selfTicks.get(id) ?? 0) + 1);
  let idleTicks = 0;
  for (const [id, ticks] of selfTicks) if (byId.get(id).callFrame.functionName === "(idle)") idleTicks += ticks;
  const total = profile.samples.length - idleTicks;
  const fns = new Map();
  const files = new Map();
  for (const [id, ticks] of selfTicks) {
    const cf = byId.get(id).callFrame;
    const url = cf.url.replace(/^file:\/\//, "").replace(/^.*\/(packages|node_modules|bench)\//, "$1/");
    const name = cf.functionName || "(anonymous)";
    if (name === "(idle)") continue;
    const key = url ? `${name} ${url}:${cf.lineNumber + 1}` : name;
    fns.set(key, (fns.get(key) ?? 0) + ticks);
    const fk = url || name;
    files.set(fk, (files.get(fk) ?? 0) + ticks);
  }
  const rank = (m) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([key, ticks]) => ({ key, share: ticks / total }));
  return { samples: profile.samples.length, idle: idleTicks / profile.samples.length, functions: rank(fns), files: rank(files) };
}

function main() {
  const args = process.argv.slice(2);
  const file = args.find((a) => !a.startsWith("--"));
  const top = Number(args.find((a) => a.startsWith("--top="))?.split("=")[1] ?? 25);
  if (file === undefined) {
    console.error("usage: profile-summary.mjs FILE.cpuprofile [--top=N] [--json]");
    process.exit(2);
  }
  const s = summarise(JSON.parse(readFileSync(file, "utf8")), top);
  if (args.includes("--json")) return console.log(JSON.stringify(s, null, 2));
  console.log(`${s.samples} samples, ${(s.idle * 100).toFixed(0)} % idle; self time by function, share of busy samples:`);
  for (const f of s.functions) console.log(`${(f.share * 100).toFixed(1).padStart(5)} %  ${f.key}`);
  console.log(`\nby file:`);
  for (const f of s.files.slice(0, 12)) console.log(`${(f.share * 100).toFixed(1).padStart(5)} %  ${f.key}`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) main();
