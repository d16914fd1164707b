/**
 * The admin API and the events: what they report, what they change, and
 * that no token value or secret ever shows in either.
 */
import { afterEach, describe, expect, it } from "vitest"
import { type Sandbox, type SandboxEvent, type SandboxOptions, startSandbox } from "../src/index.ts"
import { bearer, CLIENT, clientCredentials, fingerprintOf, postForm } from "./support.ts"

const open: Array<Sandbox> = []
const start = async (options: Partial<SandboxOptions> = {}) => {
  const sandbox = await startSandbox({ profile: "wex", ...options })
  open.push(sandbox)
  return sandbox
}
afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.close()))
})

const getJson = async <T>(url: string): Promise<T> => {
  const res = await fetch(url)
  expect(res.status).toBe(200)
  expect(res.headers.get("cache-control")).toBe("no-store")
  return (await res.json()) as T
}

interface TokenRow {
  fingerprint: string
  clientId: string
  expiresAt: string
  expiresInSeconds: number
  revoked: boolean
  expired: boolean
}

describe("admin API", () => {
  it("GET /admin/stats is sandbox.stats()", async () => {
    const sandbox = await start()
    const token = await clientCredentials(sandbox)
    await fetch(`${sandbox.baseUrl}/v1/consumers/1`, { headers: bearer(token) })
    await fetch(`${sandbox.baseUrl}/v1/consumers/1`)
    const stats = await getJson<ReturnType<Sandbox["stats"]>>(`${sandbox.adminUrl}/stats`)
    expect(stats).toEqual(sandbox.stats())
    expect(stats.apiRequests).toEqual({
      total: 2,
      byStatus: { "200": 1, "401": 1 },
      byRoute: { "GET /v1/consumers/:id": 2 },
      // the request without a token has no subject
      bySubject: { "sandbox-client": 1 }
    })
  })

  it("PUT /admin/faults sets faults at run time, GET reads them back, bad input is 400", async () => {
    const sandbox = await start()
    const token = await clientCredentials(sandbox)
    const put = (body: string, type = "application/json") =>
      fetch(`${sandbox.adminUrl}/faults`, { method: "PUT", headers: { "content-type": type }, body })
    const res = await put(JSON.stringify({ api: { errorRate: 1, errorStatus: 502 } }))
    expect(res.status).toBe(200)
    expect(await getJson(`${sandbox.adminUrl}/faults`)).toEqual({ api: { errorRate: 1, errorStatus: 502 } })
    expect((await fetch(`${sandbox.baseUrl}/v1/claims`, { headers: bearer(token) })).status).toBe(502)

    expect((await put("{nope")).status).toBe(400)
    const unknown = await put(JSON.stringify({ api: { errorRatio: 1 } }))
    expect(unknown.status).toBe(400)
    expect(((await unknown.json()) as { detail: string }).detail).toContain("errorRatio")
    expect((await put(JSON.stringify({ api: { errorRate: 0 } }), "text/plain")).status).toBe(415)
    // the faults in effect did not change on a refused PUT
    expect((await fetch(`${sandbox.baseUrl}/v1/claims`, { headers: bearer(token) })).status).toBe(502)
    expect((await put("{}")).status).toBe(200)
    expect((await fetch(`${sandbox.baseUrl}/v1/claims`, { headers: bearer(token) })).status).toBe(200)
  })

  it("POST /admin/revoke-all and GET /admin/tokens: fingerprints, expiry, revoked; never values", async () => {
    const sandbox = await start({ tokenTtl: 120 })
    const a = await clientCredentials(sandbox)
    const b = await clientCredentials(sandbox)
    const before = await getJson<{ tokens: Array<TokenRow>; now: string }>(`${sandbox.adminUrl}/tokens`)
    expect(before.tokens.map((t) => t.fingerprint)).toEqual([fingerprintOf(b), fingerprintOf(a)])
    expect(before.tokens[0]).toMatchObject({ clientId: "sandbox-client", revoked: false, expired: false })
    expect(before.tokens[0]!.expiresInSeconds).toBeGreaterThan(115)
    expect(Date.parse(before.tokens[0]!.expiresAt) - Date.parse(before.now)).toBeGreaterThan(115_000)

    const revoked = await fetch(`${sandbox.adminUrl}/revoke-all`, { method: "POST" })
    expect(await revoked.json()).toEqual({ revoked: 2 })
    const after = await fetch(`${sandbox.adminUrl}/tokens`)
    const text = await after.text()
    expect(text).not.toContain(a)
    expect(text).not.toContain(b)
    expect((JSON.parse(text) as { tokens: Array<TokenRow> }).tokens.every((t) => t.revoked)).toBe(true)
    expect((await fetch(`${sandbox.baseUrl}/v1/claims`, { headers: bearer(a) })).status).toBe(401)
    expect((await fetch(`${sandbox.adminUrl}/revoke-all`)).status).toBe(405)
  })

  it("POST /admin/reset-stats zeroes the counters", async () => {
    const sandbox = await start()
    await clientCredentials(sandbox)
    expect(sandbox.stats().tokenRequests.total).toBe(1)
    const res = await fetch(`${sandbox.adminUrl}/reset-stats`, { method: "POST" })
    expect(res.status).toBe(204)
    expect(sandbox.stats()).toMatchObject({
      tokenRequests: { total: 0, byClient: {}, byGrant: {}, byStatus: {} },
      apiRequests: { total: 0, byStatus: {} },
      tokensIssued: 0,
      tokensRevoked: 0,
      activeTokens: 1
    })
  })

  it("GET /admin/events?since= returns the newer events only", async () => {
    const sandbox = await start()
    const token = await clientCredentials(sandbox)
    const first = await getJson<{ events: Array<SandboxEvent>; lastSeq: number }>(
      `${sandbox.adminUrl}/events?since=0`
    )
    expect(first.events).toHaveLength(1)
    expect(first.events[0]).toMatchObject({
      kind: "token",
      method: "POST",
      path: "/authorize",
      status: 200,
      clientId: "sandbox-client",
      grantType: "client_credentials",
      tokenFingerprint: fingerprintOf(token)
    })
    await fetch(`${sandbox.baseUrl}/v1/consumers/7?page=1`, { headers: bearer(token) })
    const next = await getJson<{ events: Array<SandboxEvent>; lastSeq: number }>(
      `${sandbox.adminUrl}/events?since=${first.lastSeq}`
    )
    // admin reads (these GETs) are not events; the API call is, without its query string
    expect(next.events.map((e) => [e.kind, e.path, e.status])).toEqual([["api", "/api/v1/consumers/7", 200]])
    expect(next.lastSeq).toBeGreaterThan(first.lastSeq)
    const none = await getJson<{ events: Array<SandboxEvent>; lastSeq: number }>(
      `${sandbox.adminUrl}/events?since=${next.lastSeq}`
    )
    expect(none).toEqual({ events: [], lastSeq: next.lastSeq })
    expect((await fetch(`${sandbox.adminUrl}/events?since=-1`)).status).toBe(400)
  })

  it("refuses admin writes from a foreign origin", async () => {
    const sandbox = await start()
    const token = await clientCredentials(sandbox)
    const res = await fetch(`${sandbox.adminUrl}/revoke-all`, {
      method: "POST",
      headers: { origin: "https://evil.example" }
    })
    expect(res.status).toBe(403)
    expect((await fetch(`${sandbox.baseUrl}/v1/claims`, { headers: bearer(token) })).status).toBe(200)
    const own = await fetch(`${sandbox.adminUrl}/revoke-all`, {
      method: "POST",
      headers: { origin: sandbox.url }
    })
    expect(own.status).toBe(200)
  })
})

describe("events", () => {
  it("one per token, API and admin-write request; no token, refresh token, code or secret in any", async () => {
    const events: Array<SandboxEvent> = []
    const sandbox = await startSandbox({
      profile: "wealthcare",
      clients: [{ clientId: "app", clientSecret: "app-secret-value-123" }],
      onEvent: (e) => events.push(e)
    })
    open.push(sandbox)
    const creds = { client_id: "app", client_secret: "app-secret-value-123" }
    const grant = (await (
      await postForm(sandbox.tokenUrl, {
        grant_type: "password",
        username: "sandbox-user",
        password: "sandbox-password",
        ...creds
      })
    ).json()) as { access_token: string; refresh_token: string }
    const rotated = (await (
      await postForm(sandbox.tokenUrl, {
        grant_type: "refresh_token",
        refresh_token: grant.refresh_token,
        ...creds
      })
    ).json()) as { access_token: string; refresh_token: string }
    await postForm(sandbox.tokenUrl, { grant_type: "client_credentials", ...CLIENT })
    await fetch(`${sandbox.baseUrl}/v1/claims`, { headers: bearer(rotated.access_token) })
    await fetch(`${sandbox.adminUrl}/reset-stats`, { method: "POST" })
    await fetch(`${sandbox.adminUrl}/stats`)

    expect(events.map((e) => `${e.kind} ${e.status}`)).toEqual([
      "token 200",
      "token 200",
      "token 401",
      "api 200",
      "admin 204"
    ])
    expect(events.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5])
    expect(events[3]!.tokenFingerprint).toBe(fingerprintOf(rotated.access_token))
    expect(events[3]!.clientId).toBe("app")
    expect(events[2]!.error).toBe("invalid_client")
    const all = JSON.stringify(events)
    for (const secret of [
      grant.access_token,
      grant.refresh_token,
      rotated.access_token,
      rotated.refresh_token,
      "app-secret-value-123",
      "sandbox-password",
      "sandbox-secret"
    ]) {
      expect(all).not.toContain(secret)
    }
  })

  it("a throwing listener does not break the sandbox", async () => {
    const sandbox = await start({
      onEvent: () => {
        throw new Error("listener bug")
      }
    })
    expect(await clientCredentials(sandbox)).toMatch(/^eyJ/)
  })
})
