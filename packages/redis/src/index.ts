/**
 * `@authfetch/redis`: one token, one refresh and one token-request budget for
 * a whole fleet of instances, on Redis; and the sessions of signed-in users,
 * shared by every instance.
 *
 * Promise users create one store per process and give it to every token
 * source and to `createUserSessions`; Effect users take
 * `RedisTokenStore.layer` and `RedisSessionStore.layer` over any `Redis`
 * layer.
 *
 * @example
 * ```ts
 * import { createTokenSource } from "@authfetch/core"
 * import { redisStore } from "@authfetch/redis"
 *
 * const store = redisStore({
 *   url: process.env.REDIS_URL,
 *   encryptionKeys: [process.env.TOKEN_ENCRYPTION_KEY!]
 * })
 * const tokens = createTokenSource(config, { store })
 * const sessions = createUserSessions(signInConfig, { store })
 * // at shutdown: await tokens.dispose(); await sessions.dispose(); await store.close()
 * ```
 *
 * @since 0.1.0
 */
import { InvalidConfigError, SessionStore, TokenBudget, TokenStore } from "@authfetch/core"
import { Context, Effect, Layer, ManagedRuntime } from "effect"
import { Redis } from "effect/persistence"
import * as RedisClient from "./RedisClient.ts"
import * as RedisSessionStore from "./RedisSessionStore.ts"
import * as RedisTokenStore from "./RedisTokenStore.ts"

export * as Encryption from "./Encryption.ts"
export type { SessionStoreOperation, StoreEvent, StoreOperation } from "./Events.ts"
export * as RedisClient from "./RedisClient.ts"
export * as RedisSessionStore from "./RedisSessionStore.ts"
export * as RedisTokenStore from "./RedisTokenStore.ts"

/**
 * Options of `redisStore`: the connection (`url` or `client`) and the store.
 *
 * @since 0.1.0
 */
export interface RedisStoreOptions extends RedisTokenStore.Options, RedisClient.Options {}

/**
 * A Redis store for Promise code: pass it as `store` to `createTokenSource`
 * (or to the Next.js and Express helpers), one per process for every source,
 * and to `createUserSessions` for the sessions of signed-in users.
 *
 * @since 0.1.0
 */
export interface RedisStore extends AsyncDisposable {
  /** the store and budget services, for `createTokenSource(config, { store })` */
  readonly layer: Layer.Layer<TokenStore.TokenStore | TokenBudget.TokenBudget>
  /**
   * the session store (`RedisSessionStore`) and the same budget, for
   * `createUserSessions(config, { store })`: on this store's connection,
   * keys and encryption keys, built when first used. No local fallback: a
   * failing Redis fails the request (`TokenStoreError`, a 503).
   *
   * @since 0.2.0
   */
  readonly sessionLayer: Layer.Layer<SessionStore.SessionStore | TokenBudget.TokenBudget>
  /** whether Redis answers a command now (else this instance runs on its local fallback) */
  isAvailable(): Promise<boolean>
  /** closes the Redis connections this store opened; dispose the token sources first */
  close(): Promise<void>
}

/**
 * Creates the fleet store. Throws `InvalidConfigError` at once for options
 * that cannot work (no encryption key, a key that is not 32 bytes). Never
 * waits for Redis: while it is unreachable, token sources run on their local
 * fallback.
 *
 * @example
 * ```ts
 * const store = redisStore({ url: "redis://127.0.0.1:6379", encryptionKeys: [process.env.TOKEN_ENCRYPTION_KEY!] })
 * const tokens = createTokenSource(wex({ environment: "uat", clientId, clientSecret }), { store })
 * const sessions = createUserSessions(signInConfig, { store }) // signed-in users, shared by the fleet
 * ```
 *
 * @since 0.1.0
 */
export const redisStore = (options: RedisStoreOptions): RedisStore => {
  const problems = RedisTokenStore.validate(options)
  if (options?.url !== undefined && options.client !== undefined)
    problems.push("give `url` or `client`, not both")
  if (problems.length > 0) throw new InvalidConfigError({ problems })
  // Built once, on first use, for every token source given this store.
  const runtime = ManagedRuntime.make(
    Layer.effect(Fleet, RedisTokenStore.make(options)).pipe(Layer.provideMerge(RedisClient.layer(options)))
  )
  // Validated above: building cannot fail.
  const fleet = Effect.orDie(Effect.map(runtime.contextEffect, (context) => Context.get(context, Fleet)))
  // Connecting starts now, not at the first token request: a new process's first call
  // then finds the connection made (a connection costs about a token request on loopback).
  runtime.runFork(fleet)
  // The session store, on the same connection, built when an app first uses sessions (its
  // subscription is a connection of its own, which an app of token sources alone does not need).
  const sessions = ManagedRuntime.make(
    Layer.effect(SessionStore.SessionStore, RedisSessionStore.make(options)).pipe(
      Layer.provide(
        Layer.effect(
          Redis.Redis,
          Effect.orDie(Effect.map(runtime.contextEffect, (context) => Context.get(context, Redis.Redis)))
        )
      )
    )
  )
  const sessionStore = Effect.orDie(
    Effect.map(sessions.contextEffect, (context) => Context.get(context, SessionStore.SessionStore))
  )
  let closed: Promise<void> | undefined
  const close = () => {
    // the session store first: it runs on the connection the token store's runtime owns
    const closeConnection = () => runtime.dispose()
    closed ??= sessions.dispose().then(closeConnection, closeConnection)
    return closed
  }
  return {
    layer: Layer.effectContext(
      Effect.map(fleet, ({ store, budget }) =>
        Context.make(TokenStore.TokenStore, store).pipe(Context.add(TokenBudget.TokenBudget, budget))
      )
    ),
    sessionLayer: Layer.effectContext(
      Effect.map(Effect.all([sessionStore, fleet]), ([store, { budget }]) =>
        Context.make(SessionStore.SessionStore, store).pipe(Context.add(TokenBudget.TokenBudget, budget))
      )
    ),
    isAvailable: () => Effect.runPromise(Effect.flatMap(fleet, (built) => built.isAvailable)),
    close,
    [Symbol.asyncDispose]: close
  }
}

/**
 * The variables `redisStoreFromEnv` reads.
 *
 * @since 0.1.0
 */
export const ENV = {
  /** `redis://user:password@host:6379`, `rediss://` for TLS */
  url: "REDIS_URL",
  /** comma-separated keys of 32 random bytes (base64 or hex); the first seals, all open */
  encryptionKeys: "TOKEN_ENCRYPTION_KEYS"
} as const

/**
 * The fleet store from the environment, for apps that share tokens (and
 * sessions) when deployed as several instances and keep them in memory
 * otherwise: with `REDIS_URL`, `redisStore({ url, encryptionKeys })` (keys
 * from `TOKEN_ENCRYPTION_KEYS`, comma-separated); without it, `undefined` (the
 * default memory stores of token sources and of `createUserSessions`). Throws
 * `InvalidConfigError` naming the variable, never its value (a URL may hold a
 * password), when `REDIS_URL` is set and the keys are missing or not 32 bytes.
 *
 * @example
 * ```ts
 * const store = redisStoreFromEnv({ onEvent: (event) => console.warn(event.type) })
 * const tokens = createTokenSource(fromEnv("WEX"), { store })
 * const sessions = createUserSessions(signInConfig, { store })
 * ```
 *
 * @since 0.1.0
 */
export const redisStoreFromEnv = (
  options: Omit<RedisStoreOptions, "url" | "client" | "encryptionKeys"> & {
    readonly env?: Readonly<Record<string, string | undefined>> | undefined
  } = {}
): RedisStore | undefined => {
  const { env = process.env, ...rest } = options
  const url = env[ENV.url]?.trim()
  if (!url) return undefined
  const encryptionKeys = (env[ENV.encryptionKeys] ?? "").split(",")
  if (encryptionKeys.every((key) => key.trim() === "")) {
    throw new InvalidConfigError({
      problems: [
        `${ENV.url} is set, so ${ENV.encryptionKeys} is required: comma-separated keys of 32 random bytes, base64 (\`openssl rand -base64 32\`), the same on every instance`
      ]
    })
  }
  try {
    return redisStore({ ...rest, url, encryptionKeys })
  } catch (error) {
    if (!(error instanceof InvalidConfigError)) throw error
    throw new InvalidConfigError({
      problems: error.problems.map((problem) =>
        problem.startsWith("encryptionKeys") ? `${ENV.encryptionKeys}: ${problem}` : problem
      )
    })
  }
}

/** The built store of a `redisStore`. */
class Fleet extends Context.Service<Fleet, RedisTokenStore.Shape>()("@authfetch/redis/Fleet") {}
