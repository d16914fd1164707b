/**
 * authfetch for ky: ky options whose `fetch` is the core's request policy.
 *
 * ky calls `options.fetch(request, init)` once per ky attempt. We make that
 * fetch `authFetch` from `@authfetch/core`, so everything the core decides
 * (token per hop and allowed origin, redirects, one `401` replay after
 * invalidating exactly the token used, retries with backoff and
 * `Retry-After`, the retry budget, per-attempt timeouts) happens inside one
 * ky attempt, and ky's own automatic retry is switched off: one owner of
 * retries, so they cannot multiply. What is left for this module is
 * translation:
 *
 * - ky turns a caller's `body` into a `Request` body, hiding whether it was a
 *   one-shot stream; an `init` hook remembers such streams, so the core can
 *   refuse to send them twice, as it does for `fetch`.
 * - the core's give-ups become ky's own errors (`NetworkError`,
 *   `TimeoutError`, with the core error as `cause`); a response the core hands
 *   back (a `401` that persisted, a `503` after the last retry) is a response,
 *   so ky throws its usual `HTTPError`.
 * - the error response's body is parsed by `Problem.fromResponse` (leniently:
 *   WEX's own problem+json sample is not JSON) and attached as
 *   `error.problem`.
 *
 * The token never touches the `Request` ky holds: the core sets
 * `Authorization` on its own copy of the headers for each hop, so
 * `HTTPError.request`, `beforeRequest` hooks and error logs never see it.
 *
 * @example
 * ```ts
 * import ky from "ky"
 * import { createTokenSource } from "@authfetch/core"
 * import { authKyOptions } from "@authfetch/ky"
 *
 * const tokens = createTokenSource(config)
 * const api = ky.create(authKyOptions(tokens, { prefix: "https://platform.uat.benefits.wexglobal.com/api" }))
 * const consumer = await api.get("v1/consumers/12345").json()
 * ```
 *
 * @since 0.1.0
 */
import {
  authFetch,
  Config,
  InvalidConfigError,
  isTokens,
  Problem,
  type ProblemDetailsError,
  type RequestEvent,
  RetryPolicy,
  type Tokens
} from "@authfetch/core"
import { Duration } from "effect"
import {
  type BeforeErrorHook,
  type HTTPError,
  type InitHook,
  isHTTPError,
  type Options as KyOptions,
  NetworkError,
  type RetryOptions,
  TimeoutError
} from "ky"

const { kindOf } = Config

declare module "ky" {
  interface HTTPError<T> {
    /**
     * The error response parsed by `@authfetch/core`'s `Problem` module (RFC
     * 9457/7807 problem+json, OAuth error JSON, `WWW-Authenticate`), set by
     * the `beforeError` hook of `authKyOptions`. Present on every `HTTPError`
     * thrown by a ky instance created with `authKyOptions`.
     */
    problem?: ProblemDetailsError | undefined
  }
}

type Fetch = typeof globalThis.fetch

/**
 * What authfetch itself is configured with; everything else in
 * `AuthKyOptions` is ky's.
 *
 * @since 0.1.0
 */
export interface AuthSettings {
  /**
   * origins allowed a token (`https:`; `http:` for loopback only); default:
   * the origins of the absolute `prefix` and `baseUrl` given next to `auth`
   */
  readonly origins?: ReadonlyArray<string | URL> | undefined
  /**
   * the core's retry policy (429/502/503/504, network errors and timeouts of
   * idempotent requests; `Retry-After` wins; shared budget), or `false` to
   * send each request once. ky's own `retry` never retries automatically.
   */
  readonly retry?: RetryPolicy.RequestRetryOptions | false | undefined
  /**
   * timeout of each attempt (until response headers), default 30 s; `false`
   * for none. ky's `timeout` bounds the whole ky call (see the README): while
   * it (or `totalTimeout`) is 30 s or less, the default attempt timeout could
   * never end an attempt first, and none is set (a timer and a joined abort
   * signal less per call).
   */
  readonly attemptTimeout?: Duration.Input | false | undefined
  /** redirect hops followed by the core (which keeps the token on allowed origins); default 20 */
  readonly maxRedirects?: number | undefined
  /** request events: retries, give-ups, 401 replays, dropped authorization (no tokens, headers or bodies) */
  readonly onEvent?: ((event: RequestEvent) => void) | undefined
  /**
   * `true`: requests that carry their own `Authorization`, the `headers`
   * given to `authKyOptions` included, are sent as they are (no token, no
   * `401` replay). Without it, `headers` with an `Authorization` are refused
   * with `InvalidConfigError`: every request would carry it and none would
   * get a token. A request's own `Authorization` is always left alone.
   */
  readonly keepAuthorization?: boolean | undefined
}

/**
 * ky options plus `auth`, the authfetch settings.
 *
 * @since 0.1.0
 */
export interface AuthKyOptions extends KyOptions {
  readonly auth?: AuthSettings | undefined
}

/**
 * Each policy fetch built here, and the fetch it sends through: a policy fetch
 * met in a call's options (another `authKyOptions`, an `extend`) is never
 * wrapped a second time (that would stack retries); its underlying fetch is.
 */
const underlyingOf = new WeakMap<Fetch, Fetch>()

/** Streams a caller passed as `body`: sent once, never replayed (core rule for one-shot bodies). */
const oneShotBodies = new WeakSet<ReadableStream>()

/** The parsed problem of each error response our fetch returned, read while ky reads its own copy. */
const problems = new WeakMap<Response, Promise<ProblemDetailsError>>()

const never = () => false

/**
 * ky's retry with every automatic retry switched off. An explicit
 * `ky.retry()` from an `afterResponse` hook (which skips `shouldRetry`) still
 * works up to the caller's `retry.limit` (default 0).
 */
const withoutAutomaticRetries = (retry: KyOptions["retry"]): RetryOptions => {
  if (retry === undefined) return { limit: 0, shouldRetry: never }
  if (typeof retry === "number") return { limit: retry, shouldRetry: never }
  return { ...retry, limit: retry.limit ?? 0, shouldRetry: never }
}

const isOneShotBody = (body: unknown): body is ReadableStream | AsyncIterable<Uint8Array> =>
  body instanceof ReadableStream ||
  (typeof body === "object" && body !== null && Symbol.asyncIterator in body && !(body instanceof Blob))

/** `ReadableStream.from` (Node 20.6+, not yet in TypeScript's DOM lib). */
const streamFrom = (iterable: AsyncIterable<Uint8Array>): ReadableStream =>
  (ReadableStream as unknown as { from: (iterable: AsyncIterable<Uint8Array>) => ReadableStream }).from(
    iterable
  )

const tagOf = (error: unknown): unknown =>
  typeof error === "object" && error !== null ? (error as { _tag?: unknown })._tag : undefined

const withCause = <E extends Error>(error: E, cause: unknown): E => {
  Object.defineProperty(error, "cause", { value: cause, writable: true, configurable: true })
  return error
}

/**
 * The core's give-ups in ky's vocabulary: a timeout is ky's `TimeoutError`, a
 * network failure retried in vain is ky's `NetworkError`; the core's error is
 * the `cause` (attempts, reason). Token errors (`OAuthError`,
 * `TokenEndpointError`, ...) and aborts pass through as they are.
 */
const translate = (error: unknown, request: Request): unknown => {
  switch (tagOf(error)) {
    case "RequestTimeoutError":
      return withCause(new TimeoutError(request), error)
    case "RetriesExhaustedError":
      return tagOf((error as { cause?: unknown }).cause) === "RequestTimeoutError"
        ? withCause(new TimeoutError(request), error)
        : new NetworkError(request, { cause: error as Error })
    default:
      return error
  }
}

/**
 * ky's side of a policy fetch: one-shot bodies told to the core as such,
 * errors translated, error bodies parsed for `error.problem`.
 */
const kyFetch = (policy: Fetch): Fetch => {
  const fetch: Fetch = async (input, init) => {
    const request = input instanceof Request ? input : undefined
    let response: Response
    try {
      response =
        request?.body && oneShotBodies.has(request.body)
          ? // As `init.body`, the stream is one-shot for the core: sent once, a 401 handed back.
            await policy(request, { ...init, body: request.body, duplex: "half" } as RequestInit)
          : await policy(input, init)
    } catch (error) {
      throw request ? translate(error, request) : error
    }
    if (response.status >= 400) {
      // Read in parallel with ky's own read of the body (capped at 64 KiB, never rejects).
      problems.set(
        response,
        Problem.fromResponse(response.body ? response.clone() : response, {
          method: request?.method ?? init?.method ?? "GET",
          url: request?.url ?? String(input)
        })
      )
    }
    return response
  }
  return fetch
}

const dataText = (data: unknown): string => {
  if (data === undefined || data === null) return ""
  if (typeof data === "string") return data
  try {
    return JSON.stringify(data) ?? ""
  } catch {
    return ""
  }
}

/**
 * The `beforeError` hook: attaches `error.problem` to ky's `HTTPError`
 * (shape otherwise unchanged). A response replaced by an `afterResponse` hook
 * is parsed from `error.data`.
 */
const attachProblem: BeforeErrorHook = async ({ error }) => {
  if (!isHTTPError(error) || error.problem !== undefined) return error
  const pending = problems.get(error.response)
  const problem =
    pending === undefined
      ? Problem.parse({
          status: error.response.status,
          headers: error.response.headers,
          body: dataText(error.data),
          method: error.request.method,
          url: error.request.url
        })
      : await pending
  ;(error as HTTPError).problem = problem
  return error
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

const isDurationInput = (value: unknown): boolean => {
  try {
    return Duration.toMillis(Duration.fromInputUnsafe(value as Duration.Input)) >= 0
  } catch {
    return false
  }
}

/** Whether ky `headers` (a `Headers`, pairs, or a record where `undefined` removes) set `Authorization`. */
const hasAuthorization = (headers: unknown): boolean => {
  if (headers instanceof Headers) {
    const value = headers.get("authorization")
    return value !== null && value !== "undefined"
  }
  if (Array.isArray(headers)) {
    return headers.some((pair) => Array.isArray(pair) && String(pair[0]).toLowerCase() === "authorization")
  }
  if (!isRecord(headers)) return false
  return Object.keys(headers).some(
    (name) => name.toLowerCase() === "authorization" && headers[name] !== undefined
  )
}

/** The problems with `authKyOptions`' arguments, each naming the argument. */
const argumentProblems = (tokens: unknown, options: unknown): Array<string> => {
  const problems: Array<string> = []
  if (!isTokens(tokens)) {
    problems.push(
      `authKyOptions: \`tokens\` must be a token source (createTokenSource(...), with getToken and invalidate; or core's Effect TokenSource, with get and invalidate), got ${kindOf(tokens)}`
    )
  }
  if (!isRecord(options)) {
    problems.push(
      `authKyOptions: \`options\` must be ky options (an object) or undefined, got ${kindOf(options)}`
    )
    return problems
  }
  if (options.fetch !== undefined && typeof options.fetch !== "function") {
    problems.push(`authKyOptions: \`options.fetch\` must be a function, got ${kindOf(options.fetch)}`)
  }
  const auth = options.auth
  if (auth === undefined) return problems
  if (!isRecord(auth)) {
    problems.push(`authKyOptions: \`options.auth\` must be an object or undefined, got ${kindOf(auth)}`)
    return problems
  }
  const { origins, retry, attemptTimeout, maxRedirects, onEvent, keepAuthorization } = auth
  if (
    origins !== undefined &&
    !(
      Array.isArray(origins) && origins.every((origin) => typeof origin === "string" || origin instanceof URL)
    )
  ) {
    problems.push("authKyOptions: `options.auth.origins` must be an array of origins (strings or URLs)")
  }
  if (retry !== undefined && retry !== false && !isRecord(retry)) {
    problems.push(
      `authKyOptions: \`options.auth.retry\` must be retry options (an object) or false, got ${kindOf(retry)}`
    )
  }
  if (attemptTimeout !== undefined && attemptTimeout !== false && !isDurationInput(attemptTimeout)) {
    problems.push(
      'authKyOptions: `options.auth.attemptTimeout` must be a duration ("10 seconds", milliseconds) or false'
    )
  }
  if (maxRedirects !== undefined && !(Number.isSafeInteger(maxRedirects) && (maxRedirects as number) >= 0)) {
    problems.push("authKyOptions: `options.auth.maxRedirects` must be a whole number, 0 or more")
  }
  if (onEvent !== undefined && typeof onEvent !== "function") {
    problems.push(`authKyOptions: \`options.auth.onEvent\` must be a function, got ${kindOf(onEvent)}`)
  }
  if (keepAuthorization !== undefined && typeof keepAuthorization !== "boolean") {
    problems.push(
      `authKyOptions: \`options.auth.keepAuthorization\` must be a boolean, got ${kindOf(keepAuthorization)}`
    )
  }
  return problems
}

const originsOf = (options: AuthKyOptions): ReadonlyArray<string | URL> => {
  if (options.auth?.origins !== undefined) return options.auth.origins
  const origins: Array<string> = []
  for (const base of [options.prefix, options.baseUrl]) {
    if (base === undefined) continue
    try {
      origins.push(new URL(String(base)).origin)
    } catch {
      // a relative prefix names no origin
    }
  }
  return origins
}

/**
 * ky options that make every request of a ky instance go through authfetch's
 * request policy. Pass your ky options in (`prefix`, `baseUrl`, `timeout`,
 * `headers`, `hooks`, `fetch`, ...) and authfetch's under `auth`; use the
 * result with `ky.create` or `instance.extend`.
 *
 * - `fetch` becomes the core's policy over your `fetch` (default
 *   `globalThis.fetch`): the token is attached per hop for the allowed
 *   origins only, a `401` is replayed once with a fresh token, transient
 *   failures are retried with backoff and `Retry-After`.
 * - ky's automatic `retry` is off: retries are the core's (`auth.retry`). ky
 *   would otherwise retry what the core already retried (3 x 3 attempts).
 * - hooks: ours run around yours in a fixed order: `init` after yours (and
 *   they keep auth when a later `extend` swaps `fetch` or sets `retry`),
 *   `beforeError` before yours (so yours see `error.problem`).
 *
 * The allowed origins are fixed here: default the origins of an absolute
 * `prefix` and `baseUrl`, or `auth.origins`. A later `extend({ prefix })` to
 * another origin sends no token there.
 *
 * Throws `InvalidConfigError` (each problem naming the argument) for a
 * `tokens` that is not a token source, options of the wrong type, `headers`
 * with an `Authorization` (see `auth.keepAuthorization`), and when no origin
 * is allowed or an origin is neither `https:` nor loopback `http:`.
 *
 * @example
 * ```ts
 * const api = ky.create(
 *   authKyOptions(tokens, {
 *     prefix: "https://platform.uat.benefits.wexglobal.com/api",
 *     timeout: 20_000,
 *     auth: { retry: { maxRetries: 3 }, onEvent: (event) => logger.info(event) }
 *   })
 * )
 * try {
 *   await api.get("v1/consumers/12345").json()
 * } catch (error) {
 *   if (isHTTPError(error)) logger.warn(error.problem?.message)
 * }
 * ```
 *
 * @since 0.1.0
 */
export const authKyOptions = (tokens: Tokens, options: AuthKyOptions = {}): KyOptions => {
  const problems = argumentProblems(tokens, options)
  if (problems.length > 0) throw new InvalidConfigError({ problems })
  const { auth, hooks, fetch: underlying, retry, ...kyOptions } = options
  if (auth?.keepAuthorization !== true && hasAuthorization(options.headers)) {
    throw new InvalidConfigError({
      problems: [
        "authKyOptions: `options.headers` has an Authorization, which every request would carry, so no request would get a token. Remove it (authKyOptions sets the token), or pass auth: { keepAuthorization: true } if requests that carry their own Authorization are meant to be sent as they are"
      ]
    })
  }
  const origins = originsOf(options)
  if (origins.length === 0) {
    throw new InvalidConfigError({
      problems: [
        "authKyOptions needs an absolute prefix or baseUrl, or auth.origins: the token goes nowhere else"
      ]
    })
  }
  // One budget for every request of this instance, whatever fetch a later `extend` brings.
  const retryOptions = RetryPolicy.withBudget(auth?.retry)
  // The policy fetch over each underlying fetch: with the attempt timeout, and without it for
  // calls whose ky timeout ends them sooner than the default attempt timeout would.
  const built = new WeakMap<Fetch, { readonly timed: Fetch; readonly bounded: Fetch }>()
  const policyOver = (next: Fetch, boundedByKy: boolean): Fetch => {
    let pair = built.get(next)
    if (pair === undefined) {
      const over = (attemptTimeout: Duration.Input | false | undefined) => {
        const fetch = kyFetch(
          authFetch(tokens, {
            origins,
            retry: retryOptions,
            attemptTimeout,
            maxRedirects: auth?.maxRedirects,
            onEvent: auth?.onEvent,
            fetch: next
          })
        )
        underlyingOf.set(fetch, next)
        return fetch
      }
      const timed = over(auth?.attemptTimeout)
      pair = { timed, bounded: auth?.attemptTimeout === undefined ? over(false) : timed }
      built.set(next, pair)
    }
    return boundedByKy ? pair.bounded : pair.timed
  }
  const globalFetch: Fetch = (input, init) => globalThis.fetch(input, init)
  const fetch = policyOver(underlying ?? globalFetch, false)

  const init: InitHook = (options) => {
    // Runs per ky call, after every other `init` hook of these options.
    options.retry = withoutAutomaticRetries(options.retry)
    const given = options.fetch as Fetch | undefined
    const next = (given === undefined ? undefined : underlyingOf.get(given)) ?? given ?? globalFetch
    options.fetch = policyOver(next, endsWithinAttemptTimeout(options.timeout, options.totalTimeout))
    const body: unknown = options.body
    if (isOneShotBody(body)) {
      const stream = body instanceof ReadableStream ? body : streamFrom(body)
      options.body = stream
      oneShotBodies.add(stream)
    }
  }

  return {
    ...kyOptions,
    fetch,
    retry: withoutAutomaticRetries(retry),
    hooks: {
      ...hooks,
      init: [...(hooks?.init ?? []), init],
      beforeError: [attachProblem, ...(hooks?.beforeError ?? [])]
    }
  }
}

/** The core's default attempt timeout (`AuthFetchOptions.attemptTimeout`). */
const DEFAULT_ATTEMPT_TIMEOUT_MILLIS = 30_000
/** ky's default `timeout`. */
const KY_DEFAULT_TIMEOUT_MILLIS = 10_000

/** Whether ky's own timeouts end a call before the default attempt timeout could end an attempt. */
const endsWithinAttemptTimeout = (timeout: unknown, totalTimeout: unknown): boolean => {
  const perCall = timeout === undefined ? KY_DEFAULT_TIMEOUT_MILLIS : timeout
  const bounds = [perCall, totalTimeout].filter((t): t is number => typeof t === "number")
  return bounds.length > 0 && Math.min(...bounds) <= DEFAULT_ATTEMPT_TIMEOUT_MILLIS
}

/**
 * The parsed problem of an error thrown by ky, if it is an `HTTPError` that
 * went through `authKyOptions`' `beforeError` hook.
 *
 * @example
 * ```ts
 * const problem = problemOf(error)
 * if (problem?.status === 401) alert(problem.message)
 * ```
 *
 * @since 0.1.0
 */
export const problemOf = (error: unknown): ProblemDetailsError | undefined =>
  isHTTPError(error) ? error.problem : undefined
