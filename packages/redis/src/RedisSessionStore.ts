/**
 * A `SessionStore` (core's store of signed-in users' sessions) shared by a
 * fleet of instances through Redis: a user who signs in through one instance
 * is signed in on all of them, a refresh by one is the refresh of all, and a
 * sign-out anywhere is seen everywhere at the next request.
 *
 * - **Sealed at rest.** Each entry (a session: the user's claims and token
 *   set; a sign-in transaction: PKCE verifier, nonce, return path) is sealed
 *   with AES-256-GCM under the store's `encryptionKeys`, with its Redis key as
 *   additional data: an entry copied under another key does not open. Keys
 *   are core's digests (`ss_…`, `tx_…`), never a session id or a `state`.
 * - **Expiry in Redis** (`PX`): an entry is gone when core says it ends.
 * - **Single use**: `take` is `GETDEL`, so a sign-in transaction completes
 *   once however many callbacks race (Redis 6.2 or later).
 * - **One refresh per session for the fleet**: `withLock` is the token
 *   store's lock (owner, expiry, renewal, owner-only release, waiters woken
 *   by the release message), on the session's own key.
 * - **No fallback.** A session lives only in Redis: an instance that cannot
 *   reach Redis cannot know who is signed in, and a session kept in one
 *   instance's memory would sign the user out on every other one. A command
 *   that fails or misses its deadline fails with `TokenStoreError` (the
 *   proxy answers 503) and emits `session_store_failed`; the next command
 *   tries Redis again. An entry this instance cannot open (sealed with a key
 *   it lacks, damaged) is absent, with `entry_unreadable`.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { UserSessions } from "@authfetch/core"
 * import { RedisClient, RedisSessionStore } from "@authfetch/redis"
 *
 * const Sessions = RedisSessionStore.layer({ encryptionKeys: [process.env.TOKEN_ENCRYPTION_KEY!] }).pipe(
 *   Layer.provide(RedisClient.layer({ url: process.env.REDIS_URL }))
 * )
 * const Live = UserSessions.layer(config).pipe(Layer.provide(Layer.merge(UserSessions.layerDependencies, Sessions)))
 * ```
 *
 * @since 0.2.0
 */
import { randomBytes } from "node:crypto"
import { InvalidConfigError, SessionStore, TokenStoreError } from "@authfetch/core"
import { Duration, Effect, Layer, Queue, type Scope } from "effect"
import { Redis } from "effect/persistence"
import * as Encryption from "./Encryption.ts"
import { emitTo, type SessionStoreOperation, type StoreEvent } from "./Events.ts"
import * as deadline from "./internal/deadline.ts"
import * as Lock from "./internal/lock.ts"
import * as protocol from "./internal/protocol.ts"
import * as RedisTokenStore from "./RedisTokenStore.ts"

/**
 * The session store's options: the token store's encryption keys, prefix,
 * command deadline and event listener (`redisStore` gives both stores the
 * same).
 *
 * @since 0.2.0
 */
export interface Options
  extends Pick<RedisTokenStore.Options, "encryptionKeys" | "prefix" | "commandTimeoutMillis" | "onEvent"> {}

/**
 * Longest sleep of a lock waiter between two attempts, should a release
 * message be lost: a user's request waits behind a refresh, so shorter than
 * the token store's.
 */
const MAX_LOCK_WAIT_SLICE_MILLIS = 500

/**
 * The problems of `options`, or none. Never quotes a key.
 *
 * @example
 * ```ts
 * const problems = RedisSessionStore.validate({ encryptionKeys: [] }) // ["encryptionKeys: at least one key is required ..."]
 * ```
 *
 * @since 0.2.0
 */
export const validate = (options: Options): Array<string> => {
  if (typeof options !== "object" || options === null) {
    return ["session store options must be an object ({ encryptionKeys, ... })"]
  }
  return RedisTokenStore.validate({
    encryptionKeys: options.encryptionKeys,
    prefix: options.prefix,
    commandTimeoutMillis: options.commandTimeoutMillis
  })
}

const isEntry = (value: unknown): value is SessionStore.Entry =>
  typeof value === "object" && value !== null && !Array.isArray(value)

/**
 * Builds the session store on the `Redis` service. Its subscription (the
 * release messages of session locks) lives in the current scope.
 *
 * @example
 * ```ts
 * const store = yield* RedisSessionStore.make({ encryptionKeys: [key] })
 * yield* store.set("ss_abc", { hello: "world" }, { ttlMillis: 60_000 })
 * ```
 *
 * @since 0.2.0
 */
export const make = (
  options: Options
): Effect.Effect<SessionStore.Shape, InvalidConfigError, Redis.Redis | Scope.Scope> =>
  Effect.gen(function* () {
    const problems = validate(options)
    if (problems.length > 0) return yield* new InvalidConfigError({ problems })
    const keys = Encryption.parseKeys(options.encryptionKeys) as Encryption.Keys
    const redis = yield* Redis.Redis
    const names = protocol.keyNames(options.prefix ?? "authfetch")
    const timeoutMillis = options.commandTimeoutMillis ?? RedisTokenStore.DEFAULT_COMMAND_TIMEOUT_MILLIS
    const instanceId = randomBytes(8).toString("base64url")
    const emit = (event: StoreEvent) => emitTo(options.onEvent, event)
    const scope = yield* Effect.scope

    // --- commands: a deadline each, a failure is the caller's -----------------------------

    const failure = (operation: SessionStoreOperation, error: unknown): TokenStoreError => {
      emit({
        type: "session_store_failed",
        at: Date.now(),
        operation,
        reason: deadline.isTimeout(error) ? "timeout" : "error"
      })
      return new TokenStoreError({
        operation,
        store: "session",
        detail: deadline.describeFailure(error, timeoutMillis)
      })
    }
    const command = <A>(
      operation: SessionStoreOperation,
      send: Effect.Effect<A, Redis.RedisError>
    ): Effect.Effect<A, TokenStoreError> =>
      send.pipe(
        deadline.withDeadline(timeoutMillis),
        Effect.mapError((error) => failure(operation, error))
      )

    // --- entries: sealed for their own Redis key ---------------------------------------

    const seal = (key: string, entry: SessionStore.Entry): string =>
      Encryption.seal(keys, names.session(key), JSON.stringify(entry))

    /** The entry of a reply; `undefined` when there is none, or none this instance can open. */
    const open = (key: string, reply: unknown): SessionStore.Entry | undefined => {
      if (reply === null || reply === undefined) return undefined
      const plaintext =
        typeof reply === "string" ? Encryption.open(keys, names.session(key), reply) : undefined
      let entry: unknown
      try {
        entry = plaintext === undefined ? undefined : JSON.parse(plaintext)
      } catch {
        entry = undefined
      }
      if (isEntry(entry)) return entry
      emit({ type: "entry_unreadable", at: Date.now(), key })
      return undefined
    }

    const get = (key: string) =>
      Effect.map(command("get", redis.send<unknown>("GET", names.session(key))), (reply) => open(key, reply))

    const set = (key: string, entry: SessionStore.Entry, setOptions: SessionStore.SetOptions) =>
      Effect.suspend(() => {
        const ttlMillis = Math.ceil(setOptions?.ttlMillis)
        // An entry that lives no time is gone at once (`PX` must be positive).
        if (!(ttlMillis > 0)) return Effect.asVoid(command("set", redis.send("DEL", names.session(key))))
        const sealed = seal(key, entry)
        const expiry = Number.isFinite(ttlMillis) ? ["PX", String(ttlMillis)] : []
        return Effect.asVoid(command("set", redis.send("SET", names.session(key), sealed, ...expiry)))
      })

    const remove = (key: string) => Effect.asVoid(command("delete", redis.send("DEL", names.session(key))))

    // GETDEL (Redis 6.2): read and delete in one step, so two takes never both find the entry.
    const take = (key: string) =>
      Effect.map(command("take", redis.send<unknown>("GETDEL", names.session(key))), (reply) =>
        open(key, reply)
      )

    // --- the lock: the token store's, failing instead of falling back -------------------

    // The process's side: one contender per session in this process for the fleet's lock.
    const local = SessionStore.makeMemoryIsolated({ maxEntries: 1 })
    const locks = Lock.make({
      redis,
      lockKey: names.lock,
      channel: names.sessionChannel,
      instanceId,
      timeoutMillis,
      maxWaitSliceMillis: MAX_LOCK_WAIT_SLICE_MILLIS,
      scope,
      emit,
      local: (key, effect) => local.withLock(key, effect, { ttlMillis: 0 }),
      run: (send) => deadline.withDeadline(timeoutMillis)(send),
      unavailable: (error) => Effect.fail(failure("lock", error))
    })

    const onMessage = (text: string) => {
      // a new subscription: releases may have been missed meanwhile
      if (text === "") return locks.wakeAll()
      let body: unknown
      try {
        body = JSON.parse(text)
      } catch {
        return
      }
      const message = body as Partial<protocol.Message> | null
      if (message?.t === "released" && typeof message.k === "string" && message.o !== instanceId) {
        locks.wake(message.k)
      }
    }
    // Subscribed again whenever it fails; a lost message costs a waiter one wait slice.
    yield* Effect.scoped(
      Effect.gen(function* () {
        const queue = yield* redis.subscribe(names.sessionChannel)
        for (;;) onMessage((yield* Queue.take(queue)).message)
      })
    ).pipe(
      Effect.catchCause(() => Effect.sleep(Duration.millis(RedisTokenStore.PROBE_INTERVAL_MILLIS))),
      Effect.forever,
      Effect.forkIn(scope)
    )

    return SessionStore.SessionStore.of({
      get,
      set,
      delete: remove,
      take,
      withLock: (key, effect, lockOptions) => locks.withLock(key, effect, lockOptions?.ttlMillis ?? 10_000)
    })
  })

/**
 * The session store as a layer over the `Redis` service: provide it next to
 * `UserSessions.layerDependencies` and it replaces the memory store.
 *
 * @example
 * ```ts
 * const Sessions = RedisSessionStore.layer({ encryptionKeys: [key] }).pipe(Layer.provide(RedisClient.layer({ url })))
 * ```
 *
 * @since 0.2.0
 */
export const layer = (
  options: Options
): Layer.Layer<SessionStore.SessionStore, InvalidConfigError, Redis.Redis> =>
  Layer.effect(SessionStore.SessionStore, make(options))
