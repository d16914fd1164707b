/**
 * The request policy beyond the shared scenarios: retry decisions, the retry
 * budget, timeouts, problem details, URL resolution, origins, and the timing
 * rules on TestClock through AuthHttpClient.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Layer } from "effect"
import { FetchHttpClient, HttpClient } from "effect/http"
import { TestClock } from "effect/testing"
import { expect } from "vitest"
import {
  AuthHttpClient,
  authFetch,
  Bearer,
  compose,
  createTokenSource,
  InvalidConfigError,
  Middleware,
  ProblemDetailsError,
  RedirectError,
  type RequestEvent,
  RequestTimeoutError,
  RetriesExhaustedError,
  RetryPolicy,
  withAuth,
  withProblemDetails,
  withRetry,
  withTimeout
} from "../src/index.ts"
import { WEX_EXPIRED_BODY } from "./scenarios/scenarios.ts"
import { realWait } from "./support/effect.ts"
import { startTokenServer, type TokenServer } from "./support/tokenServer.ts"

const servers = Effect.acquireRelease(
  Effect.promise(async () => {
    const [auth, api] = await Promise.all([startTokenServer(), startTokenServer()])
    api.setDefault(() => ({ status: 200, body: { ok: true } }))
    const tokens = createTokenSource({ tokenUrl: auth.tokenUrl, clientId: "m", clientSecret: "s" })
    return { auth, api, tokens }
  }),
  ({ auth, api, tokens }) => Effect.promise(() => Promise.all([tokens.dispose(), auth.close(), api.close()]))
)

const withServers = async <A>(
  f: (s: { auth: TokenServer; api: TokenServer; tokens: ReturnType<typeof createTokenSource> }) => Promise<A>
) => Effect.runPromise(Effect.scoped(Effect.flatMap(servers, (s) => Effect.promise(() => f(s)))))

describe("RetryPolicy.decide", () => {
  const get = { method: "GET", headers: new Headers(), replayable: true }
  const post = { method: "POST", headers: new Headers(), replayable: true }
  const response = (status: number, headers: Record<string, string> = {}) =>
    ({ _tag: "Response", response: new Response(null, { status, headers }) }) as const

  it("retries the transient statuses of idempotent requests, with full jitter under the cap", () => {
    for (const status of [429, 502, 503, 504]) {
      const d = RetryPolicy.decide(get, response(status), 1, 0, { baseDelay: "100 millis" }, 0.5, 0)
      assert.deepStrictEqual(d, { _tag: "Retry", delayMillis: 50 })
    }
    for (const status of [200, 400, 401, 404, 500]) {
      assert.strictEqual(RetryPolicy.decide(get, response(status), 1, 0, undefined, 0.5, 0)._tag, "Done")
    }
    const third = RetryPolicy.decide(
      get,
      { _tag: "NetworkError" },
      2,
      0,
      { baseDelay: "100 millis" },
      0.999,
      0
    )
    assert.deepStrictEqual(third, { _tag: "Retry", delayMillis: 199 })
  })

  it("needs idempotency, except for 429", () => {
    assert.strictEqual(RetryPolicy.decide(post, response(503), 1, 0, undefined, 0.5, 0)._tag, "Done")
    assert.strictEqual(
      RetryPolicy.decide(post, { _tag: "NetworkError" }, 1, 0, undefined, 0.5, 0)._tag,
      "Done"
    )
    assert.strictEqual(RetryPolicy.decide(post, response(429), 1, 0, undefined, 0.5, 0)._tag, "Retry")
    const keyed = { ...post, headers: new Headers({ "Idempotency-Key": "k" }) }
    assert.strictEqual(RetryPolicy.decide(keyed, response(503), 1, 0, undefined, 0.5, 0)._tag, "Retry")
    for (const method of ["PUT", "DELETE", "HEAD", "OPTIONS"]) {
      assert.isTrue(RetryPolicy.isIdempotent(method, new Headers()))
    }
    assert.isFalse(RetryPolicy.isIdempotent("PATCH", new Headers()))
  })

  it("Retry-After wins; too long, too late or too many gives up", () => {
    const d = RetryPolicy.decide(get, response(503, { "retry-after": "3" }), 1, 0, undefined, 0.1, 0)
    assert.deepStrictEqual(d, { _tag: "Retry", delayMillis: 3000 })
    assert.deepStrictEqual(
      RetryPolicy.decide(get, response(429, { "retry-after": "3600" }), 1, 0, undefined, 0.1, 0),
      { _tag: "GiveUp", reason: "retry_after_too_long" }
    )
    assert.deepStrictEqual(RetryPolicy.decide(get, response(503), 3, 0, { maxRetries: 2 }, 0.1, 0), {
      _tag: "GiveUp",
      reason: "attempts"
    })
    assert.deepStrictEqual(
      RetryPolicy.decide(
        get,
        response(503, { "retry-after": "5" }),
        1,
        58_000,
        { maxElapsed: "60 seconds" },
        0.1,
        0
      ),
      { _tag: "GiveUp", reason: "deadline" }
    )
    assert.deepStrictEqual(
      RetryPolicy.decide({ ...get, replayable: false }, response(503), 1, 0, undefined, 0.1, 0),
      { _tag: "GiveUp", reason: "not_replayable" }
    )
  })

  it("RetryBudget spends on retries, refills on success, and refuses when empty", () => {
    const budget = new RetryPolicy.RetryBudget({ capacity: 10, retryCost: 5, timeoutCost: 10 })
    assert.isTrue(budget.withdraw("retry"))
    assert.isFalse(budget.withdraw("timeout"))
    assert.isTrue(budget.withdraw("retry"))
    assert.isFalse(budget.withdraw("retry"))
    budget.deposit()
    assert.strictEqual(budget.available, 1)
  })
})

describe("fetch middleware", () => {
  it("resolves paths under the base URL's path, not its root", () => {
    assert.strictEqual(Middleware.resolveUrl("https://x/api", "/v1/a"), "https://x/api/v1/a")
    assert.strictEqual(Middleware.resolveUrl("https://x/api/", "v1/a"), "https://x/api/v1/a")
    assert.strictEqual(Middleware.resolveUrl("https://x/api", "https://y/z"), "https://y/z")
    assert.strictEqual(Middleware.resolveUrl(undefined, "/v1"), "/v1")
    assert.strictEqual(Middleware.resolveUrl("https://x/api", "//y/z"), "https://x/api/y/z")
    assert.strictEqual(Middleware.resolveUrl("https://x/api//", ""), "https://x/api/")
  })

  it("matches allowed origins exactly: scheme, host and port, not a prefix of the host", () => {
    const allowed = Bearer.originMatcher(["https://api.example.com/v1", "http://127.0.0.1:8080"])
    const yes = ["https://api.example.com/x", "HTTPS://API.Example.com:443/", "http://127.0.0.1:8080/a?b#c"]
    const no = [
      "https://api.example.com.evil.test/x",
      "https://api.example.com:8443/x",
      "http://api.example.com/x",
      "https://user:pw@api.example.com/x",
      "http://127.0.0.1/x",
      "data:text/plain,api.example.com"
    ]
    for (const url of yes) assert.isTrue(allowed(new URL(url)), url)
    for (const url of no) assert.isFalse(allowed(new URL(url)), url)
    assert.isFalse(Bearer.originMatcher(["http://127.0.0.1:808"])(new URL("http://127.0.0.1:8080/x")))
  })

  it("refuses to send tokens to plain-http or unnamed origins", () => {
    const tokens = { getToken: async () => undefined as never, invalidate: async () => {} }
    expect(() => authFetch(tokens, {})).toThrow(InvalidConfigError)
    expect(() => authFetch(tokens, { baseUrl: "http://api.example.com" })).toThrow(/must be https/)
    expect(() => withAuth(tokens, { origins: ["http://10.0.0.1"] })).toThrow(InvalidConfigError)
    expect(() => authFetch(tokens, { baseUrl: "http://127.0.0.1:1/api" })).not.toThrow()
  })

  it("attaches no token to an origin not allowed, and leaves a caller's Authorization alone", () =>
    withServers(async ({ auth, api, tokens }) => {
      const other = await startTokenServer()
      other.setDefault(() => ({ status: 200, body: {} }))
      const fetchApi = authFetch(tokens, { baseUrl: `${api.url}/api` })
      await fetchApi(`${other.url}/public`)
      await fetchApi("/v1/own", { headers: { authorization: "Basic abc" } })
      expect(other.requests[0]!.headers.authorization).toBeUndefined()
      expect(api.requests[0]!.headers.authorization).toBe("Basic abc")
      expect(auth.requests).toHaveLength(0)
      await other.close()
    }))

  it("compose(withRetry, withAuth) gives the same behaviour as authFetch, Request bodies included", () =>
    withServers(async ({ auth, api, tokens }) => {
      await tokens.getToken()
      const composed = compose(
        withRetry({ baseDelay: "10 millis" }),
        withAuth(tokens, { origins: [api.url] }),
        withTimeout("5 seconds")
      )(fetch)
      api.enqueue({ status: 503 }, { status: 401 })
      const response = await composed(
        new Request(`${api.url}/api/v1/x`, {
          method: "PUT",
          body: JSON.stringify({ a: 1 }),
          headers: { "content-type": "application/json" }
        })
      )
      expect(response.status).toBe(200)
      expect(api.requests.map((r) => r.rawBody)).toEqual(['{"a":1}', '{"a":1}', '{"a":1}'])
      expect(auth.requests).toHaveLength(2)
    }))

  it("a stream in init.body stays one-shot even when the input is a Request (the ky adapter relies on it)", () =>
    withServers(async ({ auth, api, tokens }) => {
      await tokens.getToken()
      api.enqueue({ status: 401 })
      const body = new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(new TextEncoder().encode("once"))
          controller.close()
        }
      })
      const response = await authFetch(tokens, { baseUrl: api.url })(
        new Request(`${api.url}/upload`, { method: "POST", body: "ignored" }),
        { body, duplex: "half" } as RequestInit
      )
      expect(response.status).toBe(401)
      expect(api.requests.map((r) => r.rawBody)).toEqual(["once"])
      expect(auth.requests).toHaveLength(1)
    }))

  it("a redirect loop fails with RedirectError, and is not retried", () =>
    withServers(async ({ api, tokens }) => {
      api.setDefault(() => ({ status: 302, headers: { location: "/loop" } }))
      const error = await authFetch(tokens, { baseUrl: api.url, maxRedirects: 2 })("/loop").catch(
        (e: unknown) => e
      )
      expect(error).toBeInstanceOf(RedirectError)
      expect(error).toBeInstanceOf(TypeError)
      expect(error).toMatchObject({ reason: "too_many" })
      expect(api.requests).toHaveLength(3)
    }))

  it("only TypeErrors from the fetch underneath count as network failures", () =>
    withServers(async ({ api, tokens }) => {
      let calls = 0
      const failing: typeof fetch = async () => {
        calls++
        throw new RangeError("the client's own error")
      }
      const error = await authFetch(tokens, { baseUrl: api.url, fetch: failing })("/x").catch(
        (e: unknown) => e
      )
      expect(error).toBeInstanceOf(RangeError)
      expect(calls).toBe(1)
    }))

  it("withTimeout fails with RequestTimeoutError and aborts the request", () =>
    withServers(async ({ api }) => {
      api.enqueue({ status: 200, delayMs: 500 })
      const error = await withTimeout("50 millis")(fetch)(`${api.url}/slow`).catch((e: unknown) => e)
      expect(error).toBeInstanceOf(RequestTimeoutError)
      expect((error as RequestTimeoutError).url).toBe(`${api.url}/slow`)
    }))

  it("idempotent requests that keep failing on the network give up with RetriesExhaustedError", () =>
    withServers(async ({ tokens, api }) => {
      const events: Array<RequestEvent> = []
      const closed = await startTokenServer()
      const deadUrl = closed.url
      await closed.close()
      const dead = authFetch(tokens, {
        origins: [deadUrl],
        retry: { maxRetries: 2, baseDelay: "5 millis" },
        onEvent: (e) => events.push(e)
      })
      await tokens.getToken()
      const error = await dead(`${deadUrl}/x?key=SECRET`).catch((e: unknown) => e)
      expect(error).toBeInstanceOf(RetriesExhaustedError)
      expect(error).toMatchObject({ attempts: 3, reason: "attempts", method: "GET", url: `${deadUrl}/x` })
      expect(String(error)).not.toContain("SECRET")
      expect(events.filter((e) => e.type === "request_retried")).toHaveLength(2)
      // a POST is not retried: the raw fetch error comes back
      const post = await dead(`${deadUrl}/x`, { method: "POST", body: "{}" }).catch((e: unknown) => e)
      expect(post).toBeInstanceOf(TypeError)
      void api
    }))

  it("a shared retry budget stops retries across requests during an outage", () =>
    withServers(async ({ tokens, api }) => {
      api.setDefault(() => ({ status: 503 }))
      const events: Array<RequestEvent> = []
      const budget = new RetryPolicy.RetryBudget({ capacity: 10, retryCost: 5 })
      const fetchApi = authFetch(tokens, {
        baseUrl: api.url,
        retry: { budget, baseDelay: "1 millis", maxRetries: 5 },
        onEvent: (e) => events.push(e)
      })
      const statuses = []
      for (let i = 0; i < 4; i++) statuses.push((await fetchApi("/x")).status)
      expect(statuses).toEqual([503, 503, 503, 503])
      // 2 retries paid for in total, then every request is sent once
      expect(api.requests).toHaveLength(4 + 2)
      expect(events.filter((e) => e.type === "request_gave_up" && e.reason === "budget").length).toBe(4)
    }))

  it("withProblemDetails turns WEX's malformed 401 into a typed ProblemDetailsError", () =>
    withServers(async ({ api }) => {
      api.enqueue({
        status: 401,
        text: WEX_EXPIRED_BODY,
        headers: { "content-type": "application/problem+json" }
      })
      const error = await withProblemDetails()(fetch)(`${api.url}/v1/consumers/1?token=SECRET`).catch(
        (e: unknown) => e
      )
      expect(error).toBeInstanceOf(ProblemDetailsError)
      expect(error).toMatchObject({
        status: 401,
        type: "https://platform.benefits.wexglobal.com/api/dksj",
        title: "Unauthorized",
        detail: "The request requires user authentication.",
        instance: "path/to/resource"
      })
      expect(JSON.stringify(error)).not.toContain("SECRET")
    }))

  it("authFetch with problemDetails: true throws after the policy, passes 2xx through", () =>
    withServers(async ({ api, tokens }) => {
      api.enqueue({ status: 404, body: { type: "about:blank", title: "Not Found" } })
      const fetchApi = authFetch(tokens, { baseUrl: api.url, problemDetails: true })
      await expect(fetchApi("/missing")).rejects.toMatchObject({ _tag: "ProblemDetailsError", status: 404 })
      expect((await fetchApi("/ok")).status).toBe(200)
    }))

  it("a token endpoint failure reaches the caller as the typed token error", () =>
    withServers(async ({ auth, api }) => {
      auth.setDefault(() => ({ status: 401, body: { error: "invalid_client" } }))
      const tokens = createTokenSource({ tokenUrl: auth.tokenUrl, clientId: "bad", clientSecret: "bad" })
      const error = await authFetch(tokens, { baseUrl: api.url })("/x").catch((e: unknown) => e)
      expect(error).toMatchObject({ _tag: "OAuthError", code: "invalid_client" })
      expect(api.requests).toHaveLength(0)
      await tokens.dispose()
    }))
})

describe("AuthHttpClient on TestClock", () => {
  const clientLayer = (tokens: ReturnType<typeof createTokenSource>, origin: string) =>
    Layer.succeed(HttpClient.HttpClient, AuthHttpClient.make(tokens, { origins: [origin] })).pipe(
      Layer.provideMerge(FetchHttpClient.layer)
    )

  it.effect("429 + Retry-After: 1 is not retried before 1 s of the program's clock", () =>
    Effect.gen(function* () {
      const { api, tokens } = yield* servers
      yield* Effect.promise(() => tokens.getToken())
      api.enqueue({ status: 429, headers: { "retry-after": "1" } })
      const fiber = yield* Effect.gen(function* () {
        const client = yield* HttpClient.HttpClient
        return (yield* client.get(`${api.url}/v1/limited`)).status
      }).pipe(Effect.provide(clientLayer(tokens, api.url)), Effect.forkChild)
      yield* Effect.promise(() => api.waitForRequests(1))
      yield* realWait(20)
      yield* TestClock.adjust("999 millis")
      yield* realWait(50)
      assert.strictEqual(api.requests.length, 1)
      yield* TestClock.adjust("1 millis")
      assert.strictEqual(yield* Fiber.join(fiber), 200)
      assert.strictEqual(api.requests.length, 2)
    })
  )

  it.effect("interrupting during the backoff wait ends the request at once", () =>
    Effect.gen(function* () {
      const { api, tokens } = yield* servers
      api.enqueue({ status: 503, headers: { "retry-after": "30" } })
      const fiber = yield* Effect.gen(function* () {
        const client = yield* HttpClient.HttpClient
        return yield* client.get(`${api.url}/v1/slow`)
      }).pipe(Effect.provide(clientLayer(tokens, api.url)), Effect.forkChild)
      yield* Effect.promise(() => api.waitForRequests(1))
      yield* realWait(20)
      yield* Fiber.interrupt(fiber)
      const exit = yield* Fiber.await(fiber)
      assert.isTrue(Exit.hasInterrupts(exit))
      yield* TestClock.adjust("60 seconds")
      yield* realWait(20)
      assert.strictEqual(api.requests.length, 1)
    })
  )

  it.effect("a token endpoint failure arrives as HttpClientError with our typed cause", () =>
    Effect.gen(function* () {
      const { api, auth } = yield* servers
      auth.setDefault(() => ({ status: 400, body: { error: "invalid_scope" } }))
      const tokens = createTokenSource({ tokenUrl: auth.tokenUrl, clientId: "x", clientSecret: "y" })
      const error = yield* Effect.gen(function* () {
        const client = yield* HttpClient.HttpClient
        return yield* client.get(`${api.url}/v1/x`)
      }).pipe(Effect.provide(clientLayer(tokens, api.url)), Effect.flip)
      assert.strictEqual(error._tag, "HttpClientError")
      assert.strictEqual((error.reason as { cause?: { code?: string } }).cause?.code, "invalid_scope")
      yield* Effect.promise(() => tokens.dispose())
    })
  )
})

describe("runtimes without AbortSignal.any (Next's Edge runtime)", () => {
  it("a caller's signal still aborts the request", () =>
    withServers(async ({ api, tokens }) => {
      const original = AbortSignal.any
      ;(AbortSignal as { any?: unknown }).any = undefined
      try {
        api.enqueue({ status: 200, delayMs: 2000 })
        const controller = new AbortController()
        const pending = authFetch(tokens, { baseUrl: api.url })("/slow", { signal: controller.signal })
        await api.waitForRequests(1)
        controller.abort()
        const error = await pending.catch((e: unknown) => e)
        expect((error as Error).name).toBe("AbortError")
        expect(
          (await authFetch(tokens, { baseUrl: api.url })("/ok", { signal: new AbortController().signal }))
            .status
        ).toBe(200)
      } finally {
        AbortSignal.any = original
      }
    }))
})
