/**
 * The Promise facade: the same engine for code that never touches Effect.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { AccessToken, createTokenSource, InvalidConfigError, OAuthError, TokenStore } from "../src/index.ts"
import { issueToken, startTokenServer, type TokenServer } from "./support/tokenServer.ts"

let server: TokenServer
beforeAll(async () => {
  server = await startTokenServer()
})
afterAll(() => server.close())

const config = () => ({ tokenUrl: server.tokenUrl, clientId: "facade", clientSecret: "s" })

describe("createTokenSource", () => {
  it("1,000 concurrent getToken() on a cold source make exactly 1 token request", async () => {
    server.requests.length = 0
    server.enqueue({ ...issueToken(), delayMs: 20 })
    const tokens = createTokenSource(config())
    const results = await Promise.all(Array.from({ length: 1000 }, () => tokens.getToken()))
    expect(server.requests.length).toBe(1)
    expect(new Set(results.map((t) => t.id)).size).toBe(1)
    expect(results[0]).toBeInstanceOf(AccessToken)
    expect(results[0]!.authorization()).toMatch(/^Bearer at-/)
    await tokens.dispose()
  })

  it("peek returns the fresh token synchronously, and nothing once it is invalidated", async () => {
    const tokens = createTokenSource(config())
    expect(tokens.peek()).toBeUndefined()
    const token = await tokens.getToken()
    expect(tokens.peek()).toBe(token)
    await tokens.invalidate(token)
    expect(tokens.peek()).toBeUndefined()
    const next = await tokens.getToken()
    expect(next.id).not.toBe(token.id)
    await tokens.dispose()
    expect(tokens.peek()).toBeUndefined()
  })

  it("rejects with the typed error, usable with instanceof and _tag", async () => {
    server.enqueue({
      status: 401,
      body: { error: "invalid_client", error_description: "Client authentication failed" }
    })
    const tokens = createTokenSource(config())
    const error = await tokens.getToken().catch((e: unknown) => e)
    expect(error).toBeInstanceOf(OAuthError)
    expect(error).toBeInstanceOf(Error)
    expect((error as OAuthError)._tag).toBe("OAuthError")
    expect((error as OAuthError).code).toBe("invalid_client")
    expect((error as OAuthError).message).toBe(
      "OAuth token request failed: invalid_client (Client authentication failed) [HTTP 401]"
    )
    await tokens.dispose()
  })

  it("throws InvalidConfigError synchronously for a configuration that cannot work", () => {
    expect(() => createTokenSource({ tokenUrl: "http://auth.example.com/token", clientId: "x" })).toThrow(
      InvalidConfigError
    )
  })

  it("dispose is idempotent and later calls reject clearly; await using disposes", async () => {
    const tokens = createTokenSource(config())
    await tokens.getToken()
    await Promise.all([tokens.dispose(), tokens.dispose()])
    await expect(tokens.getToken()).rejects.toThrow("token source is disposed")
    {
      await using scoped = createTokenSource(config())
      await scoped.getToken()
    }
  })

  it("two sources sharing a store share tokens; different configurations never do", async () => {
    server.requests.length = 0
    const { Effect, Layer } = await import("effect")
    const store = Effect.runSync(TokenStore.makeMemory)
    const shared = Layer.succeed(TokenStore.TokenStore, store)
    const a = createTokenSource(config(), { store: shared })
    const b = createTokenSource(config(), { store: shared })
    const c = createTokenSource({ ...config(), scope: "other" }, { store: shared })
    const [ta, tb, tc] = [await a.getToken(), await b.getToken(), await c.getToken()]
    expect(ta.id).toBe(tb.id)
    expect(tc.id).not.toBe(ta.id)
    expect(server.requests.length).toBe(2)
    expect(a.key).not.toBe(c.key)
    await Promise.all([a.dispose(), b.dispose(), c.dispose()])
  })
})
