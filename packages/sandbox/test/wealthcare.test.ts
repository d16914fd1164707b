/**
 * The WealthCare profile: authorization code + PKCE end to end (auto-approved
 * here; the sign-in page has its own tests), single-use codes, refresh-token
 * rotation and reuse detection, the password grant, scopes, and the
 * documented errors.
 */
import { afterEach, describe, expect, it } from "vitest"
import { type Sandbox, type SandboxOptions, startSandbox } from "../src/index.ts"
import { bearer, CLIENT, pkce, postForm } from "./support.ts"

const open: Array<Sandbox> = []
const start = async (options: Partial<SandboxOptions> = {}) => {
  const sandbox = await startSandbox({ profile: "wealthcare", ...options })
  open.push(sandbox)
  return sandbox
}
afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.close()))
})

// Loopback redirect URIs match whatever their port (RFC 8252 section 7.3).
const REDIRECT = "http://127.0.0.1:53682/callback"

interface TokenResponse {
  access_token: string
  token_type: string
  expires_in: number
  scope?: string
  refresh_token?: string
}

const authorize = async (
  sandbox: Sandbox,
  params: Record<string, string>
): Promise<{ status: number; location: URL | undefined; text: string }> => {
  const url = new URL(sandbox.authorizeUrl!)
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v)
  const res = await fetch(url, { redirect: "manual" })
  const location = res.headers.get("location")
  return {
    status: res.status,
    location: location === null ? undefined : new URL(location),
    text: await res.text()
  }
}

const codeFor = async (sandbox: Sandbox, challenge: string, extra: Record<string, string> = {}) => {
  const { status, location } = await authorize(sandbox, {
    response_type: "code",
    client_id: "sandbox-client",
    redirect_uri: REDIRECT,
    scope: "bensoft_api offline_access",
    state: "xyz-state",
    code_challenge: challenge,
    code_challenge_method: "S256",
    ...extra
  })
  expect(status).toBe(302)
  return location!.searchParams.get("code")!
}

const exchange = (sandbox: Sandbox, code: string, verifier: string, extra: Record<string, string> = {}) =>
  postForm(sandbox.tokenUrl, {
    grant_type: "authorization_code",
    code,
    redirect_uri: REDIRECT,
    code_verifier: verifier,
    ...CLIENT,
    ...extra
  })

const refresh = (sandbox: Sandbox, refreshToken: string) =>
  postForm(sandbox.tokenUrl, { grant_type: "refresh_token", refresh_token: refreshToken, ...CLIENT })

const password = (sandbox: Sandbox, extra: Record<string, string> = {}) =>
  postForm(sandbox.tokenUrl, {
    grant_type: "password",
    username: "sandbox-user",
    password: "sandbox-password",
    ...CLIENT,
    ...extra
  })

const apiStatus = async (sandbox: Sandbox, token: string) =>
  (await fetch(`${sandbox.baseUrl}/v1/consumers/12345`, { headers: bearer(token) })).status

const expectError = async (res: Response, status: number, error: string) => {
  expect(res.status).toBe(status)
  expect(res.headers.get("cache-control")).toBe("no-store")
  const body = (await res.json()) as { error: string; error_description: string }
  expect(body.error).toBe(error)
  expect(typeof body.error_description).toBe("string")
  return body
}

describe("wealthcare authorization code + PKCE", () => {
  it("runs end to end: authorize redirect, code, token, API", async () => {
    const sandbox = await start({ autoApprove: true })
    expect(sandbox.tokenUrl).toBe(`${sandbox.url}/connect/token`)
    expect(sandbox.authorizeUrl).toBe(`${sandbox.url}/connect/authorize`)
    const { verifier, challenge } = pkce()
    const { status, location } = await authorize(sandbox, {
      response_type: "code",
      client_id: "sandbox-client",
      redirect_uri: REDIRECT,
      scope: "bensoft_api mbi_api offline_access",
      state: "af0ifjsldkj",
      code_challenge: challenge,
      code_challenge_method: "S256"
    })
    expect(status).toBe(302)
    expect(`${location!.origin}${location!.pathname}`).toBe("http://127.0.0.1:53682/callback")
    expect(location!.searchParams.get("state")).toBe("af0ifjsldkj")
    expect(location!.searchParams.get("iss")).toBe(sandbox.url)
    const code = location!.searchParams.get("code")!
    expect(code.length).toBeGreaterThan(20)

    const res = await exchange(sandbox, code, verifier)
    expect(res.status).toBe(200)
    expect(res.headers.get("cache-control")).toBe("no-store")
    expect(res.headers.get("pragma")).toBe("no-cache")
    const token = (await res.json()) as TokenResponse
    expect(token.token_type).toBe("Bearer")
    expect(token.expires_in).toBe(3600)
    expect(token.scope).toBe("bensoft_api mbi_api offline_access")
    expect(typeof token.refresh_token).toBe("string")
    expect(await apiStatus(sandbox, token.access_token)).toBe(200)
  })

  it("refuses a wrong code_verifier with invalid_grant, and the code is spent", async () => {
    const sandbox = await start({ autoApprove: true })
    const { verifier, challenge } = pkce()
    const code = await codeFor(sandbox, challenge)
    const body = await expectError(await exchange(sandbox, code, pkce().verifier), 400, "invalid_grant")
    expect(body.error_description).toMatch(/PKCE/)
    await expectError(await exchange(sandbox, code, verifier), 400, "invalid_grant")
    await expectError(
      await exchange(sandbox, await codeFor(sandbox, challenge), "too-short"),
      400,
      "invalid_grant"
    )
  })

  it("refuses a reused code with invalid_grant and revokes what the first use issued", async () => {
    const sandbox = await start({ autoApprove: true })
    const { verifier, challenge } = pkce()
    const code = await codeFor(sandbox, challenge)
    const first = (await (await exchange(sandbox, code, verifier)).json()) as TokenResponse
    expect(await apiStatus(sandbox, first.access_token)).toBe(200)
    await expectError(await exchange(sandbox, code, verifier), 400, "invalid_grant")
    expect(await apiStatus(sandbox, first.access_token)).toBe(401)
    await expectError(await refresh(sandbox, first.refresh_token!), 400, "invalid_grant")
  })

  it("binds the code to its client and its redirect_uri, and lets it live 60 s by the server's clock", async () => {
    const sandbox = await start({
      autoApprove: true,
      clients: [
        { clientId: "sandbox-client", clientSecret: "sandbox-secret" },
        { clientId: "other", clientSecret: "other-secret" }
      ]
    })
    const { verifier, challenge } = pkce()
    const other = { client_id: "other", client_secret: "other-secret" }
    await expectError(
      await exchange(sandbox, await codeFor(sandbox, challenge), verifier, other),
      400,
      "invalid_grant"
    )
    await expectError(
      await exchange(sandbox, await codeFor(sandbox, challenge), verifier, {
        redirect_uri: "http://127.0.0.1:53682/other"
      }),
      400,
      "invalid_grant"
    )
    const code = await codeFor(sandbox, challenge)
    sandbox.setFaults({ clockOffsetSeconds: 61 })
    const expired = await expectError(await exchange(sandbox, code, verifier), 400, "invalid_grant")
    expect(expired.error_description).toMatch(/expired/)
  })

  it("refuses plain PKCE, a missing challenge and a bad response_type by redirect (RFC 6749 4.1.2.1)", async () => {
    const sandbox = await start()
    const { challenge } = pkce()
    const base = {
      response_type: "code",
      client_id: "sandbox-client",
      redirect_uri: REDIRECT,
      state: "s1",
      code_challenge: challenge,
      code_challenge_method: "S256"
    }
    const cases: Array<[Record<string, string>, string]> = [
      [{ ...base, code_challenge_method: "plain" }, "invalid_request"],
      [{ ...base, code_challenge_method: "" }, "invalid_request"],
      [{ ...base, code_challenge: "" }, "invalid_request"],
      [{ ...base, response_type: "token" }, "unsupported_response_type"],
      [{ ...base, scope: "bensoft_api admin_everything" }, "invalid_scope"]
    ]
    for (const [params, error] of cases) {
      const { status, location } = await authorize(sandbox, params)
      expect(status).toBe(302)
      expect(location!.searchParams.get("error")).toBe(error)
      expect(location!.searchParams.get("state")).toBe("s1")
      expect(location!.searchParams.get("code")).toBeNull()
    }
  })

  it("never redirects to an unknown client's or an unregistered redirect_uri", async () => {
    const sandbox = await start()
    const { challenge } = pkce()
    const base = { response_type: "code", code_challenge: challenge, code_challenge_method: "S256" }
    for (const params of [
      { ...base, client_id: "nobody", redirect_uri: REDIRECT },
      { ...base, client_id: "sandbox-client", redirect_uri: "https://attacker.example/callback" },
      { ...base, client_id: "sandbox-client", redirect_uri: "http://127.0.0.1:53682/callback/../evil" },
      // exact string comparison: no normalisation (RFC 9700 section 2.1)
      { ...base, client_id: "sandbox-client", redirect_uri: "http://127.0.0.1:53682/callback/../callback" },
      { ...base, client_id: "sandbox-client", redirect_uri: "http://127.0.0.1.attacker.example/callback" },
      { ...base, client_id: "sandbox-client", redirect_uri: "http://127.0.0.1:53682/callback#frag" }
    ]) {
      const { status, location, text } = await authorize(sandbox, params)
      expect(status).toBe(400)
      expect(location).toBeUndefined()
      expect(text).toContain("invalid_request")
    }
    // a repeated parameter on the authorization request is refused too (RFC 6749 section 3.1)
    const dup = await fetch(
      `${sandbox.authorizeUrl}?client_id=sandbox-client&client_id=sandbox-client&response_type=code`,
      { redirect: "manual" }
    )
    expect(dup.status).toBe(400)
  })
})

describe("wealthcare refresh tokens", () => {
  it("rotate: each use returns a new refresh token and spends the old one", async () => {
    const sandbox = await start()
    const first = (await (
      await password(sandbox, { scope: "bensoft_api offline_access" })
    ).json()) as TokenResponse
    expect(first.refresh_token).toBeDefined()
    const second = (await (await refresh(sandbox, first.refresh_token!)).json()) as TokenResponse
    expect(second.refresh_token).toBeDefined()
    expect(second.refresh_token).not.toBe(first.refresh_token)
    expect(second.access_token).not.toBe(first.access_token)
    expect(second.scope).toBe("bensoft_api offline_access")
    expect(await apiStatus(sandbox, second.access_token)).toBe(200)
    const third = (await (await refresh(sandbox, second.refresh_token!)).json()) as TokenResponse
    expect(third.refresh_token).toBeDefined()
    expect(sandbox.stats().tokenRequests.byGrant).toEqual({ password: 1, refresh_token: 2 })
  })

  it("reuse of a rotated refresh token revokes the whole family, newest refresh token included (RFC 9700 4.14.2)", async () => {
    const sandbox = await start()
    const first = (await (await password(sandbox)).json()) as TokenResponse
    const second = (await (await refresh(sandbox, first.refresh_token!)).json()) as TokenResponse
    const third = (await (await refresh(sandbox, second.refresh_token!)).json()) as TokenResponse
    expect(await apiStatus(sandbox, third.access_token)).toBe(200)

    const reuse = await expectError(await refresh(sandbox, first.refresh_token!), 400, "invalid_grant")
    expect(reuse.error_description).toMatch(/already used/)
    await expectError(await refresh(sandbox, third.refresh_token!), 400, "invalid_grant")
    expect(await apiStatus(sandbox, third.access_token)).toBe(401)
    expect(await apiStatus(sandbox, second.access_token)).toBe(401)
    // another grant of the same client is untouched
    const other = (await (await password(sandbox)).json()) as TokenResponse
    expect((await refresh(sandbox, other.refresh_token!)).status).toBe(200)
  })

  it("are bound to their client, may narrow the scope but not widen it, and expire", async () => {
    const sandbox = await start({
      refreshTokenTtl: 60,
      clients: [
        { clientId: "sandbox-client", clientSecret: "sandbox-secret" },
        { clientId: "other", clientSecret: "other-secret" }
      ]
    })
    const first = (await (
      await password(sandbox, { scope: "bensoft_api offline_access" })
    ).json()) as TokenResponse
    const stolen = await postForm(sandbox.tokenUrl, {
      grant_type: "refresh_token",
      refresh_token: first.refresh_token!,
      client_id: "other",
      client_secret: "other-secret"
    })
    await expectError(stolen, 400, "invalid_grant")
    const widened = await postForm(sandbox.tokenUrl, {
      grant_type: "refresh_token",
      refresh_token: first.refresh_token!,
      scope: "bensoft_api mbi_api offline_access",
      ...CLIENT
    })
    await expectError(widened, 400, "invalid_scope")
    const second = (await (await refresh(sandbox, first.refresh_token!)).json()) as TokenResponse
    sandbox.setFaults({ clockOffsetSeconds: 61 })
    const expired = await expectError(await refresh(sandbox, second.refresh_token!), 400, "invalid_grant")
    expect(expired.error_description).toMatch(/expired/)
  })
})

describe("wealthcare grants and scopes", () => {
  it("password grant: the user's credentials, or invalid_grant", async () => {
    const sandbox = await start({ users: [{ username: "alice", password: "correct horse" }] })
    const ok = await password(sandbox, { username: "alice", password: "correct horse", scope: "mbi_api" })
    expect(ok.status).toBe(200)
    const token = (await ok.json()) as TokenResponse
    expect(token.scope).toBe("mbi_api")
    expect(token.refresh_token).toBeUndefined()
    await expectError(await password(sandbox, { username: "alice", password: "wrong" }), 400, "invalid_grant")
    await expectError(
      await password(sandbox, { username: "mallory", password: "correct horse" }),
      400,
      "invalid_grant"
    )
    await expectError(
      await postForm(sandbox.tokenUrl, { grant_type: "password", username: "alice", ...CLIENT }),
      400,
      "invalid_request"
    )
  })

  it("offline_access in the granted scope is what yields a refresh token", async () => {
    const sandbox = await start()
    const withOffline = (await (
      await password(sandbox, { scope: "bensoft_api offline_access" })
    ).json()) as TokenResponse
    expect(withOffline.refresh_token).toBeDefined()
    const without = (await (await password(sandbox, { scope: "bensoft_api" })).json()) as TokenResponse
    expect(without.refresh_token).toBeUndefined()
    expect(without.scope).toBe("bensoft_api")
    // no scope asked: every scope of the client, offline_access included
    const all = (await (await password(sandbox)).json()) as TokenResponse
    expect(all.scope).toBe("bensoft_api mbi_api offline_access")
    expect(all.refresh_token).toBeDefined()
  })

  it("client_credentials: scope granted, never a refresh token, unknown scope is invalid_scope", async () => {
    const sandbox = await start()
    const res = await postForm(sandbox.tokenUrl, { grant_type: "client_credentials", ...CLIENT })
    expect(res.status).toBe(200)
    const token = (await res.json()) as TokenResponse
    expect(token.scope).toBe("bensoft_api mbi_api")
    expect(token.refresh_token).toBeUndefined()
    await expectError(
      await postForm(sandbox.tokenUrl, {
        grant_type: "client_credentials",
        scope: "offline_access",
        ...CLIENT
      }),
      400,
      "invalid_scope"
    )
    const unknown = await expectError(
      await postForm(sandbox.tokenUrl, {
        grant_type: "client_credentials",
        scope: "bensoft_api root",
        ...CLIENT
      }),
      400,
      "invalid_scope"
    )
    expect(unknown.error_description).toContain("root")
  })

  it("answers the documented errors: invalid_client, unsupported_grant_type, unauthorized_client", async () => {
    const sandbox = await start({
      clients: [{ clientId: "cc-only", clientSecret: "cc-secret", grants: ["client_credentials"] }]
    })
    const wrong = await postForm(sandbox.tokenUrl, {
      grant_type: "client_credentials",
      client_id: "cc-only",
      client_secret: "nope"
    })
    expect(wrong.status).toBe(401)
    expect(await wrong.json()).toEqual({
      error: "invalid_client",
      error_description: "Client authentication failed."
    })
    const creds = { client_id: "cc-only", client_secret: "cc-secret" }
    await expectError(
      await postForm(sandbox.tokenUrl, {
        grant_type: "urn:ietf:params:oauth:grant-type:device_code",
        ...creds
      }),
      400,
      "unsupported_grant_type"
    )
    await expectError(
      await postForm(sandbox.tokenUrl, { grant_type: "password", username: "u", password: "p", ...creds }),
      400,
      "unauthorized_client"
    )
    await expectError(
      await postForm(sandbox.tokenUrl, { grant_type: "authorization_code", ...creds }),
      400,
      "unauthorized_client"
    )
  })

  it("answers API requests like a JWT bearer API: 401, empty body, WWW-Authenticate", async () => {
    const sandbox = await start()
    const missing = await fetch(`${sandbox.baseUrl}/v1/claims`)
    expect(missing.status).toBe(401)
    expect(missing.headers.get("www-authenticate")).toBe("Bearer")
    expect(await missing.text()).toBe("")
    const unknown = await fetch(`${sandbox.baseUrl}/v1/claims`, { headers: bearer("abc") })
    expect(unknown.headers.get("www-authenticate")).toBe('Bearer error="invalid_token"')
    const token = ((await (await password(sandbox)).json()) as TokenResponse).access_token
    expect(await apiStatus(sandbox, token)).toBe(200)
    sandbox.setFaults({ clockOffsetSeconds: 3601 })
    const expired = await fetch(`${sandbox.baseUrl}/v1/claims`, { headers: bearer(token) })
    expect(expired.status).toBe(401)
    expect(expired.headers.get("www-authenticate")).toMatch(
      /^Bearer error="invalid_token", error_description="The token expired at '\d{4}-\d\d-\d\dT[\d:.]+Z'"$/
    )
  })

  it("publishes RFC 8414 metadata", async () => {
    const sandbox = await start()
    const res = await fetch(`${sandbox.url}/.well-known/oauth-authorization-server`)
    const meta = (await res.json()) as Record<string, unknown>
    expect(meta).toMatchObject({
      issuer: sandbox.url,
      token_endpoint: sandbox.tokenUrl,
      authorization_endpoint: sandbox.authorizeUrl,
      code_challenge_methods_supported: ["S256"]
    })
  })
})
