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
import { Clock, Duration, Effect, Random, Result, Schedule } from "effect"
import { RedirectError, RequestTimeoutError, RetriesExhaustedError, type TokenError } from "./Errors.ts"
import { emitRequestTo, type RequestEvent, safeUrl } from "./Events.ts"
import { canReplay, discard, type Handler, type Outgoing, SendError } from "./internal/outgoing.ts"

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
        const floor = retryAfter(input)
        return Duration.millis(
          fullJitter(
            Math.min(maxMillis, Duration.toMillis(duration)),
            random,
            floor && Duration.toMillis(floor)
          )
        )
      })
    )
  )
}

/**
 * One delay: uniform in `[0, ceiling]` ("full jitter"), never shorter than a
 * server's `Retry-After`.
 *
 * @example
 * ```ts
 * RetryPolicy.fullJitter(1000, Math.random(), 2000) // 2000: Retry-After wins
 * ```
 *
 * @since 0.1.0
 */
export const fullJitter = (
  ceilingMillis: number,
  random: number,
  retryAfterMillis?: number | undefined
): number => {
  const jittered = Math.floor(Math.max(0, ceilingMillis) * random)
  return retryAfterMillis === undefined ? jittered : Math.max(jittered, retryAfterMillis)
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
  now: number,
  serverDate?: string | null | undefined
): Duration.Duration | undefined => {
  if (header === null || header === undefined) return undefined
  const value = header.trim()
  if (/^\d+$/.test(value)) {
    const seconds = Number(value)
    return Number.isSafeInteger(seconds) ? Duration.seconds(seconds) : undefined
  }
  // IMF-fixdate and the obsolete formats all start with a day name or a digit.
  if (!/^[A-Za-z]{3}/.test(value)) return undefined
  const at = parseHttpDate(value)
  if (at === undefined) return undefined
  // RFC 9110 10.2.3 gives a date on the server's clock: measured against the
  // response's own `Date` when there is one, so a skewed server clock does not
  // turn "in 1 s" into "in 5 min".
  const reference = serverDate ? parseHttpDate(serverDate.trim()) : undefined
  return Duration.millis(Math.max(0, at - (reference ?? now)))
}

/** An HTTP-date (RFC 9110 5.6.7); asctime carries no zone and means GMT. */
const parseHttpDate = (value: string): number | undefined => {
  const zoned = /(GMT|UTC|Z|[+-]\d{4})$/i.test(value) ? value : `${value} GMT`
  const at = Date.parse(zoned)
  return Number.isNaN(at) ? undefined : at
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
        error.reason === "transport" ||
        error.reason === "timeout" ||
        (error.reason === "status" &&
          (error.status === 408 || (error.status !== undefined && error.status >= 500)))
      )
    case "RateLimitedError":
      // the server's 429 passes; our own budget's refusal means nobody can wait that long
      return error.source === "server"
    case "OAuthError":
      return error.code === "temporarily_unavailable" || error.code === "server_error"
    case "InvalidTokenResponseError":
    case "InvalidConfigError":
    case "TokenStoreError":
    case "SignInRequiredError":
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

// ---------------------------------------------------------------------------
// API requests
// ---------------------------------------------------------------------------

/**
 * RFC 9110 section 9.2.2: methods whose repetition has the same effect as one
 * request. Others are retried only with an `Idempotency-Key` header
 * (draft-ietf-httpapi-idempotency-key-header).
 *
 * @example
 * ```ts
 * RetryPolicy.isIdempotent("POST", new Headers({ "idempotency-key": "8e03978e" })) // true
 * ```
 *
 * @since 0.1.0
 */
export const isIdempotent = (method: string, headers: Headers): boolean =>
  IDEMPOTENT_METHODS.has(method.toUpperCase()) || headers.has("idempotency-key")

const IDEMPOTENT_METHODS = new Set(["GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"])

/**
 * Options for retrying API requests.
 *
 * @since 0.1.0
 */
export interface RequestRetryOptions extends BackoffOptions {
  /** statuses worth another attempt; default 429, 502, 503, 504 */
  readonly statuses?: ReadonlyArray<number> | undefined
  /** all attempts and waits of one request together; default 60 s */
  readonly maxElapsed?: Duration.Input | undefined
  /** retries spend from this bucket, shared by all requests of a client; `false` for none */
  readonly budget?: RetryBudget | false | undefined
}

/**
 * A retry budget shared by every request of a client (the AWS SDKs' "standard"
 * retry mode): a retry spends tokens, a success returns one, and when the
 * bucket is empty requests fail fast instead of multiplying traffic during an
 * outage.
 *
 * @example
 * ```ts
 * const budget = new RetryPolicy.RetryBudget({ capacity: 100 })
 * const api = authFetch(tokens, { baseUrl, retry: { budget } })
 * ```
 *
 * @since 0.1.0
 */
export class RetryBudget {
  readonly capacity: number
  readonly retryCost: number
  readonly timeoutCost: number
  readonly successRefund: number
  private tokens: number

  constructor(options?: {
    readonly capacity?: number
    readonly retryCost?: number
    readonly timeoutCost?: number
    readonly successRefund?: number
  }) {
    this.capacity = options?.capacity ?? 500
    this.retryCost = options?.retryCost ?? 5
    this.timeoutCost = options?.timeoutCost ?? 10
    this.successRefund = options?.successRefund ?? 1
    this.tokens = this.capacity
  }

  /** tokens left */
  get available(): number {
    return this.tokens
  }

  /** spends the cost of one retry; `false` (and nothing spent) when the bucket cannot pay */
  withdraw(kind: "retry" | "timeout"): boolean {
    const cost = kind === "timeout" ? this.timeoutCost : this.retryCost
    if (this.tokens < cost) return false
    this.tokens -= cost
    return true
  }

  /** a request succeeded */
  deposit(): void {
    this.tokens = Math.min(this.capacity, this.tokens + this.successRefund)
  }
}

/**
 * Retry options with their budget made concrete (the one given, `false` for
 * none, else a new one), so that every policy built from them shares it:
 * `authFetch`'s two paths, or each fetch an adapter builds for one instance.
 *
 * @example
 * ```ts
 * const retry = RetryPolicy.withBudget({ maxRetries: 3 })
 * const a = authFetch(tokens, { baseUrl, retry })
 * const b = authFetch(tokens, { baseUrl, retry, fetch: otherFetch }) // same budget as a
 * ```
 *
 * @since 0.1.0
 */
export const withBudget = (retry: RequestRetryOptions | false | undefined): RequestRetryOptions | false =>
  retry === false ? false : { ...retry, budget: retry?.budget ?? new RetryBudget() }

/**
 * What one attempt of an API request came to, as seen by the retry decision.
 *
 * @since 0.1.0
 */
export type Outcome =
  | { readonly _tag: "Response"; readonly response: Response }
  | { readonly _tag: "NetworkError" }
  | { readonly _tag: "Timeout" }
  | { readonly _tag: "Other" }

/**
 * The retry decision for one failed attempt, pure: retry after `delayMillis`,
 * or give up and say why. Idempotency (RFC 9110 9.2.2 or `Idempotency-Key`) is
 * required, except for `429` (RFC 6585 section 4: the server refused to
 * process the request, so repeating it cannot duplicate anything).
 *
 * @example
 * ```ts
 * const decision = RetryPolicy.decide({ method: "GET", headers, replayable: true }, outcome, 1, elapsed, options, Math.random())
 * ```
 *
 * @since 0.1.0
 */
export const decide = (
  request: { readonly method: string; readonly headers: Headers; readonly replayable: boolean },
  outcome: Outcome,
  attempt: number,
  elapsedMillis: number,
  options: RequestRetryOptions | undefined,
  random: number,
  now: number
):
  | { readonly _tag: "Retry"; readonly delayMillis: number }
  | { readonly _tag: "Done" }
  | {
      readonly _tag: "GiveUp"
      readonly reason: "attempts" | "deadline" | "retry_after_too_long" | "not_replayable"
    } => {
  if (outcome._tag === "Other") return { _tag: "Done" }
  if (outcome._tag === "Response" && !isRetryableStatus(outcome.response.status, options)) {
    return { _tag: "Done" }
  }
  const throttled = outcome._tag === "Response" && outcome.response.status === 429
  if (!throttled && !isIdempotent(request.method, request.headers)) return { _tag: "Done" }
  if (!request.replayable) return { _tag: "GiveUp", reason: "not_replayable" }
  const { maxRetries, baseMillis, maxMillis, maxRetryAfterMillis } = resolvedRequest(options)
  if (attempt > maxRetries) return { _tag: "GiveUp", reason: "attempts" }
  const retryAfter =
    outcome._tag === "Response"
      ? parseRetryAfter(
          outcome.response.headers.get("retry-after"),
          now,
          outcome.response.headers.get("date")
        )
      : undefined
  const retryAfterMillis = retryAfter && Duration.toMillis(retryAfter)
  if (retryAfterMillis !== undefined && retryAfterMillis > maxRetryAfterMillis) {
    return { _tag: "GiveUp", reason: "retry_after_too_long" }
  }
  const delayMillis = fullJitter(
    Math.min(maxMillis, baseMillis * 2 ** (attempt - 1)),
    random,
    retryAfterMillis
  )
  const maxElapsed = Duration.toMillis(Duration.fromInputUnsafe(options?.maxElapsed ?? DEFAULT_MAX_ELAPSED))
  if (elapsedMillis + delayMillis > maxElapsed) return { _tag: "GiveUp", reason: "deadline" }
  return { _tag: "Retry", delayMillis }
}

const DEFAULT_STATUSES: ReadonlyArray<number> = [429, 502, 503, 504]

/**
 * Whether a response status is one the retry step may retry (`statuses`,
 * default `429`, `502`, `503`, `504`); whether it does also depends on the
 * request (see `decide`).
 *
 * @example
 * ```ts
 * RetryPolicy.isRetryableStatus(503, undefined) // true
 * ```
 *
 * @since 0.1.0
 */
export const isRetryableStatus = (status: number, options: RequestRetryOptions | undefined): boolean =>
  (options?.statuses ?? DEFAULT_STATUSES).includes(status)
const DEFAULT_MAX_ELAPSED = Duration.seconds(60)

const resolvedRequest = (options: RequestRetryOptions | undefined) =>
  resolved({
    maxRetries: options?.maxRetries ?? 2,
    baseDelay: options?.baseDelay ?? Duration.millis(200),
    maxDelay: options?.maxDelay ?? Duration.seconds(5),
    maxRetryAfter: options?.maxRetryAfter
  })

/**
 * The retry step of the request pipeline: sends through `next`, applies
 * `decide` to each failed attempt, waits on the Effect clock (so a caller's
 * abort interrupts the wait at once and tests run on `TestClock`), spends and
 * refills the budget, and reports each retry and give-up. A response it gives
 * up on is returned as it is; a network failure or timeout it gave up on
 * becomes `RetriesExhaustedError`.
 *
 * @example
 * ```ts
 * const handler = RetryPolicy.retrying({ maxRetries: 3 }, budget, onEvent)(Bearer.authorizing(tokens, options)(wire))
 * ```
 *
 * @since 0.1.0
 */
export const retrying =
  (
    options: RequestRetryOptions | undefined,
    budget: RetryBudget | undefined,
    onEvent: ((event: RequestEvent) => void) | undefined
  ) =>
  <E>(next: Handler<E>): Handler<E | RetriesExhaustedError> =>
  (outgoing) =>
    Effect.gen(function* () {
      const started = yield* Clock.currentTimeMillis
      const request = { method: outgoing.method, headers: outgoing.headers, replayable: canReplay(outgoing) }
      for (let attempt = 1; ; attempt++) {
        const result = yield* Effect.result(next(outgoing))
        const outcome: Outcome = Result.isSuccess(result)
          ? { _tag: "Response", response: result.success }
          : isNetworkFailure(result.failure, outgoing)
            ? { _tag: "NetworkError" }
            : isTimeout(result.failure)
              ? { _tag: "Timeout" }
              : { _tag: "Other" }
        const now = yield* Clock.currentTimeMillis
        const decision = decide(request, outcome, attempt, now - started, options, yield* Random.next, now)
        let reason: "attempts" | "deadline" | "budget" | "retry_after_too_long" | "not_replayable"
        if (decision._tag === "Retry") {
          if (!budget || budget.withdraw(outcome._tag === "Timeout" ? "timeout" : "retry")) {
            emitRequestTo(onEvent, {
              type: "request_retried",
              at: Date.now(),
              method: outgoing.method,
              url: safeUrl(outgoing.url),
              attempt,
              status: outcome._tag === "Response" ? outcome.response.status : undefined,
              error: outcome._tag === "Response" ? undefined : outcome._tag,
              delayMillis: decision.delayMillis
            })
            if (outcome._tag === "Response") yield* discard(outcome.response)
            yield* Effect.sleep(Duration.millis(decision.delayMillis))
            continue
          }
          reason = "budget"
        } else if (decision._tag === "Done") {
          if (Result.isSuccess(result)) {
            budget?.deposit()
            return result.success
          }
          return yield* Effect.fail(result.failure)
        } else {
          reason = decision.reason
        }
        emitRequestTo(onEvent, {
          type: "request_gave_up",
          at: Date.now(),
          method: outgoing.method,
          url: safeUrl(outgoing.url),
          attempts: attempt,
          reason,
          status: outcome._tag === "Response" ? outcome.response.status : undefined
        })
        if (Result.isSuccess(result)) return result.success
        return yield* new RetriesExhaustedError({
          method: outgoing.method,
          url: safeUrl(outgoing.url),
          attempts: attempt,
          reason: reason === "budget" || reason === "deadline" ? reason : "attempts",
          cause: result.failure instanceof SendError ? result.failure.cause : result.failure
        })
      }
    })

/**
 * Fetch standard: a network error rejects with a `TypeError`. Anything else a
 * fetch throws (an abort, a redirect failure, a custom fetch's own error) is
 * an answer, not an accident, and is not retried.
 */
const isNetworkFailure = (error: unknown, outgoing: Outgoing): boolean =>
  error instanceof SendError &&
  error.cause instanceof TypeError &&
  !(error.cause instanceof RedirectError) &&
  !outgoing.signal?.aborted &&
  !isAbortError(error.cause)

const isAbortError = (error: unknown): boolean =>
  typeof error === "object" && error !== null && (error as { name?: unknown }).name === "AbortError"

const isTimeout = (error: unknown): boolean => error instanceof RequestTimeoutError
