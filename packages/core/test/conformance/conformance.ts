/**
 * Token-engine conformance: one table of token-endpoint scenarios, run against
 * every authorization server we claim to work with (panva's oidc-provider, and
 * both profiles of @authfetch/sandbox), for the grants each supports.
 */
import { Redacted } from "effect"
import { expect } from "vitest"
import {
  createTokenSource,
  Grant,
  OAuthError,
  type TokenEvent,
  type TokenSourceConfig,
  type TokenSourceHandle
} from "../../src/index.ts"

export interface Credentials {
  readonly clientId: string
  readonly clientSecret: string
}

export interface ConformanceServer {
  readonly name: string
  readonly tokenUrl: string
  /** a confidential client allowed client_credentials with client_secret_post */
  readonly clientCredentials?: Credentials | undefined
  /** a client allowed client_credentials with client_secret_basic */
  readonly basic?: Credentials | undefined
  /** a client allowed authorization_code with PKCE S256 and refresh tokens */
  readonly code?:
    | (Credentials & {
        readonly redirectUri: string
        readonly scope: string
        /** runs the server's authorization endpoint and returns a code */
        readonly authorize: (codeChallenge: string) => Promise<string>
      })
    | undefined
  /** a client and user for the password grant */
  readonly password?: (Credentials & { readonly username: string; readonly password: string }) | undefined
  /** a grant this server answers with unsupported_grant_type, with a client to ask */
  readonly unsupported?: { readonly client: Credentials; readonly grant: Grant.Grant } | undefined
  /** token endpoint requests so far */
  readonly tokenRequests: () => number
}

/** What a server supports, known before it starts (so no test is generated only to be skipped). */
export type Capability = "clientCredentials" | "basic" | "code" | "password" | "unsupported"

export interface ConformanceScenario {
  readonly name: string
  readonly needs: Capability
  readonly run: (
    server: ConformanceServer,
    open: (config: TokenSourceConfig) => TokenSourceHandle
  ) => Promise<void>
}

const rejection = (promise: Promise<unknown>) =>
  promise.then(
    () => {
      throw new Error("expected a rejection")
    },
    (error: unknown) => error
  )

/** Exchanges a fresh code for a token source that then holds the refresh token. */
const codeSource = async (
  server: ConformanceServer,
  open: (config: TokenSourceConfig) => TokenSourceHandle,
  extra: Partial<TokenSourceConfig> = {}
) => {
  const code = server.code!
  const codeVerifier = Grant.generateCodeVerifier()
  const authorizationCode = await code.authorize(await Grant.codeChallengeS256(codeVerifier))
  return open({
    tokenUrl: server.tokenUrl,
    clientId: code.clientId,
    clientSecret: code.clientSecret,
    grant: Grant.authorizationCode({ code: authorizationCode, redirectUri: code.redirectUri, codeVerifier }),
    scope: code.scope,
    ...extra
  })
}

export const conformance: ReadonlyArray<ConformanceScenario> = [
  {
    name: "client_credentials with client_secret_post: 20 concurrent callers, 1 token request",
    needs: "clientCredentials",
    run: async (server, open) => {
      const before = server.tokenRequests()
      const tokens = open({ tokenUrl: server.tokenUrl, ...server.clientCredentials! })
      const results = await Promise.all(Array.from({ length: 20 }, () => tokens.getToken()))
      expect(server.tokenRequests() - before).toBe(1)
      expect(new Set(results.map((t) => t.id)).size).toBe(1)
      expect(results[0]!.authorization()).toMatch(/^Bearer \S+$/)
      expect(results[0]!.expiresAt).toBeGreaterThan(results[0]!.receivedAt)
    }
  },
  {
    name: "client_credentials with client_secret_basic (RFC 6749 2.3.1 encoding)",
    needs: "basic",
    run: async (server, open) => {
      const tokens = open({ tokenUrl: server.tokenUrl, ...server.basic!, clientAuth: "client_secret_basic" })
      expect((await tokens.getToken()).reveal().length).toBeGreaterThan(0)
    }
  },
  {
    name: "a wrong secret: OAuthError invalid_client after exactly 1 request",
    needs: "clientCredentials",
    run: async (server, open) => {
      const before = server.tokenRequests()
      const tokens = open({
        tokenUrl: server.tokenUrl,
        clientId: server.clientCredentials!.clientId,
        clientSecret: "definitely-wrong"
      })
      const error = await rejection(tokens.getToken())
      expect(error).toBeInstanceOf(OAuthError)
      expect(error).toMatchObject({ code: "invalid_client" })
      expect(server.tokenRequests() - before).toBe(1)
    }
  },
  {
    name: "an unsupported grant: OAuthError unsupported_grant_type, not retried",
    needs: "unsupported",
    run: async (server, open) => {
      const before = server.tokenRequests()
      const { client, grant } = server.unsupported!
      const error = await rejection(open({ tokenUrl: server.tokenUrl, ...client, grant }).getToken())
      expect(error).toMatchObject({ _tag: "OAuthError", code: "unsupported_grant_type" })
      expect(server.tokenRequests() - before).toBe(1)
    }
  },
  {
    name: "authorization_code with PKCE: a token and a refresh token",
    needs: "code",
    run: async (server, open) => {
      const token = await (await codeSource(server, open)).getToken()
      expect(token.refreshToken).toBeDefined()
      expect(token.scope?.split(" ")).toContain("offline_access")
    }
  },
  {
    name: "authorization_code with a wrong code_verifier: invalid_grant",
    needs: "code",
    run: async (server, open) => {
      const code = server.code!
      const authorizationCode = await code.authorize(
        await Grant.codeChallengeS256(Grant.generateCodeVerifier())
      )
      const tokens = open({
        tokenUrl: server.tokenUrl,
        clientId: code.clientId,
        clientSecret: code.clientSecret,
        grant: Grant.authorizationCode({
          code: authorizationCode,
          redirectUri: code.redirectUri,
          codeVerifier: Grant.generateCodeVerifier()
        }),
        scope: code.scope
      })
      expect(await rejection(tokens.getToken())).toMatchObject({ _tag: "OAuthError", code: "invalid_grant" })
    }
  },
  {
    name: "refresh_token with rotation: each renewal uses the newest refresh token",
    needs: "code",
    run: async (server, open) => {
      const refreshTokens: Array<string> = []
      const tokens = await codeSource(server, open, {
        onTokenChange: (t) => void refreshTokens.push(t.refreshToken ? Redacted.value(t.refreshToken) : "")
      })
      let token = await tokens.getToken()
      for (let round = 0; round < 3; round++) {
        await tokens.invalidate(token)
        const next = await tokens.getToken()
        expect(next.reveal()).not.toBe(token.reveal())
        token = next
      }
      expect(refreshTokens).toHaveLength(4)
      expect(new Set(refreshTokens).size).toBe(4)
    }
  },
  {
    name: "a refresh token reused after rotation is refused (and the source reports it)",
    needs: "code",
    run: async (server, open) => {
      const seen: Array<string> = []
      const first = await codeSource(server, open, {
        onTokenChange: (t) => void seen.push(t.refreshToken ? Redacted.value(t.refreshToken) : "")
      })
      const token = await first.getToken()
      await first.invalidate(token)
      await first.getToken() // rotates: seen[0] is now spent
      const events: Array<TokenEvent> = []
      const replay = open({
        tokenUrl: server.tokenUrl,
        clientId: server.code!.clientId,
        clientSecret: server.code!.clientSecret,
        grant: Grant.refreshToken(seen[0]!),
        onEvent: (e) => events.push(e)
      })
      expect(await rejection(replay.getToken())).toMatchObject({ _tag: "OAuthError", code: "invalid_grant" })
    }
  },
  {
    name: "password grant",
    needs: "password",
    run: async (server, open) => {
      const p = server.password!
      const tokens = open({
        tokenUrl: server.tokenUrl,
        clientId: p.clientId,
        clientSecret: p.clientSecret,
        grant: Grant.password({ username: p.username, password: p.password })
      })
      expect((await tokens.getToken()).reveal().length).toBeGreaterThan(0)
      const wrong = open({
        tokenUrl: server.tokenUrl,
        clientId: p.clientId,
        clientSecret: p.clientSecret,
        grant: Grant.password({ username: p.username, password: "wrong-password" })
      })
      expect(await rejection(wrong.getToken())).toMatchObject({ _tag: "OAuthError", code: "invalid_grant" })
    }
  }
]

/** A token-source factory that disposes what it opened. */
export const opener = () => {
  const opened: Array<TokenSourceHandle> = []
  return {
    open: (config: TokenSourceConfig) => {
      const handle = createTokenSource({ rateLimit: false, ...config })
      opened.push(handle)
      return handle
    },
    disposeAll: () => Promise.all(opened.splice(0).map((h) => h.dispose()))
  }
}
