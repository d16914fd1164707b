/**
 * attachAuth beyond the shared scenarios: 200 concurrent 401s, problem details
 * on the error, detaching, attaching twice, and how axios options (redirects,
 * basic auth, cancel tokens, per-request adapters, interceptors) meet the
 * policy. Real servers on 127.0.0.1, both adapters.
 */
import { Readable } from "node:stream"
import {
  createTokenSource,
  InvalidConfigError,
  ProblemDetailsError,
  type RequestEvent,
  RetryPolicy,
  type TokenSourceHandle
} from "@authfetch/core"
import axios, { type AxiosInstance, type CreateAxiosDefaults, isAxiosError, isCancel } from "axios"
import { afterEach, beforeEach, describe, expect, it } from "vitest"
import { WEX_EXPIRED_BODY } from "../../core/test/scenarios/scenarios.ts"
import { startTokenServer, type TokenServer } from "../../core/test/support/tokenServer.ts"
import { type AttachAuthOptions, attachAuth, hasProblem, problemOf, RequestSummary } from "../src/index.ts"
import { type AdapterName, adapters, fast } from "./support/clients.ts"

let auth: TokenServer
let api: TokenServer
let other: TokenServer
let tokens: TokenSourceHandle
let events: Array<RequestEvent>

beforeEach(async () => {
  ;[auth, api, other] = await Promise.all([startTokenServer(), startTokenServer(), startTokenServer()])
  api.setDefault(() => ({ status: 200, body: { ok: true } }))
  other.setDefault(() => ({ status: 200, body: { other: true } }))
  tokens = createTokenSource({ tokenUrl: auth.tokenUrl, clientId: "axios", clientSecret: "s3cret" })
  events = []
})

afterEach(async () => {
  await tokens.dispose()
  await Promise.all([auth.close(), api.close(), other.close()])
})

const create = (adapter: AdapterName, config: CreateAxiosDefaults = {}) =>
  axios.create({ baseURL: `${api.url}/api`, adapter, ...config })

const attached = (
  adapter: AdapterName,
  config: CreateAxiosDefaults = {},
  options: AttachAuthOptions = {}
): AxiosInstance => {
  const instance = create(adapter, config)
  attachAuth(instance, tokens, { retry: fast, onEvent: (event) => events.push(event), ...options })
  return instance
}

const failure = (promise: Promise<unknown>): Promise<unknown> =>
  promise.then(
    () => {
      throw new Error("expected the request to fail")
    },
    (error: unknown) => error
  )

const bearers = (server: TokenServer) => server.requests.map((r) => r.headers.authorization)

for (const adapter of adapters) {
  describe(`attachAuth: ${adapter} adapter`, () => {
    it("200 concurrent requests answered 401 once: exactly 1 token request, 200 successes", async () => {
      const revoked = `Bearer ${(await tokens.getToken()).reveal()}`
      api.setDefault((request) =>
        request.headers.authorization === revoked
          ? { status: 401, body: { error: "Unauthorized", error_description: "Unauthorized" } }
          : { status: 200, body: { ok: true } }
      )
      const instance = attached(adapter)
      const results = await Promise.all(
        Array.from({ length: 200 }, (_, i) => instance.get(`/v1/consumers/${i}`))
      )
      expect(results.map((r) => r.status)).toEqual(Array(200).fill(200))
      expect(results.every((r) => (r.data as { ok?: boolean }).ok === true)).toBe(true)
      expect(auth.requests).toHaveLength(2) // the revoked token, then exactly one new one
      expect(api.requests).toHaveLength(400) // each request replayed once
      expect(events.filter((e) => e.type === "unauthorized_retry")).toHaveLength(200)
    })

    it("error.problem is parsed from WEX's malformed 401 sample; the AxiosError keeps its shape", async () => {
      api.setDefault(() => ({
        status: 401,
        text: WEX_EXPIRED_BODY,
        headers: { "content-type": "application/problem+json" }
      }))
      const error = await failure(attached(adapter).get("/v1/consumers/12345", { params: { page: 2 } }))
      expect(axios.isAxiosError(error)).toBe(true)
      if (!isAxiosError(error)) return
      expect(error.isAxiosError).toBe(true)
      expect(error.code).toBe("ERR_BAD_REQUEST")
      expect(error.status).toBe(401)
      expect(error.message).toBe("Request failed with status code 401")
      expect(error.config?.url).toBe("/v1/consumers/12345")
      expect(error.response?.status).toBe(401)
      expect(error.response?.data).toBe(WEX_EXPIRED_BODY) // not JSON: axios keeps the text
      expect(error.response?.config).toBe(error.config)
      expect(error.request).toBeInstanceOf(RequestSummary)
      expect(error.toJSON()).toMatchObject({ status: 401, code: "ERR_BAD_REQUEST" })
      expect(hasProblem(error)).toBe(true)
      const problem = problemOf(error)
      expect(problem).toBeInstanceOf(ProblemDetailsError)
      expect(problem).toMatchObject({
        status: 401,
        type: "https://platform.benefits.wexglobal.com/api/dksj",
        title: "Unauthorized",
        detail: "The request requires user authentication.",
        instance: "path/to/resource",
        method: "GET",
        url: `${api.url}/api/v1/consumers/12345`
      })
      // the 401 was answered by one replay with a new token, then given back
      expect(api.requests.map((r) => r.url)).toEqual([
        "/api/v1/consumers/12345?page=2",
        "/api/v1/consumers/12345?page=2"
      ])
      expect(auth.requests).toHaveLength(2)
      expect(events.filter((e) => e.type === "unauthorized_retry")).toHaveLength(1)
    })

    it("a 5xx error carries the problem of its body; a success carries none", async () => {
      api.enqueue({ status: 500, body: { error: "server_error", error_description: "database down" } })
      const instance = attached(adapter)
      const error = await failure(instance.get("/v1/a"))
      expect(isAxiosError(error) && error.code).toBe("ERR_BAD_RESPONSE")
      expect(problemOf(error)).toMatchObject({
        status: 500,
        detail: "database down",
        oauthError: { error: "server_error" }
      })
      const ok = await instance.get("/v1/b")
      expect(ok.status).toBe(200)
      expect(problemOf(new Error("x"))).toBeUndefined()
    })

    it("detach removes everything: no token, no retries, no 401 replay; idempotent", async () => {
      const instance = create(adapter)
      const detach = attachAuth(instance, tokens, { retry: fast })
      expect(instance.interceptors.request.handlers?.filter(Boolean)).toHaveLength(1)
      api.enqueue({ status: 500 })
      const before = await failure(instance.get("/v1/before"))
      detach()
      detach()
      expect(instance.interceptors.request.handlers?.filter(Boolean) ?? []).toHaveLength(0)
      const tokenRequests = auth.requests.length

      api.enqueue({ status: 503 }, { status: 401 })
      expect((await failure(instance.get("/v1/unavailable"))) as object).toMatchObject({ status: 503 })
      expect((await failure(instance.get("/v1/unauthorized"))) as object).toMatchObject({ status: 401 })
      // a config captured while attached (an error's config) is sent without the policy too
      const again = await instance.request(isAxiosError(before) ? before.config! : {})
      expect(again.status).toBe(200)
      expect(bearers(api).slice(1)).toEqual([undefined, undefined, undefined])
      expect(auth.requests).toHaveLength(tokenRequests)
    })

    it("attaching twice throws (no stacked retries); detach, then attach again works", async () => {
      const instance = create(adapter)
      const detach = attachAuth(instance, tokens, { retry: fast })
      expect(() => attachAuth(instance, tokens, { retry: fast })).toThrow(InvalidConfigError)
      expect(() => attachAuth(instance, tokens)).toThrow(/already attached/)
      detach()
      attachAuth(instance, tokens, { retry: fast })
      api.setDefault(() => ({ status: 503 }))
      await failure(instance.get("/v1/down"))
      expect(api.requests).toHaveLength(3) // 1 + core's 2 retries, not 3 x 3
    })

    it("re-sending error.config (axios-retry style) runs the policy once, not nested", async () => {
      api.setDefault(() => ({ status: 503 }))
      const instance = attached(adapter)
      const error = await failure(instance.get("/v1/down"))
      expect(api.requests).toHaveLength(3)
      await failure(instance.request(isAxiosError(error) ? error.config! : {}))
      expect(api.requests).toHaveLength(6)
      expect(bearers(api).every((b) => b?.startsWith("Bearer at-"))).toBe(true)
    })

    it("user interceptors run once per call, whatever the replays and retries below them", async () => {
      const instance = attached(adapter)
      let requestRuns = 0
      let responseRuns = 0
      instance.interceptors.request.use((config) => {
        requestRuns++
        return config
      })
      instance.interceptors.response.use((response) => {
        responseRuns++
        return response
      })
      await tokens.getToken()
      api.enqueue({ status: 401 }, { status: 503 }, { status: 502 })
      const response = await instance.get("/v1/flaky")
      expect(response.status).toBe(200)
      expect(api.requests).toHaveLength(4)
      expect([requestRuns, responseRuns]).toEqual([1, 1])
    })

    it("the token goes to the allowed origin only; another origin is still retried, without it", async () => {
      const instance = attached(adapter)
      other.enqueue({ status: 503 })
      const response = await instance.get(`${other.url}/elsewhere`)
      expect(response.data).toEqual({ other: true })
      expect(bearers(other)).toEqual([undefined, undefined])
      await instance.get("/v1/mine")
      expect(bearers(api)).toEqual([expect.stringMatching(/^Bearer at-/)])
    })

    it("options.origins replaces the baseURL default", async () => {
      const instance = attached(adapter, {}, { origins: [other.url] })
      await instance.get("/v1/mine")
      await instance.get(`${other.url}/theirs`)
      expect(bearers(api)).toEqual([undefined])
      expect(bearers(other)).toEqual([expect.stringMatching(/^Bearer at-/)])
    })

    it("a cross-origin redirect drops the token and says so; maxRedirects: 0 hands the 3xx back", async () => {
      const instance = attached(adapter)
      api.enqueue({ status: 302, headers: { location: `${other.url}/landing` } })
      const followed = await instance.get("/v1/go")
      expect(followed.data).toEqual({ other: true })
      expect(bearers(other)).toEqual([undefined])
      expect(events).toContainEqual(
        expect.objectContaining({ type: "redirect_authorization_dropped", from: api.url, to: other.url })
      )
      api.enqueue({ status: 302, headers: { location: `${other.url}/landing` } })
      const manual = await instance.get("/v1/go", { maxRedirects: 0, validateStatus: () => true })
      expect(manual.status).toBe(302)
      expect(manual.headers.location).toBe(`${other.url}/landing`)
      expect(other.requests).toHaveLength(1)
    })

    it("too many redirects is axios's ERR_FR_TOO_MANY_REDIRECTS", async () => {
      api.setDefault(() => ({ status: 302, headers: { location: "/api/v1/loop" } }))
      const error = await failure(
        attached(adapter, {}, { retry: false }).get("/v1/loop", { maxRedirects: 2 })
      )
      expect(isAxiosError(error) && error.code).toBe("ERR_FR_TOO_MANY_REDIRECTS")
      expect(api.requests).toHaveLength(3)
    })

    it("a request with its own credentials (auth, Authorization, or Authorization: false) is left alone", async () => {
      const instance = attached(adapter)
      await instance.get("/v1/basic", { auth: { username: "user", password: "pa:ss" } })
      await instance.get("/v1/own", { headers: { Authorization: "Bearer caller-token" } })
      await instance.get("/v1/none", { headers: { Authorization: false } })
      expect(bearers(api)).toEqual([`Basic ${btoa("user:pa:ss")}`, "Bearer caller-token", undefined])
      // the caller's Basic credentials do not follow a redirect to another origin either
      api.enqueue({ status: 307, headers: { location: `${other.url}/landing` } })
      await instance.get("/v1/basic", { auth: { username: "user", password: "pa:ss" } })
      expect(bearers(other)).toEqual([undefined])
      expect(auth.requests).toHaveLength(0)
    })

    it("a cancel token aborts a backoff wait with axios's CanceledError", async () => {
      api.enqueue({ status: 503, headers: { "retry-after": "30" } })
      const source = axios.CancelToken.source()
      const pending = failure(attached(adapter).get("/v1/slow", { cancelToken: source.token }))
      await api.waitForRequests(1)
      source.cancel("user gave up")
      const error = await pending
      expect(isCancel(error)).toBe(true)
      expect((error as Error).message).toBe("user gave up")
      expect(api.requests).toHaveLength(1)
    })

    it("a network error on a POST is not retried (not idempotent); on a PUT it is", async () => {
      api.setDefault(() => ({ drop: true }))
      const instance = attached(adapter)
      const post = await failure(instance.post("/v1/payments", { amount: 1 }))
      expect(isAxiosError(post) && post.request).toBeInstanceOf(RequestSummary)
      expect(api.requests).toHaveLength(1)
      await failure(instance.put("/v1/payments/1", { amount: 1 }))
      expect(api.requests).toHaveLength(4)
    })

    it("the retry budget is shared by the requests of one attached instance", async () => {
      api.setDefault(() => ({ status: 503 }))
      const budget = new RetryPolicy.RetryBudget({ capacity: 5, retryCost: 5 })
      const instance = attached(adapter, {}, { retry: { ...fast, budget } })
      await failure(instance.get("/v1/a")) // one retry affordable
      await failure(instance.get("/v1/b")) // none left
      expect(api.requests).toHaveLength(3)
      expect(
        events.filter((e) => e.type === "request_gave_up").map((e) => "reason" in e && e.reason)
      ).toEqual(["budget", "budget"])
    })

    it("an error axios raises itself (not the network) is neither retried nor replayed", async () => {
      const instance = attached(adapter)
      const error = await failure(instance.put("/v1/x", "body", { maxBodyLength: 2, maxRedirects: 5 }))
      expect(isAxiosError(error) && error.message).toMatch(/maxBodyLength/)
      expect(isAxiosError(error) && error.config?.url).toBe("/v1/x")
      expect(api.requests).toHaveLength(0)
    })

    it("responseType: stream survives retries and redirects (discarded bodies are released)", async () => {
      api.enqueue({ status: 503 }, { status: 302, headers: { location: "/api/v1/there" } })
      const response = await attached(adapter).get("/v1/here", { responseType: "stream" })
      const chunks: Array<Uint8Array> = []
      for await (const chunk of response.data as AsyncIterable<Uint8Array>) chunks.push(chunk)
      expect(JSON.parse(Buffer.concat(chunks).toString("utf8"))).toEqual({ ok: true })
      expect(api.requests.map((r) => r.url)).toEqual(["/api/v1/here", "/api/v1/here", "/api/v1/there"])
    })

    it("a token endpoint failure surfaces as core's typed error", async () => {
      auth.setDefault(() => ({ status: 401, body: { error: "invalid_client" } }))
      const error = await failure(attached(adapter).get("/v1/x"))
      expect(error).toMatchObject({ _tag: "OAuthError", code: "invalid_client" })
      expect(api.requests).toHaveLength(0)
    })

    it("a one-shot Node Readable body is sent once; after a 401 the 401 is returned", async () => {
      await tokens.getToken()
      api.enqueue({ status: 401 })
      const response = await attached(adapter, { validateStatus: () => true }).post(
        "/v1/uploads",
        Readable.from([Buffer.from("part-1;"), Buffer.from("part-2")])
      )
      expect(response.status).toBe(401)
      expect(api.requests.map((r) => r.rawBody)).toEqual(["part-1;part-2"])
      expect(events.map((e) => e.type)).toContain("unauthorized_not_replayable")
    })
  })
}

describe("attachAuth: configuration", () => {
  it("needs a baseURL or origins, https: or loopback http:", () => {
    expect(() => attachAuth(axios.create(), tokens)).toThrow(InvalidConfigError)
    expect(() => attachAuth(axios.create({ baseURL: "http://api.example.com" }), tokens)).toThrow(
      /must be https/
    )
    expect(() => attachAuth(axios.create({ baseURL: "/relative" }), tokens)).toThrow(InvalidConfigError)
    const detach = attachAuth(axios.create({ baseURL: "https://api.example.com/v1" }), tokens)
    detach()
  })

  it("a per-request adapter is wrapped as well", async () => {
    const instance = attached("http")
    await instance.get("/v1/x", { adapter: "fetch" })
    expect(bearers(api)).toEqual([expect.stringMatching(/^Bearer at-/)])
  })

  it("a data: URL goes straight to the adapter", async () => {
    const instance = axios.create({ adapter: "http" })
    attachAuth(instance, tokens, { origins: [api.url] })
    const response = await instance.get("data:text/plain,hello", { responseType: "text" })
    expect(response.data).toBe("hello")
    expect(auth.requests).toHaveLength(0)
  })
})
