/**
 * Fault injection, at start and at run time: error statuses, latency, 429
 * with Retry-After (by count and by rate), dropped connections, a skewed
 * clock, early revocation.
 */
import { afterEach, describe, expect, it } from "vitest"
import { type Sandbox, type SandboxEvent, type SandboxOptions, startSandbox } from "../src/index.ts"
import { bearer, CLIENT, clientCredentials, postForm } from "./support.ts"

const open: Array<Sandbox> = []
const start = async (options: Partial<SandboxOptions> = {}) => {
  const sandbox = await startSandbox({ profile: "wex", ...options })
  open.push(sandbox)
  return sandbox
}
afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.close()))
})

const api = (sandbox: Sandbox, token: string) =>
  fetch(`${sandbox.baseUrl}/v1/consumers/12345`, { headers: bearer(token) })

describe("faults", () => {
  it("errorRate 1 answers every API request 503, and setFaults({}) clears it", async () => {
    const sandbox = await start()
    const token = await clientCredentials(sandbox)
    sandbox.setFaults({ api: { errorRate: 1 } })
    const statuses = await Promise.all(
      Array.from({ length: 10 }, async () => (await api(sandbox, token)).status)
    )
    expect(statuses).toEqual(Array(10).fill(503))
    // the token endpoint has its own faults: untouched
    expect((await postForm(sandbox.tokenUrl, { grant_type: "client_credentials", ...CLIENT })).status).toBe(
      200
    )
    sandbox.setFaults({})
    expect((await api(sandbox, token)).status).toBe(200)
    expect(sandbox.stats().apiRequests.byStatus).toEqual({ "503": 10, "200": 1 })
  })

  it("errors on the token endpoint speak OAuth (503, 500) or a gateway's HTML (502)", async () => {
    const sandbox = await start({ faults: { token: { errorRate: 1 } } })
    const unavailable = await postForm(sandbox.tokenUrl, { grant_type: "client_credentials", ...CLIENT })
    expect(unavailable.status).toBe(503)
    expect(((await unavailable.json()) as { error: string }).error).toBe("temporarily_unavailable")
    sandbox.setFaults({ token: { errorRate: 1, errorStatus: 500 } })
    const failed = await postForm(sandbox.tokenUrl, { grant_type: "client_credentials", ...CLIENT })
    expect(failed.status).toBe(500)
    expect(((await failed.json()) as { error: string }).error).toBe("server_error")
    sandbox.setFaults({ token: { errorRate: 1, errorStatus: 502 } })
    const gateway = await postForm(sandbox.tokenUrl, { grant_type: "client_credentials", ...CLIENT })
    expect(gateway.status).toBe(502)
    expect(gateway.headers.get("content-type")).toMatch(/^text\/html/)
    expect(await gateway.text()).toContain("502 Bad Gateway")
    // the faulted requests are attributed to their client all the same
    expect(sandbox.stats().tokenRequests.byClient).toEqual({ "sandbox-client": 3 })
    expect(sandbox.stats().tokensIssued).toBe(0)
  })

  it("errorRate uses the injected randomness", async () => {
    const draws = [0.1, 0.9, 0.1, 0.9]
    const sandbox = await start({ random: () => draws.shift() ?? 0.9, faults: { api: { errorRate: 0.5 } } })
    const token = await clientCredentials(sandbox)
    const statuses: Array<number> = []
    for (let i = 0; i < 4; i++) statuses.push((await api(sandbox, token)).status)
    expect(statuses).toEqual([503, 200, 503, 200])
  })

  it("latency delays the answer, and only where it is set", async () => {
    const sandbox = await start({ faults: { token: { latencyMs: 600 } } })
    let t0 = performance.now()
    const token = await clientCredentials(sandbox)
    expect(performance.now() - t0).toBeGreaterThanOrEqual(590)
    t0 = performance.now()
    expect((await api(sandbox, token)).status).toBe(200)
    expect(performance.now() - t0).toBeLessThan(500)
    sandbox.setFaults({ api: { latencyMs: 250 } })
    t0 = performance.now()
    expect((await api(sandbox, token)).status).toBe(200)
    expect(performance.now() - t0).toBeGreaterThanOrEqual(240)
  })

  it("unauthorizedPaths: 401 below those prefixes whatever the token; the token still works elsewhere", async () => {
    const sandbox = await start({ faults: { api: { unauthorizedPaths: ["/v1/admin"] } } })
    const token = await clientCredentials(sandbox)
    for (const path of ["/v1/admin", "/v1/admin/users", "/v1/admin/users/1"]) {
      const res = await fetch(`${sandbox.baseUrl}${path}`, { headers: bearer(token) })
      expect(res.status).toBe(401)
      expect(res.headers.get("www-authenticate")).toMatch(/^Bearer/)
    }
    // a prefix, not a string start: /v1/administrators is another path
    expect((await fetch(`${sandbox.baseUrl}/v1/administrators`, { headers: bearer(token) })).status).toBe(404)
    expect((await api(sandbox, token)).status).toBe(200)
    expect(sandbox.stats().tokensRevoked).toBe(0)
    expect(() => sandbox.setFaults({ api: { unauthorizedPaths: ["admin"] } })).toThrow(/unauthorizedPaths/)
  })

  it("rateLimit429 count: the next N requests get 429 with Retry-After, then service resumes", async () => {
    const sandbox = await start()
    sandbox.setFaults({ token: { rateLimit429: { count: 2, retryAfterSeconds: 7 } } })
    for (let i = 0; i < 2; i++) {
      const res = await postForm(sandbox.tokenUrl, { grant_type: "client_credentials", ...CLIENT })
      expect(res.status).toBe(429)
      expect(res.headers.get("retry-after")).toBe("7")
      expect(((await res.json()) as { error: string }).error).toBe("too_many_requests")
    }
    const token = await clientCredentials(sandbox)
    sandbox.setFaults({ api: { rateLimit429: { count: 1 } } })
    const limited = await api(sandbox, token)
    expect(limited.status).toBe(429)
    expect(limited.headers.get("retry-after")).toBe("1")
    expect(limited.headers.get("content-type")).toMatch(/^application\/problem\+json/)
    expect((await api(sandbox, token)).status).toBe(200)
  })

  it("rateLimit429 rate: a share of requests, by the injected randomness", async () => {
    let next = 0
    const sandbox = await start({ random: () => next })
    const token = await clientCredentials(sandbox)
    sandbox.setFaults({ api: { rateLimit429: { rate: 0.5, retryAfterSeconds: 3 } } })
    next = 0.2
    const limited = await api(sandbox, token)
    expect(limited.status).toBe(429)
    expect(limited.headers.get("retry-after")).toBe("3")
    next = 0.7
    expect((await api(sandbox, token)).status).toBe(200)
  })

  it("dropRate 1 destroys the connection without an answer (fetch rejects)", async () => {
    const events: Array<SandboxEvent> = []
    const sandbox = await start({ onEvent: (e) => events.push(e) })
    const token = await clientCredentials(sandbox)
    sandbox.setFaults({ api: { dropRate: 1 }, token: { dropRate: 1 } })
    await expect(api(sandbox, token)).rejects.toThrow(TypeError)
    await expect(postForm(sandbox.tokenUrl, { grant_type: "client_credentials", ...CLIENT })).rejects.toThrow(
      TypeError
    )
    const dropped = events.filter((e) => e.status === 0)
    expect(dropped.map((e) => e.kind).sort()).toEqual(["api", "token"])
    expect(dropped.every((e) => e.faults?.includes("drop"))).toBe(true)
    expect(sandbox.stats().apiRequests.byStatus).toEqual({ "0": 1 })
  })

  it("a clock offset moves the Date header and token expiry, not expires_in", async () => {
    const sandbox = await start()
    const before = await clientCredentials(sandbox)
    sandbox.setFaults({ clockOffsetSeconds: 3600 })
    const res = await postForm(sandbox.tokenUrl, { grant_type: "client_credentials", ...CLIENT })
    const serverDate = Date.parse(res.headers.get("date")!)
    expect(Math.abs(serverDate - (Date.now() + 3_600_000))).toBeLessThan(5000)
    const body = (await res.json()) as { access_token: string; expires_in: number }
    expect(body.expires_in).toBe(600)
    // by the server's clock, the token issued an hour "earlier" has expired
    expect((await api(sandbox, before)).status).toBe(401)
    expect((await api(sandbox, body.access_token)).status).toBe(200)
    const tokens = (await (await fetch(`${sandbox.adminUrl}/tokens`)).json()) as { now: string }
    expect(Math.abs(Date.parse(tokens.now) - (Date.now() + 3_600_000))).toBeLessThan(5000)
    // by a clock five minutes slow, the first token is valid again
    sandbox.setFaults({ clockOffsetSeconds: -300 })
    const back = await api(sandbox, before)
    expect(back.status).toBe(200)
    const date = Date.parse(back.headers.get("date")!)
    expect(Math.abs(date - (Date.now() - 300_000))).toBeLessThan(5000)
  })

  it("revokeAll revokes every token issued so far, not later ones", async () => {
    const sandbox = await start()
    const a = await clientCredentials(sandbox)
    const b = await clientCredentials(sandbox)
    sandbox.revokeAll()
    expect((await api(sandbox, a)).status).toBe(401)
    expect((await api(sandbox, b)).status).toBe(401)
    const c = await clientCredentials(sandbox)
    expect((await api(sandbox, c)).status).toBe(200)
    expect(sandbox.stats()).toMatchObject({ tokensIssued: 3, tokensRevoked: 2, activeTokens: 1 })
  })

  it("rejects faults that make no sense, and an unknown field", async () => {
    const sandbox = await start()
    expect(() => sandbox.setFaults({ api: { errorRate: 2 } })).toThrow(TypeError)
    expect(() => sandbox.setFaults({ api: { errorStatus: 404 as never } })).toThrow(/500, 502 or 503/)
    expect(() => sandbox.setFaults({ api: { latncyMs: 100 } as never })).toThrow(/latncyMs/)
    await expect(startSandbox({ profile: "wex", faults: { token: { dropRate: -1 } } })).rejects.toThrow(
      TypeError
    )
  })
})
