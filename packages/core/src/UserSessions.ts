/**
 * Signed-in users and their tokens: the sign-in (authorization code + PKCE,
 * OpenID Connect when the scope says `openid`), a session per browser, the
 * user's token set kept server-side and refreshed, and sign-out with
 * revocation. Where a user's token is refreshed: `refresh`.
 *
 * - **Sessions** live in a `SessionStore` (process memory by default, Redis
 *   for a fleet) under the digest of a random session id; the browser holds
 *   only that id, in an `HttpOnly`, `SameSite=Lax` cookie (`__Host-` and
 *   `Secure` over HTTPS; a loopback `http:` app gets neither, as browsers
 *   require). A new id is made at every sign-in, and the session the browser
 *   had before is ended (no fixation). Sessions end after `idleTimeout`
 *   without a request, and after `absoluteTimeout` whatever happens.
 * - **Whose token**: the session key is derived from the request's own
 *   cookie, here, and a session belongs to one configuration (`client`, the
 *   digest of issuer, client id and redirect URI). An adapter hands over the
 *   `Cookie` header and never chooses a user.
 * - **The user's token set** (access, refresh and ID token) is refreshed with
 *   the refresh token: one refresh at a time per session, across routes,
 *   bundles and instances (the store's lock spans read, request and write;
 *   the rotated refresh token is written before anyone uses the new access
 *   token, since a server that detects reuse revokes the grant, RFC 9700
 *   4.14.2). A token past its refresh point is served while a refresh runs in
 *   the background; an expired one waits for it. `invalid_grant` ends the
 *   session: `SignInRequiredError`.
 * - **Sign-out** deletes the session and revokes its refresh token (RFC 7009)
 *   when the server has a revocation endpoint.
 * - **A password sign-in** (the password grant, for trusted back ends) makes
 *   the same kind of session; the password is sent once and kept nowhere.
 *
 * Token requests spend the client's `TokenBudget` like a token source's.
 *
 * @example
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { UserSessions } from "@authfetch/core"
 *
 * const SessionsLive = UserSessions.layer({
 *   issuer: "https://beta.auth.wealthcare.com",
 *   clientId,
 *   clientSecret,
 *   scope: "openid profile bensoft_api offline_access",
 *   redirectUri: "https://app.example/auth/callback"
 * }).pipe(Layer.provide(UserSessions.layerDependencies))
 * ```
 *
 * @since 0.2.0
 */
import { sha256 } from "@noble/hashes/sha2.js"
import { Clock, Context, Deferred, Duration, Effect, Layer, Redacted, Result, type Scope } from "effect"
import { FetchHttpClient, HttpClient } from "effect/http"
import type { TokenAccess } from "./Bearer.ts"
import * as ClientAuth from "./ClientAuth.ts"
import { budgetKey, isSecureOrigin, kindOf, normalizeScope } from "./Config.ts"
import * as Discovery from "./Discovery.ts"
import {
  DiscoveryError,
  InvalidConfigError,
  type InvalidTokenResponseError,
  OAuthError,
  RateLimitedError,
  SignInError,
  SignInRequiredError,
  TokenEndpointError,
  type TokenError,
  type TokenStoreError
} from "./Errors.ts"
import { emitSessionTo, type SessionEvent } from "./Events.ts"
import * as Grant from "./Grant.ts"
import * as IdToken from "./IdToken.ts"
import { clearCookie, isCookieName, randomValue, readCookie, setCookie } from "./internal/cookies.ts"
import { sleepUnref } from "./internal/sleepUnref.ts"
import * as RetryPolicy from "./RetryPolicy.ts"
import * as Revocation from "./Revocation.ts"
import * as SessionStore from "./SessionStore.ts"
import * as SignIn from "./SignIn.ts"
import { type AccessToken, type FreshnessOptions, isFresh, isUsable, makeAccessToken } from "./Token.ts"
import * as TokenBudget from "./TokenBudget.ts"
import * as TokenEndpoint from "./TokenEndpoint.ts"
import { DEFAULT_RATE_LIMIT } from "./TokenSource.ts"

/**
 * The configuration of the sessions of one app with one authorization server.
 *
 * @since 0.2.0
 */
export interface UserSessionsConfig extends FreshnessOptions {
  /**
   * the authorization server's issuer: its endpoints are read from its
   * metadata (OIDC Discovery, RFC 8414) unless given below, and callbacks'
   * `iss` and ID tokens' `iss` must be it. Required with the `openid` scope.
   */
  readonly issuer?: string | undefined
  /** the authorization endpoint (default: the issuer's metadata) */
  readonly authorizationUrl?: string | undefined
  /** the token endpoint (default: the issuer's metadata) */
  readonly tokenUrl?: string | undefined
  /** the revocation endpoint (RFC 7009; default: the issuer's metadata); `false`: no revocation at sign-out */
  readonly revocationUrl?: string | false | undefined
  readonly clientId: string
  /** a string, a `Redacted`, or an async provider (a public client has none) */
  readonly clientSecret?: ClientAuth.SecretInput | undefined
  /** default: `client_secret_post` with a secret, `none` without */
  readonly clientAuth?: ClientAuth.Method | undefined
  /** asked at sign-in; `offline_access` gets a refresh token, `openid` an ID token */
  readonly scope: string | ReadonlyArray<string>
  /** this app's callback URL, absolute, registered with the server (`https:`; `http:` on loopback) */
  readonly redirectUri: string
  /** further authorization request parameters (`prompt`, `acr_values`, `audience`, ...) */
  readonly authorizationParams?: Readonly<Record<string, string>> | undefined
  /**
   * refuse a callback without `iss` (RFC 9207); default: what the issuer's
   * metadata says (`authorization_response_iss_parameter_supported`)
   */
  readonly requireIss?: boolean | undefined
  /** the session cookie's name; default `__Host-authfetch-session` (`authfetch-session` on loopback `http:`) */
  readonly cookieName?: string | undefined
  /** a session with no request for this long ends; default 30 minutes */
  readonly idleTimeout?: Duration.Input | undefined
  /** a session ends this long after sign-in whatever happens; default 8 hours */
  readonly absoluteTimeout?: Duration.Input | undefined
  /** time allowed between sending the browser to sign in and its callback; default 10 minutes */
  readonly signInTimeout?: Duration.Input | undefined
  /** where a sign-in without `returnTo` lands; default `/` */
  readonly afterSignIn?: string | undefined
  /** where sign-out sends the browser; default `/` */
  readonly afterSignOut?: string | undefined
  /**
   * what the app sees of a user (`session.user`): default, the ID token's
   * claims less the protocol ones (`IdToken.userClaims`); for a password
   * sign-in without an ID token, `{ username }`
   */
  readonly user?: ((claims: Readonly<Record<string, unknown>>) => Record<string, unknown>) | undefined
  /** lifetime assumed when a token response has no `expires_in`; default 300 s */
  readonly defaultExpiresIn?: Duration.Input | undefined
  /** time allowed for one token request; default 10 s */
  readonly tokenRequestTimeout?: Duration.Input | undefined
  /** retries of a failed refresh (never of a code exchange: a code is single-use) */
  readonly tokenRequestRetry?: RetryPolicy.BackoffOptions | undefined
  /** the client's budget of token requests (shared with its token sources); default 100 per minute */
  readonly rateLimit?: { readonly limit: number; readonly window: Duration.Input } | false | undefined
  /** cap on a token response body; default 64 KiB */
  readonly maxResponseBytes?: number | undefined
  /** the fetch the token, discovery and revocation requests use */
  readonly fetch?: typeof globalThis.fetch | undefined
  /** sign-ins, refreshes, sign-outs and failures; never a token, a code or a session id */
  readonly onEvent?: ((event: SessionEvent) => void) | undefined
}

/** A session ends after this long without a request, by default. */
export const DEFAULT_IDLE_TIMEOUT: Duration.Duration = Duration.minutes(30)
/** A session ends this long after sign-in, by default. */
export const DEFAULT_ABSOLUTE_TIMEOUT: Duration.Duration = Duration.hours(8)
/** An ended session stays in the store this long, so that its end is reported. */
const ENDED_GRACE_MILLIS = 60_000
/** A sign-in must come back within this long, by default. */
export const DEFAULT_SIGN_IN_TIMEOUT: Duration.Duration = Duration.minutes(10)

/**
 * A signed-in user, as one request saw it.
 *
 * @since 0.2.0
 */
export interface Session {
  /** the session's key: a digest of its id (the id itself never leaves the cookie) */
  readonly key: string
  /** what the app may see of the user */
  readonly user: Readonly<Record<string, unknown>>
  /** the user's `sub`, when the server said */
  readonly subject?: string | undefined
  /** ms since epoch */
  readonly createdAt: number
  /** when the session ends at the latest (absolute lifetime), ms since epoch */
  readonly expiresAt: number
  /** the granted scope */
  readonly scope?: string | undefined
}

/**
 * What a browser is to be answered: where to go and the cookies to set.
 *
 * @since 0.2.0
 */
export interface Redirect {
  readonly location: string
  /** `Set-Cookie` values */
  readonly cookies: ReadonlyArray<string>
}

/**
 * @since 0.2.0
 */
export interface Shape {
  /** the app's origin (of `redirectUri`), for CSRF checks */
  readonly appOrigin: string
  readonly cookieName: string
  /** `Secure` cookies (every origin but loopback `http:`) */
  readonly secureCookies: boolean
  /** the browser is sent to sign in: where to, and the cookie binding the sign-in to it */
  readonly startSignIn: (input: {
    readonly cookie?: string | null | undefined
    readonly returnTo?: string | undefined
    /**
     * parameters for this sign-in only (`login_hint`, `prompt=login` to ask again), on top of
     * `authorizationParams`; the protocol's own (`state`, `redirect_uri`, ...) cannot be set
     */
    readonly params?: Readonly<Record<string, string>> | undefined
  }) => Effect.Effect<Redirect, SignInError | DiscoveryError | TokenStoreError>
  /** the callback: checked, code exchanged, session made; where to go with its cookie */
  readonly completeSignIn: (input: {
    readonly query: URLSearchParams
    readonly cookie?: string | null | undefined
  }) => Effect.Effect<
    Redirect & { readonly session: Session },
    SignInError | DiscoveryError | TokenStoreError | RateLimitedError
  >
  /** a session from the password grant (trusted back ends); the password is kept nowhere */
  readonly signInWithPassword: (input: {
    readonly username: string
    readonly password: string | Redacted.Redacted<string>
    readonly cookie?: string | null | undefined
  }) => Effect.Effect<
    { readonly session: Session; readonly cookies: ReadonlyArray<string> },
    SignInError | DiscoveryError | TokenStoreError | RateLimitedError
  >
  /** ends the request's session (revoking its refresh token); where to go, and the cookie cleared */
  readonly signOut: (input: {
    readonly cookie?: string | null | undefined
  }) => Effect.Effect<Redirect, TokenStoreError | DiscoveryError>
  /** the session of a request's `Cookie` header, or `undefined` */
  readonly lookup: (cookie: string | null | undefined) => Effect.Effect<Session | undefined, TokenStoreError>
  /**
   * a usable access token of session `key`: the current one, or one refreshed
   * now (waiting at most `maxWaitMillis`)
   */
  readonly accessToken: (
    key: string,
    options?: { readonly maxWaitMillis?: number | undefined }
  ) => Effect.Effect<AccessToken, TokenError>
  /** the current token of session `key` if it is fresh at `now`, without I/O (after a `lookup`) */
  readonly peek: (key: string, now: number) => AccessToken | undefined
  /** a resource server refused `token`: it is expired in session `key` (only if it is still its token) */
  readonly invalidate: (key: string, token: AccessToken) => Effect.Effect<void>
}

/**
 * The sessions service.
 *
 * @example
 * ```ts
 * const sessions = yield* UserSessions.UserSessions
 * const session = yield* sessions.lookup(request.headers.get("cookie"))
 * ```
 *
 * @since 0.2.0
 */
export class UserSessions extends Context.Service<UserSessions, Shape>()("@authfetch/core/UserSessions") {}

/** What the store holds for a session. */
interface SessionEntry {
  readonly v: 1
  readonly kind: "session"
  /** the configuration it belongs to (`clientKeyOf`) */
  readonly client: string
  readonly createdAt: number
  readonly expiresAt: number
  readonly touchedAt: number
  readonly subject?: string | undefined
  readonly user: Readonly<Record<string, unknown>>
  readonly tokens: StoredTokens
}

interface StoredTokens {
  readonly accessToken: string
  readonly tokenType: string
  readonly receivedAt: number
  readonly expiresAt: number
  readonly scope?: string | undefined
  readonly refreshToken?: string | undefined
  readonly idToken?: string | undefined
}

/** What the store holds for a sign-in under way, under the digest of its `state`. */
interface TransactionEntry {
  readonly v: 1
  readonly kind: "sign-in"
  readonly client: string
  /** digest of the browser-binding cookie's value */
  readonly binding: string
  readonly codeVerifier: string
  readonly nonce?: string | undefined
  readonly returnTo: string
  readonly createdAt: number
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value)
const isNumber = (value: unknown): value is number => typeof value === "number" && Number.isFinite(value)
const isOptionalString = (value: unknown) => value === undefined || typeof value === "string"

const isStoredTokens = (value: unknown): value is StoredTokens =>
  isRecord(value) &&
  typeof value.accessToken === "string" &&
  typeof value.tokenType === "string" &&
  isNumber(value.receivedAt) &&
  isNumber(value.expiresAt) &&
  isOptionalString(value.scope) &&
  isOptionalString(value.refreshToken) &&
  isOptionalString(value.idToken)

/** An entry read back is checked: a store shared with other versions, or damaged, must not crash a request. */
const asSession = (entry: SessionStore.Entry | undefined, client: string): SessionEntry | undefined =>
  entry !== undefined &&
  entry.v === 1 &&
  entry.kind === "session" &&
  entry.client === client &&
  isNumber(entry.createdAt) &&
  isNumber(entry.expiresAt) &&
  isNumber(entry.touchedAt) &&
  isOptionalString(entry.subject) &&
  isRecord(entry.user) &&
  isStoredTokens(entry.tokens)
    ? (entry as unknown as SessionEntry)
    : undefined

const asTransaction = (
  entry: SessionStore.Entry | undefined,
  client: string
): TransactionEntry | undefined =>
  entry !== undefined &&
  entry.v === 1 &&
  entry.kind === "sign-in" &&
  entry.client === client &&
  typeof entry.binding === "string" &&
  typeof entry.codeVerifier === "string" &&
  isOptionalString(entry.nonce) &&
  typeof entry.returnTo === "string" &&
  isNumber(entry.createdAt)
    ? (entry as unknown as TransactionEntry)
    : undefined

const base64url = (bytes: Uint8Array): string => {
  let binary = ""
  for (const byte of bytes) binary += String.fromCharCode(byte)
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "")
}

const digestOf = (value: string): string => base64url(sha256(new TextEncoder().encode(value)))

/**
 * The store key of a session id: a digest, so that neither the store, its
 * keys nor an event can give the id (a bearer credential) away.
 *
 * @example
 * ```ts
 * UserSessions.sessionKey(id) // "ss_3q2..."
 * ```
 *
 * @since 0.2.0
 */
export const sessionKey = (sessionId: string): string => `ss_${digestOf(`authfetch/session/v1:${sessionId}`)}`

const transactionKey = (state: string): string => `tx_${digestOf(`authfetch/sign-in/v1:${state}`)}`

/**
 * The identity of a configuration's sessions: issuer (or endpoints), client
 * and redirect URI. A session made by another configuration (another app in
 * the same store, another client) is not this one's.
 *
 * @example
 * ```ts
 * UserSessions.clientKeyOf(config) // "sc_..."
 * ```
 *
 * @since 0.2.0
 */
export const clientKeyOf = (config: UserSessionsConfig): string =>
  `sc_${digestOf(
    JSON.stringify([
      "authfetch/sessions/v1",
      config.issuer ?? null,
      config.authorizationUrl ?? null,
      config.tokenUrl ?? null,
      config.clientId,
      config.redirectUri
    ])
  )}`

const hasOpenId = (scope: string | undefined): boolean => scope?.split(" ").includes("openid") ?? false

const isDuration = (input: Duration.Input | undefined): boolean => {
  if (input === undefined) return true
  const duration = Duration.fromInput(input)
  return (
    duration._tag === "Some" && Duration.isFinite(duration.value) && Duration.toMillis(duration.value) > 0
  )
}

/**
 * Every problem with a sessions configuration, empty when it can work.
 *
 * @example
 * ```ts
 * UserSessions.validate({ clientId: "app", scope: "openid", redirectUri: "http://app.example/cb" })
 * // ["redirectUri must be https: ...", "issuer (or authorizationUrl and tokenUrl) is required", ...]
 * ```
 *
 * @since 0.2.0
 */
export const validate = (config: UserSessionsConfig): ReadonlyArray<string> => {
  if (typeof config !== "object" || config === null) {
    return [`the sessions configuration must be an object (got ${kindOf(config)})`]
  }
  const problems: Array<string> = []
  if (typeof config.clientId !== "string" || config.clientId.trim() === "")
    problems.push("clientId is required")
  const url = (name: string, value: unknown) => {
    if (value === undefined) return
    if (typeof value !== "string" || !URL.canParse(value)) problems.push(`${name} is not an absolute URL`)
    else if (!isSecureOrigin(value))
      problems.push(`${name} must be https: (http: is allowed for loopback hosts only)`)
  }
  url("issuer", config.issuer)
  url("authorizationUrl", config.authorizationUrl)
  url("tokenUrl", config.tokenUrl)
  if (config.revocationUrl !== false) url("revocationUrl", config.revocationUrl)
  if (config.redirectUri === undefined) problems.push("redirectUri is required (this app's callback URL)")
  else url("redirectUri", config.redirectUri)
  if (
    config.issuer === undefined &&
    (config.authorizationUrl === undefined || config.tokenUrl === undefined)
  ) {
    problems.push("issuer (or both authorizationUrl and tokenUrl) is required")
  }
  const scope = normalizeScope(config.scope)
  if (scope === undefined) problems.push("scope is required")
  if (hasOpenId(scope) && config.issuer === undefined) {
    problems.push("issuer is required with the openid scope (ID tokens are checked against it)")
  }
  if (config.cookieName !== undefined) {
    if (typeof config.cookieName !== "string" || !isCookieName(config.cookieName)) {
      problems.push("cookieName must be a cookie name (RFC 6265: letters, digits and !#$%&'*+-.^_`|~)")
    } else if (
      config.cookieName.startsWith("__Host-") &&
      typeof config.redirectUri === "string" &&
      URL.canParse(config.redirectUri) &&
      new URL(config.redirectUri).protocol !== "https:"
    ) {
      problems.push("a __Host- cookieName needs an https: redirectUri (browsers require Secure for it)")
    }
  }
  for (const [name, value] of [
    ["idleTimeout", config.idleTimeout],
    ["absoluteTimeout", config.absoluteTimeout],
    ["signInTimeout", config.signInTimeout],
    ["tokenRequestTimeout", config.tokenRequestTimeout],
    ["defaultExpiresIn", config.defaultExpiresIn]
  ] as const) {
    if (!isDuration(value)) problems.push(`${name} is not a positive duration`)
  }
  for (const name of Object.keys(config.authorizationParams ?? {})) {
    if (SignIn.AUTHORIZATION_PARAMETERS.has(name)) {
      problems.push(`authorizationParams.${name} is set by the sign-in itself`)
    } else if (typeof config.authorizationParams?.[name] !== "string") {
      problems.push(`authorizationParams.${name} must be a string`)
    }
  }
  for (const [name, value] of [
    ["afterSignIn", config.afterSignIn],
    ["afterSignOut", config.afterSignOut]
  ] as const) {
    if (
      value !== undefined &&
      (typeof value !== "string" || !value.startsWith("/") || value.startsWith("//"))
    ) {
      problems.push(`${name} must be a path of this app (starting with a single /)`)
    }
  }
  if (config.user !== undefined && typeof config.user !== "function") problems.push("user must be a function")
  if (config.requireIss !== undefined && typeof config.requireIss !== "boolean") {
    problems.push("requireIss must be a boolean")
  }
  if (config.onEvent !== undefined && typeof config.onEvent !== "function")
    problems.push("onEvent must be a function")
  if (typeof config.clientSecret === "string" && config.clientSecret === "")
    problems.push("clientSecret is empty")
  return problems
}

/** The endpoints a sign-in uses, once known. */
interface Endpoints {
  readonly issuer?: string | undefined
  readonly authorizationUrl: string
  readonly tokenUrl: string
  readonly revocationUrl?: string | undefined
  readonly issRequired: boolean
}

const millisOf = (input: Duration.Input | undefined, fallback: Duration.Duration): number =>
  Duration.toMillis(Duration.fromInputUnsafe(input ?? fallback))

/**
 * Builds the sessions of a configuration. Background refreshes live in the
 * current `Scope`.
 *
 * @example
 * ```ts
 * const sessions = yield* UserSessions.make(config)
 * const session = yield* sessions.lookup(cookieHeader)
 * ```
 *
 * @since 0.2.0
 */
export const make = (
  config: UserSessionsConfig
): Effect.Effect<
  Shape,
  InvalidConfigError,
  Scope.Scope | HttpClient.HttpClient | SessionStore.SessionStore | TokenBudget.TokenBudget
> =>
  Effect.gen(function* () {
    const problems = validate(config)
    if (problems.length > 0) return yield* new InvalidConfigError({ problems })
    const scope = yield* Effect.scope
    const store = yield* SessionStore.SessionStore
    const budget = yield* TokenBudget.TokenBudget
    const httpClient = yield* HttpClient.HttpClient

    const client = clientKeyOf(config)
    const appOrigin = new URL(config.redirectUri).origin
    const secureCookies = new URL(config.redirectUri).protocol === "https:"
    const cookieName = config.cookieName ?? (secureCookies ? "__Host-authfetch-session" : "authfetch-session")
    const bindingCookie = secureCookies ? "__Host-authfetch-sign-in" : "authfetch-sign-in"
    const requestedScope = normalizeScope(config.scope)!
    const openid = hasOpenId(requestedScope)
    const idleMillis = millisOf(config.idleTimeout, DEFAULT_IDLE_TIMEOUT)
    const absoluteMillis = millisOf(config.absoluteTimeout, DEFAULT_ABSOLUTE_TIMEOUT)
    const signInMillis = millisOf(config.signInTimeout, DEFAULT_SIGN_IN_TIMEOUT)
    const requestTimeoutMillis = millisOf(config.tokenRequestTimeout, TokenEndpoint.DEFAULT_TIMEOUT)
    const defaultExpiresIn = Duration.fromInputUnsafe(config.defaultExpiresIn ?? Duration.seconds(300))
    const afterSignIn = config.afterSignIn ?? "/"
    const afterSignOut = config.afterSignOut ?? "/"
    const clientAuth =
      config.clientAuth ?? (config.clientSecret === undefined ? "none" : "client_secret_post")
    const retry = RetryPolicy.forTokenRequests(config.tokenRequestRetry)
    const rateLimitOption = config.rateLimit === false ? undefined : (config.rateLimit ?? DEFAULT_RATE_LIMIT)
    const rateLimit: TokenBudget.Limit | undefined = rateLimitOption && {
      limit: rateLimitOption.limit,
      windowMillis: Duration.toMillis(Duration.fromInputUnsafe(rateLimitOption.window))
    }
    const lockOptions = { ttlMillis: requestTimeoutMillis }
    const emit = (event: SessionEvent) => emitSessionTo(config.onEvent, event)
    const userOf = (claims: Readonly<Record<string, unknown>>): Record<string, unknown> => {
      if (config.user === undefined) return IdToken.userClaims(claims)
      try {
        const user = config.user(claims)
        return isRecord(user) ? user : {}
      } catch {
        return {}
      }
    }

    const withTransport = <A, E, R>(effect: Effect.Effect<A, E, R>) => {
      const provided = Effect.provideService(effect, HttpClient.HttpClient, httpClient)
      return config.fetch ? Effect.provideService(provided, FetchHttpClient.Fetch, config.fetch) : provided
    }

    // The endpoints: as configured, else from the issuer's metadata (asked once it works).
    let endpoints: Endpoints | undefined
    const resolveEndpoints: Effect.Effect<Endpoints, DiscoveryError> = Effect.suspend(() => {
      if (endpoints !== undefined) return Effect.succeed(endpoints)
      const known = (metadata: Discovery.ServerMetadata | undefined): Endpoints => ({
        issuer: config.issuer,
        authorizationUrl: config.authorizationUrl ?? metadata?.authorization_endpoint ?? "",
        tokenUrl: config.tokenUrl ?? metadata?.token_endpoint ?? "",
        revocationUrl:
          config.revocationUrl === false
            ? undefined
            : (config.revocationUrl ?? metadata?.revocation_endpoint),
        issRequired: config.requireIss ?? metadata?.authorization_response_iss_parameter_supported === true
      })
      // With every endpoint given, the issuer's metadata is still read, for what only it says
      // (RFC 9207 `iss` support); a server without metadata is then not an error.
      const needsMetadata =
        config.authorizationUrl === undefined ||
        config.tokenUrl === undefined ||
        config.revocationUrl === undefined
      const discovered =
        config.issuer === undefined
          ? Effect.succeed(undefined)
          : Discovery.discover(config.issuer, { timeout: requestTimeoutMillis }).pipe(withTransport)
      const found = Effect.map(
        needsMetadata ? discovered : Effect.orElseSucceed(discovered, () => undefined),
        known
      )
      return Effect.flatMap(found, (resolved) => {
        if (resolved.authorizationUrl === "" || resolved.tokenUrl === "") {
          return Effect.fail(
            new DiscoveryError({
              reason: "invalid_metadata",
              detail: "the metadata names no authorization_endpoint or token_endpoint"
            })
          )
        }
        endpoints = resolved
        return Effect.succeed(resolved)
      })
    })

    const resolveSecret =
      config.clientSecret === undefined || clientAuth === "none"
        ? Effect.succeed(undefined)
        : ClientAuth.resolveSecret(config.clientSecret)

    /**
     * One admission of the client's budget. A request someone waits for fails at once when
     * the budget cannot admit it within `maxWaitMillis`; a background one waits.
     */
    const admitted = <A, E, R>(
      tokenUrl: string,
      maxWaitMillis: number,
      request: Effect.Effect<A, E, R>
    ): Effect.Effect<A, E | RateLimitedError, R> => {
      if (rateLimit === undefined) return request
      const key = budgetKey({ tokenUrl, clientId: config.clientId })
      return Effect.gen(function* () {
        for (
          let wait = yield* budget.take(key, rateLimit);
          wait > 0;
          wait = yield* budget.take(key, rateLimit)
        ) {
          if (wait > maxWaitMillis) {
            return yield* new RateLimitedError({ source: "client", retryAfterMillis: Math.ceil(wait) })
          }
          yield* sleepUnref(Duration.millis(wait))
        }
        return yield* request.pipe(Effect.ensuring(budget.settle(key)))
      })
    }

    const tokenRequest = (
      endpointsNow: Endpoints,
      grant: Grant.Grant,
      maxWaitMillis: number
    ): Effect.Effect<
      TokenEndpoint.TokenResponse,
      OAuthError | RateLimitedError | TokenEndpointError | InvalidTokenResponseError | InvalidConfigError
    > =>
      Effect.flatMap(resolveSecret, (secret) =>
        admitted(
          endpointsNow.tokenUrl,
          maxWaitMillis,
          TokenEndpoint.request({
            tokenUrl: endpointsNow.tokenUrl,
            clientId: config.clientId,
            clientAuth,
            secret,
            grant,
            // a refresh keeps the scope granted (RFC 6749 6); a code carries its own
            scope: grant.type === "password" ? requestedScope : undefined,
            maxResponseBytes: config.maxResponseBytes,
            timeout: requestTimeoutMillis
          }).pipe(withTransport)
        )
      )

    const storedTokens = (response: TokenEndpoint.TokenResponse, previous?: StoredTokens): StoredTokens => {
      const lifetime =
        response.expiresIn === undefined ? Duration.toMillis(defaultExpiresIn) : response.expiresIn * 1000
      const refreshToken =
        response.refreshToken === undefined ? previous?.refreshToken : Redacted.value(response.refreshToken)
      const idToken = response.idToken === undefined ? previous?.idToken : Redacted.value(response.idToken)
      const scope = response.scope ?? previous?.scope
      return {
        accessToken: Redacted.value(response.accessToken),
        tokenType: response.tokenType,
        receivedAt: response.receivedAt,
        expiresAt: response.receivedAt + lifetime,
        ...(scope === undefined ? {} : { scope }),
        // RFC 6749 6: without a new refresh token, the old one stays valid
        ...(refreshToken === undefined ? {} : { refreshToken }),
        ...(idToken === undefined ? {} : { idToken })
      }
    }

    // The store keeps an entry a minute past its end, so that the request that finds it
    // ended can say so (`session_ended`); `lookup` enforces the end itself.
    const ttlOf = (entry: SessionEntry, now: number) =>
      Math.max(1, Math.min(entry.touchedAt + idleMillis, entry.expiresAt) - now + ENDED_GRACE_MILLIS)

    const sessionOf = (key: string, entry: SessionEntry): Session => ({
      key,
      user: entry.user,
      ...(entry.subject === undefined ? {} : { subject: entry.subject }),
      createdAt: entry.createdAt,
      expiresAt: entry.expiresAt,
      ...(entry.tokens.scope === undefined ? {} : { scope: entry.tokens.scope })
    })

    /** A session that cannot go on: deleted from the store, forgotten here, and reported. */
    const endSession = (
      key: string,
      subject: string | undefined,
      reason: Extract<SessionEvent, { readonly type: "session_ended" }>["reason"]
    ) =>
      Effect.flatMap(store.delete(key), () =>
        Effect.sync(() => {
          handles.delete(key)
          emit({ type: "session_ended", at: Date.now(), session: key, subject, reason })
        })
      )

    // One AccessToken object per session and token value: the 401 cooldown and the hot path
    // keep state on the object, and a new one per request would register the value anew.
    const MAX_HANDLES = 10_000
    const handles = new Map<string, AccessToken>()
    const tokenFor = (key: string, stored: StoredTokens): AccessToken => {
      const known = handles.get(key)
      if (
        known !== undefined &&
        known.expiresAt === stored.expiresAt &&
        known.reveal() === stored.accessToken
      ) {
        return known
      }
      const token = makeAccessToken(
        {
          value: Redacted.make(stored.accessToken, { label: "access_token" }),
          tokenType: stored.tokenType,
          receivedAt: stored.receivedAt,
          expiresIn: Duration.millis(Math.max(0, stored.expiresAt - stored.receivedAt)),
          scope: stored.scope
        },
        config,
        0.5
      )
      handles.delete(key)
      handles.set(key, token)
      if (handles.size > MAX_HANDLES) handles.delete(handles.keys().next().value as string)
      return token
    }

    // A new session: a new id (never the one the browser had: no fixation), the old one ended.
    const openSession = (
      input: {
        readonly tokens: StoredTokens
        readonly subject: string | undefined
        readonly user: Record<string, unknown>
        readonly cookie: string | null | undefined
      },
      grantType: string,
      started: number
    ) =>
      Effect.gen(function* () {
        for (const previous of readCookie(input.cookie, cookieName)) yield* store.delete(sessionKey(previous))
        const now = yield* Clock.currentTimeMillis
        const id = randomValue()
        const key = sessionKey(id)
        const entry: SessionEntry = {
          v: 1,
          kind: "session",
          client,
          createdAt: now,
          expiresAt: now + absoluteMillis,
          touchedAt: now,
          ...(input.subject === undefined ? {} : { subject: input.subject }),
          user: input.user,
          tokens: input.tokens
        }
        yield* store.set(key, entry as unknown as SessionStore.Entry, { ttlMillis: ttlOf(entry, now) })
        tokenFor(key, entry.tokens)
        emit({
          type: "signed_in",
          at: Date.now(),
          session: key,
          subject: input.subject,
          grantType,
          hasRefreshToken: input.tokens.refreshToken !== undefined,
          expiresInSeconds: Math.round((input.tokens.expiresAt - input.tokens.receivedAt) / 1000),
          durationMillis: now - started
        })
        return {
          session: sessionOf(key, entry),
          cookie: setCookie(cookieName, id, { maxAgeSeconds: absoluteMillis / 1000, secure: secureCookies })
        }
      })

    const failSignIn = (error: SignInError): Effect.Effect<never, SignInError> =>
      Effect.suspend(() => {
        emit({ type: "sign_in_failed", at: Date.now(), reason: error.reason, code: error.code })
        return Effect.fail(error)
      })

    const exchangeFailed = (error: TokenError): SignInError | RateLimitedError =>
      error._tag === "RateLimitedError"
        ? error
        : error._tag === "OAuthError"
          ? new SignInError({
              reason: "code_exchange_failed",
              code: error.code,
              ...(error.description === undefined ? {} : { description: SignIn.printable(error.description) })
            })
          : new SignInError({ reason: "code_exchange_failed", detail: `${error._tag}: ${error.message}` })

    /** A failed exchange: a sign-in failure is reported; a spent budget is the caller's to answer (503). */
    const refusedExchange = (
      error: SignInError | RateLimitedError
    ): Effect.Effect<never, SignInError | RateLimitedError> =>
      error._tag === "SignInError" ? failSignIn(error) : Effect.fail(error)

    const startSignIn: Shape["startSignIn"] = (input) =>
      Effect.gen(function* () {
        const returnTo =
          input.returnTo === undefined || input.returnTo === ""
            ? afterSignIn
            : SignIn.safeReturnTo(input.returnTo, appOrigin)
        if (returnTo === undefined) {
          return yield* failSignIn(
            new SignInError({ reason: "return_to_refused", detail: "returnTo must be a path of this app" })
          )
        }
        const resolved = yield* resolveEndpoints
        const now = yield* Clock.currentTimeMillis
        // One binding per browser, kept across sign-ins: two tabs signing in at once both complete.
        const binding = readCookie(input.cookie, bindingCookie)[0] ?? randomValue()
        const state = randomValue()
        const codeVerifier = Grant.generateCodeVerifier()
        const nonce = openid ? randomValue() : undefined
        const transaction: TransactionEntry = {
          v: 1,
          kind: "sign-in",
          client,
          binding: digestOf(binding),
          codeVerifier,
          ...(nonce === undefined ? {} : { nonce }),
          returnTo,
          createdAt: now
        }
        yield* store.set(transactionKey(state), transaction as unknown as SessionStore.Entry, {
          ttlMillis: signInMillis
        })
        const codeChallenge = yield* Effect.promise(() => Grant.codeChallengeS256(codeVerifier))
        const url = SignIn.authorizationUrl({
          authorizationUrl: resolved.authorizationUrl,
          clientId: config.clientId,
          redirectUri: config.redirectUri,
          scope: requestedScope,
          state,
          codeChallenge,
          nonce,
          params: { ...config.authorizationParams, ...input.params }
        })
        emit({ type: "sign_in_started", at: Date.now() })
        return {
          location: url.href,
          cookies: [
            setCookie(bindingCookie, binding, { maxAgeSeconds: signInMillis / 1000, secure: secureCookies })
          ]
        }
      })

    const completeSignIn: Shape["completeSignIn"] = (input) =>
      Effect.gen(function* () {
        const started = yield* Clock.currentTimeMillis
        const state = input.query.get("state")
        if (state === null || state === "") {
          return yield* failSignIn(
            new SignInError({ reason: "state_missing", detail: "the callback has no state" })
          )
        }
        // Taken, not read: a callback completes once; a replay finds nothing.
        const transaction = asTransaction(yield* store.take(transactionKey(state)), client)
        if (transaction === undefined) {
          return yield* failSignIn(
            new SignInError({
              reason: "state_unknown",
              detail: "no sign-in under way has this state (expired, completed, or never started)"
            })
          )
        }
        const binding = readCookie(input.cookie, bindingCookie)
        if (!binding.some((value) => digestOf(value) === transaction.binding)) {
          return yield* failSignIn(
            new SignInError({
              reason: "state_mismatch",
              detail: "this sign-in was started by another browser"
            })
          )
        }
        const resolved = yield* resolveEndpoints
        const checked = SignIn.checkCallback(input.query, {
          issuer: resolved.issuer,
          issRequired: resolved.issRequired
        })
        if (Result.isFailure(checked)) return yield* failSignIn(checked.failure)
        const response = yield* tokenRequest(
          resolved,
          Grant.authorizationCode({
            code: checked.success,
            redirectUri: config.redirectUri,
            codeVerifier: transaction.codeVerifier
          }),
          requestTimeoutMillis
        ).pipe(Effect.catch((error) => refusedExchange(exchangeFailed(error))))
        const now = yield* Clock.currentTimeMillis
        let claims: Readonly<Record<string, unknown>> = {}
        if (response.idToken !== undefined || openid) {
          if (response.idToken === undefined) {
            return yield* failSignIn(
              new SignInError({ reason: "id_token_missing", detail: "the scope asked for openid" })
            )
          }
          const validated = IdToken.validate(Redacted.value(response.idToken), {
            issuer: resolved.issuer ?? "",
            clientId: config.clientId,
            nonce: transaction.nonce,
            now
          })
          if (Result.isFailure(validated)) return yield* failSignIn(validated.failure)
          claims = validated.success
        }
        const subject = typeof claims.sub === "string" ? claims.sub : undefined
        const opened = yield* openSession(
          { tokens: storedTokens(response), subject, user: userOf(claims), cookie: input.cookie },
          "authorization_code",
          started
        )
        return { location: transaction.returnTo, cookies: [opened.cookie], session: opened.session }
      })

    const signInWithPassword: Shape["signInWithPassword"] = (input) =>
      Effect.gen(function* () {
        const started = yield* Clock.currentTimeMillis
        const resolved = yield* resolveEndpoints
        const response = yield* tokenRequest(
          resolved,
          Grant.password({ username: input.username, password: input.password }),
          requestTimeoutMillis
        ).pipe(
          Effect.catch((error) =>
            refusedExchange(
              error._tag === "OAuthError" && error.code === "invalid_grant"
                ? new SignInError({ reason: "invalid_credentials", code: error.code })
                : exchangeFailed(error)
            )
          )
        )
        const now = yield* Clock.currentTimeMillis
        let claims: Readonly<Record<string, unknown>> = { username: input.username }
        let subject: string | undefined
        if (response.idToken !== undefined && resolved.issuer !== undefined) {
          const validated = IdToken.validate(Redacted.value(response.idToken), {
            issuer: resolved.issuer,
            clientId: config.clientId,
            now
          })
          if (Result.isFailure(validated)) return yield* failSignIn(validated.failure)
          claims = validated.success
          subject = validated.success.sub
        }
        const opened = yield* openSession(
          {
            tokens: storedTokens(response),
            subject,
            user:
              subject === undefined && config.user === undefined
                ? { username: input.username }
                : userOf(claims),
            cookie: input.cookie
          },
          "password",
          started
        )
        return { session: opened.session, cookies: [opened.cookie] }
      })

    // Refreshes: one per session in this instance (callers share it), and one per session
    // across instances and bundles (the store's lock, inside which the entry is read again).
    const inflight = new Map<string, Deferred.Deferred<AccessToken, TokenError>>()

    const refreshUnderLock = (key: string, reason: "refresh_ahead" | "expired", maxWaitMillis: number) =>
      store.withLock(
        key,
        Effect.gen(function* () {
          const started = yield* Clock.currentTimeMillis
          const entry = asSession(yield* store.get(key), client)
          if (entry === undefined) return yield* new SignInRequiredError({ reason: "no_session" })
          const current = tokenFor(key, entry.tokens)
          // Someone else (a request of another bundle, another instance) refreshed meanwhile.
          if (isFresh(current, started) && !(reason === "refresh_ahead" && started >= current.refreshAt)) {
            return current
          }
          if (entry.tokens.refreshToken === undefined) {
            if (isUsable(current, started)) return current
            yield* endSession(key, entry.subject, "no_refresh_token")
            return yield* new SignInRequiredError({ reason: "no_refresh_token" })
          }
          const resolved = yield* resolveEndpoints.pipe(
            Effect.mapError(() => new SignInRequiredError({ reason: "no_session" }))
          )
          const refreshToken = Redacted.make(entry.tokens.refreshToken, { label: "refresh_token" })
          const response = yield* tokenRequest(
            resolved,
            Grant.refreshToken(refreshToken),
            maxWaitMillis
          ).pipe(
            Effect.retry(retry),
            Effect.catchTag(
              "OAuthError",
              (error): Effect.Effect<never, OAuthError | SignInRequiredError | TokenStoreError> =>
                error.code !== "invalid_grant"
                  ? Effect.fail(error)
                  : Effect.gen(function* () {
                      // revoked, expired or reused: the grant is over, and so is the session
                      yield* endSession(key, entry.subject, "refresh_rejected")
                      return yield* new SignInRequiredError({ reason: "refresh_rejected" })
                    })
            )
          )
          let subject = entry.subject
          let user = entry.user
          if (response.idToken !== undefined && resolved.issuer !== undefined) {
            const now = yield* Clock.currentTimeMillis
            const validated = IdToken.validate(Redacted.value(response.idToken), {
              issuer: resolved.issuer,
              clientId: config.clientId,
              subject: entry.subject,
              now
            })
            if (Result.isFailure(validated)) {
              // another user's, or a forged one, from the token endpoint: end the session
              yield* endSession(key, subject, "id_token_invalid")
              return yield* new SignInRequiredError({ reason: "refresh_rejected" })
            }
            subject = validated.success.sub
            user = userOf(validated.success)
          }
          const updated: SessionEntry = {
            ...entry,
            ...(subject === undefined ? {} : { subject }),
            user,
            tokens: storedTokens(response, entry.tokens)
          }
          const now = yield* Clock.currentTimeMillis
          // Written before the token is handed out: the rotated refresh token is not lost.
          yield* store.set(key, updated as unknown as SessionStore.Entry, { ttlMillis: ttlOf(updated, now) })
          emit({
            type: "session_refreshed",
            at: Date.now(),
            session: key,
            subject,
            reason,
            rotated: response.refreshToken !== undefined,
            durationMillis: now - started
          })
          return tokenFor(key, updated.tokens)
        }),
        lockOptions
      )

    const refresh = (
      key: string,
      reason: "refresh_ahead" | "expired",
      maxWaitMillis: number
    ): Effect.Effect<Deferred.Deferred<AccessToken, TokenError>> =>
      Effect.suspend(() => {
        const running = inflight.get(key)
        if (running !== undefined) return Effect.succeed(running)
        const deferred = Deferred.makeUnsafe<AccessToken, TokenError>()
        inflight.set(key, deferred)
        return refreshUnderLock(key, reason, maxWaitMillis).pipe(
          Effect.tapError((error) =>
            Effect.sync(() => {
              if (error._tag !== "SignInRequiredError") {
                emit({
                  type: "session_refresh_failed",
                  at: Date.now(),
                  session: key,
                  error: error._tag,
                  code: error._tag === "OAuthError" ? error.code : undefined
                })
              }
            })
          ),
          Effect.onExit((exit) =>
            Effect.sync(() => {
              inflight.delete(key)
              Deferred.doneUnsafe(deferred, exit)
            })
          ),
          Effect.forkIn(scope),
          Effect.as(deferred)
        )
      })

    const lookup: Shape["lookup"] = (cookie) =>
      Effect.gen(function* () {
        const ids = readCookie(cookie, cookieName)
        for (const id of ids) {
          const key = sessionKey(id)
          const entry = asSession(yield* store.get(key), client)
          if (entry === undefined) {
            handles.delete(key)
            continue
          }
          const now = yield* Clock.currentTimeMillis
          const idle = now - entry.touchedAt >= idleMillis
          if (idle || now >= entry.expiresAt) {
            yield* endSession(key, entry.subject, idle ? "idle_timeout" : "absolute_timeout")
            continue
          }
          const token = tokenFor(key, entry.tokens)
          // Refresh ahead, in the background: this request goes on with the current token.
          if (now >= token.refreshAt && isUsable(token, now) && entry.tokens.refreshToken !== undefined) {
            yield* refresh(key, "refresh_ahead", Number.POSITIVE_INFINITY)
          }
          // The idle clock restarts, written now and then (under the lock: a refresh's write must not be lost).
          if (now - entry.touchedAt >= idleMillis / 10) {
            yield* store
              .withLock(
                key,
                Effect.gen(function* () {
                  const latest = asSession(yield* store.get(key), client)
                  if (latest === undefined) return
                  const at = yield* Clock.currentTimeMillis
                  const touched: SessionEntry = { ...latest, touchedAt: at }
                  yield* store.set(key, touched as unknown as SessionStore.Entry, {
                    ttlMillis: ttlOf(touched, at)
                  })
                }),
                lockOptions
              )
              .pipe(Effect.ignore, Effect.forkIn(scope))
          }
          return sessionOf(key, entry)
        }
        return undefined
      })

    const accessToken: Shape["accessToken"] = (key, options) =>
      Effect.gen(function* () {
        const maxWaitMillis = options?.maxWaitMillis ?? Number.POSITIVE_INFINITY
        const now = yield* Clock.currentTimeMillis
        const known = handles.get(key)
        if (known !== undefined && isFresh(known, now)) return known
        // Read again: the session may be gone, or refreshed by another instance.
        const entry = asSession(yield* store.get(key), client)
        if (entry === undefined) return yield* new SignInRequiredError({ reason: "no_session" })
        const token = tokenFor(key, entry.tokens)
        if (isFresh(token, now)) return token
        const deferred = yield* refresh(
          key,
          isUsable(token, now) ? "refresh_ahead" : "expired",
          maxWaitMillis
        )
        // A token still accepted is served while the refresh runs (nobody waits on it).
        if (isUsable(token, now)) return token
        const wait = Deferred.await(deferred)
        return yield* Number.isFinite(maxWaitMillis)
          ? wait.pipe(
              Effect.timeoutOrElse({
                duration: Duration.millis(Math.max(0, maxWaitMillis)),
                orElse: () => Effect.fail(TokenEndpointError.waitTimedOut())
              })
            )
          : wait
      })

    const peek: Shape["peek"] = (key, now) => {
      const token = handles.get(key)
      return token !== undefined && isFresh(token, now) ? token : undefined
    }

    const invalidate: Shape["invalidate"] = (key, token) =>
      store
        .withLock(
          key,
          Effect.gen(function* () {
            const now = yield* Clock.currentTimeMillis
            if (handles.get(key) === token) handles.delete(key)
            const entry = asSession(yield* store.get(key), client)
            // compare-and-expire: a newer token is left alone
            if (entry === undefined || entry.tokens.accessToken !== token.reveal()) return
            if (entry.tokens.expiresAt <= now) return
            const expired: SessionEntry = { ...entry, tokens: { ...entry.tokens, expiresAt: now } }
            yield* store.set(key, expired as unknown as SessionStore.Entry, {
              ttlMillis: ttlOf(expired, now)
            })
            emit({ type: "session_token_invalidated", at: Date.now(), session: key, tokenId: token.id })
          }),
          lockOptions
        )
        .pipe(Effect.ignore)

    const revoke = (entry: SessionEntry, key: string) =>
      Effect.gen(function* () {
        const resolved = yield* resolveEndpoints
        if (resolved.revocationUrl === undefined) return false
        const secret = yield* resolveSecret
        // The refresh token: revoking it ends the grant, access tokens included (RFC 7009 2.1).
        const [token, hint] =
          entry.tokens.refreshToken === undefined
            ? [entry.tokens.accessToken, "access_token" as const]
            : [entry.tokens.refreshToken, "refresh_token" as const]
        yield* Revocation.revoke({
          revocationUrl: resolved.revocationUrl,
          clientId: config.clientId,
          clientAuth,
          secret,
          token: Redacted.make(token, { label: hint }),
          tokenTypeHint: hint,
          timeout: requestTimeoutMillis
        }).pipe(withTransport)
        return true
      }).pipe(
        Effect.catch((error: { readonly _tag: string }) =>
          Effect.sync(() => {
            emit({
              type: "revocation_failed",
              at: Date.now(),
              session: key,
              error: error._tag,
              code: error instanceof OAuthError ? error.code : undefined
            })
            return false
          })
        )
      )

    const signOut: Shape["signOut"] = (input) =>
      Effect.gen(function* () {
        for (const id of readCookie(input.cookie, cookieName)) {
          const key = sessionKey(id)
          const entry = asSession(yield* store.take(key), client)
          handles.delete(key)
          if (entry === undefined) continue
          const revoked = yield* revoke(entry, key)
          emit({ type: "signed_out", at: Date.now(), session: key, subject: entry.subject, revoked })
        }
        return { location: afterSignOut, cookies: [clearCookie(cookieName, secureCookies)] }
      })

    return UserSessions.of({
      appOrigin,
      cookieName,
      secureCookies,
      startSignIn,
      completeSignIn,
      signInWithPassword,
      signOut,
      lookup,
      accessToken,
      peek,
      invalidate
    })
  })

/**
 * The tokens of session `key` in the shape `AuthHttpClient.make` and the
 * request steps take: an Effect program calls the API as that user.
 *
 * @example
 * ```ts
 * const sessions = yield* UserSessions.UserSessions
 * const session = yield* sessions.lookup(cookieHeader)
 * if (session) {
 *   const client = AuthHttpClient.make(UserSessions.tokensOf(sessions, session.key), { origins: [baseUrl] })
 * }
 * ```
 *
 * @since 0.2.0
 */
export const tokensOf = (sessions: Shape, key: string): TokenAccess => ({
  get: sessions.accessToken(key),
  getWithin: (maxWaitMillis) => sessions.accessToken(key, { maxWaitMillis }),
  invalidate: (token) => sessions.invalidate(key, token)
})

/**
 * The sessions as a layer, over whatever HttpClient, SessionStore and
 * TokenBudget the program provides.
 *
 * @example
 * ```ts
 * const SessionsLive = UserSessions.layer(config).pipe(Layer.provide(UserSessions.layerDependencies))
 * ```
 *
 * @since 0.2.0
 */
export const layer = (
  config: UserSessionsConfig
): Layer.Layer<
  UserSessions,
  InvalidConfigError,
  HttpClient.HttpClient | SessionStore.SessionStore | TokenBudget.TokenBudget
> => Layer.effect(UserSessions, make(config))

/**
 * The defaults: `fetch` transport, the process's memory session store, the
 * process's token budget.
 *
 * @example
 * ```ts
 * Effect.provide(program, UserSessions.layer(config).pipe(Layer.provide(UserSessions.layerDependencies)))
 * ```
 *
 * @since 0.2.0
 */
export const layerDependencies: Layer.Layer<
  HttpClient.HttpClient | SessionStore.SessionStore | TokenBudget.TokenBudget
> = Layer.mergeAll(FetchHttpClient.layer, SessionStore.layerMemory, TokenBudget.layerMemory)
