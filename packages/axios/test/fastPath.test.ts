/**
 * The adapter's hot path (`sendFast` in src/attachAuth.ts): with a fresh
 * token in memory a call goes to the real adapter once, outside core's
 * pipeline, and whatever core acts on (a `401`, a redirect to follow, a
 * retryable status, a timeout, a network failure) is handed to the pipeline
 * as its first hop already sent. Every test warms the token first, so the
 * hot path is the one taken, and counts what reached the server: nothing may
 * be sent twice that the pipeline alone would have sent once. Both adapters.
 */
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { createTokenSource, RetryPolicy, type TokenSourceHandle } from "@authfetch/core"
import axios, { type CreateAxiosDefaults, isAxiosError } from "axios"
import { afterEach, beforeEach, describe, expect, it } from "vitest"
import { startTokenServer, type TokenServer } from "../../core/test/support/tokenServer.ts"
import { attachAuth, RequestSummary } from "../src/index.ts"
import { adapters, fast } from "./support/clients.ts"

let auth: TokenServer
let api: TokenServer
let tokens: TokenSourceHandle

beforeEach(async () => {
  ;[auth, api] = await Promise.all([startTokenServer(), startTokenServer()])
  api.setDefault(() => ({ status: 200, body: { ok: true } }))
  tokens = createTokenSource({ tokenUrl: auth.tokenUrl, clientId: "axios-fast", clientSecret: "s3cret" })
  await tokens.getToken() // warm: the hot path applies from the first call
})
afterEach(async () => {
  await tokens.dispose()
  await Promise.all([auth.close(), api.close()])
})

/** core's pipeline sends through the full path's wire; the hot path calls the adapter from `sendFast` */
const PIPELINE_FRAME = /\bwire\b/
const FAST_FRAME = /\bsendFast\b/
const bearer = (i: number) => api.requests[i]?.headers.authorization

for (const adapter of adapters) {
  describe(`the hot path: ${adapter} adapter`, () => {
    /** An instance whose adapter records the stack of every send (which path made it). */
    const instance = (options: Parameters<typeof attachAuth>[2] = {}, config: CreateAxiosDefaults = {}) => {
      const stacks: Array<string> = []
      const real = axios.getAdapter(adapter)
      const client = axios.create({
        baseURL: `${api.url}/api`,
        timeout: 2_000,
        ...config,
        adapter: (hop) => {
          stacks.push(new Error().stack ?? "")
          return real(hop)
        }
      })
      attachAuth(client, tokens, { retry: fast, ...options })
      return { client, stacks }
    }

    it("sends a call once, outside core's pipeline, with the token, and settles it as axios would", async () => {
      const { client, stacks } = instance()
      const response = await client.get("/v1/a", { params: { page: 2, q: "x y" } })
      expect(response.data).toEqual({ ok: true })
      expect(stacks).toHaveLength(1)
      expect(stacks[0]).toMatch(FAST_FRAME)
      expect(stacks[0]).not.toMatch(PIPELINE_FRAME)
      expect(bearer(0)).toBe((await tokens.getToken()).authorization())
      expect(api.requests[0]!.url).toBe("/api/v1/a?page=2&q=x+y")
      // what the caller holds: its own config, a summary, never the token
      expect(response.request).toBeInstanceOf(RequestSummary)
      expect((response.request as RequestSummary).path).toBe("/api/v1/a?page=2&q=x+y")
      expect(JSON.stringify(response.config.headers)).not.toMatch(/Bearer/i)
    })

    it("credits the retry budget for a final answer", async () => {
      const budget = new RetryPolicy.RetryBudget({ capacity: 10, retryCost: 5 })
      budget.withdraw("retry")
      const { client } = instance({ retry: { ...fast, budget } })
      await client.get("/v1/a")
      expect(budget.available).toBe(6)
    })

    it("a 401 goes to core with that send: the token it used is invalidated and the call replayed once", async () => {
      const used = (await tokens.getToken()).authorization()
      api.enqueue({ status: 401, body: {} })
      const { client, stacks } = instance()
      const response = await client.get("/v1/a")
      expect(response.status).toBe(200)
      expect(api.requests).toHaveLength(2)
      expect(bearer(0)).toBe(used)
      expect(bearer(1)).not.toBe(used)
      expect(stacks[0]).toMatch(FAST_FRAME)
      expect(stacks[1]).toMatch(PIPELINE_FRAME)
    })

    it("a 503 on a GET is retried by core, the first send not repeated; a POST's 503 is handed back", async () => {
      api.enqueue({ status: 503, body: {} })
      const { client } = instance()
      expect((await client.get("/v1/a")).status).toBe(200)
      expect(api.requests).toHaveLength(2)
      api.enqueue({ status: 503, body: { busy: true } })
      const error = await client.post("/v1/claims", { amount: 1 }).catch((e) => e)
      expect(isAxiosError(error) && error.response?.status).toBe(503)
      expect(api.requests).toHaveLength(3)
    })

    it("a same-origin redirect is followed by core (with the token), a cross-origin one without it", async () => {
      api.enqueue({ status: 302, headers: { location: `${api.url}/api/v1/b` }, body: {} })
      const { client } = instance()
      expect((await client.get("/v1/a")).data).toEqual({ ok: true })
      expect(api.requests.map((r) => r.url)).toEqual(["/api/v1/a", "/api/v1/b"])
      expect(bearer(1)).toBe((await tokens.getToken()).authorization())
      const elsewhere = await startTokenServer(() => ({ status: 200, body: { other: true } }))
      try {
        api.enqueue({ status: 307, headers: { location: `${elsewhere.url}/x` }, body: {} })
        expect((await client.get("/v1/c")).data).toEqual({ other: true })
        expect(elsewhere.requests[0]!.headers.authorization).toBeUndefined()
      } finally {
        await elsewhere.close()
      }
    })

    it("maxRedirects: 0 hands a redirect back as it is", async () => {
      api.enqueue({ status: 302, headers: { location: `${api.url}/api/v1/b` }, body: {} })
      const { client } = instance({}, { maxRedirects: 0, validateStatus: () => true })
      expect((await client.get("/v1/a")).status).toBe(302)
      expect(api.requests).toHaveLength(1)
    })

    it("an attempt axios times out is retried by core for a GET", async () => {
      api.enqueue({ status: 200, body: { slow: true }, delayMs: 600 })
      const { client } = instance({}, { timeout: 200 })
      expect((await client.get("/v1/a")).data).toEqual({ ok: true })
      expect(api.requests).toHaveLength(2)
    })

    it("a network failure is retried by core for a GET", async () => {
      api.enqueue({ drop: true })
      const { client } = instance()
      expect((await client.get("/v1/a")).data).toEqual({ ok: true })
      expect(api.requests).toHaveLength(2)
    })

    it("an error answer that echoes the token reaches the caller without it", async () => {
      const token = (await tokens.getToken()).reveal()
      api.setDefault(() => ({ status: 400, body: { error: "bad", echo: token } }))
      const { client } = instance()
      const error = await client.get("/v1/a").catch((e) => e)
      expect(isAxiosError(error) && error.response?.status).toBe(400)
      expect(JSON.stringify(error.response.data)).not.toContain(token)
      expect(JSON.stringify(error.config)).not.toContain(token)
      expect((error as { problem?: unknown }).problem).toBeDefined()
    })

    it("calls the hot path does not take go through core from the start", async () => {
      const { client, stacks } = instance()
      await client.get("/v1/a", { headers: { Authorization: "Basic abc" } }) // the caller's own
      await client.get(`${api.url}/elsewhere`, { baseURL: "http://localhost:1" }) // an absolute URL of the origin is allowed
      expect(stacks[0]).toMatch(PIPELINE_FRAME)
      expect(stacks[1]).toMatch(FAST_FRAME)
      expect(bearer(0)).toBe("Basic abc")
      expect(stacks).toHaveLength(2)
    })

    it("a cancel during the hot path's send rejects with axios's CanceledError, nothing retried", async () => {
      const hang = createServer(() => {})
      await new Promise<void>((resolve) => hang.listen(0, "127.0.0.1", resolve))
      const url = `http://127.0.0.1:${(hang.address() as AddressInfo).port}`
      try {
        const client = axios.create({ baseURL: url, adapter, timeout: 5_000 })
        attachAuth(client, tokens, { retry: fast })
        const controller = new AbortController()
        const pending = client.get("/x", { signal: controller.signal }).catch((e) => e)
        setTimeout(() => controller.abort(), 50)
        expect(axios.isCancel(await pending)).toBe(true)
      } finally {
        hang.closeAllConnections()
        await new Promise((resolve) => hang.close(resolve))
      }
    })
  })
}
