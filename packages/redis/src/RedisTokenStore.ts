/**
 * A `TokenStore` and a `TokenBudget` shared by a fleet of instances through
 * Redis: one token, one refresh and one token-request budget per client for
 * every instance.
 *
 * - **Reads stay local.** The token source serves its in-memory token until
 *   the refresh point; this store is consulted to acquire, refresh or
 *   invalidate, and tells sources of tokens other instances wrote (pub/sub,
 *   with a poll as the fallback for a missed message), so they adopt them
 *   without a request or a wait.
 * - **One acquisition for the fleet.** `withLock` takes a Redis lock with an
 *   owner and an expiry of one token-request timeout, renewed while its
 *   holder works and released by its owner only (Lua). Waiters are woken by
 *   the release message (or the lock's expiry if a holder died), then read the
 *   token the holder wrote.
 * - **Compare-and-expire** on a digest of the token value (Lua): a 401 seen
 *   late never expires a newer token.
 * - **One budget**: the client's sliding window of token requests lives in
 *   Redis, on Redis time.
 * - **Nothing readable at rest**: entries are sealed (AES-256-GCM, see
 *   `Encryption`), keys are digests, entries expire with the token.
 * - **Redis down is not an outage**: every command has a deadline; when one
 *   fails the instance runs on its local store, local single flight and a
 *   local share of the budget (the limit divided by the instances seen
 *   lately), emits `store_unavailable`, probes Redis again after a second and
 *   returns to it (`store_recovered`).
 *
 * @example
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { TokenSource } from "@authfetch/core"
 * import { RedisClient, RedisTokenStore } from "@authfetch/redis"
 *
 * const Fleet = RedisTokenStore.layer({ encryptionKeys: [process.env.TOKEN_ENCRYPTION_KEY!] }).pipe(
 *   Layer.provide(RedisClient.layer({ url: process.env.REDIS_URL }))
 * )
 * const Tokens = TokenSource.layer(config).pipe(Layer.provide(Layer.merge(TokenSource.layerDependencies, Fleet)))
 * ```
 *
 * @since 0.1.0
 */
import { randomBytes } from "node:crypto"
import {
  type AccessToken,
  InvalidConfigError,
  Token,
  TokenBudget,
  TokenStore,
  type TokenStoreError
} from "@authfetch/core"
import { Context, Duration, Effect, Layer, Queue, Redacted, type Scope } from "effect"
import { Redis } from "effect/persistence"
import * as Encryption from "./Encryption.ts"
import { emitTo, type StoreEvent, type StoreOperation } from "./Events.ts"
import * as deadline from "./internal/deadline.ts"
import * as Lock from "./internal/lock.ts"
import * as protocol from "./internal/protocol.ts"

/**
 * @since 0.1.0
 */
export interface Options {
  /** AES-256-GCM keys (32 bytes, or base64/hex of them); the first seals, all open. Required. */
  readonly encryptionKeys: ReadonlyArray<Encryption.KeyInput>
  /** the prefix of every key and of the channel; default `authfetch` (one per environment sharing a Redis) */
  readonly prefix?: string | undefined
  /** the deadline of every Redis command, sent or not; default 500 ms */
  readonly commandTimeoutMillis?: number | undefined
  /** how often an instance checks the tokens it serves and says it is alive; default 5 s */
  readonly pollIntervalMillis?: number | undefined
  /** how long an entry with a refresh token outlives its access token; default 24 h */
  readonly refreshTokenRetentionMillis?: number | undefined
  /**
   * The fleet's size to assume for the local budget share before Redis has
   * said how many instances there are (Redis down at start); default 1.
   */
  readonly expectedInstances?: number | undefined
  /** fallbacks, recoveries, tokens received; no secrets */
  readonly onEvent?: ((event: StoreEvent) => void) | undefined
}

/**
 * The store and the budget over one Redis connection.
 *
 * @since 0.1.0
 */
export interface Shape {
  readonly store: TokenStore.Shape
  readonly budget: TokenBudget.Shape
  /** this instance's id in the fleet (random; in lock owners and messages) */
  readonly instanceId: string
  /** whether Redis answers a command now (it sends one; the answer also ends a fallback) */
  readonly isAvailable: Effect.Effect<boolean>
  /** the number of instances seen lately (heartbeats), at least `expectedInstances` */
  readonly fleetSize: () => number
}

/** Default deadline of one Redis command. */
export const DEFAULT_COMMAND_TIMEOUT_MILLIS = 500
/** Default interval of the poll (missed messages, heartbeat). */
export const DEFAULT_POLL_INTERVAL_MILLIS = 5_000
/** After a failure, Redis is tried again this long later (meanwhile the local fallback serves at once). */
export const PROBE_INTERVAL_MILLIS: number = deadline.PROBE_INTERVAL_MILLIS
/** Longest sleep of a lock waiter between two attempts, should a release message be lost. */
const MAX_LOCK_WAIT_SLICE_MILLIS = 2_000
const DEFAULT_RETENTION_MILLIS = 24 * 60 * 60 * 1000

/**
 * The problems of `options`, or none. Never quotes a key.
 *
 * @example
 * ```ts
 * const problems = RedisTokenStore.validate({ encryptionKeys: [] })
 * ```
 *
 * @since 0.1.0
 */
export const validate = (options: Options): Array<string> => {
  const problems: Array<string> = []
  const keys = Encryption.parseKeys(options?.encryptionKeys)
  if (Array.isArray(keys)) problems.push(...keys)
  const positive = (name: keyof Options) => {
    const value = options?.[name]
    if (value !== undefined && !(typeof value === "number" && Number.isFinite(value) && value > 0)) {
      problems.push(`${name} must be a positive number`)
    }
  }
  positive("commandTimeoutMillis")
  positive("pollIntervalMillis")
  positive("refreshTokenRetentionMillis")
  positive("expectedInstances")
  if (
    options?.prefix !== undefined &&
    (typeof options.prefix !== "string" || !/^[\w.:-]{1,64}$/.test(options.prefix))
  ) {
    problems.push("prefix must be 1 to 64 letters, digits, `_`, `-`, `.` or `:`")
  }
  return problems
}

/** The sealed part of an entry. */
interface Sealed {
  readonly v: string
  readonly t: string
  readonly r: number
  readonly x: number
  readonly s: number
  readonly f: number
  readonly c?: string | undefined
  readonly rt?: string | undefined
}

const isSealed = (u: unknown): u is Sealed => {
  if (typeof u !== "object" || u === null) return false
  const o = u as Record<string, unknown>
  return (
    typeof o.v === "string" &&
    typeof o.t === "string" &&
    ["r", "x", "s", "f"].every((field) => typeof o[field] === "number" && Number.isFinite(o[field])) &&
    (o.c === undefined || typeof o.c === "string") &&
    (o.rt === undefined || typeof o.rt === "string")
  )
}

/** A stored token as this instance knows it: one object per entry, so one id per token. */
interface Known {
  readonly digest: string
  /** the token as written */
  readonly written: AccessToken
  readonly invalidatedAt: number | undefined
  /** the token as it now is (expired when invalidated); same id */
  readonly token: AccessToken
}

/** How much longer the shared budget's window is than the provider's: 1 % (600 ms a minute). */
const CLOCK_RATE_GUARD = 0.01

/** What a lock command fails with when Redis cannot say (the lock is then local only). */
const UNAVAILABLE = Symbol("unavailable")

/** Operations no caller waits for: they probe Redis but do not decide the fallback. */
const BACKGROUND: ReadonlySet<StoreOperation> = new Set(["heartbeat", "poll"])

/**
 * Builds the store and the budget on the `Redis` service. Its background work
 * (subscription, poll) lives in the current scope.
 *
 * @example
 * ```ts
 * const { store, budget } = yield* RedisTokenStore.make({ encryptionKeys: [key] })
 * ```
 *
 * @since 0.1.0
 */
export const make = (options: Options): Effect.Effect<Shape, InvalidConfigError, Redis.Redis | Scope.Scope> =>
  Effect.gen(function* () {
    const problems = validate(options)
    if (problems.length > 0) return yield* new InvalidConfigError({ problems })
    const keys = Encryption.parseKeys(options.encryptionKeys) as Encryption.Keys
    const redis = yield* Redis.Redis
    const names = protocol.keyNames(options.prefix ?? "authfetch")
    const timeoutMillis = options.commandTimeoutMillis ?? DEFAULT_COMMAND_TIMEOUT_MILLIS
    const pollInterval = options.pollIntervalMillis ?? DEFAULT_POLL_INTERVAL_MILLIS
    const retention = options.refreshTokenRetentionMillis ?? DEFAULT_RETENTION_MILLIS
    const expectedInstances = Math.ceil(options.expectedInstances ?? 1)
    const instanceId = randomBytes(8).toString("base64url")
    const emit = (event: StoreEvent) => emitTo(options.onEvent, event)

    // --- health: Redis or the local fallback -------------------------------------------

    let downSince: number | undefined
    let retryAt = 0
    /**
     * Runs a Redis command with its deadline; on failure, or while Redis is known to be
     * down and not yet due for another try, runs `fallback` instead. Fails only as
     * `fallback` does (the lock's, which then goes on without the fleet's lock).
     */
    const attempt = <A, B, E = never>(
      operation: StoreOperation,
      command: Effect.Effect<A, unknown>,
      fallback: Effect.Effect<B, E>
    ): Effect.Effect<A | B, E> =>
      Effect.suspend(() => {
        if (downSince !== undefined && Date.now() < retryAt && !BACKGROUND.has(operation)) return fallback
        return command.pipe(
          deadline.withDeadline(timeoutMillis),
          Effect.matchEffect({
            onSuccess: (value) => {
              if (downSince !== undefined) {
                const at = Date.now()
                emit({ type: "store_recovered", at, unavailableMillis: at - downSince })
                downSince = undefined
              }
              return Effect.succeed(value)
            },
            onFailure: (error) => {
              const at = Date.now()
              // A late heartbeat or poll (a busy machine) does not switch requests to the
              // fallback: only a command that a caller waits for does.
              if (BACKGROUND.has(operation)) return fallback
              if (downSince === undefined) {
                downSince = at
                emit({
                  type: "store_unavailable",
                  at,
                  operation,
                  reason: deadline.isTimeout(error) ? "timeout" : "error"
                })
              }
              retryAt = at + PROBE_INTERVAL_MILLIS
              return fallback
            }
          })
        )
      })

    // --- entries: sealing, opening, one object per stored token --------------------------

    // The memory store never fails; its error type is the interface's.
    const memory = yield* TokenStore.makeMemory
    const local = {
      get: (cacheKey: string) => Effect.orDie(memory.get(cacheKey)),
      set: (cacheKey: string, token: AccessToken) => Effect.orDie(memory.set(cacheKey, token)),
      invalidate: (cacheKey: string, token: AccessToken, now: number) =>
        Effect.orDie(memory.invalidate(cacheKey, token, now))
    }
    const known = new Map<string, Known>()

    const sealEntry = (cacheKey: string, token: AccessToken): string =>
      Encryption.seal(
        keys,
        cacheKey,
        JSON.stringify({
          v: token.reveal(),
          t: token.tokenType,
          r: token.receivedAt,
          x: token.expiresAt,
          s: token.staleAt,
          f: token.refreshAt,
          c: token.scope,
          rt: token.revealRefreshToken()
        } satisfies Sealed)
      )

    const remember = (
      cacheKey: string,
      digest: string,
      written: AccessToken,
      invalidatedAt: number | undefined
    ) => {
      const previous = known.get(cacheKey)
      const token =
        invalidatedAt === undefined
          ? written
          : previous?.written === written && previous.invalidatedAt === invalidatedAt
            ? previous.token
            : Token.expire(written, invalidatedAt)
      known.set(cacheKey, { digest, written, invalidatedAt, token })
      return token
    }

    /** The token of an entry read from Redis or a message; `undefined` when it cannot be opened. */
    const entryToken = (
      cacheKey: string,
      digest: string,
      sealed: string | undefined,
      invalidatedAt: number | undefined
    ): AccessToken | undefined => {
      const previous = known.get(cacheKey)
      if (previous?.digest === digest) return remember(cacheKey, digest, previous.written, invalidatedAt)
      const plaintext = sealed === undefined ? undefined : Encryption.open(keys, cacheKey, sealed)
      let fields: unknown
      try {
        fields = plaintext === undefined ? undefined : JSON.parse(plaintext)
      } catch {
        fields = undefined
      }
      if (!isSealed(fields)) {
        if (sealed !== undefined) emit({ type: "entry_unreadable", at: Date.now(), key: cacheKey })
        return undefined
      }
      const written = Token.restoreAccessToken({
        value: Redacted.make(fields.v, { label: "access_token" }),
        tokenType: fields.t,
        receivedAt: fields.r,
        expiresAt: fields.x,
        staleAt: fields.s,
        refreshAt: fields.f,
        scope: fields.c,
        refreshToken:
          fields.rt === undefined ? undefined : Redacted.make(fields.rt, { label: "refresh_token" })
      })
      return remember(cacheKey, digest, written, invalidatedAt)
    }

    const message = (body: protocol.Message) => JSON.stringify(body)

    // --- the store -----------------------------------------------------------------------

    /** The entry in Redis; `undefined` when there is none (or none this instance can open). */
    const readEntry = (cacheKey: string) =>
      Effect.map(
        redis.send<Array<string | null>>("HMGET", names.token(cacheKey), "d", "e", "i"),
        (reply): AccessToken | undefined => {
          const [digest, sealed, invalidated] = Array.isArray(reply) ? reply : []
          if (typeof digest !== "string" || typeof sealed !== "string") return undefined
          const invalidatedAt = typeof invalidated === "string" ? Number(invalidated) : undefined
          return entryToken(cacheKey, digest, sealed, invalidatedAt)
        }
      )

    const get = (cacheKey: string) =>
      attempt(
        "get",
        Effect.tap(readEntry(cacheKey), (token) =>
          token === undefined ? Effect.void : local.set(cacheKey, token)
        ),
        local.get(cacheKey)
      )

    const set = (cacheKey: string, token: AccessToken) =>
      Effect.gen(function* () {
        yield* local.set(cacheKey, token)
        const digest = Encryption.digest(token.reveal())
        remember(cacheKey, digest, token, undefined)
        const sealed = sealEntry(cacheKey, token)
        const expireAt = Math.ceil(token.expiresAt + (token.refreshToken === undefined ? 0 : retention))
        yield* attempt(
          "set",
          redis.eval(protocol.setToken)(
            names.token(cacheKey),
            digest,
            sealed,
            token.receivedAt,
            expireAt,
            names.channel,
            message({ t: "set", k: cacheKey, o: instanceId, d: digest, e: sealed, r: token.receivedAt })
          ),
          Effect.void
        )
      })

    const invalidate = (cacheKey: string, token: AccessToken, now: number) =>
      Effect.gen(function* () {
        const changedLocally = yield* local.invalidate(cacheKey, token, now)
        const digest = Encryption.digest(token.reveal())
        const previous = known.get(cacheKey)
        if (previous?.digest === digest && previous.invalidatedAt === undefined) {
          remember(cacheKey, digest, previous.written, now)
        }
        return yield* attempt(
          "invalidate",
          Effect.map(
            redis.eval(protocol.invalidateToken)(
              names.token(cacheKey),
              digest,
              now,
              names.channel,
              message({ t: "invalidated", k: cacheKey, o: instanceId, d: digest, i: now })
            ),
            (changed) => changed === 1
          ),
          Effect.succeed(changedLocally)
        )
      })

    // --- the lock ------------------------------------------------------------------------

    const scope = yield* Effect.scope
    // The memory store's lock first (one contender per process for the fleet's lock); when
    // Redis cannot say, the local lock alone (local single flight).
    const locks = Lock.make({
      redis,
      lockKey: names.lock,
      channel: names.channel,
      instanceId,
      timeoutMillis,
      maxWaitSliceMillis: MAX_LOCK_WAIT_SLICE_MILLIS,
      scope,
      emit,
      local: (cacheKey, effect) => memory.withLock(cacheKey, effect),
      run: (command) => attempt("lock", command, Effect.fail(UNAVAILABLE)),
      unavailable: () => Effect.void
    })

    const withLock = <A, E, R>(
      cacheKey: string,
      effect: Effect.Effect<A, E, R>,
      lockOptions?: TokenStore.LockOptions
    ): Effect.Effect<A, E | TokenStoreError, R> =>
      locks.withLock(cacheKey, effect, lockOptions?.ttlMillis ?? 10_000)

    // --- what other instances write ------------------------------------------------------

    const watchers = new Map<string, Set<(token: AccessToken) => Effect.Effect<void>>>()
    const notify = (cacheKey: string, token: AccessToken) =>
      Effect.forEach(watchers.get(cacheKey) ?? [], (onChange) => onChange(token), { discard: true })

    const changes = (cacheKey: string, onChange: (token: AccessToken) => Effect.Effect<void>) =>
      Effect.acquireRelease(
        Effect.sync(() => {
          let set = watchers.get(cacheKey)
          if (set === undefined) {
            set = new Set()
            watchers.set(cacheKey, set)
          }
          set.add(onChange)
        }),
        () =>
          Effect.sync(() => {
            const set = watchers.get(cacheKey)
            set?.delete(onChange)
            if (set?.size === 0) watchers.delete(cacheKey)
          })
      ).pipe(Effect.asVoid)

    /** Reads the watched keys again (after a reconnection, and on each poll). */
    const resync = (via: "message" | "poll") =>
      Effect.forEach(
        [...watchers.keys()],
        (cacheKey) =>
          Effect.gen(function* () {
            const before = known.get(cacheKey)
            const token = yield* attempt("poll", readEntry(cacheKey), Effect.succeed(undefined))
            if (token === undefined) return
            const after = known.get(cacheKey)
            if (after?.digest !== before?.digest || after?.invalidatedAt !== before?.invalidatedAt) {
              yield* local.set(cacheKey, token)
              if (after?.digest !== before?.digest)
                emit({ type: "token_received", at: Date.now(), key: cacheKey, via })
              yield* notify(cacheKey, token)
            }
          }),
        { discard: true }
      )

    const onMessage = (text: string): Effect.Effect<void> =>
      Effect.suspend(() => {
        if (text === "") return resync("message")
        let body: protocol.Message
        try {
          body = JSON.parse(text) as protocol.Message
        } catch {
          return Effect.void
        }
        if (
          typeof body !== "object" ||
          body === null ||
          body.o === instanceId ||
          typeof body.k !== "string"
        ) {
          return Effect.void
        }
        const cacheKey = body.k
        if (body.t === "released") {
          locks.wake(cacheKey)
          return Effect.void
        }
        if (body.t === "set") {
          locks.wake(cacheKey)
          if (!watchers.has(cacheKey) || typeof body.d !== "string" || typeof body.e !== "string")
            return Effect.void
          const isNew = known.get(cacheKey)?.digest !== body.d
          const token = entryToken(cacheKey, body.d, body.e, undefined)
          if (token === undefined) return Effect.void
          if (isNew) emit({ type: "token_received", at: Date.now(), key: cacheKey, via: "message" })
          return Effect.andThen(local.set(cacheKey, token), notify(cacheKey, token))
        }
        if (body.t === "invalidated") {
          const previous = known.get(cacheKey)
          if (previous?.digest !== body.d || typeof body.i !== "number") return Effect.void
          const token = remember(cacheKey, body.d, previous.written, body.i)
          return Effect.andThen(local.invalidate(cacheKey, previous.written, body.i), notify(cacheKey, token))
        }
        return Effect.void
      })

    // The subscription, subscribed again whenever it fails (a client that does not
    // reconnect by itself); a failure costs the poll's latency, never a request.
    yield* Effect.scoped(
      Effect.gen(function* () {
        const queue = yield* redis.subscribe(names.channel)
        for (;;) yield* Effect.flatMap(Queue.take(queue), (received) => onMessage(received.message))
      })
    ).pipe(
      Effect.catchCause(() => Effect.sleep(Duration.millis(PROBE_INTERVAL_MILLIS))),
      Effect.forever,
      Effect.forkIn(scope)
    )

    // --- the budget ----------------------------------------------------------------------

    let fleetSize = expectedInstances
    const localBudget = TokenBudget.makeWith(new Map())
    const share = (limit: TokenBudget.Limit): TokenBudget.Limit => ({
      limit: Math.max(1, Math.floor(limit.limit / Math.max(fleetSize, expectedInstances))),
      windowMillis: limit.windowMillis
    })
    /**
     * The window on Redis's clock, lengthened by `CLOCK_RATE_GUARD`: the provider counts on its
     * own clock, and clocks of two machines do not run at exactly the same rate (seen here:
     * the 101st request of a minute on Redis time arrived inside the server's minute).
     */
    const guarded = (limit: TokenBudget.Limit) => Math.ceil(limit.windowMillis * (1 + CLOCK_RATE_GUARD))
    let admission = 0
    /** per client, the admissions of this instance not yet settled, oldest first */
    const open = new Map<string, Array<{ readonly member: string; readonly window: number } | "local">>()
    const opened = (
      clientKey: string,
      entry: { readonly member: string; readonly window: number } | "local"
    ) => {
      const entries = open.get(clientKey)
      if (entries === undefined) open.set(clientKey, [entry])
      else entries.push(entry)
    }
    const budgetStep = (clientKey: string, limit: TokenBudget.Limit, member: string, take: 0 | 1) =>
      redis.eval(protocol.takeBudget)(names.budget(clientKey), limit.limit, guarded(limit), member, take)
    const budget = TokenBudget.TokenBudget.of({
      take: (clientKey, limit) =>
        Effect.suspend(() => {
          const member = `${instanceId}.${++admission}`
          return attempt(
            "budget",
            Effect.tap(budgetStep(clientKey, limit, member, 1), (wait) =>
              Effect.sync(() => wait === 0 && opened(clientKey, { member, window: guarded(limit) }))
            ),
            Effect.tap(localBudget.take(clientKey, share(limit)), (wait) =>
              Effect.sync(() => wait === 0 && opened(clientKey, "local"))
            )
          )
        }),
      waitFor: (clientKey, limit) =>
        attempt("budget", budgetStep(clientKey, limit, "", 0), localBudget.waitFor(clientKey, share(limit))),
      settle: (clientKey) =>
        Effect.suspend(() => {
          const entries = open.get(clientKey)
          const entry = entries?.shift()
          if (entries?.length === 0) open.delete(clientKey)
          if (entry === undefined) return Effect.void
          if (entry === "local") return localBudget.settle(clientKey)
          return attempt(
            "budget",
            redis.eval(protocol.settleBudget)(names.budget(clientKey), entry.member, entry.window),
            Effect.void
          )
        })
    })

    // --- the poll: alive, fleet size, missed messages ------------------------------------

    const heartbeatTtl = pollInterval * 3
    yield* Effect.gen(function* () {
      for (;;) {
        const seen = yield* attempt(
          "heartbeat",
          redis.eval(protocol.heartbeat)(names.instances, instanceId, heartbeatTtl),
          Effect.succeed(undefined)
        )
        if (typeof seen === "number" && seen > 0) fleetSize = seen
        yield* resync("poll")
        // While Redis is down, look again sooner: recovery is noticed within a probe interval.
        yield* Effect.sleep(Duration.millis(downSince === undefined ? pollInterval : PROBE_INTERVAL_MILLIS))
      }
    }).pipe(Effect.forkIn(scope))

    const store = TokenStore.TokenStore.of({ get, set, invalidate, withLock, changes })
    return {
      store,
      budget,
      instanceId,
      isAvailable: Effect.map(
        attempt(
          "heartbeat",
          redis.eval(protocol.heartbeat)(names.instances, instanceId, heartbeatTtl),
          Effect.succeed(-1)
        ),
        (seen) => seen >= 0
      ),
      fleetSize: () => Math.max(fleetSize, expectedInstances)
    }
  })

/**
 * The store and the budget as a layer over the `Redis` service: provide it
 * next to `TokenSource.layerDependencies` and its services replace the
 * in-memory ones.
 *
 * @example
 * ```ts
 * const Fleet = RedisTokenStore.layer({ encryptionKeys: [key] }).pipe(Layer.provide(RedisClient.layer({ url })))
 * ```
 *
 * @since 0.1.0
 */
export const layer = (
  options: Options
): Layer.Layer<TokenStore.TokenStore | TokenBudget.TokenBudget, InvalidConfigError, Redis.Redis> =>
  Layer.effectContext(
    Effect.map(make(options), ({ store, budget }) =>
      Context.make(TokenStore.TokenStore, store).pipe(Context.add(TokenBudget.TokenBudget, budget))
    )
  )
