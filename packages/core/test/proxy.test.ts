/**
 * The core proxy handler: the shared attack corpus, and what an allowed
 * request looks like on both sides.
 */
import { createHash } from "node:crypto"
import { createServer as createHttpsServer } from "node:https"
import type { AddressInfo } from "node:net"
import { gzipSync } from "node:zlib"
import { DEFAULT_CLIENT, type Sandbox, startSandbox } from "@authfetch/sandbox"
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest"
import {
  BffProxy,
  createTokenSource,
  InvalidConfigError,
  OAuthError,
  ProblemDetailsError,
  RateLimitedError,
  RequestTimeoutError,
  RetriesExhaustedError,
  type TokenSourceHandle,
  TokenStoreError
} from "../src/index.ts"
import { nodeUpstream } from "../src/internal/nodeUpstream.ts"
import { abandonedUploads, headerAttacks, hostileAllow, pathAttacks } from "./proxy/attacks.ts"
import {
  answerOf,
  type CorpusTarget,
  describeAbandonedUploads,
  describeHostileUpstream,
  describeUnauthorizedStorm,
  lazyBytes,
  streamOf
} from "./proxy/corpus.ts"
import { type HostileUpstream, kernelConnections, startHostileUpstream } from "./proxy/hostileUpstream.ts"
import { issueToken, startTokenServer, type TokenServer } from "./support/tokenServer.ts"

let auth: TokenServer
let upstream: TokenServer
let trap: TokenServer
let tokens: TokenSourceHandle
let handle: BffProxy.ProxyHandler
let sandbox: Sandbox
let hostile: HostileUpstream
let hostileTrap: HostileUpstream
let sandboxTokens: TokenSourceHandle
let hostileHandle: BffProxy.ProxyHandler
let patientHandle: BffProxy.ProxyHandler

beforeAll(async () => {
  ;[auth, upstream, trap, sandbox, hostile, hostileTrap] = await Promise.all([
    startTokenServer(),
    startTokenServer(),
    startTokenServer(),
    startSandbox({ profile: "wex" }),
    startHostileUpstream(),
    startHostileUpstream()
  ])
  tokens = createTokenSource({ tokenUrl: auth.tokenUrl, clientId: "bff", clientSecret: "bff-secret" })
  handle = BffProxy.createProxyHandler({
    tokens,
    baseUrl: `${upstream.url}/api`,
    allow: ["/v1/**"],
    maxBodyBytes: 16 * 1024 * 1024,
    attemptTimeout: "1 second",
    retry: { baseDelay: "5 millis", maxDelay: "10 millis" },
    onError: false
  })
  // The WEX emulator's token endpoint (100 token requests a minute per client) behind the hostile upstream.
  sandboxTokens = createTokenSource({ tokenUrl: sandbox.tokenUrl, ...DEFAULT_CLIENT })
  hostileHandle = BffProxy.createProxyHandler({
    tokens: sandboxTokens,
    baseUrl: `${hostile.url}/api`,
    allow: hostileAllow,
    maxBodyBytes: 16 * 1024 * 1024,
    attemptTimeout: "1 second",
    retry: { baseDelay: "5 millis", maxDelay: "10 millis" },
    onError: false
  })
  // The same with a long timeout: uploads there are given up on by the caller.
  patientHandle = BffProxy.createProxyHandler({
    tokens: sandboxTokens,
    baseUrl: `${hostile.url}/api`,
    allow: hostileAllow,
    maxBodyBytes: 16 * 1024 * 1024,
    attemptTimeout: "30 seconds",
    onError: false
  })
})
afterEach(() => {
  upstream.requests.length = 0
  trap.requests.length = 0
  upstream.setDefault(() => ({ status: 200, body: { ok: true } }))
})
afterAll(async () => {
  await Promise.all([tokens.dispose(), sandboxTokens.dispose()])
  await Promise.all([
    auth.close(),
    upstream.close(),
    trap.close(),
    sandbox.close(),
    hostile.close(),
    hostileTrap.close()
  ])
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

  it("answers a small upstream body whole, with its length and without our token; a larger one streams", async () => {
    const token = (await tokens.getToken()).reveal()
    // a success (an error answer is cleaned before, by Bearer.withoutToken, and streams)
    const echo = `{"data":"ok","echo":"${token}"}`
    upstream.enqueue({
      status: 200,
      text: echo,
      headers: { "content-type": "application/json", "content-length": String(Buffer.byteLength(echo)) }
    })
    const small = await call("/v1/consumers/1")
    const text = await small.text()
    expect(text).toBe('{"data":"ok","echo":"<redacted>"}')
    expect(small.headers.get("content-length")).toBe(String(Buffer.byteLength(text)))
    const large = "x".repeat(20 * 1024)
    upstream.enqueue({
      status: 200,
      text: `${large}${token}`,
      headers: { "content-length": String(large.length + token.length) }
    })
    const big = await call("/v1/consumers/1")
    expect(big.headers.get("content-length")).toBeNull()
    expect(await big.text()).toBe(`${large}<redacted>`)
  })

  it("refuses a body over maxBodyBytes with 413, by Content-Length and while streaming", async () => {
    const small = BffProxy.createProxyHandler({ tokens, baseUrl: `${upstream.url}/api`, maxBodyBytes: 1024 })
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
    const dead = BffProxy.createProxyHandler({
      tokens,
      baseUrl: "http://127.0.0.1:9/api",
      retry: false,
      onError: false
    })
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

const HOSTILE_MOUNT = "/hostile"

/** A request through the core handler as a framework would make it, mounted at /hostile. */
const viaCore = async (
  path: string,
  options: {
    method?: string
    headers?: Readonly<Record<string, string>>
    body?: () => AsyncIterable<Uint8Array>
    signal?: AbortSignal
  } = {},
  proxy: BffProxy.ProxyHandler = hostileHandle
) => {
  const request = new Request(`http://bff.local${HOSTILE_MOUNT}${path}`, {
    method: options.method ?? "GET",
    ...(options.headers === undefined ? {} : { headers: options.headers }),
    ...(options.body === undefined ? {} : { body: streamOf(options.body()), duplex: "half" }),
    ...(options.signal === undefined ? {} : { signal: options.signal })
  } as RequestInit)
  return answerOf(await proxy(request, path, { mount: HOSTILE_MOUNT }))
}

const hostileTarget = (): CorpusTarget => ({
  mount: HOSTILE_MOUNT,
  upstream: hostile,
  trap: hostileTrap,
  send: viaCore
})

describeHostileUpstream("core handler", hostileTarget, "timeout")
describeAbandonedUploads(
  "core handler",
  () => ({
    ...hostileTarget(),
    send: (path, options) => viaCore(path, options, patientHandle)
  }),
  "abort"
)

describeUnauthorizedStorm("core handler", () => ({
  upstream: hostile,
  send: (path) => viaCore(path),
  tokenRequests: () => sandbox.stats().tokenRequests.total
}))

describe("checkPath and look-alikes", () => {
  it("refuses what an upstream that normalises Unicode or trims would read as a dot segment or a slash", () => {
    const cases: Array<[string, string]> = [
      ["/v1/\uFF0E\uFF0E/admin", "look-alike dot segment"],
      ["/v1/%EF%BC%8E%EF%BC%8E/admin", "look-alike dot segment"],
      ["/v1/%E2%80%A5/admin", "look-alike dot segment"],
      ["/v1/%E3%80%82%E3%80%82", "look-alike dot segment"],
      ["/v1/..%20/admin", "look-alike dot segment"],
      ["/v1/.%20./admin", "look-alike dot segment"],
      ["/v1/..%E2%80%8B", "look-alike dot segment"],
      ["/v1/%20/admin", "blank segment"],
      ["/v1/..%EF%BC%8Fadmin", "look-alike slash"],
      ["/v1/a%EF%BC%BCb", "look-alike slash"]
    ]
    for (const [path, reason] of cases) expect(BffProxy.checkPath(path), path).toEqual({ ok: false, reason })
  })

  it("keeps paths whose non-ASCII or blank characters are only text", () => {
    for (const path of [
      "/v1/files/r%C3%A9sum%C3%A9%20final.pdf",
      "/v1/files/a%20b",
      "/v1/files/..x",
      "/v1/files/x..",
      "/v1/files/%E2%80%A6more",
      "/v1/files/%EF%BC%A1"
    ]) {
      expect(BffProxy.checkPath(path), path).toEqual({ ok: true, path, search: "" })
    }
  })
})

describe("problemFor: one table for the proxy and the adapters", () => {
  const problemDetails = (status: number) =>
    new ProblemDetailsError({ status, type: "about:blank", extensions: {}, body: "" })
  const timeout = new RequestTimeoutError({ method: "GET", url: "https://x/y", timeoutMillis: 100 })

  it("maps every core error, upstream status and refusal; nothing else", () => {
    const table: Array<[unknown, number | undefined, string?]> = [
      [
        new OAuthError({ code: "invalid_client", status: 401 }),
        502,
        "The upstream could not be authenticated."
      ],
      [new RateLimitedError({ retryAfterMillis: 1500, source: "server" }), 503],
      [new TokenStoreError({ operation: "get" }), 503],
      [
        new InvalidConfigError({ problems: ["x"] }),
        500,
        "The server is not configured to call the upstream."
      ],
      [timeout, 504, "The upstream did not answer in time."],
      [
        new RetriesExhaustedError({
          method: "GET",
          url: "https://x/y",
          attempts: 3,
          reason: "attempts",
          cause: timeout
        }),
        504
      ],
      [
        new RetriesExhaustedError({
          method: "GET",
          url: "https://x/y",
          attempts: 3,
          reason: "attempts",
          cause: 1
        }),
        502,
        "The upstream could not be reached."
      ],
      [new TypeError("fetch failed"), 502, "The upstream could not be reached."],
      [problemDetails(401), 502, "The upstream refused our credentials."],
      [problemDetails(403), 502, "The upstream refused our credentials."],
      [problemDetails(407), 502, "The upstream refused our credentials."],
      [problemDetails(408), 504],
      [problemDetails(429), 503],
      [problemDetails(404), 404, "The upstream answered 404."],
      [problemDetails(500), 502, "The upstream failed."],
      [problemDetails(504), 504],
      [new BffProxy.ProxyError({ reason: "path_refused", check: "dot segment" }), 400],
      [new BffProxy.ProxyError({ reason: "upstream_redirect", upstreamStatus: 302 }), 502],
      [new BffProxy.ProxyError({ reason: "upstream_status", upstreamStatus: 403 }), 502],
      [new TypeError("undefined is not a function"), undefined],
      [new Error("boom"), undefined],
      ["text", undefined]
    ]
    for (const [error, status, detail] of table) {
      const answer = BffProxy.problemFor(error)
      expect(answer?.status, String(error)).toBe(status)
      if (answer !== undefined) {
        expect(answer.title).toBe(
          {
            400: "Bad Request",
            404: "Not Found",
            500: "Internal Server Error",
            502: "Bad Gateway",
            503: "Service Unavailable",
            504: "Gateway Timeout"
          }[answer.status]
        )
      }
      if (detail !== undefined) expect(answer?.detail).toBe(detail)
    }
    expect(
      BffProxy.problemFor(new RateLimitedError({ retryAfterMillis: 1500, source: "server" }))?.retryAfter
    ).toBe(2)
  })

  it("logs a line with status, title and tag only", () => {
    const error = new OAuthError({
      code: "invalid_client",
      description: "secret s3cr3t-value is wrong",
      status: 401
    })
    expect(BffProxy.logLine(error, BffProxy.problemFor(error)!)).toBe("502 Bad Gateway (OAuthError)")
    const refused = new BffProxy.ProxyError({ reason: "upstream_status", upstreamStatus: 500 })
    expect(BffProxy.logLine(refused, BffProxy.problemFor(refused)!)).toBe(
      "502 Bad Gateway (ProxyError upstream_status 500)"
    )
  })
})

describe("proxy handler: errors it produces", () => {
  it("a wrong client secret: 502, and by default one stderr line without the secret; a refused path: nothing logged", async () => {
    const secret = "wrong-secret-0f3b9"
    auth.setDefault((request) =>
      request.form.get("client_id") === "bad-client"
        ? {
            status: 401,
            body: { error: "invalid_client", error_description: `client secret ${secret} is wrong` }
          }
        : {
            status: 200,
            body: { access_token: `at-x-${Math.random()}`, token_type: "Bearer", expires_in: 600 }
          }
    )
    const wrong = createTokenSource({ tokenUrl: auth.tokenUrl, clientId: "bad-client", clientSecret: secret })
    const lines: Array<string> = []
    const original = console.error
    console.error = (...args: Array<unknown>) => {
      lines.push(args.map(String).join(" "))
    }
    try {
      const proxy = BffProxy.createProxyHandler({
        tokens: wrong,
        baseUrl: `${upstream.url}/api`,
        allow: ["/v1/**"],
        retry: false
      })
      const refused = await proxy(new Request("http://bff.local/p"), "/v1/consumers/1")
      expect(refused.status).toBe(502)
      expect(await refused.text()).not.toContain(secret)
      expect(await (await proxy(new Request("http://bff.local/p"), "/internal")).text()).toContain(
        "Not Found"
      )
    } finally {
      console.error = original
      await wrong.dispose()
      auth.setDefault(() => issueToken())
    }
    expect(lines).toEqual(["[@authfetch/core] proxy answered 502 Bad Gateway (OAuthError)"])
    expect(upstream.requests).toHaveLength(0)
  })

  it("onError gets every problem the proxy answers with, 4xx included, with the request", async () => {
    const seen: Array<[string | undefined, number, string]> = []
    const proxy = BffProxy.createProxyHandler({
      tokens,
      baseUrl: `${upstream.url}/api`,
      allow: ["/v1/**"],
      retry: false,
      onError: (error, problem, request) =>
        seen.push([(error as { _tag?: string })._tag, problem.status, request.method])
    })
    upstream.enqueue({ status: 500, text: "stack trace" })
    await proxy(new Request("http://bff.local/p"), "/v1/x")
    await proxy(new Request("http://bff.local/p", { method: "OPTIONS" }), "/v1/x")
    await proxy(new Request("http://bff.local/p"), "/v1/%2e%2e/x")
    expect(seen).toEqual([
      ["ProxyError", 502, "GET"],
      ["ProxyError", 405, "OPTIONS"],
      ["ProxyError", 400, "GET"]
    ])
  })

  it("405 lists the methods forwarded in Allow, as handler.methods", async () => {
    const proxy = BffProxy.createProxyHandler({
      tokens,
      baseUrl: `${upstream.url}/api`,
      methods: ["get", "post"],
      onError: false
    })
    expect(proxy.methods).toEqual(["GET", "POST"])
    const refused = await proxy(new Request("http://bff.local/p", { method: "DELETE" }), "/v1/x")
    expect(refused.status).toBe(405)
    expect(refused.headers.get("allow")).toBe("GET, POST")
  })

  it("without a mount point, or with one a browser must not be sent to, same-origin redirects are refused", async () => {
    for (const mount of [undefined, "//evil.example", "/a/../b", "/a\\b"]) {
      upstream.enqueue({ status: 302, headers: { location: `${upstream.url}/api/v1/consumers/2` } })
      const response = await handle(
        new Request("http://bff.local/p"),
        "/v1/consumers/1",
        mount === undefined ? undefined : { mount }
      )
      expect(response.status, String(mount)).toBe(502)
      expect(response.headers.get("location")).toBeNull()
    }
    upstream.enqueue({ status: 302, headers: { location: `${upstream.url}/api/v1/consumers/2` } })
    const mounted = await handle(new Request("http://bff.local/p"), "/v1/consumers/1", { mount: "/bff/" })
    expect(mounted.status).toBe(302)
    expect(mounted.headers.get("location")).toBe("/bff/v1/consumers/2")
    expect(upstream.requests).toHaveLength(5)
  })
})

describe("createProxyHandler validates its options", () => {
  const fails = (options: unknown, ...parts: Array<string>) => {
    let thrown: unknown
    try {
      BffProxy.createProxyHandler(options as BffProxy.ProxyOptions)
    } catch (error) {
      thrown = error
    }
    expect(thrown, JSON.stringify(parts)).toBeInstanceOf(InvalidConfigError)
    for (const part of parts) expect(String((thrown as Error).message)).toContain(part)
  }

  it("throws InvalidConfigError naming each bad argument, never a TypeError", () => {
    fails(null, "proxy options must be an object", "null")
    fails(undefined, "proxy options must be an object", "undefined")
    fails("https://api.example.com", "proxy options must be an object", "string")
    fails({}, "`tokens` is missing", "`baseUrl` is missing")
    fails({ tokens: {}, baseUrl: "https://api.example.com" }, "`tokens` must be a token source")
    fails({ tokens, baseUrl: "not a url" }, "`baseUrl` is not an absolute URL")
    fails({ tokens, baseUrl: "http://api.example.com" }, "`baseUrl` must be https:")
    fails({ tokens, baseUrl: "https://api.example.com/?x=1" }, "`baseUrl` must be a plain origin and path")
    fails({ tokens, baseUrl: 42 }, "`baseUrl` must be a URL string")
    fails({ tokens, baseUrl: "https://api.example.com", allow: "/v1/**" }, "`allow`")
    fails({ tokens, baseUrl: "https://api.example.com", allow: ["v1/**"] }, "`allow`")
    fails({ tokens, baseUrl: "https://api.example.com", methods: [] }, "`methods`")
    fails(
      { tokens, baseUrl: "https://api.example.com", methods: ["GET", "TRACE"] },
      "`methods` cannot include TRACE"
    )
    fails({ tokens, baseUrl: "https://api.example.com", maxBodyBytes: -1 }, "`maxBodyBytes`")
    fails({ tokens, baseUrl: "https://api.example.com", attemptTimeout: "soon" }, "`attemptTimeout`")
    fails({ tokens, baseUrl: "https://api.example.com", retry: 3 }, "`retry`")
    fails(
      { tokens, baseUrl: "https://api.example.com", forwardHeaders: ["Cookie"] },
      "`forwardHeaders` cannot include Cookie"
    )
    fails({ tokens, baseUrl: "https://api.example.com", forwardHeaders: ["bad header"] }, "`forwardHeaders`")
    fails(
      {
        tokens,
        baseUrl: "https://api.example.com",
        responseHeaders: ["set-cookie", "Access-Control-Allow-Origin", "location"]
      },
      "`responseHeaders` cannot include set-cookie, Access-Control-Allow-Origin, location"
    )
    fails({ tokens, baseUrl: "https://api.example.com", fetch: "fetch" }, "`fetch` must be a function")
    fails(
      { tokens, baseUrl: "https://api.example.com", onError: true },
      "`onError` must be a function or false"
    )
  })

  it("passes extra response headers the options name, never the ones it refuses to", async () => {
    const proxy = BffProxy.createProxyHandler({
      tokens,
      baseUrl: `${upstream.url}/api`,
      responseHeaders: ["X-Total-Count"],
      onError: false
    })
    upstream.enqueue({ status: 200, body: [], headers: { "x-total-count": "3", "x-other": "1" } })
    const response = await proxy(new Request("http://bff.local/p"), "/v1/claims")
    expect(response.headers.get("x-total-count")).toBe("3")
    expect(response.headers.get("x-other")).toBeNull()
  })
})

/** A self-signed certificate for 127.0.0.1, for these tests only (valid until 2036). */
const TEST_KEY = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgfewuBqhuuBnuVaOA
kDymlLniMju/vMY7nJ4IRGC3666hRANCAAS7bssrK3wSD7iAxNmaI7dZfGoz4AF4
k5R/avMdHsYNzVI7CnLQLaYsUmrouyi4WRQeCf91qDr1cfPhtytjGets
-----END PRIVATE KEY-----`
const TEST_CERT = `-----BEGIN CERTIFICATE-----
MIIBqjCCAVCgAwIBAgIUOgfdCFIaH/eKYz3KgOO4JNHLPn4wCgYIKoZIzj0EAwIw
IjEgMB4GA1UEAwwXYXV0aGZldGNoIHRlc3QgdXBzdHJlYW0wHhcNMjYxMjA0MTYw
MDA3WhcNMzYxMjAxMTYwMDA3WjAiMSAwHgYDVQQDDBdhdXRoZmV0Y2ggdGVzdCB1
cHN0cmVhbTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABLtuyysrfBIPuIDE2Zoj
t1l8ajPgAXiTlH9q8x0exg3NUjsKctAtpixSaui7KLhZFB4J/3WoOvVx8+G3K2MZ
62yjZDBiMB0GA1UdDgQWBBTs48JbfuSmssxZJukl8oCZrmz86jAfBgNVHSMEGDAW
gBTs48JbfuSmssxZJukl8oCZrmz86jAPBgNVHRMBAf8EBTADAQH/MA8GA1UdEQQI
MAaHBH8AAAEwCgYIKoZIzj0EAwIDSAAwRQIgPlAuGTQCjEL1B3VfbCbAll/K9tAZ
Neq9lIxGkCU8vWUCIQDqFd2Ih2t7U+rmAzXcjs3bkR2iB7amMciMxIxGwgkg9w==
-----END CERTIFICATE-----`

describe("the proxy's own fetch in Node.js", () => {
  it("asks for and decodes gzip, then cuts our token out of the decoded body", async () => {
    hostile.reset()
    hostile.answer = (request) => ({
      status: 200,
      headers: { "content-type": "application/json", "content-encoding": "gzip" },
      body: gzipSync(JSON.stringify({ seen: `Bearer ${request.bearer}` }))
    })
    const answer = await viaCore("/v1/consumers/1")
    expect(answer.status).toBe(200)
    expect(JSON.parse(answer.text)).toEqual({ seen: "<redacted>" })
    expect(answer.header("content-encoding")).toBeUndefined()
    expect(hostile.requests[0]!.headers["accept-encoding"]).toContain("gzip")
  })

  it("under TLS too, uploads given up on reset the TCP connections beneath (the upstream's kernel has none left soon after)", async () => {
    const server = createHttpsServer({ key: TEST_KEY, cert: TEST_CERT }, (req) => {
      req.pause() // takes the headers, never reads the body, never answers
    })
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
    const { port } = server.address() as AddressInfo
    try {
      const proxy = BffProxy.createProxyHandler({
        tokens: sandboxTokens,
        baseUrl: `https://127.0.0.1:${port}/api`,
        maxBodyBytes: 16 * 1024 * 1024,
        attemptTimeout: "1 second",
        retry: false,
        onError: false,
        fetch: nodeUpstream({ ca: TEST_CERT })
      })
      const answers = await Promise.all(
        Array.from({ length: 3 }, () =>
          proxy(
            new Request("http://bff.local/p", {
              method: "POST",
              body: streamOf(lazyBytes(4 * 1024 * 1024)),
              duplex: "half"
            } as RequestInit),
            "/v1/documents"
          )
        )
      )
      expect(answers.map((a) => a.status)).toEqual([504, 504, 504])
      // the bound of the shared corpus (abandonedUploads.withinMs): room for a loaded machine
      const deadline = Date.now() + abandonedUploads.withinMs
      while (kernelConnections(port) > 0 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 10))
      }
      expect(kernelConnections(port)).toBe(0)
    } finally {
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
    }
  })
})
