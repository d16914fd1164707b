/**
 * 500 concurrent requests through the proxy route while the token is revoked
 * and expires under them: every one succeeds, and the token requests stay
 * within what the token lifetimes and the revocation explain.
 *
 * All 500 start at once and share the first token; a recording front between
 * the proxy and the sandbox API holds each first attempt for a random time
 * (0 to 3 s, seeded), so requests reach the API before the revocation (at
 * 1 s), after it (401: the core invalidates that token and replays with a new
 * one), and after the first token's expiry (TTL 2 s). The same test runs over
 * real HTTP against `next start` in examples/next-app.
 */
import { type Sandbox, startSandbox } from "@authfetch/sandbox"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { createProxyRoute, disposeTokenSources } from "../src/index.ts"
import { type Front, startFront } from "./support.ts"

const TTL = 2
let sandbox: Sandbox
let front: Front
const reasons: Record<string, number> = {}

/** mulberry32: the same holds on every run */
const seeded = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

beforeAll(async () => {
  sandbox = await startSandbox({
    profile: "wex",
    onEvent: (event) => {
      if (event.kind === "api" && event.status === 401)
        reasons[event.error ?? "?"] = (reasons[event.error ?? "?"] ?? 0) + 1
    },
    tokenTtl: TTL,
    clients: [{ clientId: "next-load", clientSecret: "load-secret" }]
  })
  const random = seeded(42)
  const seen = new Set<string>()
  front = await startFront(sandbox.url, {
    // Hold each request's first attempt (replays, same x-request-id, go at once).
    hold: (req) => {
      const id = String(req.headers["x-request-id"] ?? "")
      if (!req.url?.startsWith("/api/") || seen.has(id)) return 0
      seen.add(id)
      return Math.floor(random() * 3000)
    }
  })
})
afterAll(async () => {
  await disposeTokenSources()
  await front.close()
  await sandbox.close()
})

describe("500 concurrent requests", () => {
  it("all succeed while the token is revoked and expires; token requests stay within the bound", async () => {
    const route = createProxyRoute({
      tokens: { tokenUrl: sandbox.tokenUrl, clientId: "next-load", clientSecret: "load-secret" },
      baseUrl: `${front.url}/api`,
      prefix: "/api/benefits",
      allow: ["/v1/consumers/*"]
    })
    const started = Date.now()
    const revoke = setTimeout(() => sandbox.revokeAll(), 1000)
    const responses = await Promise.all(
      Array.from({ length: 500 }, (_, i) =>
        route.GET(
          new Request(`http://next.local/api/benefits/v1/consumers/${10000 + i}`, {
            headers: { "x-request-id": `load-${i}` }
          })
        )
      )
    )
    clearTimeout(revoke)
    const elapsed = (Date.now() - started) / 1000
    const failed = responses.flatMap((r, i) => (r.status === 200 ? [] : [{ i, r }]))
    const failures = await Promise.all(failed.map(async ({ i, r }) => `#${i} ${r.status} ${await r.text()}`))
    expect(failures, `401 reasons: ${JSON.stringify(reasons)}`).toEqual([])
    const bodies = await Promise.all(
      responses.map(async (r, i) => {
        try {
          return (await r.json()) as { consumerId?: string }
        } catch (error) {
          throw new Error(`response ${i} (${r.status}, used ${r.bodyUsed}): ${String(error)}`)
        }
      })
    )
    expect(bodies.map((b) => b.consumerId)).toEqual(Array.from({ length: 500 }, (_, i) => String(10000 + i)))

    const stats = sandbox.stats()
    // 401s happened: the revocation and the expiry were really met by requests in flight.
    expect(stats.apiRequests.byStatus["401"] ?? 0).toBeGreaterThan(0)
    expect(stats.apiRequests.byStatus["200"]).toBe(500)
    // A token is fresh for 75 % of its lifetime and refreshed ahead from 85 % of that (core's rules):
    // at most one token request per such period, one per revocation, and the first.
    const period = TTL * 0.75 * 0.85
    const bound = Math.ceil(elapsed / period) + 1 + 1
    expect(stats.tokenRequests.total).toBeGreaterThanOrEqual(2)
    expect(stats.tokenRequests.total).toBeLessThanOrEqual(bound)
    console.log(
      `500 requests in ${elapsed.toFixed(2)} s: ${stats.tokenRequests.total} token requests (bound ${bound}), ` +
        `${stats.apiRequests.byStatus["401"]} API 401s answered by a replay`
    )
  })
})
