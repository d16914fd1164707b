/**
 * WealthCare's revocation endpoint (RFC 7009): an access token alone, a
 * refresh token with its whole grant, another client's token untouched, an
 * unknown token answered 200, client authentication as at the token endpoint,
 * `token_type_hint`; with the stats and events it reports.
 */
import { afterEach, describe, expect, it } from "vitest"
import { type Sandbox, type SandboxEvent, type SandboxOptions, startSandbox } from "../src/index.ts"
import { bearer, CLIENT, fingerprintOf, postForm } from "./support.ts"

const open: Array<Sandbox> = []
const start = async (options: Partial<SandboxOptions> = {}) => {
  const sandbox = await startSandbox({
    profile: "wealthcare",
    clients: [
      { clientId: "sandbox-client", clientSecret: "sandbox-secret" },
      { clientId: "other", clientSecret: "other-secret" }
    ],
    ...options
  })
  open.push(sandbox)
  return sandbox
}
afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.close()))
})

const OTHER = { client_id: "other", client_secret: "other-secret" }

interface Tokens {
  access_token: string
  refresh_token: string
}

const password = async (sandbox: Sandbox, creds: Record<string, string> = CLIENT): Promise<Tokens> => {
  const res = await postForm(sandbox.tokenUrl, {
    grant_type: "password",
    username: "sandbox-user",
    password: "sandbox-password",
    scope: "bensoft_api offline_access",
    ...creds
  })
  expect(res.status).toBe(200)
  return (await res.json()) as Tokens
}

const refresh = (sandbox: Sandbox, token: string) =>
  postForm(sandbox.tokenUrl, { grant_type: "refresh_token", refresh_token: token, ...CLIENT })

const revoke = (sandbox: Sandbox, params: Record<string, string>, headers: Record<string, string> = {}) =>
  postForm(sandbox.revocationUrl!, params, headers)

const apiStatus = async (sandbox: Sandbox, token: string) =>
  (await fetch(`${sandbox.baseUrl}/v1/claims`, { headers: bearer(token) })).status

const expectRevoked200 = async (res: Response) => {
  expect(res.status).toBe(200)
  expect(res.headers.get("cache-control")).toBe("no-store")
  expect(await res.text()).toBe("")
}

describe("revocation (RFC 7009)", () => {
  it("an access token: that token only; the grant's refresh token still works", async () => {
    const events: Array<SandboxEvent> = []
    const sandbox = await start({ onEvent: (e) => events.push(e) })
    expect(sandbox.revocationUrl).toBe(`${sandbox.url}/connect/revocation`)
    const tokens = await password(sandbox)
    await expectRevoked200(await revoke(sandbox, { token: tokens.access_token, ...CLIENT }))
    expect(await apiStatus(sandbox, tokens.access_token)).toBe(401)
    const refreshed = await refresh(sandbox, tokens.refresh_token)
    expect(refreshed.status).toBe(200)
    expect(await apiStatus(sandbox, ((await refreshed.json()) as Tokens).access_token)).toBe(200)

    const event = events.find((e) => e.kind === "revocation")!
    expect(event).toMatchObject({
      kind: "revocation",
      method: "POST",
      path: "/connect/revocation",
      status: 200,
      clientId: "sandbox-client",
      tokenKind: "access_token",
      tokenFingerprint: fingerprintOf(tokens.access_token),
      subject: "sandbox-user"
    })
    expect(event.error).toBeUndefined()
    expect(sandbox.stats().revocations).toEqual({
      total: 1,
      revoked: 1,
      byClient: { "sandbox-client": 1 },
      bySubject: { "sandbox-user": 1 }
    })
    expect(sandbox.stats().tokensRevoked).toBe(1)
    expect(JSON.stringify(events)).not.toContain(tokens.access_token)
  })

  it("a refresh token: the whole grant, access tokens too (RFC 7009 2.1); another grant untouched", async () => {
    const sandbox = await start()
    const first = await password(sandbox)
    const rotated = (await (await refresh(sandbox, first.refresh_token)).json()) as Tokens
    const unrelated = await password(sandbox)
    await expectRevoked200(
      await revoke(sandbox, { token: rotated.refresh_token, token_type_hint: "refresh_token", ...CLIENT })
    )
    expect(await apiStatus(sandbox, rotated.access_token)).toBe(401)
    expect(await apiStatus(sandbox, first.access_token)).toBe(401)
    const again = await refresh(sandbox, rotated.refresh_token)
    expect(again.status).toBe(400)
    expect(((await again.json()) as { error: string }).error).toBe("invalid_grant")
    expect(await apiStatus(sandbox, unrelated.access_token)).toBe(200)
    expect((await refresh(sandbox, unrelated.refresh_token)).status).toBe(200)
    expect(sandbox.stats().revocations).toMatchObject({ total: 1, revoked: 1 })
  })

  it("a token of another client is not revoked, and the answer is the same 200 (RFC 7009 2.1, 2.2)", async () => {
    const events: Array<SandboxEvent> = []
    const sandbox = await start({ onEvent: (e) => events.push(e) })
    const theirs = await password(sandbox, OTHER)
    await expectRevoked200(await revoke(sandbox, { token: theirs.access_token, ...CLIENT }))
    await expectRevoked200(await revoke(sandbox, { token: theirs.refresh_token, ...CLIENT }))
    expect(await apiStatus(sandbox, theirs.access_token)).toBe(200)
    expect(events.filter((e) => e.kind === "revocation").map((e) => [e.error, e.tokenKind])).toEqual([
      ["client_mismatch", "access_token"],
      ["client_mismatch", "refresh_token"]
    ])
    expect(sandbox.stats().revocations).toEqual({
      total: 2,
      revoked: 0,
      byClient: { "sandbox-client": 2 },
      bySubject: {}
    })
    // its own client can
    await expectRevoked200(await revoke(sandbox, { token: theirs.refresh_token, ...OTHER }))
    expect(await apiStatus(sandbox, theirs.access_token)).toBe(401)
  })

  it("an unknown token is 200 too; a missing token is 400 invalid_request; a bad client 401 invalid_client", async () => {
    const events: Array<SandboxEvent> = []
    const sandbox = await start({ onEvent: (e) => events.push(e) })
    await expectRevoked200(await revoke(sandbox, { token: "never-issued", ...CLIENT }))
    const unknown = events.at(-1)!
    expect(unknown.error).toBe("unknown_token")
    expect(unknown.tokenFingerprint).toBeUndefined()
    expect(unknown.tokenKind).toBeUndefined()

    const missing = await revoke(sandbox, CLIENT)
    expect(missing.status).toBe(400)
    expect(missing.headers.get("cache-control")).toBe("no-store")
    expect(((await missing.json()) as { error: string }).error).toBe("invalid_request")

    const tokens = await password(sandbox)
    const wrong = await revoke(sandbox, {
      token: tokens.access_token,
      client_id: "sandbox-client",
      client_secret: "x"
    })
    expect(wrong.status).toBe(401)
    expect(await wrong.json()).toEqual({
      error: "invalid_client",
      error_description: "Client authentication failed."
    })
    const none = await revoke(sandbox, { token: tokens.access_token })
    expect(none.status).toBe(401)
    const badBasic = await revoke(
      sandbox,
      { token: tokens.access_token },
      { authorization: `Basic ${Buffer.from("sandbox-client:nope").toString("base64")}` }
    )
    expect(badBasic.status).toBe(401)
    expect(badBasic.headers.get("www-authenticate")).toMatch(/^Basic /)
    const twoMethods = await revoke(
      sandbox,
      { token: tokens.access_token, ...CLIENT },
      { authorization: `Basic ${Buffer.from("sandbox-client:sandbox-secret").toString("base64")}` }
    )
    expect(twoMethods.status).toBe(400)
    expect(await apiStatus(sandbox, tokens.access_token)).toBe(200)

    // HTTP Basic, as at the token endpoint
    await expectRevoked200(
      await revoke(
        sandbox,
        { token: tokens.access_token },
        { authorization: `Basic ${Buffer.from("sandbox-client:sandbox-secret").toString("base64")}` }
      )
    )
    expect(await apiStatus(sandbox, tokens.access_token)).toBe(401)
    expect(sandbox.stats().revocations).toMatchObject({ total: 7, revoked: 1 })
    expect(sandbox.stats().revocations.byClient).toEqual({ "sandbox-client": 6, "(none)": 1 })
  })

  it("token_type_hint: a wrong hint still finds the token; an unknown hint is ignored", async () => {
    const sandbox = await start()
    const a = await password(sandbox)
    await expectRevoked200(
      await revoke(sandbox, { token: a.refresh_token, token_type_hint: "access_token", ...CLIENT })
    )
    expect(await apiStatus(sandbox, a.access_token)).toBe(401)
    const b = await password(sandbox)
    await expectRevoked200(
      await revoke(sandbox, { token: b.access_token, token_type_hint: "refresh_token", ...CLIENT })
    )
    expect(await apiStatus(sandbox, b.access_token)).toBe(401)
    const c = await password(sandbox)
    await expectRevoked200(
      await revoke(sandbox, { token: c.access_token, token_type_hint: "id_token", ...CLIENT })
    )
    expect(await apiStatus(sandbox, c.access_token)).toBe(401)
    expect(sandbox.stats().revocations.revoked).toBe(3)
  })

  it("accepts POST only, a form body only, and resetStats clears its counters", async () => {
    const sandbox = await start()
    const get = await fetch(`${sandbox.revocationUrl}?token=x`)
    expect(get.status).toBe(405)
    expect(get.headers.get("allow")).toBe("POST")
    const json = await fetch(sandbox.revocationUrl!, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ token: "x", ...CLIENT })
    })
    expect(json.status).toBe(400)
    const dup = await postForm(
      sandbox.revocationUrl!,
      "token=a&token=b&client_id=sandbox-client&client_secret=sandbox-secret"
    )
    expect(dup.status).toBe(400)
    expect(((await dup.json()) as { error_description: string }).error_description).toMatch(/more than once/)
    expect(sandbox.stats().revocations.total).toBe(3)
    sandbox.resetStats()
    expect(sandbox.stats().revocations).toEqual({ total: 0, revoked: 0, byClient: {}, bySubject: {} })
    // the wex profile has no revocation endpoint
    const wex = await startSandbox({ profile: "wex" })
    open.push(wex)
    expect(wex.revocationUrl).toBeUndefined()
    expect((await postForm(`${wex.url}/connect/revocation`, { token: "x", ...CLIENT })).status).toBe(404)
  })
})
