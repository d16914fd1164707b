/**
 * The live page in a real headless Chromium: tokens by fingerprint with a
 * revoked marker and a live countdown, the recent requests, and no token value
 * anywhere in the page or in what it downloaded.
 *
 * Needs Chromium at /usr/bin/chromium (see browser.ts): without it this test
 * fails, on purpose.
 */
import { mkdirSync, readFileSync, statSync } from "node:fs"
import { join } from "node:path"
import type { Browser } from "playwright-core"
import { afterAll, describe, expect, it } from "vitest"
import { type Sandbox, startSandbox } from "../src/index.ts"
import { launchChromium } from "./browser.ts"
import { bearer, clientCredentials, fingerprintOf, sleep } from "./support.ts"

const screenshot = join(new URL("..", import.meta.url).pathname, "test-results", "page.png")

let browser: Browser | undefined
let sandbox: Sandbox | undefined

afterAll(async () => {
  await browser?.close()
  await sandbox?.close()
})

describe("live page", () => {
  it("shows tokens by fingerprint, the revoked one marked, the requests, and never a token value", async () => {
    browser = await launchChromium()
    sandbox = await startSandbox({ profile: "wex", tokenTtl: 300 })
    const revoked = await clientCredentials(sandbox)
    sandbox.revokeAll()
    const active = await clientCredentials(sandbox)
    const api = `${sandbox.baseUrl}/v1/consumers/12345`
    expect((await fetch(api, { headers: bearer(active) })).status).toBe(200)
    expect((await fetch(api, { headers: bearer(revoked) })).status).toBe(401)
    expect((await fetch(api)).status).toBe(401)
    expect(
      (await fetch(`${sandbox.baseUrl}/v1/consumers/12345/accounts?page=2`, { headers: bearer(active) }))
        .status
    ).toBe(200)

    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } })
    const problems: Array<string> = []
    page.on("pageerror", (err) => problems.push(`pageerror: ${err.message}`))
    page.on("console", (msg) => {
      if (msg.type() === "error") problems.push(`console: ${msg.text()}`)
    })
    const bodies: Array<Promise<{ url: string; body: string }>> = []
    page.on("response", (response) => {
      bodies.push(
        response.body().then(
          (body) => ({ url: response.url(), body: body.toString("utf8") }),
          () => ({ url: response.url(), body: "" })
        )
      )
    })

    await page.goto(sandbox.url)
    const fpActive = fingerprintOf(active)
    const fpRevoked = fingerprintOf(revoked)
    await page.waitForSelector(`#token-rows tr[data-fingerprint="${fpActive}"]`, { timeout: 10_000 })
    await page.waitForSelector(`#token-rows tr[data-fingerprint="${fpRevoked}"]`, { timeout: 10_000 })
    await page.waitForFunction(() => document.querySelectorAll("#request-rows tr").length >= 6, undefined, {
      timeout: 10_000
    })

    // fingerprints as shown
    const shown = await page.$$eval("#token-rows tr td.fp", (cells) => cells.map((c) => c.textContent))
    expect(shown.sort()).toEqual([fpActive, fpRevoked].sort())
    // the revoked marker, and the active token's live countdown
    const revokedRow = page.locator(`#token-rows tr[data-fingerprint="${fpRevoked}"]`)
    expect(await revokedRow.getAttribute("data-state")).toBe("revoked")
    expect(await revokedRow.locator(".badge").textContent()).toBe("revoked")
    const activeRow = page.locator(`#token-rows tr[data-fingerprint="${fpActive}"]`)
    expect(await activeRow.locator(".badge").textContent()).toBe("active")
    const left1 = await activeRow.locator("td.left").textContent()
    expect(left1).toMatch(/^4m \d\ds$|^5m 00s$/)

    // the requests: method, path, status, client, token, duration
    const rows = await page.$$eval("#request-rows tr", (trs) =>
      trs.map((tr) => Array.from(tr.querySelectorAll("td"), (td) => td.textContent ?? ""))
    )
    const cells = rows.map(([, method, path, status, client, token, duration]) => ({
      method,
      path,
      status,
      client,
      token,
      duration
    }))
    expect(cells).toContainEqual(
      expect.objectContaining({
        method: "POST",
        path: "/authorize",
        status: "200",
        client: "sandbox-client",
        token: fpActive
      })
    )
    expect(cells).toContainEqual(
      expect.objectContaining({
        method: "GET",
        path: "/api/v1/consumers/12345",
        status: "401",
        token: fpRevoked
      })
    )
    expect(cells).toContainEqual(
      expect.objectContaining({
        method: "GET",
        path: "/api/v1/consumers/12345/accounts",
        status: "200",
        token: fpActive
      })
    )
    expect(cells.every((c) => /^\d+ ms$/.test(c.duration ?? ""))).toBe(true)

    // a request made while the page is open shows up within a poll or two
    await fetch(`${sandbox.baseUrl}/v1/claims`, { headers: bearer(active) })
    await page.waitForSelector('#request-rows tr td:text-is("/api/v1/claims")', { timeout: 5_000 })
    await sleep(1200)
    const left2 = await activeRow.locator("td.left").textContent()
    expect(left2).not.toBe(left1)

    // the counters, as the stats cards show them
    expect(await page.locator('[data-stat="token requests"] b').textContent()).toBe("2")
    expect(await page.locator('[data-stat="revoked"] b').textContent()).toBe("1")
    expect(await page.locator("header").textContent()).not.toContain("[object")
    expect(await page.locator("main").textContent()).not.toContain("[object")

    mkdirSync(join(screenshot, ".."), { recursive: true })
    await page.screenshot({ path: screenshot, fullPage: true })
    const png = readFileSync(screenshot)
    expect(png.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))
    expect(statSync(screenshot).size).toBeGreaterThan(10 * 1024)

    const html = await page.content()
    const received = await Promise.all(bodies)
    expect(received.length).toBeGreaterThan(4)
    expect(received.some((r) => r.url.includes("/admin/tokens") && r.body.includes(fpActive))).toBe(true)
    for (const value of [active, revoked, "sandbox-secret"]) {
      expect(html).not.toContain(value)
      for (const r of received) expect(r.body, r.url).not.toContain(value)
    }
    expect(problems).toEqual([])
    await page.close()
  }, 40_000)
})
