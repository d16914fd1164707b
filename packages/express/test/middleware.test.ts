/**
 * `req.authFetch`: typed on Express's `Request`, working against the
 * sandbox, created once (one token source, one retry budget for all
 * requests), with the caller's own signal combined with the client's.
 */
import { createTokenSource, type TokenSourceHandle } from "@authfetch/core"
import { DEFAULT_CLIENT, type Sandbox, startSandbox } from "@authfetch/sandbox"
import express from "express"
import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from "vitest"
import { type AuthFetch, authFetchMiddleware, problemDetails } from "../src/index.ts"
import { type Listening, type Recorder, send, serve, startRecorder } from "./support/servers.ts"

let sandbox: Sandbox
let recorder: Recorder
let tokens: TokenSourceHandle
let app: Listening
const seenFetches = new Set<AuthFetch>()

beforeAll(async () => {
  ;[sandbox, recorder] = await Promise.all([
    startSandbox({ profile: "wex", tokenRateLimit: false }),
    startRecorder()
  ])
  tokens = createTokenSource({ tokenUrl: sandbox.tokenUrl, ...DEFAULT_CLIENT })
  const server = express()

  // A BFF route over the sandbox: a consumer and its accounts in one answer.
  server.use(
    "/api",
    authFetchMiddleware(tokens, { baseUrl: sandbox.baseUrl, problemDetails: true, onEvent: () => {} })
  )
  server.get("/api/summary/:id", async (req, res) => {
    const id = encodeURIComponent(req.params.id)
    const [consumer, accounts] = await Promise.all([
      req.authFetch(`/v1/consumers/${id}`).then((r) => r.json()),
      req.authFetch(`/v1/consumers/${id}/accounts?pageSize=100`).then((r) => r.json())
    ])
    res.json({ consumer, accounts: accounts.items.length, total: accounts.total })
  })
  server.get("/api/claims/:id", async (req, res) => {
    const claim = await req.authFetch(`/v1/claims/${encodeURIComponent(req.params.id)}`)
    res.json(await claim.json())
  })
  server.get("/api/with-own-signal", async (req, res) => {
    const upstream = await req.authFetch("/v1/consumers/1", { signal: AbortSignal.timeout(5_000) })
    res.status(upstream.status).json(await upstream.json())
  })

  // Against the recorder (always 503): retries and the shared budget.
  server.use(
    "/flaky",
    authFetchMiddleware(tokens, {
      baseUrl: `${recorder.url}/api`,
      retry: { baseDelay: "1 millis", maxDelay: "2 millis" },
      abortOnClientClose: false
    })
  )
  server.get("/flaky", async (req, res) => {
    seenFetches.add(req.authFetch)
    const upstream = await req.authFetch("/v1/x")
    res.status(upstream.status).end()
  })
  server.use(problemDetails({ onError: false }))
  app = await serve(server)
})
afterAll(async () => {
  await tokens.dispose()
  await Promise.all([app.close(), recorder.close(), sandbox.close()])
})

describe("req.authFetch", () => {
  it("is typed on Express's Request as a fetch", () => {
    expectTypeOf<express.Request["authFetch"]>().toEqualTypeOf<typeof globalThis.fetch>()
    expectTypeOf<AuthFetch>().parameters.toEqualTypeOf<Parameters<typeof globalThis.fetch>>()
    expectTypeOf(authFetchMiddleware).returns.toEqualTypeOf<express.RequestHandler>()
  })

  it("calls the API with our token, and one token serves every request", async () => {
    sandbox.resetStats()
    const replies = await Promise.all(
      Array.from({ length: 20 }, (_, i) => send(app.port, { path: `/api/summary/C${i}` }))
    )
    for (const reply of replies) {
      expect(reply.status).toBe(200)
      const body = JSON.parse(reply.text)
      expect(body.consumer).toBeTypeOf("object")
      expect(body.accounts).toBe(body.total)
    }
    const stats = sandbox.stats()
    expect(stats.apiRequests.byStatus).toEqual({ 200: 40 })
    expect(stats.tokenRequests.total).toBeLessThanOrEqual(1)
  })

  it("combines the route's own signal with the client's", async () => {
    const reply = await send(app.port, { path: "/api/with-own-signal" })
    expect(reply.status).toBe(200)
  })

  it("turns an upstream 404 into the route's 404 problem (problemDetails: true + problemDetails())", async () => {
    const reply = await send(app.port, { path: "/api/claims/CLM-999999" })
    expect(reply.status).toBe(404)
    expect(reply.headers["content-type"]).toBe("application/problem+json")
    expect(JSON.parse(reply.text)).toEqual({
      type: "about:blank",
      title: "Not Found",
      status: 404,
      detail: "The upstream answered 404."
    })
  })

  it("is created once: the retry budget is shared by all requests (an outage does not multiply traffic)", async () => {
    recorder.answer = () => ({ status: 503 })
    recorder.requests.length = 0
    // Default budget: 500 tokens, 5 a retry: 100 retries in all, 2 a request.
    const attempts: Array<number> = []
    for (let i = 0; i < 53; i++) {
      const before = recorder.requests.length
      const reply = await send(app.port, { path: "/flaky" })
      expect(reply.status).toBe(503)
      attempts.push(recorder.requests.length - before)
    }
    expect(attempts.slice(0, 50)).toEqual(Array(50).fill(3))
    expect(attempts.slice(50)).toEqual([1, 1, 1])
    // abortOnClientClose: false hands every request the one fetch itself.
    expect(seenFetches.size).toBe(1)
  })

  it("checks its options at once", () => {
    expect(() => authFetchMiddleware(tokens, {})).toThrow(/baseUrl or origins/)
    expect(() => authFetchMiddleware(tokens, { baseUrl: "http://api.example.com" })).toThrow(/https/)
  })
})
