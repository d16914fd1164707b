/**
 * ky's errors keep ky's shape: `HTTPError` (response, request, options, data)
 * gains `problem`, parsed by the core; the core's give-ups become ky's
 * `NetworkError`/`TimeoutError`; token errors pass through typed. And no
 * rendering of any of them holds the bearer token.
 */
import { inspect } from "node:util"
import { OAuthError, ProblemDetailsError, RequestTimeoutError, RetriesExhaustedError } from "@authfetch/core"
import ky, { HTTPError, isHTTPError, isKyError, NetworkError, TimeoutError } from "ky"
import { afterEach, describe, expect, it } from "vitest"
import { WEX_EXPIRED_BODY } from "../../core/test/scenarios/scenarios.ts"
import { issueToken } from "../../core/test/support/tokenServer.ts"
import { authKyOptions, problemOf } from "../src/index.ts"
import { closeAll, fast, rejectionOf, setup } from "./support.ts"

afterEach(closeAll)

const wexExpired = {
  status: 401,
  text: WEX_EXPIRED_BODY,
  headers: { "content-type": "application/problem+json" }
} as const

describe("HTTPError", () => {
  it("a 401 that persists after the one replay: ky's HTTPError, shape intact, problem parsed from WEX's malformed sample", async () => {
    const world = await setup()
    world.api.setDefault(() => wexExpired)
    const api = ky.create(authKyOptions(world.tokens, { prefix: world.base, timeout: 5000 }))
    const error = await rejectionOf(api.get("v1/consumers/12345", { searchParams: { ssn: "123-45-6789" } }))

    // ky's shape
    expect(error).toBeInstanceOf(HTTPError)
    const httpError = error as HTTPError
    expect(isKyError(httpError)).toBe(true)
    expect(httpError.name).toBe("HTTPError")
    expect(httpError.response.status).toBe(401)
    expect(httpError.request).toBeInstanceOf(Request)
    expect(httpError.request.method).toBe("GET")
    expect(httpError.request.url).toBe(`${world.base}/v1/consumers/12345?ssn=123-45-6789`)
    expect(httpError.options.method).toBe("GET")
    expect(httpError.options.headers).toBeInstanceOf(Headers)
    expect(httpError.message).toBe(
      `Request failed with status code 401 Unauthorized: GET ${world.base}/v1/consumers/12345?ssn=123-45-6789`
    )
    // WEX's body is not JSON (trailing comma): ky gives up on `data`, the core does not
    expect(httpError.data).toBeUndefined()

    // the core's reading of it
    const problem = httpError.problem
    expect(problem).toBeInstanceOf(ProblemDetailsError)
    expect(problem).toMatchObject({
      status: 401,
      type: "https://platform.benefits.wexglobal.com/api/dksj",
      title: "Unauthorized",
      detail: "The request requires user authentication.",
      instance: "path/to/resource",
      method: "GET",
      url: `${world.base}/v1/consumers/12345` // no query string: it may carry secrets
    })
    expect(problem?.body).toBe(WEX_EXPIRED_BODY)
    expect(problemOf(error)).toBe(problem)

    // one replay with a fresh token, then the 401 is the caller's
    expect(world.api.requests).toHaveLength(2)
    expect(world.auth.requests).toHaveLength(2)
  })

  it("OAuth error JSON and WWW-Authenticate are parsed too; ky still pre-parses data", async () => {
    const world = await setup()
    world.api.enqueue({
      status: 403,
      body: { error: "insufficient_scope", error_description: "needs claims:write" },
      headers: { "www-authenticate": 'Bearer error="insufficient_scope", scope="claims:write"' }
    })
    const api = ky.create(authKyOptions(world.tokens, { prefix: world.base }))
    const error = (await rejectionOf(api.post("v1/claims", { json: {} }))) as HTTPError
    expect(error.data).toEqual({ error: "insufficient_scope", error_description: "needs claims:write" })
    expect(error.problem?.status).toBe(403)
    expect(error.problem?.oauthError).toMatchObject({
      error: "insufficient_scope",
      errorDescription: "needs claims:write"
    })
  })

  it("a 503 given up on after the retries is an HTTPError with its problem", async () => {
    const world = await setup()
    world.api.setDefault(() => ({
      status: 503,
      body: { type: "about:blank", title: "Maintenance", detail: "back at 10:00" },
      headers: { "content-type": "application/problem+json" }
    }))
    const api = ky.create(authKyOptions(world.tokens, { prefix: world.base, auth: { retry: fast } }))
    const error = (await rejectionOf(api.get("v1/a"))) as HTTPError
    expect(error.response.status).toBe(503)
    expect(error.problem?.message).toBe("HTTP 503 Maintenance: back at 10:00")
    expect(world.api.requests).toHaveLength(3)
  })

  it("a response replaced by the caller's afterResponse hook still gets a problem (parsed from error.data)", async () => {
    const world = await setup()
    const api = ky.create(
      authKyOptions(world.tokens, {
        prefix: world.base,
        hooks: {
          afterResponse: [
            () =>
              new Response(JSON.stringify({ error: "invalid_request", error_description: "bad id" }), {
                status: 400,
                headers: { "content-type": "application/json" }
              })
          ]
        }
      })
    )
    const error = (await rejectionOf(api.get("v1/a"))) as HTTPError
    expect(error.problem?.status).toBe(400)
    expect(error.problem?.oauthError?.error).toBe("invalid_request")
  })

  it("throwHttpErrors: false returns the response as ky does", async () => {
    const world = await setup()
    world.api.setDefault(() => wexExpired)
    const api = ky.create(authKyOptions(world.tokens, { prefix: world.base, throwHttpErrors: false }))
    const response = await api.get("v1/a")
    expect(response.status).toBe(401)
    expect(await response.text()).toBe(WEX_EXPIRED_BODY)
  })
})

describe("other errors", () => {
  it("attempt timeouts retried in vain: ky's TimeoutError, caused by the core's RetriesExhaustedError", async () => {
    const world = await setup()
    world.api.setDefault(() => ({ status: 200, delayMs: 400 }))
    const api = ky.create(
      authKyOptions(world.tokens, {
        prefix: world.base,
        auth: { retry: fast, attemptTimeout: "50 millis" }
      })
    )
    const error = await rejectionOf(api.get("v1/slow"))
    expect(error).toBeInstanceOf(TimeoutError)
    expect((error as TimeoutError).request.url).toBe(`${world.base}/v1/slow`)
    const cause = (error as Error).cause
    expect(cause).toBeInstanceOf(RetriesExhaustedError)
    expect((cause as RetriesExhaustedError).cause).toBeInstanceOf(RequestTimeoutError)
    await world.api.waitForRequests(3)
  })

  it("an attempt timeout without retries: ky's TimeoutError caused by RequestTimeoutError", async () => {
    const world = await setup()
    world.api.setDefault(() => ({ status: 200, delayMs: 400 }))
    const api = ky.create(
      authKyOptions(world.tokens, { prefix: world.base, auth: { retry: false, attemptTimeout: "50 millis" } })
    )
    const error = await rejectionOf(api.get("v1/slow"))
    expect(error).toBeInstanceOf(TimeoutError)
    expect((error as Error).cause).toBeInstanceOf(RequestTimeoutError)
  })

  it("a refused connection without retries is ky's own NetworkError", async () => {
    const world = await setup()
    const closed = world.api.url
    await world.api.close()
    const api = ky.create(authKyOptions(world.tokens, { prefix: `${closed}/api`, auth: { retry: false } }))
    const error = await rejectionOf(api.get("v1/a"))
    expect(error).toBeInstanceOf(NetworkError)
  })

  it("a token endpoint that refuses the client: the core's OAuthError, through the caller's beforeError hooks", async () => {
    const world = await setup()
    world.auth.setDefault(() => ({
      status: 401,
      body: { error: "invalid_client", error_description: "Client authentication failed" }
    }))
    const seen: Array<unknown> = []
    const api = ky.create(
      authKyOptions(world.tokens, {
        prefix: world.base,
        hooks: {
          beforeError: [
            ({ error }) => {
              seen.push(error)
              return error
            }
          ]
        }
      })
    )
    const error = await rejectionOf(api.get("v1/a"))
    expect(error).toBeInstanceOf(OAuthError)
    expect((error as OAuthError).code).toBe("invalid_client")
    expect(seen).toEqual([error])
    expect(world.api.requests).toHaveLength(0)
  })
})

describe("no token in any rendering of an error", () => {
  const renderings = (error: unknown): Array<string> => [
    inspect(error, { depth: 10, showHidden: true }),
    inspect(error, { depth: Number.POSITIVE_INFINITY }),
    JSON.stringify(error) ?? "",
    String(error),
    (error as Error).stack ?? "",
    (error as Error).message
  ]

  it("HTTPError of a 401 that persisted (two tokens used), printed whole: no token value", async () => {
    const world = await setup()
    const issued: Array<string> = []
    world.auth.setDefault(() => {
      const value = `ATLEAK-${issued.length + 1}-${Math.random().toString(36).slice(2)}`
      issued.push(value)
      return issueToken({ access_token: value })
    })
    world.api.setDefault(() => wexExpired)
    const api = ky.create(
      authKyOptions(world.tokens, {
        prefix: world.base,
        headers: { "x-request-id": "r-1" },
        context: { tenant: "acme" }
      })
    )
    const error = await rejectionOf(api.post("v1/claims", { json: { amount: 1 }, searchParams: { a: 1 } }))
    expect(isHTTPError(error)).toBe(true)
    // the tokens were used: the scan below is meaningful
    expect(issued).toHaveLength(2)
    expect(world.api.requests.map((r) => r.headers.authorization)).toEqual(issued.map((t) => `Bearer ${t}`))
    // ky's Request never carried them: the core sets Authorization on its own copy per hop
    expect((error as HTTPError).request.headers.get("authorization")).toBeNull()
    for (const text of renderings(error)) {
      expect(text).not.toContain("ATLEAK")
      for (const token of issued) expect(text).not.toContain(token)
    }
    // the scan sees the request's headers and the problem: a token there would be found
    const whole = inspect(error, { depth: 10, showHidden: true })
    expect(whole).toContain("'x-request-id': 'r-1'")
    expect(whole).toContain("ProblemDetailsError")
  })

  it("NetworkError and TimeoutError after retries hold no token either", async () => {
    const world = await setup()
    world.auth.setDefault(() => issueToken({ access_token: `ATLEAK-${Math.random().toString(36).slice(2)}` }))
    world.api.setDefault(() => ({ drop: true }))
    const api = ky.create(
      authKyOptions(world.tokens, {
        prefix: world.base,
        auth: { retry: fast, attemptTimeout: "100 millis" }
      })
    )
    const network = await rejectionOf(api.get("v1/a"))
    expect(network).toBeInstanceOf(NetworkError)
    world.api.setDefault(() => ({ status: 200, delayMs: 400 }))
    const timeout = await rejectionOf(api.get("v1/b"))
    expect(timeout).toBeInstanceOf(TimeoutError)
    for (const error of [network, timeout]) {
      for (const text of renderings(error)) expect(text).not.toContain("ATLEAK")
    }
    expect(world.api.requests.every((r) => r.headers.authorization?.startsWith("Bearer ATLEAK-"))).toBe(true)
  })
})
