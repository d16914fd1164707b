/**
 * The OAuth 2.0 grants a token source can use, and the form parameters each
 * puts in a token request (RFC 6749 sections 4.1.3, 4.3.2, 4.4.2, 6), plus the
 * PKCE helpers of RFC 7636.
 *
 * @example
 * ```ts
 * import { Grant } from "@authfetch/core"
 *
 * const grant = Grant.authorizationCode({ code, redirectUri, codeVerifier })
 * ```
 *
 * @since 0.1.0
 */
import { Redacted } from "effect"

/**
 * RFC 6749 section 4.4: the client acts on its own behalf (WEX's only grant).
 *
 * @since 0.1.0
 */
export interface ClientCredentials {
  readonly type: "client_credentials"
}

/**
 * RFC 6749 section 4.1.3 with RFC 7636 PKCE: exchange an authorization code.
 * A code is single-use: once exchanged, only a refresh token renews access.
 *
 * @since 0.1.0
 */
export interface AuthorizationCode {
  readonly type: "authorization_code"
  readonly code: Redacted.Redacted<string>
  readonly redirectUri: string
  readonly codeVerifier?: Redacted.Redacted<string> | undefined
}

/**
 * RFC 6749 section 4.3: resource owner password credentials.
 *
 * @since 0.1.0
 */
export interface Password {
  readonly type: "password"
  readonly username: string
  readonly password: Redacted.Redacted<string>
}

/**
 * RFC 6749 section 6: start from a refresh token alone (for example one
 * persisted by `onTokenChange` in an earlier run).
 *
 * @since 0.1.0
 */
export interface RefreshToken {
  readonly type: "refresh_token"
  readonly refreshToken: Redacted.Redacted<string>
}

/**
 * Any grant a token source can be configured with.
 *
 * @since 0.1.0
 */
export type Grant = ClientCredentials | AuthorizationCode | Password | RefreshToken

const redact = (value: string | Redacted.Redacted<string>, label: string): Redacted.Redacted<string> =>
  Redacted.isRedacted(value) ? value : Redacted.make(value, { label })

/**
 * @example
 * ```ts
 * Grant.clientCredentials()
 * ```
 * @since 0.1.0
 */
export const clientCredentials = (): ClientCredentials => ({ type: "client_credentials" })

/**
 * @example
 * ```ts
 * Grant.authorizationCode({ code: query.code, redirectUri: "https://app.example/callback", codeVerifier })
 * ```
 * @since 0.1.0
 */
export const authorizationCode = (options: {
  readonly code: string | Redacted.Redacted<string>
  readonly redirectUri: string
  readonly codeVerifier?: string | Redacted.Redacted<string> | undefined
}): AuthorizationCode => ({
  type: "authorization_code",
  code: redact(options.code, "code"),
  redirectUri: options.redirectUri,
  codeVerifier: options.codeVerifier === undefined ? undefined : redact(options.codeVerifier, "code_verifier")
})

/**
 * @example
 * ```ts
 * Grant.password({ username: "svc-user", password: process.env.SVC_PASSWORD! })
 * ```
 * @since 0.1.0
 */
export const password = (options: {
  readonly username: string
  readonly password: string | Redacted.Redacted<string>
}): Password => ({
  type: "password",
  username: options.username,
  password: redact(options.password, "password")
})

/**
 * @example
 * ```ts
 * Grant.refreshToken(savedRefreshToken)
 * ```
 * @since 0.1.0
 */
export const refreshToken = (token: string | Redacted.Redacted<string>): RefreshToken => ({
  type: "refresh_token",
  refreshToken: redact(token, "refresh_token")
})

/**
 * Whether the grant can be sent again to get a new token once the first one
 * expired. An authorization code cannot (RFC 6749 section 4.1.2: single-use).
 * Neither can a configured refresh token: once used, it is superseded by the
 * one the response carries (or kept with the token), and re-sending a rotated
 * one is reuse, for which servers revoke the whole grant (RFC 9700 4.14.2).
 *
 * @since 0.1.0
 */
export const isRepeatable = (grant: Grant): boolean =>
  grant.type === "client_credentials" || grant.type === "password"

/**
 * The form parameters of a grant, secrets still wrapped (they are revealed only
 * when the request body is built).
 *
 * @example
 * ```ts
 * Grant.toParams(Grant.clientCredentials()) // [["grant_type", "client_credentials"]]
 * ```
 *
 * @since 0.1.0
 */
export const toParams = (
  grant: Grant
): ReadonlyArray<readonly [string, string | Redacted.Redacted<string>]> => {
  switch (grant.type) {
    case "client_credentials":
      return [["grant_type", "client_credentials"]]
    case "authorization_code":
      return [
        ["grant_type", "authorization_code"],
        ["code", grant.code],
        ["redirect_uri", grant.redirectUri],
        ...(grant.codeVerifier ? [["code_verifier", grant.codeVerifier] as const] : [])
      ]
    case "password":
      return [
        ["grant_type", "password"],
        ["username", grant.username],
        ["password", grant.password]
      ]
    case "refresh_token":
      return [
        ["grant_type", "refresh_token"],
        ["refresh_token", grant.refreshToken]
      ]
  }
}

const base64url = (bytes: Uint8Array): string => {
  let binary = ""
  for (const byte of bytes) binary += String.fromCharCode(byte)
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "")
}

/**
 * RFC 7636 section 4.1: a high-entropy `code_verifier` (32 random bytes,
 * base64url: 43 characters of the unreserved set).
 *
 * @example
 * ```ts
 * const verifier = Grant.generateCodeVerifier()
 * ```
 *
 * @since 0.1.0
 */
export const generateCodeVerifier = (): string => base64url(crypto.getRandomValues(new Uint8Array(32)))

/**
 * RFC 7636 section 4.2: `code_challenge = BASE64URL(SHA256(ASCII(code_verifier)))`,
 * method `S256`. Web Crypto, so it runs on Node and edge runtimes alike.
 *
 * @example
 * ```ts
 * const challenge = await Grant.codeChallengeS256(verifier)
 * const url = `${authorizeUrl}?code_challenge=${challenge}&code_challenge_method=S256&...`
 * ```
 *
 * @since 0.1.0
 */
export const codeChallengeS256 = async (verifier: string): Promise<string> => {
  if (!/^[A-Za-z0-9\-._~]{43,128}$/.test(verifier)) {
    throw new RangeError("code_verifier must be 43-128 characters of [A-Za-z0-9-._~] (RFC 7636 section 4.1)")
  }
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier))
  return base64url(new Uint8Array(digest))
}
