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
import { sha256 } from "@noble/hashes/sha2.js"
import { Duration, Option, Redacted } from "effect"
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
  /** retries of a failed token request (not of API requests: see `AuthFetchOptions.retry`) */
  readonly tokenRequestRetry?: BackoffOptions | undefined
  /** client-side limit on token requests; default 100 per minute; `false` turns it off */
  readonly rateLimit?: { readonly limit: number; readonly window: Duration.Input } | false | undefined
  /** renew in the background before the token turns stale; default true */
  readonly refreshAhead?: boolean | undefined
  /** cap on a token response body; default 64 KiB */
  readonly maxResponseBytes?: number | undefined
  /** time allowed for one token request; default 10 s (API requests: `AuthFetchOptions.attemptTimeout`) */
  readonly tokenRequestTimeout?: Duration.Input | undefined
  /** the fetch the token requests use (default `globalThis.fetch`) */
  readonly fetch?: typeof globalThis.fetch | undefined
  /** observability events; never carry secrets */
  readonly onEvent?: ((event: TokenEvent) => void) | undefined
  /** called with every new token, e.g. to persist a rotated refresh token */
  readonly onTokenChange?: ((token: AccessToken) => void | Promise<void>) | undefined
}

/**
 * What a value is, for an error message: its kind, never its content (it may
 * be a secret).
 *
 * @example
 * ```ts
 * kindOf(null) // "null"
 * kindOf("s3cret") // "a string"
 * ```
 *
 * @since 0.1.0
 */
export const kindOf = (value: unknown): string => {
  if (value === null) return "null"
  if (Array.isArray(value)) return "an array"
  const type = typeof value
  return type === "undefined" ? "undefined" : type === "object" ? "an object" : `a ${type}`
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

/**
 * Loopback by name or address only: `localhost`, `127.0.0.0/8`, `[::1]`. Not
 * `*.localhost`: RFC 6761 reserves it, but Node resolves such names through DNS.
 */
const isLoopback = (hostname: string): boolean =>
  hostname === "localhost" || hostname === "[::1]" || /^127(\.\d{1,3}){3}$/.test(hostname)

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
  if (typeof config !== "object" || config === null) {
    return [`the configuration must be an object (got ${config === null ? "null" : typeof config})`]
  }
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
    ["tokenRequestTimeout", config.tokenRequestTimeout]
  ] as const) {
    if (input !== undefined && !isDuration(input)) problems.push(`${name} is not a duration`)
  }
  if (config.params !== undefined && (typeof config.params !== "object" || config.params === null)) {
    problems.push("params must be an object of form parameters")
  }
  for (const name of Object.keys(config.params ?? {})) {
    if (ENGINE_PARAMETERS.has(name)) {
      problems.push(
        `params.${name} repeats a parameter the engine sets (RFC 6749 3.2: no repeats); use the option for it`
      )
    } else if (typeof config.params?.[name] !== "string") {
      problems.push(`params.${name} must be a string`)
    }
  }
  if (config.maxResponseBytes !== undefined && !(config.maxResponseBytes >= 1024)) {
    problems.push("maxResponseBytes must be at least 1024")
  }
  return problems
}

/** The engine sets these form parameters itself; `params` must not repeat them (RFC 6749 3.2). */
export const ENGINE_PARAMETERS: ReadonlySet<string> = new Set([
  "grant_type",
  "client_id",
  "client_secret",
  "scope",
  "code",
  "redirect_uri",
  "code_verifier",
  "refresh_token",
  "username",
  "password",
  "audience",
  "resource"
])

const digest = (parts: ReadonlyArray<unknown>): string =>
  base64url(sha256(new TextEncoder().encode(JSON.stringify(parts))))

const base64url = (bytes: Uint8Array): string => {
  let binary = ""
  for (const byte of bytes) binary += String.fromCharCode(byte)
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "")
}

const sorted = (entries: ReadonlyArray<readonly [string, string]>) =>
  entries.slice().sort(([a, x], [b, y]) => (a < b ? -1 : a > b ? 1 : x < y ? -1 : x > y ? 1 : 0))

/**
 * The identity of the tokens this configuration produces: a SHA-256 digest
 * (base64url) of everything that makes a token someone's — token URL, client,
 * grant type and its subject (the username of a password grant; the
 * authorization code and redirect URI of a code grant; a configured refresh
 * token), scope, audience, resources and extra parameters. Values go into the
 * digest, never into the key, so the key may appear in events, logs and a
 * shared store's key names. Two configurations that could yield different
 * tokens never share a key; the client secret and a password are not part of
 * it (one client, one user).
 *
 * @example
 * ```ts
 * cacheKey({ tokenUrl, clientId: "a", scope: "x y" }) === cacheKey({ tokenUrl, clientId: "a", scope: ["y", "x"] }) // true
 * cacheKey({ tokenUrl, clientId: "a" }) // "tk_3q2+7w..." (a digest: no value can be read from it)
 * ```
 *
 * @since 0.1.0
 */
export const cacheKey = (config: TokenSourceConfig): string => {
  const grant = config.grant ?? Grant.clientCredentials()
  const scope = normalizeScope(config.scope)?.split(" ").sort().join(" ")
  const resource = config.resource === undefined ? undefined : [config.resource].flat().slice().sort()
  const subject =
    grant.type === "password"
      ? [grant.username]
      : grant.type === "authorization_code"
        ? [Redacted.value(grant.code), grant.redirectUri]
        : grant.type === "refresh_token"
          ? [Redacted.value(grant.refreshToken)]
          : []
  const refreshToken =
    config.refreshToken === undefined
      ? null
      : Redacted.isRedacted(config.refreshToken)
        ? Redacted.value(config.refreshToken)
        : config.refreshToken
  return `tk_${digest([
    "authfetch/v2",
    config.tokenUrl,
    config.clientId,
    grant.type,
    subject,
    refreshToken,
    scope ?? null,
    config.audience ?? null,
    resource ?? null,
    sorted(Object.entries(config.params ?? {}))
  ])}`
}

/**
 * The key of a client's token-request budget: token URL and client id, as a
 * digest. Providers limit token requests per client (WEX: 100 a minute), so
 * every source of one client shares one budget, whatever its scope or grant.
 *
 * @example
 * ```ts
 * budgetKey({ tokenUrl, clientId: "a", scope: "x" }) === budgetKey({ tokenUrl, clientId: "a", scope: "y" }) // true
 * ```
 *
 * @since 0.1.0
 */
export const budgetKey = (config: Pick<TokenSourceConfig, "tokenUrl" | "clientId">): string =>
  `cl_${digest(["authfetch/client/v1", config.tokenUrl, config.clientId])}`
