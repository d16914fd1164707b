/**
 * The password grant through Express (`createSignInRouter(sessions, {
 * password: true })`, `POST /password`): a session per user like a
 * browser sign-in's, each user's own token on `req.userFetch`; refused
 * without the CSRF header or from another site (before any token request),
 * for wrong credentials and for bodies that are not credentials, with
 * nothing stored. The password is kept nowhere: not in the session store (every
 * entry ever written is scanned), not in an answer, not in a log line, not on
 * `req.body` after the router (when a body parser ran before it).
 */
import { type Sandbox, startSandbox } from "@authfetch/sandbox"
import express from "express"
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest"
import { createSignInRouter, problemDetails, userSessionMiddleware } from "../src/index.ts"
import { ALICE, APP_CLIENT, BOB, cookiesOf, type SignInApp, startSignInApp } from "./support/sessions.ts"

let sandbox: Sandbox
let app: SignInApp
const logged: Array<string> = []
/** what a logging middleware in front of the router saw of `req.body`, once the answer was sent */
const bodiesAfter: Array<string> = []

beforeAll(async () => {
  for (const method of ["log", "info", "warn", "error", "debug"] as const) {
    vi.spyOn(console, method).mockImplementation((...args: Array<unknown>) => {
      logged.push(args.map((arg) => (typeof arg === "string" ? arg : JSON.stringify(arg))).join(" "))
    })
  }
  sandbox = await startSandbox({
    profile: "wealthcare",
    users: [ALICE, BOB],
    clients: [APP_CLIENT],
    tokenRateLimit: false
  })
  app = await startSignInApp({
    sandbox,
    routes: (server, sessions) => {
      server.use("/auth", createSignInRouter(sessions, { password: true }))
      // an app that parses bodies (and logs them) before the router
      server.use(
        "/parsed",
        express.json(),
        express.urlencoded({ extended: false }),
        (req, res, next) => {
          res.once("finish", () => bodiesAfter.push(JSON.stringify(req.body ?? null)))
          next()
        },
        createSignInRouter(sessions, { password: true })
      )
      server.use(userSessionMiddleware(sessions, { baseUrl: sandbox.baseUrl, problemDetails: true }))
      server.get("/me", async (req, res) => {
        res.json({ user: req.user ?? null, me: await (await req.userFetch("/v1/me")).json() })
      })
      server.use(problemDetails())
    }
  })
})
afterAll(async () => {
  vi.restoreAllMocks()
  await app?.close()
  await sandbox?.close()
})

const script = (origin: string) => ({ origin, "sec-fetch-site": "same-origin", "x-csrf": "1" })

describe("POST /password (the password grant, per user)", () => {
  it("signs each user in with a session of their own, as JSON or a form; req.userFetch carries their token", async () => {
    const alice = app.jar()
    const signedIn = await alice.send({
      path: "/auth/password",
      method: "POST",
      headers: { ...script(app.url), "content-type": "application/json" },
      body: JSON.stringify({ username: ALICE.username, password: ALICE.password })
    })
    expect(signedIn.status).toBe(200)
    expect(signedIn.headers["cache-control"]).toBe("no-store")
    // the sandbox's password grant issues no ID token: the user is the username
    expect(JSON.parse(signedIn.text).user).toEqual({ username: ALICE.username })
    expect(cookiesOf(signedIn).get("authfetch-session")).toMatch(/^[\w-]{32,}$/)

    const bob = app.jar()
    const form = new URLSearchParams({ username: BOB.username, password: BOB.password }).toString()
    const bobIn = await bob.send({
      path: "/auth/password",
      method: "POST",
      headers: { ...script(app.url), "content-type": "application/x-www-form-urlencoded" },
      body: form
    })
    expect(bobIn.status).toBe(200)

    sandbox.resetStats()
    const calls = await Promise.all(
      Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? alice : bob).send({ path: "/me" }))
    )
    calls.forEach((reply, i) => {
      expect(reply.status).toBe(200)
      const { me } = JSON.parse(reply.text) as { me: { subject: string; grantType: string } }
      expect(me.subject).toBe(i % 2 === 0 ? "alice" : "bob")
      expect(me.grantType).toBe("password")
    })
    expect(sandbox.stats().apiRequests.bySubject).toEqual({ alice: 10, bob: 10 })
  })

  it("a password sign-in replaces the session the browser had", async () => {
    const jar = app.jar()
    const post = (user: typeof ALICE) =>
      jar.send({
        path: "/auth/password",
        method: "POST",
        headers: { ...script(app.url), "content-type": "application/json" },
        body: JSON.stringify({ username: user.username, password: user.password })
      })
    await post(ALICE)
    const first = jar.cookies.get("authfetch-session")!
    await post(BOB)
    expect(jar.cookies.get("authfetch-session")).not.toBe(first)
    const stale = app.jar()
    stale.cookies.set("authfetch-session", first)
    expect(
      JSON.parse((await stale.send({ path: "/me", headers: { accept: "application/json" } })).text).status
    ).toBe(401)
  })

  it("refuses wrong credentials (400) and requests without the CSRF header or from another site (403), storing nothing", async () => {
    const before = await app.store.liveKeys()
    const passwordGrants = sandbox.stats().tokenRequests.byGrant.password ?? 0
    const jar = app.jar()
    const wrong = await jar.send({
      path: "/auth/password",
      method: "POST",
      headers: { ...script(app.url), "content-type": "application/json" },
      body: JSON.stringify({ username: ALICE.username, password: "not-her-password" })
    })
    expect(wrong.status).toBe(400)
    expect(JSON.parse(wrong.text).detail).toBe("The username or password is not valid.")
    expect(wrong.headers["set-cookie"]).toBeUndefined()
    expect(sandbox.stats().tokenRequests.byGrant.password).toBe(passwordGrants + 1)

    const body = JSON.stringify({ username: ALICE.username, password: ALICE.password })
    for (const headers of [
      { origin: app.url, "sec-fetch-site": "same-origin" },
      { origin: "http://evil.example", "x-csrf": "1" },
      { "sec-fetch-site": "cross-site", "x-csrf": "1" }
    ]) {
      const reply = await jar.send({
        path: "/auth/password",
        method: "POST",
        headers: { ...headers, "content-type": "application/json" },
        body
      })
      expect(reply.status).toBe(403)
      expect(reply.headers["set-cookie"]).toBeUndefined()
    }
    // not even sent to the token endpoint
    expect(sandbox.stats().tokenRequests.byGrant.password).toBe(passwordGrants + 1)
    expect(await app.store.liveKeys()).toEqual(before)
    expect(jar.cookies.has("authfetch-session")).toBe(false)
  })

  it("answers 400 for bodies that are not credentials, without quoting them; 405 for other methods", async () => {
    const passwordGrants = sandbox.stats().tokenRequests.byGrant.password ?? 0
    for (const [type, body] of [
      ["application/json", `{"username":"alice","password":"${ALICE.password}"`], // truncated JSON
      ["application/json", JSON.stringify({ username: "alice" })],
      ["application/json", JSON.stringify({ username: "alice", password: 42 })],
      ["application/json", JSON.stringify(["alice", ALICE.password])],
      ["text/plain", `username=alice&password=${ALICE.password}`],
      ["application/x-www-form-urlencoded", `username=&password=${ALICE.password}`],
      [
        "application/json",
        JSON.stringify({ username: "alice", password: ALICE.password, pad: "x".repeat(9000) })
      ]
    ] as const) {
      const reply = await app.jar().send({
        path: "/auth/password",
        method: "POST",
        headers: { ...script(app.url), "content-type": type },
        body
      })
      expect(reply.status, body.slice(0, 60)).toBe(400)
      expect(JSON.parse(reply.text).detail).toBe("Send username and password, as JSON or a form.")
    }
    expect(sandbox.stats().tokenRequests.byGrant.password ?? 0).toBe(passwordGrants)
    const get = await app.jar().send({ path: "/auth/password" })
    expect(get.status).toBe(405)
    expect(get.headers.allow).toBe("POST")
  })

  it("takes credentials a body parser already read, and leaves no password on req.body", async () => {
    const jar = app.jar()
    for (const [type, body] of [
      ["application/json", JSON.stringify({ username: ALICE.username, password: ALICE.password })],
      [
        "application/x-www-form-urlencoded",
        new URLSearchParams({ username: BOB.username, password: BOB.password }).toString()
      ]
    ] as const) {
      const reply = await jar.send({
        path: "/parsed/password",
        method: "POST",
        headers: { ...script(app.url), "content-type": type },
        body
      })
      expect(reply.status).toBe(200)
    }
    expect(bodiesAfter).toHaveLength(2)
    for (const seen of bodiesAfter) {
      expect(seen).toContain('"username"')
      expect(seen).not.toContain("password")
    }
  })

  it("keeps the password nowhere: not in the session store, an answer or a log line", async () => {
    expect(app.store.written.length).toBeGreaterThanOrEqual(6)
    const stored = app.store.written.join("\n")
    const answers = app.replies.map((reply) => `${JSON.stringify(reply.headers)}\n${reply.text}`).join("\n")
    const output = logged.join("\n")
    for (const password of [ALICE.password, BOB.password, encodeURIComponent(ALICE.password)]) {
      expect(stored).not.toContain(password)
      expect(answers).not.toContain(password)
      expect(output).not.toContain(password)
    }
    // and the tokens the store holds are in no answer either
    for (const secret of app.store.secrets()) expect(answers).not.toContain(secret)
  })
})
