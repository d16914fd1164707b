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
import { Duration, Effect, Layer, ManagedRuntime, Redacted } from "effect"
import * as BffProxyModule from "./BffProxy.ts"
import { cacheKey, type TokenSourceConfig, validate } from "./Config.ts"
import * as Csrf from "./Csrf.ts"
import { type CsrfError, InvalidConfigError } from "./Errors.ts"
import type { GetTokenOptions } from "./Middleware.ts"
import type * as SessionStore from "./SessionStore.ts"
import type { AccessToken } from "./Token.ts"
import type * as TokenBudget from "./TokenBudget.ts"
import * as TokenSource from "./TokenSource.ts"
import type * as TokenStore from "./TokenStore.ts"
import * as UserSessions from "./UserSessions.ts"

export * as AuthHttpClient from "./AuthHttpClient.ts"
export type { BearerOptions } from "./Bearer.ts"
export * as Bearer from "./Bearer.ts"
export type { ProxyOptions } from "./BffProxy.ts"
export * as BffProxy from "./BffProxy.ts"
export * as ClientAuth from "./ClientAuth.ts"
export type { TokenSourceConfig } from "./Config.ts"
export * as Config from "./Config.ts"
export * as Csrf from "./Csrf.ts"
export * as Discovery from "./Discovery.ts"
export type { OAuthErrorCode } from "./Errors.ts"
export {
  CsrfError,
  DiscoveryError,
  InvalidConfigError,
  InvalidTokenResponseError,
  OAuthError,
  RateLimitedError,
  RedirectError,
  RequestTimeoutError,
  RetriesExhaustedError,
  SignInError,
  SignInRequiredError,
  TokenEndpointError,
  type TokenError,
  TokenStoreError
} from "./Errors.ts"
export type { AcquireReason, RequestEvent, SessionEvent, TokenEvent } from "./Events.ts"
export * as Grant from "./Grant.ts"
export * as IdToken from "./IdToken.ts"
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
export * as Revocation from "./Revocation.ts"
export * as SessionStore from "./SessionStore.ts"
export * as SignIn from "./SignIn.ts"
export * as Token from "./Token.ts"
export { AccessToken } from "./Token.ts"
export * as TokenBudget from "./TokenBudget.ts"
export * as TokenEndpoint from "./TokenEndpoint.ts"
export * as TokenSource from "./TokenSource.ts"
export * as TokenStore from "./TokenStore.ts"
export type { UserSessionsConfig } from "./UserSessions.ts"
export * as UserSessions from "./UserSessions.ts"

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

/** The default services, where a given store's win (a shared budget replaces the process's). */
const withStore = <R>(defaults: Layer.Layer<R>, store: Layer.Layer<never> | undefined): Layer.Layer<R> =>
  store === undefined ? defaults : Layer.merge(defaults, store as unknown as Layer.Layer<R>)

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
  const dependencies = withStore(TokenSource.layerDependencies, store)
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

/**
 * A signed-in user as one request saw them, with their tokens.
 *
 * @since 0.2.0
 */
export interface UserSession extends UserSessions.Session {
  /**
   * The user's tokens, as a token source for `authFetch` and the proxies:
   * the access token of this session only, refreshed with its refresh token.
   */
  readonly tokens: {
    readonly getToken: (options?: GetTokenOptions) => Promise<AccessToken>
    readonly peek: () => AccessToken | undefined
    readonly invalidate: (token: AccessToken) => Promise<void>
  }
}

/**
 * The sessions of signed-in users, for Promise code and web handlers.
 *
 * @since 0.2.0
 */
export interface UserSessionsHandle extends AsyncDisposable {
  /** the app's origin (of `redirectUri`) */
  readonly appOrigin: string
  /** the session cookie's name */
  readonly cookieName: string
  /** the signed-in user of a request's `Cookie` header, or `undefined` */
  session(cookie: string | null | undefined): Promise<UserSession | undefined>
  /** where to send the browser to sign in, and the cookie to set (`returnTo`: a path of this app) */
  startSignIn(input: {
    readonly cookie?: string | null | undefined
    readonly returnTo?: string | undefined
    /** for this sign-in only: `login_hint`, `prompt` (never the protocol's own parameters) */
    readonly params?: Readonly<Record<string, string>> | undefined
  }): Promise<UserSessions.Redirect>
  /** the callback (`query`: its query string): where to go, with the new session's cookie */
  completeSignIn(input: {
    readonly query: URLSearchParams | string
    readonly cookie?: string | null | undefined
  }): Promise<UserSessions.Redirect & { readonly session: UserSession }>
  /** ends the session of `cookie` (revoking its refresh token): where to go, with the cookie cleared */
  endSession(input: { readonly cookie?: string | null | undefined }): Promise<UserSessions.Redirect>
  /** a session from the password grant (trusted back ends only); the password is kept nowhere */
  signInWithPassword(input: {
    readonly username: string
    readonly password: string
    readonly cookie?: string | null | undefined
  }): Promise<{ readonly session: UserSession; readonly cookies: ReadonlyArray<string> }>
  /** `GET`: redirects to the authorization server (`returnTo` from the options or the query) */
  signIn(request: Request, options?: { readonly returnTo?: string | undefined }): Promise<Response>
  /** `GET` of the callback: redirects to `returnTo` with the session cookie, or a problem+json 400 */
  callback(request: Request): Promise<Response>
  /** `POST` (a form of the app: `Origin` checked): 303 to `afterSignOut` with the cookie cleared */
  signOut(request: Request): Promise<Response>
  /** `CsrfError` when a state-changing request may come from another site (`Csrf.check` at this origin) */
  checkCsrf(
    request: Csrf.RequestLike,
    options?: { readonly header?: string | false | undefined }
  ): CsrfError | undefined
  /** stops background refreshes; idempotent */
  dispose(): Promise<void>
}

/**
 * Options of `createUserSessions` beyond the configuration.
 *
 * @since 0.2.0
 */
export interface CreateUserSessionsOptions {
  /**
   * where sessions live (default: process memory): a layer of `SessionStore`
   * (and, for a fleet, `TokenBudget`), or an object that carries one, such as
   * `redisStore(...)` of `@authfetch/redis` (its `sessionLayer`)
   */
  readonly store?:
    | Layer.Layer<SessionStore.SessionStore>
    | Layer.Layer<SessionStore.SessionStore | TokenBudget.TokenBudget>
    | {
        readonly sessionLayer:
          | Layer.Layer<SessionStore.SessionStore>
          | Layer.Layer<SessionStore.SessionStore | TokenBudget.TokenBudget>
      }
    | undefined
}

const redirectResponse = (status: 302 | 303, redirect: UserSessions.Redirect): Response => {
  const headers = new Headers({ location: redirect.location, "cache-control": "no-store" })
  for (const cookie of redirect.cookies) headers.append("set-cookie", cookie)
  return new Response(null, { status, headers })
}

/** A refused sign-in, sign-out or a store failure as problem+json; anything else is rethrown. */
const problemOf = (error: unknown): Response => {
  const answer = BffProxyModule.problemFor(error)
  if (answer === undefined) throw error
  return BffProxyModule.problemResponse(answer)
}

/**
 * Creates the sessions of signed-in users (authorization code + PKCE, OpenID
 * Connect with `openid`; see `UserSessions`). Throws `InvalidConfigError` at
 * once for a configuration that cannot work. The handlers take web
 * `Request`s (Next.js route handlers use them as they are); the
 * framework-neutral methods take the `Cookie` header and give `Set-Cookie`
 * values (Express uses those).
 *
 * @example
 * ```ts
 * const sessions = createUserSessions({
 *   issuer: "https://beta.auth.wealthcare.com",
 *   clientId,
 *   clientSecret,
 *   scope: "openid profile bensoft_api offline_access",
 *   redirectUri: "https://app.example/auth/callback"
 * })
 * // GET /auth/signin:   return sessions.signIn(request)
 * // GET /auth/callback: return sessions.callback(request)
 * const session = await sessions.session(request.headers.get("cookie"))
 * const api = authFetch(session!.tokens, { baseUrl })
 * ```
 *
 * @since 0.2.0
 */
export const createUserSessions = (
  config: UserSessions.UserSessionsConfig,
  options?: CreateUserSessionsOptions
): UserSessionsHandle => {
  const problems = UserSessions.validate(config)
  if (problems.length > 0) throw new InvalidConfigError({ problems })
  const given = options?.store
  const store = given === undefined ? undefined : "sessionLayer" in given ? given.sessionLayer : given
  const dependencies = withStore(UserSessions.layerDependencies, store)
  const runtime = ManagedRuntime.make(UserSessions.layer(config).pipe(Layer.provide(dependencies)))
  let engine: UserSessions.Shape | undefined
  const run = <A, E>(f: (sessions: UserSessions.Shape) => Effect.Effect<A, E>): Promise<A> =>
    engine !== undefined
      ? runtime.runPromise(f(engine))
      : runtime.runPromise(
          Effect.flatMap(UserSessions.UserSessions, (built) => {
            engine = built
            return f(built)
          })
        )
  const appOrigin = new URL(config.redirectUri).origin
  const secure = new URL(config.redirectUri).protocol === "https:"
  const cookieName = config.cookieName ?? (secure ? "__Host-authfetch-session" : "authfetch-session")
  let disposed: Promise<void> | undefined
  const dispose = () => {
    disposed ??= runtime.dispose()
    return disposed
  }
  const withTokens = (session: UserSessions.Session): UserSession => ({
    ...session,
    tokens: {
      peek: () => engine?.peek(session.key, Date.now()),
      getToken: (getOptions) =>
        run((sessions) =>
          sessions.accessToken(session.key, {
            maxWaitMillis:
              getOptions?.maxWait === undefined
                ? undefined
                : Duration.toMillis(Duration.fromInputUnsafe(getOptions.maxWait))
          })
        ),
      invalidate: (token) => run((sessions) => sessions.invalidate(session.key, token))
    }
  })
  const handle: UserSessionsHandle = {
    appOrigin,
    cookieName,
    session: async (cookie) => {
      const found = await run((sessions) => sessions.lookup(cookie))
      return found === undefined ? undefined : withTokens(found)
    },
    startSignIn: (input) => run((sessions) => sessions.startSignIn(input)),
    completeSignIn: async (input) => {
      const query = typeof input.query === "string" ? new URLSearchParams(input.query) : input.query
      const done = await run((sessions) => sessions.completeSignIn({ query, cookie: input.cookie }))
      return { ...done, session: withTokens(done.session) }
    },
    endSession: (input) => run((sessions) => sessions.signOut(input)),
    signInWithPassword: async (input) => {
      const done = await run((sessions) =>
        sessions.signInWithPassword({
          username: input.username,
          password: Redacted.make(input.password, { label: "password" }),
          cookie: input.cookie
        })
      )
      return { cookies: done.cookies, session: withTokens(done.session) }
    },
    signIn: async (request, signInOptions) => {
      try {
        const returnTo =
          signInOptions?.returnTo ?? new URL(request.url).searchParams.get("returnTo") ?? undefined
        return redirectResponse(
          302,
          await handle.startSignIn({ cookie: request.headers.get("cookie"), returnTo })
        )
      } catch (error) {
        return problemOf(error)
      }
    },
    callback: async (request) => {
      try {
        const done = await handle.completeSignIn({
          query: new URL(request.url).searchParams,
          cookie: request.headers.get("cookie")
        })
        return redirectResponse(302, done)
      } catch (error) {
        return problemOf(error)
      }
    },
    signOut: async (request) => {
      if (request.method.toUpperCase() !== "POST") {
        return BffProxyModule.problem(405, "Method Not Allowed", "Sign out with POST.", { allow: "POST" })
      }
      const refused = Csrf.check(request, { appOrigin, header: false })
      if (refused) return problemOf(refused)
      try {
        // 303: the browser follows with a GET
        return redirectResponse(303, await handle.endSession({ cookie: request.headers.get("cookie") }))
      } catch (error) {
        return problemOf(error)
      }
    },
    checkCsrf: (request, csrfOptions) => Csrf.check(request, { appOrigin, header: csrfOptions?.header }),
    dispose,
    [Symbol.asyncDispose]: dispose
  }
  return handle
}
