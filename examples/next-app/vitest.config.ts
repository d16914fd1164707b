import { defineConfig } from "vitest/config"

// End to end: `next build` once (test/globalSetup.ts), then `next start` against the sandbox.
export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/globalSetup.ts"],
    // One file at a time: next build and next dev (other files) would starve the 500-request test,
    // whose tokens live 2 seconds.
    maxWorkers: 1,
    testTimeout: 120_000,
    hookTimeout: 120_000,
    reporters: ["default", ["json", { outputFile: "test-results/vitest.json" }]]
  }
})
