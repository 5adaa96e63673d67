// `--name=value` / `--flag` arguments of the scripts in this folder, as { name: "value" | "true" };
// anything else is a usage error (exit 2).
export function parseArgs(argv = process.argv.slice(2)) {
  return Object.fromEntries(
    argv.map((a) => {
      const m = /^--([a-z-]+)(?:=(.*))?$/.exec(a);
      if (m === null) {
        console.error(`unknown argument ${a}`);
        process.exit(2);
      }
      return [m[1], m[2] ?? "true"];
    }),
  );
}
