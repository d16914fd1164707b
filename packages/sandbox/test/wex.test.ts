/**
 * The WEX profile against WEX's own documentation: the token request as
 * published, its documented errors, the per-client rate limit, the API with
 * every kind of token, pagination, duplicate POSTs and a streamed upload.
 */
import { createHash, randomBytes } from "node:crypto"
import { afterEach, describe, expect, it } from "vitest"
import { type Sandbox, startSandbox } from "../src/index.ts"
import { bearer, CLIENT, clientCredentials, FORM, postForm, sleep } from "./support.ts"

const open: Array<Sandbox> = []
const start = async (options: Partial<Parameters<typeof startSandbox>[0]> = {}) => {
  const sandbox = await startSandbox({ profile: "wex", ...options })
  open.push(sandbox)
  return sandbox
}
afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.close()))
})

const WEX_PROBLEM = (instance: string) =>
  `{\n"type": "https://platform.benefits.wexglobal.com/api/dksj",\n"title": "Unauthorized",\n"detail": "The request requires user authentication.",\n"instance": "${instance}",\n}\n`

describe("wex token endpoint", () => {
  it("answers the documented request (form post, client_secret_post) with a bearer token", async () => {
    const sandbox = await start()
    expect(sandbox.tokenUrl).toBe(`${sandbox.url}/authorize`)
    const res = await fetch(sandbox.tokenUrl, {
      method: "POST",
      headers: FORM,
      body: "grant_type=client_credentials&client_id=sandbox-client&client_secret=sandbox-secret"
    })
    expect(res.status).toBe(200)
    expect(res.headers.get("cache-control")).toBe("no-store")
    expect(res.headers.get("pragma")).toBe("no-cache")
    const body = (await res.json()) as Record<string, unknown>
    expect(Object.keys(body).sort()).toEqual(["access_token", "expires_in", "token_type"])
    expect(body.token_type).toBe("Bearer")
    expect(body.expires_in).toBe(600)
    expect(body.access_token).toMatch(/^eyJ[\w-]+\.[\w-]+\.[\w-]+$/)
    expect(sandbox.stats().tokenRequests).toMatchObject({
      total: 1,
      byClient: { "sandbox-client": 1 },
      byGrant: { client_credentials: 1 },
      byStatus: { "200": 1 }
    })
    expect(sandbox.stats().tokensIssued).toBe(1)
    expect(sandbox.stats().activeTokens).toBe(1)
  })

  it("accepts HTTP Basic with form-encoded id and secret (RFC 6749 section 2.3.1)", async () => {
    const clientId = "partner app:1"
    const clientSecret = "s e+c%r:et/="
    const sandbox = await start({ clients: [{ clientId, clientSecret }] })
    const formEncode = (s: string) => new URLSearchParams({ s }).toString().slice(2)
    const basic = Buffer.from(`${formEncode(clientId)}:${formEncode(clientSecret)}`).toString("base64")
    const ok = await postForm(
      sandbox.tokenUrl,
      { grant_type: "client_credentials" },
      { authorization: `Basic ${basic}` }
    )
    expect(ok.status).toBe(200)

    // Without the form-encoding step, "+" decodes to a space and the secret no longer matches.
    const raw = Buffer.from(`${clientId}:${clientSecret}`).toString("base64")
    const refused = await postForm(
      sandbox.tokenUrl,
      { grant_type: "client_credentials" },
      { authorization: `Basic ${raw}` }
    )
    expect(refused.status).toBe(401)
    expect(refused.headers.get("www-authenticate")).toMatch(/^Basic /)
    expect(await refused.json()).toEqual({
      error: "invalid_client",
      error_description: "Client authentication failed"
    })
  })

  it("answers a wrong secret with WEX's exact invalid_client body", async () => {
    const sandbox = await start()
    for (const params of [
      { grant_type: "client_credentials", client_id: "sandbox-client", client_secret: "wrong" },
      { grant_type: "client_credentials", client_id: "nobody", client_secret: "sandbox-secret" },
      { grant_type: "client_credentials", client_id: "sandbox-client" }
    ]) {
      const res = await postForm(sandbox.tokenUrl, params)
      expect(res.status).toBe(401)
      expect(res.headers.get("content-type")).toMatch(/^application\/json/)
      expect(await res.text()).toBe(
        '{"error":"invalid_client","error_description":"Client authentication failed"}'
      )
    }
    expect(sandbox.stats().tokensIssued).toBe(0)
  })

  it("answers any other grant with WEX's exact unsupported_grant_type body", async () => {
    const sandbox = await start()
    for (const grant of ["password", "refresh_token", "authorization_code", "urn:example:custom"]) {
      const res = await postForm(sandbox.tokenUrl, { grant_type: grant, ...CLIENT })
      expect(res.status).toBe(400)
      expect(await res.text()).toBe(
        '{"error":"unsupported_grant_type","error_description":"Grant type not supported"}'
      )
    }
  })

  it("refuses the 101st token request of a client within a minute with 429 and Retry-After", async () => {
    const sandbox = await start()
    const statuses: Array<number> = []
    for (let i = 0; i < 100; i++) {
      statuses.push(
        (await postForm(sandbox.tokenUrl, { grant_type: "client_credentials", ...CLIENT })).status
      )
    }
    expect(statuses.every((s) => s === 200)).toBe(true)
    const refused = await postForm(sandbox.tokenUrl, { grant_type: "client_credentials", ...CLIENT })
    expect(refused.status).toBe(429)
    const retryAfter = Number(refused.headers.get("retry-after"))
    expect(Number.isInteger(retryAfter)).toBe(true)
    expect(retryAfter).toBeGreaterThanOrEqual(50)
    expect(retryAfter).toBeLessThanOrEqual(60)
    const body = (await refused.json()) as { error: string; error_description: string }
    expect(body.error).toBe("too_many_requests")
    expect(body.error_description).toContain(`${retryAfter} seconds`)
    expect(sandbox.stats().tokenRequests.byStatus).toEqual({ "200": 100, "429": 1 })
    // a failed authentication does not count against (or get refused by) the limit
    const wrong = await postForm(sandbox.tokenUrl, {
      grant_type: "client_credentials",
      client_id: "sandbox-client",
      client_secret: "x"
    })
    expect(wrong.status).toBe(401)
  })

  it("frees the window when its oldest request leaves it (limit per client)", async () => {
    const sandbox = await start({
      tokenRateLimit: { limit: 2, windowSeconds: 1 },
      clients: [
        { clientId: "a", clientSecret: "a-secret" },
        { clientId: "b", clientSecret: "b-secret" }
      ]
    })
    const ask = (id: string) =>
      postForm(sandbox.tokenUrl, {
        grant_type: "client_credentials",
        client_id: id,
        client_secret: `${id}-secret`
      })
    expect((await ask("a")).status).toBe(200)
    expect((await ask("a")).status).toBe(200)
    const refused = await ask("a")
    expect(refused.status).toBe(429)
    expect(refused.headers.get("retry-after")).toBe("1")
    expect((await ask("b")).status).toBe(200)
    await sleep(1050)
    expect((await ask("a")).status).toBe(200)
  })

  it("takes its rate limit from the options, or none at all", async () => {
    const sandbox = await start({ tokenRateLimit: { limit: 1, windowSeconds: 60 } })
    expect((await postForm(sandbox.tokenUrl, { grant_type: "client_credentials", ...CLIENT })).status).toBe(
      200
    )
    expect((await postForm(sandbox.tokenUrl, { grant_type: "client_credentials", ...CLIENT })).status).toBe(
      429
    )
    const unlimited = await start({ tokenRateLimit: false })
    for (let i = 0; i < 120; i++) await clientCredentials(unlimited)
    expect(unlimited.stats().tokenRequests.byStatus).toEqual({ "200": 120 })
  })
})

describe("wex API", () => {
  it("serves a consumer to a valid token", async () => {
    const sandbox = await start()
    const token = await clientCredentials(sandbox)
    const res = await fetch(`${sandbox.baseUrl}/v1/consumers/86765C6A-C4DB-48AE-A6B8-388C31800D22`, {
      headers: bearer(token)
    })
    expect(res.status).toBe(200)
    const body = (await res.json()) as Record<string, any>
    expect(body.consumerId).toBe("86765C6A-C4DB-48AE-A6B8-388C31800D22")
    expect(typeof body.firstName).toBe("string")
    expect(body.plan).toMatchObject({ type: expect.any(String), planYear: expect.any(Number) })
    expect(body.balances.length).toBeGreaterThan(0)
    expect(body.balances[0]).toMatchObject({
      accountType: "HSA",
      currency: "USD",
      available: expect.any(Number)
    })
    // deterministic: the same id gives the same consumer
    const again = (await (
      await fetch(`${sandbox.baseUrl}/v1/consumers/86765C6A-C4DB-48AE-A6B8-388C31800D22`, {
        headers: bearer(token)
      })
    ).json()) as Record<string, any>
    expect(again.firstName).toBe(body.firstName)
    expect(again.balances).toEqual(body.balances)
  })

  it("answers an expired token with WEX's problem+json, trailing comma included", async () => {
    const sandbox = await start({ tokenTtl: 2 })
    const token = await clientCredentials(sandbox)
    const before = await fetch(`${sandbox.baseUrl}/v1/consumers/12345`, { headers: bearer(token) })
    expect(before.status).toBe(200)
    await sleep(2100)
    const res = await fetch(`${sandbox.baseUrl}/v1/consumers/12345`, { headers: bearer(token) })
    expect(res.status).toBe(401)
    expect(res.headers.get("content-type")).toBe("application/problem+json")
    expect(res.headers.get("www-authenticate")).toBe('Bearer error="invalid_token"')
    const text = await res.text()
    expect(text).toBe(WEX_PROBLEM("/api/v1/consumers/12345"))
    expect(() => JSON.parse(text)).toThrow()
    expect(sandbox.stats().activeTokens).toBe(0)
  })

  it("answers an expired token with valid JSON when wexMalformedProblem is false", async () => {
    const sandbox = await start({ wexMalformedProblem: false })
    const token = await clientCredentials(sandbox)
    // expired by the server's clock: ten minutes and a second later
    sandbox.setFaults({ clockOffsetSeconds: 601 })
    const res = await fetch(`${sandbox.baseUrl}/v1/claims`, { headers: bearer(token) })
    expect(res.status).toBe(401)
    expect(await res.json()).toEqual({
      type: "https://platform.benefits.wexglobal.com/api/dksj",
      title: "Unauthorized",
      detail: "The request requires user authentication.",
      instance: "/api/v1/claims"
    })
  })

  it("answers a revoked token with the same problem+json", async () => {
    const sandbox = await start()
    const token = await clientCredentials(sandbox)
    sandbox.revokeAll()
    const res = await fetch(`${sandbox.baseUrl}/v1/consumers/12345/accounts`, { headers: bearer(token) })
    expect(res.status).toBe(401)
    expect(res.headers.get("www-authenticate")).toBe('Bearer error="invalid_token"')
    expect(await res.text()).toBe(WEX_PROBLEM("/api/v1/consumers/12345/accounts"))
    expect(sandbox.stats()).toMatchObject({ tokensIssued: 1, tokensRevoked: 1, activeTokens: 0 })
    // a token issued after the revocation works
    const fresh = await clientCredentials(sandbox)
    expect((await fetch(`${sandbox.baseUrl}/v1/consumers/12345`, { headers: bearer(fresh) })).status).toBe(
      200
    )
  })

  it("answers a missing, empty or non-bearer Authorization with the documented body", async () => {
    const sandbox = await start()
    const expected =
      '{"error":"unauthorized","error_description":"Full authentication is required to access this resource"}'
    for (const headers of [
      {},
      { authorization: "Bearer " },
      { authorization: "Basic c2FuZGJveDpzZWNyZXQ=" }
    ]) {
      const res = await fetch(`${sandbox.baseUrl}/v1/consumers/12345`, { headers })
      expect(res.status).toBe(401)
      expect(await res.text()).toBe(expected)
    }
  })

  it("answers an unknown token with the documented body", async () => {
    const sandbox = await start()
    const res = await fetch(`${sandbox.baseUrl}/v1/consumers/12345`, {
      headers: bearer("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl")
    })
    expect(res.status).toBe(401)
    expect(res.headers.get("www-authenticate")).toBe('Bearer error="invalid_token"')
    expect(await res.text()).toBe('{"error":"Unauthorized","error_description":"Unauthorized"}')
    expect(sandbox.stats().apiRequests).toMatchObject({ total: 1, byStatus: { "401": 1 } })
  })

  it("paginates accounts with page, pageSize, total, items and a Link rel=next", async () => {
    const sandbox = await start()
    const token = await clientCredentials(sandbox)
    let next: string | undefined = `${sandbox.baseUrl}/v1/consumers/12345/accounts?page=1&pageSize=4`
    const seen: Array<string> = []
    let total = -1
    let pages = 0
    while (next !== undefined) {
      const res: Response = await fetch(next, { headers: bearer(token) })
      expect(res.status).toBe(200)
      const body = (await res.json()) as {
        page: number
        pageSize: number
        total: number
        items: Array<{ accountId: string }>
      }
      pages++
      expect(body.page).toBe(pages)
      expect(body.pageSize).toBe(4)
      total = body.total
      seen.push(...body.items.map((i) => i.accountId))
      const link: string = res.headers.get("link") ?? ""
      expect(link).toContain('rel="first"')
      next = /<([^>]+)>; rel="next"/.exec(link)?.[1]
    }
    expect(total).toBeGreaterThanOrEqual(5)
    expect(seen).toHaveLength(total)
    expect(new Set(seen).size).toBe(total)
    expect(pages).toBe(Math.ceil(total / 4))

    for (const query of ["page=0", "pageSize=101", "pageSize=abc", "page=1&page=2"]) {
      const res = await fetch(`${sandbox.baseUrl}/v1/consumers/12345/accounts?${query}`, {
        headers: bearer(token)
      })
      expect(res.status).toBe(400)
      expect(res.headers.get("content-type")).toMatch(/^application\/problem\+json/)
    }
  })

  it("creates claims, lists them, and counts a duplicated submission", async () => {
    const sandbox = await start()
    const token = await clientCredentials(sandbox)
    const claim = { consumerId: "12345", amount: 42.5, accountType: "FSA", serviceDate: "2026-01-15" }
    const post = (body: unknown, headers: Record<string, string> = {}) =>
      fetch(`${sandbox.baseUrl}/v1/claims`, {
        method: "POST",
        headers: { ...bearer(token), "content-type": "application/json", ...headers },
        body: JSON.stringify(body)
      })
    const first = await post(claim)
    expect(first.status).toBe(201)
    const created = (await first.json()) as Record<string, unknown>
    expect(created).toMatchObject({ ...claim, status: "Submitted" })
    expect(created.claimId).toMatch(/^CLM-\d{6}$/)
    expect(first.headers.get("location")).toBe(`/api/v1/claims/${created.claimId}`)
    expect(sandbox.stats().claims).toEqual({ created: 1, duplicates: 0 })

    // the same claim again, keys in another order: a second claim, and a duplicate
    const second = await post({
      serviceDate: "2026-01-15",
      accountType: "FSA",
      amount: 42.5,
      consumerId: "12345"
    })
    expect(second.status).toBe(201)
    expect(((await second.json()) as { claimId: string }).claimId).not.toBe(created.claimId)
    expect(sandbox.stats().claims).toEqual({ created: 2, duplicates: 1 })
    expect(sandbox.stats().apiRequests.byRoute["POST /v1/claims"]).toBe(2)

    // Idempotency-Key: the same request again is answered from the first, not created twice
    const keyed = await post({ ...claim, amount: 7 }, { "idempotency-key": "k-1" })
    const replay = await post({ ...claim, amount: 7 }, { "idempotency-key": "k-1" })
    expect(replay.status).toBe(201)
    expect(((await replay.json()) as { claimId: string }).claimId).toBe(
      ((await keyed.json()) as { claimId: string }).claimId
    )
    expect(sandbox.stats().claims).toEqual({ created: 3, duplicates: 1 })
    expect((await post({ ...claim, amount: 8 }, { "idempotency-key": "k-1" })).status).toBe(422)

    const list = (await (
      await fetch(`${sandbox.baseUrl}/v1/claims?pageSize=100`, { headers: bearer(token) })
    ).json()) as {
      total: number
      items: Array<{ claimId: string }>
    }
    expect(list.total).toBe(12 + 3)
    expect(list.items.map((c) => c.claimId)).toContain(created.claimId)
    const one = await fetch(`${sandbox.baseUrl}/v1/claims/${created.claimId}`, { headers: bearer(token) })
    expect(((await one.json()) as { amount: number }).amount).toBe(42.5)

    expect((await post("not an object")).status).toBe(400)
    const text = await fetch(`${sandbox.baseUrl}/v1/claims`, {
      method: "POST",
      headers: { ...bearer(token), "content-type": "text/plain" },
      body: "{}"
    })
    expect(text.status).toBe(415)
  })

  it("streams a 10 MiB document upload and answers its size and SHA-256", async () => {
    const sandbox = await start()
    const token = await clientCredentials(sandbox)
    const total = 10 * 1024 * 1024
    const chunkSize = 256 * 1024
    const hash = createHash("sha256")
    let sent = 0
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent >= total) return controller.close()
        const chunk = randomBytes(Math.min(chunkSize, total - sent))
        hash.update(chunk)
        sent += chunk.length
        controller.enqueue(chunk)
      }
    })
    const res = await fetch(`${sandbox.baseUrl}/v1/documents`, {
      method: "POST",
      headers: { ...bearer(token), "content-type": "application/pdf" },
      body,
      duplex: "half"
    } as RequestInit)
    expect(res.status).toBe(201)
    const answer = (await res.json()) as { bytes: number; sha256: string; contentType: string }
    expect(answer.bytes).toBe(total)
    expect(answer.sha256).toBe(hash.digest("hex"))
    expect(answer.contentType).toBe("application/pdf")
  })

  it("answers unknown paths and wrong methods with problem+json", async () => {
    const sandbox = await start()
    const token = await clientCredentials(sandbox)
    const missing = await fetch(`${sandbox.baseUrl}/v1/nothing-here`, { headers: bearer(token) })
    expect(missing.status).toBe(404)
    expect(missing.headers.get("content-type")).toMatch(/^application\/problem\+json/)
    const wrong = await fetch(`${sandbox.baseUrl}/v1/consumers/12345`, {
      method: "DELETE",
      headers: bearer(token)
    })
    expect(wrong.status).toBe(405)
    expect(wrong.headers.get("allow")).toBe("GET")
    const badId = await fetch(`${sandbox.baseUrl}/v1/consumers/%3Cscript%3E`, { headers: bearer(token) })
    expect(badId.status).toBe(400)
  })
})
