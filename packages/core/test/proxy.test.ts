/**
 * The core proxy handler: the shared attack corpus, and what an allowed
 * request looks like on both sides.
 */
import { createHash } from "node:crypto"
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest"
import { Proxy as BffProxy, createTokenSource, type TokenSourceHandle } from "../src/index.ts"
import { headerAttacks, pathAttacks } from "./proxy/attacks.ts"
import { startTokenServer, type TokenServer } from "./support/tokenServer.ts"

let auth: TokenServer
let upstream: TokenServer
let trap: TokenServer
let tokens: TokenSourceHandle
let handle: (request: Request, path: string) => Promise<Response>

beforeAll(async () => {
  ;[auth, upstream, trap] = await Promise.all([startTokenServer(), startTokenServer(), startTokenServer()])
  tokens = createTokenSource({ tokenUrl: auth.tokenUrl, clientId: "bff", clientSecret: "bff-secret" })
  handle = BffProxy.createProxyHandler({
    tokens,
    upstream: `${upstream.url}/api`,
    allow: ["/v1/**"],
    maxBodyBytes: 16 * 1024 * 1024,
    timeout: "1 second",
    retry: { baseDelay: "5 millis", maxDelay: "10 millis" }
  })
})
afterEach(() => {
  upstream.requests.length = 0
  trap.requests.length = 0
  upstream.setDefault(() => ({ status: 200, body: { ok: true } }))
})
afterAll(async () => {
  await tokens.dispose()
  await Promise.all([auth.close(), upstream.close(), trap.close()])
})

const call = (path: string, init?: RequestInit & { duplex?: "half" }) =>
  handle(new Request(`http://bff.local/proxy${path.startsWith("/") ? "" : "/"}${encodeURI("x")}`, init), path)

describe("proxy attack corpus (core handler)", () => {
  it("has at least 30 hostile paths and header sets", () => {
    expect(pathAttacks.length + headerAttacks.length).toBeGreaterThanOrEqual(30)
  })

  for (const attack of pathAttacks) {
    it(`refuses ${attack.name}: ${JSON.stringify(attack.path)}`, async () => {
      const response = await call(attack.path, { method: attack.method ?? "GET" })
      expect(attack.status).toContain(response.status)
      expect(response.headers.get("content-type")).toBe("application/problem+json")
      const body = await response.json()
      expect(body).toMatchObject({ type: "about:blank", status: response.status })
      expect(JSON.stringify(body)).not.toMatch(/at .*\.ts|127\.0\.0\.1|Bearer/)
      expect(upstream.requests).toHaveLength(0)
      expect(trap.requests).toHaveLength(0)
    })
  }

  for (const attack of headerAttacks) {
    it(`neutralises ${attack.name}`, async () => {
      const response = await call("/v1/consumers/1", { headers: attack.headers })
      expect(response.status).toBe(200)
      expect(upstream.requests).toHaveLength(1)
      const seen = upstream.requests[0]!.headers
      expect(seen.authorization).toMatch(/^Bearer at-/)
      for (const name of attack.mustNotReach) expect(seen[name], name).toBeUndefined()
      expect(seen.host).toBe(new URL(upstream.url).host)
      expect(trap.requests).toHaveLength(0)
    })
  }
})

describe("proxy handler", () => {
  it("forwards an allowed request with our token and filters headers both ways", async () => {
    upstream.enqueue({
      status: 200,
      body: { consumer: 1 },
      headers: {
        "set-cookie": "upstream=1",
        "www-authenticate": "Bearer",
        "x-request-id": "r1",
        etag: '"v1"'
      }
    })
    const response = await call("/v1/consumers/1?fields=name%20plan", {
      headers: { accept: "application/json", "if-none-match": '"v0"', "idempotency-key": "k" }
    })
    expect(response.status).toBe(200)
    expect(await response.json()).toEqual({ consumer: 1 })
    expect(response.headers.get("set-cookie")).toBeNull()
    expect(response.headers.get("www-authenticate")).toBeNull()
    expect(response.headers.get("etag")).toBe('"v1"')
    expect(upstream.requests[0]!.url).toBe("/api/v1/consumers/1?fields=name%20plan")
    expect(upstream.requests[0]!.headers["if-none-match"]).toBe('"v0"')
    expect(upstream.requests[0]!.headers["idempotency-key"]).toBe("k")
  })

  it("refuses a body over maxBodyBytes with 413, by Content-Length and while streaming", async () => {
    const small = BffProxy.createProxyHandler({ tokens, upstream: `${upstream.url}/api`, maxBodyBytes: 1024 })
    const declared = await small(
      new Request("http://bff.local/p", {
        method: "POST",
        body: "x".repeat(2048),
        headers: { "content-length": "2048" }
      }),
      "/v1/claims"
    )
    expect(declared.status).toBe(413)
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        controller.enqueue(new Uint8Array(512))
      }
    })
    const streamed = await small(
      new Request("http://bff.local/p", { method: "POST", body: stream, duplex: "half" } as RequestInit),
      "/v1/documents"
    )
    expect(streamed.status).toBe(413)
    expect(await streamed.json()).toMatchObject({ title: "Content Too Large" })
  })

  it("streams a 10 MiB upload to the upstream intact", async () => {
    upstream.setDefault((req) => ({
      status: 200,
      body: { bytes: Buffer.byteLength(req.rawBody, "latin1") }
    }))
    const chunk = new Uint8Array(64 * 1024).fill(7)
    let sent = 0
    const hash = createHash("sha256")
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent >= 10 * 1024 * 1024) return controller.close()
        sent += chunk.byteLength
        hash.update(chunk)
        controller.enqueue(chunk)
      }
    })
    const response = await call("/v1/documents", { method: "POST", body: stream, duplex: "half" })
    expect(response.status).toBe(200)
    expect(upstream.requests).toHaveLength(1)
    expect(upstream.requests[0]!.rawBody.length).toBe(10 * 1024 * 1024)
  })

  it("replays a small body after a 401, and answers 502 when the upstream keeps refusing us", async () => {
    upstream.enqueue({ status: 401 })
    const ok = await call("/v1/claims", {
      method: "POST",
      body: '{"a":1}',
      headers: { "content-type": "application/json", "content-length": "7" }
    })
    expect(ok.status).toBe(200)
    expect(upstream.requests.map((r) => r.rawBody)).toEqual(['{"a":1}', '{"a":1}'])
    upstream.setDefault(() => ({ status: 401 }))
    const refused = await call("/v1/consumers/1")
    expect(refused.status).toBe(502)
    expect(await refused.json()).toMatchObject({ detail: "The upstream refused our credentials." })
  })

  it("does not follow an upstream redirect to another origin", async () => {
    upstream.enqueue({ status: 302, headers: { location: `${trap.url}/steal` } })
    const response = await call("/v1/consumers/1")
    expect(response.status).toBe(502)
    expect(trap.requests).toHaveLength(0)
  })

  it("answers 504 when the upstream is too slow, 502 when it is unreachable", async () => {
    upstream.setDefault(() => ({ status: 200, delayMs: 1500 }))
    const slow = await call("/v1/consumers/1", { method: "POST", body: "{}" })
    expect(slow.status).toBe(504)
    const dead = BffProxy.createProxyHandler({ tokens, upstream: "http://127.0.0.1:9/api", retry: false })
    const unreachable = await dead(new Request("http://bff.local/p"), "/v1/x")
    expect(unreachable.status).toBe(502)
    expect(JSON.stringify(await unreachable.json())).not.toContain("127.0.0.1")
  })

  it("checkPath keeps the query as it is and the path encoded", () => {
    expect(BffProxy.checkPath("/v1/a%20b?x=%2e%2e&y=1")).toEqual({
      ok: true,
      path: "/v1/a%20b",
      search: "?x=%2e%2e&y=1"
    })
  })

  it("checkPath accepts a literal % encoded once, and still refuses what a second decoding would make dangerous", () => {
    for (const path of ["/v1/files/100%25", "/v1/files/50%25%20off", "/v1/files/%25zz", "/v1/%25/x"]) {
      expect(BffProxy.checkPath(path)).toEqual({ ok: true, path, search: "" })
    }
    expect(BffProxy.checkPath("/v1/%252e%252e/%25/admin")).toEqual({ ok: false, reason: "dot segment" })
    expect(BffProxy.checkPath("/v1/%25c0%25ae/%25")).toEqual({
      ok: false,
      reason: "malformed percent-encoding"
    })
    expect(BffProxy.checkPath("/v1/100%")).toEqual({ ok: false, reason: "malformed percent-encoding" })
  })
})
