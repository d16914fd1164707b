/**
 * `userSessionMiddleware`: `req.user`, `req.userSession` and `req.userFetch`
 * typed on Express's `Request`; each request with its own user's token (two
 * users, concurrent calls, the sandbox says whose token arrived); tokens of
 * 2 s refreshed with the refresh token across several lifetimes; a refresh
 * token revoked at the sandbox ends the session (a page load goes to sign-in,
 * a script's call gets 401); one retry budget for every request of every
 * user; the client's disconnect aborts the user's calls; argument checks.
 */

import { request } from "node:http"
import { InvalidConfigError, SignInRequiredError, type UserSession } from "@authfetch/core"
import { type Sandbox, startSandbox } from "@authfetch/sandbox"
import type express from "express"
import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from "vitest"
import {
  type AuthFetch,
  createSignInRouter,
  problemDetails,
  requireSignIn,
  userSessionMiddleware
} from "../src/index.ts"
import { type Recorder, send, startRecorder } from "./support/servers.ts"
import {
  ALICE,
  APP_CLIENT,
  BOB,
  type Jar,
  type SignInApp,
  signInOverHttp,
  startSignInApp
} from "./support/sessions.ts"

const TTL_SECONDS = 2

let sandbox: Sandbox
let recorder: Recorder
let app: SignInApp
const seenFetches = new Set<AuthFetch>()
const routeOutcomes: Array<string> = []

const waitFor = async (condition: () => boolean, ms = 5_000): Promise<void> => {
  const until = Date.now() + ms
  while (!condition()) {
    if (Date.now() > until) throw new Error("timed out waiting")
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

beforeAll(async () => {
  ;[sandbox, recorder] = await Promise.all([
    startSandbox({
      profile: "wealthcare",
      users: [ALICE, BOB],
      clients: [APP_CLIENT],
      autoApprove: true,
      tokenTtl: TTL_SECONDS,
      tokenRateLimit: false
    }),
    startRecorder()
  ])
  app = await startSignInApp({
    sandbox,
    routes: (server, sessions) => {
      server.use("/auth", createSignInRouter(sessions))
      server.use("/s", userSessionMiddleware(sessions, { baseUrl: sandbox.baseUrl, problemDetails: true }))
      server.get("/s/whoami", (req, res) => {
        res.json({ user: req.user ?? null, key: req.userSession?.key ?? null })
      })
      server.get("/s/me", async (req, res) => {
        res.json(await (await req.userFetch("/v1/me")).json())
      })
      server.get("/s/account", requireSignIn({ signInPath: "/auth/signin" }), async (req, res) => {
        const me = (await (await req.userFetch("/v1/me")).json()) as { subject: string }
        res.type("html").send(`<p>${me.subject}</p>`)
      })
      server.get("/s/no-user", async (req, res) => {
        try {
          await req.userFetch("/v1/me")
          res.status(200).end()
        } catch (error) {
          res.json({
            signInRequired: error instanceof SignInRequiredError,
            reason: (error as SignInRequiredError).reason
          })
        }
      })

      // against the recorder: the shared retry budget, the client's disconnect
      server.use(
        "/flaky",
        userSessionMiddleware(sessions, {
          baseUrl: `${recorder.url}/api`,
          retry: { baseDelay: "1 millis", maxDelay: "2 millis" },
          abortOnClientClose: false
        })
      )
      server.get("/flaky", async (req, res) => {
        seenFetches.add(req.userFetch)
        const upstream = await req.userFetch("/v1/x")
        res.status(upstream.status).end()
      })
      server.use("/follow", userSessionMiddleware(sessions, { baseUrl: `${recorder.url}/api` }))
      server.get("/follow/hang", async (req, res) => {
        try {
          const upstream = await req.userFetch("/v1/hang")
          routeOutcomes.push(`status ${upstream.status}`)
          res.status(upstream.status).end()
        } catch (error) {
          routeOutcomes.push(`${(error as Error).name}: ${(error as Error).message}`)
          throw error
        }
      })
      server.use(problemDetails({ signInPath: "/auth/signin", onError: false }))
    }
  })
})
afterAll(async () => {
  await app?.close()
  await Promise.all([sandbox?.close(), recorder?.close()])
})

const signedIn = async (user: string): Promise<Jar> => {
  const jar = app.jar()
  const { callback } = await signInOverHttp(jar, { user })
  expect(callback.status).toBe(302)
  return jar
}

describe("userSessionMiddleware", () => {
  it("is typed on Express's Request: user, userSession, userFetch", () => {
    expectTypeOf<express.Request["user"]>().toEqualTypeOf<Express.User | undefined>()
    expectTypeOf<express.Request["userSession"]>().toEqualTypeOf<UserSession | undefined>()
    expectTypeOf<express.Request["userFetch"]>().toEqualTypeOf<typeof globalThis.fetch>()
    expectTypeOf(userSessionMiddleware).returns.toEqualTypeOf<express.RequestHandler>()
  })

  it("without a session: no user, and req.userFetch rejects with SignInRequiredError", async () => {
    const who = await send(app.port, { path: "/s/whoami", headers: { cookie: "authfetch-session=nothing" } })
    expect(JSON.parse(who.text)).toEqual({ user: null, key: null })
    const failed = await send(app.port, { path: "/s/no-user" })
    expect(JSON.parse(failed.text)).toEqual({ signInRequired: true, reason: "no_session" })
  })

  it("calls the API with each request's own user's token: two users, 25 concurrent calls each, no crossing", async () => {
    const [alice, bob] = await Promise.all([signedIn(ALICE.username), signedIn(BOB.username)])
    const who = JSON.parse((await alice.send({ path: "/s/whoami" })).text)
    expect(who.user).toMatchObject({ name: ALICE.name, email: ALICE.email })
    expect(who.key).toMatch(/^ss_/)
    sandbox.resetStats()
    const calls = await Promise.all(
      Array.from({ length: 50 }, (_, i) => (i % 2 === 0 ? alice : bob).send({ path: "/s/me" }))
    )
    calls.forEach((reply, i) => {
      expect(reply.status).toBe(200)
      const me = JSON.parse(reply.text) as { subject: string; clientId: string; grantType: string }
      expect(me.subject).toBe(i % 2 === 0 ? "alice" : "bob")
      expect(me.clientId).toBe(APP_CLIENT.clientId)
      expect(["authorization_code", "refresh_token"]).toContain(me.grantType)
    })
    expect(sandbox.stats().apiRequests.bySubject).toEqual({ alice: 25, bob: 25 })
  })

  it("refreshes the user's token with the refresh token across several lifetimes, without an error", async () => {
    const jar = await signedIn(ALICE.username)
    sandbox.resetStats()
    const until = Date.now() + 3.5 * TTL_SECONDS * 1000
    const fingerprints = new Set<string>()
    while (Date.now() < until) {
      const reply = await jar.send({ path: "/s/me" })
      expect(reply.status).toBe(200)
      fingerprints.add((JSON.parse(reply.text) as { tokenFingerprint: string }).tokenFingerprint)
      await sleep(250)
    }
    const refreshes = sandbox.stats().tokenRequests.byGrant.refresh_token ?? 0
    // at least one new token per lifetime, and no token request per call
    expect(refreshes).toBeGreaterThanOrEqual(3)
    expect(refreshes).toBeLessThanOrEqual(12)
    expect(fingerprints.size).toBeGreaterThanOrEqual(3)
    expect(sandbox.stats().tokenRequests.byStatus["200"]).toBe(refreshes)
  })

  it("a refresh token revoked at the sandbox ends the session: a page load goes to sign-in, a script's call gets 401", async () => {
    const [page, script] = await Promise.all([signedIn(ALICE.username), signedIn(BOB.username)])
    expect((await page.send({ path: "/s/account" })).status).toBe(200)
    sandbox.revokeRefreshTokens(ALICE.username)
    sandbox.revokeRefreshTokens(BOB.username)
    // the access tokens stay valid until they expire
    await sleep(TTL_SECONDS * 1000 + 500)
    const load = await page.send({
      path: "/s/account",
      headers: { "sec-fetch-mode": "navigate", accept: "text/html" }
    })
    expect(load.status).toBe(302)
    expect(load.headers.location).toBe("/auth/signin?returnTo=%2Fs%2Faccount")
    const call = await script.send({
      path: "/s/me",
      headers: { "sec-fetch-mode": "cors", accept: "application/json" }
    })
    expect(call.status).toBe(401)
    expect(JSON.parse(call.text).detail).toBe("Sign in to continue.")
    // both sessions are gone
    expect(JSON.parse((await page.send({ path: "/s/whoami" })).text).user).toBeNull()
    expect(JSON.parse((await script.send({ path: "/s/whoami" })).text).user).toBeNull()
  })

  it("shares one retry budget among all requests of all users (an outage does not multiply traffic)", async () => {
    const [alice, bob] = await Promise.all([signedIn(ALICE.username), signedIn(BOB.username)])
    recorder.answer = () => ({ status: 503 })
    recorder.requests.length = 0
    // Default budget: 500 tokens, 5 a retry: 100 retries in all, 2 a request.
    const attempts: Array<number> = []
    for (let i = 0; i < 53; i++) {
      const before = recorder.requests.length
      const reply = await (i % 2 === 0 ? alice : bob).send({ path: "/flaky" })
      expect(reply.status).toBe(503)
      attempts.push(recorder.requests.length - before)
    }
    expect(attempts.slice(0, 50)).toEqual(Array(50).fill(3))
    expect(attempts.slice(50)).toEqual([1, 1, 1])
    // a fetch per request (each with its user's token)
    expect(seenFetches.size).toBe(53)
    const subjects = new Set(recorder.requests.map((seen) => seen.headers.authorization))
    expect(subjects.size).toBeGreaterThanOrEqual(2)
    recorder.answer = () => ({})
  })

  it("aborts the user's call in flight when the client disconnects", async () => {
    const jar = await signedIn(BOB.username)
    recorder.answer = (seen) => (seen.url === "/api/v1/hang" ? { hang: true } : {})
    routeOutcomes.length = 0
    const req = request({
      host: "127.0.0.1",
      port: app.port,
      path: "/follow/hang",
      headers: { cookie: jar.header() }
    })
    req.on("error", () => {})
    req.end()
    await waitFor(() => recorder.started.includes("/api/v1/hang"))
    req.destroy()
    await waitFor(() => recorder.aborted.includes("/api/v1/hang"))
    await waitFor(() => routeOutcomes.length === 1)
    expect(routeOutcomes[0]).toMatch(/^AbortError: The client closed the connection/)
    recorder.answer = () => ({})
  })

  it("checks its arguments at once, naming each problem", () => {
    expect(() => userSessionMiddleware(undefined as never, { baseUrl: sandbox.baseUrl })).toThrow(
      /sessions is missing/
    )
    expect(() => userSessionMiddleware({} as never, { baseUrl: sandbox.baseUrl })).toThrow(
      /sessions must be user sessions/
    )
    expect(() => userSessionMiddleware(app.sessions, null as never)).toThrow(/options must be an object/)
    expect(() =>
      userSessionMiddleware(app.sessions, { baseUrl: sandbox.baseUrl, abortOnClientClose: "no" as never })
    ).toThrow(/`abortOnClientClose` must be a boolean/)
    // the core's own checks of the fetch options, now rather than at the first request
    expect(() => userSessionMiddleware(app.sessions, {})).toThrow(/baseUrl or origins/)
    expect(() => userSessionMiddleware(app.sessions, { baseUrl: "http://api.example.com" })).toThrow(/https/)
    expect(() => userSessionMiddleware(app.sessions, { baseUrl: "http://api.example.com" })).toThrow(
      InvalidConfigError
    )
  })
})
