/**
 * The shared proxy attack corpus (written once in core) against an Express app
 * over real HTTP, paths sent raw. Every hostile path is refused with its
 * status and problem+json (or, for what Node's HTTP parser refuses on its own,
 * Node's bare 400), and no request reaches any origin: not the upstream, and
 * not a trap server the attacks point at. Header attacks reach the upstream
 * with our bearer token and without the listed headers.
 */
import { createTokenSource, type TokenSourceHandle } from "@authfetch/core"
import { DEFAULT_CLIENT, type Sandbox, startSandbox } from "@authfetch/sandbox"
import express from "express"
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest"
import { headerAttacks, type PathAttack, pathAttacks } from "../../core/test/proxy/attacks.ts"
import { createProxy, problemDetails } from "../src/index.ts"
import { type Listening, type Recorder, send, sendRaw, serve, startRecorder } from "./support/servers.ts"

const PREFIX = "/benefits"

let sandbox: Sandbox
let upstream: Recorder
let trap: Recorder
let tokens: TokenSourceHandle
let app: Listening

beforeAll(async () => {
  ;[sandbox, upstream, trap] = await Promise.all([
    startSandbox({ profile: "wex", tokenRateLimit: false }),
    startRecorder(),
    startRecorder()
  ])
  tokens = createTokenSource({ tokenUrl: sandbox.tokenUrl, ...DEFAULT_CLIENT })
  const server = express()
  server.use(
    PREFIX,
    createProxy({
      tokens,
      baseUrl: `${upstream.url}/api`,
      allow: ["/v1/**"],
      attemptTimeout: "2 seconds",
      retry: { baseDelay: "5 millis", maxDelay: "10 millis" },
      onError: false
    })
  )
  server.use(problemDetails({ onError: false }))
  app = await serve(server)
})
afterEach(() => {
  upstream.requests.length = 0
  upstream.started.length = 0
  trap.requests.length = 0
  trap.started.length = 0
  upstream.answer = () => ({})
})
afterAll(async () => {
  await tokens.dispose()
  await Promise.all([app.close(), upstream.close(), trap.close(), sandbox.close()])
})

/** What `http.request` refuses to put in a request line (it checks for these). */
const UNSENDABLE = /[^\u0021-\u00ff]/

const LEAKS = /at .*\.[tj]s|127\.0\.0\.1|Bearer|stack|sandbox/i

/** Sends an attack; returns the status and the problem body (undefined for Node's own bare 400). */
const attack = async (
  path: string,
  method = "GET"
): Promise<{ status: number; problem: Record<string, unknown> | undefined; raw: boolean }> => {
  if (UNSENDABLE.test(path) || !path.startsWith("/")) {
    // A relative target has no place below a mount point: it is sent as the whole target.
    const target = path.startsWith("/") ? `${PREFIX}${path}` : path
    const answer = await sendRaw(app.port, `${method} ${target} HTTP/1.1`)
    if (answer.text === "" || answer.contentType === undefined) {
      return { status: answer.status, problem: undefined, raw: true }
    }
    expect(answer.contentType).toBe("application/problem+json")
    return { status: answer.status, problem: JSON.parse(/\{.*\}/s.exec(answer.text)![0]), raw: true }
  }
  const reply = await send(app.port, { path: `${PREFIX}${path}`, method })
  expect(reply.headers["content-type"]).toBe("application/problem+json")
  return { status: reply.status, problem: JSON.parse(reply.text), raw: false }
}

const expectRefused = async (item: PathAttack) => {
  const { status, problem, raw } = await attack(item.path, item.method)
  expect(item.status).toContain(status)
  if (problem === undefined) {
    // Node's HTTP parser refused the request line before Express saw it.
    expect(raw).toBe(true)
    expect(status).toBe(400)
  } else {
    expect(problem).toMatchObject({ type: "about:blank", status })
    expect(JSON.stringify(problem)).not.toMatch(LEAKS)
  }
  expect(upstream.started).toHaveLength(0)
  expect(trap.started).toHaveLength(0)
}

describe("shared attack corpus through Express over HTTP", () => {
  for (const item of pathAttacks) {
    it(`refuses ${item.name}: ${JSON.stringify(item.path)}`, () => expectRefused(item))
  }

  it("refuses the corpus aimed at a live trap server instead of evil.example", async () => {
    const aimed = pathAttacks.filter((a) => a.path.includes("evil.example"))
    expect(aimed.length).toBeGreaterThanOrEqual(6)
    for (const item of aimed) {
      await expectRefused({ ...item, path: item.path.replaceAll("evil.example", trap.host) })
    }
  })

  it("answers 405 problem+json to TRACE before building a web Request (and to TRACK/CONNECT, Node refuses)", async () => {
    for (const path of ["/v1/consumers/1", "/../admin"]) {
      const reply = await send(app.port, { path: `${PREFIX}${path}`, method: "TRACE" })
      expect(reply.status).toBe(405)
      expect(reply.headers["content-type"]).toBe("application/problem+json")
      expect(JSON.parse(reply.text)).toEqual({
        type: "about:blank",
        title: "Method Not Allowed",
        status: 405,
        detail: "TRACE is not forwarded."
      })
    }
    const withBody = await send(app.port, {
      path: `${PREFIX}/v1/consumers/1`,
      method: "TRACE",
      headers: { "content-type": "text/plain" },
      body: "echo me"
    })
    // Node's parser refuses a TRACE with a body on its own (RFC 9110 9.3.8: TRACE has none).
    expect(withBody.status).toBe(400)
    expect(withBody.text).toBe("")
    // TRACK is not a method Node's parser knows; CONNECT goes to the server's 'connect' event.
    expect((await sendRaw(app.port, `TRACK ${PREFIX}/v1/x HTTP/1.1`)).status).toBe(400)
    expect((await sendRaw(app.port, `CONNECT ${trap.host} HTTP/1.1`)).status).toBe(0)
    expect(upstream.started).toHaveLength(0)
    expect(trap.started).toHaveLength(0)
  })

  it("refuses an absolute-form request target (the router keeps its origin in req.url)", async () => {
    for (const target of [`http://${trap.host}${PREFIX}/v1/x`, `http://${upstream.host}${PREFIX}/v1/x`]) {
      const answer = await sendRaw(app.port, `GET ${target} HTTP/1.1`)
      expect(answer.status).toBe(400)
      expect(answer.contentType).toBe("application/problem+json")
    }
    expect(upstream.started).toHaveLength(0)
    expect(trap.started).toHaveLength(0)
  })

  it("does not follow an upstream redirect to the trap (502), nor pass the Location on", async () => {
    upstream.answer = () => ({ status: 302, headers: { location: `${trap.url}/steal` } })
    const reply = await send(app.port, { path: `${PREFIX}/v1/consumers/1` })
    expect(reply.status).toBe(502)
    expect(reply.headers.location).toBeUndefined()
    expect(reply.headers["content-type"]).toBe("application/problem+json")
    expect(trap.started).toHaveLength(0)
  })

  for (const item of headerAttacks) {
    it(`neutralises ${item.name}`, async () => {
      const reply = await send(app.port, { path: `${PREFIX}/v1/consumers/1`, headers: item.headers })
      expect(reply.status).toBe(200)
      expect(upstream.requests).toHaveLength(1)
      const seen = upstream.requests[0]!.headers
      expect(seen.authorization).toMatch(/^Bearer [A-Za-z0-9\-._~+/]+=*$/)
      expect(seen.authorization).not.toContain("attacker")
      for (const name of item.mustNotReach) expect(seen[name], name).toBeUndefined()
      expect(seen.host).toBe(upstream.host)
      expect(trap.started).toHaveLength(0)
    })
  }
})

describe("an allowed request through Express", () => {
  it("forwards the raw path and query, filters headers both ways, keeps the status", async () => {
    upstream.answer = () => ({
      status: 201,
      headers: {
        "set-cookie": "upstream=1",
        "www-authenticate": "Bearer",
        etag: '"v1"',
        "x-request-id": "r1"
      },
      body: JSON.stringify({ consumer: 1 })
    })
    const reply = await send(app.port, {
      path: `${PREFIX}/v1/files/a%20b/100%25?fields=name%20plan&x=%2e%2e`,
      headers: { accept: "application/json", "if-none-match": '"v0"', "x-custom": "dropped" }
    })
    expect(reply.status).toBe(201)
    expect(JSON.parse(reply.text)).toEqual({ consumer: 1 })
    expect(reply.headers["set-cookie"]).toBeUndefined()
    expect(reply.headers["www-authenticate"]).toBeUndefined()
    expect(reply.headers.etag).toBe('"v1"')
    expect(upstream.requests[0]!.url).toBe("/api/v1/files/a%20b/100%25?fields=name%20plan&x=%2e%2e")
    expect(upstream.requests[0]!.headers["if-none-match"]).toBe('"v0"')
    expect(upstream.requests[0]!.headers["x-custom"]).toBeUndefined()
  })

  it("passes a HEAD, and an upstream 404 problem as the upstream sent it", async () => {
    upstream.answer = () => ({
      status: 404,
      headers: { "content-type": "application/problem+json" },
      body: JSON.stringify({ type: "about:blank", title: "Not Found", status: 404 })
    })
    const missing = await send(app.port, { path: `${PREFIX}/v1/claims/x` })
    expect(missing.status).toBe(404)
    expect(JSON.parse(missing.text)).toMatchObject({ status: 404 })
    upstream.answer = () => ({})
    const head = await send(app.port, { path: `${PREFIX}/v1/claims`, method: "HEAD" })
    expect(head.status).toBe(200)
    expect(head.text).toBe("")
    expect(upstream.requests.map((r) => r.method)).toEqual(["GET", "HEAD"])
  })

  it("answers the mount point itself as the path '/' (outside the allow-list: 404)", async () => {
    const reply = await send(app.port, { path: `${PREFIX}?x=1` })
    expect(reply.status).toBe(404)
    expect(upstream.started).toHaveLength(0)
  })
})
