import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // the installs and the runs are real processes; the whole file takes a few minutes
    testTimeout: 120_000,
    hookTimeout: 600_000,
    // one file at a time: the consumer test installs two apps and runs their snippets
    fileParallelism: false,
    reporters: ["default", ["json", { outputFile: "test-results/vitest.json" }]]
  }
})
