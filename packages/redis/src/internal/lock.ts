/**
 * The fleet's lock of one key, shared by the token store (an acquisition or
 * refresh of a client's token) and the session store (a refresh of a user's
 * token set): a Redis key with an owner and an expiry, taken with `takeLock`,
 * renewed while its holder works (`renewLock`), released by its owner only
 * (`releaseLock`, which publishes `released` so that waiters try again at
 * once). A holder that dies frees the lock when it expires.
 *
 * What the stores differ in is what a failing Redis means: the token store
 * goes on without the fleet's lock (local single flight), the session store
 * fails (`TokenStoreError`); each passes its own `run` and `unavailable`.
 */
import { randomBytes } from "node:crypto"
import type { TokenStoreError } from "@authfetch/core"
import { Deferred, Duration, Effect, Exit, Fiber, Result, type Scope } from "effect"
import type { Redis } from "effect/persistence"
import type { StoreEvent } from "../Events.ts"
import { PROBE_INTERVAL_MILLIS, withDeadline } from "./deadline.ts"
import * as protocol from "./protocol.ts"

/** How long the release of a lock request that timed out is retried. */
const ORPHAN_RELEASE_WINDOW_MILLIS = 60_000

/** The shortest expiry of a lock: renewals every third of it must not crowd Redis. */
const MIN_TTL_MILLIS = 1_000

export interface Settings {
  readonly redis: Redis.Redis["Service"]
  /** the Redis key of the lock of `key` */
  readonly lockKey: (key: string) => string
  /** where `released` is published (and the store's subscription listens) */
  readonly channel: string
  /** in lock owners and messages */
  readonly instanceId: string
  /** the deadline of a command (the orphan release's own) */
  readonly timeoutMillis: number
  /** the longest sleep of a waiter between two attempts, should a release message be lost */
  readonly maxWaitSliceMillis: number
  /** where renewals and orphan releases run */
  readonly scope: Scope.Scope
  readonly emit: (event: StoreEvent) => void
  /** the process's side of the lock, taken first: one contender per key in this process */
  readonly local: <A, E, R>(
    key: string,
    effect: Effect.Effect<A, E, R>
  ) => Effect.Effect<A, E | TokenStoreError, R>
  /** runs a lock command with its deadline; fails when Redis cannot say */
  readonly run: <A>(command: Effect.Effect<A, Redis.RedisError>) => Effect.Effect<A, unknown>
  /**
   * what a lock that could not be taken (Redis failing) means: succeed to go on
   * without the fleet's lock, or fail
   */
  readonly unavailable: (error: unknown) => Effect.Effect<void, TokenStoreError>
}

export interface Locks {
  /** runs `effect` while holding the lock of `key` (the local one, then the fleet's) */
  readonly withLock: <A, E, R>(
    key: string,
    effect: Effect.Effect<A, E, R>,
    ttlMillis: number
  ) => Effect.Effect<A, E | TokenStoreError, R>
  /** a message said the lock of `key` may be free: its waiters try again */
  readonly wake: (key: string) => void
  /** messages may have been missed (a new subscription): every waiter tries again */
  readonly wakeAll: () => void
}

/**
 * The locks of one store.
 *
 * @example
 * ```ts
 * const locks = Lock.make({ redis, lockKey: names.lock, channel: names.channel, ... })
 * yield* locks.withLock(key, refresh, 10_000)
 * ```
 */
export const make = (settings: Settings): Locks => {
  const { redis, lockKey, channel, instanceId, timeoutMillis, scope, emit, run } = settings

  /** Woken when a message says the lock of a key may be free (released, or a token written). */
  const wakers = new Map<string, Deferred.Deferred<void>>()
  const wakerOf = (key: string) => {
    let waker = wakers.get(key)
    if (waker === undefined) {
      waker = Deferred.makeUnsafe<void>()
      wakers.set(key, waker)
    }
    return waker
  }
  const wake = (key: string) => {
    const waker = wakers.get(key)
    if (waker === undefined) return
    wakers.delete(key)
    Deferred.doneUnsafe(waker, Exit.void)
  }
  const wakeAll = () => {
    for (const key of [...wakers.keys()]) wake(key)
  }

  const releaseOf = (key: string, owner: string) =>
    redis.eval(protocol.releaseLock)(
      lockKey(key),
      owner,
      channel,
      JSON.stringify({ t: "released", k: key, o: instanceId } satisfies protocol.Message)
    )

  /**
   * A lock request that timed out may still run when Redis wakes up (a paused Redis
   * executes what it had received): the lock would then be held by nobody until its
   * expiry. Its release is sent once Redis answers again; on the same connection it
   * runs after the request. Owner-checked, so harmless when the lock was never taken.
   */
  const releaseOrphan = (key: string, owner: string) =>
    Effect.gen(function* () {
      const until = Date.now() + ORPHAN_RELEASE_WINDOW_MILLIS
      while (Date.now() < until) {
        yield* Effect.sleep(Duration.millis(PROBE_INTERVAL_MILLIS))
        const released = yield* releaseOf(key, owner).pipe(
          withDeadline(timeoutMillis),
          Effect.as(true),
          Effect.orElseSucceed(() => false)
        )
        if (released) return
      }
    }).pipe(Effect.forkIn(scope), Effect.asVoid)

  /** Takes the fleet's lock: "held", or the failure when Redis cannot say (its orphan release is under way). */
  const take = (key: string, owner: string, ttlMillis: number) =>
    Effect.gen(function* () {
      const started = Date.now()
      let waited = false
      for (;;) {
        const waker = wakerOf(key)
        const taken = yield* run(redis.eval(protocol.takeLock)(lockKey(key), owner, ttlMillis)).pipe(
          // an interrupted request may still take the lock: released as an orphan
          Effect.onInterrupt(() => releaseOrphan(key, owner)),
          Effect.result
        )
        if (Result.isFailure(taken)) {
          yield* releaseOrphan(key, owner)
          return taken
        }
        const result = taken.success
        if (result === 0) {
          if (waited) emit({ type: "lock_waited", at: Date.now(), key, waitMillis: Date.now() - started })
          return taken
        }
        // Held by another instance: sleep until it says it released the lock, or until the
        // lock would expire (its holder died), whichever comes first.
        yield* Deferred.await(waker).pipe(
          Effect.timeoutOrElse({
            duration: Duration.millis(Math.min(result, settings.maxWaitSliceMillis)),
            orElse: () => Effect.void
          })
        )
        waited = true
      }
    })

  const withLock = <A, E, R>(
    key: string,
    effect: Effect.Effect<A, E, R>,
    ttl: number
  ): Effect.Effect<A, E | TokenStoreError, R> =>
    settings.local(
      key,
      Effect.gen(function* () {
        const ttlMillis = Math.max(MIN_TTL_MILLIS, Math.ceil(ttl))
        const owner = `${instanceId}.${randomBytes(6).toString("base64url")}`
        const taken = yield* take(key, owner, ttlMillis)
        if (Result.isFailure(taken)) {
          yield* settings.unavailable(taken.failure)
          return yield* effect
        }
        // Renewed while the holder works, so the expiry only ever frees the lock of a dead one.
        const renewal = yield* Effect.gen(function* () {
          for (;;) {
            yield* Effect.sleep(Duration.millis(Math.floor(ttlMillis / 3)))
            const renewed = yield* run(redis.eval(protocol.renewLock)(lockKey(key), owner, ttlMillis)).pipe(
              Effect.orElseSucceed(() => -1)
            )
            if (renewed === 0) {
              emit({ type: "lock_lost", at: Date.now(), key })
              return
            }
          }
        }).pipe(Effect.forkIn(scope))
        return yield* effect.pipe(
          Effect.ensuring(
            Effect.andThen(
              Fiber.interrupt(renewal),
              Effect.flatMap(
                run(releaseOf(key, owner)).pipe(
                  Effect.as(true),
                  Effect.orElseSucceed(() => false)
                ),
                (released) => (released ? Effect.void : releaseOrphan(key, owner))
              )
            )
          )
        )
      })
    )

  return { withLock, wake, wakeAll }
}
