/**
 * Whose token it is: `GET /api/v1/me`, `subject` on events, `bySubject` in
 * the stats; revoking by user (`revokeUser`, `revokeRefreshTokens` and their
 * admin routes); the `invalidGrant` and sign-in latency faults.
 */
import { afterEach, describe, expect, it } from "vitest"
import { type Sandbox, type SandboxEvent, type SandboxOptions, startSandbox } from "../src/index.ts"
import {
  authorizeRequest,
  bearer,
  CLIENT,
  clientCredentials,
  fingerprintOf,
  pkce,
  postForm,
  requestIdOf,
  submitSignIn
} from "./support.ts"

const open: Array<Sandbox> = []
const start = async (options: Partial<SandboxOptions> = {}) => {
  const sandbox = await startSandbox({ profile: "wealthcare", users: [ALICE, BOB], ...options })
  open.push(sandbox)
  return sandbox
}
afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.close()))
})

const ALICE = { username: "alice", password: "alice-pw" }
const BOB = { username: "bob", password: "bob-pw" }

interface Tokens {
  access_token: string
  refresh_token: string
}

const passwordGrant = async (
  sandbox: Sandbox,
  user: { username: string; password: string }
): Promise<Tokens> => {
  const res = await postForm(sandbox.tokenUrl, {
    grant_type: "password",
    ...user,
    scope: "bensoft_api offline_access",
    ...CLIENT
  })
  expect(res.status).toBe(200)
  return (await res.json()) as Tokens
}

const refresh = (sandbox: Sandbox, token: string) =>
  postForm(sandbox.tokenUrl, { grant_type: "refresh_token", refresh_token: token, ...CLIENT })

const apiStatus = async (sandbox: Sandbox, token: string) =>
  (await fetch(`${sandbox.baseUrl}/v1/consumers/1`, { headers: bearer(token) })).status

const me = async (sandbox: Sandbox, token: string) => {
  const res = await fetch(`${sandbox.baseUrl}/v1/me`, { headers: bearer(token) })
  expect(res.status).toBe(200)
  return (await res.json()) as Record<string, unknown>
}

describe("whose token reached the API", () => {
  it("GET /v1/me: subject, client, scope, grant, fingerprint; subject on events; bySubject", async () => {
    const events: Array<SandboxEvent> = []
    const sandbox = await start({ onEvent: (e) => events.push(e) })
    const alice = await passwordGrant(sandbox, ALICE)
    const cc = await clientCredentials(sandbox)
    const body = await me(sandbox, alice.access_token)
    expect(body).toEqual({
      subject: "alice",
      clientId: "sandbox-client",
      scope: "bensoft_api offline_access",
      grantType: "password",
      tokenFingerprint: fingerprintOf(alice.access_token)
    })
    expect(JSON.stringify(body)).not.toContain(alice.access_token)
    expect(await me(sandbox, cc)).toMatchObject({
      subject: "sandbox-client",
      grantType: "client_credentials",
      scope: "bensoft_api mbi_api"
    })
    await fetch(`${sandbox.baseUrl}/v1/claims`, { headers: bearer(alice.access_token) })
    expect((await fetch(`${sandbox.baseUrl}/v1/me`)).status).toBe(401)
    expect((await fetch(`${sandbox.baseUrl}/v1/me`, { method: "POST", headers: bearer(cc) })).status).toBe(
      405
    )

    expect(events.filter((e) => e.kind === "token").map((e) => e.subject)).toEqual([
      "alice",
      "sandbox-client"
    ])
    expect(events.filter((e) => e.kind === "api").map((e) => [e.path, e.status, e.subject ?? null])).toEqual([
      ["/api/v1/me", 200, "alice"],
      ["/api/v1/me", 200, "sandbox-client"],
      ["/api/v1/claims", 200, "alice"],
      ["/api/v1/me", 401, null],
      ["/api/v1/me", 405, "sandbox-client"]
    ])
    expect(sandbox.stats().apiRequests.bySubject).toEqual({ alice: 2, "sandbox-client": 2 })
    expect(sandbox.stats().apiRequests.byRoute["GET /v1/me"]).toBe(3)
    sandbox.resetStats()
    expect(sandbox.stats().apiRequests.bySubject).toEqual({})
  })

  it("the wex profile has /v1/me too (subject: the client)", async () => {
    const sandbox = await startSandbox({ profile: "wex" })
    open.push(sandbox)
    expect(sandbox.issuer).toBeUndefined()
    expect(sandbox.jwksUrl).toBeUndefined()
    const token = await clientCredentials(sandbox)
    expect(await me(sandbox, token)).toEqual({
      subject: "sandbox-client",
      clientId: "sandbox-client",
      scope: null,
      grantType: "client_credentials",
      tokenFingerprint: fingerprintOf(token)
    })
    expect(sandbox.stats().apiRequests.bySubject).toEqual({ "sandbox-client": 1 })
  })
})

describe("revoking by user", () => {
  it("revokeUser: every access and refresh token and code of that user; others untouched", async () => {
    const sandbox = await start({ autoApprove: true })
    const a1 = await passwordGrant(sandbox, ALICE)
    const a2 = await passwordGrant(sandbox, ALICE)
    const b = await passwordGrant(sandbox, BOB)
    const cc = await clientCredentials(sandbox)
    const { verifier, challenge } = pkce()
    const auth = await authorizeRequest(sandbox, {
      response_type: "code",
      client_id: "sandbox-client",
      redirect_uri: "http://127.0.0.1/callback",
      code_challenge: challenge,
      code_challenge_method: "S256",
      login_hint: "alice"
    })
    const code = auth.location!.searchParams.get("code")!

    expect(sandbox.revokeUser("alice")).toBe(2)
    for (const token of [a1.access_token, a2.access_token]) expect(await apiStatus(sandbox, token)).toBe(401)
    expect((await refresh(sandbox, a1.refresh_token)).status).toBe(400)
    const exchanged = await postForm(sandbox.tokenUrl, {
      grant_type: "authorization_code",
      code,
      redirect_uri: "http://127.0.0.1/callback",
      code_verifier: verifier,
      ...CLIENT
    })
    expect(exchanged.status).toBe(400)
    expect(await apiStatus(sandbox, b.access_token)).toBe(200)
    expect((await refresh(sandbox, b.refresh_token)).status).toBe(200)
    expect(await apiStatus(sandbox, cc)).toBe(200)
    // alice can sign in again
    expect(await apiStatus(sandbox, (await passwordGrant(sandbox, ALICE)).access_token)).toBe(200)
    expect(sandbox.stats().tokensRevoked).toBe(2)
    expect(() => sandbox.revokeUser("mallory")).toThrow(/no user "mallory"/)
  })

  it("revokeRefreshTokens: refresh tokens of one user or all; access tokens stay valid until they expire", async () => {
    const sandbox = await start()
    const a = await passwordGrant(sandbox, ALICE)
    const b = await passwordGrant(sandbox, BOB)
    expect(sandbox.revokeRefreshTokens("alice")).toBe(1)
    expect(await apiStatus(sandbox, a.access_token)).toBe(200)
    const refused = await refresh(sandbox, a.refresh_token)
    expect(refused.status).toBe(400)
    expect(await refused.json()).toEqual({
      error: "invalid_grant",
      error_description: "The refresh token is revoked"
    })
    const rotated = (await (await refresh(sandbox, b.refresh_token)).json()) as Tokens
    expect(sandbox.revokeRefreshTokens()).toBe(1)
    expect((await refresh(sandbox, rotated.refresh_token)).status).toBe(400)
    expect(await apiStatus(sandbox, rotated.access_token)).toBe(200)
    expect(sandbox.stats().tokensRevoked).toBe(0)
    expect(() => sandbox.revokeRefreshTokens("mallory")).toThrow(TypeError)
  })

  it("POST /admin/revoke-user and /admin/revoke-refresh-tokens", async () => {
    const events: Array<SandboxEvent> = []
    const sandbox = await start({ onEvent: (e) => events.push(e) })
    const a = await passwordGrant(sandbox, ALICE)
    const b = await passwordGrant(sandbox, BOB)
    const post = (path: string, body?: string, type = "application/json") =>
      fetch(`${sandbox.adminUrl}/${path}`, {
        method: "POST",
        ...(body === undefined ? {} : { body, headers: { "content-type": type } })
      })

    const refreshOnly = await post("revoke-refresh-tokens", JSON.stringify({ username: "bob" }))
    expect(refreshOnly.status).toBe(200)
    expect(refreshOnly.headers.get("cache-control")).toBe("no-store")
    expect(await refreshOnly.json()).toEqual({ revoked: 1 })
    expect((await refresh(sandbox, b.refresh_token)).status).toBe(400)
    expect(await apiStatus(sandbox, b.access_token)).toBe(200)

    const user = await post("revoke-user", JSON.stringify({ username: "alice" }))
    expect(await user.json()).toEqual({ revoked: 1 })
    expect(await apiStatus(sandbox, a.access_token)).toBe(401)

    // no body: every user's refresh tokens
    const c = await passwordGrant(sandbox, ALICE)
    expect(await (await post("revoke-refresh-tokens")).json()).toEqual({ revoked: 1 })
    expect((await refresh(sandbox, c.refresh_token)).status).toBe(400)

    expect((await post("revoke-user", JSON.stringify({ username: "mallory" }))).status).toBe(404)
    expect((await post("revoke-user", JSON.stringify({}))).status).toBe(400)
    expect((await post("revoke-user")).status).toBe(415)
    expect((await post("revoke-user", "username=alice", "application/x-www-form-urlencoded")).status).toBe(
      415
    )
    expect((await post("revoke-user", "{nope")).status).toBe(400)
    expect((await post("revoke-refresh-tokens", JSON.stringify({ user: "bob" }))).status).toBe(400)
    expect((await fetch(`${sandbox.adminUrl}/revoke-user`)).status).toBe(405)
    const foreign = await fetch(`${sandbox.adminUrl}/revoke-user`, {
      method: "POST",
      headers: { origin: "https://evil.example", "content-type": "application/json" },
      body: JSON.stringify({ username: "bob" })
    })
    expect(foreign.status).toBe(403)
    expect(await apiStatus(sandbox, b.access_token)).toBe(200)
    const admin = events.filter((e) => e.kind === "admin")
    expect(admin.map((e) => e.status)).toEqual([200, 200, 200, 404, 400, 415, 415, 400, 400, 403])
  })
})

describe("faults: invalidGrant", () => {
  it("the next count refreshes answer invalid_grant without consuming the refresh token", async () => {
    const events: Array<SandboxEvent> = []
    const sandbox = await start({
      onEvent: (e) => events.push(e),
      faults: { token: { invalidGrant: { count: 2 } } }
    })
    const tokens = await passwordGrant(sandbox, ALICE)
    for (let i = 0; i < 2; i++) {
      const res = await refresh(sandbox, tokens.refresh_token)
      expect(res.status).toBe(400)
      expect(res.headers.get("cache-control")).toBe("no-store")
      const body = (await res.json()) as { error: string; error_description: string }
      expect(body.error).toBe("invalid_grant")
      expect(body.error_description.length).toBeGreaterThan(10)
    }
    // the same refresh token, not spent: no reuse detection, the grant lives on
    const ok = await refresh(sandbox, tokens.refresh_token)
    expect(ok.status).toBe(200)
    expect(await apiStatus(sandbox, tokens.access_token)).toBe(200)
    const refused = events.filter((e) => e.kind === "token" && e.status === 400)
    expect(refused.map((e) => [e.error, e.faults, e.clientId])).toEqual([
      ["invalid_grant", ["invalid_grant"], "sandbox-client"],
      ["invalid_grant", ["invalid_grant"], "sandbox-client"]
    ])
  })

  it("only after client authentication, only for the grants named, and by rate with the injected randomness", async () => {
    let draw = 0.9
    const sandbox = await start({ random: () => draw })
    sandbox.setFaults({ token: { invalidGrant: { count: 1, grants: ["password"] } } })
    // a refused client is refused as such and spends nothing of the count
    const badClient = await postForm(sandbox.tokenUrl, {
      grant_type: "password",
      ...ALICE,
      client_id: "sandbox-client",
      client_secret: "wrong"
    })
    expect(badClient.status).toBe(401)
    const tokens = await (async () => {
      const res = await postForm(sandbox.tokenUrl, { grant_type: "password", ...ALICE, ...CLIENT })
      expect(res.status).toBe(400)
      expect(((await res.json()) as { error: string }).error).toBe("invalid_grant")
      return passwordGrant(sandbox, ALICE)
    })()
    // refresh_token was not named: served
    expect((await refresh(sandbox, tokens.refresh_token)).status).toBe(200)

    sandbox.setFaults({ token: { invalidGrant: { rate: 0.5, grants: ["client_credentials"] } } })
    draw = 0.2
    expect((await postForm(sandbox.tokenUrl, { grant_type: "client_credentials", ...CLIENT })).status).toBe(
      400
    )
    draw = 0.7
    expect((await postForm(sandbox.tokenUrl, { grant_type: "client_credentials", ...CLIENT })).status).toBe(
      200
    )
  })

  it("is validated like every fault", async () => {
    const sandbox = await start()
    expect(() => sandbox.setFaults({ token: { invalidGrant: { count: 1.5 } } })).toThrow(
      /count must be an integer/
    )
    expect(() => sandbox.setFaults({ token: { invalidGrant: { rate: 2 } } })).toThrow(/rate must be a number/)
    expect(() => sandbox.setFaults({ token: { invalidGrant: { grants: ["implicit" as never] } } })).toThrow(
      /grants must be a non-empty array/
    )
    expect(() => sandbox.setFaults({ token: { invalidGrant: { cnt: 1 } as never } })).toThrow(/"cnt"/)
    expect(() => sandbox.setFaults({ api: { invalidGrant: { count: 1 } } as never })).toThrow(
      /"invalidGrant"/
    )
    expect(() => sandbox.setFaults({ authorize: { latencyMs: -1 } })).toThrow(/faults.authorize.latencyMs/)
    expect(() => sandbox.setFaults({ authorize: { errorRate: 1 } as never })).toThrow(/"errorRate"/)
    const put = await fetch(`${sandbox.adminUrl}/faults`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ token: { invalidGrant: { count: 1 } }, authorize: { latencyMs: 10 } })
    })
    expect(put.status).toBe(200)
    expect(await (await fetch(`${sandbox.adminUrl}/faults`)).json()).toEqual({
      token: { invalidGrant: { count: 1 } },
      authorize: { latencyMs: 10 }
    })
  })
})

describe("faults: authorize latency", () => {
  it("delays the answer to the sign-in POST (a slow way back to the app), and the auto-approved GET", async () => {
    const events: Array<SandboxEvent> = []
    const sandbox = await start({ onEvent: (e) => events.push(e), faults: { authorize: { latencyMs: 300 } } })
    const params = {
      response_type: "code",
      client_id: "sandbox-client",
      redirect_uri: "http://127.0.0.1/callback",
      code_challenge: pkce().challenge,
      code_challenge_method: "S256"
    }
    const page = await authorizeRequest(sandbox, params)
    expect(page.status).toBe(200)
    const t0 = performance.now()
    const signedIn = await submitSignIn(sandbox, { request: requestIdOf(page.text), ...ALICE })
    expect(performance.now() - t0).toBeGreaterThanOrEqual(280)
    expect(signedIn.status).toBe(302)
    const authorizeEvents = events.filter((e) => e.kind === "authorize")
    expect(authorizeEvents.map((e) => [e.method, e.faults ?? []])).toEqual([
      ["GET", []],
      ["POST", ["latency"]]
    ])

    const auto = await start({ autoApprove: true, faults: { authorize: { latencyMs: 300 } } })
    const t1 = performance.now()
    const approved = await authorizeRequest(auto, params)
    expect(performance.now() - t1).toBeGreaterThanOrEqual(280)
    expect(approved.status).toBe(302)
    // close() cuts a pending sign-in latency short
    auto.setFaults({ authorize: { latencyMs: 60_000 } })
    const slow = authorizeRequest(auto, params).catch((err: unknown) => err)
    await new Promise((resolve) => setTimeout(resolve, 50))
    await auto.close()
    await slow
  })
})
