/**
 * Dev-mode reloads for real: `next dev` (Turbopack) on a copy of the app.
 *
 * - `lib/wex.ts` (the module that calls `tokenSource`) edited again and
 *   again: Next evaluates it anew after each edit, once per bundle that uses
 *   it (the proxy route, the route handler); every evaluation finds the
 *   process's token source in the registry, and the sandbox sees one token
 *   request. (packages/next/test/registry.test.ts does the same with 20
 *   evaluations under Vitest.)
 * - a user signed in in Chromium stays signed in while `lib/auth.ts` (the
 *   module that calls `userSessions`) and the account page are edited: the
 *   page reloads with the edit, shows the user, and the sessions handle is
 *   the registry's one (the sandbox's token endpoint sees no new sign-in).
 */
import { appendFileSync, cpSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { type Sandbox, startSandbox } from "@authfetch/sandbox"
import type { Browser } from "playwright-core"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { APP_DIR, type App, startApp } from "./app.ts"
import { launchChromium } from "./browser.ts"

const COPY = join(APP_DIR, ".dev-check")
const EDITS = 5
const ALICE = { username: "alice", password: "alice-dev-password", name: "Alice Example" }

let wex: Sandbox | undefined
let wealthcare: Sandbox | undefined
let app: App | undefined
let browser: Browser | undefined

const marker = (name: string) => `[dev-check] ${name} evaluated`
const evaluations = (output: string, name = "wex") =>
  output.split("\n").filter((line) => line === marker(name)).length

beforeAll(async () => {
  rmSync(COPY, { recursive: true, force: true })
  for (const entry of ["app", "lib", "next.config.ts", "tsconfig.json"]) {
    cpSync(join(APP_DIR, entry), join(COPY, entry), { recursive: true })
  }
  appendFileSync(join(COPY, "lib", "wex.ts"), `\nconsole.log(${JSON.stringify(marker("wex"))})\n`)
  appendFileSync(join(COPY, "lib", "auth.ts"), `\nconsole.log(${JSON.stringify(marker("auth"))})\n`)
  ;[wex, wealthcare] = await Promise.all([
    startSandbox({ profile: "wex", clients: [{ clientId: "next-app", clientSecret: "dev-secret" }] }),
    startSandbox({
      profile: "wealthcare",
      users: [ALICE],
      clients: [
        { clientId: "next-app", clientSecret: "dev-secret", redirectUris: ["http://127.0.0.1/auth/callback"] }
      ]
    })
  ])
  app = await startApp(
    (url) => ({
      WEX_CLIENT_ID: "next-app",
      WEX_CLIENT_SECRET: "dev-secret",
      WEX_TOKEN_URL: wex!.tokenUrl,
      WEX_BASE_URL: wex!.baseUrl,
      WEALTHCARE_CLIENT_ID: "next-app",
      WEALTHCARE_CLIENT_SECRET: "dev-secret",
      WEALTHCARE_ISSUER: wealthcare!.issuer!,
      WEALTHCARE_BASE_URL: wealthcare!.baseUrl,
      APP_URL: url
    }),
    { dir: COPY, command: "dev" }
  )
})
afterAll(async () => {
  await browser?.close()
  await app?.stop()
  await Promise.all([wex?.close(), wealthcare?.close()])
  rmSync(COPY, { recursive: true, force: true })
})

/** Waits until Next has evaluated the edited module again (it recompiles on its own time), asking meanwhile. */
const waitForEvaluation = async (name: string, seen: number, ask: () => Promise<void>) => {
  const deadline = Date.now() + 30_000
  while (evaluations(app!.output(), name) <= seen) {
    if (Date.now() > deadline) throw new Error(`the edit of ${name} was not picked up:\n${app!.output()}`)
    await new Promise((resolve) => setTimeout(resolve, 200))
    await ask()
  }
}

describe("next dev", () => {
  it(`${EDITS} edits of the module that makes the token source, each evaluated anew: 1 token request`, async () => {
    const wexFile = join(COPY, "lib", "wex.ts")
    const call = async () => {
      for (const path of ["/api/summary", "/api/benefits/v1/consumers/12345"]) {
        const response = await fetch(`${app!.url}${path}`)
        expect(response.status).toBe(200)
        await response.body?.cancel()
      }
    }
    await call()
    const seen = [evaluations(app!.output())]
    for (let edit = 1; edit <= EDITS; edit++) {
      appendFileSync(wexFile, `// edit ${edit}\n`)
      await waitForEvaluation("wex", seen.at(-1)!, call)
      await call()
      seen.push(evaluations(app!.output()))
    }
    console.log(`next dev: lib/wex.ts evaluated ${seen.at(-1)} times over ${EDITS} edits; token requests: 1`)
    expect(seen.at(-1)!).toBeGreaterThan(EDITS)
    expect(wex!.stats().tokenRequests.total).toBe(1)
    expect(wex!.stats().apiRequests.total).toBeGreaterThan(2 * EDITS)
  })

  it("a user signed in in Chromium stays signed in across edits of lib/auth.ts and of the account page", async () => {
    browser = await launchChromium()
    const page = await browser.newPage()
    const problems: Array<string> = []
    page.on("pageerror", (error) => problems.push(error.message))
    await page.goto(`${app!.url}/account`, { timeout: 60_000 })
    await page.waitForURL((url) => url.href.startsWith(wealthcare!.authorizeUrl!), { timeout: 60_000 })
    await page.getByLabel("Username").fill(ALICE.username)
    await page.getByLabel("Password").fill(ALICE.password)
    await Promise.all([
      page.waitForURL((url) => url.pathname === "/account", { timeout: 60_000 }),
      page.getByRole("button", { name: "Sign in" }).click()
    ])
    await page.locator("#user-name").waitFor({ timeout: 60_000 })
    expect(await page.locator("#user-name").textContent()).toBe(ALICE.name)
    const signIns = () => wealthcare!.stats().tokenRequests.byGrant.authorization_code ?? 0
    expect(signIns()).toBe(1)

    // the module that makes the sessions, evaluated anew: the same sessions, the user still signed in
    const authFile = join(COPY, "lib", "auth.ts")
    const before = evaluations(app!.output(), "auth")
    appendFileSync(authFile, "// edited\n")
    await waitForEvaluation("auth", before, async () => {
      await page.reload()
    })
    await page.reload()
    await page.locator("#user-name").waitFor()
    expect(new URL(page.url()).pathname).toBe("/account")
    expect(await page.locator("#api-subject").textContent()).toBe(ALICE.username)

    // the page itself edited: Next refreshes it in place (no navigation), with the edit and the user
    const pageFile = join(COPY, "app", "account", "page.tsx")
    writeFileSync(
      pageFile,
      readFileSync(pageFile, "utf8").replace("<h1>Your account</h1>", "<h1>Your account (edited)</h1>")
    )
    await page.getByRole("heading", { name: "Your account (edited)" }).waitFor({ timeout: 30_000 })
    expect(await page.locator("#user-name").textContent()).toBe(ALICE.name)
    await page.reload()
    await page.getByRole("heading", { name: "Your account (edited)" }).waitFor()
    expect(await page.locator("#user-name").textContent()).toBe(ALICE.name)
    expect(await page.locator("#api-subject").textContent()).toBe(ALICE.username)
    // the client component on the per-user proxy, after the edits
    await page.goto(`${app!.url}/proxy-check`)
    await page.locator("body[data-ready]").waitFor({ timeout: 60_000 })
    expect(await page.locator("#proxy-subject").textContent()).toBe(ALICE.username)
    expect(await page.locator("#proxy-error").textContent()).toBe("")

    expect(signIns()).toBe(1)
    expect(problems).toEqual([])
    console.log(
      `next dev: signed in once; lib/auth.ts evaluated ${evaluations(app!.output(), "auth")} times; still signed in after the edits`
    )
  })
})
