/**
 * ky's own options keep working under authfetch: `prefix` and `baseUrl`
 * (ky 2's names; `prefixUrl` was renamed `prefix` in ky 2), `searchParams`,
 * `json`, `timeout`, `totalTimeout`, `signal`, and the caller's `fetch`.
 */
import { InvalidConfigError } from "@authfetch/core"
import ky, { TimeoutError } from "ky"
import { afterEach, describe, expect, it } from "vitest"
import { authKyOptions } from "../src/index.ts"
import { closeAll, fast, rejectionOf, setup } from "./support.ts"

afterEach(closeAll)

describe("ky options", () => {
  it("prefix + searchParams + json: URL, query and body as ky builds them, token attached, body replayed after a 401", async () => {
    const world = await setup()
    await world.tokens.getToken()
    world.api.enqueue({ status: 401 })
    const api = ky.create(authKyOptions(world.tokens, { prefix: world.base, searchParams: { v: "2" } }))
    const created = await api
      .post("/v1/claims", { json: { amount: 12.5, note: "é" }, searchParams: { dryRun: true, q: "a b" } })
      .json()
    expect(created).toEqual({ ok: true })
    expect(world.api.requests).toHaveLength(2)
    for (const request of world.api.requests) {
      expect(request.method).toBe("POST")
      expect(request.url).toBe("/api/v1/claims?v=2&dryRun=true&q=a+b")
      expect(request.headers["content-type"]).toBe("application/json")
      expect(request.headers.accept).toBe("application/json")
      expect(request.rawBody).toBe('{"amount":12.5,"note":"é"}')
      expect(request.headers.authorization).toMatch(/^Bearer at-/)
    }
  })

  it("baseUrl: the token goes to its origin; an absolute input to another origin gets none", async () => {
    const world = await setup()
    const api = ky.create(authKyOptions(world.tokens, { baseUrl: `${world.base}/` }))
    expect(await api.get("v1/a").json()).toEqual({ ok: true })
    expect(world.api.requests[0]!.url).toBe("/api/v1/a")
    expect(world.api.requests[0]!.headers.authorization).toMatch(/^Bearer at-/)
    expect(await api.get(`${world.other.url}/b`).json()).toEqual({ other: true })
    expect(world.other.requests[0]!.headers.authorization).toBeUndefined()
  })

  it("auth.origins for a relative prefix or several APIs; none at all is a configuration error", async () => {
    const world = await setup()
    const api = ky.create(
      authKyOptions(world.tokens, { auth: { origins: [world.api.url, world.other.url] } })
    )
    await api.get(`${world.other.url}/b`).json()
    expect(world.other.requests[0]!.headers.authorization).toMatch(/^Bearer at-/)
    expect(() => authKyOptions(world.tokens, { prefix: "/api" })).toThrow(InvalidConfigError)
    expect(() => authKyOptions(world.tokens, { prefix: "http://api.example.com" })).toThrow(/must be https:/)
    // ky 2 renamed prefixUrl; it names no origin here, and ky itself rejects it
    expect(() => authKyOptions(world.tokens, { prefixUrl: world.base } as never)).toThrow(InvalidConfigError)
    expect(() =>
      ky.create(
        authKyOptions(world.tokens, { prefixUrl: world.base, auth: { origins: [world.base] } } as never)
      )("x")
    ).toThrow(/renamed `prefix`/)
  })

  it("ky's timeout bounds the whole ky call: a slow server gives ky's TimeoutError after one attempt", async () => {
    const world = await setup()
    await world.tokens.getToken()
    world.api.setDefault(() => ({ status: 200, body: { ok: true }, delayMs: 1000 }))
    const api = ky.create(
      authKyOptions(world.tokens, { prefix: world.base, timeout: 150, auth: { retry: fast } })
    )
    const started = Date.now()
    const error = await rejectionOf(api.get("v1/slow"))
    expect(error).toBeInstanceOf(TimeoutError)
    expect(Date.now() - started).toBeLessThan(700)
    expect(world.api.requests).toHaveLength(1)
  })

  it("ky's timeout also ends a backoff wait (a Retry-After longer than the caller allows)", async () => {
    const world = await setup()
    await world.tokens.getToken()
    world.api.enqueue({ status: 503, headers: { "retry-after": "30" } })
    const api = ky.create(authKyOptions(world.tokens, { prefix: world.base }))
    const started = Date.now()
    const error = await rejectionOf(api.get("v1/busy", { timeout: 200 }))
    expect(error).toBeInstanceOf(TimeoutError)
    expect(Date.now() - started).toBeLessThan(700)
    expect(world.api.requests).toHaveLength(1)
  })

  it("totalTimeout works as in ky", async () => {
    const world = await setup()
    world.api.setDefault(() => ({ status: 200, delayMs: 1000 }))
    const api = ky.create(authKyOptions(world.tokens, { prefix: world.base, totalTimeout: 150 }))
    expect(await rejectionOf(api.get("v1/slow"))).toBeInstanceOf(TimeoutError)
  })

  it("a timeout long enough for the retries lets them happen (503, 502, then 200)", async () => {
    const world = await setup()
    world.api.enqueue({ status: 503 }, { status: 502 })
    const api = ky.create(
      authKyOptions(world.tokens, { prefix: world.base, timeout: 5000, auth: { retry: fast } })
    )
    expect(await api.get("v1/flaky").json()).toEqual({ ok: true })
    expect(world.api.requests).toHaveLength(3)
  })

  it("signal: aborting mid-request rejects with the signal's reason at once; an aborted signal sends nothing", async () => {
    const world = await setup()
    await world.tokens.getToken()
    world.api.setDefault(() => ({ status: 200, delayMs: 2000 }))
    const api = ky.create(authKyOptions(world.tokens, { prefix: world.base }))
    const controller = new AbortController()
    const pending = api.get("v1/slow", { signal: controller.signal })
    await world.api.waitForRequests(1)
    const abortedAt = Date.now()
    controller.abort()
    const error = await rejectionOf(pending)
    expect(Date.now() - abortedAt).toBeLessThan(100)
    expect((error as Error).name).toBe("AbortError")

    const reason = new Error("user navigated away")
    const rejected = await rejectionOf(api.get("v1/other", { signal: AbortSignal.abort(reason) }))
    expect(rejected).toBe(reason)
    expect(world.api.requests).toHaveLength(1)
  })

  it("the caller's fetch is the wire under the policy (one call per attempt, with the token)", async () => {
    const world = await setup()
    world.api.enqueue({ status: 503 })
    const calls: Array<string | null> = []
    const api = ky.create(
      authKyOptions(world.tokens, {
        prefix: world.base,
        fetch: (input, init) => {
          calls.push(new Headers(init?.headers).get("authorization"))
          return fetch(input, init)
        },
        auth: { retry: fast }
      })
    )
    await api.get("v1/a").json()
    expect(calls).toEqual([expect.stringMatching(/^Bearer at-/), expect.stringMatching(/^Bearer at-/)])
  })

  it("a stream body (or async iterable) is sent once and never replayed; a 401 is handed back", async () => {
    const world = await setup()
    await world.tokens.getToken()
    world.api.enqueue({ status: 401 })
    const api = ky.create(authKyOptions(world.tokens, { prefix: world.base }))
    async function* chunks() {
      yield new TextEncoder().encode("part-1;")
      yield new TextEncoder().encode("part-2")
    }
    const error = await rejectionOf(
      api.put("v1/upload", {
        body: chunks() as unknown as BodyInit,
        headers: { "content-type": "text/plain" }
      })
    )
    expect((error as { response?: Response }).response?.status).toBe(401)
    expect(world.api.requests.map((r) => r.rawBody)).toEqual(["part-1;part-2"])
    // a string body of the same request is replayed
    world.api.enqueue({ status: 401 })
    await api.put("v1/upload", { body: "part-1;part-2" })
    expect(world.api.requests.map((r) => r.rawBody)).toEqual([
      "part-1;part-2",
      "part-1;part-2",
      "part-1;part-2"
    ])
  })
})

describe("the attempt timeout and ky's own timeout", () => {
  /** The timers of 30 s (the core's default attempt timeout) set while `run` runs. */
  const attemptTimersDuring = async (run: () => Promise<unknown>): Promise<number> => {
    const original = globalThis.setTimeout
    let count = 0
    globalThis.setTimeout = ((handler: () => void, delay?: number, ...rest: Array<unknown>) => {
      if (delay === 30_000) count++
      return original(handler, delay, ...rest)
    }) as typeof setTimeout
    try {
      await run()
    } finally {
      globalThis.setTimeout = original
    }
    return count
  }

  it("sets no attempt timeout while ky's timeout ends the call sooner, and the default one otherwise", async () => {
    const world = await setup()
    await world.tokens.getToken()
    const api = ky.create(authKyOptions(world.tokens, { prefix: world.base }))
    // ky's default timeout (10 s), or one under 30 s: an attempt timeout of 30 s could never fire first
    expect(await attemptTimersDuring(() => api.get("v1/a").json())).toBe(0)
    expect(await attemptTimersDuring(() => api.get("v1/a", { timeout: 20_000 }).json())).toBe(0)
    expect(
      await attemptTimersDuring(() => api.get("v1/a", { timeout: false, totalTimeout: 5_000 }).json())
    ).toBe(0)
    // without a ky timeout, or a longer one, each attempt keeps its own bound
    expect(await attemptTimersDuring(() => api.get("v1/a", { timeout: false }).json())).toBe(1)
    expect(await attemptTimersDuring(() => api.get("v1/a", { timeout: 60_000 }).json())).toBe(1)
    expect(world.api.requests).toHaveLength(5)
  })

  it("an explicit attempt timeout is always kept", async () => {
    const world = await setup()
    await world.tokens.getToken()
    world.api.enqueue({ status: 200, body: { slow: true }, delayMs: 400 })
    const api = ky.create(
      authKyOptions(world.tokens, { prefix: world.base, auth: { attemptTimeout: "100 millis", retry: fast } })
    )
    expect(await api.get("v1/a").json()).toEqual({ ok: true }) // the slow attempt timed out, the retry answered
    expect(world.api.requests).toHaveLength(2)
  })
})
