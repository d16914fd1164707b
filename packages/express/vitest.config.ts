import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 20_000,
    // `global.gc` lets the upload test measure what the streams retain.
    execArgv: ["--expose-gc"],
    reporters: ["default", ["json", { outputFile: "test-results/vitest.json" }]],
    projects: [
      { extends: true, test: { name: "express5", include: ["test/*.test.ts"] } },
      {
        // The same adapter source under Express 4 (`express4` is `npm:express@4`): every
        // `import ... from "express"`, ours included, resolves to it.
        extends: true,
        resolve: { alias: [{ find: /^express$/, replacement: "express4" }] },
        test: { name: "express4", include: ["test/express4/*.test.ts"] }
      }
    ]
  }
})
