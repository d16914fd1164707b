/**
 * Every public entry point of the package checks its arguments and throws
 * `InvalidConfigError` naming the argument (never a raw `TypeError` later,
 * never the value itself: it may be a secret). Options given as functions are
 * checked when they are called, at the first request.
 */
import { createTokenSource, InvalidConfigError } from "@authfetch/core"
import { Effect } from "effect"
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest"
import { startTokenServer, type TokenServer } from "../../core/test/support/tokenServer.ts"
import {
  configureTokenSources,
  createAuthFetch,
  createProxyRoute,
  createSignInRoute,
  currentUser,
  disposeTokenSources,
  disposeUserSessions,
  getUserSession,
  redirectToSignIn,
  requireUserSession,
  tokenSource,
  userFetch,
  userSessions,
  withAuthFetch
} from "../src/index.ts"
import { getTokenSource } from "../src/tokens.ts"

const SECRET = "argument-secret-value"

let auth: TokenServer
let api: TokenServer

beforeAll(async () => {
  ;[auth, api] = await Promise.all([startTokenServer(), startTokenServer()])
  api.setDefault(() => ({ status: 200, body: { ok: true } }))
})
afterEach(async () => {
  await disposeTokenSources()
  await disposeUserSessions()
})
afterAll(async () => {
  await Promise.all([auth.close(), api.close()])
})

const config = () => ({ tokenUrl: auth.tokenUrl, clientId: "arguments", clientSecret: SECRET })
const handler = async () => new Response("ok")
const noParams = { params: Promise.resolve({}) }

/** The `InvalidConfigError` thrown by `run`, checked to name `name` and to hold no secret. */
const invalid = (run: () => unknown, name: string | RegExp): InvalidConfigError => {
  let thrown: unknown
  try {
    run()
  } catch (error) {
    thrown = error
  }
  expect(thrown).toBeInstanceOf(InvalidConfigError)
  const error = thrown as InvalidConfigError
  expect(error.message).toMatch(name)
  expect(error.message).not.toContain(SECRET)
  return error
}

const rejected = async (promise: Promise<unknown>, name: string | RegExp): Promise<void> => {
  const error = await promise.then(
    () => undefined,
    (error: unknown) => error
  )
  expect(error).toBeInstanceOf(InvalidConfigError)
  expect((error as Error).message).toMatch(name)
  expect((error as Error).message).not.toContain(SECRET)
}

describe("withAuthFetch", () => {
  it("handler and options", () => {
    invalid(
      () => withAuthFetch(null as never, { tokens: config() }),
      "withAuthFetch: `handler` must be a function"
    )
    invalid(() => withAuthFetch(handler, null as never), "withAuthFetch: `options` must be an object")
    invalid(() => withAuthFetch(handler, {} as never), "withAuthFetch: `options.tokens` must be")
    invalid(() => withAuthFetch(handler, { tokens: null as never }), /`options\.tokens` .*got null/)
    invalid(() => withAuthFetch(handler, { tokens: SECRET as never }), /`options\.tokens` .*got a string/)
    invalid(() => withAuthFetch(handler, { tokens: { getToken: () => SECRET } as never }), "`options.tokens`")
    invalid(
      () => withAuthFetch(handler, { tokens: config(), onError: "log" as never }),
      "withAuthFetch: `options.onError` must be a function, false or undefined"
    )
    // every problem at once
    const both = invalid(() => withAuthFetch(undefined as never, { tokens: 1 as never }), "`handler`")
    expect(both.problems).toHaveLength(2)
  })

  it("accepts every form of token source: configuration, function, Promise handle, Effect service", () => {
    const handle = createTokenSource(config())
    const effectShaped = { get: Effect.promise(() => handle.getToken()), invalidate: () => Effect.void }
    for (const tokens of [config(), () => config(), handle, tokenSource(config), effectShaped]) {
      expect(typeof withAuthFetch(handler, { tokens, baseUrl: api.url })).toBe("function")
    }
    return handle.dispose()
  })

  it("options from a function are checked at the first request: a 500 problem, the error names `options()`", async () => {
    const reported: Array<unknown> = []
    const original = console.error
    console.error = (...args: Array<unknown>) => reported.push(args.join(" "))
    try {
      const GET = withAuthFetch(
        (_request, { authFetch }) => authFetch("/v1/x"),
        () => ({ tokens: null as never })
      )
      const response = await GET(new Request("http://next.local/x") as never, noParams)
      expect(response.status).toBe(500)
      expect(String(reported[0])).toMatch(/withAuthFetch: `options\(\)\.tokens` must be/)
    } finally {
      console.error = original
    }
  })
})

describe("createAuthFetch", () => {
  it("options", () => {
    invalid(() => createAuthFetch(null as never), "createAuthFetch: `options` must be an object")
    invalid(
      () => createAuthFetch({ tokens: 42 as never }),
      /createAuthFetch: `options\.tokens` .*got a number/
    )
  })

  it("a function's result is checked at the first call (the call rejects)", async () => {
    await rejected(
      createAuthFetch(() => null as never)("/x"),
      "createAuthFetch: `options()` must be an object"
    )
    await rejected(
      createAuthFetch({ tokens: () => null as never, baseUrl: api.url })("/x"),
      /`options\.tokens` \(a function\) must return .*returned null/
    )
    const api2 = createAuthFetch(() => ({ tokens: config(), baseUrl: api.url }))
    expect((await api2("/v1/x")).status).toBe(200)
  })
})

describe("tokenSource, getTokenSource, configureTokenSources", () => {
  it("tokenSource", async () => {
    invalid(() => tokenSource(null as never), "tokenSource: `config` must be a token source configuration")
    invalid(() => tokenSource(config(), "store" as never), "tokenSource: `options` must be")
    await rejected(tokenSource(() => 5 as never).getToken(), "tokenSource: `config` (a function) must return")
    await rejected(tokenSource(() => ({ ...config(), clientId: "" })).getToken(), "clientId is required")
  })

  it("getTokenSource", () => {
    invalid(
      () => getTokenSource(undefined as never),
      "getTokenSource: `config` must be a token source configuration"
    )
    invalid(() => getTokenSource(config(), { store: 1 as never }), "getTokenSource: `options` must be")
    invalid(() => getTokenSource({ ...config(), tokenUrl: "not a url" }), "tokenUrl is not an absolute URL")
  })

  it("configureTokenSources", () => {
    invalid(() => configureTokenSources(null as never), "configureTokenSources: `options` must be an object")
    invalid(() => configureTokenSources({ maxSources: 0 }), "`options.maxSources` must be a whole number")
    invalid(() => configureTokenSources({ maxSources: 1.5 }), "`options.maxSources`")
    invalid(() => configureTokenSources({ idleTimeout: "soon" as never }), "`options.idleTimeout` must be")
    invalid(() => configureTokenSources({ idleTimeout: -1 }), "`options.idleTimeout`")
    expect(() => configureTokenSources({ maxSources: 100, idleTimeout: 15 * 60_000 })).not.toThrow()
  })
})

describe("user sessions", () => {
  const sessionsConfig = () => ({
    issuer: auth.url,
    clientId: "arguments",
    clientSecret: SECRET,
    scope: "openid offline_access",
    redirectUri: "http://127.0.0.1:3000/auth/callback"
  })

  it("userSessions: config and options now, the configuration itself at the first use", async () => {
    invalid(() => userSessions(null as never), "userSessions: `config` must be a sessions configuration")
    invalid(() => userSessions(SECRET as never), /userSessions: `config` .*got a string/)
    invalid(() => userSessions(sessionsConfig(), 5 as never), "userSessions: `options` must be")
    const both = invalid(() => userSessions(7 as never, { store: "redis" as never }), "`config`")
    expect(both.problems).toHaveLength(2)
    await rejected(
      userSessions(() => 5 as never).session(""),
      "userSessions: `config` (a function) must return"
    )
    await rejected(
      userSessions({ ...sessionsConfig(), clientId: "", redirectUri: "http://app.example/cb" }).session(""),
      /userSessions: config: clientId is required/
    )
    const lazy = userSessions({ ...sessionsConfig(), scope: "openid", issuer: undefined })
    expect(() => lazy.cookieName).toThrow(/issuer is required with the openid scope/)
  })

  it("createSignInRoute", () => {
    const sessions = userSessions(sessionsConfig())
    invalid(
      () => createSignInRoute(undefined as never),
      "createSignInRoute: `sessions` must be user sessions"
    )
    invalid(
      () => createSignInRoute(sessionsConfig() as never),
      /`sessions` must be user sessions .*got an object/
    )
    invalid(
      () => createSignInRoute(sessions, "options" as never),
      "createSignInRoute: `options` must be an object"
    )
    invalid(
      () => createSignInRoute(sessions, { onError: "page" as never }),
      "createSignInRoute: `options.onError` must be a function"
    )
  })

  it("the session helpers: sessions and options, every problem at once", async () => {
    const sessions = userSessions(sessionsConfig())
    const request = new Request("http://127.0.0.1:3000/")
    await rejected(getUserSession(null as never), "getUserSession: `sessions` must be user sessions")
    await rejected(
      currentUser(sessions, { request: "cookie" as never }),
      "currentUser: `options.request` must be"
    )
    await rejected(
      requireUserSession(sessions, { request, returnTo: "account" }),
      "requireUserSession: `options.returnTo` must be a path of this app"
    )
    await rejected(
      userFetch(sessions, { request, signIn: "yes" as never }),
      "userFetch: `options.signIn` must be"
    )
    await rejected(
      userFetch(sessions, { request, signIn: { signInPath: 3 as never } }),
      "userFetch: `options.signIn.signInPath` must be a path"
    )
    invalid(() => redirectToSignIn(sessions, { returnTo: "https://evil.example" }), "`options.returnTo`")
    const many = await getUserSession({} as never, { request: 1 as never }).catch((error: unknown) => error)
    expect((many as InvalidConfigError).problems).toHaveLength(2)
  })

  it("createProxyRoute: sessions instead of tokens; not both; not something else", async () => {
    const sessions = userSessions(sessionsConfig())
    const quiet = { onError: false as const, baseUrl: api.url }
    const answer = async (route: ReturnType<typeof createProxyRoute>) => {
      const response = await route.GET(new Request("http://127.0.0.1:3000/api/user/v1/x"))
      return { status: response.status, body: await response.text() }
    }
    expect((await answer(createProxyRoute({ sessions, prefix: "/api/user", ...quiet }))).status).toBe(401)
    const reported: Array<string> = []
    const report = { onError: (error: unknown) => reported.push((error as Error).message) }
    const both = createProxyRoute({
      sessions,
      tokens: config(),
      baseUrl: api.url,
      prefix: "/api/user",
      ...report
    })
    expect((await answer(both)).status).toBe(500)
    const wrong = createProxyRoute({
      sessions: {} as never,
      baseUrl: api.url,
      prefix: "/api/user",
      ...report
    })
    expect((await answer(wrong)).status).toBe(500)
    const none = createProxyRoute({ baseUrl: api.url, prefix: "/api/user", ...report })
    expect((await answer(none)).status).toBe(500)
    expect(reported).toEqual([
      expect.stringContaining("proxy options `tokens` and `sessions` exclude each other"),
      expect.stringContaining("proxy option `sessions` must be user sessions"),
      expect.stringContaining(
        "proxy option `tokens` is missing (a configuration or a token source; or `sessions`"
      )
    ])
    for (const message of reported) expect(message).not.toContain(SECRET)
  })
})
