/**
 * The leak sweep: AxiosErrors (and responses) are logged whole. With a
 * recognisable token (ATLEAK-...), every rendering a logger or an error
 * tracker makes of them is scanned: `config.headers`, `toJSON()`,
 * `JSON.stringify`, `util.inspect(…, { depth: 10, showHidden: true })`,
 * `err.request`, `err.response.config`, `err.response.request`, `err.cause`,
 * the stack. Both adapters; a 401 after the replay, a 500, a network error, a
 * timeout, a streamed error body, a success.
 *
 * The control test shows the sweep is not vacuous: plain axios with the same
 * token set by hand leaks it through `err.request` (the ClientRequest's
 * `_header`, the fetch Request's headers).
 */
import { inspect } from "node:util"
import { createTokenSource, type RequestEvent, type TokenSourceHandle } from "@authfetch/core"
import axios, { type AxiosInstance, isAxiosError } from "axios"
import { afterEach, beforeEach, describe, expect, it } from "vitest"
import { issueToken, startTokenServer, type TokenServer } from "../../core/test/support/tokenServer.ts"
import { attachAuth, problemOf } from "../src/index.ts"
import { type AdapterName, adapters, fast } from "./support/clients.ts"

const SECRET_PART = "0b1c2d3e4f"
const needles = ["ATLEAK", SECRET_PART]

const renderings = (value: unknown): Array<string> => {
  const safe = (render: () => string | undefined): string => {
    try {
      return render() ?? ""
    } catch (error) {
      return `<render failed: ${String(error)}>`
    }
  }
  const out = [
    safe(() => String(value)),
    safe(() => JSON.stringify(value)),
    safe(() => inspect(value, { depth: 10, showHidden: true })),
    safe(() => inspect(value, { depth: 10, showHidden: true, customInspect: false, getters: true }))
  ]
  if (value instanceof Error) out.push(value.message, value.stack ?? "")
  return out
}

/** Everything a logger might print of an error. */
const errorRenderings = (error: unknown): Array<string> => {
  const out = renderings(error)
  if (isAxiosError(error)) {
    out.push(
      ...renderings(error.toJSON()),
      ...renderings(error.config),
      ...renderings(error.config?.headers),
      ...renderings(error.request),
      ...renderings(error.response),
      ...renderings(error.response?.config),
      ...renderings(error.response?.request),
      ...renderings(error.response?.headers),
      ...renderings(error.cause)
    )
  }
  return out
}

const expectNoToken = (texts: Array<string>) => {
  for (const text of texts) for (const needle of needles) expect(text).not.toContain(needle)
}

let auth: TokenServer
let api: TokenServer
let tokens: TokenSourceHandle
let events: Array<RequestEvent>
let issued = 0

beforeEach(async () => {
  auth = await startTokenServer(() => issueToken({ access_token: `ATLEAK-${SECRET_PART}-${++issued}` }))
  api = await startTokenServer()
  api.setDefault(() => ({ status: 200, body: { ok: true } }))
  tokens = createTokenSource({ tokenUrl: auth.tokenUrl, clientId: "leaks", clientSecret: "s3cret" })
  events = []
})

afterEach(async () => {
  await tokens.dispose()
  await Promise.all([auth.close(), api.close()])
})

const client = (adapter: AdapterName, config: Parameters<typeof axios.create>[0] = {}): AxiosInstance => {
  const instance = axios.create({ baseURL: `${api.url}/api`, adapter, ...config })
  attachAuth(instance, tokens, { retry: fast, onEvent: (event) => events.push(event) })
  return instance
}

const failure = (promise: Promise<unknown>): Promise<unknown> =>
  promise.then(
    () => {
      throw new Error("expected the request to fail")
    },
    (error: unknown) => error
  )

/** The API did see our token: the sweep is about a token that really was sent. */
const expectTokenSent = () => {
  expect(api.requests.some((r) => String(r.headers.authorization).startsWith("Bearer ATLEAK-"))).toBe(true)
}

for (const adapter of adapters) {
  describe(`no token in errors or responses: ${adapter} adapter`, () => {
    it("a 401 after the replay", async () => {
      api.setDefault(() => ({
        status: 401,
        headers: {
          "content-type": "application/problem+json",
          "www-authenticate": 'Bearer error="invalid_token"'
        },
        text: '{"type":"about:blank","title":"Unauthorized","detail":"token expired"}'
      }))
      const error = await failure(client(adapter).get("/v1/consumers/12345"))
      expect(isAxiosError(error) && error.response?.status).toBe(401)
      expect(api.requests).toHaveLength(2)
      expect(auth.requests).toHaveLength(2)
      expect(problemOf(error)?.detail).toBe("token expired")
      expectTokenSent()
      expectNoToken(errorRenderings(error))
      expectNoToken(renderings(problemOf(error)))
      expectNoToken(events.map((e) => JSON.stringify(e)))
    })

    it("a 500", async () => {
      api.setDefault(() => ({ status: 500, body: { error: "server_error", error_description: "boom" } }))
      const error = await failure(client(adapter).post("/v1/claims", { amount: 1 }))
      expect(isAxiosError(error) && error.response?.status).toBe(500)
      expectTokenSent()
      expectNoToken(errorRenderings(error))
    })

    it("a network error (the connection is dropped), after the retries", async () => {
      api.setDefault(() => ({ drop: true }))
      const error = await failure(client(adapter).get("/v1/consumers/12345"))
      expect(isAxiosError(error) && error.response).toBeUndefined()
      expect(isAxiosError(error) && error.request).toBeTruthy()
      expect(api.requests).toHaveLength(3)
      expect(events.some((e) => e.type === "request_gave_up")).toBe(true)
      expectTokenSent()
      expectNoToken(errorRenderings(error))
    })

    it("a timeout", async () => {
      api.setDefault(() => ({ status: 200, body: { late: true }, delayMs: 400 }))
      const error = await failure(client(adapter, { timeout: 100 }).post("/v1/claims", "{}"))
      expect(isAxiosError(error) && error.code).toBe("ECONNABORTED")
      expect(isAxiosError(error) && error.message).toBe("timeout of 100ms exceeded")
      expectTokenSent()
      expectNoToken(errorRenderings(error))
    })

    it("an error whose body is a stream (responseType: stream)", async () => {
      api.setDefault(() => ({ status: 503, body: { down: true } }))
      const error = await failure(client(adapter).post("/v1/claims", "{}", { responseType: "stream" }))
      expect(isAxiosError(error) && error.response?.status).toBe(503)
      expectTokenSent()
      expectNoToken(errorRenderings(error))
      expectNoToken(renderings(isAxiosError(error) ? error.response?.data : undefined))
    })

    it("an error logged while other requests still hold the token in flight", async () => {
      api.setDefault((request) =>
        request.url.endsWith("/fail")
          ? { status: 500, body: { error: "boom" } }
          : { status: 200, body: { ok: true }, delayMs: 300 }
      )
      const instance = client(adapter)
      const slow = Array.from({ length: 5 }, (_, i) => instance.get(`/v1/slow/${i}`))
      await api.waitForRequests(5)
      const error = await failure(instance.get("/v1/fail"))
      expectNoToken(errorRenderings(error))
      await Promise.all(slow)
    })

    it("a successful response", async () => {
      const response = await client(adapter).get("/v1/consumers/12345")
      expect(response.status).toBe(200)
      expectTokenSent()
      expectNoToken([
        ...renderings(response),
        ...renderings(response.config),
        ...renderings(response.request),
        ...renderings(response.headers)
      ])
    })

    it("control: plain axios with the token set by hand leaks it through err.request", async () => {
      api.setDefault(() => ({ status: 500 }))
      const plain = axios.create({ baseURL: `${api.url}/api`, adapter })
      const error = await failure(
        plain.get("/v1/x", { headers: { authorization: `Bearer ATLEAK-${SECRET_PART}-control` } })
      )
      const request = inspect(isAxiosError(error) ? error.request : undefined, {
        depth: 10,
        showHidden: true
      })
      expect(request).toContain(`ATLEAK-${SECRET_PART}-control`)
    })
  })
}
