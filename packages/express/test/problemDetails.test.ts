/**
 * `problemDetails()`: every error type of the core (and errors that are not
 * ours) becomes an RFC 9457 problem with the documented status, built from
 * recognisable secrets, tokens and internal URLs that must never appear in
 * the answer (body or headers); the original error still reaches `onError`.
 */
import {
  InvalidConfigError,
  InvalidTokenResponseError,
  OAuthError,
  ProblemDetailsError,
  RateLimitedError,
  RedirectError,
  RequestTimeoutError,
  RetriesExhaustedError,
  TokenEndpointError,
  TokenStoreError
} from "@authfetch/core"
import express from "express"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { problemDetails, toProblem } from "../src/index.ts"
import { type Listening, send, serve } from "./support/servers.ts"

const SECRET = "SECRET-7f3a9c-do-not-leak"
const TOKEN = "ATLEAK-0b1c2d3e4f"
const INTERNAL = "https://internal.wex.example:8443/api/v1/consumers/12345?client_secret=SECRET-7f3a9c"
const NEEDLES = [SECRET, "7f3a9c", TOKEN, "0b1c2d3e4f", "internal.wex.example", "8443", "client_secret"]
/** what a stack trace or an internal message looks like */
const INTERNALS = /\bat [\w.<>]+ \(|node:internal|\.ts:\d+|\.js:\d+|Error:|ECONNREFUSED|10\.1\.2\.3/

const fetchFailed = () => {
  const error = new TypeError("fetch failed")
  ;(error as { cause?: unknown }).cause = Object.assign(
    new Error(`connect ECONNREFUSED 10.1.2.3:8443 ${SECRET}`),
    { code: "ECONNREFUSED" }
  )
  return error
}

const upstreamProblem = (status: number) =>
  new ProblemDetailsError({
    status,
    type: "https://internal.wex.example/problems/db",
    title: `SQL failure ${SECRET}`,
    detail: `at Object.<anonymous> (/srv/app.js:1:1) Bearer ${TOKEN}`,
    extensions: { trace: SECRET },
    body: `{"detail":"Bearer ${TOKEN}","password":"${SECRET}"}`,
    method: "GET",
    url: INTERNAL
  })

const cases: ReadonlyArray<{
  readonly name: string
  readonly error: () => unknown
  readonly status: number
  readonly retryAfter?: string
}> = [
  {
    name: "OAuthError (an invalid_client echoing our secret)",
    error: () =>
      new OAuthError({
        code: "invalid_client",
        description: `bad secret ${SECRET}`,
        uri: INTERNAL,
        status: 401
      }),
    status: 502
  },
  {
    name: "TokenEndpointError (transport)",
    error: () =>
      new TokenEndpointError({
        reason: "transport",
        detail: `ECONNREFUSED: connect 10.1.2.3:8443 ${SECRET}`
      }),
    status: 502
  },
  {
    name: "TokenEndpointError (status)",
    error: () => new TokenEndpointError({ reason: "status", status: 500, detail: SECRET }),
    status: 502
  },
  {
    name: "InvalidTokenResponseError",
    error: () => new InvalidTokenResponseError({ reason: `access_token ${TOKEN}`, status: 200 }),
    status: 502
  },
  {
    name: "RateLimitedError (Retry-After rounded up to seconds)",
    error: () => new RateLimitedError({ source: "server", status: 429, retryAfterMillis: 2_500 }),
    status: 503,
    retryAfter: "3"
  },
  {
    name: "TokenStoreError",
    error: () => new TokenStoreError({ operation: "get", detail: SECRET }),
    status: 503
  },
  {
    name: "RequestTimeoutError",
    error: () => new RequestTimeoutError({ method: "GET", url: INTERNAL, timeoutMillis: 30_000 }),
    status: 504
  },
  {
    name: "RetriesExhaustedError after timeouts",
    error: () =>
      new RetriesExhaustedError({
        method: "GET",
        url: INTERNAL,
        attempts: 3,
        reason: "attempts",
        cause: new RequestTimeoutError({ method: "GET", url: INTERNAL, timeoutMillis: 1 })
      }),
    status: 504
  },
  {
    name: "RetriesExhaustedError after network failures",
    error: () =>
      new RetriesExhaustedError({
        method: "PUT",
        url: INTERNAL,
        attempts: 3,
        reason: "budget",
        cause: fetchFailed()
      }),
    status: 502
  },
  { name: "a fetch TypeError", error: fetchFailed, status: 502 },
  { name: "RedirectError", error: () => new RedirectError("too_many", `loop at ${INTERNAL}`), status: 502 },
  {
    name: "ProblemDetailsError 401 (our credentials refused)",
    error: () => upstreamProblem(401),
    status: 502
  },
  { name: "ProblemDetailsError 403", error: () => upstreamProblem(403), status: 502 },
  { name: "ProblemDetailsError 404 (kept)", error: () => upstreamProblem(404), status: 404 },
  { name: "ProblemDetailsError 422 (kept)", error: () => upstreamProblem(422), status: 422 },
  { name: "ProblemDetailsError 429", error: () => upstreamProblem(429), status: 503 },
  { name: "ProblemDetailsError 500", error: () => upstreamProblem(500), status: 502 },
  { name: "ProblemDetailsError 503", error: () => upstreamProblem(503), status: 502 },
  { name: "ProblemDetailsError 504", error: () => upstreamProblem(504), status: 504 },
  {
    name: "InvalidConfigError",
    error: () => new InvalidConfigError({ problems: [`clientSecret ${SECRET} rejected`, INTERNAL] }),
    status: 500
  },
  {
    name: "an http-errors style 413 from a body parser",
    error: () =>
      Object.assign(new Error(`request entity too large ${SECRET}`), { status: 413, expose: true }),
    status: 413
  },
  {
    name: "an error with statusCode 503",
    error: () => Object.assign(new Error(SECRET), { statusCode: 503 }),
    status: 503
  },
  {
    name: "an unknown Error with a token in its message",
    error: () => new Error(`boom Bearer ${TOKEN} ${INTERNAL}`),
    status: 500
  },
  { name: "a thrown string", error: () => `Bearer ${TOKEN}`, status: 500 },
  { name: "a thrown object", error: () => ({ token: TOKEN, status: "nope" }), status: 500 },
  { name: "a timeout DOMException", error: () => new DOMException(SECRET, "TimeoutError"), status: 504 }
]

let app: Listening
const logged: Array<{ error: unknown; status: number }> = []
let current: () => unknown = () => undefined

beforeAll(async () => {
  const server = express()
  server.get("/fail", (_req, _res, next) => next(current()))
  server.get("/fail-async", async () => {
    throw current()
  })
  server.get("/partial", (_req, res, next) => {
    res.setHeader("content-type", "application/json")
    res.write('{"started":')
    next(new Error(SECRET))
  })
  server.get("/stale-headers", (_req, res, next) => {
    res.setHeader("content-type", "text/html")
    res.setHeader("etag", '"x"')
    res.setHeader("access-control-allow-origin", "https://app.example")
    next(new RequestTimeoutError({ method: "GET", url: INTERNAL, timeoutMillis: 1 }))
  })
  server.use(
    problemDetails({
      onError: (error, _req, problem) => {
        logged.push({ error, status: problem.status })
      }
    })
  )
  app = await serve(server)
})
afterAll(() => app.close())

describe("problemDetails()", () => {
  for (const item of cases) {
    it(`${item.name} → ${item.status}, nothing internal`, async () => {
      current = item.error
      logged.length = 0
      for (const path of ["/fail", "/fail-async"]) {
        const reply = await send(app.port, { path })
        expect(reply.status).toBe(item.status)
        expect(reply.headers["content-type"]).toBe("application/problem+json")
        expect(reply.headers["cache-control"]).toBe("no-store")
        if (item.retryAfter) expect(reply.headers["retry-after"]).toBe(item.retryAfter)
        const body = JSON.parse(reply.text)
        expect(Object.keys(body).sort()).toEqual(["detail", "status", "title", "type"])
        expect(body).toMatchObject({ type: "about:blank", status: item.status })
        const everything = `${reply.text}\n${JSON.stringify(reply.headers)}`
        for (const needle of NEEDLES) expect(everything).not.toContain(needle)
        expect(everything).not.toMatch(INTERNALS)
        expect(everything).not.toMatch(/Bearer|stack/i)
      }
      // The original error, with everything in it, goes to the logger only.
      expect(logged).toHaveLength(2)
      expect(logged[0]!.status).toBe(item.status)
      expect(toProblem(item.error()).status).toBe(item.status)
    })
  }

  it("replaces representation headers set before the error, keeps the others (CORS)", async () => {
    const reply = await send(app.port, { path: "/stale-headers" })
    expect(reply.status).toBe(504)
    expect(reply.headers["content-type"]).toBe("application/problem+json")
    expect(reply.headers.etag).toBeUndefined()
    expect(reply.headers["access-control-allow-origin"]).toBe("https://app.example")
  })

  it("leaves an answer already started to Express (the connection is cut, nothing is appended)", async () => {
    const reply = await send(app.port, { path: "/partial" }).catch((error: Error) => error)
    // Either the client saw the truncated body end abruptly, or only the started part.
    if (reply instanceof Error) {
      expect(reply.message).toMatch(/aborted|socket hang up|ECONNRESET/)
    } else {
      expect(reply.text).not.toContain("problem")
      expect(reply.text).not.toContain(SECRET)
    }
  })

  it("logs 5xx answers to console.error by default: one line, status, title and tag only (no message, path or body)", async () => {
    const lines: Array<Array<unknown>> = []
    const original = console.error
    console.error = (...args: Array<unknown>) => {
      lines.push(args)
    }
    try {
      const server = express()
      server.get("/x", (_req, _res, next) => next(new Error("boom")))
      server.get("/y", (_req, _res, next) => next(Object.assign(new Error("no"), { status: 404 })))
      server.use(problemDetails())
      const local = await serve(server)
      try {
        expect((await send(local.port, { path: "/x?token=abc" })).status).toBe(500)
        expect((await send(local.port, { path: "/y" })).status).toBe(404)
      } finally {
        await local.close()
      }
    } finally {
      console.error = original
    }
    expect(lines).toEqual([["[@authfetch/express] 500 Internal Server Error (Error)"]])
  })
})
