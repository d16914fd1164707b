/**
 * What a provider preset is: a `TokenSourceConfig` that also names the provider
 * it was built for and, when the provider documents one, where its API lives;
 * and the checks every preset runs before it hands a configuration out. Like
 * `validate`, a preset reports every problem at once, in one
 * `InvalidConfigError`, and never quotes a secret or a URL (a URL may carry
 * credentials).
 *
 * @example
 * ```ts
 * import { createTokenSource } from "@authfetch/core"
 * import { type ProviderConfig, wex } from "@authfetch/core/providers"
 *
 * const config: ProviderConfig = wex({ environment: "uat", clientId, clientSecret })
 * const tokens = createTokenSource(config)
 * ```
 *
 * @since 0.1.0
 */
import { Redacted } from "effect"
import type * as ClientAuth from "../ClientAuth.ts"
import { type TokenSourceConfig, validate } from "../Config.ts"
import { InvalidConfigError } from "../Errors.ts"

/**
 * A token source configuration plus where the provider's API lives. Pass it to
 * `createTokenSource` (or `TokenSource.layer`) as it is: the two extra fields
 * are ignored there, and `baseUrl` is for the HTTP client that calls the API.
 *
 * @example
 * ```ts
 * const config: ProviderConfig = fromEnv("WEX")
 * const tokens = createTokenSource(config)
 * const res = await fetch(`${config.baseUrl}/v1/consumers/12345`, {
 *   headers: { authorization: (await tokens.getToken()).authorization() }
 * })
 * ```
 *
 * @since 0.1.0
 */
export interface ProviderConfig extends TokenSourceConfig {
  /** the preset that built it; `generic` for `fromEnv` with a prefix of your own */
  readonly provider: "wex" | "wealthcare" | "generic"
  /** the API's base URL (no trailing slash), when the provider documents one or you gave one */
  readonly baseUrl?: string | undefined
}

/**
 * A URL field a preset could not fill because of a problem it already reported
 * (an unknown WEX environment has no URLs): not checked again, so the error
 * names the cause and not its consequences.
 *
 * @internal
 */
export type UnresolvedUrl = "tokenUrl" | "baseUrl"

/**
 * The problems `validate` finds with `url` taken as a token URL (absolute,
 * `https:`, or `http:` on a loopback host only, no credentials in it), reported
 * under `name`. Every URL a preset takes obeys the same rules as `tokenUrl`, and
 * this keeps one copy of them, in `validate`.
 *
 * @internal
 */
export const urlProblems = (name: string, url: string): ReadonlyArray<string> =>
  validate({ tokenUrl: url, clientId: name }).map((problem) => problem.replace(/^tokenUrl\b/, name))

/**
 * The entries of `record` whose value is not `undefined`. An option passed as
 * `undefined` means "not set" throughout `TokenSourceConfig`, so it must not
 * override a preset's default (`{ rateLimit: undefined }` keeps WEX's limit).
 *
 * @internal
 */
export const definedOnly = <A extends object>(record: A): A =>
  Object.fromEntries(Object.entries(record).filter(([, value]) => value !== undefined)) as A

const isBlankSecret = (secret: ClientAuth.SecretInput | Redacted.Redacted<string>): boolean => {
  const raw =
    typeof secret === "string" ? secret : Redacted.isRedacted(secret) ? Redacted.value(secret) : null
  return typeof raw === "string" && raw.trim() === ""
}

const protect = <A>(value: A | string, label: string): A | Redacted.Redacted<string> =>
  typeof value === "string" ? Redacted.make(value, { label }) : value

/**
 * Finishes a preset: runs `validate` (and the URL rules on `baseUrl`) over
 * it, adds the preset's own `problems`, and throws one `InvalidConfigError` with
 * all of them. Otherwise returns the configuration with a plain-string
 * `clientSecret` or `refreshToken` wrapped in `Redacted`, so that what a preset
 * returns prints, serialises and inspects without them (a provider function is
 * kept as it is, and checked when it is called).
 *
 * @internal
 */
export const finish = <C extends ProviderConfig>(
  config: C,
  problems: ReadonlyArray<string>,
  unresolved: ReadonlyArray<UnresolvedUrl> = []
): C => {
  const blank = [
    ...(config.clientSecret !== undefined && isBlankSecret(config.clientSecret)
      ? ["clientSecret is empty"]
      : []),
    ...(config.refreshToken !== undefined && isBlankSecret(config.refreshToken)
      ? ["refreshToken is empty"]
      : [])
  ]
  const general = validate(config).filter(
    (problem) => !(unresolved.includes("tokenUrl") && /^tokenUrl\b/.test(problem))
  )
  const api =
    config.baseUrl === undefined || unresolved.includes("baseUrl")
      ? []
      : urlProblems("baseUrl", config.baseUrl)
  const all = [...new Set([...problems, ...blank, ...general, ...api])]
  if (all.length > 0) throw new InvalidConfigError({ problems: all })
  return {
    ...config,
    ...(config.clientSecret === undefined
      ? {}
      : { clientSecret: protect(config.clientSecret, "client_secret") }),
    ...(config.refreshToken === undefined
      ? {}
      : { refreshToken: protect(config.refreshToken, "refresh_token") })
  }
}
