/**
 * authKyOptions' arguments: anything that is not a token source or ky options
 * with well-typed `auth` settings is an `InvalidConfigError` naming the
 * argument (never a raw `TypeError` at the first request, never the value);
 * `headers` carrying an `Authorization` are refused, since no request would
 * get a token, unless `auth.keepAuthorization: true` says that requests with
 * their own `Authorization` are meant to be sent as they are. Real ky, real
 * servers on 127.0.0.1.
 */
import { InvalidConfigError } from "@authfetch/core"
import { Effect } from "effect"
import ky from "ky"
import { afterEach, describe, expect, it } from "vitest"
import { authKyOptions } from "../src/index.ts"
import { closeAll, setup } from "./support.ts"

afterEach(closeAll)

const STATIC = "Bearer static-token-from-an-old-setup"

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

describe("authKyOptions: arguments", () => {
  it("tokens and options are checked, each problem naming its argument", async () => {
    const { tokens, base } = await setup()
    invalid(
      () => authKyOptions(null as never, { prefix: base }),
      "authKyOptions: `tokens` must be a token source",
      /got null/
    )
    invalid(() => authKyOptions({ getToken: () => Promise.reject() } as never, { prefix: base }), "`tokens`")
    invalid(
      () => authKyOptions(tokens, null as never),
      "authKyOptions: `options` must be ky options",
      /got null/
    )
    invalid(() => authKyOptions(tokens, { prefix: base, fetch: "fetch" as never }), "`options.fetch`")
    invalid(
      () => authKyOptions(tokens, { prefix: base, auth: 1 as never }),
      "`options.auth` must be an object"
    )
    invalid(() => authKyOptions(tokens, { auth: { origins: base as never } }), "`options.auth.origins`")
    invalid(
      () => authKyOptions(tokens, { prefix: base, auth: { retry: 2 as never } }),
      "`options.auth.retry`"
    )
    invalid(
      () => authKyOptions(tokens, { prefix: base, auth: { attemptTimeout: "soon" as never } }),
      "`options.auth.attemptTimeout`"
    )
    invalid(
      () => authKyOptions(tokens, { prefix: base, auth: { maxRedirects: -1 } }),
      "`options.auth.maxRedirects`"
    )
    invalid(
      () => authKyOptions(tokens, { prefix: base, auth: { onEvent: {} as never } }),
      "`options.auth.onEvent`"
    )
    invalid(
      () => authKyOptions(tokens, { prefix: base, auth: { keepAuthorization: 1 as never } }),
      "`options.auth.keepAuthorization`"
    )
    const both = invalid(
      () => authKyOptions(undefined as never, { prefix: base, auth: { retry: "x" as never } }),
      "`tokens`",
      "`options.auth.retry`"
    )
    expect(both.problems).toHaveLength(2)
  })

  it("takes the Promise handle and core's Effect TokenSource shape", async () => {
    const { tokens, base, api } = await setup()
    const effectShaped = { get: Effect.promise(() => tokens.getToken()), invalidate: () => Effect.void }
    expect(
      await ky
        .create(authKyOptions(effectShaped, { prefix: base }))
        .get("v1/x")
        .json()
    ).toEqual({ ok: true })
    expect(api.requests[0]!.headers.authorization).toMatch(/^Bearer at-/)
  })
})

describe("authKyOptions: an Authorization in the headers every request gets", () => {
  const shapes: ReadonlyArray<[string, () => HeadersInit | Record<string, string | undefined>]> = [
    ["a record", () => ({ Authorization: STATIC })],
    ["a record, lower case", () => ({ authorization: STATIC })],
    ["a Headers", () => new Headers({ Authorization: STATIC })],
    ["pairs", () => [["Authorization", STATIC]]]
  ]
  for (const [name, headers] of shapes) {
    it(`${name}: InvalidConfigError naming it and the fix, never the value`, async () => {
      const { tokens, base } = await setup()
      invalid(
        () => authKyOptions(tokens, { prefix: base, headers: headers() }),
        "authKyOptions: `options.headers` has an Authorization",
        /keepAuthorization: true/
      )
    })
  }

  it("an Authorization removed (undefined) is not one", async () => {
    const { tokens, base } = await setup()
    expect(() => authKyOptions(tokens, { prefix: base, headers: { Authorization: undefined } })).not.toThrow()
  })

  it("auth.keepAuthorization: true sends requests that carry an Authorization as they are", async () => {
    const { tokens, base, api, auth } = await setup()
    const legacy = ky.create(
      authKyOptions(tokens, {
        prefix: base,
        headers: { Authorization: STATIC },
        auth: { keepAuthorization: true }
      })
    )
    expect(await legacy.get("v1/legacy").json()).toEqual({ ok: true })
    const ours = ky.create(authKyOptions(tokens, { prefix: base }))
    await ours.get("v1/ours").json()
    await ours.get("v1/own", { headers: { Authorization: "Bearer per-request" } }).json()
    expect(api.requests.map((r) => r.headers.authorization)).toEqual([
      STATIC,
      expect.stringMatching(/^Bearer at-/),
      "Bearer per-request"
    ])
    expect(auth.requests).toHaveLength(1)
  })
})
