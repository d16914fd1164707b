/**
 * Where a retry is decided: which failures are worth another attempt, and when
 * that attempt is sent.
 *
 * The schedule is exponential with full jitter (each delay is uniform in
 * `[0, min(maxDelay, baseDelay * 2^n)]`, the AWS Architecture Blog's
 * recommendation for many clients retrying at once), bounded by a number of
 * retries, and a server's `Retry-After` (RFC 9110 section 10.2.3) always wins
 * when it asks for a longer wait. A `Retry-After` longer than `maxRetryAfter`
 * ends the retries instead of parking the caller.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { RetryPolicy } from "@authfetch/core"
 *
 * const once = requestToken(...)
 * const withRetries = Effect.retry(once, RetryPolicy.forTokenRequests({ maxRetries: 3 }))
 * ```
 *
 * @since 0.1.0
 */
import { Duration, Effect, Random, Schedule } from "effect"
import type { TokenError } from "./Errors.ts"

/**
 * @since 0.1.0
 */
export interface BackoffOptions {
  /** retries after the first attempt; default 3 */
  readonly maxRetries?: number | undefined
  /** first backoff ceiling; default 250 ms */
  readonly baseDelay?: Duration.Input | undefined
  /** largest backoff ceiling; default 10 s */
  readonly maxDelay?: Duration.Input | undefined
  /** a `Retry-After` longer than this is not waited for; default 60 s */
  readonly maxRetryAfter?: Duration.Input | undefined
}

const resolved = (options: BackoffOptions | undefined) => ({
  maxRetries: Math.max(0, Math.floor(options?.maxRetries ?? 3)),
  baseMillis: Duration.toMillis(Duration.fromInputUnsafe(options?.baseDelay ?? Duration.millis(250))),
  maxMillis: Duration.toMillis(Duration.fromInputUnsafe(options?.maxDelay ?? Duration.seconds(10))),
  maxRetryAfterMillis: Duration.toMillis(
    Duration.fromInputUnsafe(options?.maxRetryAfter ?? Duration.seconds(60))
  )
})

/**
 * Exponential backoff with full jitter, at most `maxRetries` recurrences, where
 * `retryAfter(error)` (when it returns a duration) sets the minimum delay.
 *
 * @example
 * ```ts
 * const schedule = RetryPolicy.backoff({ maxRetries: 5 }, (e: MyError) => e.retryAfter)
 * Effect.retry(effect, schedule)
 * ```
 *
 * @since 0.1.0
 */
export const backoff = <E>(
  options: BackoffOptions | undefined,
  retryAfter: (error: E) => Duration.Duration | undefined
): Schedule.Schedule<Duration.Duration, E> => {
  const { maxRetries, baseMillis, maxMillis } = resolved(options)
  return Schedule.exponential(Duration.millis(baseMillis)).pipe(
    Schedule.setInputType<E>(),
    Schedule.upTo({ times: maxRetries }),
    Schedule.modifyDelay(({ duration, input }) =>
      Effect.map(Random.next, (random) => {
        const ceiling = Math.min(maxMillis, Duration.toMillis(duration))
        const jittered = Math.floor(ceiling * random)
        const floor = retryAfter(input)
        return Duration.millis(floor === undefined ? jittered : Math.max(jittered, Duration.toMillis(floor)))
      })
    )
  )
}

/**
 * RFC 9110 section 10.2.3: `Retry-After` is either delay-seconds or an
 * HTTP-date. Returns the wait from `now`, or `undefined` when the header is
 * absent or unreadable (a garbage header must not stall a client).
 *
 * @example
 * ```ts
 * RetryPolicy.parseRetryAfter("2", Date.now())                               // 2 seconds
 * RetryPolicy.parseRetryAfter("Wed, 21 Oct 2026 07:28:00 GMT", Date.now())   // until then
 * ```
 *
 * @since 0.1.0
 */
export const parseRetryAfter = (
  header: string | null | undefined,
  now: number
): Duration.Duration | undefined => {
  if (header === null || header === undefined) return undefined
  const value = header.trim()
  if (/^\d+$/.test(value)) {
    const seconds = Number(value)
    return Number.isSafeInteger(seconds) ? Duration.seconds(seconds) : undefined
  }
  // IMF-fixdate and the obsolete formats all start with a day name or a digit.
  if (!/^[A-Za-z]{3}/.test(value)) return undefined
  const at = Date.parse(value)
  if (Number.isNaN(at)) return undefined
  return Duration.millis(Math.max(0, at - now))
}

/**
 * Whether a failed token request is worth another attempt: transport errors,
 * timeouts, 408, 429 and 5xx. `invalid_client`, `invalid_grant`,
 * `unsupported_grant_type`, `invalid_scope` and every other OAuth error code are
 * answers, not accidents, except the two RFC 6749 section 4.1.2.1 codes for a
 * struggling server.
 *
 * @example
 * ```ts
 * RetryPolicy.isRetryableTokenError(new OAuthError({ code: "invalid_client", status: 401 })) // false
 * ```
 *
 * @since 0.1.0
 */
export const isRetryableTokenError = (error: TokenError): boolean => {
  switch (error._tag) {
    case "TokenEndpointError":
      return (
        error.reason !== "status" ||
        error.status === 408 ||
        (error.status !== undefined && error.status >= 500)
      )
    case "RateLimitedError":
      return true
    case "OAuthError":
      return error.code === "temporarily_unavailable" || error.code === "server_error"
    case "InvalidTokenResponseError":
    case "InvalidConfigError":
    case "TokenStoreError":
      return false
  }
}

const retryAfterOf = (error: TokenError): Duration.Duration | undefined =>
  error._tag === "RateLimitedError" && error.retryAfterMillis !== undefined
    ? Duration.millis(error.retryAfterMillis)
    : undefined

/**
 * The retry options for one token acquisition, ready for `Effect.retry`.
 *
 * @example
 * ```ts
 * Effect.retry(TokenEndpoint.request(...), RetryPolicy.forTokenRequests({ maxRetries: 3 }))
 * ```
 *
 * @since 0.1.0
 */
export const forTokenRequests = (options?: BackoffOptions) => {
  const { maxRetries, maxRetryAfterMillis } = resolved(options)
  return {
    maxRetries,
    schedule: backoff<TokenError>(options, retryAfterOf),
    while: (error: TokenError): boolean => {
      if (!isRetryableTokenError(error)) return false
      const wait = retryAfterOf(error)
      return wait === undefined || Duration.toMillis(wait) <= maxRetryAfterMillis
    }
  }
}
