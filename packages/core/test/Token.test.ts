import { Duration, Effect, Redacted } from "effect"
import { describe, expect, it } from "vitest"
import { Token, TokenStore } from "../src/index.ts"

const make = (lifetimeSeconds: number, random = 0.5, options: Token.FreshnessOptions = {}) =>
  Token.makeAccessToken(
    {
      value: Redacted.make("v"),
      tokenType: "bearer",
      receivedAt: 1_000_000,
      expiresIn: Duration.seconds(lifetimeSeconds)
    },
    options,
    random
  )

describe("Token freshness", () => {
  it("uses the 60 s margin for long lifetimes", () => {
    const token = make(600)
    expect(token.expiresAt).toBe(1_600_000)
    expect(token.staleAt).toBe(1_540_000)
  })

  it("caps the margin at a quarter of the lifetime for short tokens", () => {
    const token = make(5)
    expect(token.staleAt - token.receivedAt).toBe(3_750)
    expect(Token.isFresh(token, token.receivedAt + 3_749)).toBe(true)
    expect(Token.isFresh(token, token.receivedAt + 3_750)).toBe(false)
    expect(Token.isUsable(token, token.receivedAt + 4_999)).toBe(true)
    expect(Token.isUsable(token, token.receivedAt + 5_000)).toBe(false)
  })

  it("puts the refresh point before staleAt, spread by the jitter", () => {
    const early = make(600, 1)
    const late = make(600, 0)
    expect(late.refreshAt).toBeLessThan(late.staleAt)
    expect(early.refreshAt).toBeLessThan(late.refreshAt)
    expect(late.refreshAt - early.refreshAt).toBe(54_000) // 10 % of the 540 s fresh window
    expect(make(600, 1, { refreshJitter: 0 }).refreshAt).toBe(late.refreshAt)
  })

  it("expire keeps the refresh token and the id", () => {
    const token = Token.makeAccessToken(
      {
        value: Redacted.make("v"),
        tokenType: "Bearer",
        receivedAt: 0,
        expiresIn: Duration.seconds(60),
        refreshToken: Redacted.make("r")
      },
      {},
      0.5
    )
    const expired = Token.expire(token, 10_000)
    expect(expired.id).toBe(token.id)
    expect(Token.isUsable(expired, 10_000)).toBe(false)
    expect(expired.refreshToken && Redacted.value(expired.refreshToken)).toBe("r")
  })

  it("normalises the scheme of a lower-case bearer token_type", () => {
    expect(make(60).authorization()).toBe("Bearer v")
  })
})

describe("TokenStore (memory)", () => {
  it("invalidate is compare-and-expire on the token value", async () => {
    const store = Effect.runSync(TokenStore.makeMemory)
    const a = make(600)
    const b = make(600)
    const other = Token.makeAccessToken(
      { value: Redacted.make("w"), tokenType: "Bearer", receivedAt: 0, expiresIn: Duration.seconds(60) },
      {},
      0
    )
    await Effect.runPromise(store.set("k", a))
    // Same value, different object: still the same token.
    expect(await Effect.runPromise(store.invalidate("k", b, 1_000_001))).toBe(true)
    expect(await Effect.runPromise(store.invalidate("k", other, 1_000_001))).toBe(false)
    expect(await Effect.runPromise(store.invalidate("missing", a, 0))).toBe(false)
    const stored = await Effect.runPromise(store.get("k"))
    expect(stored && Token.isUsable(stored, 1_000_001)).toBe(false)
  })

  it("withLock serialises work per key and not across keys", async () => {
    const store = Effect.runSync(TokenStore.makeMemory)
    const log: Array<string> = []
    const work = (key: string, name: string) =>
      store.withLock(
        key,
        Effect.gen(function* () {
          log.push(`${name}:start`)
          yield* Effect.sleep("20 millis")
          log.push(`${name}:end`)
        })
      )
    await Effect.runPromise(Effect.all([work("k", "a"), work("k", "b"), work("j", "c")], { concurrency: 3 }))
    expect(log.indexOf("a:end")).toBeLessThan(log.indexOf("b:start"))
    expect(log.indexOf("c:start")).toBeLessThan(log.indexOf("a:end"))
  })
})

describe("AccessToken.revealRefreshToken", () => {
  it("gives the refresh token's value to persist, and undefined without one; renderings never show it", () => {
    const withRefresh = Token.makeAccessToken(
      {
        value: Redacted.make("at-value"),
        tokenType: "Bearer",
        receivedAt: 0,
        expiresIn: Duration.seconds(60),
        refreshToken: Redacted.make("rt-value-to-persist")
      },
      {},
      0.5
    )
    expect(withRefresh.revealRefreshToken()).toBe("rt-value-to-persist")
    expect(String(withRefresh.refreshToken)).not.toContain("rt-value")
    expect(JSON.stringify(withRefresh)).not.toContain("rt-value")
    expect(make(60).revealRefreshToken()).toBeUndefined()
  })
})
