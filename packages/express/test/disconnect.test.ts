/**
 * A client that disconnects mid-request aborts the upstream request: through
 * the proxy (waiting for the upstream's answer, while its body streams back,
 * while the upload streams in) and through `req.authFetch` (in flight, and
 * during a retry's backoff).
 */
import { createServer, request, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import { createTokenSource, type TokenSourceHandle } from "@authfetch/core"
import { DEFAULT_CLIENT, type Sandbox, startSandbox } from "@authfetch/sandbox"
import express from "express"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { authFetchMiddleware, createProxy, problemDetails } from "../src/index.ts"
import { type Listening, type Recorder, serve, startRecorder } from "./support/servers.ts"

let sandbox: Sandbox
let recorder: Recorder
let streamer: Server
let streamerUrl = ""
const streamed: Array<{ url: string; chunks: number; closedEarly: boolean }> = []
let tokens: TokenSourceHandle
let app: Listening
const routeOutcomes: Array<string> = []

const waitFor = async (condition: () => boolean, ms = 3_000): Promise<void> => {
  const until = Date.now() + ms
  while (!condition()) {
    if (Date.now() > until) throw new Error("timed out waiting")
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

beforeAll(async () => {
  ;[sandbox, recorder] = await Promise.all([
    startSandbox({ profile: "wex", tokenRateLimit: false }),
    startRecorder()
  ])
  // An upstream that streams a chunk every 20 ms for 10 s, and notes when its client left.
  streamer = createServer((req, res) => {
    const entry = { url: req.url ?? "", chunks: 0, closedEarly: false }
    streamed.push(entry)
    res.writeHead(200, { "content-type": "text/plain" })
    const timer = setInterval(() => {
      entry.chunks++
      res.write(`chunk ${entry.chunks}\n`)
      if (entry.chunks === 500) {
        clearInterval(timer)
        res.end()
      }
    }, 20)
    res.once("close", () => {
      clearInterval(timer)
      if (!res.writableFinished) entry.closedEarly = true
    })
  })
  await new Promise<void>((resolve) => streamer.listen(0, "127.0.0.1", resolve))
  streamerUrl = `http://127.0.0.1:${(streamer.address() as AddressInfo).port}`

  tokens = createTokenSource({ tokenUrl: sandbox.tokenUrl, ...DEFAULT_CLIENT })
  const server = express()
  server.use("/p", createProxy({ tokens, baseUrl: `${recorder.url}/api`, maxBodyBytes: 64 * 1024 * 1024 }))
  server.use("/s", createProxy({ tokens, baseUrl: streamerUrl }))
  server.use(
    "/route",
    authFetchMiddleware(tokens, {
      baseUrl: `${recorder.url}/api`,
      retry: { statuses: [503], maxRetries: 2 }
    })
  )
  server.get("/route/:name", async (req, res) => {
    try {
      const upstream = await req.authFetch(`/v1/${req.params.name}`)
      routeOutcomes.push(`status ${upstream.status}`)
      res.status(upstream.status).end()
    } catch (error) {
      routeOutcomes.push(`${(error as Error).name}: ${(error as Error).message}`)
      throw error
    }
  })
  server.use(problemDetails({ onError: false }))
  app = await serve(server)
})
afterAll(async () => {
  await tokens.dispose()
  await new Promise<void>((resolve) => {
    streamer.close(() => resolve())
    streamer.closeAllConnections()
  })
  await Promise.all([app.close(), recorder.close(), sandbox.close()])
})

/** Starts a request and returns a function that cuts its connection. */
const open = (path: string, options?: { method?: string; onResponse?: () => void; body?: boolean }) => {
  const req = request({
    host: "127.0.0.1",
    port: app.port,
    path,
    method: options?.method ?? "GET",
    agent: false
  })
  req.on("error", () => {})
  req.on("response", (res) => {
    res.on("error", () => {})
    res.once("data", () => options?.onResponse?.())
  })
  if (options?.body) {
    req.setHeader("content-type", "application/octet-stream")
    req.write(Buffer.alloc(256 * 1024, 1))
  } else {
    req.end()
  }
  return () => req.destroy()
}

describe("client disconnect through the proxy", () => {
  it("aborts the upstream request while waiting for its answer", async () => {
    recorder.answer = () => ({ hang: true })
    const cut = open("/p/v1/slow")
    await waitFor(() => recorder.requests.some((r) => r.url === "/api/v1/slow"))
    cut()
    await waitFor(() => recorder.aborted.includes("/api/v1/slow"))
  })

  it("aborts the upstream response while its body streams back", async () => {
    let received = false
    const cut = open("/s/download", {
      onResponse: () => {
        received = true
      }
    })
    await waitFor(() => received)
    cut()
    await waitFor(() => streamed.some((s) => s.url === "/download" && s.closedEarly))
    const entry = streamed.find((s) => s.url === "/download")!
    expect(entry.chunks).toBeLessThan(500)
  })

  it("aborts the upstream request while the upload streams in", async () => {
    recorder.answer = () => ({})
    const cut = open("/p/v1/documents", { method: "POST", body: true })
    await waitFor(() => recorder.started.includes("/api/v1/documents"))
    cut()
    await waitFor(() => recorder.aborted.includes("/api/v1/documents"))
    // It never saw a complete request.
    expect(recorder.requests.some((r) => r.url === "/api/v1/documents")).toBe(false)
  })
})

describe("client disconnect through req.authFetch", () => {
  it("aborts the call in flight", async () => {
    recorder.answer = (seen) => (seen.url === "/api/v1/hang" ? { hang: true } : {})
    routeOutcomes.length = 0
    const cut = open("/route/hang")
    await waitFor(() => recorder.requests.some((r) => r.url === "/api/v1/hang"))
    cut()
    await waitFor(() => recorder.aborted.includes("/api/v1/hang"))
    await waitFor(() => routeOutcomes.length === 1)
    expect(routeOutcomes[0]).toMatch(/^AbortError: The client closed the connection/)
  })

  it("ends a retry's backoff wait at once (no second attempt)", async () => {
    // Retry-After wins over the backoff: the core waits 10 s before a second attempt.
    recorder.answer = (seen) =>
      seen.url === "/api/v1/unavailable" ? { status: 503, headers: { "retry-after": "10" } } : {}
    routeOutcomes.length = 0
    const cut = open("/route/unavailable")
    await waitFor(() => recorder.requests.some((r) => r.url === "/api/v1/unavailable"))
    await new Promise((resolve) => setTimeout(resolve, 50))
    const started = Date.now()
    cut()
    await waitFor(() => routeOutcomes.length === 1)
    expect(Date.now() - started).toBeLessThan(1_000)
    expect(routeOutcomes[0]).toMatch(/^AbortError/)
    expect(recorder.requests.filter((r) => r.url === "/api/v1/unavailable")).toHaveLength(1)
  })
})
