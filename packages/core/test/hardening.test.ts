/**
 * The holes an outside review found in the token engine (issue #11), each
 * against real servers on 127.0.0.1: a token endpoint that redirects, echoes
 * or answers malformed tokens, an API that echoes the bearer token or answers
 * 401 to everything, the sandbox's WEX profile with its 100-per-minute limit.
 */
import { createServer, type IncomingMessage, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import { inspect } from "node:util"
import { type Sandbox, startSandbox } from "@authfetch/sandbox"
import { Effect, Fiber } from "effect"
import { TestClock } from "effect/testing"
import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from "vitest"
import {
  type AuthFetchOptions,
  authFetch,
  Config,
  createTokenSource,
  Grant,
  InvalidConfigError,
  InvalidTokenResponseError,
  type OAuthError,
  ProblemDetailsError,
  RateLimitedError,
  type RequestEvent,
  TokenEndpointError,
  type TokenEvent,
  type TokenSourceConfig
} from "../src/index.ts"
import { driveUntilDone, eventLog, makeSource, realWait } from "./support/effect.ts"
import { issueToken, startTokenServer, type TokenServer } from "./support/tokenServer.ts"

/** Every way an error can be shown: message, String, JSON, inspect, stack. */
const renderings = (value: unknown): string => {
  const out = [String(value), JSON.stringify(value) ?? "", inspect(value, { depth: 10, showHidden: true })]
  if (value instanceof Error) out.push(value.message, value.stack ?? "")
  return out.join("\n")
}

const failureOf = async (promise: Promise<unknown>): Promise<unknown> =>
  promise.then(
    () => {
      throw new Error("expected a failure")
    },
    (error: unknown) => error
  )

/** A server that records every request it gets and answers 200 with a token. */
const startCanary = async () => {
  const seen: Array<{ method: string; url: string; body: string }> = []
  const server = createServer(async (req, res) => {
    let body = ""
    for await (const chunk of req) body += chunk
    seen.push({ method: req.method ?? "", url: req.url ?? "", body })
    res.writeHead(200, { "content-type": "application/json" })
    res.end(JSON.stringify({ access_token: "CANARY-MINTED", token_type: "Bearer", expires_in: 600 }))
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return { seen, url, close: () => closeServer(server) }
}

const closeServer = (server: Server) =>
  new Promise<void>((resolve) => {
    server.closeAllConnections()
    server.close(() => resolve())
  })

let auth: TokenServer
beforeAll(async () => {
  auth = await startTokenServer()
})
afterAll(() => auth.close())

describe("1. token requests never follow a redirect", () => {
  for (const status of [301, 302, 303, 307, 308]) {
    it(`${status} to a canary: nothing reaches it, no token is accepted, the error names status and origin only`, async () => {
      const canary = await startCanary()
      const target = `${canary.url}/steal?next=${encodeURIComponent("https://x/?secret=1")}`
      auth.enqueue({ status, headers: { location: target }, text: "" })
      const tokens = createTokenSource({
        tokenUrl: auth.tokenUrl,
        clientId: "redirected",
        clientSecret: "REDIRECT-SECRET-1",
        rateLimit: false
      })
      const error = await failureOf(tokens.getToken())
      await tokens.dispose()
      await canary.close()
      expect(canary.seen).toEqual([])
      expect(error).toBeInstanceOf(TokenEndpointError)
      const e = error as TokenEndpointError
      expect(e.reason).toBe("redirect")
      expect(e.status).toBe(status)
      expect(e.message).toContain(String(status))
      expect(e.message).toContain(canary.url)
      const shown = renderings(error)
      expect(shown).not.toContain("/steal")
      expect(shown).not.toContain("secret=1")
      expect(shown).not.toContain("REDIRECT-SECRET-1")
    })
  }

  it("a redirect is not retried (the answer would be the same)", async () => {
    const before = auth.requests.length
    auth.enqueue({ status: 307, headers: { location: "http://127.0.0.1:9/t" }, text: "" })
    const tokens = createTokenSource({
      tokenUrl: auth.tokenUrl,
      clientId: "r2",
      clientSecret: "s",
      rateLimit: false
    })
    await failureOf(tokens.getToken())
    await tokens.dispose()
    expect(auth.requests.length - before).toBe(1)
  })
})

describe("2. credentials never in the cache key, events or errors", () => {
  it("a client_assertion in params is digested: not in key, events, errors or renderings", async () => {
    const ASSERTION = "eyJhbGciOiJSUzI1NiJ9.ASSERTION-PAYLOAD.SIGNATURE-PART"
    const events: Array<TokenEvent> = []
    auth.enqueue({ status: 400, body: { error: "invalid_client", error_description: `bad ${ASSERTION}` } })
    const tokens = createTokenSource({
      tokenUrl: auth.tokenUrl,
      clientId: "assertive",
      params: { client_assertion: ASSERTION, client_assertion_type: "urn:x" },
      rateLimit: false,
      onEvent: (event) => events.push(event)
    })
    const error = await failureOf(tokens.getToken())
    auth.enqueue(issueToken())
    const token = await tokens.getToken()
    await tokens.dispose()
    expect(events.length).toBeGreaterThan(2)
    const shown = [tokens.key, JSON.stringify(events), renderings(error), renderings(token), inspect(tokens)]
    for (const text of shown) {
      for (const part of ["ASSERTION-PAYLOAD", "SIGNATURE-PART", "eyJhbGciOiJSUzI1NiJ9"]) {
        expect(text).not.toContain(part)
      }
    }
    expect(tokens.key).toMatch(/^tk_[A-Za-z0-9_-]{43}$/)
  })

  it("keys are digests of canonical parameters: order-free, and apart whenever a value differs", () => {
    const base = { tokenUrl: "https://auth.example/t", clientId: "c" }
    expect(Config.cacheKey({ ...base, params: { a: "1", b: "2" } })).toBe(
      Config.cacheKey({ ...base, params: { b: "2", a: "1" } })
    )
    expect(Config.cacheKey({ ...base, params: { a: "1" } })).not.toBe(
      Config.cacheKey({ ...base, params: { a: "2" } })
    )
    const other: TokenSourceConfig = { ...base, scope: "x", params: { a: "1" } }
    expect(Config.budgetKey(base)).toBe(Config.budgetKey(other))
    expect(Config.budgetKey(base)).not.toBe(Config.budgetKey({ ...base, clientId: "d" }))
  })
})

describe("3. two users never share a token", () => {
  const codeGrant = (code: string) =>
    Grant.authorizationCode({ code, redirectUri: "http://127.0.0.1/callback", codeVerifier: "v".repeat(43) })

  it("the key holds everything that makes a token someone's, digested", () => {
    const base = { tokenUrl: "https://auth.example/t", clientId: "c" }
    const keys = [
      Config.cacheKey({ ...base, grant: codeGrant("CODE-ALICE") }),
      Config.cacheKey({ ...base, grant: codeGrant("CODE-BOB") }),
      Config.cacheKey({ ...base, refreshToken: "RT-ALICE" }),
      Config.cacheKey({ ...base, refreshToken: "RT-BOB" }),
      Config.cacheKey({ ...base, grant: Grant.password({ username: "alice", password: "p" }) }),
      Config.cacheKey({ ...base, grant: Grant.password({ username: "bob", password: "p" }) }),
      Config.cacheKey({ ...base, grant: Grant.refreshToken("RT-CAROL") })
    ]
    expect(new Set(keys).size).toBe(keys.length)
    for (const key of keys) expect(key).not.toMatch(/ALICE|BOB|CAROL|alice|bob/)
  })

  it("two codes: two sources, two tokens, no crossing under 2×50 concurrent calls", async () => {
    const server = await startTokenServer((request) =>
      issueToken({ access_token: `token-of-${request.form.get("code")}` })
    )
    const sources = new Map<string, ReturnType<typeof createTokenSource>>()
    const sourceFor = (code: string) => {
      const config = { tokenUrl: server.tokenUrl, clientId: "web", clientSecret: "s", grant: codeGrant(code) }
      const key = Config.cacheKey(config)
      let source = sources.get(key)
      if (source === undefined) {
        source = createTokenSource(config)
        sources.set(key, source)
      }
      return source
    }
    const calls = Array.from({ length: 100 }, (_, i) => {
      const user = i % 2 === 0 ? "alice" : "bob"
      return sourceFor(`code-${user}`)
        .getToken()
        .then((token) => ({ user, value: token.reveal() }))
    })
    const results = await Promise.all(calls)
    await Promise.all([...sources.values()].map((s) => s.dispose()))
    await server.close()
    expect(sources.size).toBe(2)
    expect(server.requests.length).toBe(2)
    for (const { user, value } of results) expect(value).toBe(`token-of-code-${user}`)
  })
})

describe("4. malformed token_type, access_token and refresh_token are refused at decode", () => {
  const cases: ReadonlyArray<[string, Record<string, unknown>, string]> = [
    ["token_type with NUL", { token_type: "Bearer\u0000" }, "token_type"],
    ["token_type with a space", { token_type: "Bearer x" }, "token_type"],
    ["token_type with CRLF", { token_type: "Bearer\r\nX-Evil: 1" }, "token_type"],
    ["access_token with a newline", { access_token: "LEAKY-AT-1\nX-Evil: 1" }, "access_token"],
    ["access_token with a space", { access_token: "LEAKY-AT-2 more" }, "access_token"],
    ["access_token not ASCII", { access_token: "LEAKY-AT-3-é" }, "access_token"],
    ["refresh_token with a control character", { refresh_token: "LEAKY-RT-1\u0007" }, "refresh_token"]
  ]
  for (const [name, fields, field] of cases) {
    it(`${name}: InvalidTokenResponseError naming ${field}, never its value`, async () => {
      auth.enqueue(issueToken({ access_token: "LEAKY-AT-0", ...fields }))
      const tokens = createTokenSource({ tokenUrl: auth.tokenUrl, clientId: "decode", rateLimit: false })
      const error = await failureOf(tokens.getToken())
      await tokens.dispose()
      expect(error).toBeInstanceOf(InvalidTokenResponseError)
      expect((error as InvalidTokenResponseError).reason).toContain(field)
      const shown = renderings(error)
      for (const needle of ["LEAKY", "Bearer\u0000", "X-Evil"]) expect(shown).not.toContain(needle)
    })
  }

  it("a valid unusual token (tchar type, base64 padding, dots) is accepted", async () => {
    auth.enqueue(issueToken({ access_token: "abc.DEF-_~+/=", token_type: "DPoP" }))
    const tokens = createTokenSource({ tokenUrl: auth.tokenUrl, clientId: "decode-ok", rateLimit: false })
    const token = await tokens.getToken()
    await tokens.dispose()
    expect(token.authorization()).toBe("DPoP abc.DEF-_~+/=")
  })
})

describe("5. an API that echoes the bearer token gets it into no error", () => {
  let api: Server
  let apiUrl: string
  beforeAll(async () => {
    // echoes the Authorization header in its body and challenge, as debug pages and
    // careless gateways do
    api = createServer((req: IncomingMessage, res) => {
      const authorization = req.headers.authorization ?? ""
      const token = authorization.replace(/^Bearer /, "")
      const status = Number(new URL(req.url ?? "/", "http://x").searchParams.get("status") ?? "400")
      res.writeHead(status, {
        "content-type": "application/problem+json",
        "www-authenticate": `Bearer error="invalid_token", error_description="token ${token} rejected"`
      })
      res.end(
        JSON.stringify({
          type: "https://example/bad",
          title: `Bad ${token}`,
          detail: `You sent ${authorization} (${encodeURIComponent(token)})`,
          instance: `/x/${token}`,
          echoed: { header: authorization }
        })
      )
    })
    await new Promise<void>((resolve) => api.listen(0, "127.0.0.1", resolve))
    apiUrl = `http://127.0.0.1:${(api.address() as AddressInfo).port}`
  })
  afterAll(() => closeServer(api))

  for (const status of [400, 401, 403, 500]) {
    it(`HTTP ${status}: ProblemDetailsError body, detail, title, extensions and message hold no token`, async () => {
      const value = `ECHO-${status}-a1b2c3d4e5+/=`
      auth.setDefault(() => issueToken({ access_token: value }))
      const tokens = createTokenSource({
        tokenUrl: auth.tokenUrl,
        clientId: `echo-${status}`,
        rateLimit: false
      })
      const api_ = authFetch(tokens, { baseUrl: apiUrl, problemDetails: true, retry: false })
      const error = await failureOf(api_(`/v1/x?status=${status}`))
      await tokens.dispose()
      auth.setDefault(() => issueToken())
      expect(error).toBeInstanceOf(ProblemDetailsError)
      const problem = error as ProblemDetailsError
      expect(problem.status).toBe(status)
      expect(problem.body).toContain("<redacted>")
      const shown = renderings(error)
      expect(shown).not.toContain(value)
      expect(shown).not.toContain(encodeURIComponent(value))
      expect(shown).not.toContain("a1b2c3d4e5")
    })
  }
})

describe("5. the error answers authFetch hands back carry no echoed token", () => {
  it("a 400/403/500 body echoing the token reaches the caller without it; a 200 body is the API's own", async () => {
    const value = "RAW-ECHO-9f8e7d6c5b"
    const api = await startTokenServer((request) => {
      const status = Number(new URL(request.url, "http://x").searchParams.get("status"))
      return {
        status,
        headers: {
          "www-authenticate": `Bearer error="invalid_token", error_description="${value} rejected"`
        },
        text: `{"seen":"${request.headers.authorization}","again":"${value}"}`
      }
    })
    auth.setDefault(() => issueToken({ access_token: value }))
    const tokens = createTokenSource({ tokenUrl: auth.tokenUrl, clientId: "raw-echo", rateLimit: false })
    const call = authFetch(tokens, { baseUrl: api.url, retry: false })
    try {
      for (const status of [400, 403, 404, 500]) {
        const res = await call(`/v1/x?status=${status}`)
        expect(res.status).toBe(status)
        expect(res.url).toBe(`${api.url}/v1/x?status=${status}`)
        const text = await res.text()
        expect(text).toBe('{"seen":"Bearer <redacted>","again":"<redacted>"}')
        expect(res.headers.get("www-authenticate")).toBe(
          'Bearer error="invalid_token", error_description="<redacted> rejected"'
        )
      }
      const ok = await call("/v1/x?status=200")
      expect(await ok.text()).toContain(value)
    } finally {
      auth.setDefault(() => issueToken())
      await tokens.dispose()
      await api.close()
    }
  })
})

/**
 * A WEX sandbox (with `unauthorizedPaths` when `storm`), a token source for its client and an
 * `authFetch` over its API, given to `run`; all of it closed afterwards.
 */
const withWexSandbox = async (
  setup: { readonly storm: boolean; readonly api?: Omit<AuthFetchOptions, "baseUrl"> },
  run: (env: { readonly sandbox: Sandbox; readonly api: typeof fetch }) => Promise<void>
) => {
  const sandbox = await startSandbox({
    profile: "wex",
    ...(setup.storm ? { faults: { api: { unauthorizedPaths: ["/v1/admin"] } } } : {})
  })
  const tokens = createTokenSource({
    tokenUrl: sandbox.tokenUrl,
    clientId: "sandbox-client",
    clientSecret: "sandbox-secret"
  })
  try {
    await run({ sandbox, api: authFetch(tokens, { ...setup.api, baseUrl: sandbox.baseUrl }) })
  } finally {
    await tokens.dispose()
    await sandbox.close()
  }
}

describe("6. 401 storms do not spend the token budget", () => {
  it("sandbox WEX: 100 requests to a path that always answers 401 cost at most 2 token requests; a legitimate request then succeeds in its timeout", async () => {
    const events: Array<RequestEvent> = []
    await withWexSandbox(
      { storm: true, api: { attemptTimeout: "5 seconds", onEvent: (e) => events.push(e) } },
      async ({ sandbox, api }) => {
        const statuses: Array<number> = []
        for (let i = 0; i < 100; i++) {
          const res = await api("/v1/admin/users")
          statuses.push(res.status)
          await res.arrayBuffer()
        }
        expect(new Set(statuses)).toEqual(new Set([401]))
        const tokenRequests = sandbox.stats().tokenRequests.total
        expect(tokenRequests).toBeLessThanOrEqual(2)
        expect(events.filter((e) => e.type === "unauthorized_after_replay").length).toBe(1)
        expect(events.filter((e) => e.type === "unauthorized_token_kept").length).toBeGreaterThanOrEqual(98)
        const started = Date.now()
        const ok = await api("/v1/consumers/12345")
        expect(ok.status).toBe(200)
        expect(Date.now() - started).toBeLessThan(5_000)
      }
    )
  })

  it("the same storm from 100 concurrent callers costs at most 2 token requests", async () => {
    await withWexSandbox({ storm: true }, async ({ sandbox, api }) => {
      const responses = await Promise.all(Array.from({ length: 100 }, () => api("/v1/admin/users")))
      expect(responses.every((r) => r.status === 401)).toBe(true)
      expect(sandbox.stats().tokenRequests.total).toBeLessThanOrEqual(2)
    })
  })

  it("a revoked token is still replaced at once, revocation after revocation (the cooldown is for failed replays only)", async () => {
    await withWexSandbox({ storm: false }, async ({ sandbox, api }) => {
      for (let round = 0; round < 5; round++) {
        sandbox.revokeAll()
        const res = await api("/v1/consumers/1")
        expect(res.status).toBe(200)
      }
    })
  })

  it("after the cooldown (minted + unauthorizedCooldown), one 401 may re-acquire again: one request per cooldown", async () => {
    await withWexSandbox(
      { storm: true, api: { unauthorizedCooldown: "300 millis" } },
      async ({ sandbox, api }) => {
        await (await api("/v1/admin/x")).arrayBuffer()
        expect(sandbox.stats().tokenRequests.total).toBe(2)
        await new Promise((r) => setTimeout(r, 400))
        for (let i = 0; i < 20; i++) await (await api("/v1/admin/x")).arrayBuffer()
        // one re-acquisition after the cooldown, whatever the machine's speed: at most one more per 300 ms
        expect(sandbox.stats().tokenRequests.total).toBeGreaterThanOrEqual(3)
      }
    )
  })

  it("a spent budget fails fast with RateLimitedError carrying when to retry, well within the request's timeout", async () => {
    const server = await startTokenServer(() => issueToken({ expires_in: 600 }))
    const config = {
      tokenUrl: server.tokenUrl,
      clientId: "spent",
      clientSecret: "s",
      rateLimit: { limit: 2, window: "1 minute" }
    } as const
    const a = createTokenSource({ ...config, scope: "a" })
    const b = createTokenSource({ ...config, scope: "b" })
    const c = createTokenSource({ ...config, scope: "c" })
    try {
      await a.getToken()
      await b.getToken()
      const api = authFetch(c, { baseUrl: server.url, attemptTimeout: "5 seconds" })
      const started = Date.now()
      const error = await failureOf(api("/v1/anything"))
      const elapsed = Date.now() - started
      expect(error).toBeInstanceOf(RateLimitedError)
      const limited = error as RateLimitedError
      expect(limited.source).toBe("client")
      expect(limited.retryAfterMillis).toBeGreaterThan(50_000)
      expect(limited.retryAfterMillis).toBeLessThanOrEqual(60_000)
      // fail fast: no wait for the timeout (5 s), let alone the window (60 s)
      expect(elapsed).toBeLessThan(4_000)
      expect(server.requests.length).toBe(2)
      // the Promise handle does the same with maxWait
      const direct = await failureOf(c.getToken({ maxWait: "1 second" }))
      expect(direct).toBeInstanceOf(RateLimitedError)
    } finally {
      await Promise.all([a.dispose(), b.dispose(), c.dispose()])
      await server.close()
    }
  })
})

describe("7. the token budget is per client, shared by every source of it", () => {
  it("two sources racing for the client's last admission: the loser's caller fails fast, not at its deadline", async () => {
    const server = await startTokenServer(() => ({ ...issueToken(), delayMs: 50 }))
    const config = {
      tokenUrl: server.tokenUrl,
      clientId: "racing",
      clientSecret: "s",
      rateLimit: { limit: 1, window: "1 minute" }
    } as const
    const events: Array<TokenEvent> = []
    const onEvent = (event: TokenEvent) => events.push(event)
    const a = createTokenSource({ ...config, scope: "a", onEvent })
    const b = createTokenSource({ ...config, scope: "b", onEvent })
    try {
      const started = Date.now()
      // both see a free budget; only one request can be admitted
      const results = await Promise.allSettled([
        a.getToken({ maxWait: "10 seconds" }),
        b.getToken({ maxWait: "10 seconds" })
      ])
      const elapsed = Date.now() - started
      expect(results.filter((r) => r.status === "fulfilled").length).toBe(1)
      const lost = results.find((r) => r.status === "rejected") as PromiseRejectedResult
      expect(lost.reason).toBeInstanceOf(RateLimitedError)
      expect((lost.reason as RateLimitedError).retryAfterMillis).toBeGreaterThan(10_000)
      // waiting for the deadline would have taken 10 s
      expect(elapsed).toBeLessThan(10_000)
      expect(server.requests.length).toBe(1)
      // and no request is left waiting a minute for the budget, for nobody
      expect(events.filter((e) => e.type === "rate_limited")).toEqual([])
    } finally {
      await Promise.all([a.dispose(), b.dispose()])
      await server.close()
    }
  })

  it("three sources of one client that differ in params spend one budget of 3 per minute", () =>
    Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const server = yield* Effect.acquireRelease(
            Effect.promise(() => startTokenServer()),
            (s) => Effect.promise(() => s.close())
          )
          const config = {
            tokenUrl: server.tokenUrl,
            clientId: "shared-client",
            clientSecret: "s",
            rateLimit: { limit: 3, window: "1 minute" }
          } as const
          const sources = yield* Effect.all(
            ["1", "2", "3"].map((tenant) => makeSource({ ...config, params: { tenant } }))
          )
          // each source gets a token, then throws it away and asks again, five times
          const churn = Effect.forEach(
            sources,
            (source) =>
              Effect.gen(function* () {
                for (let i = 0; i < 5; i++) yield* source.invalidate(yield* source.get)
              }),
            { concurrency: "unbounded" }
          )
          const fiber = yield* Effect.forkChild(churn)
          yield* realWait(200)
          // within the first minute: the client's budget, not three budgets
          expect(server.requests.length).toBe(3)
          yield* Fiber.interrupt(fiber)
        }).pipe(Effect.provide(TestClock.layer()))
      )
    ))
})

describe("8. near-zero lifetimes do not spin", () => {
  it("expires_in below one second is refused as unusable", async () => {
    auth.enqueue(issueToken({ expires_in: 1e-9 }))
    const tokens = createTokenSource({ tokenUrl: auth.tokenUrl, clientId: "tiny", rateLimit: false })
    const error = await failureOf(tokens.getToken())
    await tokens.dispose()
    expect(error).toBeInstanceOf(InvalidTokenResponseError)
    expect((error as InvalidTokenResponseError).reason).toContain("expires_in")
  })

  it("1-second tokens with no caller: a bounded number of requests per minute (TestClock), even with rateLimit false", () =>
    Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const server = yield* Effect.acquireRelease(
            Effect.promise(() => startTokenServer(() => issueToken({ expires_in: 1 }))),
            (s) => Effect.promise(() => s.close())
          )
          const tokens = yield* makeSource({ tokenUrl: server.tokenUrl, clientId: "short", rateLimit: false })
          yield* tokens.get
          for (let i = 0; i < 600; i++) {
            yield* TestClock.adjust("100 millis")
            if (i % 20 === 0) yield* realWait(5)
          }
          yield* realWait(50)
          // one token for the caller, at most one refresh of it ahead of time, and no loop
          expect(server.requests.length).toBeLessThanOrEqual(2)
        }).pipe(Effect.provide(TestClock.layer()))
      )
    ))

  it("1-second tokens under steady use: at most one background refresh a second", () =>
    Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const server = yield* Effect.acquireRelease(
            Effect.promise(() => startTokenServer(() => issueToken({ expires_in: 1 }))),
            (s) => Effect.promise(() => s.close())
          )
          const tokens = yield* makeSource({
            tokenUrl: server.tokenUrl,
            clientId: "short-busy",
            rateLimit: false
          })
          for (let i = 0; i < 600; i++) {
            const fiber = yield* Effect.forkChild(tokens.get)
            yield* driveUntilDone(fiber, "1 millis", 50)
            yield* TestClock.adjust("100 millis")
            if (i % 10 === 0) yield* realWait(3)
          }
          yield* realWait(50)
          // 60 s of use: about one token a second, never more than one a second plus the first
          expect(server.requests.length).toBeLessThanOrEqual(61)
          expect(server.requests.length).toBeGreaterThan(10)
        }).pipe(Effect.provide(TestClock.layer()))
      )
    ))
})

describe("11. params must not repeat a parameter the engine sets", () => {
  for (const name of [...Config.ENGINE_PARAMETERS]) {
    it(`params.${name} is refused when the source is created`, () => {
      const create = () =>
        createTokenSource({ tokenUrl: "https://auth.example/t", clientId: "c", params: { [name]: "x" } })
      expect(create).toThrow(InvalidConfigError)
      expect(create).toThrow(`params.${name}`)
    })
  }

  it("a configuration that is not an object is an InvalidConfigError, not a TypeError", () => {
    expect(() => createTokenSource(null as never)).toThrow(InvalidConfigError)
    expect(() => createTokenSource(undefined as never)).toThrow(/configuration must be an object/)
  })
})

describe("12. loopback means localhost, 127.0.0.0/8 and [::1] only", () => {
  it("http://evil.localhost is not loopback (Node resolves it through DNS)", () => {
    for (const url of [
      "http://evil.localhost/t",
      "http://localhost.evil.example/t",
      "http://127.0.0.1.evil/t"
    ]) {
      expect(Config.isSecureOrigin(url)).toBe(false)
      expect(() => createTokenSource({ tokenUrl: url, clientId: "c" })).toThrow(InvalidConfigError)
      expect(() =>
        authFetch({ getToken: async () => undefined as never, invalidate: async () => {} }, { baseUrl: url })
      ).toThrow(InvalidConfigError)
    }
    for (const url of ["http://localhost:1/t", "http://127.1.2.3/t", "http://[::1]:8/t"]) {
      expect(Config.isSecureOrigin(url)).toBe(true)
    }
  })
})

describe("14. typed OAuth codes; a non-OAuth error body is kept, scrubbed", () => {
  it("OAuthError.code is the union of the specifications' codes and any string", () => {
    expectTypeOf<OAuthError["code"]>().toExtend<string>()
    expectTypeOf<"invalid_grant">().toExtend<OAuthError["code"]>()
    expectTypeOf<"use_dpop_nonce">().toExtend<OAuthError["code"]>()
    expectTypeOf<"vendor_code">().toExtend<OAuthError["code"]>()
  })

  it("a gateway's problem+json from the token endpoint keeps its title and detail, without the secret it echoes", async () => {
    const SECRET = "GATEWAY-ECHO-SECRET-77"
    auth.enqueue({
      status: 403,
      headers: { "content-type": "application/problem+json" },
      text: JSON.stringify({ title: "Forbidden by WAF", detail: `rule 42 matched client_secret=${SECRET}` })
    })
    const tokens = createTokenSource({
      tokenUrl: auth.tokenUrl,
      clientId: "waf",
      clientSecret: SECRET,
      rateLimit: false
    })
    const error = await failureOf(tokens.getToken())
    await tokens.dispose()
    expect(error).toBeInstanceOf(TokenEndpointError)
    const e = error as TokenEndpointError
    expect(e.status).toBe(403)
    expect(e.title).toBe("Forbidden by WAF")
    expect(e.detail).toBe("rule 42 matched client_secret=<redacted>")
    expect(e.message).toContain("Forbidden by WAF")
    expect(renderings(error)).not.toContain(SECRET)
  })
})

describe("events carry no credential", () => {
  it("a run through every failure above leaves only digests in events", async () => {
    const { events, onEvent } = eventLog()
    auth.enqueue({ status: 302, headers: { location: "http://127.0.0.1:9/x?code=STOLEN" }, text: "" })
    const tokens = createTokenSource({
      tokenUrl: auth.tokenUrl,
      clientId: "events",
      clientSecret: "EVENT-SECRET",
      grant: Grant.authorizationCode({ code: "EVENT-CODE-1", redirectUri: "http://127.0.0.1/cb" }),
      rateLimit: false,
      onEvent
    })
    await failureOf(tokens.getToken())
    await tokens.dispose()
    const text = JSON.stringify(events)
    expect(events.length).toBeGreaterThan(0)
    for (const needle of ["EVENT-SECRET", "EVENT-CODE-1", "STOLEN"]) expect(text).not.toContain(needle)
  })
})
