/**
 * Dev-mode reloads for real: `next dev` (Turbopack) on a copy of the app,
 * with `lib/wex.ts` (the module that calls `tokenSource`) edited again and
 * again. Next evaluates it anew after each edit, once per bundle that uses it
 * (the proxy route, the route handler); every evaluation finds the process's
 * token source in the registry, and the sandbox sees one token request.
 * (packages/next/test/registry.test.ts does the same with 20 evaluations
 * under Vitest.)
 */
import { appendFileSync, cpSync, rmSync } from "node:fs"
import { join } from "node:path"
import { type Sandbox, startSandbox } from "@authfetch/sandbox"
import { afterAll, describe, expect, it } from "vitest"
import { APP_DIR, type App, startApp } from "./app.ts"

const COPY = join(APP_DIR, ".dev-check")
const EDITS = 5

let sandbox: Sandbox | undefined
let app: App | undefined

afterAll(async () => {
  await app?.stop()
  await sandbox?.close()
  rmSync(COPY, { recursive: true, force: true })
})

const evaluations = (output: string) =>
  output.split("\n").filter((line) => line === "[dev-check] evaluated 0").length

describe("next dev", () => {
  it(`${EDITS} edits of the module that makes the token source, each evaluated anew: 1 token request`, async () => {
    rmSync(COPY, { recursive: true, force: true })
    for (const entry of ["app", "lib", "next.config.ts", "tsconfig.json"]) {
      cpSync(join(APP_DIR, entry), join(COPY, entry), { recursive: true })
    }
    const wex = join(COPY, "lib", "wex.ts")
    appendFileSync(wex, '\nconsole.log("[dev-check] evaluated 0")\n')
    sandbox = await startSandbox({
      profile: "wex",
      clients: [{ clientId: "next-app", clientSecret: "dev-secret" }]
    })
    app = await startApp(
      {
        WEX_CLIENT_ID: "next-app",
        WEX_CLIENT_SECRET: "dev-secret",
        WEX_TOKEN_URL: sandbox.tokenUrl,
        WEX_BASE_URL: sandbox.baseUrl
      },
      { dir: COPY, command: "dev" }
    )
    const call = async () => {
      for (const path of ["/api/summary", "/api/benefits/v1/consumers/12345"]) {
        const response = await fetch(`${app!.url}${path}`)
        expect(response.status).toBe(200)
        await response.body?.cancel()
      }
    }
    await call()
    const seen = [evaluations(app.output())]
    for (let edit = 1; edit <= EDITS; edit++) {
      appendFileSync(wex, `// edit ${edit}\n`)
      // Next recompiles on its own time: ask until the edited module has been evaluated again.
      const deadline = Date.now() + 20_000
      while (evaluations(app.output()) <= seen.at(-1)!) {
        if (Date.now() > deadline) throw new Error(`edit ${edit} was not picked up:\n${app.output()}`)
        await new Promise((resolve) => setTimeout(resolve, 200))
        await call()
      }
      await call()
      seen.push(evaluations(app.output()))
    }
    console.log(`next dev: lib/wex.ts evaluated ${seen.at(-1)} times over ${EDITS} edits; token requests: 1`)
    expect(seen.at(-1)!).toBeGreaterThan(EDITS)
    expect(sandbox.stats().tokenRequests.total).toBe(1)
    expect(sandbox.stats().apiRequests.total).toBeGreaterThan(2 * EDITS)
  })
})
