/**
 * The sign-in page in a real headless Chromium: an app's authorization URL
 * opened, the user's credentials typed, "Sign in" clicked, and the browser
 * lands on the app's loopback callback (a tiny node:http server here) with a
 * code that exchanges for tokens; "Cancel" lands there with
 * `error=access_denied`; a wrong password shows the form again; the live page
 * counts the app's revocation. Nothing the page's Content Security Policy
 * blocks, no console error.
 *
 * Needs Chromium at /usr/bin/chromium (see browser.ts): without it this test
 * fails, on purpose.
 */
import { createServer, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import type { Browser, Page } from "playwright-core"
import { afterAll, describe, expect, it } from "vitest"
import { type Sandbox, startSandbox } from "../src/index.ts"
import { launchChromium } from "./browser.ts"
import { CLIENT, pkce, postForm } from "./support.ts"

let browser: Browser | undefined
let sandbox: Sandbox | undefined
let app: Server | undefined

afterAll(async () => {
  await browser?.close()
  await sandbox?.close()
  app?.closeAllConnections()
  await new Promise((resolve) => app?.close(resolve) ?? resolve(undefined))
})

/** The app's callback: records each query it is called with. */
const startApp = async (): Promise<{ server: Server; origin: string; calls: Array<URLSearchParams> }> => {
  const calls: Array<URLSearchParams> = []
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://127.0.0.1")
    if (url.pathname === "/callback") calls.push(url.searchParams)
    // a browser asks each origin for its icon: answered, so that no 404 shows in the console
    if (url.pathname === "/favicon.ico") {
      res.writeHead(204)
      res.end()
      return
    }
    res.writeHead(url.pathname === "/callback" ? 200 : 404, { "content-type": "text/html; charset=utf-8" })
    res.end("<!doctype html><title>app</title><h1>back in the app</h1>")
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  return { server, origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, calls }
}

const watch = (page: Page): Array<string> => {
  const problems: Array<string> = []
  page.on("pageerror", (err) => problems.push(`pageerror: ${err.message}`))
  page.on("response", (res) => {
    if (res.status() >= 400) problems.push(`HTTP ${res.status()}: ${res.url()}`)
  })
  page.on("console", (msg) => {
    if (msg.type() === "error" || msg.type() === "warning")
      problems.push(`console ${msg.type()}: ${msg.text()}`)
  })
  return problems
}

describe("sign-in page in Chromium", () => {
  it("Sign in lands on the app's callback with a code that exchanges; Cancel with access_denied", async () => {
    browser = await launchChromium()
    sandbox = await startSandbox({
      profile: "wealthcare",
      users: [
        { username: "alice", password: "correct horse", name: "Alice Example", email: "alice@example.com" },
        { username: "bob", password: "battery staple" }
      ]
    })
    const started = await startApp()
    app = started.server
    const redirectUri = `${started.origin}/callback`
    const authorizationUrl = (challenge: string, state: string) => {
      const url = new URL(sandbox!.authorizeUrl!)
      url.search = new URLSearchParams({
        response_type: "code",
        client_id: "sandbox-client",
        redirect_uri: redirectUri,
        scope: "openid profile email bensoft_api offline_access",
        state,
        nonce: `nonce-${state}`,
        code_challenge: challenge,
        code_challenge_method: "S256"
      }).toString()
      return url.href
    }

    // --- sign in, with a wrong password first ---
    const page = await browser.newPage()
    const problems = watch(page)
    const { verifier, challenge } = pkce()
    await page.goto(authorizationUrl(challenge, "state-1"))
    expect(await page.title()).toMatch(/Sign in/)
    expect(await page.locator("#scopes").textContent()).toContain("bensoft_api")
    expect(await page.locator("#users").textContent()).toContain("correct horse")
    await page.getByLabel("Username").fill("alice")
    await page.getByLabel("Password").fill("wrong")
    await page.getByRole("button", { name: "Sign in" }).click()
    await page.waitForSelector("#error")
    expect(await page.locator("#error").textContent()).toBe("Invalid username or password")
    expect(await page.getByLabel("Username").inputValue()).toBe("alice")
    expect(await page.getByLabel("Password").inputValue()).toBe("")
    await page.getByLabel("Password").fill("correct horse")
    await Promise.all([
      page.waitForURL((url) => url.href.startsWith(redirectUri), { timeout: 10_000 }),
      page.getByRole("button", { name: "Sign in" }).click()
    ])
    expect(await page.locator("h1").textContent()).toBe("back in the app")
    expect(started.calls).toHaveLength(1)
    const back = started.calls[0]!
    expect(back.get("state")).toBe("state-1")
    expect(back.get("iss")).toBe(sandbox.url)
    const code = back.get("code")!
    expect(code.length).toBeGreaterThan(20)

    const res = await postForm(sandbox.tokenUrl, {
      grant_type: "authorization_code",
      code,
      redirect_uri: redirectUri,
      code_verifier: verifier,
      ...CLIENT
    })
    expect(res.status).toBe(200)
    const tokens = (await res.json()) as { access_token: string; id_token: string; refresh_token: string }
    const claims = JSON.parse(
      Buffer.from(tokens.id_token.split(".")[1]!, "base64url").toString("utf8")
    ) as Record<string, unknown>
    expect(claims).toMatchObject({
      sub: "alice",
      nonce: "nonce-state-1",
      name: "Alice Example",
      iss: sandbox.url
    })
    const me = await fetch(`${sandbox.baseUrl}/v1/me`, {
      headers: { authorization: `Bearer ${tokens.access_token}` }
    })
    expect(((await me.json()) as { subject: string }).subject).toBe("alice")

    // --- pressing Enter in the password field signs in too (the first submit button) ---
    const enter = pkce()
    await page.goto(authorizationUrl(enter.challenge, "state-2"))
    await page.getByLabel("Username").fill("bob")
    await page.getByLabel("Password").fill("battery staple")
    await Promise.all([
      page.waitForURL((url) => url.href.startsWith(redirectUri), { timeout: 10_000 }),
      page.getByLabel("Password").press("Enter")
    ])
    expect(started.calls[1]!.get("state")).toBe("state-2")
    expect(started.calls[1]!.get("code")).not.toBeNull()

    // --- Cancel, with the fields left empty ---
    await page.goto(authorizationUrl(pkce().challenge, "state-3"))
    await Promise.all([
      page.waitForURL((url) => url.href.startsWith(redirectUri), { timeout: 10_000 }),
      page.getByRole("button", { name: "Cancel" }).click()
    ])
    const denied = started.calls[2]!
    expect(denied.get("error")).toBe("access_denied")
    expect(denied.get("state")).toBe("state-3")
    expect(denied.get("iss")).toBe(sandbox.url)
    expect(denied.get("code")).toBeNull()

    // the app signs out: its refresh token revoked (RFC 7009); the live page counts it
    const revoked = await postForm(sandbox.revocationUrl!, { token: tokens.refresh_token, ...CLIENT })
    expect(revoked.status).toBe(200)
    await page.goto(sandbox.url)
    await page.waitForFunction(
      () => document.querySelector('[data-stat="revocation requests (revoked)"] b')?.textContent === "1 (1)",
      undefined,
      { timeout: 10_000 }
    )
    expect(await page.locator("#urls").textContent()).toContain("/.well-known/openid-configuration")

    // nothing the CSP blocked (a form-action too narrow for the redirect back would show here), no errors
    expect(problems).toEqual([])
    await page.close()
  }, 40_000)
})
