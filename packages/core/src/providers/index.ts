/**
 * `@authfetch/core/providers`: presets for the providers authfetch was built
 * for, and for any OAuth 2.0 API configured from environment variables. A preset
 * is a `TokenSourceConfig` (pass it to `createTokenSource` or
 * `TokenSource.layer`) with the provider's documented token endpoint, grant,
 * client authentication, token lifetime and rate limit filled in, plus
 * `baseUrl`, where its API lives. Every URL can be overridden: the providers'
 * own pages disagree on some of them (see `wex` and `wealthcare`).
 *
 * @example
 * ```ts
 * import { createTokenSource } from "@authfetch/core"
 * import { fromEnv, wealthcare, wex } from "@authfetch/core/providers"
 *
 * const wexTokens = createTokenSource(wex({ environment: "uat", clientId, clientSecret }))
 * const wealthcareTokens = createTokenSource(wealthcare({ clientId, clientSecret, scope: "bensoft_api" }))
 * const fromVariables = createTokenSource(fromEnv("WEX"))
 * ```
 *
 * @since 0.1.0
 */
export { type FromEnvOptions, fromEnv } from "./env.ts"
export type { ProviderConfig } from "./preset.ts"
export {
  type SignInFromEnvOptions,
  signInFromEnv,
  type WealthCareSignInOptions,
  wealthcareSignIn
} from "./signIn.ts"
export { type WealthCareOptions, wealthcare } from "./wealthcare.ts"
export { type WexConfig, type WexEnvironment, type WexOptions, wex } from "./wex.ts"
