/**
 * `userSessions` and the session helpers: one core handle per process and
 * configuration however often the app's modules are evaluated (what
 * `next dev` does on every edit), nothing made at import, sessions that
 * survive a reload and a dispose (they live in the store); `userFetch` with
 * the user's token, `SignInRequiredError` or the redirect to sign in (Next's
 * own `redirect()` error) when nobody is signed in; the sign-in path next to
 * the callback; and the Edge
 * runtime's refusal of sessions without a store (this file runs in Node.js
 * and in the Edge-runtime environment).
 *
 * The helpers that read `cookies()` of `next/headers` need Next's request
 * scope: here they get the route handler's `request`; examples/next-app runs
 * them under `next start` and `next dev`.
 */
import {
  InvalidConfigError,
  SessionStore,
  SignInRequiredError,
  type UserSessionsConfig,
  type UserSessionsHandle
} from "@authfetch/core"
import type { Sandbox } from "@authfetch/sandbox"
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest"
import { startTokenServer } from "../../core/test/support/tokenServer.ts"
import {
  createProxyRoute,
  createSignInRoute,
  disposeUserSessions,
  getUserSession,
  redirectToSignIn,
  requireUserSession,
  userFetch,
  userSessions
} from "../src/index.ts"
import { registeredSessions } from "../src/sessions.ts"
import { APP, Browser, redirectedTo, sessionsConfig, startWealthcare, storeOption } from "./signInSupport.ts"

const EDGE = process.env.TEST_RUNTIME === "edge"

let sandbox: Sandbox
/** requests the sessions made (discovery, token, revocation), by path */
const made: Array<string> = []
const counting: typeof globalThis.fetch = (input, init) => {
  const url = typeof input === "string" ? input : input instanceof URL ? input.href : input.url
  made.push(new URL(url).pathname)
  return fetch(input, init)
}
const config = (extra: Partial<UserSessionsConfig> = {}) =>
  sessionsConfig(sandbox, { fetch: counting, ...extra })

interface Setup {
  evaluations: number
  resolved: number
  config: () => UserSessionsConfig
  baseUrl: string
  store: ReturnType<typeof storeOption>
}
const setup: Setup = {
  evaluations: 0,
  resolved: 0,
  config: () => config(),
  baseUrl: "",
  store: storeOption()
}

beforeAll(async () => {
  sandbox = await startWealthcare()
  setup.baseUrl = sandbox.baseUrl
  ;(globalThis as unknown as { __sessionsSetup: Setup }).__sessionsSetup = setup
})
afterEach(async () => {
  await disposeUserSessions()
  made.length = 0
  setup.evaluations = 0
  setup.resolved = 0
})
afterAll(async () => {
  await sandbox?.close()
})

const evaluate = async () => {
  vi.resetModules()
  return import("./fixtures/reloadedSessions.ts")
}
const discoveries = () => made.filter((path) => path === "/.well-known/openid-configuration").length
const requestOf = (browser: Browser, path = "/account") =>
  new Request(`${APP}${path}`, { headers: { cookie: browser.header() } })

describe("one sessions handle per process and configuration", () => {
  it("20 evaluations of the app's modules: one core handle, discovery read once, the user signed in at the first is signed in at the last", async () => {
    const first = await evaluate()
    const alice = new Browser()
    await alice.signIn(first, "alice")
    const handles = new Set<UserSessionsHandle>([first.sessions.handle()])
    for (let i = 1; i < 20; i++) {
      const route = await evaluate()
      const response = await alice.call(route.proxy, `${APP}/api/user/v1/me`)
      expect(response.status).toBe(200)
      expect(((await response.json()) as { subject: string }).subject).toBe("alice")
      handles.add(route.sessions.handle())
    }
    expect(setup.evaluations).toBe(20)
    expect(handles.size).toBe(1)
    expect(registeredSessions()).toBe(1)
    expect(discoveries()).toBe(1)
    // each evaluation's lazy handle read the configuration once, at its first use
    expect(setup.resolved).toBe(20)
  })

  it("makes nothing at import: 20 evaluations without a request read no configuration and send nothing", async () => {
    for (let i = 0; i < 20; i++) await evaluate()
    expect(setup.evaluations).toBe(20)
    expect(setup.resolved).toBe(0)
    expect(registeredSessions()).toBe(0)
    expect(made).toEqual([])
  })

  it("after disposeUserSessions the next use makes the handle again, and the session (in the store) is still there", async () => {
    const route = await evaluate()
    const alice = new Browser()
    await alice.signIn(route, "alice")
    const before = route.sessions.handle()
    await disposeUserSessions()
    expect(registeredSessions()).toBe(0)
    expect((await alice.call(route.proxy, `${APP}/api/user/v1/me`)).status).toBe(200)
    expect(route.sessions.handle()).not.toBe(before)
    expect(registeredSessions()).toBe(1)
  })

  it("is keyed by the core's clientKeyOf: the same issuer, client and redirect URI share a handle (the first configuration wins)", () => {
    const a = userSessions(config({ scope: "openid offline_access" }), storeOption())
    const b = userSessions(() => config({ cookieName: "other-name" }), storeOption())
    const c = userSessions(config({ redirectUri: `${APP}/other/callback` }), storeOption())
    const first = a.handle()
    expect(b.handle()).toBe(first)
    expect(b.cookieName).toBe("authfetch-session")
    expect(c.handle()).not.toBe(a.handle())
    expect(registeredSessions()).toBe(2)
    expect(a.appOrigin).toBe(APP)
  })

  it("a configuration that cannot work is refused at the first use: promises reject, checkCsrf throws", async () => {
    const broken = userSessions(
      () => ({ ...config(), redirectUri: "http://app.example/auth/callback" }),
      storeOption()
    )
    await expect(broken.session("")).rejects.toThrow(/userSessions: config: redirectUri must be https:/)
    expect(() => broken.checkCsrf({ method: "POST", headers: { get: () => null } })).toThrow(
      InvalidConfigError
    )
    expect(registeredSessions()).toBe(0)
  })
})

describe("the session helpers, with a route handler's request", () => {
  const signedIn = async () => {
    const sessions = userSessions(() => config(), storeOption())
    const browser = new Browser()
    await browser.signIn(createSignInRoute(sessions), "alice")
    return { sessions, browser }
  }

  it("userFetch: the user's own token to the API (their subject); signed out: SignInRequiredError, or with signIn the redirect", async () => {
    const { sessions, browser } = await signedIn()
    const api = await userFetch(sessions, { request: requestOf(browser), baseUrl: sandbox.baseUrl })
    const me = (await (await api("/v1/me")).json()) as {
      subject: string
      grantType: string
      clientId: string
    }
    expect(me).toMatchObject({ subject: "alice", grantType: "authorization_code", clientId: "next-app" })

    const anonymous = new Request(`${APP}/account`)
    await expect(
      userFetch(sessions, { request: anonymous, baseUrl: sandbox.baseUrl })
    ).rejects.toBeInstanceOf(SignInRequiredError)
    expect(
      await redirectedTo(() =>
        userFetch(sessions, {
          request: anonymous,
          baseUrl: sandbox.baseUrl,
          signIn: { returnTo: "/account?tab=2" }
        })
      )
    ).toBe("/auth/signin?returnTo=%2Faccount%3Ftab%3D2")
    expect(
      await redirectedTo(() => requireUserSession(sessions, { request: anonymous, returnTo: "/claims" }))
    ).toBe("/auth/signin?returnTo=%2Fclaims")
    expect((await requireUserSession(sessions, { request: requestOf(browser) })).subject).toBe("alice")
  })

  it("userFetch: one retry budget for every request of every user (an outage does not multiply traffic)", async () => {
    const sessions = userSessions(() => config(), storeOption())
    const route = createSignInRoute(sessions)
    const [alice, bob] = [new Browser(), new Browser()]
    await alice.signIn(route, "alice")
    await bob.signIn(route, "bob")
    const api = await startTokenServer(() => ({ status: 503, body: { title: "down" } }))
    try {
      // Default budget: 500 tokens, 5 a retry: 100 retries in all, 2 a request here.
      const retry = { maxRetries: 2, baseDelay: 1, maxDelay: 2 }
      const attempts: Array<number> = []
      for (let i = 0; i < 53; i++) {
        const who = i % 2 === 0 ? alice : bob
        const page = await userFetch(sessions, { request: requestOf(who), baseUrl: api.url, retry })
        const before = api.requests.length
        expect((await page("/v1/me")).status).toBe(503)
        attempts.push(api.requests.length - before)
      }
      expect(attempts.slice(0, 50)).toEqual(Array(50).fill(3))
      expect(attempts.slice(50)).toEqual([1, 1, 1])
      expect(new Set(api.requests.map((request) => request.headers.authorization)).size).toBe(2)
    } finally {
      await api.close()
    }
  })

  it("the sign-in path: next to the callback (basePath included), /auth/signin otherwise, or as given", async () => {
    const next = userSessions(config({ redirectUri: `${APP}/base/auth/callback` }), storeOption())
    expect(await redirectedTo(() => redirectToSignIn(next, { returnTo: "/x" }))).toBe(
      "/base/auth/signin?returnTo=%2Fx"
    )
    const elsewhere = userSessions(config({ redirectUri: `${APP}/oauth/return` }), storeOption())
    expect(await redirectedTo(() => redirectToSignIn(elsewhere))).toBe("/auth/signin")
    expect(await redirectedTo(() => redirectToSignIn(elsewhere, { signInPath: "/login/start" }))).toBe(
      "/login/start"
    )
  })

  it("outside a request scope, without request, the cookies() of next/headers refuse (Next's error)", async () => {
    const sessions = userSessions(() => config(), storeOption())
    await expect(getUserSession(sessions)).rejects.toThrow(/outside a request scope/)
  })
})

describe("the Edge runtime", () => {
  it(
    EDGE
      ? "refuses sessions without a store at the first use: the helpers reject, the routes answer 500 and log it"
      : "(Node.js) needs no store: the process's memory store is every route's",
    async () => {
      const logged: Array<string> = []
      const original = console.error
      console.error = (...args: Array<unknown>) => logged.push(args.map(String).join(" "))
      try {
        const memory = userSessions(() => config())
        const signIn = await new Browser().action(createSignInRoute(memory), "signin")
        const proxied = await new Browser().call(
          createProxyRoute({ sessions: memory, baseUrl: sandbox.baseUrl, prefix: "/api/user" }),
          `${APP}/api/user/v1/me`
        )
        if (!EDGE) {
          expect(signIn.status).toBe(302)
          expect(proxied.status).toBe(401)
          expect(logged).toEqual([])
          return
        }
        await expect(memory.session("")).rejects.toThrow(
          /in the Edge runtime, user sessions need a `store` option/
        )
        expect(signIn.status).toBe(500)
        expect(proxied.status).toBe(500)
        expect(((await proxied.json()) as { detail: string }).detail).toBe(
          "The server is not configured to call the upstream."
        )
        expect(logged).toHaveLength(2)
        expect(logged.every((line) => line.includes("InvalidConfigError"))).toBe(true)
        // the sign-in route's line says what is wrong
        expect(logged.some((line) => line.includes("user sessions need a `store` option"))).toBe(true)
        expect(registeredSessions()).toBe(0)
        // with a store (here the memory one, on purpose: every route of this app runs in this sandbox)
        const stored = userSessions(() => config(), { store: SessionStore.layerMemory })
        expect((await new Browser().action(createSignInRoute(stored), "signin")).status).toBe(302)
      } finally {
        console.error = original
      }
    }
  )
})
