/**
 * attachAuth's arguments: anything that is not an axios instance, a token
 * source or options is an `InvalidConfigError` naming the argument (never a
 * raw `TypeError`, never the value); an instance whose defaults carry
 * `Authorization` (how axios-auth-refresh setups look) is refused, since no
 * request of it would get a token, unless `keepAuthorization: true` says that
 * requests with their own `Authorization` are meant to be sent as they are.
 * Real axios, real servers on 127.0.0.1.
 */
import { createTokenSource, InvalidConfigError, type TokenSourceHandle } from "@authfetch/core"
import axios, { type AxiosInstance } from "axios"
import { Effect } from "effect"
import { afterEach, beforeEach, describe, expect, it } from "vitest"
import { startTokenServer, type TokenServer } from "../../core/test/support/tokenServer.ts"
import { attachAuth } from "../src/index.ts"
import { adapters } from "./support/clients.ts"

const STATIC = "Bearer static-token-from-an-old-setup"

let auth: TokenServer
let api: TokenServer
let tokens: TokenSourceHandle

beforeEach(async () => {
  ;[auth, api] = await Promise.all([startTokenServer(), startTokenServer()])
  api.setDefault(() => ({ status: 200, body: { ok: true } }))
  tokens = createTokenSource({ tokenUrl: auth.tokenUrl, clientId: "axios-arguments", clientSecret: "s" })
})
afterEach(async () => {
  await tokens.dispose()
  await Promise.all([auth.close(), api.close()])
})

const bearers = () => api.requests.map((r) => r.headers.authorization)

/** The `InvalidConfigError` thrown by `run`; its message matches every pattern and holds no header value. */
const invalid = (run: () => unknown, ...patterns: Array<string | RegExp>): InvalidConfigError => {
  let thrown: unknown
  try {
    run()
  } catch (error) {
    thrown = error
  }
  expect(thrown).toBeInstanceOf(InvalidConfigError)
  const error = thrown as InvalidConfigError
  for (const pattern of patterns) expect(error.message).toMatch(pattern)
  expect(error.message).not.toContain("static-token")
  return error
}

describe("attachAuth: arguments", () => {
  it("instance, tokens and options are checked, each problem naming its argument", () => {
    const instance = axios.create({ baseURL: api.url })
    invalid(
      () => attachAuth(null as never, tokens),
      "attachAuth: `instance` must be an axios instance",
      /got null/
    )
    invalid(() => attachAuth({} as never, tokens), "`instance`", /got an object/)
    invalid(
      () => attachAuth(instance, null as never),
      "attachAuth: `tokens` must be a token source",
      /got null/
    )
    invalid(() => attachAuth(instance, { getToken: () => Promise.reject() } as never), "`tokens`")
    invalid(() => attachAuth(instance, tokens, "retry" as never), "attachAuth: `options` must be an object")
    invalid(() => attachAuth(instance, tokens, { origins: api.url as never }), "`options.origins`")
    invalid(() => attachAuth(instance, tokens, { retry: 3 as never }), "`options.retry`", /got a number/)
    invalid(() => attachAuth(instance, tokens, { onEvent: "log" as never }), "`options.onEvent`")
    invalid(
      () => attachAuth(instance, tokens, { keepAuthorization: "yes" as never }),
      "`options.keepAuthorization`"
    )
    const both = invalid(() => attachAuth(undefined as never, undefined as never), "`instance`", "`tokens`")
    expect(both.problems).toHaveLength(2)
  })

  it("takes the Promise handle and core's Effect TokenSource shape", () => {
    const effectShaped = { get: Effect.promise(() => tokens.getToken()), invalidate: () => Effect.void }
    attachAuth(axios.create({ baseURL: api.url }), tokens)()
    attachAuth(axios.create({ baseURL: api.url }), effectShaped)()
    attachAuth(axios, tokens, { origins: [api.url] })() // the default instance is an instance too
  })
})

describe("attachAuth: an Authorization in the instance's defaults", () => {
  const defaultsWithAuthorization: ReadonlyArray<[string, () => AxiosInstance, RegExp]> = [
    [
      "axios.create({ headers: { Authorization } })",
      () => axios.create({ headers: { Authorization: STATIC } }),
      /instance\.defaults\.headers\.Authorization/
    ],
    [
      "defaults.headers.common.Authorization (the axios-auth-refresh setup)",
      () => {
        const instance = axios.create()
        instance.defaults.headers.common.Authorization = STATIC
        return instance
      },
      /instance\.defaults\.headers\.common\.Authorization/
    ],
    [
      "defaults.headers.get.authorization",
      () => {
        const instance = axios.create()
        instance.defaults.headers.get.authorization = STATIC
        return instance
      },
      /instance\.defaults\.headers\.get\.authorization/
    ],
    [
      "defaults.auth",
      () => axios.create({ auth: { username: "u", password: "static-token" } }),
      /instance\.defaults\.auth/
    ],
    [
      "credentials in baseURL",
      () => axios.create({ baseURL: "http://u:static-token@127.0.0.1:1/api" }),
      /instance\.defaults\.baseURL/
    ]
  ]

  for (const [name, make, where] of defaultsWithAuthorization) {
    it(`${name}: InvalidConfigError naming it and the fix, never the value`, () => {
      const instance = make()
      invalid(
        () => attachAuth(instance, tokens, { origins: [api.url] }),
        where,
        /keepAuthorization: true/,
        /Remove it/
      )
    })
  }

  for (const adapter of adapters) {
    it(`a default set after attachAuth makes each request fail the same way, until it is removed (${adapter})`, async () => {
      const instance = axios.create({ baseURL: `${api.url}/api`, adapter })
      attachAuth(instance, tokens)
      instance.defaults.headers.common.Authorization = STATIC // on login, as axios-auth-refresh examples do
      const error = await instance.get("/v1/x").catch((error: unknown) => error)
      expect(error).toBeInstanceOf(InvalidConfigError)
      expect((error as Error).message).toMatch(/instance\.defaults\.headers\.common\.Authorization/)
      expect(api.requests).toHaveLength(0)
      delete instance.defaults.headers.common.Authorization
      await instance.get("/v1/x")
      expect(bearers()).toEqual([expect.stringMatching(/^Bearer at-/)])
    })

    it(`keepAuthorization: true sends requests that carry an Authorization as they are (${adapter})`, async () => {
      const instance = axios.create({ baseURL: `${api.url}/api`, adapter })
      instance.defaults.headers.post.Authorization = STATIC // only POSTs carry it
      attachAuth(instance, tokens, { keepAuthorization: true })
      await instance.post("/v1/legacy", { a: 1 })
      await instance.get("/v1/claims")
      await instance.get("/v1/own", { headers: { Authorization: "Bearer per-request" } })
      expect(bearers()).toEqual([STATIC, expect.stringMatching(/^Bearer at-/), "Bearer per-request"])
      expect(auth.requests).toHaveLength(1)
    })

    it(`without defaults, a request's own Authorization is still left alone (${adapter})`, async () => {
      const instance = axios.create({ baseURL: `${api.url}/api`, adapter })
      attachAuth(instance, tokens)
      await instance.get("/v1/own", { headers: { Authorization: "Bearer per-request" } })
      await instance.get("/v1/ours")
      expect(bearers()).toEqual(["Bearer per-request", expect.stringMatching(/^Bearer at-/)])
    })
  }
})
