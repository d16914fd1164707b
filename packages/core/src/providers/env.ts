/**
 * Presets from environment variables, the place WEX tells partners to keep
 * credentials ("Store credentials securely using environment variables or a
 * secrets management system").
 *
 * - `WEX_*`: the `wex` preset. `WEX_CLIENT_ID`, `WEX_CLIENT_SECRET` (required);
 *   `WEX_ENVIRONMENT` (`uat` or `production`; required unless both URLs are set), `WEX_TOKEN_URL`,
 *   `WEX_BASE_URL`.
 * - `WEALTHCARE_*`: the `wealthcare` preset. `WEALTHCARE_CLIENT_ID` (required);
 *   `WEALTHCARE_GRANT` (`client_credentials`, the default, `password` or
 *   `refresh_token`); `WEALTHCARE_CLIENT_SECRET` (required by
 *   `client_credentials`); `WEALTHCARE_USERNAME` and `WEALTHCARE_PASSWORD`
 *   (required by `password`); `WEALTHCARE_REFRESH_TOKEN` (required by
 *   `refresh_token`); `WEALTHCARE_SCOPE`, `WEALTHCARE_TOKEN_URL`,
 *   `WEALTHCARE_BASE_URL`.
 * - any other prefix `P`: a generic OAuth 2.0 client. `P_TOKEN_URL`, `P_CLIENT_ID`
 *   (required); `P_CLIENT_SECRET`, `P_SCOPE`, `P_AUDIENCE`, `P_CLIENT_AUTH`
 *   (`client_secret_post`, `client_secret_basic` or `none`), `P_BASE_URL`.
 *
 * An `authorization_code` grant cannot come from the environment: a code is
 * single-use and lives for minutes (RFC 6749 section 4.1.2), so it exists only
 * at run time, after the authorization redirect. Pass it to `wealthcare({ grant })`;
 * or persist the refresh token it yields and start later runs from
 * `WEALTHCARE_GRANT=refresh_token`.
 *
 * Empty and whitespace-only values count as unset. Values are trimmed, except
 * secrets (client secret, password, refresh token), which are used exactly as
 * set and wrapped in `Redacted` at once.
 *
 * @example
 * ```ts
 * import { createTokenSource } from "@authfetch/core"
 * import { fromEnv } from "@authfetch/core/providers"
 *
 * // WEX_CLIENT_ID=... WEX_CLIENT_SECRET=... WEX_ENVIRONMENT=production
 * const tokens = createTokenSource(fromEnv("WEX"))
 * ```
 *
 * @since 0.1.0
 */
import { Redacted } from "effect"
import type { Method as ClientAuthMethod } from "../ClientAuth.ts"
import type { TokenSourceConfig } from "../Config.ts"
import { InvalidConfigError } from "../Errors.ts"
import * as Grant from "../Grant.ts"
import { definedOnly, finish, type ProviderConfig, urlProblems } from "./preset.ts"
import { wealthcare } from "./wealthcare.ts"
import { WEX_ENVIRONMENTS, type WexConfig, wex } from "./wex.ts"

/**
 * Options of `fromEnv`.
 *
 * @example
 * ```ts
 * // Cloudflare Workers: the variables are the handler's `env`, not `process.env`
 * export default { fetch: (req: Request, env: Record<string, string>) => handle(req, fromEnv("WEX", { env })) }
 *
 * // the secret from a vault instead of WEX_CLIENT_SECRET, plus tuning
 * fromEnv("WEX", { overrides: { clientSecret: () => vault.read("wex"), onEvent: log } })
 * ```
 *
 * @since 0.1.0
 */
export interface FromEnvOptions {
  /**
   * The variables to read. Default: `process.env`; on a runtime without
   * `process` (Cloudflare Workers without Node compatibility, Deno Deploy
   * isolates, browsers) the default is `{}`, so pass the runtime's own bindings.
   */
  readonly env?: Readonly<Record<string, string | undefined>> | undefined
  /**
   * Applied last: they win over the variables. A variable whose field is given
   * here is not read, so it is not required either.
   */
  readonly overrides?: Partial<TokenSourceConfig> | undefined
}

/** The suffixes of secret variables: their values are never echoed. */
const SECRET_SUFFIXES = ["CLIENT_SECRET", "PASSWORD", "REFRESH_TOKEN"] as const

/** The WealthCare grants that can be configured from variables alone. */
const WEALTHCARE_ENV_GRANTS = ["client_credentials", "password", "refresh_token"] as const

/** RFC 6749 section 2.3.1 methods the core implements. */
const CLIENT_AUTH_METHODS: ReadonlyArray<ClientAuthMethod> = [
  "client_secret_post",
  "client_secret_basic",
  "none"
]

/** An environment variable name prefix: `WEX`, `MY_API` (the `_` before the suffix is added). */
const PREFIX_PATTERN = /^[A-Za-z](?:[A-Za-z0-9_]*[A-Za-z0-9])?$/

type Env = Readonly<Record<string, string | undefined>>

/** `process.env` where there is a `process` (Node, Bun, Deno), `{}` elsewhere. */
const processEnv = (): Env => (globalThis as { readonly process?: { readonly env?: Env } }).process?.env ?? {}

/**
 * Reads `PREFIX_*` variables and collects what is wrong with them, so that one
 * error reports everything. A required variable that is missing is recorded and
 * read as a placeholder (`""`), which never leaves: `check` throws first.
 */
const makeReader = (prefix: string, env: Env) => {
  const missing: Array<string> = []
  const problems: Array<string> = []
  const nameOf = (suffix: string) => `${prefix}_${suffix}`
  const raw = (suffix: string): string | undefined => {
    const value = env[nameOf(suffix)]
    return typeof value === "string" && value.trim() !== "" ? value : undefined
  }
  const secretValues = SECRET_SUFFIXES.flatMap((suffix) => raw(suffix)?.trim() ?? [])
  // Echoes a non-secret value, unless a secret was put there by mistake.
  const echo = (value: string) =>
    secretValues.some((secret) => value.includes(secret))
      ? "a value that is not shown: it contains a secret"
      : JSON.stringify(value)

  const text = (suffix: string): string | undefined => raw(suffix)?.trim()
  const required = (suffix: string): string => {
    const value = text(suffix)
    if (value === undefined) missing.push(nameOf(suffix))
    return value ?? ""
  }
  const secret = (suffix: string): Redacted.Redacted<string> | undefined => {
    const value = raw(suffix)
    return value === undefined ? undefined : Redacted.make(value, { label: nameOf(suffix) })
  }
  const requiredSecret = (suffix: string): Redacted.Redacted<string> => {
    const value = secret(suffix)
    if (value === undefined) missing.push(nameOf(suffix))
    return value ?? Redacted.make("", { label: nameOf(suffix) })
  }
  const checkUrl = (suffix: string, value: string | undefined): string | undefined => {
    if (value !== undefined) problems.push(...urlProblems(nameOf(suffix), value))
    return value
  }
  /** `undefined` when unset, `null` when set to something not allowed (reported) */
  const oneOf = <A extends string>(suffix: string, allowed: ReadonlyArray<A>): A | undefined | null => {
    const value = text(suffix)
    if (value === undefined) return undefined
    if ((allowed as ReadonlyArray<string>).includes(value)) return value as A
    problems.push(`${nameOf(suffix)} must be one of ${allowed.join(", ")} (got ${echo(value)})`)
    return null
  }
  const check = (): void => {
    const all = [
      ...(missing.length > 0 ? [`missing environment variables: ${missing.join(", ")}`] : []),
      ...problems
    ]
    if (all.length > 0) throw new InvalidConfigError({ problems: all })
  }
  return {
    nameOf,
    problems,
    text,
    required,
    secret,
    requiredSecret,
    url: (suffix: string) => checkUrl(suffix, text(suffix)),
    requiredUrl: (suffix: string): string => {
      const value = required(suffix)
      // A missing URL is reported as missing, not also as "not an absolute URL".
      if (value !== "") checkUrl(suffix, value)
      return value
    },
    oneOf,
    check
  }
}

type Reader = ReturnType<typeof makeReader>
type Overrides = Partial<TokenSourceConfig>

const wexFromEnv = (read: Reader, overrides: Overrides): WexConfig => {
  const clientId = overrides.clientId ?? read.required("CLIENT_ID")
  const clientSecret = overrides.clientSecret ?? read.requiredSecret("CLIENT_SECRET")
  const environment = read.oneOf("ENVIRONMENT", WEX_ENVIRONMENTS)
  const tokenUrl = overrides.tokenUrl ?? read.url("TOKEN_URL")
  const baseUrl = read.url("BASE_URL")
  // Which WEX is called is a decision, not a default: a production deployment that forgot the
  // variable would otherwise send its credentials to UAT. Both URLs given decide it too.
  if (environment === undefined && (tokenUrl === undefined || baseUrl === undefined)) {
    read.problems.push(
      `${read.nameOf("ENVIRONMENT")} is missing: set it to ${WEX_ENVIRONMENTS.join(" or ")} ` +
        `(or set both ${read.nameOf("TOKEN_URL")} and ${read.nameOf("BASE_URL")})`
    )
  }
  read.check()
  const { grant, ...rest } = overrides
  return wex({
    ...rest,
    // Typed as any grant here, checked by `wex`, which rejects all but client credentials.
    grant: grant as Grant.ClientCredentials | undefined,
    environment: environment ?? "uat",
    clientId,
    clientSecret,
    tokenUrl,
    baseUrl
  })
}

const wealthcareGrant = (read: Reader, overrides: Overrides): Grant.Grant | null => {
  if (overrides.grant !== undefined) return overrides.grant
  if (read.text("GRANT") === "authorization_code") {
    read.problems.push(
      `${read.nameOf("GRANT")}=authorization_code cannot come from the environment: an authorization code ` +
        "is single-use and short-lived (RFC 6749 section 4.1.2); pass Grant.authorizationCode(...) to " +
        `wealthcare(), or persist its refresh token and use ${read.nameOf("GRANT")}=refresh_token`
    )
    return null
  }
  const type = read.oneOf("GRANT", WEALTHCARE_ENV_GRANTS)
  if (type === null) return null
  switch (type ?? "client_credentials") {
    case "client_credentials":
      return Grant.clientCredentials()
    case "password":
      return Grant.password({
        username: read.required("USERNAME"),
        password: read.requiredSecret("PASSWORD")
      })
    case "refresh_token":
      return Grant.refreshToken(read.requiredSecret("REFRESH_TOKEN"))
  }
}

const wealthcareFromEnv = (read: Reader, overrides: Overrides): ProviderConfig => {
  const clientId = overrides.clientId ?? read.required("CLIENT_ID")
  // The grant decides which other variables are required; its own are read after the client's.
  const grantType: string = overrides.grant?.type ?? read.text("GRANT") ?? "client_credentials"
  const clientSecret =
    overrides.clientSecret ??
    (grantType === "client_credentials" ? read.requiredSecret("CLIENT_SECRET") : read.secret("CLIENT_SECRET"))
  const grant = wealthcareGrant(read, overrides)
  const scope = overrides.scope ?? read.text("SCOPE")
  const tokenUrl = overrides.tokenUrl ?? read.url("TOKEN_URL")
  const baseUrl = read.url("BASE_URL")
  read.check()
  return wealthcare({
    ...overrides,
    clientId,
    clientSecret,
    grant: grant ?? undefined,
    scope,
    tokenUrl,
    baseUrl
  })
}

const genericFromEnv = (read: Reader, overrides: Overrides): ProviderConfig => {
  const tokenUrl = overrides.tokenUrl ?? read.requiredUrl("TOKEN_URL")
  const clientId = overrides.clientId ?? read.required("CLIENT_ID")
  const clientSecret = overrides.clientSecret ?? read.secret("CLIENT_SECRET")
  const scope = overrides.scope ?? read.text("SCOPE")
  const audience = overrides.audience ?? read.text("AUDIENCE")
  const clientAuth = overrides.clientAuth ?? read.oneOf("CLIENT_AUTH", CLIENT_AUTH_METHODS)
  const baseUrl = read.url("BASE_URL")
  read.check()
  const config: ProviderConfig = definedOnly({
    ...overrides,
    provider: "generic" as const,
    tokenUrl,
    clientId,
    clientSecret,
    scope,
    audience,
    clientAuth: clientAuth ?? undefined,
    baseUrl
  })
  return finish(config, [])
}

/**
 * A preset from environment variables: `fromEnv("WEX")`, `fromEnv("WEALTHCARE")`,
 * or `fromEnv("MY_API")` for any other OAuth 2.0 API (see the module comment for
 * the variables of each). Names are case-sensitive: the prefix is used as given.
 *
 * Throws one `InvalidConfigError` naming every missing required variable
 * (`missing environment variables: WEX_CLIENT_ID, WEX_CLIENT_SECRET`; empty and
 * whitespace-only values count as missing), every variable with a value outside
 * its allowed set (the value is echoed, never for a secret variable), and every
 * URL that is not `https:` (a URL is not echoed: it may carry credentials). No
 * error and no returned configuration contains a secret: they are wrapped in
 * `Redacted`, labelled with their variable's name.
 *
 * @example
 * ```ts
 * import { createTokenSource } from "@authfetch/core"
 * import { fromEnv } from "@authfetch/core/providers"
 *
 * const wexTokens = createTokenSource(fromEnv("WEX"))
 *
 * // WEALTHCARE_CLIENT_ID, WEALTHCARE_CLIENT_SECRET, WEALTHCARE_GRANT=password,
 * // WEALTHCARE_USERNAME, WEALTHCARE_PASSWORD, WEALTHCARE_SCOPE="bensoft_api offline_access"
 * const wealthcareTokens = createTokenSource(fromEnv("WEALTHCARE", { overrides: { onEvent: log } }))
 *
 * // ACME_TOKEN_URL, ACME_CLIENT_ID, ACME_CLIENT_SECRET, ACME_CLIENT_AUTH=client_secret_basic
 * const acmeTokens = createTokenSource(fromEnv("ACME"))
 * ```
 *
 * @since 0.1.0
 */
export function fromEnv(prefix: "WEX", options?: FromEnvOptions): WexConfig
export function fromEnv(
  prefix: "WEX" | "WEALTHCARE" | (string & Record<never, never>),
  options?: FromEnvOptions
): ProviderConfig
export function fromEnv(
  prefix: "WEX" | "WEALTHCARE" | (string & Record<never, never>),
  options?: FromEnvOptions
): ProviderConfig {
  if (typeof prefix !== "string" || !PREFIX_PATTERN.test(prefix)) {
    throw new InvalidConfigError({
      problems: [
        `fromEnv prefix must be letters, digits and "_", start with a letter and not end with "_" (got ${JSON.stringify(String(prefix))})`
      ]
    })
  }
  const read = makeReader(prefix, options?.env ?? processEnv())
  const overrides = definedOnly(options?.overrides ?? {})
  switch (prefix) {
    case "WEX":
      return wexFromEnv(read, overrides)
    case "WEALTHCARE":
      return wealthcareFromEnv(read, overrides)
    default:
      return genericFromEnv(read, overrides)
  }
}
