import { createRequire } from "node:module"
import { dirname, join } from "node:path"
import { defineConfig } from "vitest/config"

// `server-only` throws unless resolved with the `react-server` condition, as Next does for route
// handlers and server components; the tests stand where Next would, so they get its empty module.
const serverOnly = join(dirname(createRequire(import.meta.url).resolve("server-only")), "empty.js")

/** Route-handler tests, run twice: in Node.js and in an Edge-runtime context (`@edge-runtime/vm`). */
const routeHandlerTests = [
  "test/proxy.attacks.test.ts",
  "test/withAuthFetch.test.ts",
  "test/registry.test.ts",
  "test/streaming.test.ts",
  "test/gc.test.ts",
  "test/signIn.test.ts",
  "test/sessions.test.ts"
]

export default defineConfig({
  resolve: { alias: { "server-only": serverOnly } },
  test: {
    // One file at a time: the 500-request test runs with 2-second tokens, and a CPU shared with other
    // test files can stall the event loop for longer than a token lives (then the core's one replay
    // meets an expired token too). What is measured is the adapter, not the machine's load.
    maxWorkers: 1,
    testTimeout: 30_000,
    hookTimeout: 30_000,
    reporters: ["default", ["json", { outputFile: "test-results/vitest.json" }]],
    projects: [
      {
        extends: true,
        test: {
          name: "node",
          include: ["test/**/*.test.ts"],
          environment: "node",
          env: { TEST_RUNTIME: "node" },
          execArgv: ["--expose-gc"]
        }
      },
      {
        extends: true,
        test: {
          name: "edge",
          include: routeHandlerTests,
          environment: "edge-runtime",
          env: { TEST_RUNTIME: "edge" },
          execArgv: ["--expose-gc"]
        }
      }
    ]
  }
})
