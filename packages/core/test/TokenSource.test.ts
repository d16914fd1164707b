/**
 * The lifecycle rules of a token source, each on Effect's TestClock against a
 * real token endpoint on 127.0.0.1.
 */
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Exit, Fiber, Redacted } from "effect"
import { TestClock } from "effect/testing"
import type { TokenSourceConfig } from "../src/Config.ts"
import { driveUntilDone, eventLog, eventually, makeSource, realWait } from "./support/effect.ts"
import { issueToken, type Reply, startTokenServer, type TokenServer } from "./support/tokenServer.ts"

const server = Effect.acquireRelease(
  Effect.promise(() => startTokenServer()),
  (s) => Effect.promise(() => s.close())
)

const configFor = (s: TokenServer, extra: Partial<TokenSourceConfig> = {}): TokenSourceConfig => ({
  tokenUrl: s.tokenUrl,
  clientId: "client-1",
  clientSecret: "secret-1",
  ...extra
})

const fail503: Reply = { status: 503, body: { message: "down" } }

describe("single-flight", () => {
  it.effect("1,000 concurrent gets on a cold source make exactly 1 token request", () =>
    Effect.gen(function* () {
      const s = yield* server
      s.enqueue({ ...issueToken(), delayMs: 30 })
      const tokens = yield* makeSource(configFor(s))
      const results = yield* Effect.all(
        Array.from({ length: 1000 }, () => tokens.get),
        { concurrency: "unbounded" }
      )
      assert.strictEqual(s.requests.length, 1)
      assert.strictEqual(new Set(results.map((t) => t.id)).size, 1)
    })
  )

  it.effect("a caller that gives up does not cancel the request for the others", () =>
    Effect.gen(function* () {
      const s = yield* server
      s.enqueue({ ...issueToken(), delayMs: 50 })
      const tokens = yield* makeSource(configFor(s))
      const impatient = yield* Effect.forkChild(tokens.get)
      const patient = yield* Effect.forkChild(tokens.get)
      yield* Effect.promise(() => s.waitForRequests(1))
      yield* Fiber.interrupt(impatient)
      const token = yield* Fiber.join(patient)
      assert.strictEqual(s.requests.length, 1)
      assert.isTrue(token.reveal().startsWith("at-"))
    })
  )
})

describe("freshness", () => {
  it.effect(
    "expires_in 5 with the default margin: 1,000 calls over its lifetime cause at most 2 requests",
    () =>
      Effect.gen(function* () {
        const s = yield* server
        s.setDefault(() => issueToken({ expires_in: 5 }))
        const tokens = yield* makeSource(configFor(s))
        for (let i = 0; i < 1000; i++) {
          yield* tokens.get
          yield* TestClock.adjust("5 millis")
          if (i % 100 === 0) yield* realWait(2)
        }
        assert.isAtMost(s.requests.length, 2)
        assert.isAtLeast(s.requests.length, 1)
      })
  )

  it.effect("refreshes ahead in the background, so callers never wait past the first token", () =>
    Effect.gen(function* () {
      const s = yield* server
      const { events, onEvent } = eventLog()
      const tokens = yield* makeSource(configFor(s, { onEvent }))
      const first = yield* tokens.get
      // refreshAt lies in the last part of the fresh window, before staleAt (540 s)
      assert.isAbove(first.refreshAt, 400_000)
      assert.isBelow(first.refreshAt, first.staleAt)
      assert.strictEqual(first.staleAt, 540_000)
      yield* TestClock.adjust(Duration.millis(first.refreshAt - 1))
      yield* realWait(20)
      assert.strictEqual(s.requests.length, 1)
      yield* TestClock.adjust("2 millis")
      yield* Effect.promise(() => s.waitForRequests(2))
      yield* eventually(() => events.some((e) => e.type === "token_acquired" && e.reason === "refresh_ahead"))
      const second = yield* tokens.get
      assert.notStrictEqual(second.id, first.id)
      assert.strictEqual(s.requests.length, 2)
    })
  )

  it.effect("refresh points are jittered across instances", () =>
    Effect.gen(function* () {
      const s = yield* server
      const points = new Set<number>()
      for (let i = 0; i < 8; i++) {
        const tokens = yield* makeSource(configFor(s, { clientId: `client-${i}`, rateLimit: false }))
        points.add((yield* tokens.get).refreshAt)
      }
      assert.isAtLeast(points.size, 6)
    })
  )

  it.effect("an absurd expires_in is clamped to ten years, so the token prints and nothing spins", () =>
    Effect.gen(function* () {
      const s = yield* server
      s.enqueue({ status: 200, body: { access_token: "forever", expires_in: 1e308 } })
      const token = yield* (yield* makeSource(configFor(s))).get
      assert.strictEqual(token.expiresAt - token.receivedAt, 10 * 365 * 24 * 3600 * 1000)
      assert.include(String(token), "AccessToken(#")
      yield* TestClock.adjust("1 hour")
      yield* realWait(20)
      assert.strictEqual(s.requests.length, 1)
    })
  )

  it.effect("a missing expires_in uses the documented default of 300 s", () =>
    Effect.gen(function* () {
      const s = yield* server
      s.enqueue({ status: 200, body: { access_token: "no-expiry", token_type: "Bearer" } })
      const token = yield* (yield* makeSource(configFor(s))).get
      assert.strictEqual(token.expiresAt - token.receivedAt, 300_000)
    })
  )
})

describe("fail-static refresh", () => {
  it.effect("a failing background refresh keeps serving the valid token and retries with backoff", () =>
    Effect.gen(function* () {
      const s = yield* server
      const { events, onEvent } = eventLog()
      s.enqueue(issueToken())
      s.setDefault(() => fail503)
      const tokens = yield* makeSource(configFor(s, { onEvent, tokenRequestRetry: { maxRetries: 1 } }))
      const first = yield* tokens.get
      yield* TestClock.adjust(Duration.millis(first.refreshAt + 1))
      yield* Effect.promise(() => s.waitForRequests(2))
      // Until expiry, every caller gets the still-valid token without an error.
      for (let t = first.refreshAt; t < first.expiresAt - 2_000; t += 1_000) {
        const token = yield* tokens.get
        assert.strictEqual(token.id, first.id)
        yield* TestClock.adjust("1 second")
        yield* realWait(1)
      }
      // The refresh was retried with backoff, not hammered: more than a couple
      // of attempts over ~80 s, far fewer than one per second.
      const attempts = s.requests.length - 1
      assert.isAtLeast(attempts, 4)
      assert.isAtMost(attempts, 60)
      assert.isTrue(events.some((e) => e.type === "refresh_failed_serving_cached"))
      // The server recovers: the next refresh attempt succeeds and callers move on.
      s.setDefault(() => issueToken())
      yield* TestClock.adjust("1 second")
      const recovered = yield* Effect.gen(function* () {
        for (let i = 0; i < 200; i++) {
          const token = yield* tokens.get
          if (token.id !== first.id) return token
          yield* TestClock.adjust("1 second")
          yield* realWait(2)
        }
        return first
      })
      assert.notStrictEqual(recovered.id, first.id)
    })
  )

  it.effect("once the token has expired, callers that need a new one see the error", () =>
    Effect.gen(function* () {
      const s = yield* server
      s.enqueue(issueToken({ expires_in: 60 }))
      s.setDefault(() => fail503)
      const tokens = yield* makeSource(configFor(s, { tokenRequestRetry: { maxRetries: 1 } }))
      yield* tokens.get
      yield* TestClock.adjust("61 seconds")
      const fiber = yield* Effect.forkChild(tokens.get)
      const exit = yield* driveUntilDone(fiber, "1 second")
      assert.isTrue(Exit.isFailure(exit))
      const error = yield* Effect.flip(Fiber.join(fiber))
      assert.strictEqual(error._tag, "TokenEndpointError")
    })
  )
})

describe("token endpoint failures", () => {
  it.effect("503, 503, 200: success after backoff", () =>
    Effect.gen(function* () {
      const s = yield* server
      s.enqueue(fail503, fail503, issueToken())
      const tokens = yield* makeSource(configFor(s))
      const fiber = yield* Effect.forkChild(tokens.get)
      const exit = yield* driveUntilDone(fiber, "50 millis")
      assert.isTrue(Exit.isSuccess(exit))
      assert.strictEqual(s.requests.length, 3)
    })
  )

  it.effect("429 with Retry-After: 2 — the next attempt is not sent before 2 s", () =>
    Effect.gen(function* () {
      const s = yield* server
      s.enqueue({ status: 429, headers: { "retry-after": "2" }, body: { error: "slow_down" } }, issueToken())
      const tokens = yield* makeSource(configFor(s))
      const fiber = yield* Effect.forkChild(tokens.get)
      yield* Effect.promise(() => s.waitForRequests(1))
      yield* realWait(10)
      yield* TestClock.adjust("1999 millis")
      yield* realWait(50)
      assert.strictEqual(s.requests.length, 1)
      yield* TestClock.adjust("1 millis")
      yield* Effect.promise(() => s.waitForRequests(2))
      const token = yield* Fiber.join(fiber)
      assert.isTrue(token.reveal().startsWith("at-"))
    })
  )

  it.effect("429 with an HTTP-date Retry-After is honoured too", () =>
    Effect.gen(function* () {
      const s = yield* server
      // TestClock starts at the epoch: ask for 3 s after it.
      // The server's own Date says it is the epoch too (Retry-After is read against it).
      s.enqueue(
        {
          status: 429,
          headers: { "retry-after": new Date(3_000).toUTCString(), date: new Date(0).toUTCString() }
        },
        issueToken()
      )
      const tokens = yield* makeSource(configFor(s))
      const fiber = yield* Effect.forkChild(tokens.get)
      yield* Effect.promise(() => s.waitForRequests(1))
      yield* realWait(10)
      yield* TestClock.adjust("2900 millis")
      yield* realWait(50)
      assert.strictEqual(s.requests.length, 1)
      yield* TestClock.adjust("200 millis")
      yield* Fiber.join(fiber)
      assert.strictEqual(s.requests.length, 2)
    })
  )

  it.effect("a Retry-After longer than maxRetryAfter gives up with RateLimitedError", () =>
    Effect.gen(function* () {
      const s = yield* server
      s.enqueue({ status: 429, headers: { "retry-after": "3600" } })
      const error = yield* Effect.flip((yield* makeSource(configFor(s))).get)
      assert.strictEqual(error._tag, "RateLimitedError")
      assert.strictEqual(error._tag === "RateLimitedError" && error.retryAfterMillis, 3_600_000)
      assert.strictEqual(s.requests.length, 1)
    })
  )

  for (const code of ["invalid_client", "invalid_grant", "unsupported_grant_type", "invalid_scope"]) {
    it.effect(`${code}: OAuthError at once after exactly 1 request`, () =>
      Effect.gen(function* () {
        const s = yield* server
        s.setDefault(() => ({
          status: code === "invalid_client" ? 401 : 400,
          body: { error: code, error_description: "no" }
        }))
        const error = yield* Effect.flip((yield* makeSource(configFor(s))).get)
        assert.strictEqual(error._tag, "OAuthError")
        assert.strictEqual(error._tag === "OAuthError" && error.code, code)
        assert.strictEqual(s.requests.length, 1)
      })
    )
  }

  it.effect("a dropped connection is a transport error, retried", () =>
    Effect.gen(function* () {
      const s = yield* server
      s.enqueue({ drop: true }, issueToken())
      const fiber = yield* Effect.forkChild((yield* makeSource(configFor(s))).get)
      const exit = yield* driveUntilDone(fiber, "50 millis")
      assert.isTrue(Exit.isSuccess(exit))
      assert.strictEqual(s.requests.length, 2)
    })
  )

  it.effect("a slow token endpoint times out and is retried", () =>
    Effect.gen(function* () {
      const s = yield* server
      s.enqueue({ ...issueToken(), delayMs: 400 }, issueToken())
      const { events, onEvent } = eventLog()
      const tokens = yield* makeSource(configFor(s, { onEvent, tokenRequestTimeout: "2 seconds" }))
      const fiber = yield* Effect.forkChild(tokens.get)
      yield* Effect.promise(() => s.waitForRequests(1))
      yield* TestClock.adjust("2 seconds")
      const exit = yield* driveUntilDone(fiber, "50 millis")
      assert.isTrue(Exit.isSuccess(exit))
      assert.isTrue(
        events.some(
          (e) => e.type === "token_request_failed" && e.error === "TokenEndpointError" && e.willRetry
        )
      )
    })
  )
})

describe("malformed token responses", () => {
  const cases: Array<[string, Reply, string]> = [
    [
      "HTML",
      { status: 200, text: "<html><body>Login</body></html>", headers: { "content-type": "text/html" } },
      "not JSON"
    ],
    ["non-JSON text", { status: 200, text: "access_token=abc&expires_in=3600" }, "not JSON"],
    ["a JSON array", { status: 200, body: [1, 2] }, "not a JSON object"],
    ["JSON null", { status: 200, text: "null" }, "not a JSON object"],
    [
      "missing access_token",
      { status: 200, body: { token_type: "Bearer", expires_in: 60 } },
      "access_token is missing"
    ],
    [
      "empty access_token",
      { status: 200, body: { access_token: "", expires_in: 60 } },
      "access_token must be"
    ],
    [
      "numeric access_token",
      { status: 200, body: { access_token: 42, expires_in: 60 } },
      "access_token must be"
    ],
    [
      "negative expires_in",
      { status: 200, body: { access_token: "x", expires_in: -5 } },
      "expires_in must be"
    ],
    ["zero expires_in", { status: 200, body: { access_token: "x", expires_in: 0 } }, "expires_in must be"],
    [
      "string expires_in",
      { status: 200, body: { access_token: "x", expires_in: "3600" } },
      "expires_in must be"
    ],
    [
      "1 MiB body",
      { status: 200, text: JSON.stringify({ access_token: "x".repeat(1024 * 1024) }) },
      "larger than 65536"
    ]
  ]
  for (const [name, reply, reason] of cases) {
    it.effect(`${name}: InvalidTokenResponseError, 1 request, no crash`, () =>
      Effect.gen(function* () {
        const s = yield* server
        s.setDefault(() => reply)
        const error = yield* Effect.flip((yield* makeSource(configFor(s))).get)
        assert.strictEqual(error._tag, "InvalidTokenResponseError")
        assert.include(error.message, reason)
        assert.strictEqual(s.requests.length, 1)
      })
    )
  }

  it.effect("a huge error body does not hang or crash", () =>
    Effect.gen(function* () {
      const s = yield* server
      s.setDefault(() => ({ status: 400, text: "e".repeat(2 * 1024 * 1024) }))
      const error = yield* Effect.flip((yield* makeSource(configFor(s))).get)
      assert.strictEqual(error._tag, "TokenEndpointError")
    })
  )

  it.effect("a non-OAuth 404 is a TokenEndpointError, not retried", () =>
    Effect.gen(function* () {
      const s = yield* server
      s.setDefault(() => ({ status: 404, text: "Not Found" }))
      const error = yield* Effect.flip((yield* makeSource(configFor(s))).get)
      assert.strictEqual(error._tag === "TokenEndpointError" && error.status, 404)
      assert.strictEqual(s.requests.length, 1)
    })
  )
})

describe("invalidate", () => {
  it.effect("drops exactly the token that was used, not a newer one", () =>
    Effect.gen(function* () {
      const s = yield* server
      const { events, onEvent } = eventLog()
      const tokens = yield* makeSource(configFor(s, { onEvent }))
      const first = yield* tokens.get
      yield* tokens.invalidate(first)
      const second = yield* tokens.get
      assert.notStrictEqual(second.id, first.id)
      assert.strictEqual(s.requests.length, 2)
      assert.isTrue(events.some((e) => e.type === "token_acquired" && e.reason === "invalidated"))
      // A late 401 for the old token must not throw away the new one.
      yield* tokens.invalidate(first)
      const third = yield* tokens.get
      assert.strictEqual(third.id, second.id)
      assert.strictEqual(s.requests.length, 2)
    })
  )

  it.effect("many concurrent invalidations of one token cause one token request", () =>
    Effect.gen(function* () {
      const s = yield* server
      const tokens = yield* makeSource(configFor(s))
      const first = yield* tokens.get
      const results = yield* Effect.all(
        Array.from({ length: 100 }, () => Effect.andThen(tokens.invalidate(first), tokens.get)),
        { concurrency: "unbounded" }
      )
      assert.strictEqual(s.requests.length, 2)
      assert.strictEqual(new Set(results.map((t) => t.id)).size, 1)
      assert.notStrictEqual(results[0]!.id, first.id)
    })
  )
})

describe("refresh tokens", () => {
  it.effect("a refresh token is used before the original grant, and kept when none is returned", () =>
    Effect.gen(function* () {
      const s = yield* server
      s.enqueue(
        issueToken({ refresh_token: "rt-1" }),
        issueToken(),
        issueToken({ refresh_token: "rt-2" }),
        issueToken()
      )
      const tokens = yield* makeSource(configFor(s))
      const first = yield* tokens.get
      yield* tokens.invalidate(first)
      const second = yield* tokens.get
      assert.strictEqual(s.requests[1]!.form.get("grant_type"), "refresh_token")
      assert.strictEqual(s.requests[1]!.form.get("refresh_token"), "rt-1")
      assert.isNull(s.requests[1]!.form.get("scope"))
      // RFC 6749 section 6: the server returned no new refresh token, so rt-1 stays.
      assert.strictEqual(second.refreshToken && Redacted.value(second.refreshToken), "rt-1")
      yield* tokens.invalidate(second)
      yield* tokens.get
      assert.strictEqual(s.requests[2]!.form.get("refresh_token"), "rt-1")
      const fourth = yield* Effect.andThen(tokens.invalidate(yield* tokens.get), tokens.get)
      // rotated
      assert.strictEqual(s.requests[3]!.form.get("refresh_token"), "rt-2")
      assert.isDefined(fourth)
    })
  )

  it.effect("a rejected refresh token falls back to the original grant", () =>
    Effect.gen(function* () {
      const s = yield* server
      const { events, onEvent } = eventLog()
      s.enqueue({ status: 400, body: { error: "invalid_grant" } }, issueToken())
      const tokens = yield* makeSource(configFor(s, { onEvent, refreshToken: "persisted-rt", scope: "a b" }))
      yield* tokens.get
      assert.strictEqual(s.requests[0]!.form.get("grant_type"), "refresh_token")
      assert.strictEqual(s.requests[1]!.form.get("grant_type"), "client_credentials")
      assert.strictEqual(s.requests[1]!.form.get("scope"), "a b")
      assert.isTrue(events.some((e) => e.type === "refresh_token_rejected"))
    })
  )

  it.effect(
    "after a spent authorization code, a rejected refresh token fails without resending anything",
    () =>
      Effect.gen(function* () {
        const s = yield* server
        const { Grant } = yield* Effect.promise(() => import("../src/index.ts"))
        s.enqueue(issueToken({ refresh_token: "rt-1" }), { status: 400, body: { error: "invalid_grant" } })
        const tokens = yield* makeSource(
          configFor(s, { grant: Grant.authorizationCode({ code: "c-1", redirectUri: "https://app/cb" }) })
        )
        const first = yield* tokens.get
        assert.strictEqual(s.requests[0]!.form.get("code"), "c-1")
        yield* tokens.invalidate(first)
        const error = yield* Effect.flip(tokens.get)
        assert.strictEqual(error._tag === "OAuthError" && error.code, "invalid_grant")
        const again = yield* Effect.flip(tokens.get)
        assert.strictEqual(again._tag === "OAuthError" && again.code, "invalid_grant")
        // The code was never sent twice and the dead refresh token not resent.
        assert.strictEqual(s.requests.length, 2)
        assert.strictEqual(s.requests.filter((r) => r.form.get("code") === "c-1").length, 1)
      })
  )

  it.effect("onTokenChange receives every new token (to persist rotated refresh tokens)", () =>
    Effect.gen(function* () {
      const s = yield* server
      s.enqueue(issueToken({ refresh_token: "rt-a" }), issueToken({ refresh_token: "rt-b" }))
      const seen: Array<string | undefined> = []
      const tokens = yield* makeSource(
        configFor(s, {
          onTokenChange: (t) => void seen.push(t.refreshToken && Redacted.value(t.refreshToken))
        })
      )
      yield* Effect.andThen(tokens.invalidate(yield* tokens.get), tokens.get)
      assert.deepStrictEqual(seen, ["rt-a", "rt-b"])
    })
  )
})

describe("client-side rate limit", () => {
  it.effect("token requests beyond the limit wait for the window", () =>
    Effect.gen(function* () {
      const s = yield* server
      const { events, onEvent } = eventLog()
      const tokens = yield* makeSource(configFor(s, { onEvent, rateLimit: { limit: 2, window: "1 minute" } }))
      yield* Effect.andThen(tokens.invalidate(yield* tokens.get), tokens.get)
      assert.strictEqual(s.requests.length, 2)
      const fiber = yield* Effect.forkChild(Effect.andThen(tokens.invalidate(yield* tokens.get), tokens.get))
      yield* realWait(30)
      yield* TestClock.adjust("10 seconds")
      yield* realWait(30)
      assert.strictEqual(s.requests.length, 2)
      assert.isTrue(events.some((e) => e.type === "rate_limited" && e.source === "client"))
      yield* driveUntilDone(fiber, "5 seconds")
      assert.strictEqual(s.requests.length, 3)
    })
  )
})

describe("secrets", () => {
  it.effect(
    "an async secret provider is asked per token request; a rotated secret is picked up after invalid_client",
    () =>
      Effect.gen(function* () {
        const s = yield* server
        let current = "old-secret"
        let calls = 0
        s.setDefault((req) =>
          req.form.get("client_secret") === "new-secret"
            ? issueToken()
            : {
                status: 401,
                body: { error: "invalid_client", error_description: "Client authentication failed" }
              }
        )
        const tokens = yield* makeSource(
          configFor(s, {
            clientSecret: async () => {
              calls++
              const value = current
              current = "new-secret" // rotated in the vault meanwhile
              return value
            }
          })
        )
        const token = yield* tokens.get
        assert.isTrue(token.reveal().startsWith("at-"))
        assert.strictEqual(s.requests.length, 2)
        assert.strictEqual(calls, 2)
      })
  )

  it.effect("the same secret after invalid_client is not retried", () =>
    Effect.gen(function* () {
      const s = yield* server
      s.setDefault(() => ({ status: 401, body: { error: "invalid_client" } }))
      const error = yield* Effect.flip(
        (yield* makeSource(configFor(s, { clientSecret: async () => "same" }))).get
      )
      assert.strictEqual(error._tag === "OAuthError" && error.code, "invalid_client")
      assert.strictEqual(s.requests.length, 1)
    })
  )

  it.effect("a throwing secret provider is a clear error that does not repeat what it threw", () =>
    Effect.gen(function* () {
      const s = yield* server
      const error = yield* Effect.flip(
        (yield* makeSource(
          configFor(s, {
            clientSecret: () => {
              throw new Error("vault said: secret=hunter2")
            }
          })
        )).get
      )
      assert.strictEqual(error._tag, "InvalidConfigError")
      assert.notInclude(error.message, "hunter2")
      assert.strictEqual(s.requests.length, 0)
    })
  )

  it.effect("client_secret_basic sends an Authorization header and no secret in the body", () =>
    Effect.gen(function* () {
      const s = yield* server
      yield* (yield* makeSource(configFor(s, { clientAuth: "client_secret_basic", clientSecret: "p:w+%" })))
        .get
      const req = s.requests[0]!
      assert.strictEqual(req.headers.authorization, `Basic ${btoa("client-1:p%3Aw%2B%25")}`)
      assert.isNull(req.form.get("client_secret"))
      assert.isNull(req.form.get("client_id"))
    })
  )
})

describe("request parameters", () => {
  it.effect("sends scope, audience, resource and extra parameters as a form", () =>
    Effect.gen(function* () {
      const s = yield* server
      yield* (yield* makeSource(
        configFor(s, {
          scope: ["bensoft_api", "mbi_api"],
          audience: "https://api.example",
          resource: ["https://r1", "https://r2"],
          params: { tenant: "t 1" }
        })
      )).get
      const req = s.requests[0]!
      assert.strictEqual(req.method, "POST")
      assert.strictEqual(req.headers["content-type"], "application/x-www-form-urlencoded")
      assert.strictEqual(req.headers.accept, "application/json")
      assert.strictEqual(req.form.get("grant_type"), "client_credentials")
      assert.strictEqual(req.form.get("client_id"), "client-1")
      assert.strictEqual(req.form.get("client_secret"), "secret-1")
      assert.strictEqual(req.form.get("scope"), "bensoft_api mbi_api")
      assert.strictEqual(req.form.get("audience"), "https://api.example")
      assert.deepStrictEqual(req.form.getAll("resource"), ["https://r1", "https://r2"])
      assert.strictEqual(req.form.get("tenant"), "t 1")
    })
  )

  it.effect("password grant sends username and password", () =>
    Effect.gen(function* () {
      const s = yield* server
      const { Grant } = yield* Effect.promise(() => import("../src/index.ts"))
      yield* (yield* makeSource(
        configFor(s, { grant: Grant.password({ username: "ann", password: "pw d" }) })
      )).get
      assert.strictEqual(s.requests[0]!.form.get("grant_type"), "password")
      assert.strictEqual(s.requests[0]!.form.get("username"), "ann")
      assert.strictEqual(s.requests[0]!.form.get("password"), "pw d")
    })
  )

  it.effect("an invalid configuration fails with every problem listed", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(
        makeSource({ tokenUrl: "http://auth.example.com/token", clientId: "" })
      )
      assert.strictEqual(error._tag, "InvalidConfigError")
      assert.include(error.message, "clientId is required")
      assert.include(error.message, "https")
    })
  )
})

describe("layers", () => {
  it.effect("layerDefault provides the service to an Effect program", () =>
    Effect.gen(function* () {
      const s = yield* server
      const { TokenSource } = yield* Effect.promise(() => import("../src/index.ts"))
      const header = yield* Effect.gen(function* () {
        const tokens = yield* TokenSource.TokenSource
        return (yield* tokens.get).authorization()
      }).pipe(Effect.provide(TokenSource.layerDefault(configFor(s))))
      assert.match(header, /^Bearer at-/)
    })
  )

  it.effect("a custom fetch carries the token requests", () =>
    Effect.gen(function* () {
      const s = yield* server
      const seen: Array<string> = []
      const fetch: typeof globalThis.fetch = (input, init) => {
        seen.push(String(input))
        return globalThis.fetch(input, init)
      }
      yield* (yield* makeSource(configFor(s, { fetch }))).get
      assert.deepStrictEqual(seen, [s.tokenUrl])
    })
  )
})
