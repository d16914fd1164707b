/**
 * WealthCare's OpenID Connect side: ID tokens verified with node:crypto
 * against the published JWK Set (every claim, nonce included; a refreshed ID
 * token without it), userinfo, discovery at both well-known URLs, end session,
 * and the `iss` that tells two sandboxes apart (RFC 9207 mix-up defence).
 */
import { createPublicKey, verify } from "node:crypto"
import { afterEach, describe, expect, it } from "vitest"
import {
  type Sandbox,
  type SandboxEvent,
  type SandboxOptions,
  startSandbox,
  WEALTHCARE_OIDC_SCOPES
} from "../src/index.ts"
import { authorizeRequest, bearer, CLIENT, pkce, postForm, requestIdOf, submitSignIn } from "./support.ts"

const open: Array<Sandbox> = []
const start = async (options: Partial<SandboxOptions> = {}) => {
  const sandbox = await startSandbox({ profile: "wealthcare", ...options })
  open.push(sandbox)
  return sandbox
}
afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.close()))
})

const REDIRECT = "http://127.0.0.1:53682/callback"
const ALICE = {
  username: "alice",
  password: "correct horse",
  name: "Alice Example",
  email: "alice@example.com",
  claims: { employee_id: "E-1001", roles: ["hr", "admin"] }
}

interface Tokens {
  access_token: string
  refresh_token?: string
  id_token?: string
  scope: string
  expires_in: number
}

/** Signs `username` in through the page and exchanges the code: what a web app's callback does. */
const signInAndExchange = async (
  sandbox: Sandbox,
  input: {
    scope: string
    nonce?: string
    username?: string
    password?: string
    clientId?: string
    secret?: string
  }
): Promise<Tokens> => {
  const { verifier, challenge } = pkce()
  const clientId = input.clientId ?? "sandbox-client"
  const page = await authorizeRequest(sandbox, {
    response_type: "code",
    client_id: clientId,
    redirect_uri: REDIRECT,
    scope: input.scope,
    state: "s",
    code_challenge: challenge,
    code_challenge_method: "S256",
    ...(input.nonce === undefined ? {} : { nonce: input.nonce })
  })
  expect(page.status).toBe(200)
  const signedIn = await submitSignIn(sandbox, {
    request: requestIdOf(page.text),
    username: input.username ?? "alice",
    password: input.password ?? "correct horse",
    action: "approve"
  })
  expect(signedIn.status).toBe(302)
  const res = await postForm(sandbox.tokenUrl, {
    grant_type: "authorization_code",
    code: signedIn.location!.searchParams.get("code")!,
    redirect_uri: REDIRECT,
    code_verifier: verifier,
    client_id: clientId,
    client_secret: input.secret ?? "sandbox-secret"
  })
  expect(res.status).toBe(200)
  return (await res.json()) as Tokens
}

/** Verifies an RS256 JWT against the sandbox's JWKS with node:crypto; returns header and payload. */
const verifyIdToken = async (
  sandbox: Sandbox,
  token: string
): Promise<{ header: Record<string, unknown>; payload: Record<string, unknown> }> => {
  const jwks = (await (await fetch(sandbox.jwksUrl!)).json()) as { keys: Array<Record<string, unknown>> }
  const [h, p, s] = token.split(".") as [string, string, string]
  const header = JSON.parse(Buffer.from(h, "base64url").toString("utf8")) as Record<string, unknown>
  const jwk = jwks.keys.find((k) => k.kid === header.kid)
  expect(jwk).toBeDefined()
  const key = createPublicKey({ key: jwk as never, format: "jwk" })
  expect(verify("sha256", Buffer.from(`${h}.${p}`), key, Buffer.from(s, "base64url"))).toBe(true)
  // a changed payload does not verify
  const forged = Buffer.from(JSON.stringify({ sub: "mallory" })).toString("base64url")
  expect(verify("sha256", Buffer.from(`${h}.${forged}`), key, Buffer.from(s, "base64url"))).toBe(false)
  return {
    header,
    payload: JSON.parse(Buffer.from(p, "base64url").toString("utf8")) as Record<string, unknown>
  }
}

describe("ID tokens", () => {
  it("an authorization code with openid yields an RS256 ID token with every claim, nonce included", async () => {
    const events: Array<SandboxEvent> = []
    const sandbox = await start({ users: [ALICE], tokenTtl: 900, onEvent: (e) => events.push(e) })
    const before = Math.floor(Date.now() / 1000)
    const tokens = await signInAndExchange(sandbox, {
      scope: "openid profile email bensoft_api offline_access",
      nonce: "n-0S6_WzA2Mj"
    })
    const after = Math.floor(Date.now() / 1000)
    expect(typeof tokens.id_token).toBe("string")
    const { header, payload } = await verifyIdToken(sandbox, tokens.id_token!)
    expect(header).toEqual({ alg: "RS256", kid: expect.any(String), typ: "JWT" })
    expect(payload).toEqual({
      iss: sandbox.url,
      sub: "alice",
      aud: "sandbox-client",
      azp: "sandbox-client",
      iat: expect.any(Number),
      exp: expect.any(Number),
      auth_time: expect.any(Number),
      nonce: "n-0S6_WzA2Mj",
      sid: expect.stringMatching(/^[0-9A-F]{32}$/),
      name: "Alice Example",
      preferred_username: "alice",
      email: "alice@example.com",
      email_verified: true,
      employee_id: "E-1001",
      roles: ["hr", "admin"]
    })
    const iat = payload.iat as number
    expect(iat).toBeGreaterThanOrEqual(before)
    expect(iat).toBeLessThanOrEqual(after)
    expect(payload.exp).toBe(iat + 900)
    expect(payload.auth_time as number).toBeLessThanOrEqual(iat)
    expect(payload.auth_time as number).toBeGreaterThanOrEqual(before)
    // the ID token is no credential of the API and appears in no event
    expect(JSON.stringify(events)).not.toContain(tokens.id_token)
    expect((await fetch(`${sandbox.baseUrl}/v1/me`, { headers: bearer(tokens.id_token!) })).status).toBe(401)
  })

  it("claims follow the scope; no nonce when none was sent; none at all without openid", async () => {
    const sandbox = await start({ users: [ALICE] })
    const plain = await signInAndExchange(sandbox, { scope: "openid bensoft_api" })
    const { payload } = await verifyIdToken(sandbox, plain.id_token!)
    expect(Object.keys(payload).sort()).toEqual(
      ["aud", "auth_time", "azp", "employee_id", "exp", "iat", "iss", "roles", "sid", "sub"].sort()
    )
    const email = await signInAndExchange(sandbox, { scope: "openid email" })
    const withEmail = (await verifyIdToken(sandbox, email.id_token!)).payload
    expect(withEmail.email).toBe("alice@example.com")
    expect(withEmail.name).toBeUndefined()
    const oauthOnly = await signInAndExchange(sandbox, { scope: "bensoft_api offline_access" })
    expect(oauthOnly.id_token).toBeUndefined()
    // every sign-in its own sid
    expect(payload.sid).not.toBe(withEmail.sid)
  })

  it("a refresh with openid yields a new ID token: same sub, iss, aud, sid and auth_time, no nonce (OIDC Core 12.2)", async () => {
    const sandbox = await start({ users: [ALICE] })
    const first = await signInAndExchange(sandbox, { scope: "openid profile offline_access", nonce: "abc" })
    const original = (await verifyIdToken(sandbox, first.id_token!)).payload
    const res = await postForm(sandbox.tokenUrl, {
      grant_type: "refresh_token",
      refresh_token: first.refresh_token!,
      ...CLIENT
    })
    expect(res.status).toBe(200)
    const refreshed = (await res.json()) as Tokens
    expect(refreshed.id_token).toBeDefined()
    expect(refreshed.id_token).not.toBe(first.id_token)
    const payload = (await verifyIdToken(sandbox, refreshed.id_token!)).payload
    expect(payload.nonce).toBeUndefined()
    for (const claim of ["iss", "sub", "aud", "azp", "sid", "auth_time", "name"]) {
      expect(payload[claim], claim).toEqual(original[claim])
    }
    // narrowed to a scope without openid: no ID token
    const narrowed = (await (
      await postForm(sandbox.tokenUrl, {
        grant_type: "refresh_token",
        refresh_token: refreshed.refresh_token!,
        scope: "offline_access",
        ...CLIENT
      })
    ).json()) as Tokens
    expect(narrowed.id_token).toBeUndefined()
  })

  it("the password grant gets no ID token (no sign-in), and client_credentials may not ask for openid", async () => {
    const sandbox = await start()
    const password = (await (
      await postForm(sandbox.tokenUrl, {
        grant_type: "password",
        username: "sandbox-user",
        password: "sandbox-password",
        scope: "openid profile offline_access",
        ...CLIENT
      })
    ).json()) as Tokens
    expect(password.scope).toBe("openid profile offline_access")
    expect(password.id_token).toBeUndefined()
    // but its access token opens userinfo
    const info = await fetch(sandbox.userinfoUrl!, { headers: bearer(password.access_token) })
    expect(await info.json()).toEqual({
      sub: "sandbox-user",
      name: "Sandbox User",
      preferred_username: "sandbox-user"
    })
    const cc = await postForm(sandbox.tokenUrl, {
      grant_type: "client_credentials",
      scope: "openid",
      ...CLIENT
    })
    expect(cc.status).toBe(400)
    expect(((await cc.json()) as { error: string }).error).toBe("invalid_scope")
    // no scope asked: the default leaves the OpenID Connect scopes out
    const all = (await (
      await postForm(sandbox.tokenUrl, {
        grant_type: "password",
        username: "sandbox-user",
        password: "sandbox-password",
        ...CLIENT
      })
    ).json()) as Tokens
    expect(all.scope).toBe("bensoft_api mbi_api offline_access")
    expect(sandbox.clients[0]!.scopes).toEqual([
      "bensoft_api",
      "mbi_api",
      "offline_access",
      ...WEALTHCARE_OIDC_SCOPES
    ])
  })
})

describe("userinfo", () => {
  it("answers the user's claims for a valid openid token; 401 or 403 with WWW-Authenticate otherwise", async () => {
    const events: Array<SandboxEvent> = []
    const sandbox = await start({ users: [ALICE], onEvent: (e) => events.push(e) })
    expect(sandbox.userinfoUrl).toBe(`${sandbox.url}/connect/userinfo`)
    const tokens = await signInAndExchange(sandbox, { scope: "openid profile email bensoft_api" })
    const res = await fetch(sandbox.userinfoUrl!, { headers: bearer(tokens.access_token) })
    expect(res.status).toBe(200)
    expect(res.headers.get("cache-control")).toBe("no-store")
    expect(await res.json()).toEqual({
      sub: "alice",
      name: "Alice Example",
      preferred_username: "alice",
      email: "alice@example.com",
      email_verified: true,
      employee_id: "E-1001",
      roles: ["hr", "admin"]
    })
    const post = await fetch(sandbox.userinfoUrl!, { method: "POST", headers: bearer(tokens.access_token) })
    expect(post.status).toBe(200)
    expect(events.filter((e) => e.kind === "userinfo").map((e) => [e.status, e.subject, e.clientId])).toEqual(
      [
        [200, "alice", "sandbox-client"],
        [200, "alice", "sandbox-client"]
      ]
    )

    const missing = await fetch(sandbox.userinfoUrl!)
    expect(missing.status).toBe(401)
    expect(missing.headers.get("www-authenticate")).toBe('Bearer realm="userinfo"')
    const unknown = await fetch(sandbox.userinfoUrl!, { headers: bearer("nope") })
    expect(unknown.status).toBe(401)
    expect(unknown.headers.get("www-authenticate")).toMatch(/^Bearer realm="userinfo", error="invalid_token"/)
    const noOpenid = await signInAndExchange(sandbox, { scope: "bensoft_api" })
    const forbidden = await fetch(sandbox.userinfoUrl!, { headers: bearer(noOpenid.access_token) })
    expect(forbidden.status).toBe(403)
    expect(forbidden.headers.get("www-authenticate")).toBe(
      'Bearer realm="userinfo", error="insufficient_scope", scope="openid"'
    )
    const cc = (await (
      await postForm(sandbox.tokenUrl, { grant_type: "client_credentials", ...CLIENT })
    ).json()) as Tokens
    expect((await fetch(sandbox.userinfoUrl!, { headers: bearer(cc.access_token) })).status).toBe(403)
    sandbox.revokeUser("alice")
    const revoked = await fetch(sandbox.userinfoUrl!, { headers: bearer(tokens.access_token) })
    expect(revoked.status).toBe(401)
    expect(revoked.headers.get("www-authenticate")).toContain('error="invalid_token"')
    sandbox.setFaults({ clockOffsetSeconds: 3601 })
    const other = await signInAndExchange(sandbox, { scope: "openid" })
    sandbox.setFaults({ clockOffsetSeconds: 7300 })
    const expired = await fetch(sandbox.userinfoUrl!, { headers: bearer(other.access_token) })
    expect(expired.status).toBe(401)
    expect(JSON.stringify(events)).not.toContain(tokens.access_token)
  })
})

describe("discovery", () => {
  it("answers the same metadata at both well-known URLs, and the JWK Set", async () => {
    const sandbox = await start({ users: [ALICE] })
    expect(sandbox.issuer).toBe(sandbox.url)
    expect(sandbox.discoveryUrl).toBe(`${sandbox.url}/.well-known/openid-configuration`)
    const oidc = (await (await fetch(sandbox.discoveryUrl!)).json()) as Record<string, unknown>
    const rfc8414 = (await (
      await fetch(`${sandbox.url}/.well-known/oauth-authorization-server`)
    ).json()) as Record<string, unknown>
    expect(rfc8414).toEqual(oidc)
    const url = sandbox.url
    expect(oidc).toMatchObject({
      issuer: url,
      authorization_endpoint: `${url}/connect/authorize`,
      token_endpoint: `${url}/connect/token`,
      revocation_endpoint: `${url}/connect/revocation`,
      userinfo_endpoint: `${url}/connect/userinfo`,
      jwks_uri: `${url}/.well-known/jwks.json`,
      end_session_endpoint: `${url}/connect/endsession`,
      grant_types_supported: ["client_credentials", "authorization_code", "refresh_token", "password"],
      response_types_supported: ["code"],
      response_modes_supported: ["query"],
      code_challenge_methods_supported: ["S256"],
      token_endpoint_auth_methods_supported: ["client_secret_post", "client_secret_basic"],
      revocation_endpoint_auth_methods_supported: ["client_secret_post", "client_secret_basic"],
      scopes_supported: ["bensoft_api", "mbi_api", "offline_access", "openid", "profile", "email"],
      subject_types_supported: ["public"],
      id_token_signing_alg_values_supported: ["RS256"],
      authorization_response_iss_parameter_supported: true
    })
    expect(oidc.claims_supported).toEqual(
      expect.arrayContaining([
        "sub",
        "name",
        "email",
        "email_verified",
        "nonce",
        "sid",
        "auth_time",
        "employee_id"
      ])
    )
    expect(oidc.jwks_uri).toBe(sandbox.jwksUrl)
    expect(oidc.revocation_endpoint).toBe(sandbox.revocationUrl)
    expect(oidc.end_session_endpoint).toBe(sandbox.endSessionUrl)

    const jwks = (await (await fetch(sandbox.jwksUrl!)).json()) as { keys: Array<Record<string, unknown>> }
    expect(jwks.keys).toHaveLength(1)
    const key = jwks.keys[0]!
    expect(Object.keys(key).sort()).toEqual(["alg", "e", "kid", "kty", "n", "use"])
    expect(key).toMatchObject({ kty: "RSA", e: "AQAB", alg: "RS256", use: "sig" })
    // RSA 2048: a 256-byte modulus; and no private member
    expect(Buffer.from(key.n as string, "base64url").length).toBe(256)
    expect(createPublicKey({ key: key as never, format: "jwk" }).asymmetricKeyDetails?.modulusLength).toBe(
      2048
    )
    expect((await fetch(sandbox.jwksUrl!, { method: "POST" })).status).toBe(405)
  })

  it("two sandboxes are two issuers with two keys: a code or ID token of one is nothing to the other (mix-up, RFC 9207)", async () => {
    const [a, b] = await Promise.all([start({ users: [ALICE] }), start({ users: [ALICE] })])
    expect(a.issuer).not.toBe(b.issuer)
    const { verifier, challenge } = pkce()
    const page = await authorizeRequest(a, {
      response_type: "code",
      client_id: "sandbox-client",
      redirect_uri: REDIRECT,
      scope: "openid",
      code_challenge: challenge,
      code_challenge_method: "S256"
    })
    const back = await submitSignIn(a, {
      request: requestIdOf(page.text),
      username: "alice",
      password: "correct horse"
    })
    // the iss parameter names the server that answered: a client that sent its request to b must refuse it
    expect(back.location!.searchParams.get("iss")).toBe(a.url)
    const code = back.location!.searchParams.get("code")!
    const atB = await postForm(b.tokenUrl, {
      grant_type: "authorization_code",
      code,
      redirect_uri: REDIRECT,
      code_verifier: verifier,
      ...CLIENT
    })
    expect(atB.status).toBe(400)
    expect(((await atB.json()) as { error: string }).error).toBe("invalid_grant")
    const tokens = (await (
      await postForm(a.tokenUrl, {
        grant_type: "authorization_code",
        code,
        redirect_uri: REDIRECT,
        code_verifier: verifier,
        ...CLIENT
      })
    ).json()) as Tokens
    const kidOf = (jwks: { keys: Array<{ kid: string }> }) => jwks.keys[0]!.kid
    const [ka, kb] = await Promise.all(
      [a, b].map(async (s) =>
        kidOf((await (await fetch(s.jwksUrl!)).json()) as { keys: Array<{ kid: string }> })
      )
    )
    expect(ka).not.toBe(kb)
    // b does not take a's ID token as an id_token_hint
    const hint = await fetch(`${b.endSessionUrl}?id_token_hint=${tokens.id_token}`)
    expect(hint.status).toBe(400)
  })
})

describe("end session", () => {
  it("redirects to a post_logout_redirect_uri on a registered redirect URI's origin, with state", async () => {
    const events: Array<SandboxEvent> = []
    const sandbox = await start({ users: [ALICE], onEvent: (e) => events.push(e) })
    const tokens = await signInAndExchange(sandbox, { scope: "openid" })
    const endSession = (params: Record<string, string>) => {
      const url = new URL(sandbox.endSessionUrl!)
      for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v)
      return fetch(url, { redirect: "manual" })
    }
    const back = await endSession({
      id_token_hint: tokens.id_token!,
      post_logout_redirect_uri: "http://127.0.0.1:53682/signed-out?x=1",
      state: "bye"
    })
    expect(back.status).toBe(302)
    const location = new URL(back.headers.get("location")!)
    expect(`${location.origin}${location.pathname}`).toBe("http://127.0.0.1:53682/signed-out")
    expect(location.searchParams.get("x")).toBe("1")
    expect(location.searchParams.get("state")).toBe("bye")
    // client_id instead of a hint names the client too
    const byClient = await endSession({
      client_id: "sandbox-client",
      post_logout_redirect_uri: "http://localhost:3000/"
    })
    expect(byClient.status).toBe(302)
    expect(byClient.headers.get("location")).toBe("http://localhost:3000/")
    // an expired hint is still a hint (RP-Initiated Logout 1.0 section 2)
    sandbox.setFaults({ clockOffsetSeconds: 7200 })
    expect(
      (await endSession({ id_token_hint: tokens.id_token!, post_logout_redirect_uri: "http://127.0.0.1:1/" }))
        .status
    ).toBe(302)
    sandbox.setFaults({})

    const endsessionEvents = events.filter((e) => e.kind === "endsession")
    expect(endsessionEvents[0]).toMatchObject({ status: 302, clientId: "sandbox-client", subject: "alice" })
    expect(JSON.stringify(events)).not.toContain(tokens.id_token)
  })

  it("shows a signed-out page otherwise, and refuses a forged or foreign hint", async () => {
    const sandbox = await start({ users: [ALICE] })
    const tokens = await signInAndExchange(sandbox, { scope: "openid" })
    const page = await fetch(sandbox.endSessionUrl!, { redirect: "manual" })
    expect(page.status).toBe(200)
    expect(page.headers.get("content-type")).toBe("text/html; charset=utf-8")
    expect(page.headers.get("cache-control")).toBe("no-store")
    expect(await page.text()).toContain("You are signed out")
    for (const query of [
      // another origin
      `id_token_hint=${tokens.id_token}&post_logout_redirect_uri=${encodeURIComponent("https://evil.example/")}`,
      // no client to check it against
      `post_logout_redirect_uri=${encodeURIComponent("http://127.0.0.1:53682/")}`
    ]) {
      const res = await fetch(`${sandbox.endSessionUrl}?${query}`, { redirect: "manual" })
      expect(res.status).toBe(200)
      expect(res.headers.get("location")).toBeNull()
      expect(await res.text()).toContain("You are signed out")
    }
    const [h, p, s] = tokens.id_token!.split(".") as [string, string, string]
    const forgedPayload = Buffer.from(
      JSON.stringify({ ...JSON.parse(Buffer.from(p, "base64url").toString()), aud: "other" })
    ).toString("base64url")
    for (const hint of [`${h}.${forgedPayload}.${s}`, "not-a-jwt", `${h}.${p}.`]) {
      const res = await fetch(`${sandbox.endSessionUrl}?id_token_hint=${encodeURIComponent(hint)}`, {
        redirect: "manual"
      })
      expect(res.status).toBe(400)
    }
    const mismatch = await fetch(`${sandbox.endSessionUrl}?id_token_hint=${tokens.id_token}&client_id=other`)
    expect(mismatch.status).toBe(400)
    const post = await fetch(sandbox.endSessionUrl!, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        id_token_hint: tokens.id_token!,
        post_logout_redirect_uri: "http://127.0.0.1:9/bye"
      }).toString(),
      redirect: "manual"
    })
    expect(post.status).toBe(302)
    expect(post.headers.get("location")).toBe("http://127.0.0.1:9/bye")
  })
})
