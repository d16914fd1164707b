/**
 * The caller's ky hooks compose with ours, in the documented order, and
 * instances derived with `extend` keep authentication.
 */
import ky, { type Hooks, isHTTPError } from "ky"
import { afterEach, describe, expect, it } from "vitest"
import { WEX_EXPIRED_BODY } from "../../core/test/scenarios/scenarios.ts"
import { authKyOptions } from "../src/index.ts"
import { closeAll, fast, rejectionOf, setup } from "./support.ts"

afterEach(closeAll)

const recording = (log: Array<string>, name: string): Hooks => ({
  init: [() => void log.push(`${name}:init`)],
  beforeRequest: [
    ({ request }) => {
      log.push(`${name}:beforeRequest authorization=${request.headers.get("authorization")}`)
    }
  ],
  beforeRetry: [() => void log.push(`${name}:beforeRetry`)],
  afterResponse: [({ response }) => void log.push(`${name}:afterResponse ${response.status}`)],
  beforeError: [
    ({ error }) => {
      log.push(`${name}:beforeError problem=${isHTTPError(error) ? error.problem?.title : "-"}`)
      return error
    }
  ]
})

describe("hooks", () => {
  it("the caller's hooks run once per ky call, around the whole policy (401 replay and retries inside)", async () => {
    const world = await setup()
    await world.tokens.getToken()
    world.api.enqueue(
      { status: 401, text: WEX_EXPIRED_BODY, headers: { "content-type": "application/problem+json" } },
      { status: 503 }
    )
    const log: Array<string> = []
    const api = ky.create(
      authKyOptions(world.tokens, {
        prefix: world.base,
        hooks: recording(log, "user"),
        auth: { retry: fast }
      })
    )
    expect(await api.get("v1/consumers/1").json()).toEqual({ ok: true })
    // three attempts upstream (401 → replay → 503 → retry → 200), one ky call
    expect(world.api.requests).toHaveLength(3)
    expect(log).toEqual(["user:init", "user:beforeRequest authorization=null", "user:afterResponse 200"])
  })

  it("order: init (theirs, then ours), beforeError (ours first, so theirs see error.problem); extend appends after", async () => {
    const world = await setup()
    world.api.setDefault(() => ({
      status: 401,
      text: WEX_EXPIRED_BODY,
      headers: { "content-type": "application/problem+json" }
    }))
    const log: Array<string> = []
    const api = ky
      .create(authKyOptions(world.tokens, { prefix: world.base, hooks: recording(log, "created") }))
      .extend({ hooks: recording(log, "extended") })
    const error = await rejectionOf(api.get("v1/consumers/1"))
    expect(isHTTPError(error)).toBe(true)
    expect(log).toEqual([
      "created:init",
      "extended:init",
      "created:beforeRequest authorization=null",
      "extended:beforeRequest authorization=null",
      "created:afterResponse 401",
      "extended:afterResponse 401",
      "created:beforeError problem=Unauthorized",
      "extended:beforeError problem=Unauthorized"
    ])
  })

  it("a caller's init hook can still set json and searchParams: ours runs after it and sees them", async () => {
    const world = await setup()
    await world.tokens.getToken()
    world.api.enqueue({ status: 401 })
    const api = ky.create(
      authKyOptions(world.tokens, {
        prefix: world.base,
        hooks: {
          init: [
            (options) => {
              options.searchParams = { tenant: "acme" }
              options.json = { fromInit: true }
            }
          ]
        }
      })
    )
    await api.put("v1/settings").json()
    expect(world.api.requests.map((r) => [r.method, r.url, r.rawBody])).toEqual([
      ["PUT", "/api/v1/settings?tenant=acme", '{"fromInit":true}'],
      ["PUT", "/api/v1/settings?tenant=acme", '{"fromInit":true}']
    ])
  })

  it("a caller's own Authorization (set in beforeRequest) is left alone: no token of ours, no 401 replay", async () => {
    const world = await setup()
    world.api.setDefault(() => ({ status: 401 }))
    const api = ky.create(
      authKyOptions(world.tokens, {
        prefix: world.base,
        hooks: {
          beforeRequest: [({ request }) => void request.headers.set("authorization", "Basic dXNlcg==")]
        }
      })
    )
    await rejectionOf(api.get("v1/me"))
    expect(world.api.requests.map((r) => r.headers.authorization)).toEqual(["Basic dXNlcg=="])
    expect(world.auth.requests).toHaveLength(0)
  })
})

describe("extend keeps auth", () => {
  it("headers, hooks and searchParams added by extend; the bearer token is still sent and 401 still replayed", async () => {
    const world = await setup()
    await world.tokens.getToken()
    const base = ky.create(authKyOptions(world.tokens, { prefix: world.base }))
    const child = base.extend({ headers: { "x-tenant": "acme" }, searchParams: { v: 2 } })
    world.api.enqueue({ status: 401 })
    expect(await child.get("v1/a").json()).toEqual({ ok: true })
    const [first, second] = world.api.requests
    expect(first!.headers.authorization).toMatch(/^Bearer at-/)
    expect(second!.headers.authorization).toMatch(/^Bearer at-/)
    expect(second!.headers.authorization).not.toBe(first!.headers.authorization)
    expect(second!.headers["x-tenant"]).toBe("acme")
    expect(second!.url).toBe("/api/v1/a?v=2")
  })

  it("extend({ fetch }) wraps the new fetch in the policy instead of dropping auth", async () => {
    const world = await setup()
    const seen: Array<string | null> = []
    const child = ky.create(authKyOptions(world.tokens, { prefix: world.base })).extend({
      fetch: (input, init) => {
        seen.push(new Headers(input instanceof Request ? input.headers : init?.headers).get("authorization"))
        return fetch(input, init)
      }
    })
    await child.get("v1/a").json()
    expect(world.api.requests[0]!.headers.authorization).toMatch(/^Bearer at-/)
    // the custom fetch is the wire under the policy: it sees the token the policy set for this hop
    expect(seen).toEqual([expect.stringMatching(/^Bearer at-/)])
  })

  it("the allowed origins are fixed at creation: extend({ prefix }) to another origin sends no token there", async () => {
    const world = await setup()
    const child = ky
      .create(authKyOptions(world.tokens, { prefix: world.base }))
      .extend({ prefix: `${world.other.url}/x` })
    expect(await child.get("v1/a").json()).toEqual({ other: true })
    expect(world.other.requests[0]!.headers.authorization).toBeUndefined()
    expect(world.auth.requests).toHaveLength(0)
  })

  it("two authKyOptions on one chain: the last one wins, one policy (no stacking)", async () => {
    const world = await setup()
    world.api.setDefault(() => ({ status: 503 }))
    const outer = ky.create(authKyOptions(world.tokens, { prefix: world.base, auth: { retry: fast } }))
    const inner = outer.extend(
      authKyOptions(world.tokens, { prefix: world.base, auth: { retry: { ...fast, maxRetries: 1 } } })
    )
    await rejectionOf(inner.get("v1/a"))
    expect(world.api.requests).toHaveLength(2)
  })
})
