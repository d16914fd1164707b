/**
 * `userFetch` over time, with 2-second tokens from the WealthCare sandbox:
 * the user's token refreshed with their refresh token across lifetimes with
 * no visible error, and, once the refresh token is revoked at the server and
 * the access token expires, the next page load goes to sign in (Next's
 * `redirect()` error) or, without `signIn`, `SignInRequiredError`. Node.js
 * only: the refresh is the core's, and the Edge-runtime project runs the
 * helpers without the waits (sessions.test.ts).
 */
import type { Sandbox } from "@authfetch/sandbox"
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest"
import {
  createSignInRoute,
  disposeUserSessions,
  getUserSession,
  requireUserSession,
  userFetch,
  userSessions
} from "../src/index.ts"
import { APP, Browser, redirectedTo, sessionsConfig, startWealthcare } from "./signInSupport.ts"

const TTL = 2

let sandbox: Sandbox

beforeAll(async () => {
  sandbox = await startWealthcare({ tokenTtl: TTL })
})
afterEach(() => disposeUserSessions())
afterAll(async () => {
  await sandbox?.close()
})

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const requestOf = (browser: Browser, path = "/account") =>
  new Request(`${APP}${path}`, { headers: { cookie: browser.header() } })

describe("userFetch across token lifetimes", () => {
  const signedIn = async () => {
    const sessions = userSessions(() => sessionsConfig(sandbox))
    const browser = new Browser()
    await browser.signIn(createSignInRoute(sessions), "alice")
    return { sessions, browser }
  }

  it("short token lifetimes: refreshed with the refresh token across 3 lifetimes, with no visible error", async () => {
    const { sessions, browser } = await signedIn()
    const refreshes = () => sandbox.stats().tokenRequests.byGrant.refresh_token ?? 0
    const before = refreshes()
    const subjects: Array<string> = []
    for (let lifetime = 0; lifetime < 4; lifetime++) {
      // a page load: the session from the request, a fetch for it
      const api = await userFetch(sessions, { request: requestOf(browser), baseUrl: sandbox.baseUrl })
      const response = await api("/v1/me")
      expect(response.status).toBe(200)
      subjects.push(((await response.json()) as { subject: string }).subject)
      if (lifetime < 3) await sleep(TTL * 1000 + 300)
    }
    expect(subjects).toEqual(["alice", "alice", "alice", "alice"])
    expect(refreshes() - before).toBeGreaterThanOrEqual(3)
  })

  it("a refresh token revoked at the server: once the access token expires, the next page load goes to sign in, and the session is gone", async () => {
    const { sessions, browser } = await signedIn()
    const api = await userFetch(sessions, { request: requestOf(browser), baseUrl: sandbox.baseUrl })
    expect((await api("/v1/me")).status).toBe(200)
    expect(sandbox.revokeRefreshTokens("alice")).toBeGreaterThanOrEqual(1)
    await sleep(TTL * 1000 + 300)
    // the next page load: the session is still in the store, its refresh is refused at the call
    const page = await userFetch(sessions, {
      request: requestOf(browser),
      baseUrl: sandbox.baseUrl,
      signIn: { returnTo: "/account" }
    })
    expect(await redirectedTo(() => page("/v1/me"))).toBe("/auth/signin?returnTo=%2Faccount")
    expect(await getUserSession(sessions, { request: requestOf(browser) })).toBeUndefined()
    expect(
      await redirectedTo(() =>
        requireUserSession(sessions, { request: requestOf(browser), returnTo: "/account" })
      )
    ).toBe("/auth/signin?returnTo=%2Faccount")
  })

  it("without signIn, a call whose refresh is refused rejects with SignInRequiredError (a route handler answers 401)", async () => {
    const { sessions, browser } = await signedIn()
    const api = await userFetch(sessions, { request: requestOf(browser), baseUrl: sandbox.baseUrl })
    sandbox.revokeRefreshTokens("alice")
    await sleep(TTL * 1000 + 300)
    await expect(api("/v1/me")).rejects.toMatchObject({
      _tag: "SignInRequiredError",
      reason: "refresh_rejected"
    })
  })
})
