/**
 * Bodies through the Express proxy: a 10 MiB upload streamed to the sandbox
 * (which hashes it) with bounded memory, uploads over `maxBodyBytes` refused
 * with 413 (declared and chunked), a large download written back with
 * backpressure, and what happens with a body parser mounted before the proxy.
 */
import { createServer, request, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import { createTokenSource, type TokenSourceHandle } from "@authfetch/core"
import { DEFAULT_CLIENT, type Sandbox, startSandbox } from "@authfetch/sandbox"
import express from "express"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { createProxy, problemDetails } from "../src/index.ts"
import {
  type Listening,
  lazyBytes,
  type Recorder,
  send,
  serve,
  sha256OfLazy,
  startRecorder
} from "./support/servers.ts"

const MiB = 1024 * 1024

let sandbox: Sandbox
let recorder: Recorder
let tokens: TokenSourceHandle
let app: Listening
const configErrors: Array<unknown> = []

beforeAll(async () => {
  ;[sandbox, recorder] = await Promise.all([
    startSandbox({ profile: "wex", tokenRateLimit: false }),
    startRecorder()
  ])
  tokens = createTokenSource({ tokenUrl: sandbox.tokenUrl, ...DEFAULT_CLIENT })
  const server = express()
  server.use("/big", createProxy({ tokens, baseUrl: sandbox.baseUrl, maxBodyBytes: 16 * MiB }))
  server.use("/small", createProxy({ tokens, baseUrl: `${recorder.url}/api`, maxBodyBytes: MiB }))
  // The documented mistake: a body parser before the proxy.
  server.use("/parsed", express.json(), createProxy({ tokens, baseUrl: `${recorder.url}/api` }))
  // The documented order: the proxy first, body parsers for the app's own routes after it.
  server.use(express.json())
  server.post("/own", (req, res) => {
    res.json({ echoed: req.body })
  })
  server.use(
    problemDetails({
      onError: (error) => {
        configErrors.push(error)
      }
    })
  )
  app = await serve(server)
})
afterAll(async () => {
  await tokens.dispose()
  await Promise.all([app.close(), recorder.close(), sandbox.close()])
})

const gc = (globalThis as { gc?: () => void }).gc

/**
 * Live JS heap plus `ArrayBuffer` memory after two full collections (the
 * second one also finishes the sweeping of array buffers the first one freed).
 */
const memory = () => {
  gc!()
  gc!()
  const usage = process.memoryUsage()
  return usage.heapUsed + usage.arrayBuffers
}

/**
 * Runs `task` while measuring the memory it holds: every 10 ms a full
 * collection, then a sample (so garbage not yet collected is not counted:
 * what is measured is what the streams retain). The peak growth over a
 * collected baseline.
 */
const peakRetained = async <A>(task: () => Promise<A>): Promise<{ result: A; growth: number }> => {
  if (gc === undefined) throw new Error("run with --expose-gc (vitest.config.ts sets it)")
  const baseline = memory()
  let peak = baseline
  const timer = setInterval(() => {
    peak = Math.max(peak, memory())
  }, 10)
  try {
    const result = await task()
    return { result, growth: peak - baseline }
  } finally {
    clearInterval(timer)
  }
}

describe("uploads", () => {
  it("streams a 10 MiB upload to the upstream intact, with bounded memory", async () => {
    const size = 10 * MiB
    const expected = await sha256OfLazy(size)
    // Warm up (connection pools, JIT), so the measurement is the upload's own.
    await send(app.port, {
      path: "/big/v1/documents",
      method: "POST",
      headers: { "content-type": "application/octet-stream" },
      body: () => lazyBytes(256 * 1024)
    })
    const { result: reply, growth } = await peakRetained(() =>
      send(app.port, {
        path: "/big/v1/documents",
        method: "POST",
        headers: { "content-type": "application/octet-stream" },
        body: () => lazyBytes(size)
      })
    )
    expect(reply.status).toBe(201)
    const document = JSON.parse(reply.text)
    expect(document).toMatchObject({ bytes: size, sha256: expected })
    // The control: the same measurement sees a body held whole.
    const { growth: held } = await peakRetained(async () => {
      const chunks: Array<Uint8Array> = []
      for await (const chunk of lazyBytes(size)) {
        chunks.push(chunk)
        await new Promise((resolve) => setImmediate(resolve))
      }
      await new Promise((resolve) => setTimeout(resolve, 30))
      return chunks.length
    })
    console.log(
      `10 MiB upload: peak retained heapUsed+arrayBuffers growth ${(growth / MiB).toFixed(2)} MiB ` +
        `(control, the body held whole: ${(held / MiB).toFixed(2)} MiB)`
    )
    expect(held).toBeGreaterThan(9 * MiB)
    expect(growth).toBeLessThan(3 * MiB)
  })

  it("refuses a body over maxBodyBytes announced by Content-Length with 413, before calling the upstream", async () => {
    recorder.started.length = 0
    const reply = await send(app.port, {
      path: "/small/v1/documents",
      method: "POST",
      headers: { "content-type": "application/octet-stream", "content-length": String(2 * MiB) },
      body: () => lazyBytes(2 * MiB)
    })
    expect(reply.status).toBe(413)
    expect(reply.headers["content-type"]).toBe("application/problem+json")
    expect(JSON.parse(reply.text)).toMatchObject({ status: 413, title: "Content Too Large" })
    expect(recorder.started).toHaveLength(0)
  })

  it("refuses a chunked body that grows over maxBodyBytes with 413 while streaming", async () => {
    const reply = await send(app.port, {
      path: "/small/v1/documents",
      method: "POST",
      headers: { "content-type": "application/octet-stream" },
      body: () => lazyBytes(3 * MiB)
    })
    expect(reply.status).toBe(413)
    expect(reply.headers["content-type"]).toBe("application/problem+json")
    expect(JSON.parse(reply.text)).toMatchObject({
      status: 413,
      detail: `The request body exceeds ${MiB} bytes.`
    })
    // Whatever the upstream had started to receive, it never got a complete request.
    expect(recorder.requests.filter((r) => r.bytes > MiB)).toHaveLength(0)
  })

  it("keeps the connection usable after a small chunked overrun (the rest is read and discarded)", async () => {
    const agent = new (await import("node:http")).Agent({ keepAlive: true, maxSockets: 1 })
    const post = (bytes: number, chunked: boolean) =>
      new Promise<{ status: number; socket: unknown }>((resolve, reject) => {
        const req = request(
          {
            host: "127.0.0.1",
            port: app.port,
            path: "/small/v1/documents",
            method: "POST",
            agent,
            headers: chunked
              ? { "content-type": "application/octet-stream" }
              : { "content-length": String(bytes), "content-type": "application/octet-stream" }
          },
          (res) => {
            res.resume()
            res.on("end", () => resolve({ status: res.statusCode ?? 0, socket: req.socket }))
          }
        )
        req.on("error", reject)
        if (chunked) req.write(Buffer.alloc(bytes, 1))
        req.end(chunked ? undefined : Buffer.alloc(bytes, 1))
      })
    const first = await post(MiB + 1000, true)
    const second = await post(1000, false)
    expect(first.status).toBe(413)
    expect(second.status).toBe(200)
    expect(second.socket).toBe(first.socket)
    agent.destroy()
  })
})

describe("downloads", () => {
  let big: Server
  let written = 0
  let upstreamUrl = ""

  beforeAll(async () => {
    // An upstream that writes 64 MiB with backpressure and counts what it could write.
    big = createServer(async (_req, res) => {
      written = 0
      res.writeHead(200, { "content-type": "application/octet-stream" })
      for await (const chunk of lazyBytes(64 * MiB)) {
        written += chunk.byteLength
        if (!res.write(chunk)) {
          await new Promise<void>((resolve) => {
            const done = () => {
              res.off("drain", done)
              res.off("close", done)
              resolve()
            }
            res.on("drain", done)
            res.on("close", done)
          })
        }
        if (res.destroyed) return
      }
      res.end()
    })
    await new Promise<void>((resolve) => big.listen(0, "127.0.0.1", resolve))
    upstreamUrl = `http://127.0.0.1:${(big.address() as AddressInfo).port}`
  })
  afterAll(
    () =>
      new Promise<void>((resolve) => {
        big.close(() => resolve())
        big.closeAllConnections()
      })
  )

  it("writes a large response back with backpressure: a client that stops reading stops the upstream", async () => {
    const server = express()
    server.use("/dl", createProxy({ tokens, baseUrl: upstreamUrl }))
    const local = await serve(server)
    try {
      const baseline = memory()
      const result = await new Promise<{
        received: number
        writtenWhilePaused: number
        retainedWhilePaused: number
      }>((resolve, reject) => {
        const req = request({ host: "127.0.0.1", port: local.port, path: "/dl/file" }, (res) => {
          let received = 0
          res.on("data", (chunk: Buffer) => {
            received += chunk.byteLength
          })
          res.pause()
          // Not reading for 400 ms: what the upstream managed to write is what the buffers hold.
          setTimeout(() => {
            const retainedWhilePaused = memory() - baseline
            const writtenWhilePaused = written
            res.resume()
            res.on("end", () => resolve({ received, writtenWhilePaused, retainedWhilePaused }))
          }, 400)
        })
        req.on("error", reject)
        req.end()
      })
      expect(result.received).toBe(64 * MiB)
      console.log(
        `64 MiB download: upstream wrote ${(result.writtenWhilePaused / MiB).toFixed(1)} MiB while the client paused; ` +
          `memory held meanwhile ${(result.retainedWhilePaused / MiB).toFixed(2)} MiB`
      )
      // The rest waits in the upstream: kernel socket buffers hold the few MiB it could write.
      expect(result.writtenWhilePaused).toBeLessThan(32 * MiB)
      expect(result.retainedWhilePaused).toBeLessThan(8 * MiB)
    } finally {
      await local.close()
    }
  })
})

describe("body parsers", () => {
  it("a body parsed before the proxy is refused as a configuration error (500 problem, nothing forwarded)", async () => {
    recorder.started.length = 0
    configErrors.length = 0
    const reply = await send(app.port, {
      path: "/parsed/v1/claims",
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ amount: 1 })
    })
    expect(reply.status).toBe(500)
    expect(JSON.parse(reply.text)).toEqual({
      type: "about:blank",
      title: "Internal Server Error",
      status: 500,
      detail: "The server is not configured to call the upstream."
    })
    expect(recorder.started).toHaveLength(0)
    expect(configErrors).toHaveLength(1)
    expect(configErrors[0]).toMatchObject({ _tag: "InvalidConfigError" })
    expect(String(configErrors[0])).toContain("mount the proxy before body parsers")
    // Requests without a body still pass.
    const get = await send(app.port, { path: "/parsed/v1/claims" })
    expect(get.status).toBe(200)
  })

  it("with the proxy mounted first, bodies stream through it and the app's own routes still parse JSON", async () => {
    const proxied = await send(app.port, {
      path: "/small/v1/claims",
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ amount: 2 })
    })
    expect(proxied.status).toBe(200)
    expect(JSON.parse(proxied.text)).toMatchObject({ bytes: 12 })
    const own = await send(app.port, {
      path: "/own",
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ a: 1 })
    })
    expect(JSON.parse(own.text)).toEqual({ echoed: { a: 1 } })
  })
})
