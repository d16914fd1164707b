/**
 * The registry's handles pass `getToken({ maxWait })` through to core, so a spent
 * client budget fails fast with `RateLimitedError` through `tokenSource(...)` and
 * `getTokenSource(...)` too (and through `withAuthFetch`, whose requests are bounded).
 */
import { RateLimitedError } from "@authfetch/core"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { startTokenServer, type TokenServer } from "../../core/test/support/tokenServer.ts"
import { disposeTokenSources, tokenSource } from "../src/index.ts"
import { getTokenSource } from "../src/tokens.ts"

let auth: TokenServer
beforeAll(async () => {
  auth = await startTokenServer()
})
afterAll(async () => {
  await disposeTokenSources()
  await auth.close()
})

describe("maxWait through the registry's handles", () => {
  it("a spent budget fails fast through tokenSource and getTokenSource", async () => {
    const config = {
      tokenUrl: auth.tokenUrl,
      clientId: "budgeted",
      clientSecret: "s",
      rateLimit: { limit: 1, window: "1 minute" }
    } as const
    await getTokenSource({ ...config, scope: "a" }).getToken()
    const started = Date.now()
    const lazy = await tokenSource({ ...config, scope: "b" })
      .getToken({ maxWait: "5 seconds" })
      .catch((e: unknown) => e)
    const direct = await getTokenSource({ ...config, scope: "c" })
      .getToken({ maxWait: "5 seconds" })
      .catch((e: unknown) => e)
    expect(lazy).toBeInstanceOf(RateLimitedError)
    expect(direct).toBeInstanceOf(RateLimitedError)
    expect((direct as RateLimitedError).retryAfterMillis).toBeGreaterThan(5_000)
    // failed at once: waiting would have taken 5 s each, the budget a minute
    expect(Date.now() - started).toBeLessThan(5_000)
    expect(auth.requests.length).toBe(1)
  })
})
