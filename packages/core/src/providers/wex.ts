/**
 * The WEX Health Benefits Platform preset, from WEX's "Authentication" page:
 *
 * - Client Credentials is the only grant (RFC 6749 section 4.4):
 *   `grant_type=client_credentials&client_id=...&client_secret=...` as
 *   `application/x-www-form-urlencoded`, i.e. `client_secret_post`
 *   (RFC 6749 section 2.3.1).
 * - "Access tokens expire after 10 minutes of being issued"; the sample
 *   response says `expires_in: 600`.
 * - "Limit: 100 token requests per minute per client", then `429`.
 *
 * The URLs are the shaky part, and every one of them can be overridden:
 *
 * - The documented token endpoint is `POST https://platform.uat.benefits.wexglobal.com/authorize`,
 *   but WEX's own JavaScript and Java samples post to `${baseUrl}/oauth/token`.
 * - The API examples use `https://platform.uat.benefits.wexglobal.com/api/v1/...`
 *   (cURL, Java) and `.../apisandbox/v1/...` (the "Example API Request").
 * - Only the UAT host is documented. The production host is inferred by
 *   dropping `uat.` (it is also the host of the `type` URI in WEX's sample
 *   problem+json body, `https://platform.benefits.wexglobal.com/api/...`); confirm
 *   it with WEX and pass `tokenUrl` / `baseUrl` if yours differ.
 *
 * @example
 * ```ts
 * import { createTokenSource } from "@authfetch/core"
 * import { wex } from "@authfetch/core/providers"
 *
 * const config = wex({
 *   environment: "uat",
 *   clientId: process.env.WEX_CLIENT_ID!,
 *   clientSecret: process.env.WEX_CLIENT_SECRET!
 * })
 * const tokens = createTokenSource(config)
 * ```
 *
 * @since 0.1.0
 */
import type * as ClientAuth from "../ClientAuth.ts"
import type { TokenSourceConfig } from "../Config.ts"
import * as Grant from "../Grant.ts"
import { definedOnly, finish, type ProviderConfig, type UnresolvedUrl } from "./preset.ts"

/**
 * WEX's environments: `uat` (user acceptance testing, documented) and
 * `production` (URLs inferred, see the module comment).
 *
 * @example
 * ```ts
 * const environment: WexEnvironment = process.env.NODE_ENV === "production" ? "production" : "uat"
 * ```
 *
 * @since 0.1.0
 */
export type WexEnvironment = "uat" | "production"

/**
 * The environments, as a list (for checking input that does not come from
 * typed code, such as environment variables).
 *
 * @internal
 */
export const WEX_ENVIRONMENTS: ReadonlyArray<WexEnvironment> = ["uat", "production"]

/** Token endpoint and API base URL of each environment (see the module comment). */
const ENDPOINTS: Readonly<Record<WexEnvironment, { readonly tokenUrl: string; readonly baseUrl: string }>> = {
  // Documented: "POST https://platform.uat.benefits.wexglobal.com/authorize".
  uat: {
    tokenUrl: "https://platform.uat.benefits.wexglobal.com/authorize",
    baseUrl: "https://platform.uat.benefits.wexglobal.com/api"
  },
  // Inferred, not documented: the UAT URLs without `uat.`. Overridable.
  production: {
    tokenUrl: "https://platform.benefits.wexglobal.com/authorize",
    baseUrl: "https://platform.benefits.wexglobal.com/api"
  }
}

/** "Limit: 100 token requests per minute per client." */
const RATE_LIMIT = { limit: 100, window: "1 minute" } as const

/**
 * "Access tokens expire after 10 minutes of being issued" (`expires_in: 600`):
 * the lifetime assumed if a response ever omits `expires_in`.
 */
const TOKEN_LIFETIME = "600 seconds"

const isEnvironment = (value: unknown): value is WexEnvironment =>
  typeof value === "string" && (WEX_ENVIRONMENTS as ReadonlyArray<string>).includes(value)

/**
 * Options of `wex`. Besides the credentials and the environment, any
 * `TokenSourceConfig` option may be given and overrides the preset's choice
 * (`rateLimit`, `defaultExpiresIn`, `refreshMargin`, `fetch`, `onEvent`, ...).
 *
 * @example
 * ```ts
 * const options: WexOptions = { environment: "production", clientId, clientSecret: () => vault.read("wex") }
 * ```
 *
 * @since 0.1.0
 */
export interface WexOptions
  extends Partial<Omit<TokenSourceConfig, "tokenUrl" | "clientId" | "clientSecret" | "grant">> {
  /** picks the token endpoint and the API base URL */
  readonly environment: WexEnvironment
  /** the client id from WEX's Admin Portal */
  readonly clientId: string
  /** the client secret from WEX's Admin Portal: a string, a `Redacted`, or an async provider */
  readonly clientSecret: ClientAuth.SecretInput
  /** default: the environment's token endpoint */
  readonly tokenUrl?: string | undefined
  /** default: the environment's `/api` base URL */
  readonly baseUrl?: string | undefined
  /** WEX documents client credentials only: any other grant throws `InvalidConfigError` */
  readonly grant?: Grant.ClientCredentials | undefined
}

/**
 * A WEX configuration: like any `ProviderConfig`, with an API base URL always set.
 *
 * @example
 * ```ts
 * const config: WexConfig = wex({ environment: "uat", clientId, clientSecret })
 * const api = `${config.baseUrl}/v1/consumers/12345`
 * ```
 *
 * @since 0.1.0
 */
export interface WexConfig extends ProviderConfig {
  readonly provider: "wex"
  readonly baseUrl: string
}

/**
 * The WEX Health Benefits Platform preset: client credentials with
 * `client_secret_post`, the environment's token endpoint and API base URL,
 * WEX's documented limit of 100 token requests a minute, and its 600 s token
 * lifetime as `defaultExpiresIn`. The default refresh margin (60 s, as in WEX's
 * own samples) leaves the refresh-ahead fiber plenty of a 10-minute token.
 *
 * A string secret is wrapped in `Redacted`, so the returned configuration can be
 * logged. Throws `InvalidConfigError` (every problem at once) for a missing or
 * empty secret, an unknown environment, a grant other than client credentials,
 * or a URL override that is not `https:` (`http:` is accepted for loopback hosts
 * only, for local emulators).
 *
 * @example
 * ```ts
 * import { createTokenSource } from "@authfetch/core"
 * import { wex } from "@authfetch/core/providers"
 *
 * const config = wex({ environment: "uat", clientId, clientSecret })
 * const tokens = createTokenSource(config)
 * const token = await tokens.getToken()
 * await fetch(`${config.baseUrl}/v1/consumers/12345`, { headers: { authorization: token.authorization() } })
 *
 * // the samples' other token path, or a local emulator:
 * wex({ environment: "uat", clientId, clientSecret, tokenUrl: "http://127.0.0.1:4010/oauth/token" })
 * ```
 *
 * @since 0.1.0
 */
export const wex = (options: WexOptions): WexConfig => {
  const { environment, clientSecret, tokenUrl, baseUrl, grant, ...overrides } = options
  const problems: Array<string> = []
  const unresolved: Array<UnresolvedUrl> = []

  const endpoint = isEnvironment(environment) ? ENDPOINTS[environment] : undefined
  if (endpoint === undefined) {
    problems.push(
      `environment must be one of ${WEX_ENVIRONMENTS.join(", ")} (got ${JSON.stringify(String(environment))})`
    )
    if (tokenUrl === undefined) unresolved.push("tokenUrl")
    if (baseUrl === undefined) unresolved.push("baseUrl")
  }
  // Typed code cannot get here (`grant` is `ClientCredentials`); JavaScript and casts can.
  const grantType: unknown = (grant as { readonly type?: unknown } | undefined)?.type
  if (grant !== undefined && grantType !== "client_credentials") {
    problems.push(
      `WEX supports the client_credentials grant only (got ${JSON.stringify(String(grantType))}); omit grant`
    )
  }
  if (clientSecret === undefined) {
    problems.push("clientSecret is required: WEX authenticates clients with client_id and client_secret")
  }

  const config: WexConfig = {
    rateLimit: RATE_LIMIT,
    defaultExpiresIn: TOKEN_LIFETIME,
    clientAuth: "client_secret_post",
    ...definedOnly(overrides),
    provider: "wex",
    tokenUrl: tokenUrl ?? endpoint?.tokenUrl ?? "",
    baseUrl: baseUrl ?? endpoint?.baseUrl ?? "",
    clientSecret,
    grant: Grant.clientCredentials()
  }
  return finish(config, problems, unresolved)
}
