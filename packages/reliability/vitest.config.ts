import { createRequire } from "node:module"
import { dirname, join } from "node:path"
import { defineConfig } from "vitest/config"

// `@authfetch/next` imports `server-only`, which throws unless resolved with the `react-server`
// condition (as Next does for route handlers); these tests stand where Next would.
const fromNext = createRequire(createRequire(import.meta.url).resolve("@authfetch/next/package.json"))
const serverOnly = join(dirname(fromNext.resolve("server-only")), "empty.js")

export default defineConfig({
  resolve: { alias: { "server-only": serverOnly } },
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // the cells of one fault row run side by side (one sandbox each)
    maxConcurrency: 6,
    reporters: ["default", ["json", { outputFile: "test-results/vitest.json" }]]
  }
})
