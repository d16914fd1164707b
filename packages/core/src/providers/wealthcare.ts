/**
 * The WealthCare Access preset, from WealthCare's "Request an Access Token"
 * reference:
 *
 * - Token endpoint `https://beta.auth.wealthcare.com/connect/token`, the only one
 *   documented. Its host says "beta": ask WealthCare for the endpoint of your
 *   environment and pass it as `tokenUrl`.
 * - Grants `client_credentials`, `authorization_code` (with PKCE `code_verifier`
 *   and `redirect_uri`, RFC 7636), `refresh_token` and `password`, as
 *   `application/x-www-form-urlencoded`, the client credentials in the form body
 *   (`client_secret_post`, RFC 6749 section 2.3.1).
 * - `scope` is space-delimited (RFC 6749 section 3.3), e.g.
 *   `bensoft_api mbi_api offline_access`. The `offline_access` scope is what
 *   gets a `refresh_token` in the response (the OpenID Connect convention).
 *   The preset never adds it: ask for it when you want refresh tokens.
 * - Sample response: `expires_in: 3600`.
 *
 * No API base URL and no rate limit are documented: `baseUrl` is whatever you
 * pass, and the core's default client-side limit (100 token requests a minute)
 * applies.
 *
 * @example
 * ```ts
 * import { createTokenSource } from "@authfetch/core"
 * import { wealthcare } from "@authfetch/core/providers"
 *
 * const tokens = createTokenSource(
 *   wealthcare({ clientId, clientSecret, scope: ["bensoft_api", "mbi_api"] })
 * )
 * ```
 *
 * @since 0.1.0
 */
import type { TokenSourceConfig } from "../Config.ts"
import * as Grant from "../Grant.ts"
import { definedOnly, finish, type ProviderConfig } from "./preset.ts"

/** The only token endpoint WealthCare documents (a "beta" host). */
const TOKEN_URL = "https://beta.auth.wealthcare.com/connect/token"

/** WealthCare's sample token response: `expires_in: 3600`. */
const TOKEN_LIFETIME = "3600 seconds"

/**
 * Options of `wealthcare`. Besides the client and the grant, any
 * `TokenSourceConfig` option may be given and overrides the preset's choice.
 *
 * @example
 * ```ts
 * const options: WealthCareOptions = {
 *   clientId,
 *   grant: Grant.password({ username, password }),
 *   scope: "bensoft_api offline_access"
 * }
 * ```
 *
 * @since 0.1.0
 */
export interface WealthCareOptions extends Partial<Omit<TokenSourceConfig, "tokenUrl" | "clientId">> {
  readonly clientId: string
  /**
   * Required by the client credentials grant (RFC 6749 section 4.4: confidential
   * clients only); a public client omits it for the other grants.
   */
  readonly clientSecret?: TokenSourceConfig["clientSecret"]
  /** default: client credentials; any of the four grants WealthCare documents */
  readonly grant?: Grant.Grant | undefined
  /**
   * Space-delimited or a list. Include `offline_access` to get a refresh token
   * (needed to keep an authorization code grant going past the first token).
   */
  readonly scope?: string | ReadonlyArray<string> | undefined
  /** default: `https://beta.auth.wealthcare.com/connect/token` */
  readonly tokenUrl?: string | undefined
  /** where the WealthCare API you call lives (not documented with the token endpoint) */
  readonly baseUrl?: string | undefined
}

/**
 * The WealthCare Access preset: the documented token endpoint, the grant you
 * pass (client credentials by default), `client_secret_post` when there is a
 * secret (`none`, a public client, when there is not), and WealthCare's 3600 s
 * token lifetime as `defaultExpiresIn`.
 *
 * Refresh tokens come only with the `offline_access` scope. The preset does not
 * add it for you: with an authorization code grant and no `offline_access`, the
 * source cannot renew the token once it expires (a code is single-use,
 * RFC 6749 section 4.1.2); with a password grant it sends the password again.
 *
 * A string secret is wrapped in `Redacted`. Throws `InvalidConfigError` (every
 * problem at once) for an empty secret, a client credentials grant without a
 * secret, or a URL override that is not `https:` (`http:` is accepted for
 * loopback hosts only).
 *
 * @example
 * ```ts
 * import { createTokenSource, Grant } from "@authfetch/core"
 * import { wealthcare } from "@authfetch/core/providers"
 *
 * // server to server
 * createTokenSource(wealthcare({ clientId, clientSecret, scope: "bensoft_api mbi_api" }))
 *
 * // on behalf of a user, after the authorization redirect (PKCE), renewable
 * createTokenSource(
 *   wealthcare({
 *     clientId,
 *     clientSecret,
 *     grant: Grant.authorizationCode({ code, redirectUri, codeVerifier }),
 *     scope: ["bensoft_api", "mbi_api", "offline_access"],
 *     onTokenChange: (token) => saveRefreshToken(token.refreshToken)
 *   })
 * )
 * ```
 *
 * @since 0.1.0
 */
export const wealthcare = (options: WealthCareOptions): ProviderConfig => {
  const { clientSecret, tokenUrl, baseUrl, grant, ...overrides } = options
  const problems: Array<string> = []
  const resolvedGrant = grant ?? Grant.clientCredentials()
  if (clientSecret === undefined && resolvedGrant.type === "client_credentials") {
    problems.push(
      "clientSecret is required for the client_credentials grant (RFC 6749 section 4.4: confidential clients only)"
    )
  }

  const config: ProviderConfig = {
    defaultExpiresIn: TOKEN_LIFETIME,
    clientAuth: clientSecret === undefined ? "none" : "client_secret_post",
    ...definedOnly(overrides),
    provider: "wealthcare",
    tokenUrl: tokenUrl ?? TOKEN_URL,
    grant: resolvedGrant,
    ...(clientSecret === undefined ? {} : { clientSecret }),
    ...(baseUrl === undefined ? {} : { baseUrl })
  }
  return finish(config, problems)
}
