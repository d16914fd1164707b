/**
 * Fetch middleware: the request policy of authfetch in the shape every HTTP
 * stack understands, `(next: typeof fetch) => typeof fetch`. Each middleware
 * is a thin wrapper over one Effect step (`Bearer.authorizing`,
 * `RetryPolicy.retrying`, a timeout); `authFetch` runs the steps together in
 * one fiber, and `AuthHttpClient` runs the same steps inside Effect programs.
 *
 * Order in `authFetch` (outermost first): problem details → retry → timeout
 * (per attempt) → authorization (token, redirects, one 401 replay) → fetch.
 *
 * @example
 * ```ts
 * import { authFetch, createTokenSource } from "@authfetch/core"
 *
 * const tokens = createTokenSource(config)
 * const api = authFetch(tokens, { baseUrl: "https://platform.uat.benefits.wexglobal.com/api" })
 * const res = await api("/v1/consumers/12345")
 * ```
 *
 * @since 0.1.0
 */
import { Duration, Effect } from "effect"
import { authorizing, type BearerOptions, originMatcher, type TokenAccess, waitAtMost } from "./Bearer.ts"
import { isSecureOrigin } from "./Config.ts"
import { InvalidConfigError, type RequestTimeoutError, type TokenError } from "./Errors.ts"
import type { RequestEvent } from "./Events.ts"
import { firstAttempt } from "./internal/firstAttempt.ts"
import {
  direct,
  type Fetch,
  fromArgs,
  type Handler,
  type Outgoing,
  runAsFetch,
  SendError,
  timedOut,
  wireOf
} from "./internal/outgoing.ts"
import type { FetchInput } from "./internal/webTypes.ts"
import * as Problem from "./Problem.ts"
import {
  isRetryableStatus,
  type RequestRetryOptions,
  RetryBudget,
  retrying,
  withBudget
} from "./RetryPolicy.ts"
import type { AccessToken } from "./Token.ts"

/**
 * A fetch middleware: takes the next fetch, returns a fetch.
 *
 * @since 0.1.0
 */
export type FetchMiddleware = (next: typeof globalThis.fetch) => typeof globalThis.fetch

/**
 * A token source as the middleware takes it: the Promise handle of
 * `createTokenSource`, or the Effect service `TokenSource.Shape`.
 *
 * @since 0.1.0
 */
export type Tokens =
  | {
      /** `maxWait`: the longest the caller waits (our handle fails fast on a spent budget) */
      readonly getToken: (options?: GetTokenOptions) => Promise<AccessToken>
      readonly invalidate: (token: AccessToken) => Promise<void>
      /** a fresh token synchronously, when the source can tell (skips a promise on the hot path) */
      readonly peek?: (() => AccessToken | undefined) | undefined
    }
  | TokenAccess

/**
 * Whether `value` is a token source the middleware takes: the Promise form
 * (`getToken`, `invalidate`) or the Effect service (`get`, `invalidate`). For
 * argument checks: an adapter reports a wrong value as an `InvalidConfigError`.
 *
 * @example
 * ```ts
 * if (!isTokens(tokens)) throw new InvalidConfigError({ problems: ["`tokens` must be a token source"] })
 * ```
 *
 * @since 0.1.0
 */
export const isTokens = (value: unknown): value is Tokens => {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false
  const candidate = value as {
    readonly getToken?: unknown
    readonly get?: unknown
    readonly invalidate?: unknown
  }
  return (
    typeof candidate.invalidate === "function" &&
    (typeof candidate.getToken === "function" || Effect.isEffect(candidate.get))
  )
}

/**
 * Adapts either form of token source to the Effect shape the steps use.
 *
 * @example
 * ```ts
 * const access = toTokenAccess(createTokenSource(config))
 * ```
 *
 * @since 0.1.0
 */
export const toTokenAccess = (tokens: Tokens): TokenAccess => {
  if ("get" in tokens) return tokens
  const getToken = (options?: GetTokenOptions) =>
    Effect.suspend(() => {
      const fresh = tokens.peek?.()
      return fresh
        ? Effect.succeed(fresh)
        : Effect.tryPromise({ try: () => tokens.getToken(options), catch: (error) => error as TokenError })
    })
  return {
    get: getToken(),
    // bounded here too, for a source that does not know `maxWait`
    getWithin: (maxWaitMillis) => waitAtMost(getToken({ maxWait: maxWaitMillis }), maxWaitMillis),
    invalidate: (token) => Effect.promise(() => tokens.invalidate(token))
  }
}

/**
 * Composes middleware; the first is outermost.
 *
 * @example
 * ```ts
 * const fetchWithPolicy = compose(withRetry(), withAuth(tokens, { origins: [baseUrl] }))(fetch)
 * ```
 *
 * @since 0.1.0
 */
export const compose =
  (...middlewares: ReadonlyArray<FetchMiddleware>): FetchMiddleware =>
  (next) =>
    middlewares.reduceRight<typeof globalThis.fetch>((inner, middleware) => middleware(inner), next)

const asMiddleware =
  (step: (wire: ReturnType<typeof wireOf>) => Handler<unknown>): FetchMiddleware =>
  (next) => {
    const handler = step(wireOf(next as Fetch))
    const run = (outgoing: Outgoing) => runAsFetch(handler(outgoing), outgoing.signal)
    return (input, init) => callWith(input, init, run)
  }

/** Takes a fetch call apart and runs it; one that cannot be (a bad URL) rejects, as fetch does. */
const callWith = <A>(
  input: FetchInput,
  init: RequestInit | undefined,
  run: (outgoing: Outgoing) => Promise<A>
): Promise<A> => {
  let outgoing: Outgoing
  try {
    outgoing = fromArgs(input, init)
  } catch (error) {
    return Promise.reject(error)
  }
  return run(outgoing)
}

/**
 * Attaches the bearer token to requests for the allowed origins, follows
 * redirects without ever carrying it to another origin, and after a `401`
 * invalidates exactly the token used and replays the request once (a one-shot
 * stream body is never replayed: the `401` is returned).
 *
 * @example
 * ```ts
 * const authed = withAuth(tokens, { origins: ["https://api.example.com"] })(fetch)
 * ```
 *
 * @since 0.1.0
 */
export const withAuth = (tokens: Tokens, options: BearerOptions): FetchMiddleware => {
  assertSecureOrigins(options.origins)
  return asMiddleware(authorizing(toTokenAccess(tokens), options))
}

/**
 * Retries `429`, `502`, `503`, `504`, network errors and timeouts of
 * idempotent requests (and `429` of any request), with exponential backoff and
 * full jitter; `Retry-After` wins; bounded by attempts, a total deadline and a
 * retry budget shared by all requests through this middleware.
 *
 * @example
 * ```ts
 * const resilient = withRetry({ maxRetries: 3, maxElapsed: "20 seconds" })(fetch)
 * ```
 *
 * @since 0.1.0
 */
export const withRetry = (
  options?: RequestRetryOptions & { readonly onEvent?: ((event: RequestEvent) => void) | undefined }
): FetchMiddleware => {
  const budget = budgetOf(options)
  return asMiddleware((wire) => retrying(options, budget, options?.onEvent)(direct(wire)))
}

const timingOut =
  (timeout: Duration.Input) =>
  <E>(next: Handler<E>): Handler<E | RequestTimeoutError> => {
    const duration = Duration.fromInputUnsafe(timeout)
    return (outgoing) =>
      Effect.timeoutOrElse(next(outgoing), {
        duration,
        orElse: () => Effect.fail(timedOut(outgoing, Duration.toMillis(duration)))
      })
  }

/**
 * Aborts a request whose response headers have not arrived within `timeout`,
 * failing with `RequestTimeoutError`.
 *
 * @example
 * ```ts
 * const bounded = withTimeout("5 seconds")(fetch)
 * ```
 *
 * @since 0.1.0
 */
export const withTimeout = (timeout: Duration.Input): FetchMiddleware =>
  asMiddleware((wire) => timingOut(timeout)(direct(wire)))

/**
 * Turns responses that are not `ok` into `ProblemDetailsError` (RFC 9457 /
 * 7807 problem+json, OAuth error JSON and `WWW-Authenticate` parsed leniently;
 * the raw body is kept, capped).
 *
 * @example
 * ```ts
 * try {
 *   await withProblemDetails()(fetch)(url)
 * } catch (err) {
 *   if (err instanceof ProblemDetailsError) console.error(err.status, err.title, err.detail)
 * }
 * ```
 *
 * @since 0.1.0
 */
export const withProblemDetails =
  (options?: {
    readonly maxBodyBytes?: number | undefined
    /** which responses become errors; default `!response.ok` */
    readonly when?: ((response: Response) => boolean) | undefined
  }): FetchMiddleware =>
  (next) =>
  async (input, init) => {
    const response = await next(input, init)
    if (!(options?.when ?? ((r: Response) => !r.ok))(response)) return response
    throw await Problem.fromResponse(response, {
      maxBodyBytes: options?.maxBodyBytes,
      method: (init?.method ?? (input instanceof Request ? input.method : "GET")).toUpperCase(),
      url: response.url || (input instanceof Request ? input.url : String(input))
    })
  }

/**
 * @since 0.1.0
 */
export interface AuthFetchOptions {
  /** base of relative request paths (`/v1/...` → `${baseUrl}/v1/...`); its origin is allowed a token */
  readonly baseUrl?: string | undefined
  /** origins allowed a token; default: the origin of `baseUrl` */
  readonly origins?: ReadonlyArray<string | URL> | undefined
  /** retry options, or `false` to send each request once */
  readonly retry?: RequestRetryOptions | false | undefined
  /** time allowed to one attempt (each retry and redirect hop has its own); default 30 s; `false` for none */
  readonly attemptTimeout?: Duration.Input | false | undefined
  /** turn non-2xx responses into `ProblemDetailsError`; default `false` (fetch semantics) */
  readonly problemDetails?: boolean | undefined
  /** the fetch underneath; default `globalThis.fetch` */
  readonly fetch?: typeof globalThis.fetch | undefined
  readonly maxRedirects?: number | undefined
  /** see `BearerOptions.crossOriginRedirects`; default `"follow"` */
  readonly crossOriginRedirects?: "follow" | "refuse" | undefined
  /** see `BearerOptions.unauthorizedCooldown`; default 10 s */
  readonly unauthorizedCooldown?: Duration.Input | undefined
  readonly onEvent?: ((event: RequestEvent) => void) | undefined
}

/**
 * Options of one wait for a token.
 *
 * @since 0.1.0
 */
export interface GetTokenOptions {
  /**
   * The longest wait. When the client's token budget cannot admit a request
   * in time, the wait fails at once with `RateLimitedError` (`retryAfterMillis`
   * says when); a token request slower than this fails the wait with
   * `TokenEndpointError` (`reason: "timeout"`). Default: no bound.
   */
  readonly maxWait?: Duration.Input | undefined
}

/**
 * Resolves a relative path against a base URL the way API clients expect
 * (`https://x/api` + `/v1/a` → `https://x/api/v1/a`), unlike `new URL`, which
 * would drop `/api`.
 *
 * @example
 * ```ts
 * resolveUrl("https://x/api", "/v1/a") // "https://x/api/v1/a"
 * ```
 *
 * @since 0.1.0
 */
export const resolveUrl = (baseUrl: string | undefined, path: string): string =>
  baseUrl === undefined ? path : resolverFor(baseUrl)(path)

/** `resolveUrl` with the base prepared once (authFetch resolves every call). */
const resolverFor = (baseUrl: string): ((path: string) => string) => {
  const base = baseUrl.replace(/\/+$/, "")
  return (path) => {
    // the common case first: "/v1/..." (one slash, so not a scheme-relative "//host")
    if (path.charCodeAt(0) === SLASH && path.charCodeAt(1) !== SLASH) return base + path
    if (/^[a-zA-Z][a-zA-Z\d+\-.]*:/.test(path)) return path
    return `${base}/${path.replace(/^\/+/, "")}`
  }
}

const SLASH = 0x2f

const DEFAULT_TIMEOUT = Duration.seconds(30)

/** The retry budget an option asks for: the one given, none (`false`), or a new one. */
const budgetOf = (retry: RequestRetryOptions | undefined): RetryBudget | undefined =>
  retry?.budget === false ? undefined : (retry?.budget ?? new RetryBudget())

/**
 * The request steps of `authFetch`, as one handler over a wire. Shared with
 * `AuthHttpClient`.
 *
 * @since 0.1.0
 */
export const pipeline = (
  tokens: Tokens,
  options: AuthFetchOptions & { readonly origins: ReadonlyArray<string | URL> }
) => {
  const authorize = authorizing(toTokenAccess(tokens), {
    origins: options.origins,
    maxRedirects: options.maxRedirects,
    crossOriginRedirects: options.crossOriginRedirects,
    // a request waits for its token no longer than for its answer
    maxTokenWait: options.attemptTimeout === false ? undefined : (options.attemptTimeout ?? DEFAULT_TIMEOUT),
    unauthorizedCooldown: options.unauthorizedCooldown,
    onEvent: options.onEvent
  })
  const timeout =
    options.attemptTimeout === false ? undefined : timingOut(options.attemptTimeout ?? DEFAULT_TIMEOUT)
  const retry =
    options.retry === false ? undefined : retrying(options.retry, budgetOf(options.retry), options.onEvent)
  return (wire: ReturnType<typeof wireOf>): Handler<unknown> => {
    // The timeout bounds time on the wire (each hop); the wait for a token has its own
    // bound of the same length (`maxTokenWait`), which fails with a token error, not a
    // timeout of a request that was never sent.
    const timedWire: typeof wire = timeout
      ? (outgoing, url, init) => timeout(() => wire(outgoing, url, init))(outgoing)
      : wire
    const handler: Handler<unknown> = authorize(timedWire)
    return retry ? retry(handler) : handler
  }
}

const originsOf = (options: AuthFetchOptions): ReadonlyArray<string | URL> => {
  const origins = options.origins ?? (options.baseUrl === undefined ? [] : [options.baseUrl])
  if (origins.length === 0) {
    throw new InvalidConfigError({
      problems: ["authFetch needs a baseUrl or origins: the token goes nowhere else"]
    })
  }
  assertSecureOrigins(origins)
  return origins
}

const assertSecureOrigins = (origins: ReadonlyArray<string | URL>): void => {
  const problems = origins.flatMap((origin) =>
    isSecureOrigin(String(origin))
      ? []
      : [`origin ${String(origin)} must be https: (http: only for loopback hosts)`]
  )
  if (problems.length > 0) throw new InvalidConfigError({ problems })
}

/**
 * The answer of a first send an adapter made itself, on its own transport,
 * with a fresh token (its hot path), for `authFetch` to take over: the
 * response a step acts on (a `401`, a redirect to follow, a retryable status),
 * or the failure (`network`: the transport rejected; `timeout`: the attempt
 * timed out after `timeoutMillis`). Put it on the call's init under
 * `FIRST_SEND`: the pipeline then treats it as the answer to its first hop
 * (nothing is sent twice; a `401` invalidates `token`, the one that send
 * used), exactly as for `authFetch`'s own hot path.
 *
 * @since 0.2.0
 */
export type FirstSend =
  | { readonly token: AccessToken; readonly response: Response }
  | { readonly token: AccessToken; readonly failure: "network"; readonly cause: unknown }
  | { readonly token: AccessToken; readonly failure: "timeout"; readonly timeoutMillis: number }

/**
 * Where `authFetch` finds a `FirstSend` on a call's `init`.
 *
 * @example
 * ```ts
 * const token = tokens.peek()
 * const first = await myTransport.send(url, token.authorization())
 * if (Bearer.actsOn(first, "follow")) return api(url, { ...init, [Middleware.FIRST_SEND]: { token, response: first } })
 * ```
 *
 * @since 0.2.0
 */
export const FIRST_SEND: unique symbol = Symbol.for("@authfetch/core/Middleware/firstSend")

const takeFirstSend = (outgoing: Outgoing, init: RequestInit | undefined): boolean => {
  const first = (init as { readonly [FIRST_SEND]?: FirstSend } | undefined)?.[FIRST_SEND]
  if (first === undefined) return false
  // not passed on to the transport with the call's other init members
  delete (outgoing.rest as { [FIRST_SEND]?: FirstSend })[FIRST_SEND]
  outgoing.first = {
    token: first.token,
    result:
      "response" in first
        ? Effect.succeed(first.response)
        : first.failure === "timeout"
          ? Effect.fail(timedOut(outgoing, first.timeoutMillis))
          : Effect.fail(new SendError({ cause: first.cause }))
  }
  return true
}

/**
 * A fetch for one API: relative paths resolved against `baseUrl`, the bearer
 * token attached (its origin only), `401` recovered once, transient failures
 * retried with backoff, attempts bounded in time.
 *
 * @example
 * ```ts
 * const api = authFetch(tokens, { baseUrl: "https://platform.uat.benefits.wexglobal.com/api" })
 * const consumer = await (await api("/v1/consumers/12345")).json()
 * ```
 *
 * @since 0.1.0
 */
export const authFetch = (tokens: Tokens, options: AuthFetchOptions = {}): typeof globalThis.fetch => {
  const origins = originsOf(options)
  const next = options.fetch ?? ((input: FetchInput, init?: RequestInit) => globalThis.fetch(input, init))
  // One budget for both paths: the fast path credits it for final answers, as the retry step would.
  const retry = withBudget(options.retry)
  const retryOptions = retry === false ? undefined : retry
  const budget = retryOptions?.budget === false ? undefined : retryOptions?.budget
  const handler = pipeline(tokens, { ...options, origins, retry })(wireOf(next as Fetch))
  const viaPipeline = (outgoing: Outgoing) => runAsFetch(handler(outgoing), outgoing.signal)
  const promised = "get" in tokens ? undefined : tokens
  const timeoutMillis =
    options.attemptTimeout === false
      ? undefined
      : Duration.toMillis(Duration.fromInputUnsafe(options.attemptTimeout ?? DEFAULT_TIMEOUT))
  const fast =
    promised === undefined
      ? undefined
      : firstAttempt({
          next: next as Fetch,
          peek: () => promised.peek?.(),
          getToken: () =>
            promised.getToken(timeoutMillis === undefined ? undefined : { maxWait: timeoutMillis }),
          isAllowed: originMatcher(origins),
          timeoutMillis,
          isRetryableStatus:
            retry === false ? () => false : (status) => isRetryableStatus(status, retryOptions),
          onFinal: budget === undefined ? () => {} : () => budget.deposit(),
          continueWith: viaPipeline
        })
  const resolve = options.baseUrl === undefined ? undefined : resolverFor(options.baseUrl)
  const call: typeof globalThis.fetch = (input, init) =>
    callWith(typeof input === "string" && resolve ? resolve(input) : input, init, (outgoing) =>
      takeFirstSend(outgoing, init) ? viaPipeline(outgoing) : (fast?.(outgoing) ?? viaPipeline(outgoing))
    )
  return options.problemDetails ? withProblemDetails()(call) : call
}
