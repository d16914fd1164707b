/**
 * The sign-in router, the guard and `problemDetails({ signInPath })` over a
 * real socket, against the WealthCare sandbox (`autoApprove`: the browser
 * tests of examples/express-bff sign in on its page): the round trip with its
 * cookies and `Cache-Control`, every refused callback and `returnTo` with
 * nothing stored, sign-out with revocation and its CSRF rule, methods,
 * `onError`, the guard's redirect-or-401, and argument checks. No token,
 * code, state or session id in any answer but the cookie itself.
 */
import { InvalidConfigError, type UserSessionsHandle } from "@authfetch/core"
import { type Sandbox, startSandbox } from "@authfetch/sandbox"
import express from "express"
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest"
import {
  createSignInRouter,
  problemDetails,
  requireSignIn,
  toProblem,
  userSessionMiddleware
} from "../src/index.ts"
import { send, serve } from "./support/servers.ts"
import {
  ALICE,
  APP_CLIENT,
  approveAt,
  approved,
  BOB,
  cookiesOf,
  type Jar,
  pathOf,
  type SignInApp,
  signInOverHttp,
  startSignInApp
} from "./support/sessions.ts"

const COOKIE = "authfetch-session"
const BINDING = "authfetch-sign-in"

let sandbox: Sandbox
let other: Sandbox
let app: SignInApp
const logged: Array<string> = []

beforeAll(async () => {
  for (const method of ["log", "info", "warn", "error"] as const) {
    vi.spyOn(console, method).mockImplementation((...args: Array<unknown>) => {
      logged.push(args.map(String).join(" "))
    })
  }
  ;[sandbox, other] = await Promise.all([
    startSandbox({
      profile: "wealthcare",
      users: [ALICE, BOB],
      clients: [APP_CLIENT],
      autoApprove: true,
      tokenRateLimit: false
    }),
    startSandbox({ profile: "wealthcare", users: [ALICE], clients: [APP_CLIENT], autoApprove: true })
  ])
  app = await startSignInApp({
    sandbox,
    routes: (server, sessions) => {
      server.use("/auth", createSignInRouter(sessions))
      server.use(
        "/custom",
        createSignInRouter(sessions, {
          onError: (error, _req, res) => {
            const problem = toProblem(error)
            res.status(problem.status).type("html").send(`<h1>Sign-in problem</h1><p>${problem.detail}</p>`)
          }
        })
      )
      server.use(userSessionMiddleware(sessions, { baseUrl: sandbox.baseUrl, problemDetails: true }))
      server.get("/whoami", (req, res) => {
        res.json({ user: req.user ?? null, subject: req.userSession?.subject ?? null })
      })
      const signedIn = requireSignIn({ signInPath: "/auth/signin" })
      server.get("/account", signedIn, async (req, res) => {
        const me = (await (await req.userFetch("/v1/me")).json()) as { subject: string }
        res.type("html").send(`<p id="subject">${me.subject}</p>`)
      })
      server.post("/account", signedIn, (_req, res) => {
        res.status(204).end()
      })
      // a route that reaches the API with no guard: problemDetails decides for a missing user
      server.get("/unguarded", async (req, res) => {
        res.json(await (await req.userFetch("/v1/me")).json())
      })
      server.use(problemDetails({ signInPath: "/auth/signin" }))
    }
  })
})
afterAll(async () => {
  vi.restoreAllMocks()
  await app?.close()
  await Promise.all([sandbox?.close(), other?.close()])
})

const problemOf = (text: string) => JSON.parse(text) as { status: number; title: string; detail: string }

/** A sign-in whose callback is not sent yet: the jar holds the binding cookie. */
const startedSignIn = async (jar: Jar, user = ALICE.username) => {
  const start = await jar.send({ path: "/auth/signin?returnTo=%2Faccount" })
  expect(start.status).toBe(302)
  return approveAt(String(start.headers.location), user)
}

/** Runs `attempt` and checks that it stored nothing and set no session cookie. */
const storesNothing = async (jar: Jar, attempt: () => Promise<void>) => {
  const before = new Set(await app.store.liveKeys())
  const writes = app.store.written.length
  const sessionBefore = jar.cookies.get(COOKIE)
  await attempt()
  const after = await app.store.liveKeys()
  expect(after.filter((key) => !before.has(key))).toEqual([])
  // no session was written (a refused callback may only delete its own transaction)
  expect(app.store.written.slice(writes).filter((entry) => entry.includes('"kind":"session"'))).toEqual([])
  expect(jar.cookies.get(COOKIE)).toBe(sessionBefore)
}

describe("createSignInRouter", () => {
  it("signs in: 302 to the sandbox (PKCE S256, state, nonce) with a sign-in cookie, then 302 to returnTo with the session cookie", async () => {
    const jar = app.jar()
    const start = await jar.send({ path: "/auth/signin?returnTo=%2Faccount%3Ftab%3D2" })
    expect(start.status).toBe(302)
    expect(start.headers["cache-control"]).toBe("no-store")
    const authorize = new URL(String(start.headers.location))
    expect(`${authorize.origin}${authorize.pathname}`).toBe(sandbox.authorizeUrl)
    expect(authorize.searchParams.get("client_id")).toBe(APP_CLIENT.clientId)
    expect(authorize.searchParams.get("redirect_uri")).toBe(`${app.url}/auth/callback`)
    expect(authorize.searchParams.get("response_type")).toBe("code")
    expect(authorize.searchParams.get("code_challenge_method")).toBe("S256")
    expect(authorize.searchParams.get("state")).toMatch(/^[\w-]{32,}$/)
    expect(authorize.searchParams.get("nonce")).toMatch(/^[\w-]{32,}$/)
    const binding = (start.headers["set-cookie"] ?? []).find((line) => line.startsWith(`${BINDING}=`))
    expect(binding).toMatch(/HttpOnly/i)
    expect(binding).toMatch(/SameSite=Lax/i)

    const back = await approveAt(authorize.href, ALICE.username)
    expect(back.searchParams.get("iss")).toBe(sandbox.issuer)
    const callback = await jar.send({ path: pathOf(back) })
    expect(callback.status).toBe(302)
    expect(callback.headers.location).toBe("/account?tab=2")
    expect(callback.headers["cache-control"]).toBe("no-store")
    const session = (callback.headers["set-cookie"] ?? []).find((line) => line.startsWith(`${COOKIE}=`))
    expect(session).toMatch(/HttpOnly/i)
    expect(session).toMatch(/SameSite=Lax/i)
    expect(session).toMatch(/Path=\//i)

    const who = await jar.send({ path: "/whoami" })
    expect(JSON.parse(who.text)).toMatchObject({
      subject: "alice",
      user: { name: ALICE.name, email: ALICE.email }
    })
    // the session id itself is nowhere but in the cookie
    expect(who.text).not.toContain(jar.cookies.get(COOKIE)!)
  })

  it("HEAD /signin starts a sign-in too; other methods are 405 with Allow", async () => {
    const head = await send(app.port, { path: "/auth/signin", method: "HEAD" })
    expect(head.status).toBe(302)
    for (const path of ["/auth/signin", "/auth/callback"]) {
      const post = await send(app.port, { path, method: "POST" })
      expect(post.status).toBe(405)
      expect(post.headers.allow).toBe("GET, HEAD")
      expect(post.headers["content-type"]).toBe("application/problem+json")
    }
    const get = await send(app.port, { path: "/auth/signout" })
    expect(get.status).toBe(405)
    expect(get.headers.allow).toBe("POST")
    // the password route is off by default
    expect((await send(app.port, { path: "/auth/password", method: "POST" })).status).toBe(404)
  })

  it("refuses a returnTo that leaves the app (400, nothing stored, no redirect)", async () => {
    for (const returnTo of [
      "//evil.example",
      "https://evil.example",
      "/\\evil.example",
      "/\t/evil.example",
      "javascript:alert(1)",
      "%2F%2Fevil.example"
    ]) {
      const jar = app.jar()
      await storesNothing(jar, async () => {
        const reply = await jar.send({ path: `/auth/signin?returnTo=${encodeURIComponent(returnTo)}` })
        expect(reply.status, returnTo).toBe(400)
        expect(reply.headers.location).toBeUndefined()
        expect(reply.headers["set-cookie"]).toBeUndefined()
        expect(reply.headers["cache-control"]).toBe("no-store")
        expect(problemOf(reply.text)).toEqual({
          type: "about:blank",
          title: "Bad Request",
          status: 400,
          detail: "returnTo must be a path of this app."
        })
      })
    }
  })

  it("refuses callbacks that are not this browser's sign-in (400 problem, nothing stored)", async () => {
    const invalid =
      "This sign-in is not valid in this browser (expired, completed, or started elsewhere). Sign in again."
    // state missing
    const jar = app.jar()
    await storesNothing(jar, async () => {
      const reply = await jar.send({ path: "/auth/callback?code=abc" })
      expect(reply.status).toBe(400)
      expect(problemOf(reply.text).detail).toBe(invalid)
    })
    // state unknown
    await storesNothing(jar, async () => {
      const reply = await jar.send({ path: "/auth/callback?code=abc&state=made-up-state" })
      expect(reply.status).toBe(400)
      expect(problemOf(reply.text).detail).toBe(invalid)
    })
    // state of a sign-in another browser started
    const victim = app.jar()
    const back = await startedSignIn(victim)
    const attacker = app.jar()
    await storesNothing(attacker, async () => {
      const reply = await attacker.send({ path: pathOf(back) })
      expect(reply.status).toBe(400)
      expect(problemOf(reply.text).detail).toBe(invalid)
    })
    // the same callback twice: the first signs in, the second is refused without a code exchange
    const browser = app.jar()
    const first = await signInOverHttp(browser, { user: BOB.username })
    expect(first.callback.status).toBe(302)
    const exchanges = sandbox.stats().tokenRequests.byGrant.authorization_code
    await storesNothing(browser, async () => {
      const replay = await browser.send({ path: pathOf(first.back) })
      expect(replay.status).toBe(400)
      expect(problemOf(replay.text).detail).toBe(invalid)
    })
    expect(sandbox.stats().tokenRequests.byGrant.authorization_code).toBe(exchanges)
  })

  it("refuses a mix-up (iss of another server) and an authorization error, before any code exchange", async () => {
    const exchanges = sandbox.stats().tokenRequests.byGrant.authorization_code ?? 0
    const jar = app.jar()
    const back = await startedSignIn(jar)
    back.searchParams.set("iss", other.issuer!)
    await storesNothing(jar, async () => {
      const reply = await jar.send({ path: pathOf(back) })
      expect(reply.status).toBe(400)
      expect(problemOf(reply.text).detail).toBe(
        "The sign-in answer did not come from the expected authorization server."
      )
    })
    const missing = await startedSignIn(jar)
    missing.searchParams.delete("iss")
    await storesNothing(jar, async () => {
      const reply = await jar.send({ path: pathOf(missing) })
      expect(reply.status).toBe(400)
    })
    const denied = await startedSignIn(jar)
    const error = new URL(denied)
    error.search = ""
    error.searchParams.set("error", "access_denied")
    error.searchParams.set("state", denied.searchParams.get("state")!)
    error.searchParams.set("iss", sandbox.issuer!)
    await storesNothing(jar, async () => {
      const reply = await jar.send({ path: pathOf(error) })
      expect(reply.status).toBe(400)
      expect(problemOf(reply.text).detail).toBe("The sign-in was cancelled or refused.")
    })
    expect(sandbox.stats().tokenRequests.byGrant.authorization_code ?? 0).toBe(exchanges)
  })

  it("starts a new session at each sign-in and ends the one the browser had (no fixation)", async () => {
    const jar = app.jar()
    jar.cookies.set(COOKIE, "planted-by-an-attacker")
    expect(JSON.parse((await jar.send({ path: "/whoami" })).text).user).toBeNull()
    const first = await signInOverHttp(jar, { user: ALICE.username })
    expect(first.callback.status).toBe(302)
    const firstId = jar.cookies.get(COOKIE)!
    expect(firstId).not.toBe("planted-by-an-attacker")
    await signInOverHttp(jar, { user: BOB.username })
    const secondId = jar.cookies.get(COOKIE)!
    expect(secondId).not.toBe(firstId)
    const stale = await send(app.port, { path: "/whoami", headers: { cookie: `${COOKIE}=${firstId}` } })
    expect(JSON.parse(stale.text).user).toBeNull()
    expect(JSON.parse((await jar.send({ path: "/whoami" })).text).subject).toBe("bob")
  })

  it("onError renders the app's own page for a refused sign-in", async () => {
    const reply = await send(app.port, { path: "/custom/signin?returnTo=%2F%2Fevil.example" })
    expect(reply.status).toBe(400)
    expect(reply.headers["content-type"]).toMatch(/^text\/html/)
    expect(reply.text).toBe("<h1>Sign-in problem</h1><p>returnTo must be a path of this app.</p>")
  })

  it("signs out with POST from the app's own page: 303, cookie cleared, session gone, refresh token revoked", async () => {
    const jar = app.jar()
    await signInOverHttp(jar, { user: ALICE.username })
    const id = jar.cookies.get(COOKIE)!
    const revocations = sandbox.stats().revocations
    const out = await jar.send({
      path: "/auth/signout",
      method: "POST",
      headers: {
        origin: app.url,
        "sec-fetch-site": "same-origin",
        "content-type": "application/x-www-form-urlencoded"
      },
      body: ""
    })
    expect(out.status).toBe(303)
    expect(out.headers.location).toBe("/")
    expect(out.headers["cache-control"]).toBe("no-store")
    expect(cookiesOf(out).get(COOKIE)).toBe("")
    expect(jar.cookies.has(COOKIE)).toBe(false)
    const after = sandbox.stats().revocations
    expect(after.revoked).toBe(revocations.revoked + 1)
    expect(after.bySubject.alice).toBe((revocations.bySubject.alice ?? 0) + 1)
    const replayed = await send(app.port, { path: "/whoami", headers: { cookie: `${COOKIE}=${id}` } })
    expect(JSON.parse(replayed.text).user).toBeNull()
  })

  it("refuses a sign-out from another site, or without Origin and Fetch Metadata (403), and keeps the session", async () => {
    const jar = app.jar()
    await signInOverHttp(jar, { user: ALICE.username })
    const revoked = sandbox.stats().revocations.total
    for (const headers of [
      { origin: "http://evil.example" },
      { "sec-fetch-site": "cross-site" },
      { "sec-fetch-site": "same-site", origin: app.url },
      { origin: "null" },
      {}
    ]) {
      const reply = await jar.send({ path: "/auth/signout", method: "POST", headers })
      expect(reply.status, JSON.stringify(headers)).toBe(403)
      expect(problemOf(reply.text).detail).toBe("A state-changing request from another site was refused.")
      expect(reply.headers["set-cookie"]).toBeUndefined()
    }
    expect(sandbox.stats().revocations.total).toBe(revoked)
    expect(JSON.parse((await jar.send({ path: "/whoami" })).text).subject).toBe("alice")
  })

  it("checks its arguments, naming each problem", () => {
    expect(() => createSignInRouter(undefined as never)).toThrow(InvalidConfigError)
    expect(() => createSignInRouter(undefined as never)).toThrow(/sessions is missing/)
    expect(() => createSignInRouter({} as never)).toThrow(/sessions must be user sessions/)
    const sessions = app.sessions
    expect(() => createSignInRouter(sessions, null as never)).toThrow(/options must be an object/)
    expect(() => createSignInRouter(sessions, { onError: "page" as never })).toThrow(
      /`onError` must be a function/
    )
    expect(() => createSignInRouter(sessions, { password: "yes" as never })).toThrow(
      /`password` must be a boolean/
    )
    const withoutPassword = { ...sessions, signInWithPassword: undefined } as unknown as UserSessionsHandle
    expect(() => createSignInRouter(withoutPassword, { password: true })).toThrow(
      /needs sessions with signInWithPassword/
    )
    try {
      createSignInRouter({} as never, { onError: 1 as never })
    } catch (error) {
      expect((error as InvalidConfigError).problems).toHaveLength(2)
    }
  })
})

describe("requireSignIn and problemDetails({ signInPath })", () => {
  const navigate = { "sec-fetch-mode": "navigate", "sec-fetch-dest": "document", accept: "text/html" }

  it("redirects a page load without a user to sign in with the page as returnTo, and answers anything else 401", async () => {
    const page = await send(app.port, { path: "/account?tab=1", headers: navigate })
    expect(page.status).toBe(302)
    expect(page.headers.location).toBe(`/auth/signin?returnTo=${encodeURIComponent("/account?tab=1")}`)
    expect(page.headers["cache-control"]).toBe("no-store")
    // a browser without Fetch Metadata, and HEAD
    expect((await send(app.port, { path: "/account", headers: { accept: "text/html" } })).status).toBe(302)
    expect(
      (await send(app.port, { path: "/account", method: "HEAD", headers: navigate })).headers.location
    ).toBe("/auth/signin?returnTo=%2Faccount")
    // a script's fetch, an API client, a form post
    for (const [method, headers] of [
      ["GET", { "sec-fetch-mode": "cors", accept: "text/html" }],
      ["GET", { accept: "application/json" }],
      ["POST", navigate]
    ] as const) {
      const reply = await send(app.port, { path: "/account", method, headers })
      expect(reply.status).toBe(401)
      expect(reply.headers["content-type"]).toBe("application/problem+json")
      expect(problemOf(reply.text)).toEqual({
        type: "about:blank",
        title: "Unauthorized",
        status: 401,
        detail: "Sign in to continue."
      })
    }
  })

  it("lets a signed-in user through, and the sign-in lands back on the page", async () => {
    const jar = app.jar()
    const page = await jar.send({ path: "/account", headers: navigate })
    const returnTo = new URL(String(page.headers.location), app.url).searchParams.get("returnTo")!
    const { callback } = await signInOverHttp(jar, { user: BOB.username, returnTo })
    expect(callback.headers.location).toBe("/account")
    const again = await jar.send({ path: "/account", headers: navigate })
    expect(again.status).toBe(200)
    expect(again.text).toBe('<p id="subject">bob</p>')
  })

  it("problemDetails({ signInPath }) answers a SignInRequiredError thrown by a route the same way", async () => {
    const page = await send(app.port, { path: "/unguarded?x=1", headers: navigate })
    expect(page.status).toBe(302)
    expect(page.headers.location).toBe("/auth/signin?returnTo=%2Funguarded%3Fx%3D1")
    const api = await send(app.port, { path: "/unguarded", headers: { accept: "application/json" } })
    expect(api.status).toBe(401)
    expect(problemOf(api.text).detail).toBe("Sign in to continue.")
  })

  it("is a configuration error without userSessionMiddleware before it, and checks its options", async () => {
    expect(() => requireSignIn(undefined as never)).toThrow(/options must be an object/)
    for (const signInPath of [
      undefined,
      "",
      "auth/signin",
      "//evil.example/signin",
      "https://evil.example"
    ]) {
      expect(() => requireSignIn({ signInPath } as never)).toThrow(/`signInPath` must be a path of this app/)
    }
    expect(() => problemDetails({ signInPath: "//evil.example" })).toThrow(/`signInPath` must be a path/)
    const bare = express()
    bare.get("/x", requireSignIn({ signInPath: "/auth/signin" }), (_req, res) => {
      res.end()
    })
    bare.use(problemDetails({ onError: false }))
    const listening = await serve(bare)
    try {
      const reply = await send(listening.port, { path: "/x" })
      expect(reply.status).toBe(500)
    } finally {
      await listening.close()
    }
  })
})

describe("what leaves the server", () => {
  it("no token, code verifier, nonce, code, state or session id in an answer body or a log line", async () => {
    const secrets = new Set(app.store.secrets())
    for (const back of approved) {
      for (const name of ["code", "state"]) {
        const value = back.searchParams.get(name)
        if (value !== null) secrets.add(value)
      }
    }
    for (const reply of app.replies) {
      for (const [, value] of cookiesOf(reply)) if (value !== "") secrets.add(value)
    }
    secrets.add(APP_CLIENT.clientSecret)
    expect(secrets.size).toBeGreaterThan(20)
    const bodies = app.replies.map((reply) => reply.text).join("\n")
    const headers = app.replies
      .map((reply) =>
        Object.entries(reply.headers)
          // the authorization request carries state and nonce by design; cookies carry their own values
          .filter(
            ([name, value]) => name !== "set-cookie" && !String(value).startsWith(sandbox.authorizeUrl!)
          )
          .map(([name, value]) => `${name}: ${value}`)
          .join("\n")
      )
      .join("\n")
    const output = logged.join("\n")
    for (const secret of secrets) {
      expect(bodies).not.toContain(secret)
      expect(headers).not.toContain(secret)
      expect(output).not.toContain(secret)
    }
  })
})
