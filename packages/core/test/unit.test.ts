import { assert, it as effectIt } from "@effect/vitest"
import { Duration, Effect, Redacted } from "effect"
import { TestClock } from "effect/testing"
import { describe, expect, it } from "vitest"
import { ClientAuth, Config, Grant, RetryPolicy, TokenBudget } from "../src/index.ts"
import { redactStream, redactText, spellings } from "../src/internal/redact.ts"

describe("ClientAuth", () => {
  const decodeBasic = (header: string) =>
    Buffer.from(header.replace(/^Basic /, ""), "base64").toString("utf8")

  it("client_secret_basic form-encodes id and secret before base64 (RFC 6749 2.3.1)", () => {
    const secret = "s:e+c%r et-ü/="
    const { headers, params } = ClientAuth.apply("client_secret_basic", "my client:1", Redacted.make(secret))
    expect(params).toEqual([])
    const decoded = decodeBasic(headers.authorization!)
    expect(decoded).toBe("my+client%3A1:s%3Ae%2Bc%25r+et-%C3%BC%2F%3D")
    const [id, sec] = decoded.split(":").map((part) => decodeURIComponent(part!.replace(/\+/g, " ")))
    expect(id).toBe("my client:1")
    expect(sec).toBe(secret)
  })

  it("client_secret_post puts id and secret in the form; none sends only the id", () => {
    const post = ClientAuth.apply("client_secret_post", "id", Redacted.make("sec"))
    expect(post.headers).toEqual({})
    expect(post.params.map(([k, v]) => [k, Redacted.isRedacted(v) ? Redacted.value(v) : v])).toEqual([
      ["client_id", "id"],
      ["client_secret", "sec"]
    ])
    expect(ClientAuth.apply("none", "id", undefined).params).toEqual([["client_id", "id"]])
  })

  it("formEncode follows application/x-www-form-urlencoded", () => {
    expect(ClientAuth.formEncode("a b*~'()!")).toBe("a+b*%7E%27%28%29%21")
  })
})

describe("Grant", () => {
  it("computes the RFC 7636 appendix B S256 challenge", async () => {
    await expect(Grant.codeChallengeS256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")).resolves.toBe(
      "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    )
  })

  it("generates 43-character verifiers of the unreserved set, all different", () => {
    const verifiers = new Set(Array.from({ length: 100 }, () => Grant.generateCodeVerifier()))
    expect(verifiers.size).toBe(100)
    for (const v of verifiers) expect(v).toMatch(/^[A-Za-z0-9\-._~]{43}$/)
  })

  it("rejects a verifier outside RFC 7636 4.1", async () => {
    await expect(Grant.codeChallengeS256("short")).rejects.toThrow(RangeError)
  })

  it("builds the form parameters of each grant with secrets still wrapped", () => {
    const params = Grant.toParams(Grant.password({ username: "u", password: "p" }))
    expect(params[0]).toEqual(["grant_type", "password"])
    expect(String(params[2]![1])).not.toContain("p\u0000")
    expect(Redacted.isRedacted(params[2]![1])).toBe(true)
    expect(
      Grant.toParams(Grant.authorizationCode({ code: "c", redirectUri: "https://x/cb" })).map(([k]) => k)
    ).toEqual(["grant_type", "code", "redirect_uri"])
    expect(Grant.isRepeatable(Grant.clientCredentials())).toBe(true)
    expect(Grant.isRepeatable(Grant.refreshToken("rt"))).toBe(false)
    expect(Grant.isRepeatable(Grant.authorizationCode({ code: "c", redirectUri: "https://x/cb" }))).toBe(
      false
    )
  })
})

describe("RetryPolicy.parseRetryAfter (RFC 9110 10.2.3)", () => {
  const now = Date.parse("2026-11-23T10:00:00Z")
  it.each([
    ["2", 2000],
    [" 120 ", 120_000],
    ["0", 0],
    ["Mon, 23 Nov 2026 10:00:05 GMT", 5000],
    ["Mon, 23 Nov 2026 09:59:00 GMT", 0]
  ])("%j waits %d ms", (header, millis) => {
    expect(Duration.toMillis(RetryPolicy.parseRetryAfter(header, now)!)).toBe(millis)
  })
  it.each([null, undefined, "", "soon", "-1", "1.5", "99999999999999999999", "2026-11-23"])(
    "%j is ignored",
    (header) => {
      expect(RetryPolicy.parseRetryAfter(header, now)).toBeUndefined()
    }
  )
})

describe("RetryPolicy.parseRetryAfter with the server's clock", () => {
  it("measures an HTTP-date against the response's Date header, not our clock", () => {
    const ours = Date.parse("2026-11-23T10:00:00Z")
    const wait = RetryPolicy.parseRetryAfter(
      "Mon, 23 Nov 2026 10:05:01 GMT",
      ours,
      "Mon, 23 Nov 2026 10:05:00 GMT"
    )
    expect(Duration.toMillis(wait!)).toBe(1000)
  })
  it("reads an asctime date as GMT", () => {
    const wait = RetryPolicy.parseRetryAfter("Sun Nov  6 08:49:37 1994", Date.UTC(1994, 10, 6, 8, 0, 0))
    expect(Duration.toMillis(wait!)).toBe(2_977_000)
  })
})

describe("RetryPolicy.isRetryableTokenError", () => {
  it("never retries answers, always retries accidents", async () => {
    const { OAuthError, RateLimitedError, TokenEndpointError, InvalidTokenResponseError } = await import(
      "../src/index.ts"
    )
    for (const code of [
      "invalid_client",
      "invalid_grant",
      "unsupported_grant_type",
      "invalid_scope",
      "invalid_request"
    ]) {
      expect(RetryPolicy.isRetryableTokenError(new OAuthError({ code, status: 400 }))).toBe(false)
    }
    expect(
      RetryPolicy.isRetryableTokenError(new OAuthError({ code: "temporarily_unavailable", status: 503 }))
    ).toBe(true)
    expect(RetryPolicy.isRetryableTokenError(new RateLimitedError({ source: "server", status: 429 }))).toBe(
      true
    )
    expect(RetryPolicy.isRetryableTokenError(new TokenEndpointError({ reason: "status", status: 503 }))).toBe(
      true
    )
    expect(RetryPolicy.isRetryableTokenError(new TokenEndpointError({ reason: "status", status: 404 }))).toBe(
      false
    )
    expect(RetryPolicy.isRetryableTokenError(new TokenEndpointError({ reason: "transport" }))).toBe(true)
    expect(RetryPolicy.isRetryableTokenError(new TokenEndpointError({ reason: "timeout" }))).toBe(true)
    expect(
      RetryPolicy.isRetryableTokenError(new InvalidTokenResponseError({ reason: "x", status: 200 }))
    ).toBe(false)
  })
})

describe("Config", () => {
  const base = { tokenUrl: "https://auth.example.com/token", clientId: "c" }

  it("accepts https anywhere and http on loopback only", () => {
    expect(Config.validate(base)).toEqual([])
    for (const url of ["http://127.0.0.1:8080/t", "http://localhost/t", "http://[::1]:9/t"]) {
      expect(Config.validate({ ...base, tokenUrl: url })).toEqual([])
    }
    for (const url of [
      "http://auth.example.com/token",
      "http://10.0.0.1/token",
      "http://127.0.0.1.nip.io/t",
      // RFC 6761 reserves .localhost, but Node resolves such names through DNS
      "http://api.localhost/t"
    ]) {
      expect(Config.validate({ ...base, tokenUrl: url })).toContain(
        "tokenUrl must use https: (http: is allowed for loopback hosts only)"
      )
    }
    expect(Config.validate({ ...base, tokenUrl: "ftp://x/y" })).toContain("tokenUrl must use https:")
    expect(Config.validate({ ...base, tokenUrl: "/token" })).toContain("tokenUrl is not an absolute URL")
  })

  it("reports every problem at once", () => {
    const problems = Config.validate({
      tokenUrl: "https://user:pw@auth.example.com/token",
      clientId: " ",
      clientAuth: "client_secret_basic",
      rateLimit: { limit: 0, window: "1 minute" },
      refreshMargin: "soon" as never
    })
    expect(problems).toEqual([
      "clientId is required",
      "tokenUrl must not contain credentials",
      "clientAuth client_secret_basic needs a clientSecret",
      "rateLimit.limit must be at least 1",
      "refreshMargin is not a duration"
    ])
  })

  it("derives one cache key per token shape, without secrets", () => {
    const key = Config.cacheKey({ ...base, clientSecret: "SECRET", scope: "b a", audience: "x" })
    expect(key).toBe(Config.cacheKey({ ...base, clientSecret: "other", scope: ["a", "b"], audience: "x" }))
    expect(key).not.toContain("SECRET")
    const variants = [
      { ...base, scope: "a" },
      { ...base, scope: "a b" },
      { ...base, audience: "y" },
      { ...base, resource: "https://r" },
      { ...base, params: { tenant: "1" } },
      { ...base, clientId: "d" },
      { ...base, tokenUrl: "https://auth.example.com/token2" },
      { ...base, grant: Grant.password({ username: "u", password: "PW" }) },
      { ...base, grant: Grant.password({ username: "v", password: "PW" }) }
    ]
    const keys = new Set([key, ...variants.map((v) => Config.cacheKey(v))])
    expect(keys.size).toBe(variants.length + 1)
    for (const k of keys) expect(k).not.toContain("PW")
  })

  it("normalizes scope to a space-delimited list", () => {
    expect(Config.normalizeScope(["a", " b ", ""])).toBe("a b")
    expect(Config.normalizeScope("  a   b ")).toBe("a b")
    expect(Config.normalizeScope([])).toBeUndefined()
  })
})

describe("redact (echoed secrets, internal)", () => {
  const secret = "tok/en+a b=="
  const all = spellings([secret])

  it("covers the raw, percent-encoded and form-encoded spellings", () => {
    expect(all).toContain(secret)
    expect(all).toContain(encodeURIComponent(secret))
    expect(all).toContain("tok%2Fen%2Ba+b%3D%3D")
    expect(redactText(`a ${secret} b ${encodeURIComponent(secret)} c`, all)).toBe(
      "a <redacted> b <redacted> c"
    )
  })

  it("removes a value from a byte stream whatever the chunk boundaries", async () => {
    const text = `{"detail":"you sent ${secret}","again":"${encodeURIComponent(secret)}${secret}"}`
    const bytes = new TextEncoder().encode(text)
    for (const size of [1, 2, 3, 5, 7, 11, bytes.length]) {
      const chunks: Array<Uint8Array> = []
      for (let i = 0; i < bytes.length; i += size) chunks.push(bytes.slice(i, i + size))
      const out = await new Response(
        new ReadableStream<Uint8Array>({
          start(controller) {
            for (const chunk of chunks) controller.enqueue(chunk)
            controller.close()
          }
        }).pipeThrough(redactStream(all))
      ).text()
      expect(out).toBe(`{"detail":"you sent <redacted>","again":"<redacted><redacted>"}`)
    }
  })

  it("passes a stream through unchanged when there is nothing to remove", async () => {
    const out = await new Response(new Response("plain body").body!.pipeThrough(redactStream([]))).text()
    expect(out).toBe("plain body")
  })
})

describe("TokenBudget", () => {
  const limit = { limit: 1, windowMillis: 1_000 }

  effectIt.effect(
    "an admission counts from the end of its exchange once settled (the server counted it on arrival)",
    () =>
      Effect.gen(function* () {
        const budget = TokenBudget.makeWith(new Map())
        assert.strictEqual(yield* budget.take("cl_a", limit), 0)
        // the exchange ended 200 ms later: the next admission comes 1 s after that, not after the admission
        yield* TestClock.adjust("200 millis")
        yield* budget.settle("cl_a")
        yield* TestClock.adjust("800 millis")
        assert.strictEqual(yield* budget.waitFor("cl_a", limit), 200)
        yield* TestClock.adjust("199 millis")
        assert.strictEqual(yield* budget.take("cl_a", limit), 1)
        yield* TestClock.adjust("1 millis")
        assert.strictEqual(yield* budget.take("cl_a", limit), 0)
      })
  )

  effectIt.effect(
    "without a settle the window counts from the admission; a settle with nothing open changes nothing",
    () =>
      Effect.gen(function* () {
        const budget = TokenBudget.makeWith(new Map())
        yield* budget.settle("cl_b")
        assert.strictEqual(yield* budget.take("cl_b", limit), 0)
        yield* TestClock.adjust("1 second")
        assert.strictEqual(yield* budget.waitFor("cl_b", limit), 0)
      })
  )
})
