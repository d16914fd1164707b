import { defineConfig } from "vitest/config"

// The example's tests beyond src/smoke.ts and src/fleet.ts: the sign-in scenarios in Chromium
// (packages/core/test/signin) against this app, and the server started as `npm start` starts it.
export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // One file at a time: the browser file holds tokens of 3 s across page loads.
    maxWorkers: 1,
    testTimeout: 120_000,
    hookTimeout: 60_000,
    reporters: ["default", ["json", { outputFile: "test-results/vitest.json" }]]
  }
})
