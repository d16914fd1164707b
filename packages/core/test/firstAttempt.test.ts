/**
 * authFetch's fast path (src/internal/firstAttempt.ts): with a fresh token in
 * memory the first send is made outside Effect, and whatever a policy step
 * acts on is handed to the pipeline with that send already made. Every test
 * warms the token first so the fast path is the one taken, and counts what
 * reached the server: nothing may be sent twice that the pipeline alone would
 * have sent once.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest"
import {
  type AccessToken,
  authFetch,
  createTokenSource,
  Middleware,
  type RequestEvent,
  RequestTimeoutError,
  RetryPolicy,
  type TokenSourceHandle
} from "../src/index.ts"
import { issueToken, startTokenServer, type TokenServer } from "./support/tokenServer.ts"

let auth: TokenServer
let api: TokenServer
let tokens: TokenSourceHandle

beforeEach(async () => {
  ;[auth, api] = await Promise.all([startTokenServer(), startTokenServer()])
  api.setDefault(() => ({ status: 200, body: { ok: true } }))
  tokens = createTokenSource({ tokenUrl: auth.tokenUrl, clientId: "fast", clientSecret: "s" })
  await tokens.getToken()
})
afterEach(async () => {
  await tokens.dispose()
  await Promise.all([auth.close(), api.close()])
})

const quick = { baseDelay: "5 millis", maxDelay: "20 millis" } as const
const FAST_PATH_FRAME = /internal[\\/]firstAttempt\.ts/
/** A fetch that records the call stack of every send (which path made it). */
const recordingStacks = () => {
  const stacks: Array<string> = []
  const recording: typeof fetch = (input, init) => {
    stacks.push(new Error().stack ?? "")
    return fetch(input, init)
  }
  return { stacks, recording }
}
/** What a call rejects with, checking that it returned a promise rather than throwing. */
const rejectionOf = async (start: () => Promise<unknown>): Promise<unknown> => {
  let pending: Promise<unknown> | undefined
  expect(() => {
    pending = start()
  }).not.toThrow()
  return pending?.then(
    () => expect.unreachable("the call resolved"),
    (error: unknown) => error
  )
}
const bearer = (i: number) => api.requests[i]?.headers.authorization

describe("authFetch fast path", () => {
  it("sends a call with a fresh token without entering the Effect runtime", async () => {
    const { stacks, recording } = recordingStacks()
    const call = authFetch(tokens, { baseUrl: api.url, fetch: recording })
    const response = await call("/v1/a")
    expect(await response.json()).toEqual({ ok: true })
    expect(stacks).toHaveLength(1)
    expect(stacks[0]).toMatch(FAST_PATH_FRAME)
    expect(stacks[0]).not.toMatch(/node_modules[\\/]effect[\\/]/)
    expect(bearer(0)).toBe((await tokens.getToken()).authorization())
  })

  it("credits the retry budget for a final answer, as the retry step does", async () => {
    const budget = new RetryPolicy.RetryBudget({ capacity: 10, retryCost: 5 })
    budget.withdraw("retry")
    const call = authFetch(tokens, { baseUrl: api.url, retry: { budget } })
    await (await call("/v1/a")).text()
    expect(budget.available).toBe(6)
  })

  it("a 401 invalidates the token that send used, even if the source moved on meanwhile", async () => {
    const used = await tokens.getToken()
    const invalidated: Array<AccessToken> = []
    const watched = {
      getToken: () => tokens.getToken(),
      peek: () => tokens.peek(),
      invalidate: (token: AccessToken) => {
        invalidated.push(token)
        return tokens.invalidate(token)
      }
    }
    api.enqueue({ status: 401 })
    // While the first send is on the wire, the source gets a new token (another
    // caller's 401, a refresh-ahead): the pipeline must not invalidate that one.
    const call = authFetch(watched, { baseUrl: api.url })
    const pending = call("/v1/a")
    await api.waitForRequests(1)
    await tokens.invalidate(used)
    const newer = await tokens.getToken()
    const response = await pending
    expect(response.status).toBe(200)
    expect(invalidated.map((t) => t.id)).toEqual([used.id])
    expect(auth.requests).toHaveLength(2)
    expect(api.requests).toHaveLength(2)
    expect(bearer(0)).toBe(used.authorization())
    expect(bearer(1)).toBe(newer.authorization())
  })

  it("a Request with a body is replayed intact after a 401", async () => {
    api.enqueue({ status: 401 })
    const call = authFetch(tokens, { baseUrl: api.url })
    const response = await call(
      new Request(`${api.url}/v1/claims`, { method: "POST", body: '{"amount":12}' })
    )
    expect(response.status).toBe(200)
    expect(api.requests.map((r) => [r.method, r.rawBody])).toEqual([
      ["POST", '{"amount":12}'],
      ["POST", '{"amount":12}']
    ])
  })

  it("a POST answered 503 reaches the server once; a GET answered 503 is retried", async () => {
    const call = authFetch(tokens, { baseUrl: api.url, retry: quick })
    api.enqueue({ status: 503 })
    expect((await call("/v1/claims", { method: "POST", body: "{}" })).status).toBe(503)
    expect(api.requests).toHaveLength(1)
    api.enqueue({ status: 503 })
    expect((await call("/v1/claims")).status).toBe(200)
    expect(api.requests).toHaveLength(3)
  })

  it("a network failure: a GET is retried, a POST rejects with the fetch's TypeError after one send", async () => {
    const events: Array<RequestEvent> = []
    const call = authFetch(tokens, { baseUrl: api.url, retry: quick, onEvent: (e) => events.push(e) })
    api.enqueue({ drop: true })
    expect((await call("/v1/a")).status).toBe(200)
    expect(api.requests).toHaveLength(2)
    expect(events.map((e) => e.type)).toEqual(["request_retried"])
    api.enqueue({ drop: true })
    const error = await call("/v1/a", { method: "POST", body: "{}" }).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(TypeError)
    expect(api.requests).toHaveLength(3)
  })

  it("a timeout on the first send is retried for a GET, and is a RequestTimeoutError without retries", async () => {
    api.enqueue({ delayMs: 400 })
    const call = authFetch(tokens, { baseUrl: api.url, attemptTimeout: "100 millis", retry: quick })
    expect((await call("/v1/slow")).status).toBe(200)
    expect(api.requests).toHaveLength(2)
    api.enqueue({ delayMs: 400 })
    const once = authFetch(tokens, { baseUrl: api.url, attemptTimeout: "100 millis", retry: false })
    const error = await once("/v1/slow?key=SECRET").catch((e: unknown) => e)
    expect(error).toBeInstanceOf(RequestTimeoutError)
    expect(error).toMatchObject({ method: "GET", url: `${api.url}/v1/slow`, timeoutMillis: 100 })
    expect(api.requests).toHaveLength(3)
  })

  it("the timeout bounds the headers, not the body read afterwards", async () => {
    api.setDefault(() => ({ status: 200, text: "x".repeat(10) }))
    const call = authFetch(tokens, { baseUrl: api.url, attemptTimeout: "50 millis" })
    const response = await call("/v1/a")
    await new Promise((resolve) => setTimeout(resolve, 120))
    expect(await response.text()).toBe("x".repeat(10))
  })

  it("redirects: followed with the token on the same origin, handed back with redirect: manual", async () => {
    const call = authFetch(tokens, { baseUrl: api.url })
    api.enqueue({ status: 302, headers: { location: "/v1/b" } })
    const followed = await call("/v1/a")
    expect(followed.status).toBe(200)
    expect(api.requests.map((r) => r.url)).toEqual(["/v1/a", "/v1/b"])
    expect(bearer(1)).toBe(bearer(0))
    api.enqueue({ status: 302, headers: { location: "/v1/b" } })
    const manual = await call("/v1/a", { redirect: "manual" })
    expect(manual.status).toBe(302)
    expect(api.requests).toHaveLength(3)
  })

  it("a caller's abort rejects with its reason and sends nothing more", async () => {
    api.enqueue({ delayMs: 1000 })
    const controller = new AbortController()
    const call = authFetch(tokens, { baseUrl: api.url, retry: quick })
    const pending = call("/v1/slow", { signal: controller.signal }).catch((e: unknown) => e)
    await api.waitForRequests(1)
    const reason = new Error("caller gave up")
    controller.abort(reason)
    expect(await pending).toBe(reason)
    await new Promise((resolve) => setTimeout(resolve, 50))
    expect(api.requests).toHaveLength(1)
  })

  it("a URL that cannot be parsed rejects, as fetch does, instead of throwing", async () => {
    const call = authFetch(tokens, { baseUrl: api.url })
    expect(await rejectionOf(() => call("http://[not-a-host/x"))).toBeInstanceOf(TypeError)
    expect(api.requests).toHaveLength(0)
  })

  it("a cold burst waits for one token in Promise code: 1 token request, every send outside Effect", async () => {
    auth.enqueue({ ...issueToken(), delayMs: 50 })
    const cold = createTokenSource({ tokenUrl: auth.tokenUrl, clientId: "cold", clientSecret: "s" })
    try {
      const { stacks, recording } = recordingStacks()
      const call = authFetch(cold, { baseUrl: api.url, fetch: recording })
      const responses = await Promise.all(Array.from({ length: 200 }, (_, i) => call(`/v1/c/${i}`)))
      expect(responses.map((r) => r.status)).toEqual(Array(200).fill(200))
      expect(auth.requests.filter((r) => r.form.get("client_id") === "cold")).toHaveLength(1)
      expect(api.requests).toHaveLength(200)
      expect(new Set(api.requests.map((r) => r.headers.authorization)).size).toBe(1)
      for (const stack of stacks) expect(stack).toMatch(FAST_PATH_FRAME)
    } finally {
      await cold.dispose()
    }
  })

  it("a caller's abort ends the wait for a token at once, and nothing is sent", async () => {
    auth.enqueue({ ...issueToken(), delayMs: 1000 })
    const cold = createTokenSource({ tokenUrl: auth.tokenUrl, clientId: "cold-abort", clientSecret: "s" })
    try {
      const controller = new AbortController()
      const pending = authFetch(cold, { baseUrl: api.url })("/v1/a", { signal: controller.signal }).catch(
        (e: unknown) => e
      )
      await auth.waitForRequests(2)
      const reason = new Error("caller gave up")
      const started = Date.now()
      controller.abort(reason)
      expect(await pending).toBe(reason)
      expect(Date.now() - started).toBeLessThan(200)
      expect(api.requests).toHaveLength(0)
    } finally {
      await cold.dispose()
    }
  })

  it("a token source of one's own: its getToken is used, and a throw from it rejects the call", async () => {
    const own = { getToken: () => tokens.getToken(), invalidate: (t: AccessToken) => tokens.invalidate(t) }
    const call = authFetch(own, { baseUrl: api.url })
    expect((await call("/v1/a")).status).toBe(200)
    expect(bearer(0)).toBe((await tokens.getToken()).authorization())
    const failure = new Error("vault unreachable")
    const throwing = authFetch(
      {
        getToken: () => {
          throw failure
        },
        invalidate: async () => {}
      },
      { baseUrl: api.url }
    )
    expect(await rejectionOf(() => throwing("/v1/a"))).toBe(failure)
    expect(api.requests).toHaveLength(1)
  })

  it("is not taken for a caller's own Authorization or an origin not allowed", async () => {
    const { stacks, recording } = recordingStacks()
    const other = await startTokenServer(() => ({ status: 200, body: {} }))
    try {
      const call = authFetch(tokens, { baseUrl: api.url, fetch: recording })
      await (await call("/v1/a", { headers: { authorization: "Basic mine" } })).text()
      await (await call(`${other.url}/x`)).text()
      expect(bearer(0)).toBe("Basic mine")
      expect(other.requests[0]?.headers.authorization).toBeUndefined()
      expect(stacks).toHaveLength(2)
      for (const stack of stacks) expect(stack).not.toMatch(FAST_PATH_FRAME)
    } finally {
      await other.close()
    }
  })
})

describe("a first send handed over by an adapter (Middleware.FIRST_SEND)", () => {
  it("a 401 the adapter met invalidates the token it used, and the pipeline replays once", async () => {
    const call = authFetch(tokens, { baseUrl: api.url })
    const used = (await tokens.getToken()) as AccessToken
    api.enqueue({ status: 401, body: {} })
    // the adapter's own send, with the token it peeked
    const first = await fetch(`${api.url}/v1/a`, { headers: { authorization: used.authorization() } })
    const response = await call("/v1/a", {
      [Middleware.FIRST_SEND]: { token: used, response: first }
    } as RequestInit)
    expect(response.status).toBe(200)
    // the adapter's send and one replay: nothing sent twice
    expect(api.requests).toHaveLength(2)
    expect(bearer(1)).not.toBe(used.authorization())
    expect(auth.requests).toHaveLength(2)
  })

  it("a network failure or a timeout the adapter met is retried by the pipeline, never sent again as the first", async () => {
    const call = authFetch(tokens, { baseUrl: api.url, retry: quick })
    const used = (await tokens.getToken()) as AccessToken
    const afterFailure = await call("/v1/a", {
      [Middleware.FIRST_SEND]: { token: used, failure: "network", cause: new TypeError("fetch failed") }
    } as RequestInit)
    expect(afterFailure.status).toBe(200)
    expect(api.requests).toHaveLength(1)
    const afterTimeout = await call("/v1/a", {
      [Middleware.FIRST_SEND]: { token: used, failure: "timeout", timeoutMillis: 10 }
    } as RequestInit)
    expect(afterTimeout.status).toBe(200)
    expect(api.requests).toHaveLength(2)
    // the init member is not passed on to the transport
    const seen: Array<RequestInit | undefined> = []
    const spying = authFetch(tokens, {
      baseUrl: api.url,
      retry: quick,
      fetch: (input, init) => {
        seen.push(init)
        return fetch(input, init)
      }
    })
    await spying("/v1/a", {
      [Middleware.FIRST_SEND]: { token: used, failure: "network", cause: new TypeError("fetch failed") }
    } as RequestInit)
    expect(seen).toHaveLength(1)
    expect(Object.getOwnPropertySymbols(seen[0] ?? {})).toEqual([])
  })

  it("a POST whose first send failed on the network is not retried (not idempotent)", async () => {
    const call = authFetch(tokens, { baseUrl: api.url, retry: quick })
    const used = (await tokens.getToken()) as AccessToken
    const error = await rejectionOf(() =>
      call("/v1/claims", {
        method: "POST",
        body: "{}",
        [Middleware.FIRST_SEND]: { token: used, failure: "network", cause: new TypeError("fetch failed") }
      } as RequestInit)
    )
    expect(error).toBeInstanceOf(Error)
    expect(api.requests).toHaveLength(0)
  })
})
