/**
 * The pieces of a sign-in, one rule per assertion: the authorization URL,
 * the callback's checks (RFC 9207 `iss` first, errors, code), `returnTo`
 * against open redirects, the CSRF rules, the ID token's checks (OIDC Core
 * 3.1.3.7, 12.2), discovery (RFC 8414 / OIDC) and revocation (RFC 7009)
 * against real servers on 127.0.0.1, cookies, configuration checks.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { Effect, Redacted, Result } from "effect"
import { FetchHttpClient } from "effect/http"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as Csrf from "../src/Csrf.ts"
import * as Discovery from "../src/Discovery.ts"
import * as IdToken from "../src/IdToken.ts"
import { createUserSessions, InvalidConfigError } from "../src/index.ts"
import { readCookie } from "../src/internal/cookies.ts"
import * as Revocation from "../src/Revocation.ts"
import * as SignIn from "../src/SignIn.ts"
import * as UserSessions from "../src/UserSessions.ts"

const APP = "https://app.example"

describe("SignIn.authorizationUrl", () => {
  it("sets the RFC 6749 4.1.1 and RFC 7636 parameters, keeps the endpoint's own query, never lets params override", () => {
    const url = SignIn.authorizationUrl({
      authorizationUrl: "https://auth.example/authorize?tenant=a",
      clientId: "app",
      redirectUri: `${APP}/cb`,
      scope: "openid api",
      state: "s",
      codeChallenge: "c".repeat(43),
      nonce: "n",
      params: { prompt: "login", state: "attacker", redirect_uri: "https://evil.example" }
    })
    expect(Object.fromEntries(url.searchParams)).toEqual({
      tenant: "a",
      prompt: "login",
      response_type: "code",
      client_id: "app",
      redirect_uri: `${APP}/cb`,
      scope: "openid api",
      state: "s",
      code_challenge: "c".repeat(43),
      code_challenge_method: "S256",
      nonce: "n"
    })
  })
})

describe("SignIn.checkCallback", () => {
  const check = (query: string, expected: SignIn.ExpectedCallback = { issuer: "https://auth.example" }) =>
    SignIn.checkCallback(new URLSearchParams(query), expected)
  const reason = (result: Result.Result<string, { reason: string }>) =>
    Result.isFailure(result) ? result.failure.reason : "ok"

  it("returns the code", () => {
    expect(Result.getOrThrow(check("code=abc&iss=https%3A%2F%2Fauth.example"))).toBe("abc")
  })
  it("refuses the iss of another server before anything else, even an error answer (RFC 9207 2.4)", () => {
    expect(reason(check("code=abc&iss=https%3A%2F%2Fevil.example"))).toBe("issuer_mismatch")
    expect(reason(check("error=access_denied&iss=https%3A%2F%2Fevil.example"))).toBe("issuer_mismatch")
  })
  it("requires iss when the server's metadata promises it", () => {
    expect(reason(check("code=abc", { issuer: "https://auth.example", issRequired: true }))).toBe(
      "issuer_missing"
    )
    expect(reason(check("code=abc", { issuer: "https://auth.example" }))).toBe("ok")
  })
  it("turns an error answer into a typed error with the code and a cleaned, cut description", () => {
    const result = check(
      `error=access_denied&error_description=${encodeURIComponent(`no\u0000\n${"x".repeat(500)}`)}`
    )
    expect(Result.isFailure(result)).toBe(true)
    if (Result.isFailure(result)) {
      expect(result.failure.code).toBe("access_denied")
      expect(result.failure.description).toMatch(/^no {2}x+$/)
      expect(result.failure.description!.length).toBe(200)
    }
  })
  it("refuses a callback without a code", () => {
    expect(reason(check("state=x"))).toBe("code_missing")
    expect(reason(check("code="))).toBe("code_missing")
  })
})

describe("SignIn.safeReturnTo", () => {
  it("keeps paths of the app", () => {
    for (const ok of ["/", "/claims", "/claims?page=2#top", "/a/b%2Fc", "/%2F%2Fevil.example"]) {
      expect(SignIn.safeReturnTo(ok, APP), ok).toBe(ok)
    }
    expect(SignIn.safeReturnTo("/a/../b", APP)).toBe("/b")
  })
  it("refuses anything that leaves it, never 'fixing' it", () => {
    for (const bad of [
      "https://evil.example/",
      "//evil.example",
      "///evil.example",
      "/\\evil.example",
      "\\\\evil.example",
      "/\t/evil.example",
      "javascript:alert(1)",
      "evil.example",
      " /a",
      "/a b",
      "/ok\r\nSet-Cookie: x=y",
      "/a\\b",
      "",
      `/${"a".repeat(2048)}`,
      "http:/evil.example",
      "/\u0000"
    ]) {
      expect(SignIn.safeReturnTo(bad, APP), JSON.stringify(bad)).toBeUndefined()
    }
  })
})

describe("Csrf.check", () => {
  const request = (method: string, headers: Record<string, string>) => ({
    method,
    headers: new Headers(headers)
  })
  const reason = (method: string, headers: Record<string, string>, header?: string | false) =>
    Csrf.check(request(method, headers), { appOrigin: APP, header })?.reason ?? "ok"

  it("lets safe methods through untouched", () => {
    expect(reason("GET", { "sec-fetch-site": "cross-site", origin: "https://evil.example" })).toBe("ok")
    expect(reason("HEAD", {})).toBe("ok")
  })
  it("refuses a state-changing request from another site, by Fetch Metadata or Origin", () => {
    expect(reason("POST", { "sec-fetch-site": "cross-site", "x-csrf": "1" })).toBe("cross_site")
    expect(reason("POST", { "sec-fetch-site": "same-site", "x-csrf": "1" })).toBe("cross_site")
    expect(reason("DELETE", { origin: "https://evil.example", "x-csrf": "1" })).toBe("origin_mismatch")
    expect(reason("PUT", { origin: "null", "x-csrf": "1" })).toBe("origin_mismatch")
    expect(reason("PATCH", { origin: "https://app.example:8443", "x-csrf": "1" })).toBe("origin_mismatch")
  })
  it("lets Fetch Metadata decide when it is sent (a page's own form may say Origin: null)", () => {
    expect(reason("POST", { "sec-fetch-site": "same-origin", origin: "null" }, false)).toBe("ok")
    expect(reason("POST", { "sec-fetch-site": "cross-site", origin: APP }, false)).toBe("cross_site")
  })
  it("requires the custom header, which another origin cannot add without a preflight", () => {
    expect(reason("POST", { "sec-fetch-site": "same-origin", origin: APP })).toBe("header_missing")
    expect(reason("POST", { "sec-fetch-site": "same-origin", origin: APP, "x-csrf": "1" })).toBe("ok")
    expect(reason("POST", { "x-csrf": "1" })).toBe("ok") // a non-browser client with the header
    expect(reason("POST", { "x-app-csrf": "1" }, "x-app-csrf")).toBe("ok")
  })
  it("for forms (no header rule), requires Origin or Sec-Fetch-Site to say same-origin", () => {
    expect(reason("POST", {}, false)).toBe("no_origin")
    expect(reason("POST", { origin: APP }, false)).toBe("ok")
    expect(reason("POST", { "sec-fetch-site": "same-origin" }, false)).toBe("ok")
  })
})

const jwt = (
  claims: Record<string, unknown>,
  header: Record<string, unknown> = { alg: "RS256", typ: "JWT" }
) =>
  `${[header, claims].map((part) => Buffer.from(JSON.stringify(part)).toString("base64url")).join(".")}.sig`

describe("IdToken.validate (OIDC Core 3.1.3.7)", () => {
  const now = 1_800_000_000_000
  const claims = {
    iss: "https://auth.example",
    sub: "alice",
    aud: "app",
    exp: now / 1000 + 300,
    iat: now / 1000,
    nonce: "n-1",
    name: "Alice"
  }
  const expected = { issuer: "https://auth.example", clientId: "app", nonce: "n-1", now }
  const reason = (token: string, overrides: Partial<IdToken.Expected> = {}) => {
    const result = IdToken.validate(token, { ...expected, ...overrides })
    return Result.isFailure(result) ? `${result.failure.reason}: ${result.failure.detail}` : "ok"
  }

  it("accepts a token for this client, this sign-in", () => {
    expect(reason(jwt(claims))).toBe("ok")
    expect(reason(jwt({ ...claims, aud: ["app", "api"], azp: "app" }))).toBe("ok")
  })
  it("refuses each broken claim, naming it and never its value", () => {
    expect(reason(jwt({ ...claims, iss: "https://evil.example" }))).toMatch(/^id_token_invalid: iss/)
    expect(reason(jwt({ ...claims, aud: "other" }))).toMatch(/aud/)
    expect(reason(jwt({ ...claims, aud: ["app", "api"] }))).toMatch(/azp is missing/)
    expect(reason(jwt({ ...claims, azp: "other" }))).toMatch(/azp/)
    expect(reason(jwt({ ...claims, exp: now / 1000 - 120 }))).toMatch(/exp/)
    expect(reason(jwt({ ...claims, iat: now / 1000 + 3600 }))).toMatch(/iat/)
    expect(reason(jwt({ ...claims, sub: "" }))).toMatch(/sub/)
    expect(reason(jwt({ ...claims, nonce: "other" }))).toMatch(/^nonce_mismatch/)
    expect(reason(jwt({ ...claims, nonce: undefined }))).toMatch(/^nonce_mismatch/)
    expect(reason(jwt(claims, { alg: "none" }))).toMatch(/alg/)
    expect(reason("not.a.jwt")).toMatch(/not a JWT/)
    expect(reason(jwt({ ...claims, exp: now / 1000 - 120 }))).not.toContain("alice")
  })
  it("holds a refresh's ID token to the sign-in's subject (OIDC Core 12.2), without a nonce", () => {
    const refreshed = jwt({ ...claims, nonce: undefined })
    expect(reason(refreshed, { nonce: undefined, subject: "alice" })).toBe("ok")
    expect(reason(jwt({ ...claims, sub: "mallory" }), { nonce: undefined, subject: "alice" })).toMatch(
      /sub differs/
    )
  })
  it("tolerates a minute of clock skew", () => {
    expect(reason(jwt({ ...claims, iat: now / 1000 + 30 }))).toBe("ok")
    expect(reason(jwt({ ...claims, exp: now / 1000 - 30 }))).toBe("ok")
  })
  it("gives the app the user's claims, not the protocol's", () => {
    expect(IdToken.userClaims(claims)).toEqual({ sub: "alice", name: "Alice" })
  })
})

/** A tiny server answering each path from a table (real sockets). */
const serve = async (
  routes: Record<string, (req: IncomingMessage, body: string) => [number, unknown, Record<string, string>?]>
) => {
  const seen: Array<{ path: string; body: string; authorization: string | undefined }> = []
  const server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Array<Buffer> = []
    for await (const chunk of req) chunks.push(chunk as Buffer)
    const body = Buffer.concat(chunks).toString()
    const path = new URL(req.url ?? "/", "http://x").pathname
    seen.push({ path, body, authorization: req.headers.authorization })
    const route = routes[path]
    if (!route) {
      res.writeHead(404).end()
      return
    }
    const [status, json, headers] = route(req, body)
    res.writeHead(status, { "content-type": "application/json", ...headers })
    res.end(typeof json === "string" ? json : JSON.stringify(json))
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return { url, seen, close: () => new Promise<void>((resolve) => server.close(() => resolve())) }
}

const run = <A, E>(effect: Effect.Effect<A, E, never>) => Effect.runPromise(Effect.result(effect))

describe("Discovery", () => {
  let as: Awaited<ReturnType<typeof serve>>
  let issuer: string
  beforeAll(async () => {
    as = await serve({
      "/tenant/.well-known/openid-configuration": () => [
        200,
        { issuer, authorization_endpoint: `${issuer}/authorize`, token_endpoint: `${issuer}/token` }
      ],
      "/.well-known/oauth-authorization-server/plain": () => [
        200,
        { issuer: `${as.url}/plain`, authorization_endpoint: `${as.url}/a`, token_endpoint: `${as.url}/t` }
      ],
      "/liar/.well-known/openid-configuration": () => [
        200,
        { issuer: "https://evil.example", token_endpoint: "https://evil.example/t" }
      ],
      "/insecure/.well-known/openid-configuration": () => [
        200,
        { issuer: `${as.url}/insecure`, token_endpoint: "http://evil.example/token" }
      ],
      "/moved/.well-known/openid-configuration": () => [302, {}, { location: "https://evil.example/" }],
      "/junk/.well-known/openid-configuration": () => [200, "<html>"]
    })
    issuer = `${as.url}/tenant`
  })
  afterAll(() => as.close())
  const discover = (path: string) =>
    run(Discovery.discover(`${as.url}${path}`).pipe(Effect.provide(FetchHttpClient.layer)))

  it("reads OIDC metadata, or RFC 8414's when there is none", async () => {
    const oidc = await discover("/tenant")
    expect(Result.getOrThrow(oidc).token_endpoint).toBe(`${issuer}/token`)
    const rfc8414 = await discover("/plain")
    expect(Result.getOrThrow(rfc8414).token_endpoint).toBe(`${as.url}/t`)
    expect(Discovery.wellKnownUrls("https://a.example/t/")).toEqual([
      "https://a.example/t/.well-known/openid-configuration",
      "https://a.example/.well-known/oauth-authorization-server/t"
    ])
  })
  it("refuses metadata for another issuer, insecure endpoints, redirects and junk", async () => {
    const reason = async (path: string) => {
      const result = await discover(path)
      return Result.isFailure(result) ? result.failure.reason : "ok"
    }
    expect(await reason("/liar")).toBe("issuer_mismatch")
    expect(await reason("/insecure")).toBe("invalid_metadata")
    expect(await reason("/moved")).toBe("status")
    expect(await reason("/junk")).toBe("invalid_metadata")
    expect(await reason("/nothing")).toBe("status")
    expect(as.seen.some((r) => r.path.startsWith("/evil"))).toBe(false)
  })
})

describe("Revocation (RFC 7009)", () => {
  let as: Awaited<ReturnType<typeof serve>>
  beforeAll(async () => {
    as = await serve({
      "/revoke": (_req, body) =>
        new URLSearchParams(body).get("client_secret") === "s3cret"
          ? [200, ""]
          : [
              401,
              { error: "invalid_client", error_description: `bad ${new URLSearchParams(body).get("token")}` }
            ]
    })
  })
  afterAll(() => as.close())
  const revoke = (secret: string) =>
    run(
      Revocation.revoke({
        revocationUrl: `${as.url}/revoke`,
        clientId: "app",
        clientAuth: "client_secret_post",
        secret: Redacted.make(secret),
        token: Redacted.make("refresh-token-value"),
        tokenTypeHint: "refresh_token"
      }).pipe(Effect.provide(FetchHttpClient.layer))
    )

  it("posts token, hint and client authentication", async () => {
    expect(Result.isSuccess(await revoke("s3cret"))).toBe(true)
    expect(Object.fromEntries(new URLSearchParams(as.seen.at(-1)!.body))).toEqual({
      token: "refresh-token-value",
      token_type_hint: "refresh_token",
      client_id: "app",
      client_secret: "s3cret"
    })
  })
  it("types a refusal, with the token scrubbed from the server's echo", async () => {
    const result = await revoke("wrong")
    expect(Result.isFailure(result)).toBe(true)
    if (Result.isFailure(result)) {
      expect(result.failure._tag).toBe("OAuthError")
      expect(result.failure.message).not.toContain("refresh-token-value")
    }
  })
})

describe("cookies and configuration", () => {
  it("reads only values of our shape", () => {
    const value = "a".repeat(43)
    expect(readCookie(`x=1; authfetch-session=${value}; authfetch-session=bad`, "authfetch-session")).toEqual(
      [value]
    )
    expect(readCookie(`authfetch-session="${value}"`, "authfetch-session")).toEqual([value])
    expect(readCookie(undefined, "authfetch-session")).toEqual([])
  })
  it("names every problem of a configuration at once, never a value", () => {
    const error = (() => {
      try {
        createUserSessions({
          clientId: "",
          clientSecret: "",
          scope: "openid",
          redirectUri: "http://app.example/cb",
          tokenUrl: "http://auth.example/token",
          cookieName: "__Host-x",
          idleTimeout: "soon" as never,
          authorizationParams: { state: "x" }
        })
      } catch (e) {
        return e
      }
    })() as InvalidConfigError
    expect(error).toBeInstanceOf(InvalidConfigError)
    expect(error.problems).toEqual([
      "clientId is required",
      "tokenUrl must be https: (http: is allowed for loopback hosts only)",
      "redirectUri must be https: (http: is allowed for loopback hosts only)",
      "issuer (or both authorizationUrl and tokenUrl) is required",
      "issuer is required with the openid scope (ID tokens are checked against it)",
      "a __Host- cookieName needs an https: redirectUri (browsers require Secure for it)",
      "idleTimeout is not a positive duration",
      "authorizationParams.state is set by the sign-in itself",
      "clientSecret is empty"
    ])
  })
  it("keys sessions by a digest of the id, and configurations by client", () => {
    const id = "b".repeat(43)
    expect(UserSessions.sessionKey(id)).toMatch(/^ss_[\w-]{43}$/)
    expect(UserSessions.sessionKey(id)).not.toContain(id)
    const base = { issuer: "https://a.example", clientId: "x", scope: "s", redirectUri: `${APP}/cb` }
    expect(UserSessions.clientKeyOf(base)).not.toBe(UserSessions.clientKeyOf({ ...base, clientId: "y" }))
  })
})

describe("sign-in presets", () => {
  it("wealthcareSignIn fills IdentityServer's endpoints on WealthCare's documented host", async () => {
    const { wealthcareSignIn } = await import("../src/providers/index.ts")
    const config = wealthcareSignIn({
      clientId: "app",
      clientSecret: "s3cret",
      redirectUri: `${APP}/auth/callback`,
      scope: "openid offline_access bensoft_api"
    })
    expect(config).toMatchObject({
      issuer: "https://beta.auth.wealthcare.com",
      authorizationUrl: "https://beta.auth.wealthcare.com/connect/authorize",
      tokenUrl: "https://beta.auth.wealthcare.com/connect/token",
      revocationUrl: "https://beta.auth.wealthcare.com/connect/revocation",
      clientAuth: "client_secret_post"
    })
    expect(String(config.clientSecret)).not.toContain("s3cret")
    const local = wealthcareSignIn({
      issuer: "http://127.0.0.1:9999",
      clientId: "app",
      redirectUri: `${APP}/cb`,
      scope: "x"
    })
    expect(local.tokenUrl).toBe("http://127.0.0.1:9999/connect/token")
  })
  it("signInFromEnv names every missing variable and never echoes the secret", async () => {
    const { signInFromEnv } = await import("../src/providers/index.ts")
    const missing = (() => {
      try {
        signInFromEnv("WEALTHCARE", { env: { WEALTHCARE_CLIENT_SECRET: "s3cret" } })
      } catch (error) {
        return error as InvalidConfigError
      }
    })()
    expect(missing?.problems).toEqual([
      "missing environment variables: WEALTHCARE_CLIENT_ID, WEALTHCARE_REDIRECT_URI, WEALTHCARE_SCOPE"
    ])
    const config = signInFromEnv("ACME", {
      env: {
        ACME_ISSUER: "https://auth.acme.example",
        ACME_CLIENT_ID: "app",
        ACME_CLIENT_SECRET: "s3cret",
        ACME_REDIRECT_URI: `${APP}/cb`,
        ACME_SCOPE: "openid"
      }
    })
    expect(config).toMatchObject({ issuer: "https://auth.acme.example", clientId: "app", scope: "openid" })
    expect(JSON.stringify(config)).not.toContain("s3cret")
    const insecure = (() => {
      try {
        signInFromEnv("ACME", {
          env: {
            ACME_CLIENT_ID: "a",
            ACME_REDIRECT_URI: "http://app.example/cb",
            ACME_SCOPE: "x",
            ACME_ISSUER: "http://auth.example"
          }
        })
      } catch (error) {
        return error as InvalidConfigError
      }
    })()
    expect(insecure?.problems).toEqual([
      "ACME_ISSUER must be https: (http: is allowed for loopback hosts only)",
      "ACME_REDIRECT_URI must be https: (http: is allowed for loopback hosts only)"
    ])
  })
})
