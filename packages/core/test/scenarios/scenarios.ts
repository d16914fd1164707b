/**
 * The request scenarios every integration must pass, written once. A client
 * under test is a `ScenarioClient`: a factory that, given a token source and
 * the API's base URL, sends one request and reports status and body (or
 * throws). Core `authFetch` and `AuthHttpClient` run it here; the ky and axios
 * adapters run the same table.
 *
 * Each scenario runs over real HTTP servers on 127.0.0.1 (a token endpoint and
 * one or two APIs) and asserts counts: token requests and upstream attempts.
 */
import { expect } from "vitest"
import { createTokenSource, type RequestEvent, type TokenSourceHandle } from "../../src/index.ts"
import { startTokenServer, type TokenServer } from "../support/tokenServer.ts"

export interface SendOptions {
  readonly method?: string
  readonly body?: BodyInit
  readonly headers?: Record<string, string>
  readonly signal?: AbortSignal
}

export interface ScenarioResult {
  readonly status: number
  readonly body: string
}

export type Send = (path: string, options?: SendOptions) => Promise<ScenarioResult>

export interface ScenarioClient {
  readonly name: string
  /** a client for `baseUrl` authenticated by `tokens`; `onEvent` receives request events */
  readonly make: (
    tokens: TokenSourceHandle,
    baseUrl: string,
    options: {
      readonly onEvent: (event: RequestEvent) => void
      readonly extraOrigins?: ReadonlyArray<string>
    }
  ) => Send
  /** whether this client can send a one-shot ReadableStream body */
  readonly streams: boolean
  /** how this client reports a caller's abort; default: an error named `AbortError` */
  readonly isAbortError?: ((error: unknown) => boolean) | undefined
}

/** WEX's published 401 sample, verbatim: not valid JSON (trailing comma). */
export const WEX_EXPIRED_BODY = `{
"type": "https://platform.benefits.wexglobal.com/api/dksj",
"title": "Unauthorized",
"detail": "The request requires user authentication.",
"instance": "path/to/resource",
}`

export interface World {
  readonly auth: TokenServer
  readonly api: TokenServer
  readonly other: TokenServer
  readonly tokens: TokenSourceHandle
  readonly events: Array<RequestEvent>
  readonly send: Send
  /** the bearer tokens the API saw, in order */
  readonly bearers: () => Array<string | undefined>
  close(): Promise<void>
}

export const makeWorld = async (client: ScenarioClient): Promise<World> => {
  const [auth, api, other] = await Promise.all([startTokenServer(), startTokenServer(), startTokenServer()])
  api.setDefault(() => ({ status: 200, body: { ok: true } }))
  other.setDefault(() => ({ status: 200, body: { other: true } }))
  const tokens = createTokenSource({ tokenUrl: auth.tokenUrl, clientId: "scenario", clientSecret: "s3cret" })
  const events: Array<RequestEvent> = []
  const send = client.make(tokens, `${api.url}/api`, { onEvent: (e) => events.push(e) })
  return {
    auth,
    api,
    other,
    tokens,
    events,
    send,
    bearers: () => api.requests.map((r) => r.headers.authorization),
    close: async () => {
      await tokens.dispose()
      await Promise.all([auth.close(), api.close(), other.close()])
    }
  }
}

export interface Scenario {
  readonly name: string
  readonly needsStreams?: boolean
  readonly run: (world: World, client: ScenarioClient) => Promise<void>
}

export const scenarios: ReadonlyArray<Scenario> = [
  {
    name: "401 with WEX's malformed problem+json: one token request, one retry, the caller gets the 200",
    run: async (world) => {
      await world.tokens.getToken()
      world.api.enqueue({
        status: 401,
        text: WEX_EXPIRED_BODY,
        headers: { "content-type": "application/problem+json" }
      })
      const result = await world.send("/v1/consumers/12345")
      expect(result.status).toBe(200)
      expect(JSON.parse(result.body)).toEqual({ ok: true })
      expect(world.auth.requests).toHaveLength(2)
      expect(world.api.requests).toHaveLength(2)
      const [first, second] = world.bearers()
      expect(first).toMatch(/^Bearer at-/)
      expect(second).toMatch(/^Bearer at-/)
      expect(second).not.toBe(first)
      expect(world.events.filter((e) => e.type === "unauthorized_retry")).toHaveLength(1)
    }
  },
  {
    name: "100 concurrent requests answered 401 once (token revoked): exactly 1 new token request, all succeed",
    run: async (world) => {
      const revoked = `Bearer ${(await world.tokens.getToken()).reveal()}`
      world.api.setDefault((request) =>
        request.headers.authorization === revoked
          ? { status: 401, body: { error: "Unauthorized", error_description: "Unauthorized" } }
          : { status: 200, body: { ok: true } }
      )
      const results = await Promise.all(
        Array.from({ length: 100 }, (_, i) => world.send(`/v1/consumers/${i}`))
      )
      expect(results.map((r) => r.status)).toEqual(Array(100).fill(200))
      expect(world.auth.requests).toHaveLength(2)
      expect(world.api.requests).toHaveLength(200)
    }
  },
  {
    name: "a POST with a string body is replayed after a 401, body intact",
    run: async (world) => {
      await world.tokens.getToken()
      world.api.enqueue({ status: 401, headers: { "www-authenticate": 'Bearer error="invalid_token"' } })
      const result = await world.send("/v1/claims", {
        method: "POST",
        body: JSON.stringify({ amount: 12.5 }),
        headers: { "content-type": "application/json" }
      })
      expect(result.status).toBe(200)
      expect(world.api.requests.map((r) => [r.method, r.rawBody])).toEqual([
        ["POST", '{"amount":12.5}'],
        ["POST", '{"amount":12.5}']
      ])
    }
  },
  {
    name: "a POST with a ReadableStream body is never sent twice",
    needsStreams: true,
    run: async (world) => {
      await world.tokens.getToken()
      world.api.enqueue({ status: 401 })
      const body = new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(new TextEncoder().encode("chunk-1;"))
          controller.enqueue(new TextEncoder().encode("chunk-2"))
          controller.close()
        }
      })
      const result = await world.send("/v1/uploads", { method: "POST", body })
      expect(result.status).toBe(401)
      expect(world.api.requests).toHaveLength(1)
      expect(world.api.requests[0]!.rawBody).toBe("chunk-1;chunk-2")
      // the token was still invalidated: the next request uses a new one
      const next = await world.send("/v1/ping")
      expect(next.status).toBe(200)
      expect(world.auth.requests).toHaveLength(2)
      expect(world.events.some((e) => e.type === "unauthorized_not_replayable")).toBe(true)
    }
  },
  {
    name: "a redirect to another origin receives no Authorization; a same-origin one does",
    run: async (world) => {
      world.api.enqueue(
        { status: 302, headers: { location: "/api/v1/moved" } },
        { status: 200, body: { same: true } },
        { status: 307, headers: { location: `${world.other.url}/elsewhere` } }
      )
      const same = await world.send("/v1/old")
      expect(same.status).toBe(200)
      expect(world.api.requests.map((r) => r.url)).toEqual(["/api/v1/old", "/api/v1/moved"])
      expect(world.bearers()).toEqual([
        expect.stringMatching(/^Bearer at-/),
        expect.stringMatching(/^Bearer at-/)
      ])
      const cross = await world.send("/v1/leave")
      expect(cross.status).toBe(200)
      expect(JSON.parse(cross.body)).toEqual({ other: true })
      expect(world.other.requests).toHaveLength(1)
      expect(world.other.requests[0]!.headers.authorization).toBeUndefined()
      expect(world.events.some((e) => e.type === "redirect_authorization_dropped")).toBe(true)
    }
  },
  {
    name: "429 with Retry-After: 1 on a GET is honoured, not retried earlier",
    run: async (world) => {
      await world.tokens.getToken()
      world.api.enqueue({ status: 429, headers: { "retry-after": "1" } })
      const started = Date.now()
      const result = await world.send("/v1/limited")
      expect(result.status).toBe(200)
      expect(world.api.requests).toHaveLength(2)
      expect(Date.now() - started).toBeGreaterThanOrEqual(1000)
    }
  },
  {
    name: "a POST without Idempotency-Key is not retried on 503; with one it is",
    run: async (world) => {
      await world.tokens.getToken()
      world.api.enqueue({ status: 503 }, { status: 503 })
      const plain = await world.send("/v1/payments", { method: "POST", body: "{}" })
      expect(plain.status).toBe(503)
      expect(world.api.requests).toHaveLength(1)
      const keyed = await world.send("/v1/payments", {
        method: "POST",
        body: "{}",
        headers: { "idempotency-key": "k-1" }
      })
      expect(keyed.status).toBe(200)
      expect(world.api.requests).toHaveLength(3)
    }
  },
  {
    name: "aborting during a backoff wait rejects within 50 ms with an AbortError",
    run: async (world, client) => {
      await world.tokens.getToken()
      world.api.enqueue({ status: 503, headers: { "retry-after": "30" } })
      const controller = new AbortController()
      const pending = world.send("/v1/slow", { signal: controller.signal })
      await world.api.waitForRequests(1)
      await new Promise((r) => setTimeout(r, 50))
      const abortedAt = Date.now()
      controller.abort()
      const error = await pending.then(
        () => undefined,
        (e: unknown) => e
      )
      expect(Date.now() - abortedAt).toBeLessThan(50)
      const isAbort = client.isAbortError ?? ((e: unknown) => (e as Error | undefined)?.name === "AbortError")
      expect(isAbort(error), `not an abort error: ${String(error)}`).toBe(true)
      expect(world.api.requests).toHaveLength(1)
    }
  },
  {
    name: "503 burst on a GET: retried with backoff until it succeeds",
    run: async (world) => {
      world.api.enqueue({ status: 503 }, { status: 502 })
      const result = await world.send("/v1/flaky")
      expect(result.status).toBe(200)
      expect(world.api.requests).toHaveLength(3)
      expect(world.events.filter((e) => e.type === "request_retried")).toHaveLength(2)
    }
  }
]
