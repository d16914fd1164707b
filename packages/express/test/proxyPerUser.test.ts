/**
 * `createProxy({ sessions, baseUrl })`, the proxy's per-user mode, over a
 * real socket: 401 without a session; 403 for a state-changing request from
 * another site (Origin, Fetch Metadata, the missing `x-csrf` header), before
 * the session is even looked up, with nothing reaching the API; otherwise
 * forwarded with the signed-in user's token (the sandbox's `/v1/me` says
 * whose, for two users at once), and never with the browser's `Cookie`, its
 * `Authorization` or the CSRF header.
 */
import { type Sandbox, startSandbox } from "@authfetch/sandbox"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { createProxy, createSignInRouter } from "../src/index.ts"
import { type Recorder, startRecorder } from "./support/servers.ts"
import {
  ALICE,
  APP_CLIENT,
  BOB,
  type Jar,
  type SignInApp,
  signInOverHttp,
  startSignInApp
} from "./support/sessions.ts"

let sandbox: Sandbox
let recorder: Recorder
let app: SignInApp
const proxyErrors: Array<string> = []

beforeAll(async () => {
  ;[sandbox, recorder] = await Promise.all([
    startSandbox({
      profile: "wealthcare",
      users: [ALICE, BOB],
      clients: [APP_CLIENT],
      autoApprove: true,
      tokenRateLimit: false
    }),
    startRecorder()
  ])
  app = await startSignInApp({
    sandbox,
    routes: (server, sessions) => {
      server.use("/auth", createSignInRouter(sessions))
      server.use(
        "/api/user",
        createProxy({
          sessions,
          baseUrl: sandbox.baseUrl,
          allow: ["/v1/me", "/v1/claims"],
          onError: (error, req, problem) =>
            proxyErrors.push(`${req.method} ${problem.status} ${String((error as { _tag?: string })._tag)}`)
        })
      )
      server.use("/rec", createProxy({ sessions, baseUrl: `${recorder.url}/api`, onError: false }))
    }
  })
})
afterAll(async () => {
  await app?.close()
  await Promise.all([sandbox?.close(), recorder?.close()])
})

const signedIn = async (user: string): Promise<Jar> => {
  const jar = app.jar()
  expect((await signInOverHttp(jar, { user })).callback.status).toBe(302)
  return jar
}

const claim = JSON.stringify({ consumerId: "12345", accountType: "HSA", amount: 12.5 })

describe("createProxy({ sessions }): per-user mode", () => {
  it("answers 401 without a signed-in user, and nothing reaches the API", async () => {
    sandbox.resetStats()
    for (const cookie of [undefined, "authfetch-session=made-up", "other=1"]) {
      const jar = app.jar()
      if (cookie !== undefined) jar.cookies.set(cookie.split("=")[0]!, cookie.split("=")[1]!)
      const reply = await jar.send({ path: "/api/user/v1/me" })
      expect(reply.status).toBe(401)
      expect(reply.headers["content-type"]).toBe("application/problem+json")
      expect(JSON.parse(reply.text)).toEqual({
        type: "about:blank",
        title: "Unauthorized",
        status: 401,
        detail: "Sign in to continue."
      })
    }
    expect(sandbox.stats().apiRequests.total).toBe(0)
    expect(proxyErrors.filter((line) => line === "GET 401 SignInRequiredError")).toHaveLength(3)
  })

  it("refuses a state-changing request from another site with 403, signed in or not, and forwards nothing", async () => {
    const alice = await signedIn(ALICE.username)
    const anonymous = app.jar()
    sandbox.resetStats()
    const forged: ReadonlyArray<Record<string, string>> = [
      { origin: "http://evil.example", "x-csrf": "1" },
      { origin: "http://localhost:1", "x-csrf": "1" },
      { "sec-fetch-site": "cross-site", "x-csrf": "1" },
      { "sec-fetch-site": "same-site", origin: app.url, "x-csrf": "1" },
      { origin: "null", "x-csrf": "1" },
      // same origin, but no custom header: a form or a no-cors fetch could do this
      { origin: app.url, "sec-fetch-site": "same-origin" },
      { origin: app.url, "x-csrf": "" },
      {}
    ]
    for (const jar of [alice, anonymous]) {
      for (const headers of forged) {
        for (const method of ["POST", "PUT", "PATCH", "DELETE"]) {
          const reply = await jar.send({
            path: "/api/user/v1/claims",
            method,
            // Node's client frames a DELETE body only when told its length
            headers: {
              "content-type": "application/json",
              "content-length": String(claim.length),
              ...headers
            },
            body: claim
          })
          expect(reply.status, `${method} ${JSON.stringify(headers)} ${reply.text}`).toBe(403)
          expect(JSON.parse(reply.text).detail).toBe(
            "A state-changing request from another site was refused."
          )
        }
      }
    }
    expect(sandbox.stats().apiRequests.total).toBe(0)
    expect(sandbox.stats().claims.created).toBe(0)
  })

  it("forwards the app's own calls with the signed-in user's token: two users at once, no crossing", async () => {
    const [alice, bob] = await Promise.all([signedIn(ALICE.username), signedIn(BOB.username)])
    sandbox.resetStats()
    const calls = await Promise.all(
      Array.from({ length: 40 }, (_, i) => (i % 2 === 0 ? alice : bob).send({ path: "/api/user/v1/me" }))
    )
    calls.forEach((reply, i) => {
      expect(reply.status).toBe(200)
      expect(JSON.parse(reply.text).subject).toBe(i % 2 === 0 ? "alice" : "bob")
    })
    expect(sandbox.stats().apiRequests.bySubject).toEqual({ alice: 20, bob: 20 })

    const created = await bob.send({
      path: "/api/user/v1/claims",
      method: "POST",
      headers: {
        "content-type": "application/json",
        origin: app.url,
        "sec-fetch-site": "same-origin",
        "x-csrf": "1",
        "idempotency-key": "claim-1"
      },
      body: claim
    })
    expect(created.status).toBe(201)
    expect(sandbox.stats().claims.created).toBe(1)
    expect(sandbox.stats().apiRequests.bySubject.bob).toBe(21)
    // a browser without Fetch Metadata and Origin (an old one, a script of the server): the header suffices
    const plain = await alice.send({
      path: "/api/user/v1/claims",
      method: "POST",
      headers: { "content-type": "application/json", "x-csrf": "1" },
      body: claim
    })
    expect(plain.status).toBe(201)
  })

  it("never forwards the browser's Cookie, Authorization or CSRF header: the upstream sees the user's token only", async () => {
    const [alice, bob] = await Promise.all([signedIn(ALICE.username), signedIn(BOB.username)])
    recorder.requests.length = 0
    for (const jar of [alice, bob]) {
      const reply = await jar.send({
        path: "/rec/v1/things?page=2",
        method: "POST",
        headers: {
          authorization: "Bearer forged-by-the-browser",
          origin: app.url,
          "x-csrf": "1",
          "content-type": "application/json"
        },
        body: "{}"
      })
      expect(reply.status).toBe(200)
    }
    expect(recorder.requests).toHaveLength(2)
    const tokens = new Set(app.store.secrets())
    const sent = recorder.requests.map((seen) => {
      expect(seen.url).toBe("/api/v1/things?page=2")
      expect(seen.headers.cookie).toBeUndefined()
      expect(seen.headers["x-csrf"]).toBeUndefined()
      const authorization = String(seen.headers.authorization)
      expect(authorization).toMatch(/^Bearer /)
      expect(authorization).not.toContain("forged")
      // a token of a session this app stored, not something the browser sent
      expect(tokens.has(authorization.slice("Bearer ".length))).toBe(true)
      return authorization
    })
    expect(sent[0]).not.toBe(sent[1])
    for (const seen of recorder.requests) {
      expect(JSON.stringify(seen.headers)).not.toContain(alice.cookies.get("authfetch-session")!)
      expect(JSON.stringify(seen.headers)).not.toContain(bob.cookies.get("authfetch-session")!)
    }
  })

  it("answers 401 once the user signed out", async () => {
    const alice = await signedIn(ALICE.username)
    expect((await alice.send({ path: "/api/user/v1/me" })).status).toBe(200)
    const cookie = alice.header()
    const out = await alice.send({ path: "/auth/signout", method: "POST", headers: { origin: app.url } })
    expect(out.status).toBe(303)
    const again = await alice.send({ path: "/api/user/v1/me", headers: { cookie } })
    expect(again.status).toBe(401)
  })

  it("checks its options: sessions that are not sessions, or tokens and sessions together", () => {
    expect(() => createProxy({ sessions: {} as never, baseUrl: sandbox.baseUrl })).toThrow(
      /`sessions` must be user sessions/
    )
    expect(() =>
      createProxy({
        sessions: app.sessions,
        tokens: { getToken: async () => undefined as never, invalidate: async () => {} },
        baseUrl: sandbox.baseUrl
      })
    ).toThrow(/`tokens` and `sessions` exclude each other/)
    expect(() => createProxy({ baseUrl: sandbox.baseUrl })).toThrow(/`tokens` is missing/)
  })
})
