/**
 * One owner of retries: the core. ky's automatic retry is off, whatever a
 * caller or a later `extend` sets, so a server that always answers 503 sees
 * exactly 1 + maxRetries attempts, never (1 + kyLimit) x (1 + maxRetries).
 */
import { RetriesExhaustedError } from "@authfetch/core"
import ky, { HTTPError, isHTTPError, NetworkError } from "ky"
import { afterEach, describe, expect, it } from "vitest"
import { authKyOptions } from "../src/index.ts"
import { closeAll, fast, rejectionOf, setup } from "./support.ts"

afterEach(closeAll)

const always503 = { status: 503, body: { title: "down" } } as const

describe("retries never stack", () => {
  it("an always-503 GET: exactly 1 + maxRetries attempts (default maxRetries 2 → 3)", async () => {
    const world = await setup()
    world.api.setDefault(() => always503)
    const api = ky.create(
      authKyOptions(world.tokens, {
        prefix: world.base,
        auth: { retry: fast, onEvent: (e) => world.events.push(e) }
      })
    )
    const error = await rejectionOf(api.get("v1/down"))
    expect(error).toBeInstanceOf(HTTPError)
    expect((error as HTTPError).response.status).toBe(503)
    expect(world.api.requests).toHaveLength(3)
    expect(world.events.filter((e) => e.type === "request_retried")).toHaveLength(2)
    expect(world.events.filter((e) => e.type === "request_gave_up")).toHaveLength(1)
    expect(world.auth.requests).toHaveLength(1)
  })

  it("maxRetries: 4 → 5 attempts; ky's retry set by create, extend or the call never adds any", async () => {
    const world = await setup()
    world.api.setDefault(() => always503)
    const base = ky.create({
      ...authKyOptions(world.tokens, { prefix: world.base, auth: { retry: { ...fast, maxRetries: 4 } } }),
      retry: 3
    })
    const variants = [
      base,
      base.extend({ retry: { limit: 5, statusCodes: [503], retryOnTimeout: true } }),
      base.extend({ retry: 2, hooks: { beforeRetry: [() => undefined] } })
    ]
    for (const [index, api] of variants.entries()) {
      const before = world.api.requests.length
      const error = await rejectionOf(api.get("v1/down", index === 0 ? { retry: 7 } : {}))
      expect(isHTTPError(error)).toBe(true)
      expect(world.api.requests.length - before).toBe(5)
    }
  })

  it("retry: false sends each request once", async () => {
    const world = await setup()
    world.api.setDefault(() => always503)
    const api = ky.create(authKyOptions(world.tokens, { prefix: world.base, auth: { retry: false } }))
    await rejectionOf(api.get("v1/down"))
    expect(world.api.requests).toHaveLength(1)
  })

  it("a POST without Idempotency-Key is sent once on 503 (the core's rule, not ky's methods list)", async () => {
    const world = await setup()
    world.api.setDefault(() => always503)
    const api = ky.create(authKyOptions(world.tokens, { prefix: world.base, auth: { retry: fast } }))
    await rejectionOf(api.post("v1/payments", { json: { amount: 1 } }))
    expect(world.api.requests).toHaveLength(1)
    await rejectionOf(api.post("v1/payments", { json: { amount: 1 }, headers: { "idempotency-key": "k-1" } }))
    expect(world.api.requests).toHaveLength(4)
  })

  it("a network failure that never heals: 1 + maxRetries attempts, then ky's NetworkError caused by RetriesExhaustedError", async () => {
    const world = await setup()
    world.api.setDefault(() => ({ drop: true }))
    const api = ky.create(authKyOptions(world.tokens, { prefix: world.base, auth: { retry: fast } }))
    const error = await rejectionOf(api.get("v1/flaky"))
    expect(error).toBeInstanceOf(NetworkError)
    const cause = (error as NetworkError).cause
    expect(cause).toBeInstanceOf(RetriesExhaustedError)
    expect((cause as RetriesExhaustedError).attempts).toBe(3)
    expect(world.api.requests).toHaveLength(3)
  })

  it("an explicit ky.retry() from afterResponse is the caller's own: one more run of the whole policy per retry.limit", async () => {
    const world = await setup()
    let calls = 0
    world.api.setDefault(() => {
      calls++
      return calls <= 3 ? always503 : { status: 200, body: { ready: calls > 4 } }
    })
    const api = ky.create(
      authKyOptions(world.tokens, {
        prefix: world.base,
        retry: { limit: 1 },
        hooks: {
          afterResponse: [
            async ({ response }) => {
              if (response.ok && !((await response.json()) as { ready: boolean }).ready)
                return ky.retry({ delay: 0 })
            }
          ]
        },
        auth: { retry: fast }
      })
    )
    // run 1: 503, 503, 503 (policy gave up) → HTTPError, no forced retry (only afterResponse forces)
    await rejectionOf(api.get("v1/job"))
    expect(world.api.requests).toHaveLength(3)
    // run 2: 200 {ready:false} → ky.retry() → run 3: 200 {ready:true}
    expect(await api.get("v1/job").json()).toEqual({ ready: true })
    expect(world.api.requests).toHaveLength(5)
  })
})
