// Imported first by every test file here: turns "Module did not self-register" into a hint.
import Database from "better-sqlite3";

try {
  new Database(":memory:").close();
} catch (error) {
  throw new Error(
    `better-sqlite3 does not load in ${process.execPath} (Node ${process.version}): ${(error as Error).message.replace(/\s+/g, " ")} ` +
      `The addon is built for the Node that ran npm install: run vitest with that Node (npx vitest run, or e.g. ` +
      `/usr/bin/node node_modules/vitest/vitest.mjs run), not with another one such as the Node 24 of tools/node24 ` +
      `(kept there for the cross-runtime test), or rebuild the addon for this Node: npm rebuild better-sqlite3.`,
    { cause: error },
  );
}
