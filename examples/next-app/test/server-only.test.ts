/**
 * Server-only, proved by the build: a client component that imports
 * `@authfetch/next` (test/fixtures/client-import, deliberately wrong) fails
 * `next build` with Next's server-only error, pointing at the adapter's
 * entry. The app itself imports it from server code only, and builds (see
 * globalSetup.ts).
 */
import { spawnSync } from "node:child_process"
import { rmSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { APP_DIR, NEXT_BIN } from "./app.ts"

const FIXTURE = join(APP_DIR, "test", "fixtures", "client-import")

describe("server-only", () => {
  it("next build fails when a client component imports @authfetch/next", () => {
    rmSync(join(FIXTURE, ".next"), { recursive: true, force: true })
    const build = spawnSync(process.execPath, [NEXT_BIN, "build", FIXTURE], {
      cwd: APP_DIR,
      encoding: "utf8",
      env: { ...process.env, NEXT_TELEMETRY_DISABLED: "1", WEX_CLIENT_SECRET: "must-not-matter" }
    })
    const output = `${build.stdout}\n${build.stderr}`
    rmSync(join(FIXTURE, ".next"), { recursive: true, force: true })
    expect(build.status, output).not.toBe(0)
    expect(output).toContain("'server-only' cannot be imported from a Client Component module")
    expect(output).toMatch(/packages\/next\/dist\/index\.js/)
    expect(output).toMatch(/client-import\/app\/widget\.jsx \[Client Component Browser\]/)
  })
})
