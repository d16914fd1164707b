/**
 * Presets for signing users in (`createUserSessions`): WealthCare Access, and
 * any authorization server configured from environment variables.
 *
 * WealthCare documents only its token endpoint
 * (`https://beta.auth.wealthcare.com/connect/token`); its `/connect/*` paths
 * are IdentityServer's, whose authorization and revocation endpoints are
 * `/connect/authorize` and `/connect/revocation` and whose issuer is the
 * host's origin. The preset fills those in as inferred, and every one can be
 * overridden (or left to discovery: pass `issuer` alone).
 *
 * From the environment (`signInFromEnv(prefix)`), one variable per option,
 * the prefix plus the option's name: `P_CLIENT_ID` (required),
 * `P_CLIENT_SECRET`, `P_REDIRECT_URI` (required: this app's callback URL),
 * `P_SCOPE` (required unless the preset has one), `P_ISSUER`,
 * `P_AUTHORIZATION_URL`, `P_TOKEN_URL`, `P_REVOCATION_URL`. For `WEALTHCARE`
 * the preset's endpoints are the defaults; for any other prefix `P_ISSUER`
 * (discovery) or both `P_AUTHORIZATION_URL` and `P_TOKEN_URL` are required.
 *
 * @example
 * ```ts
 * import { createUserSessions } from "@authfetch/core"
 * import { signInFromEnv, wealthcareSignIn } from "@authfetch/core/providers"
 *
 * const sessions = createUserSessions(
 *   wealthcareSignIn({ clientId, clientSecret, redirectUri: "https://app.example/auth/callback", scope: "openid profile offline_access bensoft_api" })
 * )
 * // or WEALTHCARE_CLIENT_ID, WEALTHCARE_CLIENT_SECRET, WEALTHCARE_REDIRECT_URI, WEALTHCARE_SCOPE
 * const fromVariables = createUserSessions(signInFromEnv("WEALTHCARE"))
 * ```
 *
 * @since 0.2.0
 */
import { Redacted } from "effect"
import { InvalidConfigError } from "../Errors.ts"
import { type UserSessionsConfig, validate } from "../UserSessions.ts"
import { definedOnly } from "./preset.ts"

/** WealthCare's host: the documented token endpoint's origin. */
const WEALTHCARE_ORIGIN = "https://beta.auth.wealthcare.com"

/**
 * Options of `wealthcareSignIn`: the client, this app's callback, the scope;
 * any `UserSessionsConfig` option may be given and wins over the preset's.
 *
 * @since 0.2.0
 */
export interface WealthCareSignInOptions extends Partial<UserSessionsConfig> {
  readonly clientId: string
  readonly redirectUri: string
  /** e.g. `openid profile offline_access bensoft_api` (`offline_access` gets a refresh token) */
  readonly scope: string | ReadonlyArray<string>
}

/**
 * The WealthCare Access sign-in preset: IdentityServer's `/connect/authorize`,
 * the documented `/connect/token`, `/connect/revocation`, and the issuer
 * `https://beta.auth.wealthcare.com` (inferred from the documented host: ask
 * WealthCare for your environment's and pass `issuer` and the URLs).
 * `client_secret_post` with a secret, as WealthCare documents. Throws
 * `InvalidConfigError` naming every problem.
 *
 * @example
 * ```ts
 * const sessions = createUserSessions(
 *   wealthcareSignIn({ clientId, clientSecret, redirectUri: "https://app.example/auth/callback", scope: ["openid", "offline_access", "bensoft_api"] })
 * )
 * ```
 *
 * @since 0.2.0
 */
export const wealthcareSignIn = (options: WealthCareSignInOptions): UserSessionsConfig => {
  const given = definedOnly(options)
  const origin = given.issuer ?? WEALTHCARE_ORIGIN
  const config: UserSessionsConfig = {
    issuer: origin,
    authorizationUrl: `${origin}/connect/authorize`,
    tokenUrl: `${origin}/connect/token`,
    revocationUrl: `${origin}/connect/revocation`,
    ...given,
    ...(given.clientSecret === undefined ? {} : { clientAuth: given.clientAuth ?? "client_secret_post" }),
    ...(typeof given.clientSecret === "string"
      ? { clientSecret: Redacted.make(given.clientSecret, { label: "client_secret" }) }
      : {})
  }
  const problems = validate(config)
  if (problems.length > 0) throw new InvalidConfigError({ problems })
  return config
}

/**
 * Options of `signInFromEnv`.
 *
 * @since 0.2.0
 */
export interface SignInFromEnvOptions {
  /** the variables to read; default `process.env` (`{}` where there is no `process`) */
  readonly env?: Readonly<Record<string, string | undefined>> | undefined
  /** applied last: they win over the variables (a variable whose option is given is not required) */
  readonly overrides?: Partial<UserSessionsConfig> | undefined
}

/**
 * A sign-in configuration from `PREFIX_*` variables (see the module comment).
 * One `InvalidConfigError` names every missing variable and every problem;
 * the secret is wrapped in `Redacted` and never echoed, nor is a URL.
 *
 * @example
 * ```ts
 * // WEALTHCARE_CLIENT_ID, WEALTHCARE_CLIENT_SECRET, WEALTHCARE_REDIRECT_URI, WEALTHCARE_SCOPE
 * const sessions = createUserSessions(signInFromEnv("WEALTHCARE"))
 * ```
 *
 * @since 0.2.0
 */
export const signInFromEnv = (prefix: string, options?: SignInFromEnvOptions): UserSessionsConfig => {
  if (typeof prefix !== "string" || !/^[A-Za-z](?:[A-Za-z0-9_]*[A-Za-z0-9])?$/.test(prefix)) {
    throw new InvalidConfigError({
      problems: [
        'signInFromEnv prefix must be letters, digits and "_", start with a letter and not end with "_"'
      ]
    })
  }
  const env =
    options?.env ??
    (globalThis as { readonly process?: { readonly env?: Record<string, string | undefined> } }).process
      ?.env ??
    {}
  const overrides = definedOnly(options?.overrides ?? {})
  const missing: Array<string> = []
  const read = (suffix: string): string | undefined => {
    const value = env[`${prefix}_${suffix}`]
    return typeof value === "string" && value.trim() !== "" ? value.trim() : undefined
  }
  const required = (suffix: string, given: unknown): string | undefined => {
    if (given !== undefined) return undefined
    const value = read(suffix)
    if (value === undefined) missing.push(`${prefix}_${suffix}`)
    return value
  }
  const rawSecret = env[`${prefix}_CLIENT_SECRET`]
  const secret =
    typeof rawSecret === "string" && rawSecret.trim() !== ""
      ? Redacted.make(rawSecret, { label: `${prefix}_CLIENT_SECRET` })
      : undefined
  const fromVariables = definedOnly({
    clientId: required("CLIENT_ID", overrides.clientId),
    clientSecret: secret,
    redirectUri: required("REDIRECT_URI", overrides.redirectUri),
    scope: required("SCOPE", overrides.scope),
    issuer: read("ISSUER"),
    authorizationUrl: read("AUTHORIZATION_URL"),
    tokenUrl: read("TOKEN_URL"),
    revocationUrl: read("REVOCATION_URL")
  })
  if (missing.length > 0) {
    throw new InvalidConfigError({ problems: [`missing environment variables: ${missing.join(", ")}`] })
  }
  const merged = { ...fromVariables, ...overrides } as UserSessionsConfig
  if (prefix === "WEALTHCARE") return wealthcareSignIn(merged)
  const problems = validate(merged).map((problem) =>
    problem.replace(
      /^(issuer|authorizationUrl|tokenUrl|revocationUrl|redirectUri)\b/,
      (name) => `${prefix}_${name.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`
    )
  )
  if (problems.length > 0) throw new InvalidConfigError({ problems })
  return merged
}
