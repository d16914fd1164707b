/**
 * Interoperability with panva's oidc-provider (a certified OpenID Connect and
 * OAuth 2.0 server), run in-process on 127.0.0.1. Every request crosses a real
 * socket and is judged by the provider's own client authentication, PKCE and
 * refresh-token rotation code.
 */
import { Redacted } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import {
  type AccessToken,
  createTokenSource,
  Grant,
  InvalidConfigError,
  OAuthError,
  type TokenEvent,
  type TokenSourceConfig,
  type TokenSourceHandle
} from "../src/index.ts"
import {
  CLIENTS,
  HOSTILE_SECRET,
  type OidcProvider,
  REDIRECT_URI,
  startOidcProvider
} from "./support/oidcProvider.ts"

const CLIENT_CREDENTIALS_TTL = 120
const ACCESS_TOKEN_TTL = 300

const sources: Array<TokenSourceHandle> = []
const open = (config: TokenSourceConfig): TokenSourceHandle => {
  const handle = createTokenSource(config)
  sources.push(handle)
  return handle
}

/** The rejection of a promise that must reject. */
const rejectionOf = async (promise: Promise<unknown>): Promise<unknown> => {
  try {
    await promise
  } catch (error) {
    return error
  }
  throw new Error("expected a rejection")
}

const refreshValue = (token: AccessToken): string => {
  expect(token.refreshToken).toBeDefined()
  return Redacted.value(token.refreshToken!)
}

let op: OidcProvider

beforeAll(async () => {
  op = await startOidcProvider({
    clientCredentialsTtl: CLIENT_CREDENTIALS_TTL,
    accessTokenTtl: ACCESS_TOKEN_TTL
  })
})

afterAll(async () => {
  await Promise.all(sources.map((source) => source.dispose()))
  const errors = op?.serverErrors ?? []
  await op?.close()
  expect(errors).toEqual([])
})

/** A fresh authorization code from the real /auth endpoint, with its PKCE verifier. */
const authorize = async (scope = "openid offline_access") => {
  const codeVerifier = Grant.generateCodeVerifier()
  const code = await op.authorize({
    clientId: CLIENTS.code.clientId,
    scope,
    codeChallenge: await Grant.codeChallengeS256(codeVerifier)
  })
  return { code, codeVerifier }
}

/** The token endpoint and credentials of the PKCE client, for `open({ ...codeClient(), ... })`. */
const codeClient = () => ({
  tokenUrl: op.tokenUrl,
  clientId: CLIENTS.code.clientId,
  clientSecret: CLIENTS.code.clientSecret
})

/** Exchanges a fresh code in a source that is then disposed; returns the refresh token it persisted. */
const persistedRefreshToken = async (): Promise<Redacted.Redacted<string>> => {
  const { code, codeVerifier } = await authorize()
  let persisted: Redacted.Redacted<string> | undefined
  const earlier = open({
    ...codeClient(),
    grant: Grant.authorizationCode({ code, redirectUri: REDIRECT_URI, codeVerifier }),
    scope: "openid offline_access",
    onTokenChange: (token) => {
      persisted = token.refreshToken
    }
  })
  await earlier.getToken()
  await earlier.dispose()
  expect(persisted).toBeDefined()
  return persisted!
}

describe("oidc-provider interop: client_credentials", () => {
  it("client_secret_post: 50 concurrent callers, one request; lifetime and value accepted", async () => {
    op.counters.reset()
    const tokens = open({
      tokenUrl: op.tokenUrl,
      clientId: CLIENTS.ccPost.clientId,
      clientSecret: CLIENTS.ccPost.clientSecret,
      scope: ["api:read", "api:write"]
    })
    const results = await Promise.all(Array.from({ length: 50 }, () => tokens.getToken()))

    expect(op.counters.requests).toEqual([
      {
        grantType: "client_credentials",
        clientId: "cc-post",
        authorization: "none",
        status: 200,
        error: undefined
      }
    ])
    expect(new Set(results.map((t) => t.id)).size).toBe(1)
    const token = results[0]!
    expect(token.tokenType).toBe("Bearer")
    expect(token.expiresAt - token.receivedAt).toBe(CLIENT_CREDENTIALS_TTL * 1000)
    expect(token.scope).toBe("api:read api:write")
    expect(token.refreshToken).toBeUndefined()
    expect(token.authorization()).toBe(`Bearer ${token.reveal()}`)

    // the provider recognises the value as the token it issued to this client
    const introspection = await op.introspect(token.reveal(), CLIENTS.ccPost)
    expect(introspection).toMatchObject({
      active: true,
      client_id: "cc-post",
      token_type: "Bearer",
      scope: "api:read api:write"
    })
    expect(Number(introspection.exp) - Number(introspection.iat)).toBe(CLIENT_CREDENTIALS_TTL)

    // and a cached token is served without another request
    expect((await tokens.getToken()).id).toBe(token.id)
    expect(op.counters.count()).toBe(1)
  })

  it("client_secret_basic: a secret with : + % space is form-encoded (RFC 6749 2.3.1)", async () => {
    // control: the same secret in a Basic header WITHOUT form-encoding is refused by
    // the provider, so the success below depends on the encoding step
    const raw = Buffer.from(`${CLIENTS.ccBasic.clientId}:${HOSTILE_SECRET}`, "utf8").toString("base64")
    const control = await fetch(op.tokenUrl, {
      method: "POST",
      headers: { authorization: `Basic ${raw}`, "content-type": "application/x-www-form-urlencoded" },
      body: "grant_type=client_credentials"
    })
    expect(control.status).toBe(400)
    expect(await control.json()).toMatchObject({ error: "invalid_request" })

    op.counters.reset()
    const events: Array<TokenEvent> = []
    const tokens = open({
      tokenUrl: op.tokenUrl,
      clientId: CLIENTS.ccBasic.clientId,
      clientSecret: HOSTILE_SECRET,
      clientAuth: "client_secret_basic",
      scope: "api:read",
      onEvent: (event) => events.push(event)
    })
    const token = await tokens.getToken()
    expect(op.counters.requests).toEqual([
      {
        grantType: "client_credentials",
        clientId: "cc-basic",
        authorization: "basic",
        status: 200,
        error: undefined
      }
    ])
    expect(await op.introspect(token.reveal(), CLIENTS.ccPost)).toMatchObject({
      active: true,
      client_id: "cc-basic"
    })
    expect(events.map((e) => e.type)).toEqual(["token_requested", "token_acquired"])

    // the same through an async secret provider returning a Redacted
    const viaProvider = open({
      tokenUrl: op.tokenUrl,
      clientId: CLIENTS.ccBasic.clientId,
      clientSecret: async () => Redacted.make(HOSTILE_SECRET),
      clientAuth: "client_secret_basic",
      scope: "api:read"
    })
    const second = await viaProvider.getToken()
    expect(second.reveal()).not.toBe(token.reveal())
    expect(op.counters.count({ clientId: "cc-basic", grantType: "client_credentials" })).toBe(2)
    expect(op.counters.requests.every((r) => r.status === 200)).toBe(true)
  })

  it("a wrong secret rejects with invalid_client after exactly one request", async () => {
    op.counters.reset()
    const events: Array<TokenEvent> = []
    const tokens = open({
      tokenUrl: op.tokenUrl,
      clientId: CLIENTS.ccPost.clientId,
      clientSecret: "not-the-secret",
      onEvent: (event) => events.push(event)
    })
    const error = await rejectionOf(tokens.getToken())
    expect(error).toBeInstanceOf(OAuthError)
    expect(error).toMatchObject({ code: "invalid_client", status: 401 })
    expect(op.counters.requests).toEqual([
      {
        grantType: "client_credentials",
        clientId: "cc-post",
        authorization: "none",
        status: 401,
        error: "invalid_client"
      }
    ])
    expect(events.filter((e) => e.type === "token_request_failed")).toMatchObject([
      {
        grantType: "client_credentials",
        error: "OAuthError",
        code: "invalid_client",
        status: 401,
        willRetry: false
      }
    ])

    // Basic with a wrong secret: also exactly one request
    op.counters.reset()
    const basic = open({
      tokenUrl: op.tokenUrl,
      clientId: CLIENTS.ccBasic.clientId,
      clientSecret: `${HOSTILE_SECRET}x`,
      clientAuth: "client_secret_basic"
    })
    expect(await rejectionOf(basic.getToken())).toMatchObject({ _tag: "OAuthError", code: "invalid_client" })
    expect(op.counters.count()).toBe(1)
  })

  it("invalid_client, async secret provider: asked once more, resends only a changed secret", async () => {
    // the provider keeps returning the same wrong secret: no second request
    op.counters.reset()
    let calls = 0
    const stuck = open({
      tokenUrl: op.tokenUrl,
      clientId: CLIENTS.ccPost.clientId,
      clientSecret: async () => {
        calls++
        return "still-wrong"
      }
    })
    expect(await rejectionOf(stuck.getToken())).toMatchObject({ _tag: "OAuthError", code: "invalid_client" })
    expect(op.counters.count()).toBe(1)
    expect(calls).toBe(2)

    // the secret was rotated in the vault meanwhile: the second try succeeds
    op.counters.reset()
    const secrets = ["old-secret", CLIENTS.ccPost.clientSecret]
    const rotated = open({
      tokenUrl: op.tokenUrl,
      clientId: CLIENTS.ccPost.clientId,
      clientSecret: async () => secrets.shift() ?? CLIENTS.ccPost.clientSecret
    })
    const token = await rotated.getToken()
    expect(token.tokenType).toBe("Bearer")
    expect(op.counters.requests.map((r) => [r.status, r.error])).toEqual([
      [401, "invalid_client"],
      [200, undefined]
    ])
  })

  it("a scope the client may not request: invalid_scope, one request", async () => {
    op.counters.reset()
    const tokens = open({
      tokenUrl: op.tokenUrl,
      clientId: CLIENTS.ccPost.clientId,
      clientSecret: CLIENTS.ccPost.clientSecret,
      scope: "api:read api:admin"
    })
    const error = await rejectionOf(tokens.getToken())
    expect(error).toBeInstanceOf(OAuthError)
    expect(error).toMatchObject({
      code: "invalid_scope",
      status: 400,
      description: "requested scope is not allowed"
    })
    expect(op.counters.requests).toEqual([
      {
        grantType: "client_credentials",
        clientId: "cc-post",
        authorization: "none",
        status: 400,
        error: "invalid_scope"
      }
    ])
  })

  it("a grant the server does not support (password): unsupported_grant_type, one request", async () => {
    op.counters.reset()
    const tokens = open({
      tokenUrl: op.tokenUrl,
      clientId: CLIENTS.ccPost.clientId,
      clientSecret: CLIENTS.ccPost.clientSecret,
      grant: Grant.password({ username: "alice", password: "wonderland" })
    })
    const error = await rejectionOf(tokens.getToken())
    expect(error).toBeInstanceOf(OAuthError)
    expect(error).toMatchObject({
      code: "unsupported_grant_type",
      status: 400,
      description: "unsupported grant_type requested"
    })
    expect(op.counters.requests).toEqual([
      {
        grantType: "password",
        clientId: "cc-post",
        authorization: "none",
        status: 400,
        error: "unsupported_grant_type"
      }
    ])
  })
})

describe("oidc-provider interop: authorization_code with PKCE, rotating refresh tokens", () => {
  it("exchanges a code from the real /auth flow (S256) and gets a refresh token", async () => {
    const { code, codeVerifier } = await authorize()
    op.counters.reset()
    const tokens = open({
      ...codeClient(),
      grant: Grant.authorizationCode({ code, redirectUri: REDIRECT_URI, codeVerifier }),
      scope: "openid offline_access"
    })
    const token = await tokens.getToken()
    expect(op.counters.requests).toEqual([
      {
        grantType: "authorization_code",
        clientId: "code-pkce",
        authorization: "none",
        status: 200,
        error: undefined
      }
    ])
    expect(token.tokenType).toBe("Bearer")
    expect(token.scope).toBe("openid offline_access")
    expect(token.expiresAt - token.receivedAt).toBe(ACCESS_TOKEN_TTL * 1000)
    const refreshToken = await op.provider.RefreshToken.find(refreshValue(token))
    expect(refreshToken).toMatchObject({
      clientId: "code-pkce",
      scope: "openid offline_access",
      isValid: true
    })
    expect(await op.introspect(token.reveal(), CLIENTS.code)).toMatchObject({
      active: true,
      client_id: "code-pkce"
    })
  })

  it("a wrong code_verifier: invalid_grant, one request", async () => {
    const { code } = await authorize()
    op.counters.reset()
    const tokens = open({
      ...codeClient(),
      grant: Grant.authorizationCode({
        code,
        redirectUri: REDIRECT_URI,
        codeVerifier: Grant.generateCodeVerifier()
      }),
      scope: "openid offline_access"
    })
    const error = await rejectionOf(tokens.getToken())
    expect(error).toBeInstanceOf(OAuthError)
    expect(error).toMatchObject({ code: "invalid_grant", status: 400 })
    expect(op.counters.requests).toEqual([
      {
        grantType: "authorization_code",
        clientId: "code-pkce",
        authorization: "none",
        status: 400,
        error: "invalid_grant"
      }
    ])
  })

  it("after invalidate, renews with the rotated refresh token, three times in a row", async () => {
    const { code, codeVerifier } = await authorize()
    op.counters.reset()
    const changed: Array<AccessToken> = []
    const events: Array<TokenEvent> = []
    const tokens = open({
      ...codeClient(),
      grant: Grant.authorizationCode({ code, redirectUri: REDIRECT_URI, codeVerifier }),
      scope: "openid offline_access",
      onTokenChange: (token) => {
        changed.push(token)
      },
      onEvent: (event) => events.push(event)
    })
    const first = await tokens.getToken()
    expect(op.counters.byGrantType).toEqual({ authorization_code: 1 })

    const seen = [first]
    for (let round = 1; round <= 3; round++) {
      const previous = seen[seen.length - 1]!
      await tokens.invalidate(previous)
      const next = await tokens.getToken()
      expect(op.counters.byGrantType).toEqual({ authorization_code: 1, refresh_token: round })
      expect(op.counters.requests.at(-1)).toMatchObject({ grantType: "refresh_token", status: 200 })
      expect(next.id).not.toBe(previous.id)
      expect(next.reveal()).not.toBe(previous.reveal())
      // rotation: a new refresh token, and the provider marked the old one consumed
      expect(refreshValue(next)).not.toBe(refreshValue(previous))
      const old = await op.provider.RefreshToken.find(refreshValue(previous))
      expect(old?.consumed).toBeTruthy()
      expect(old?.isValid).toBe(false)
      const current = await op.provider.RefreshToken.find(refreshValue(next))
      expect(current).toMatchObject({ isValid: true, rotations: round })
      expect(next.scope).toBe("openid offline_access")
      expect(await op.introspect(next.reveal(), CLIENTS.code)).toMatchObject({
        active: true,
        client_id: "code-pkce"
      })
      seen.push(next)
    }

    expect(changed.map((t) => t.id)).toEqual(seen.map((t) => t.id))
    expect(new Set(changed.map(refreshValue)).size).toBe(4)
    expect(
      events.filter((e) => e.type === "token_acquired").map((e) => [e.grantType, e.reason, e.hasRefreshToken])
    ).toEqual([
      ["authorization_code", "initial", true],
      ["refresh_token", "invalidated", true],
      ["refresh_token", "invalidated", true],
      ["refresh_token", "invalidated", true]
    ])
    expect(events.some((e) => e.type === "refresh_token_rejected")).toBe(false)
  })

  it("50 concurrent callers after invalidate: one refresh (a reuse would revoke the grant)", async () => {
    const { code, codeVerifier } = await authorize()
    const tokens = open({
      ...codeClient(),
      grant: Grant.authorizationCode({ code, redirectUri: REDIRECT_URI, codeVerifier }),
      scope: "openid offline_access"
    })
    const first = await tokens.getToken()
    op.counters.reset()
    await tokens.invalidate(first)
    const results = await Promise.all(Array.from({ length: 50 }, () => tokens.getToken()))
    expect(new Set(results.map((t) => t.id)).size).toBe(1)
    expect(op.counters.requests).toEqual([
      {
        grantType: "refresh_token",
        clientId: "code-pkce",
        authorization: "none",
        status: 200,
        error: undefined
      }
    ])
    // the grant survived: had the old refresh token been sent twice, oidc-provider would
    // have revoked every token of the grant
    expect(await op.introspect(results[0]!.reveal(), CLIENTS.code)).toMatchObject({ active: true })
    expect(await op.introspect(first.reveal(), CLIENTS.code)).toMatchObject({ active: true })
  })

  it("a refresh token persisted by onTokenChange starts a new source and keeps rotating", async () => {
    const persisted = await persistedRefreshToken()

    op.counters.reset()
    const later = open({
      ...codeClient(),
      grant: Grant.refreshToken(persisted)
    })
    const first = await later.getToken()
    expect(first.scope).toBe("openid offline_access")
    expect(refreshValue(first)).not.toBe(Redacted.value(persisted))
    await later.invalidate(first)
    const second = await later.getToken()
    await later.invalidate(second)
    const third = await later.getToken()
    expect(op.counters.requests.map((r) => [r.grantType, r.status])).toEqual([
      ["refresh_token", 200],
      ["refresh_token", 200],
      ["refresh_token", 200]
    ])
    expect(new Set([first, second, third].map(refreshValue)).size).toBe(3)
    expect(await op.provider.RefreshToken.find(refreshValue(third))).toMatchObject({
      isValid: true,
      rotations: 3
    })
  })

  // Regression: a refresh_token grant is not repeatable; re-sending a rotated-away refresh
  // token is reuse, for which oidc-provider revokes the whole grant.
  it("a rejected rotated refresh token is not followed by the superseded one", async () => {
    const persisted = await persistedRefreshToken()

    const events: Array<TokenEvent> = []
    const later = open({
      ...codeClient(),
      grant: Grant.refreshToken(persisted),
      onEvent: (event) => events.push(event)
    })
    const token = await later.getToken()
    // the server forgets the current refresh token only (the grant stays valid)
    await (await op.provider.RefreshToken.find(refreshValue(token)))!.destroy()

    op.counters.reset()
    await later.invalidate(token)
    const error = await rejectionOf(later.getToken())
    expect(error).toMatchObject({ _tag: "OAuthError", code: "invalid_grant" })
    // expected: one rejected refresh request, and the grant (with its access token) intact
    expect(op.counters.requests.map((r) => [r.grantType, r.status])).toEqual([["refresh_token", 400]])
    // the rejection is reported (an app must re-authorize), and nothing is resent afterwards
    expect(events.filter((e) => e.type === "refresh_token_rejected")).toHaveLength(1)
    expect(await rejectionOf(later.getToken())).toMatchObject({ _tag: "OAuthError", code: "invalid_grant" })
    expect(op.counters.requests).toHaveLength(1)
    expect(await op.introspect(token.reveal(), CLIENTS.code)).toMatchObject({ active: true })
  })

  it("a revoked refresh token of a spent code: invalid_grant, the code is not sent again", async () => {
    const { code, codeVerifier } = await authorize()
    const events: Array<TokenEvent> = []
    const tokens = open({
      ...codeClient(),
      grant: Grant.authorizationCode({ code, redirectUri: REDIRECT_URI, codeVerifier }),
      scope: "openid offline_access",
      onEvent: (event) => events.push(event)
    })
    const token = await tokens.getToken()
    expect(await op.revoke(refreshValue(token), CLIENTS.code, "refresh_token")).toBe(200)
    expect(await op.provider.RefreshToken.find(refreshValue(token))).toBeUndefined()

    op.counters.reset()
    await tokens.invalidate(token)
    const error = await rejectionOf(tokens.getToken())
    expect(error).toBeInstanceOf(OAuthError)
    expect(error).toMatchObject({ code: "invalid_grant", status: 400 })
    expect(op.counters.requests).toEqual([
      {
        grantType: "refresh_token",
        clientId: "code-pkce",
        authorization: "none",
        status: 400,
        error: "invalid_grant"
      }
    ])
    expect(events.filter((e) => e.type === "refresh_token_rejected")).toHaveLength(1)
    expect(error).not.toBeInstanceOf(InvalidConfigError)
  })
})

describe("oidc-provider interop: refresh token rejected, repeatable grant", () => {
  it("an unknown refresh token falls back to client_credentials", async () => {
    op.counters.reset()
    const events: Array<TokenEvent> = []
    const tokens = open({
      tokenUrl: op.tokenUrl,
      clientId: CLIENTS.ccRefresh.clientId,
      clientSecret: CLIENTS.ccRefresh.clientSecret,
      scope: "api:read",
      refreshToken: "bogus",
      onEvent: (event) => events.push(event)
    })
    const token = await tokens.getToken()
    expect(op.counters.requests).toEqual([
      {
        grantType: "refresh_token",
        clientId: "cc-refresh",
        authorization: "none",
        status: 400,
        error: "invalid_grant"
      },
      {
        grantType: "client_credentials",
        clientId: "cc-refresh",
        authorization: "none",
        status: 200,
        error: undefined
      }
    ])
    expect(
      events.map((e) => [e.type, "grantType" in e ? e.grantType : "code" in e ? e.code : undefined])
    ).toEqual([
      ["token_requested", "refresh_token"],
      ["token_request_failed", "refresh_token"],
      ["refresh_token_rejected", "invalid_grant"],
      ["token_requested", "client_credentials"],
      ["token_acquired", "client_credentials"]
    ])
    expect(token.refreshToken).toBeUndefined()
    expect(token.expiresAt - token.receivedAt).toBe(CLIENT_CREDENTIALS_TTL * 1000)
    expect(await op.introspect(token.reveal(), CLIENTS.ccRefresh)).toMatchObject({
      active: true,
      client_id: "cc-refresh",
      scope: "api:read"
    })

    // the rejected refresh token is forgotten: the next renewal goes straight to the grant
    op.counters.reset()
    await tokens.invalidate(token)
    await tokens.getToken()
    expect(op.counters.byGrantType).toEqual({ client_credentials: 1 })
  })
})

describe("oidc-provider interop: short-lived tokens", () => {
  let shortLived: OidcProvider

  beforeAll(async () => {
    shortLived = await startOidcProvider({ accessTokenTtl: 3 })
  })

  afterAll(async () => {
    await shortLived?.close()
  })

  it("refreshes ahead in the background with the rotated refresh token before expiry", async () => {
    const codeVerifier = Grant.generateCodeVerifier()
    const code = await shortLived.authorize({
      clientId: CLIENTS.code.clientId,
      scope: "openid offline_access",
      codeChallenge: await Grant.codeChallengeS256(codeVerifier)
    })
    shortLived.counters.reset()
    const acquired: Array<TokenEvent> = []
    let resolveRefreshed: () => void = () => {}
    const refreshed = new Promise<void>((resolve) => {
      resolveRefreshed = resolve
    })
    const tokens = open({
      tokenUrl: shortLived.tokenUrl,
      clientId: CLIENTS.code.clientId,
      clientSecret: CLIENTS.code.clientSecret,
      grant: Grant.authorizationCode({ code, redirectUri: REDIRECT_URI, codeVerifier }),
      scope: "openid offline_access",
      onEvent: (event) => {
        if (event.type !== "token_acquired") return
        acquired.push(event)
        if (event.reason === "refresh_ahead") resolveRefreshed()
      }
    })
    const first = await tokens.getToken()
    expect(first.expiresAt - first.receivedAt).toBe(3000)

    let timer: ReturnType<typeof setTimeout> | undefined
    await Promise.race([
      refreshed,
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error("no refresh ahead within 5 s")), 5000)
      })
    ]).finally(() => clearTimeout(timer))
    const second = await tokens.getToken()
    expect(Date.now()).toBeLessThan(first.expiresAt)
    expect(second.id).not.toBe(first.id)
    expect(refreshValue(second)).not.toBe(refreshValue(first))
    expect(shortLived.counters.byGrantType).toEqual({ authorization_code: 1, refresh_token: 1 })
    expect(acquired.map((e) => (e.type === "token_acquired" ? [e.grantType, e.reason] : []))).toEqual([
      ["authorization_code", "initial"],
      ["refresh_token", "refresh_ahead"]
    ])
    expect(shortLived.serverErrors).toEqual([])
    // before the next background refresh, which would find the provider closed
    await tokens.dispose()
  })
})
