/**
 * Where a token is refreshed. A `TokenSource` hands out access tokens and keeps
 * them fresh:
 *
 * - a fresh cached token is returned at once (the hot path reads one variable);
 * - at most one token request is in flight per source: every concurrent caller
 *   awaits the same one (single-flight), across instances too when the
 *   `TokenStore` is shared (its lock spans the acquisition);
 * - a background fiber refreshes ahead, at a jittered point before the token
 *   turns stale, so callers do not wait; its timer does not keep the process
 *   alive; only a token that was handed out is refreshed ahead (an idle source
 *   makes no requests), and background refreshes are `MIN_REFRESH_GAP` apart;
 * - a refresh that fails while the token is still valid keeps serving it
 *   (fail-static) and retries with backoff; only callers that truly need a new
 *   token see the error;
 * - `invalidate(token)` expires exactly that token, not a newer one;
 * - a refresh token, when there is one, is used before the original grant,
 *   which is the fallback when the server rejects it;
 * - token requests spend the client's `TokenBudget` (per token URL and client
 *   id, shared by every source of that client) and obey the server's `429`
 *   `Retry-After`; `getWithin` fails fast when the budget cannot admit a request
 *   in time; `invalid_client` asks an async secret provider once more, so a
 *   rotated secret is picked up without a restart.
 *
 * @example
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { TokenSource } from "@authfetch/core"
 *
 * const program = Effect.gen(function* () {
 *   const tokens = yield* TokenSource.TokenSource
 *   const token = yield* tokens.get
 *   return token.authorization()
 * })
 *
 * Effect.runPromise(program.pipe(Effect.provide(TokenSource.layer({ tokenUrl, clientId, clientSecret }))))
 * ```
 *
 * @since 0.1.0
 */
import {
  Clock,
  Context,
  Deferred,
  Duration,
  Effect,
  Equal,
  Exit,
  Fiber,
  Layer,
  Random,
  Redacted,
  type Scope
} from "effect"
import { FetchHttpClient, HttpClient } from "effect/http"
import * as ClientAuth from "./ClientAuth.ts"
import { budgetKey, cacheKey, normalizeScope, type TokenSourceConfig, validate } from "./Config.ts"
import {
  InvalidConfigError,
  type OAuthError,
  RateLimitedError,
  TokenEndpointError,
  type TokenError
} from "./Errors.ts"
import { type AcquireReason, emitTo, type TokenEvent } from "./Events.ts"
import * as Grant from "./Grant.ts"
import { sleepUnref } from "./internal/sleepUnref.ts"
import * as RetryPolicy from "./RetryPolicy.ts"
import { type AccessToken, isFresh, isUsable, makeAccessToken, sameToken } from "./Token.ts"
import * as TokenBudget from "./TokenBudget.ts"
import * as TokenEndpoint from "./TokenEndpoint.ts"
import * as TokenStore from "./TokenStore.ts"

/** RFC 6749 does not require `expires_in`; without it we assume this lifetime. */
export const DEFAULT_EXPIRES_IN: Duration.Duration = Duration.seconds(300)
/** Default client-side limit on token requests: WEX's documented server limit. */
export const DEFAULT_RATE_LIMIT = { limit: 100, window: Duration.minutes(1) } as const
/**
 * The least time between two background refreshes of one source: a server
 * that answers very short lifetimes must not turn refresh-ahead into a loop.
 */
export const MIN_REFRESH_GAP: Duration.Duration = Duration.seconds(1)

/**
 * @since 0.1.0
 */
export interface Shape {
  /** the cache key of this source's tokens (no secrets in it) */
  readonly key: string
  /** a usable access token, from cache when fresh */
  readonly get: Effect.Effect<AccessToken, TokenError>
  /**
   * Expires `token` if it is still the current one (a resource server rejected
   * it); the next `get` acquires a new one. A newer token is left alone.
   */
  readonly invalidate: (token: AccessToken) => Effect.Effect<void>
  /**
   * The current token if it is fresh at `now` (ms since epoch), without
   * running an effect: the synchronous hot path for callers on the live clock.
   */
  readonly peek: (now: number) => AccessToken | undefined
  /**
   * `get`, waiting at most `maxWaitMillis` for a token. When the client's
   * token budget cannot admit a request in time it fails at once with
   * `RateLimitedError` (`source: "client"`, `retryAfterMillis`), without
   * spending the budget; a token request still under way when the time is up
   * fails the wait with `TokenEndpointError` (`reason: "timeout"`) and goes on
   * for the next caller.
   */
  readonly getWithin: (maxWaitMillis: number) => Effect.Effect<AccessToken, TokenError>
}

/**
 * The token source service.
 *
 * @example
 * ```ts
 * const tokens = yield* TokenSource.TokenSource
 * const token = yield* tokens.get
 * ```
 *
 * @since 0.1.0
 */
export class TokenSource extends Context.Service<TokenSource, Shape>()("@authfetch/core/TokenSource") {}

const errorCode = (error: TokenError): string | undefined =>
  error._tag === "OAuthError" ? error.code : undefined
const errorStatus = (error: TokenError): number | undefined =>
  "status" in error && typeof error.status === "number" ? error.status : undefined

/**
 * Builds a token source. Its background work lives in the current `Scope`:
 * closing the scope stops refresh-ahead and aborts a request in flight.
 *
 * @example
 * ```ts
 * const tokens = yield* TokenSource.make({ tokenUrl, clientId, clientSecret })
 * ```
 *
 * @since 0.1.0
 */
export const make = (
  config: TokenSourceConfig
): Effect.Effect<
  Shape,
  InvalidConfigError,
  Scope.Scope | HttpClient.HttpClient | TokenStore.TokenStore | TokenBudget.TokenBudget
> =>
  Effect.gen(function* () {
    const problems = validate(config)
    if (problems.length > 0) return yield* new InvalidConfigError({ problems })

    const scope = yield* Effect.scope
    const store = yield* TokenStore.TokenStore
    const budget = yield* TokenBudget.TokenBudget
    const httpClient = yield* HttpClient.HttpClient
    const key = cacheKey(config)
    const clientKey = budgetKey(config)
    const grant = config.grant ?? Grant.clientCredentials()
    const clientAuth =
      config.clientAuth ?? (config.clientSecret === undefined ? "none" : "client_secret_post")
    const scopeParam = normalizeScope(config.scope)
    const params: Array<readonly [string, string]> = []
    if (config.audience !== undefined) params.push(["audience", config.audience])
    for (const resource of config.resource === undefined ? [] : [config.resource].flat()) {
      params.push(["resource", resource])
    }
    for (const [name, value] of Object.entries(config.params ?? {})) params.push([name, value])
    const defaultExpiresIn = Duration.fromInputUnsafe(config.defaultExpiresIn ?? DEFAULT_EXPIRES_IN)
    const rateLimitOption = config.rateLimit === false ? undefined : (config.rateLimit ?? DEFAULT_RATE_LIMIT)
    const rateLimit: TokenBudget.Limit | undefined = rateLimitOption && {
      limit: rateLimitOption.limit,
      windowMillis: Duration.toMillis(Duration.fromInputUnsafe(rateLimitOption.window))
    }
    const retry = RetryPolicy.forTokenRequests(config.tokenRequestRetry)
    const refreshAhead = config.refreshAhead ?? true
    const emit = (event: TokenEvent) => emitTo(config.onEvent, event)

    /** the token this instance handed out last; the hot path reads only this */
    let current: AccessToken | undefined
    /** a refresh token not attached to a cached token (configured at start) */
    let spareRefreshToken: Redacted.Redacted<string> | undefined =
      config.refreshToken === undefined
        ? undefined
        : Redacted.isRedacted(config.refreshToken)
          ? config.refreshToken
          : Redacted.make(config.refreshToken, { label: "refresh_token" })
    let inflight: Deferred.Deferred<AccessToken, TokenError> | undefined
    /** while a token request waits for the client's budget: when it will be admitted */
    let budgetWaitUntil: number | undefined
    /**
     * Completed (with `budgetWaitUntil`) and replaced each time a token request starts
     * waiting for the budget: callers with a deadline learn it at once, even when another
     * source of the client took the last admission between their check and the request.
     */
    let budgetNotice = Deferred.makeUnsafe<number>()
    /** whether the current token was handed out: refresh-ahead keeps only tokens in use fresh */
    let handedOut = false
    /** when the last background refresh started (refreshes keep `MIN_REFRESH_GAP` apart) */
    let lastRefreshStart = Number.NEGATIVE_INFINITY
    /**
     * The callers awaiting the acquisition in flight, each with its deadline (`Infinity`
     * without one): a request for which nobody can wait out the budget is not made.
     */
    const waiters = new Set<{ readonly deadline: number }>()
    let refreshFiber: Fiber.Fiber<unknown, unknown> | undefined
    /** the token whose refresh loop is running (waiting or retrying) */
    let refreshingTokenId: number | undefined
    let lastInvalidatedId: number | undefined
    /** the last refresh token the server refused, and how */
    let rejectedRefresh: { readonly token: Redacted.Redacted<string>; readonly error: OAuthError } | undefined
    /** an authorization code, once exchanged, cannot be sent again */
    let grantSpent = false

    const withTransport = <A, E, R>(effect: Effect.Effect<A, E, R>) => {
      const provided = Effect.provideService(effect, HttpClient.HttpClient, httpClient)
      return config.fetch ? Effect.provideService(provided, FetchHttpClient.Fetch, config.fetch) : provided
    }

    // One token request: client-side rate limit, then the request itself.
    const requestOnce = (
      requestGrant: Grant.Grant,
      reason: AcquireReason,
      secret: Redacted.Redacted<string> | undefined,
      attemptNo: number
    ) =>
      Effect.gen(function* () {
        // The client's budget, shared by every source of this client in the process:
        // wait until it admits this request (callers with a deadline do not wait along,
        // see `getWithin`; the wait does not keep the process alive).
        for (let wait = rateLimit ? yield* budget.take(clientKey, rateLimit) : 0; wait > 0; ) {
          const now = yield* Clock.currentTimeMillis
          // Nobody would still be waiting when the budget admits it (every caller's deadline
          // comes sooner, or every caller has gone): the request is not made at all. A
          // refresh ahead has no caller and waits.
          if (reason !== "refresh_ahead" && now + wait > latestDeadline()) return yield* rateLimitedFor(wait)
          budgetWaitUntil = now + wait
          const notice = budgetNotice
          budgetNotice = Deferred.makeUnsafe<number>()
          Deferred.doneUnsafe(notice, Exit.succeed(budgetWaitUntil))
          emit({ type: "rate_limited", at: Date.now(), key, source: "client", waitMillis: wait })
          yield* sleepUnref(Duration.millis(wait)).pipe(
            Effect.ensuring(Effect.sync(() => (budgetWaitUntil = undefined)))
          )
          wait = rateLimit ? yield* budget.take(clientKey, rateLimit) : 0
        }
        emit({
          type: "token_requested",
          at: Date.now(),
          key,
          grantType: requestGrant.type,
          reason,
          attempt: attemptNo
        })
        return yield* TokenEndpoint.request({
          tokenUrl: config.tokenUrl,
          clientId: config.clientId,
          clientAuth,
          secret,
          grant: requestGrant,
          scope: requestGrant.type === "refresh_token" ? undefined : scopeParam,
          params,
          maxResponseBytes: config.maxResponseBytes,
          timeout: config.tokenRequestTimeout
        }).pipe(
          withTransport,
          // the admission counts from the end of the exchange (see `TokenBudget.settle`)
          Effect.ensuring(rateLimit ? budget.settle(clientKey) : Effect.void)
        )
      })

    const resolveSecret =
      config.clientSecret === undefined || clientAuth === "none"
        ? Effect.succeed(undefined)
        : ClientAuth.resolveSecret(config.clientSecret)

    // A token request with retries, and one more try after invalid_client when
    // the secret comes from a provider that now returns a different (rotated) one.
    const requestWithRetries = (requestGrant: Grant.Grant, reason: AcquireReason) =>
      Effect.suspend(() => {
        let attemptNo = 0
        let usedSecret: Redacted.Redacted<string> | undefined
        const reportFailure = (error: TokenError) =>
          Effect.sync(() => {
            if (error._tag === "RateLimitedError" && error.source === "server") {
              emit({
                type: "rate_limited",
                at: Date.now(),
                key,
                source: "server",
                waitMillis: error.retryAfterMillis ?? 0
              })
            }
            emit({
              type: "token_request_failed",
              at: Date.now(),
              key,
              grantType: requestGrant.type,
              error: error._tag,
              code: errorCode(error),
              status: errorStatus(error),
              willRetry: retry.while(error) && attemptNo <= retry.maxRetries
            })
          })
        const withRetries = Effect.gen(function* () {
          attemptNo++
          usedSecret = yield* resolveSecret
          return yield* requestOnce(requestGrant, reason, usedSecret, attemptNo)
        }).pipe(Effect.tapError(reportFailure), Effect.retry(retry))
        if (typeof config.clientSecret !== "function") return withRetries
        return Effect.catchTag(withRetries, "OAuthError", (error) =>
          error.code !== "invalid_client"
            ? Effect.fail(error)
            : Effect.gen(function* () {
                const rotated = yield* resolveSecret
                if (usedSecret !== undefined && Equal.equals(rotated, usedSecret))
                  return yield* Effect.fail(error)
                attemptNo++
                return yield* requestOnce(requestGrant, reason, rotated, attemptNo).pipe(
                  Effect.tapError(reportFailure)
                )
              })
        )
      })

    const toToken = (
      response: TokenEndpoint.TokenResponse,
      previousRefresh: Redacted.Redacted<string> | undefined
    ) =>
      Effect.map(Random.next, (random) =>
        makeAccessToken(
          {
            value: response.accessToken,
            tokenType: response.tokenType,
            receivedAt: response.receivedAt,
            expiresIn:
              response.expiresIn === undefined ? defaultExpiresIn : Duration.seconds(response.expiresIn),
            scope: response.scope ?? scopeParam,
            // RFC 6749 section 6: without a new refresh token, the old one stays valid.
            refreshToken: response.refreshToken ?? previousRefresh
          },
          config,
          random
        )
      )

    // A token from the server: the refresh token first, the original grant as fallback.
    const requestToken = (reason: AcquireReason, previous: AccessToken | undefined) =>
      Effect.gen(function* () {
        const refreshToken = previous?.refreshToken ?? spareRefreshToken
        const canUseGrant = !(grantSpent && !Grant.isRepeatable(grant))
        if (refreshToken !== undefined) {
          // A refresh token the server already rejected is not sent again.
          if (rejectedRefresh && Equal.equals(rejectedRefresh.token, refreshToken) && !canUseGrant) {
            return yield* Effect.fail(rejectedRefresh.error)
          }
          const refreshed = yield* requestWithRetries(Grant.refreshToken(refreshToken), reason).pipe(
            Effect.map((response) => ({ response })),
            Effect.catchTag("OAuthError", (error) =>
              Effect.suspend(() => {
                if (error.code !== "invalid_grant") return Effect.fail(error)
                emit({ type: "refresh_token_rejected", at: Date.now(), key, code: error.code })
                spareRefreshToken = undefined
                rejectedRefresh = { token: refreshToken, error }
                return canUseGrant ? Effect.succeed(undefined) : Effect.fail(error)
              })
            )
          )
          if (refreshed) {
            const token = yield* toToken(refreshed.response, refreshToken)
            return { token, grantType: "refresh_token" }
          }
        }
        if (!canUseGrant) {
          return yield* new InvalidConfigError({
            problems: [
              `the ${grant.type} grant was already used and no refresh token is left; authorize again`
            ]
          })
        }
        const response = yield* requestWithRetries(grant, reason)
        grantSpent = true
        const token = yield* toToken(response, undefined)
        return { token, grantType: grant.type }
      })

    /** a dead lock holder (another instance) keeps the others waiting at most one token request */
    const lockOptions: TokenStore.LockOptions = {
      ttlMillis: Duration.toMillis(
        Duration.fromInputUnsafe(config.tokenRequestTimeout ?? TokenEndpoint.DEFAULT_TIMEOUT)
      )
    }

    // What a single-flight leader runs, under the store's lock. A refresh ahead
    // renews `target`, the token whose refresh point came.
    const acquire = (reason: AcquireReason, target: AccessToken | undefined) =>
      store.withLock(
        key,
        Effect.gen(function* () {
          const started = yield* Clock.currentTimeMillis
          const stored = yield* store.get(key)
          // Another holder of the lock (another instance) may have refreshed meanwhile.
          if (
            stored &&
            isFresh(stored, started) &&
            (reason !== "refresh_ahead" || target === undefined || !sameToken(stored, target))
          ) {
            return { token: stored, requested: false }
          }
          const { token, grantType } = yield* requestToken(reason, stored ?? current)
          yield* store.set(key, token)
          const done = yield* Clock.currentTimeMillis
          emit({
            type: "token_acquired",
            at: Date.now(),
            key,
            grantType,
            reason,
            tokenId: token.id,
            expiresInSeconds: Math.round((token.expiresAt - token.receivedAt) / 1000),
            scope: token.scope,
            hasRefreshToken: token.refreshToken !== undefined,
            durationMillis: done - started
          })
          return { token, requested: true }
        }),
        lockOptions
      )

    const adopt = (token: AccessToken, requested: boolean) =>
      Effect.gen(function* () {
        if (current?.id !== token.id) handedOut = false
        current = token
        if (requested && config.onTokenChange) {
          const hook = config.onTokenChange
          yield* Effect.promise(async () => {
            try {
              await hook(token)
            } catch {
              // The hook's failure must not fail the callers waiting for the token.
            }
          })
        }
        if (refreshAhead) yield* scheduleRefresh(token)
      })

    // Single-flight: the first caller starts the acquisition in the source's
    // scope (a caller that gives up does not cancel it for the others).
    const startShared = (
      reason: AcquireReason,
      target?: AccessToken
    ): Effect.Effect<Deferred.Deferred<AccessToken, TokenError>> =>
      Effect.suspend(() => {
        if (inflight) return Effect.succeed(inflight)
        const deferred = Deferred.makeUnsafe<AccessToken, TokenError>()
        inflight = deferred
        return acquire(reason, target).pipe(
          Effect.tap(({ token, requested }) =>
            Effect.andThen(
              adopt(token, requested),
              Effect.sync(() => {
                // a caller waits for this token: it is in use
                if (reason !== "refresh_ahead") handedOut = true
              })
            )
          ),
          Effect.map(({ token }) => token),
          Effect.onExit((exit) =>
            Effect.sync(() => {
              inflight = undefined
              Deferred.doneUnsafe(deferred, exit)
            })
          ),
          Effect.forkIn(scope),
          Effect.as(deferred)
        )
      })
    /** The latest deadline of the callers awaiting the acquisition; 0 when none waits. */
    const latestDeadline = (): number => {
      let latest = 0
      for (const waiter of waiters) latest = Math.max(latest, waiter.deadline)
      return latest
    }

    /**
     * Runs `wait` (starting or joining the acquisition, awaiting it) as one of its
     * `waiters`, registered before the acquisition starts so that its leader sees it.
     */
    const waitingAs = <A, E>(deadline: number, wait: Effect.Effect<A, E>): Effect.Effect<A, E> =>
      Effect.suspend(() => {
        const waiter = { deadline }
        waiters.add(waiter)
        return Effect.ensuring(
          wait,
          Effect.sync(() => waiters.delete(waiter))
        )
      })

    const acquireShared = (
      reason: AcquireReason,
      target?: AccessToken
    ): Effect.Effect<AccessToken, TokenError> =>
      reason === "refresh_ahead"
        ? Effect.flatMap(startShared(reason, target), Deferred.await)
        : waitingAs(Number.POSITIVE_INFINITY, Effect.flatMap(startShared(reason), Deferred.await))

    // One refresh loop at a time, for the token being served.
    const scheduleRefresh = (token: AccessToken, immediately = false) =>
      Effect.gen(function* () {
        const previous = refreshFiber
        refreshingTokenId = token.id
        refreshFiber = yield* refreshLoop(token, immediately).pipe(Effect.forkIn(scope))
        if (previous) yield* Effect.forkDetach(Fiber.interrupt(previous))
      })

    const refreshRetry = {
      schedule: RetryPolicy.backoff<TokenError>(
        {
          maxRetries: Number.MAX_SAFE_INTEGER,
          baseDelay: Duration.seconds(1),
          maxDelay: Duration.seconds(30)
        },
        () => undefined
      )
    }

    // Refresh ahead; on failure keep serving the valid token and retry with
    // backoff for as long as it stays valid and current.
    const refreshLoop = (token: AccessToken, immediately: boolean) =>
      Effect.gen(function* () {
        let now = yield* Clock.currentTimeMillis
        const refreshAt = Math.max(
          immediately ? now : token.refreshAt,
          lastRefreshStart + Duration.toMillis(MIN_REFRESH_GAP)
        )
        while (now < refreshAt) {
          yield* sleepUnref(Duration.millis(refreshAt - now))
          now = yield* Clock.currentTimeMillis
        }
        // A token nobody asked for is left to expire: the next caller acquires on
        // demand. Refreshing it anyway would spend the budget with no caller at all.
        if (current?.id !== token.id || (!immediately && !handedOut)) return
        lastRefreshStart = now
        yield* acquireShared("refresh_ahead", token).pipe(
          Effect.tapError((error) =>
            Effect.flatMap(Clock.currentTimeMillis, (at) =>
              Effect.sync(() => {
                if (isUsable(token, at) && current?.id === token.id) {
                  emit({
                    type: "refresh_failed_serving_cached",
                    at: Date.now(),
                    key,
                    tokenId: token.id,
                    expiresInMillis: token.expiresAt - at,
                    error: error._tag
                  })
                }
              })
            )
          ),
          Effect.retry({
            ...refreshRetry,
            while: () =>
              Effect.map(Clock.currentTimeMillis, (at) => isUsable(token, at) && current?.id === token.id)
          }),
          Effect.ignore,
          Effect.ensuring(
            Effect.sync(() => {
              if (refreshingTokenId === token.id) refreshingTokenId = undefined
            })
          )
        )
      })

    /** A token from the store when it can be served, else the reason to acquire one. */
    const fromStore: Effect.Effect<AccessToken | AcquireReason, TokenError> = Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      const stored = yield* store.get(key)
      if (stored && isFresh(stored, now)) {
        if (stored.id !== current?.id) yield* adopt(stored, false)
        handedOut = true
        return stored
      }
      // Stale but still valid (a refresh failed or has not run yet): serve it
      // while a refresh runs in the background, so nobody waits (fail-static).
      if (stored && isUsable(stored, now)) {
        if (stored.id !== current?.id) current = stored
        handedOut = true
        // The refresh loop owns retries and their backoff; start it if it is not running.
        if (refreshingTokenId !== stored.id) yield* scheduleRefresh(stored, true)
        return stored
      }
      return stored === undefined ? "initial" : stored.id === lastInvalidatedId ? "invalidated" : "expired"
    })

    const slowGet: Effect.Effect<AccessToken, TokenError> = Effect.flatMap(fromStore, (found) =>
      typeof found === "string" ? acquireShared(found) : Effect.succeed(found)
    )

    const get: Effect.Effect<AccessToken, TokenError> = Effect.clockWith((clock) => {
      const token = current
      if (token !== undefined && isFresh(token, clock.currentTimeMillisUnsafe())) {
        handedOut = true
        return Effect.succeed(token)
      }
      return slowGet
    })

    const rateLimitedFor = (waitMillis: number) =>
      new RateLimitedError({ source: "client", retryAfterMillis: Math.ceil(waitMillis) })

    const getWithin = (maxWaitMillis: number): Effect.Effect<AccessToken, TokenError> =>
      Effect.clockWith((clock) => {
        const token = current
        if (token !== undefined && isFresh(token, clock.currentTimeMillisUnsafe())) {
          handedOut = true
          return Effect.succeed(token)
        }
        return Effect.gen(function* () {
          const found = yield* fromStore
          if (typeof found !== "string") return found
          const now = yield* Clock.currentTimeMillis
          // Fail fast when the budget cannot admit a request in time: a request already
          // waiting for it, or the budget as it stands (then nothing is started or spent).
          const waiting = budgetWaitUntil === undefined ? 0 : budgetWaitUntil - now
          const budgetWait =
            inflight === undefined && rateLimit ? yield* budget.waitFor(clientKey, rateLimit) : waiting
          if (budgetWait > maxWaitMillis) return yield* rateLimitedFor(budgetWait)
          const deadline = now + maxWaitMillis
          const notice = budgetNotice
          // The token, or a notice that the request now waits for the budget past the deadline.
          const budgetTooLate = Deferred.await(notice).pipe(
            Effect.flatMap((until) =>
              until > deadline ? Effect.fail(rateLimitedFor(until - now)) : Effect.never
            )
          )
          return yield* waitingAs(
            deadline,
            Effect.flatMap(startShared(found), (deferred) =>
              Effect.raceFirst(Deferred.await(deferred), budgetTooLate)
            )
          ).pipe(
            Effect.timeoutOrElse({
              duration: Duration.millis(Math.max(0, maxWaitMillis)),
              orElse: () =>
                Effect.flatMap(
                  Clock.currentTimeMillis,
                  (at): Effect.Effect<never, TokenError> =>
                    budgetWaitUntil !== undefined && budgetWaitUntil > at
                      ? Effect.fail(rateLimitedFor(budgetWaitUntil - at))
                      : Effect.fail(TokenEndpointError.waitTimedOut())
                )
            })
          )
        })
      })

    const invalidate = (token: AccessToken): Effect.Effect<void> =>
      Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        const changed = yield* store.invalidate(key, token, now).pipe(Effect.orElseSucceed(() => false))
        if (current?.id === token.id) current = undefined
        if (changed) {
          lastInvalidatedId = token.id
          emit({ type: "token_invalidated", at: Date.now(), key, tokenId: token.id })
        }
      })

    // A shared store tells of tokens other instances wrote: a newer fresh one is
    // adopted (no request, no wait), the current one invalidated elsewhere is dropped.
    if (store.changes) {
      yield* store.changes(key, (token) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) => {
          if (current !== undefined && sameToken(token, current)) {
            if (!isFresh(token, now)) {
              lastInvalidatedId = current.id
              current = undefined
            }
            return Effect.void
          }
          if (!isFresh(token, now) || (current !== undefined && token.receivedAt < current.receivedAt)) {
            return Effect.void
          }
          return adopt(token, false)
        })
      )
    }

    const peek = (now: number): AccessToken | undefined => {
      const token = current
      if (token === undefined || !isFresh(token, now)) return undefined
      handedOut = true
      return token
    }

    return TokenSource.of({ key, get, getWithin, invalidate, peek })
  })

/**
 * The token source as a layer, over whatever HttpClient, TokenStore and
 * TokenBudget the program provides.
 *
 * @example
 * ```ts
 * const TokensLive = TokenSource.layer(config).pipe(Layer.provide(TokenSource.layerDependencies))
 * ```
 *
 * @since 0.1.0
 */
export const layer = (
  config: TokenSourceConfig
): Layer.Layer<
  TokenSource,
  InvalidConfigError,
  HttpClient.HttpClient | TokenStore.TokenStore | TokenBudget.TokenBudget
> => Layer.effect(TokenSource, make(config))

/**
 * The defaults: `fetch` transport, in-memory token store, the process's token
 * budget (one per client for every source in the process).
 *
 * @example
 * ```ts
 * Effect.provide(program, TokenSource.layer(config).pipe(Layer.provide(TokenSource.layerDependencies)))
 * ```
 *
 * @since 0.1.0
 */
export const layerDependencies: Layer.Layer<
  HttpClient.HttpClient | TokenStore.TokenStore | TokenBudget.TokenBudget
> = Layer.mergeAll(FetchHttpClient.layer, TokenStore.layerMemory, TokenBudget.layerMemory)

/**
 * A token source with the default dependencies.
 *
 * @example
 * ```ts
 * Effect.runPromise(program.pipe(Effect.provide(TokenSource.layerDefault(config))))
 * ```
 *
 * @since 0.1.0
 */
export const layerDefault = (config: TokenSourceConfig): Layer.Layer<TokenSource, InvalidConfigError> =>
  layer(config).pipe(Layer.provide(layerDependencies))
