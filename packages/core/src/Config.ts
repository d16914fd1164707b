/**
 * The configuration of a token source: what to ask for, from where, and how
 * patiently. `validate` reports every problem at once; `cacheKey` derives the
 * identity of the tokens a configuration produces, from everything that shapes
 * a token (token URL, client, grant, scope, audience, resource, extra
 * parameters), so two configurations never share a token.
 *
 * @example
 * ```ts
 * const config: TokenSourceConfig = {
 *   tokenUrl: "https://platform.uat.benefits.wexglobal.com/authorize",
 *   clientId: process.env.WEX_CLIENT_ID!,
 *   clientSecret: process.env.WEX_CLIENT_SECRET!,
 *   rateLimit: { limit: 100, window: "1 minute" }
 * }
 * ```
 *
 * @since 0.1.0
 */
import { Duration, Option, type Redacted } from "effect"
import type * as ClientAuth from "./ClientAuth.ts"
import type { TokenEvent } from "./Events.ts"
import * as Grant from "./Grant.ts"
import type { BackoffOptions } from "./RetryPolicy.ts"
import type { AccessToken, FreshnessOptions } from "./Token.ts"

/**
 * @since 0.1.0
 */
export interface TokenSourceConfig extends FreshnessOptions {
  /** the token endpoint; `https:` (or `http:` on a loopback host) */
  readonly tokenUrl: string
  readonly clientId: string
  /** a string, a `Redacted`, or an async provider called per token request */
  readonly clientSecret?: ClientAuth.SecretInput | undefined
  /** default: `client_secret_post` with a secret, `none` without */
  readonly clientAuth?: ClientAuth.Method | undefined
  /** default: client credentials */
  readonly grant?: Grant.Grant | undefined
  /** scopes, as an array or a space-delimited string (RFC 6749 section 3.3) */
  readonly scope?: string | ReadonlyArray<string> | undefined
  /** `audience` form parameter (Auth0, Okta and others) */
  readonly audience?: string | undefined
  /** RFC 8707 resource indicators */
  readonly resource?: string | ReadonlyArray<string> | undefined
  /** further form parameters sent with every token request */
  readonly params?: Readonly<Record<string, string>> | undefined
  /** a refresh token from an earlier run (see `onTokenChange`), used before the grant */
  readonly refreshToken?: string | Redacted.Redacted<string> | undefined
  /** lifetime assumed when a response has no `expires_in`; default 300 s */
  readonly defaultExpiresIn?: Duration.Input | undefined
  /** retries of a failed token request */
  readonly retry?: BackoffOptions | undefined
  /** client-side limit on token requests; default 100 per minute; `false` turns it off */
  readonly rateLimit?: { readonly limit: number; readonly window: Duration.Input } | false | undefined
  /** renew in the background before the token turns stale; default true */
  readonly refreshAhead?: boolean | undefined
  /** cap on a token response body; default 64 KiB */
  readonly maxResponseBytes?: number | undefined
  /** time allowed for one token request; default 10 s */
  readonly timeout?: Duration.Input | undefined
  /** the fetch the token requests use (default `globalThis.fetch`) */
  readonly fetch?: typeof globalThis.fetch | undefined
  /** observability events; never carry secrets */
  readonly onEvent?: ((event: TokenEvent) => void) | undefined
  /** called with every new token, e.g. to persist a rotated refresh token */
  readonly onTokenChange?: ((token: AccessToken) => void | Promise<void>) | undefined
}

/** RFC 6749 section 3.3: scope is a space-delimited list of scope tokens. */
export const normalizeScope = (scope: string | ReadonlyArray<string> | undefined): string | undefined => {
  if (scope === undefined) return undefined
  const parts = (typeof scope === "string" ? scope.split(" ") : scope)
    .map((s) => s.trim())
    .filter((s) => s !== "")
  return parts.length === 0 ? undefined : parts.join(" ")
}

const isDuration = (input: Duration.Input): boolean => {
  const duration = Duration.fromInput(input)
  return (
    Option.isSome(duration) && Duration.isFinite(duration.value) && Duration.toMillis(duration.value) >= 0
  )
}

/**
 * Whether a URL may carry credentials: `https:`, or `http:` to a loopback host
 * (WEX: "All API requests must use HTTPS").
 *
 * @example
 * ```ts
 * isSecureOrigin("http://127.0.0.1:8080") // true
 * isSecureOrigin("http://api.example.com") // false
 * ```
 *
 * @since 0.1.0
 */
export const isSecureOrigin = (url: string): boolean => {
  try {
    const parsed = new URL(url)
    return parsed.protocol === "https:" || (parsed.protocol === "http:" && isLoopback(parsed.hostname))
  } catch {
    return false
  }
}

const isLoopback = (hostname: string): boolean =>
  hostname === "localhost" ||
  hostname.endsWith(".localhost") ||
  hostname === "[::1]" ||
  /^127(\.\d{1,3}){3}$/.test(hostname)

/**
 * Every problem with a configuration, empty when it can work.
 *
 * @example
 * ```ts
 * validate({ tokenUrl: "http://auth.example.com/token", clientId: "" })
 * // ["clientId is required", "tokenUrl must use https: (http: is allowed for loopback hosts only)"]
 * ```
 *
 * @since 0.1.0
 */
export const validate = (config: TokenSourceConfig): ReadonlyArray<string> => {
  const problems: Array<string> = []
  if (typeof config.clientId !== "string" || config.clientId.trim() === "")
    problems.push("clientId is required")
  let url: URL | undefined
  try {
    url = new URL(config.tokenUrl)
  } catch {
    problems.push("tokenUrl is not an absolute URL")
  }
  if (url) {
    if (url.protocol === "http:" && !isLoopback(url.hostname)) {
      problems.push("tokenUrl must use https: (http: is allowed for loopback hosts only)")
    } else if (url.protocol !== "https:" && url.protocol !== "http:") {
      problems.push("tokenUrl must use https:")
    }
    if (url.username || url.password) problems.push("tokenUrl must not contain credentials")
  }
  const auth = config.clientAuth
  if (
    auth !== undefined &&
    auth !== "client_secret_post" &&
    auth !== "client_secret_basic" &&
    auth !== "none"
  ) {
    problems.push("clientAuth must be client_secret_post, client_secret_basic or none")
  }
  if (
    (auth === "client_secret_post" || auth === "client_secret_basic") &&
    config.clientSecret === undefined
  ) {
    problems.push(`clientAuth ${auth} needs a clientSecret`)
  }
  if (typeof config.clientSecret === "string" && config.clientSecret === "")
    problems.push("clientSecret is empty")
  if (config.rateLimit) {
    if (!(config.rateLimit.limit >= 1)) problems.push("rateLimit.limit must be at least 1")
    if (!isDuration(config.rateLimit.window)) problems.push("rateLimit.window is not a duration")
  }
  for (const [name, input] of [
    ["refreshMargin", config.refreshMargin],
    ["defaultExpiresIn", config.defaultExpiresIn],
    ["timeout", config.timeout]
  ] as const) {
    if (input !== undefined && !isDuration(input)) problems.push(`${name} is not a duration`)
  }
  if (config.maxResponseBytes !== undefined && !(config.maxResponseBytes >= 1024)) {
    problems.push("maxResponseBytes must be at least 1024")
  }
  return problems
}

/**
 * The identity of the tokens this configuration produces. Contains no secret
 * (for a password grant: the username, not the password), so a shared store may
 * use it as a key as it is.
 *
 * @example
 * ```ts
 * cacheKey({ tokenUrl, clientId: "a", scope: "x y" }) === cacheKey({ tokenUrl, clientId: "a", scope: ["y", "x"] }) // true
 * ```
 *
 * @since 0.1.0
 */
export const cacheKey = (config: TokenSourceConfig): string => {
  const grant = config.grant ?? Grant.clientCredentials()
  const scope = normalizeScope(config.scope)?.split(" ").sort().join(" ")
  const resource = config.resource === undefined ? undefined : [config.resource].flat().slice().sort()
  const params = config.params
    ? Object.entries(config.params).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    : []
  const subject =
    grant.type === "password"
      ? grant.username
      : grant.type === "authorization_code"
        ? grant.redirectUri
        : undefined
  return JSON.stringify([
    "authfetch/v1",
    config.tokenUrl,
    config.clientId,
    grant.type,
    subject ?? null,
    scope ?? null,
    config.audience ?? null,
    resource ?? null,
    params
  ])
}
