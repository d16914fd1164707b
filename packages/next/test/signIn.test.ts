/**
 * The sign-in route (`createSignInRoute`) and the per-user proxy route
 * (`createProxyRoute({ sessions })`) with real `Request`s, as Next calls
 * them, against the WealthCare sandbox (sign-ins approved without its page;
 * the browser pages are examples/next-app's tests): the whole sign-in, the
 * session helpers with a route handler's request, the user's token through
 * the proxy (two users, 50 concurrent calls each, no crossing), CSRF,
 * sign-out with revocation, and the attacks a callback must refuse, each
 * with nothing stored. Then a scan of everything the browser received,
 * every log line and every event for the secret, the tokens, the codes,
 * the states and the session ids. Runs in Node.js and in the Edge-runtime
 * environment (there, with a store: see sessions.test.ts).
 */
import type { SessionEvent } from "@authfetch/core"
import type { Sandbox } from "@authfetch/sandbox"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import {
  createProxyRoute,
  createSignInRoute,
  currentUser,
  disposeUserSessions,
  getUserSession,
  type LazyUserSessions,
  type ProxyRoute,
  type SignInRoute,
  userSessions
} from "../src/index.ts"
import {
  APP,
  authorize,
  Browser,
  recordSecrets,
  type Secrets,
  sessionCookie,
  sessionsConfig,
  startWealthcare,
  storeOption
} from "./signInSupport.ts"

let sandbox: Sandbox
let secrets: Secrets
let sessions: LazyUserSessions
let route: SignInRoute
let proxy: ProxyRoute
const events: Array<SessionEvent> = []
const logged: Array<string> = []
/** every browser of this file, for the leak scan */
const browsers: Array<Browser> = []
/** codes and states seen in callbacks */
const seen = new Set<string>()
const originalError = console.error

const browser = () => {
  const made = new Browser()
  browsers.push(made)
  return made
}

beforeAll(async () => {
  sandbox = await startWealthcare()
  secrets = recordSecrets()
  sessions = userSessions(
    () => sessionsConfig(sandbox, { fetch: secrets.fetch, onEvent: (event) => events.push(event) }),
    storeOption()
  )
  route = createSignInRoute(sessions)
  proxy = createProxyRoute({ sessions, baseUrl: sandbox.baseUrl, prefix: "/api/user" })
  console.error = (...args: Array<unknown>) => {
    logged.push(args.map(String).join(" "))
  }
})
afterAll(async () => {
  console.error = originalError
  await disposeUserSessions()
  await sandbox?.close()
})

const signIn = async (who: Browser, user = "alice", returnTo?: string) => {
  const done = await who.signIn(route, user, returnTo)
  for (const name of ["code", "state"]) {
    const value = done.back.searchParams.get(name)
    if (value) seen.add(value)
  }
  return done
}

const me = async (who: Browser, headers: Record<string, string> = {}) =>
  who.call(proxy, `${APP}/api/user/v1/me`, { headers })

const subjectOf = async (response: Response) => ((await response.json()) as { subject: string }).subject
const tokenRequests = () => sandbox.stats().tokenRequests.total
const signedIn = () => events.filter((event) => event.type === "signed_in").length
const failures = () => events.flatMap((event) => (event.type === "sign_in_failed" ? [event.reason] : []))

/** A 400 problem with the core's fixed sentence, no Location, no cookie but the binding. */
const expectRefused = async (response: Response, detail: RegExp) => {
  expect(response.status).toBe(400)
  expect(response.headers.get("content-type")).toBe("application/problem+json")
  expect(response.headers.get("cache-control")).toBe("no-store")
  expect(response.headers.get("location")).toBeNull()
  expect(response.headers.get("set-cookie")).toBeNull()
  const body = (await response.json()) as { title: string; detail: string }
  expect(body.title).toBe("Bad Request")
  expect(body.detail).toMatch(detail)
}

describe("sign-in", () => {
  it("signin → the authorization server → callback → returnTo, with an HttpOnly session cookie", async () => {
    const alice = browser()
    const start = await alice.action(route, "signin", `?returnTo=${encodeURIComponent("/account?tab=2")}`)
    expect(start.status).toBe(302)
    expect(start.headers.get("cache-control")).toBe("no-store")
    const location = new URL(start.headers.get("location")!)
    expect(`${location.origin}${location.pathname}`).toBe(sandbox.authorizeUrl)
    expect(Object.fromEntries(location.searchParams)).toMatchObject({
      response_type: "code",
      client_id: "next-app",
      redirect_uri: `${APP}/auth/callback`,
      code_challenge_method: "S256",
      scope: "openid profile email offline_access bensoft_api"
    })
    expect(location.searchParams.get("state")).toMatch(/^[\w-]{43}$/)
    expect(location.searchParams.get("nonce")).toMatch(/^[\w-]{43}$/)
    // the browser binding: loopback http, so no __Host- prefix and no Secure (browsers would refuse it)
    expect(alice.setCookies.at(-1)).toMatch(
      /^authfetch-sign-in=[\w-]{43}; Path=\/; Max-Age=600; HttpOnly; SameSite=Lax$/
    )

    const back = await authorize(location.href, "alice")
    seen.add(back.searchParams.get("code")!)
    seen.add(back.searchParams.get("state")!)
    expect(back.searchParams.get("iss")).toBe(sandbox.issuer)
    const callback = await alice.action(route, "callback", back.search)
    expect(callback.status).toBe(302)
    expect(callback.headers.get("location")).toBe("/account?tab=2")
    expect(callback.headers.get("cache-control")).toBe("no-store")
    expect(alice.setCookies.at(-1)).toMatch(
      /^authfetch-session=[\w-]{43}; Path=\/; Max-Age=28800; HttpOnly; SameSite=Lax$/
    )

    // a route handler's request: the helpers read its Cookie header
    const request = new Request(`${APP}/api/whoami`, { headers: { cookie: alice.header() } })
    const session = await getUserSession(sessions, { request })
    expect(session).toMatchObject({
      subject: "alice",
      user: { name: "Alice Example", email: "alice@example.com" },
      scope: expect.stringContaining("bensoft_api")
    })
    expect(session!.key).toMatch(/^ss_/)
    expect(await currentUser(sessions, { request })).toMatchObject({ name: "Alice Example" })
    expect(await currentUser(sessions, { request: new Request(`${APP}/`) })).toBeUndefined()
    expect(events.map((event) => event.type)).toEqual(
      expect.arrayContaining(["sign_in_started", "signed_in"])
    )
  })

  it("without returnTo lands on afterSignIn (/); the action may also come from the path alone", async () => {
    const who = browser()
    const start = await who.call(route, `${APP}/auth/signin`) // no params: the last path segment
    expect(start.status).toBe(302)
    const back = await authorize(start.headers.get("location")!, "bob")
    const callback = await who.call(route, `${APP}/auth/callback${back.search}`)
    expect(callback.status).toBe(302)
    expect(callback.headers.get("location")).toBe("/")
    expect(await subjectOf(await me(who))).toBe("bob")
  })

  it("unknown actions are 404, the wrong method 405 with Allow", async () => {
    const who = browser()
    const unknown = await who.action(route, "register")
    expect(unknown.status).toBe(404)
    expect(unknown.headers.get("content-type")).toBe("application/problem+json")
    const post = await who.action(route, "signin", "", { method: "POST" })
    expect(post.status).toBe(405)
    expect(post.headers.get("allow")).toBe("GET")
    const get = await who.action(route, "signout")
    expect(get.status).toBe(405)
    expect(get.headers.get("allow")).toBe("POST")
  })
})

describe("the per-user proxy route", () => {
  it("forwards each user's own token: two users, 50 concurrent calls each, no crossing", async () => {
    const [alice, bob] = [browser(), browser()]
    await signIn(alice, "alice")
    await signIn(bob, "bob")
    const before = sandbox.stats().apiRequests.bySubject
    const calls = Array.from({ length: 100 }, (_, i) => {
      const who = i % 2 === 0 ? alice : bob
      return me(who).then(async (response) => ({
        expected: who === alice ? "alice" : "bob",
        status: response.status,
        subject: await subjectOf(response)
      }))
    })
    const results = await Promise.all(calls)
    expect(results.every((result) => result.status === 200)).toBe(true)
    expect(results.filter((result) => result.subject !== result.expected)).toEqual([])
    const after = sandbox.stats().apiRequests.bySubject
    expect((after.alice ?? 0) - (before.alice ?? 0)).toBe(50)
    expect((after.bob ?? 0) - (before.bob ?? 0)).toBe(50)
  })

  it("answers 401 without a session, and never calls the API", async () => {
    const anonymous = browser()
    const before = sandbox.stats().apiRequests.total
    const response = await me(anonymous)
    expect(response.status).toBe(401)
    expect(await response.json()).toEqual({
      type: "about:blank",
      title: "Unauthorized",
      status: 401,
      detail: "Sign in to continue."
    })
    const forged = await me(anonymous, { cookie: `authfetch-session=${"A".repeat(43)}` })
    expect(forged.status).toBe(401)
    expect(sandbox.stats().apiRequests.total).toBe(before)
  })

  it("refuses a state-changing call from another site or without x-csrf (403); same-origin with x-csrf passes", async () => {
    const alice = browser()
    await signIn(alice)
    const claim = (headers: Record<string, string>) =>
      alice.call(proxy, `${APP}/api/user/v1/claims`, {
        method: "POST",
        headers: { "content-type": "application/json", ...headers },
        body: JSON.stringify({ amount: 12.5, description: "csrf check" })
      })
    const created = sandbox.stats().claims.created
    for (const headers of [
      { origin: "https://evil.example", "x-csrf": "1" },
      { "sec-fetch-site": "cross-site", "x-csrf": "1" },
      { "sec-fetch-site": "same-site", "x-csrf": "1" },
      { origin: APP, "sec-fetch-site": "same-origin" }, // no x-csrf: an HTML form of another site could do this much
      { origin: "null", "x-csrf": "1" }
    ]) {
      const response = await claim(headers)
      expect(response.status, JSON.stringify(headers)).toBe(403)
      expect(((await response.json()) as { detail: string }).detail).toBe(
        "A state-changing request from another site was refused."
      )
    }
    expect(sandbox.stats().claims.created).toBe(created)
    const ok = await claim({ origin: APP, "sec-fetch-site": "same-origin", "x-csrf": "1" })
    expect(ok.status).toBe(201)
    expect(sandbox.stats().claims.created).toBe(created + 1)
  })
})

describe("sign-out", () => {
  it("refuses a GET, a POST from another site and one with neither Origin nor Sec-Fetch-Site; the session lives on", async () => {
    const alice = browser()
    await signIn(alice)
    expect((await alice.action(route, "signout")).status).toBe(405)
    for (const headers of [{ origin: "https://evil.example" }, { "sec-fetch-site": "cross-site" }, {}]) {
      const response = await alice.action(route, "signout", "", { method: "POST", headers })
      expect(response.status, JSON.stringify(headers)).toBe(403)
      expect(response.headers.get("set-cookie")).toBeNull()
    }
    expect((await me(alice)).status).toBe(200)
  })

  it("a form POST of the app: 303 to afterSignOut, cookie cleared, session gone, refresh token revoked at the server", async () => {
    const alice = browser()
    await signIn(alice)
    const cookie = alice.header()
    const revocations = sandbox.stats().revocations
    const response = await alice.action(route, "signout", "", {
      method: "POST",
      headers: {
        origin: APP,
        "sec-fetch-site": "same-origin",
        "content-type": "application/x-www-form-urlencoded"
      },
      body: ""
    })
    expect(response.status).toBe(303)
    expect(response.headers.get("location")).toBe("/")
    expect(alice.setCookies.at(-1)).toMatch(/^authfetch-session=; Path=\/; Max-Age=0; HttpOnly; SameSite=Lax/)
    expect(sessionCookie(alice)).toBeUndefined()
    const after = sandbox.stats().revocations
    expect(after.revoked).toBe(revocations.revoked + 1)
    expect(after.bySubject.alice).toBe((revocations.bySubject.alice ?? 0) + 1)
    // the old cookie, replayed, is nobody's
    expect((await me(browser(), { cookie })).status).toBe(401)
    expect(
      await getUserSession(sessions, { request: new Request(APP, { headers: { cookie } }) })
    ).toBeUndefined()
    expect(events.some((event) => event.type === "signed_out" && event.revoked)).toBe(true)
  })
})

describe("attacks on the callback: each refused with 400, nothing stored", () => {
  /** A sign-in started by `who`, approved at the server: the callback URL's query, not yet delivered. */
  const approved = async (who: Browser, user = "alice") => {
    const start = await who.action(route, "signin")
    const back = await authorize(start.headers.get("location")!, user)
    seen.add(back.searchParams.get("code")!)
    seen.add(back.searchParams.get("state")!)
    return back.searchParams
  }
  const deliver = (who: Browser, query: URLSearchParams) => who.action(route, "callback", `?${query}`)

  it("state missing, or unknown", async () => {
    const who = browser()
    const query = await approved(who)
    const [made, requested] = [signedIn(), tokenRequests()]
    const noState = new URLSearchParams(query)
    noState.delete("state")
    await expectRefused(await deliver(who, noState), /not valid in this browser/)
    const unknown = new URLSearchParams(query)
    unknown.set("state", "B".repeat(43))
    await expectRefused(await deliver(who, unknown), /not valid in this browser/)
    expect(failures().slice(-2)).toEqual(["state_missing", "state_unknown"])
    expect([signedIn(), tokenRequests()]).toEqual([made, requested])
    expect(sessionCookie(who)).toBeUndefined()
  })

  it("state mismatch: a callback started in another browser (the attacker's) is refused in the victim's", async () => {
    const attacker = browser()
    const victim = browser()
    const query = await approved(attacker, "bob")
    const [made, requested] = [signedIn(), tokenRequests()]
    await expectRefused(await deliver(victim, query), /not valid in this browser/)
    expect(failures().at(-1)).toBe("state_mismatch")
    expect([signedIn(), tokenRequests()]).toEqual([made, requested])
    expect(sessionCookie(victim)).toBeUndefined()
  })

  it("a code replayed: the same callback again, and the used code under a new state", async () => {
    const who = browser()
    const query = await approved(who)
    expect((await deliver(who, query)).status).toBe(302)
    const first = sessionCookie(who)
    const made = signedIn()
    // the same callback: its sign-in is over (the state was taken)
    await expectRefused(await deliver(who, query), /not valid in this browser/)
    // the used code under a sign-in of this browser still under way: the server refuses it
    const fresh = await approved(who)
    const replay = new URLSearchParams(fresh)
    replay.set("code", query.get("code")!)
    await expectRefused(await deliver(who, replay), /could not be exchanged/)
    expect(failures().slice(-2)).toEqual(["state_unknown", "code_exchange_failed"])
    expect(signedIn()).toBe(made)
    expect(sessionCookie(who)).toBe(first)
  })

  it("a PKCE verifier that does not match: the code of one sign-in delivered with the state of another", async () => {
    const who = browser()
    const one = await approved(who)
    const two = await approved(who)
    const swapped = new URLSearchParams(two)
    swapped.set("code", one.get("code")!)
    const made = signedIn()
    await expectRefused(await deliver(who, swapped), /could not be exchanged/)
    expect(failures().at(-1)).toBe("code_exchange_failed")
    expect(signedIn()).toBe(made)
    expect(sessionCookie(who)).toBeUndefined()
  })

  it("a mix-up: iss of another server, or none from a server that sends it (RFC 9207)", async () => {
    const who = browser()
    const [made, requested] = [signedIn(), tokenRequests()]
    const query = await approved(who)
    const foreign = new URLSearchParams(query)
    foreign.set("iss", "https://other-idp.example")
    await expectRefused(await deliver(who, foreign), /did not come from the expected authorization server/)
    const second = await approved(who)
    const missing = new URLSearchParams(second)
    missing.delete("iss")
    await expectRefused(await deliver(who, missing), /did not come from the expected authorization server/)
    expect(failures().slice(-2)).toEqual(["issuer_mismatch", "issuer_missing"])
    expect([signedIn(), tokenRequests()]).toEqual([made, requested])
  })

  it("an open redirect through returnTo: refused at signin, nothing started", async () => {
    const who = browser()
    for (const returnTo of [
      "//evil.example/x",
      "https://evil.example/",
      "/\\evil.example",
      "http:evil.example",
      "javascript:alert(1)",
      "/\t/evil.example"
    ]) {
      const response = await who.action(route, "signin", `?returnTo=${encodeURIComponent(returnTo)}`)
      await expectRefused(response, /^returnTo must be a path of this app\.$/)
    }
    expect(who.cookies.size).toBe(0)
  })

  it("session fixation: a session cookie planted before the sign-in is not the one after it", async () => {
    // the attacker signs in, then plants their own session id in the victim's browser
    const attacker = browser()
    await signIn(attacker, "bob")
    const planted = sessionCookie(attacker)!
    const victim = browser()
    victim.cookies.set("authfetch-session", planted)
    await signIn(victim, "alice")
    const after = sessionCookie(victim)!
    expect(after).not.toBe(planted)
    expect(await subjectOf(await me(victim))).toBe("alice")
    // the planted session was ended by the victim's sign-in: the attacker cannot ride on it
    expect((await me(attacker)).status).toBe(401)
    // a value the attacker made up is not adopted either
    const other = browser()
    other.cookies.set("authfetch-session", "C".repeat(43))
    await signIn(other, "alice")
    expect(sessionCookie(other)).not.toBe("C".repeat(43))
  })

  it("the server's error answer (access_denied) is refused with its own sentence; onError gives the app's page", async () => {
    const who = browser()
    const start = await who.action(route, "signin")
    const state = new URL(start.headers.get("location")!).searchParams.get("state")!
    seen.add(state)
    const denied = new URLSearchParams({ error: "access_denied", state, iss: sandbox.issuer! })
    await expectRefused(await deliver(who, denied), /^The sign-in was cancelled or refused\.$/)

    const reported: Array<{ error: unknown; status: number }> = []
    const own = createSignInRoute(sessions, {
      onError: (error, _request, problem) => {
        reported.push({ error, status: problem.status })
        return (error as { reason?: string }).reason === "authorization_error"
          ? new Response("<h1>Sign-in cancelled</h1>", {
              status: 400,
              headers: { "content-type": "text/html" }
            })
          : undefined
      }
    })
    const again = await who.action(own, "signin")
    const state2 = new URL(again.headers.get("location")!).searchParams.get("state")!
    seen.add(state2)
    const page = await who.action(
      own,
      "callback",
      `?${new URLSearchParams({ error: "access_denied", state: state2, iss: sandbox.issuer! })}`
    )
    expect(page.status).toBe(400)
    expect(await page.text()).toBe("<h1>Sign-in cancelled</h1>")
    expect(reported[0]).toMatchObject({
      error: { _tag: "SignInError", reason: "authorization_error", code: "access_denied" },
      status: 400
    })
    // undefined: the default problem
    const fallback = await who.action(own, "callback", "?state=nothing")
    expect(fallback.status).toBe(400)
    expect(fallback.headers.get("content-type")).toBe("application/problem+json")
    expect(reported).toHaveLength(2)
  })
})

describe("an authorization server that cannot be reached", () => {
  it("answers 502 problem+json and logs one line without internals", async () => {
    const broken = userSessions(
      { ...sessionsConfig(sandbox), issuer: "http://127.0.0.1:9", clientId: "unreachable" },
      storeOption()
    )
    const before = logged.length
    const response = await browser().action(createSignInRoute(broken), "signin")
    expect(response.status).toBe(502)
    expect(((await response.json()) as { detail: string }).detail).toBe(
      "The authorization server's metadata could not be used."
    )
    expect(logged.slice(before)).toEqual([
      expect.stringMatching(/^\[@authfetch\/next\] sign-in route answered 502 .*DiscoveryError/)
    ])
  })
})

describe("secrets", () => {
  it("no token, code, state, session id or client secret in anything the browser received, a log line or an event", () => {
    const sessionIds = new Set<string>()
    for (const who of browsers) {
      for (const line of who.setCookies) {
        const value = /^[^=]+=([^;]*)/.exec(line)?.[1]
        if (value) sessionIds.add(value)
      }
    }
    const needles = [...secrets.values, ...seen, ...sessionIds].filter((needle) => needle.length >= 16)
    expect(secrets.values.size).toBeGreaterThan(10)
    expect(seen.size).toBeGreaterThan(10)
    expect(sessionIds.size).toBeGreaterThan(10)
    const places = [
      ...browsers.flatMap((who) => who.received.map((text) => ({ where: "a response", text }))),
      ...logged.map((text) => ({ where: "console.error", text })),
      ...events.map((event) => ({ where: `event ${event.type}`, text: JSON.stringify(event) }))
    ]
    const leaks = places.filter(({ text }) => needles.some((needle) => text.includes(needle)))
    expect(leaks.map(({ where }) => where)).toEqual([])
    console.log(`scanned ${places.length} texts for ${needles.length} secret values: none found`)
  })
})
