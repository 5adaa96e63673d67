// Tests run against the TypeScript sources: each @harbormq/* import resolves to its src/index.ts,
// so `vitest` needs no build; `npm test` still builds first so that CLI/e2e tests can spawn dist/.
import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

const root = fileURLToPath(new URL(".", import.meta.url));

export default defineConfig({
  resolve: {
    alias: [{ find: /^@harbormq\/([a-z-]+)$/, replacement: `${root}packages/$1/src/index.ts` }],
  },
  test: {
    include: ["packages/*/test/**/*.test.ts", "bench/**/*.test.ts"],
    testTimeout: 20_000,
    hookTimeout: 30_000,
  },
});
