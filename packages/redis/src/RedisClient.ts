/**
 * The connection to Redis: Effect's `Redis` service (`effect/persistence/Redis`:
 * commands, pub/sub, Lua scripts loaded once and re-loaded after a restart)
 * over node-redis, with the settings a token store needs to survive Redis
 * going away:
 *
 * - building the layer never waits for Redis: a process that starts while
 *   Redis is down runs on its local fallback and connects when Redis is back;
 * - the client reconnects for ever, with capped exponential backoff and jitter
 *   (node-redis's default strategy gives up on some errors);
 * - no offline queue: a command sent while disconnected fails at once instead
 *   of being replayed minutes later (a stale lock or an old token written
 *   after the fact);
 * - every command has a deadline, also once sent (`rejectInFlight`), so a
 *   paused Redis (`SIGSTOP`, a failover) costs one timeout, not a hang.
 *
 * Effect users can provide any other `Redis` layer instead (for example
 * `NodeRedis.layer` of `@effect/platform-node`); the store bounds every
 * command itself as well.
 *
 * @example
 * ```ts
 * import { RedisClient } from "@authfetch/redis"
 *
 * const RedisLive = RedisClient.layer({ url: "redis://127.0.0.1:6379" })
 * ```
 *
 * @since 0.1.0
 */
import { createClient, type RedisClientOptions } from "@redis/client"
import { Effect, Layer, type Scope } from "effect"
import { Redis } from "effect/persistence"

/**
 * The smallest surface of a node-redis client the store uses: a client you
 * created yourself (`createClient(...)` of `redis` or `@redis/client`, v5 or
 * v6) fits.
 *
 * @since 0.1.0
 */
export interface NodeRedisClient {
  readonly isReady: boolean
  sendCommand(
    args: ReadonlyArray<string>,
    options?: { timeout?: number; rejectInFlight?: boolean }
  ): Promise<unknown>
  duplicate(): NodeRedisClient
  connect(): Promise<unknown>
  subscribe(channel: string, listener: (message: string, channel: string) => void): Promise<unknown>
  destroy(): void
  on(event: "error" | "ready", listener: (...args: Array<unknown>) => void): unknown
}

/**
 * @since 0.1.0
 */
export interface Options {
  /** `redis://[user:password@]host:port[/db]` or `rediss://` for TLS; default `redis://127.0.0.1:6379` */
  readonly url?: string | undefined
  /** a client of your own instead of `url` (its connection is yours; a subscriber is duplicated from it) */
  readonly client?: NodeRedisClient | undefined
  /** more node-redis options (TLS certificates, a username, ...); `url` wins */
  readonly clientOptions?: RedisClientOptions | undefined
  /** the deadline of every command, sent or not; default 500 ms */
  readonly commandTimeoutMillis?: number | undefined
  /** the longest wait between two reconnection attempts; default 2 s */
  readonly maxReconnectDelayMillis?: number | undefined
}

/** Default deadline of a Redis command: far above a healthy round trip, far below an API timeout. */
export const DEFAULT_COMMAND_TIMEOUT_MILLIS = 500

/** Reconnects for ever: 50 ms doubling to the cap, plus up to 25% jitter so a fleet does not reconnect in step. */
const reconnectStrategy =
  (maxDelay: number) =>
  (retries: number): number => {
    const delay = Math.min(2 ** Math.min(retries, 16) * 50, maxDelay)
    return Math.round(delay + Math.random() * delay * 0.25)
  }

/** node-redis emits `error` on every failed (re)connection; without a listener it would throw. */
const quiet = (client: NodeRedisClient): NodeRedisClient => {
  client.on("error", () => {})
  return client
}

const destroy = (client: NodeRedisClient) => {
  try {
    client.destroy()
  } catch {
    // already closed
  }
}

/**
 * Builds the `Redis` service. Closing the scope closes the connections this
 * function opened (not a client you passed in).
 *
 * @example
 * ```ts
 * const redis = yield* RedisClient.make({ url: "redis://127.0.0.1:6379" })
 * ```
 *
 * @since 0.1.0
 */
export const make = (options: Options = {}): Effect.Effect<Redis.Redis["Service"], never, Scope.Scope> =>
  Effect.gen(function* () {
    const timeout = options.commandTimeoutMillis ?? DEFAULT_COMMAND_TIMEOUT_MILLIS
    const maxDelay = options.maxReconnectDelayMillis ?? 2_000
    const settings = {
      ...options.clientOptions,
      url: options.url ?? options.clientOptions?.url ?? "redis://127.0.0.1:6379",
      disableOfflineQueue: true,
      socket: {
        connectTimeout: Math.max(timeout * 4, 1_000),
        ...options.clientOptions?.socket,
        reconnectStrategy: reconnectStrategy(maxDelay)
      }
    } as RedisClientOptions
    const owned = options.client === undefined
    const connect = (): NodeRedisClient => {
      const client = quiet(createClient(settings) as unknown as NodeRedisClient)
      // Not awaited: the first connection is retried in the background like any other.
      client.connect().catch(() => {})
      return client
    }
    const client = yield* Effect.acquireRelease(
      Effect.sync(() => options.client ?? connect()),
      (client) => Effect.sync(() => owned && destroy(client))
    )

    // Until the first connection is made, a command waits for it (within its deadline):
    // a process that starts with Redis up must join the fleet from its first request.
    // Afterwards a disconnected client fails commands at once.
    const firstConnection = (target: NodeRedisClient) => {
      let connected = target.isReady
      const ready = connected
        ? Promise.resolve()
        : new Promise<void>((resolve) => target.on("ready", () => resolve()))
      void ready.then(() => {
        connected = true
      })
      return (): Promise<void> | undefined =>
        connected
          ? undefined
          : Promise.race([ready, new Promise<void>((resolve) => setTimeout(resolve, timeout).unref())])
    }

    const sendWith = (target: NodeRedisClient) => {
      const connecting = firstConnection(target)
      return <A = unknown>(
        command: string,
        ...args: ReadonlyArray<string>
      ): Effect.Effect<A, Redis.RedisError> =>
        Effect.tryPromise({
          try: async () => {
            await connecting()
            // node-redis's own deadline is a backstop that frees its queue; the store's own
            // (which tells a blocked process from a slow Redis) decides first.
            return (await target.sendCommand([command, ...args], {
              timeout: timeout + 10_000,
              rejectInFlight: true
            })) as A
          },
          catch: (cause) => new Redis.RedisError({ cause })
        })
    }

    return yield* Redis.make({
      send: sendWith(client),
      // `reserve` (dedicated connections for blocking commands): the store never blocks.
      connect: Effect.sync(() => {
        const connection = quiet(client.duplicate())
        connection.connect().catch(() => {})
        return { send: sendWith(connection), close: Effect.sync(() => destroy(connection)) }
      }),
      subscribe: (channel, onMessage) =>
        Effect.gen(function* () {
          const subscriber = yield* Effect.acquireRelease(
            Effect.sync(() => quiet(client.duplicate())),
            (subscriber) => Effect.sync(() => destroy(subscriber))
          )
          // node-redis subscribes again after each reconnection; messages published in
          // between are lost, so each new subscription is announced with an empty message
          // and the store reads what it may have missed. The first subscription is made
          // once connected (without an offline queue, a command before that would fail).
          let subscribed = false
          subscriber.on("ready", () => {
            if (subscribed) return onMessage({ channel, message: "" })
            subscriber
              .subscribe(channel, (message, from) => onMessage({ channel: from, message }))
              .then(() => {
                subscribed = true
                onMessage({ channel, message: "" })
              })
              .catch(() => {})
          })
          subscriber.connect().catch(() => {})
          // Never fails: the subscriber reconnects until the scope closes.
          return Effect.never
        })
    })
  })

/**
 * The `Redis` service as a layer.
 *
 * @example
 * ```ts
 * Effect.provide(program, RedisClient.layer({ url: process.env.REDIS_URL }))
 * ```
 *
 * @since 0.1.0
 */
export const layer = (options: Options = {}): Layer.Layer<Redis.Redis> =>
  Layer.effect(Redis.Redis, make(options))
