/**
 * `@authfetch/core`: OAuth 2.0 access tokens for server-side API calls.
 *
 * Promise users call `createTokenSource(config)`; Effect users take the same
 * engine as services and layers (`TokenSource`, `TokenStore`, `TokenEndpoint`,
 * `RetryPolicy`, ...), exported here as namespaces.
 *
 * @example
 * ```ts
 * import { createTokenSource } from "@authfetch/core"
 *
 * const tokens = createTokenSource({
 *   tokenUrl: "https://platform.uat.benefits.wexglobal.com/authorize",
 *   clientId: process.env.WEX_CLIENT_ID!,
 *   clientSecret: process.env.WEX_CLIENT_SECRET!
 * })
 * const token = await tokens.getToken()
 * const res = await fetch("https://platform.uat.benefits.wexglobal.com/api/v1/consumers/12345", {
 *   headers: { authorization: token.authorization() }
 * })
 * if (res.status === 401) await tokens.invalidate(token)
 * await tokens.dispose()
 * ```
 *
 * @since 0.1.0
 */
import { Duration, Effect, Layer, ManagedRuntime } from "effect"
import { cacheKey, type TokenSourceConfig, validate } from "./Config.ts"
import { InvalidConfigError } from "./Errors.ts"
import type { GetTokenOptions } from "./Middleware.ts"
import type { AccessToken } from "./Token.ts"
import type * as TokenBudget from "./TokenBudget.ts"
import * as TokenSource from "./TokenSource.ts"
import type * as TokenStore from "./TokenStore.ts"

export * as AuthHttpClient from "./AuthHttpClient.ts"
export type { BearerOptions } from "./Bearer.ts"
export * as Bearer from "./Bearer.ts"
export type { ProxyOptions } from "./BffProxy.ts"
export * as BffProxy from "./BffProxy.ts"
export * as ClientAuth from "./ClientAuth.ts"
export type { TokenSourceConfig } from "./Config.ts"
export * as Config from "./Config.ts"
export type { OAuthErrorCode } from "./Errors.ts"
export {
  InvalidConfigError,
  InvalidTokenResponseError,
  OAuthError,
  RateLimitedError,
  RedirectError,
  RequestTimeoutError,
  RetriesExhaustedError,
  TokenEndpointError,
  type TokenError,
  TokenStoreError
} from "./Errors.ts"
export type { AcquireReason, RequestEvent, TokenEvent } from "./Events.ts"
export * as Grant from "./Grant.ts"
export * as Middleware from "./Middleware.ts"
export {
  type AuthFetchOptions,
  authFetch,
  compose,
  type FetchMiddleware,
  type GetTokenOptions,
  isTokens,
  type Tokens,
  withAuth,
  withProblemDetails,
  withRetry,
  withTimeout
} from "./Middleware.ts"
export * as Problem from "./Problem.ts"
export { ProblemDetailsError } from "./Problem.ts"
export type { BackoffOptions, RequestRetryOptions } from "./RetryPolicy.ts"
export * as RetryPolicy from "./RetryPolicy.ts"
export * as Token from "./Token.ts"
export { AccessToken } from "./Token.ts"
export * as TokenBudget from "./TokenBudget.ts"
export * as TokenEndpoint from "./TokenEndpoint.ts"
export * as TokenSource from "./TokenSource.ts"
export * as TokenStore from "./TokenStore.ts"

/**
 * A token source for Promise code.
 *
 * @since 0.1.0
 */
export interface TokenSourceHandle extends AsyncDisposable {
  /** the cache key of this source's tokens (no secrets in it) */
  readonly key: string
  /** a usable access token; rejects with a `TokenError` (`maxWait`: see `GetTokenOptions`) */
  getToken(options?: GetTokenOptions): Promise<AccessToken>
  /** the current token if it is fresh, synchronously; `undefined` means "call getToken" */
  peek(): AccessToken | undefined
  /** a resource server rejected `token`: drop it (only it) so the next `getToken` gets a new one */
  invalidate(token: AccessToken): Promise<void>
  /** stops background refresh and aborts requests in flight; idempotent */
  dispose(): Promise<void>
}

/**
 * Options of `createTokenSource` beyond the token configuration.
 *
 * @since 0.1.0
 */
export interface CreateOptions {
  /**
   * A shared token store (default: process memory): a layer of `TokenStore`
   * (and, for a fleet, `TokenBudget`), or an object that carries one, such as
   * `redisStore(...)` of `@authfetch/redis`.
   */
  readonly store?: StoreLayer | { readonly layer: StoreLayer } | undefined
}

/**
 * A layer that provides the token store, and optionally the token budget that
 * replaces the process's own.
 *
 * @since 0.1.0
 */
export type StoreLayer =
  | Layer.Layer<TokenStore.TokenStore>
  | Layer.Layer<TokenStore.TokenStore | TokenBudget.TokenBudget>

/**
 * Creates a token source backed by the Effect engine. Throws
 * `InvalidConfigError` at once for a configuration that cannot work.
 *
 * @example
 * ```ts
 * await using tokens = createTokenSource({ tokenUrl, clientId, clientSecret: () => secrets.get("wex") })
 * const token = await tokens.getToken()
 * ```
 *
 * @since 0.1.0
 */
export const createTokenSource = (config: TokenSourceConfig, options?: CreateOptions): TokenSourceHandle => {
  const problems = validate(config)
  if (problems.length > 0) throw new InvalidConfigError({ problems })
  const given = options?.store
  const store = given === undefined ? undefined : "layer" in given ? given.layer : given
  // The store's services win over the defaults (a shared budget replaces the process's).
  const dependencies = store
    ? Layer.merge(TokenSource.layerDependencies, store as Layer.Layer<TokenStore.TokenStore>)
    : TokenSource.layerDependencies
  const runtime = ManagedRuntime.make(TokenSource.layer(config).pipe(Layer.provide(dependencies)))
  // Once built, the service is kept so that a fresh token is returned without running an effect.
  let source: TokenSource.Shape | undefined
  const get = Effect.flatMap(TokenSource.TokenSource, (built) => {
    source = built
    return built.get
  })
  let waiting: Promise<AccessToken> | undefined
  let disposed: Promise<void> | undefined
  const dispose = () => {
    disposed ??= runtime.dispose()
    return disposed
  }
  return {
    key: cacheKey(config),
    getToken: (getOptions) => {
      if (disposed) return Promise.reject(new InvalidConfigError({ problems: ["token source is disposed"] }))
      const fresh = source?.peek(Date.now())
      if (fresh) return Promise.resolve(fresh)
      if (getOptions?.maxWait !== undefined) {
        const maxWait = Duration.toMillis(Duration.fromInputUnsafe(getOptions.maxWait))
        return runtime.runPromise(
          Effect.flatMap(TokenSource.TokenSource, (built) => {
            source = built
            return built.getWithin(maxWait)
          })
        )
      }
      // Callers that arrive while a token is on its way share one wait (the engine would
      // give them the same token anyway): a cold burst does not start a fiber a caller.
      waiting ??= runtime.runPromise(get).finally(() => {
        waiting = undefined
      })
      return waiting
    },
    peek: () => (disposed ? undefined : source?.peek(Date.now())),
    invalidate: (token) =>
      disposed
        ? Promise.resolve()
        : runtime.runPromise(Effect.flatMap(TokenSource.TokenSource, (source) => source.invalidate(token))),
    dispose,
    [Symbol.asyncDispose]: dispose
  }
}
