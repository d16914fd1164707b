/**
 * Bodies through the proxy route: a 10 MiB upload generated lazily streams
 * to the upstream intact (the sandbox hashes it), an upload over
 * `maxBodyBytes` is refused with 413 (by `Content-Length`, and while
 * streaming), and a response body is handed on as a stream. Over real HTTP
 * against `next start`, with bounded memory, in examples/next-app.
 */
import { createHash } from "node:crypto"
import { type Sandbox, startSandbox } from "@authfetch/sandbox"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { createProxyRoute, disposeTokenSources, type ProxyRoute } from "../src/index.ts"
import { expectClean } from "./support.ts"

const MiB = 1024 * 1024
const SECRET = "streaming-secret"
let sandbox: Sandbox
let route: ProxyRoute

beforeAll(async () => {
  sandbox = await startSandbox({
    profile: "wex",
    clients: [{ clientId: "next-stream", clientSecret: SECRET }]
  })
  route = createProxyRoute({
    tokens: { tokenUrl: sandbox.tokenUrl, clientId: "next-stream", clientSecret: SECRET },
    baseUrl: sandbox.baseUrl,
    prefix: "/api/benefits",
    maxBodyBytes: 16 * MiB
  })
})
afterAll(async () => {
  await disposeTokenSources()
  await sandbox.close()
})

/** `total` bytes of a repeatable pattern, produced chunk by chunk as the reader pulls. */
const lazyBody = (total: number, hash = createHash("sha256"), onPull?: (sent: number) => void) => {
  let sent = 0
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      onPull?.(sent)
      if (sent >= total) return controller.close()
      const size = Math.min(64 * 1024, total - sent)
      const chunk = new Uint8Array(size)
      for (let i = 0; i < size; i++) chunk[i] = (sent + i) % 251
      sent += size
      hash.update(chunk)
      controller.enqueue(chunk)
    }
  })
  return { stream, hash, sent: () => sent }
}

const upload = (body: ReadableStream<Uint8Array>, headers: Record<string, string> = {}) =>
  route.POST(
    new Request("http://next.local/api/benefits/v1/documents", {
      method: "POST",
      body,
      headers: { "content-type": "application/octet-stream", ...headers },
      duplex: "half"
    } as RequestInit)
  )

describe("bodies through the proxy route", () => {
  it("streams a 10 MiB upload to the upstream intact", async () => {
    const { stream, hash } = lazyBody(10 * MiB)
    const response = await upload(stream)
    expect(response.status).toBe(201)
    const document = (await response.json()) as { bytes: number; sha256: string }
    expect(document.bytes).toBe(10 * MiB)
    expect(document.sha256).toBe(hash.digest("hex"))
  })

  it("holds a bounded amount of memory however much streams through (40 MiB; live ArrayBuffers after a GC)", async () => {
    const gc = (globalThis as { gc?: () => void }).gc
    if (gc === undefined) throw new Error("run with --expose-gc")
    const large = createProxyRoute({
      tokens: { tokenUrl: sandbox.tokenUrl, clientId: "next-stream", clientSecret: SECRET },
      baseUrl: sandbox.baseUrl,
      prefix: "/api/benefits",
      maxBodyBytes: 64 * MiB
    })
    gc()
    const baseline = process.memoryUsage().arrayBuffers
    let peak = 0
    const { stream, hash } = lazyBody(40 * MiB, createHash("sha256"), (sent) => {
      if (sent % (4 * MiB) !== 0) return
      gc()
      peak = Math.max(peak, process.memoryUsage().arrayBuffers - baseline)
    })
    const response = await large.POST(
      new Request("http://next.local/api/benefits/v1/documents", {
        method: "POST",
        body: stream,
        duplex: "half"
      } as RequestInit)
    )
    expect(response.status).toBe(201)
    expect(((await response.json()) as { sha256: string }).sha256).toBe(hash.digest("hex"))
    // What is in flight (stream queues, socket buffers, the in-process sandbox's reads) measured 0.2 to
    // 6 MiB; a copy of the body kept anywhere (buffered before sending, or teed) would reach 40.
    expect(peak).toBeLessThan(12 * MiB)
  })

  it("refuses an upload over maxBodyBytes with 413 problem+json, declared or streamed, reading no further", async () => {
    const declared = await route.POST(
      new Request("http://next.local/api/benefits/v1/documents", {
        method: "POST",
        body: new Uint8Array(17 * MiB),
        headers: { "content-length": String(17 * MiB) }
      })
    )
    expect(declared.status).toBe(413)
    const { stream, sent } = lazyBody(64 * MiB)
    const streamed = await upload(stream)
    expect(streamed.status).toBe(413)
    expect(streamed.headers.get("content-type")).toBe("application/problem+json")
    const text = await streamed.text()
    expect(JSON.parse(text)).toMatchObject({ status: 413, title: expect.stringMatching(/Too Large$/) })
    expectClean(text, [SECRET])
    // The stream was abandoned soon after the limit, not read to its 64 MiB end.
    expect(sent()).toBeLessThan(24 * MiB)
  })

  it("hands the upstream's response body on as a stream", async () => {
    const response = await route.GET(new Request("http://next.local/api/benefits/v1/claims?pageSize=100"))
    expect(response.status).toBe(200)
    expect(response.body).toBeInstanceOf(ReadableStream)
    const reader = response.body!.getReader()
    let bytes = 0
    for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read())
      bytes += chunk.value.byteLength
    expect(bytes).toBeGreaterThan(1000)
  })
})
