/**
 * One token source per process and configuration, whatever Next.js does to
 * modules: `next dev` re-evaluates a route module on every edit (and Next
 * may load a module once per bundle layer), and a token source created at
 * module level would be created again each time, each one asking the
 * authorization server for its own token. The sources live in a registry held
 * by `globalThis` (which survives re-evaluation), keyed by the core's
 * `Config.cacheKey` (token URL, client, grant, scope, ...; never the secret),
 * so that evaluating a route module twenty times makes one token request.
 *
 * The registry is bounded: at most `maxSources` sources (default 100; the
 * least recently used is disposed to make room), and a source not used for
 * `idleTimeout` (default 15 minutes) is disposed, which also stops its
 * background refresh. The handles it gives out survive that: the next use
 * of an evicted source's handle creates a new source for the same
 * configuration (a token request in flight when its source was evicted is
 * answered first, then that source is disposed). The idle timer is `unref`'d.
 *
 * Creation is lazy: nothing is created, and no token is requested, at import
 * or build time. A configuration may be a function, called at the first
 * request, so that a route module can be imported by `next build` without the
 * environment variables it reads at run time.
 *
 * @example
 * ```ts
 * import { tokenSource } from "@authfetch/next"
 * import { fromEnv } from "@authfetch/core/providers"
 *
 * // app/lib/wex.ts: evaluated again on every edit under `next dev`; still one source
 * export const tokens = tokenSource(() => fromEnv("WEX"))
 * ```
 *
 * @since 0.1.0
 */
import {
  type AccessToken,
  Config,
  type CreateOptions,
  createTokenSource,
  type GetTokenOptions,
  InvalidConfigError,
  isTokens,
  type TokenSourceConfig,
  type TokenSourceHandle,
  type Tokens
} from "@authfetch/core"
import { Duration } from "effect"

/**
 * The registry's key on `globalThis`: a registered symbol, the same for every
 * copy of this module (`v2`: a bounded registry; the first one was a `Map`).
 */
const REGISTRY = Symbol.for("@authfetch/next/token-sources/v2")

const DEFAULT_MAX_SOURCES = 100
const DEFAULT_IDLE_MILLIS = 15 * 60_000
/** `setTimeout` fires at once beyond this delay (2^31 - 1 ms, about 24.8 days). */
const MAX_TIMER_MILLIS = 2 ** 31 - 1

/** One registered source. */
interface Entry {
  readonly key: string
  /** the core's source; disposed when the entry is evicted */
  readonly source: TokenSourceHandle
  /** the handle the registry gives out for this key while the entry lives */
  readonly handle: TokenSourceHandle
  /** whether its configuration alone can make it again (see `isRecreatable`) */
  readonly recreatable: boolean
  lastUsed: number
  evicted: boolean
  /** `getToken` calls through the handle not yet answered: an evicted source is disposed after them */
  pending: number
}

/** @internal the registry: exported for the tests, which read its size and drive its clock */
export interface Registry {
  /** least recently used first */
  readonly entries: Map<string, Entry>
  newest: Entry | undefined
  maxSources: number
  /** `undefined`: no idle eviction */
  idleMillis: number | undefined
  timer: ReturnType<typeof setTimeout> | undefined
  timerAt: number
  now: () => number
}

/** @internal */
export const registry = (): Registry => {
  const holder = globalThis as { [REGISTRY]?: Registry }
  holder[REGISTRY] ??= {
    entries: new Map(),
    newest: undefined,
    maxSources: DEFAULT_MAX_SOURCES,
    idleMillis: DEFAULT_IDLE_MILLIS,
    timer: undefined,
    timerAt: Number.POSITIVE_INFINITY,
    now: () => Date.now()
  }
  return holder[REGISTRY]
}

/**
 * Whether a configuration alone can make its source again after an eviction:
 * client credentials and password grants can; an authorization code is
 * single-use, and a refresh token (the refresh_token grant, a configured
 * `refreshToken`) may have been rotated since (using the old one again can
 * revoke the whole grant). Such sources are never evicted for being idle, and
 * are the last choice when the registry is full.
 */
const isRecreatable = (config: TokenSourceConfig): boolean => {
  const type = config.grant?.type ?? "client_credentials"
  return (type === "client_credentials" || type === "password") && config.refreshToken === undefined
}

const touch = (state: Registry, entry: Entry): void => {
  entry.lastUsed = state.now()
  if (state.newest === entry) return
  state.entries.delete(entry.key)
  state.entries.set(entry.key, entry)
  state.newest = entry
}

/**
 * Takes an entry out of the registry and disposes its source: at once, or,
 * when a token it was asked for is on the way, as soon as that is answered
 * (its callers get it; nobody else can reach the source any more).
 */
const evict = (state: Registry, entry: Entry): void => {
  if (state.entries.get(entry.key) === entry) state.entries.delete(entry.key)
  if (state.newest === entry) state.newest = undefined
  entry.evicted = true
  if (entry.pending === 0) entry.source.dispose().catch(() => {})
}

/** Disposes the sources idle for too long and sets the timer for the next one due. */
const sweep = (state: Registry): void => {
  const idle = state.idleMillis
  if (idle === undefined) return
  const now = state.now()
  let due = Number.POSITIVE_INFINITY
  for (const entry of state.entries.values()) {
    if (!entry.recreatable) continue
    if (entry.lastUsed + idle > now) {
      due = entry.lastUsed + idle
      break
    }
    evict(state, entry)
  }
  schedule(state, due)
}

const clearTimer = (state: Registry): void => {
  if (state.timer !== undefined) clearTimeout(state.timer)
  state.timer = undefined
  state.timerAt = Number.POSITIVE_INFINITY
}

/** One timer for the whole registry, `unref`'d: it never keeps a process alive. */
const schedule = (state: Registry, due: number): void => {
  if (due === Number.POSITIVE_INFINITY) {
    clearTimer(state)
    return
  }
  if (state.timer !== undefined && state.timerAt <= due) return
  clearTimer(state)
  const delay = Math.min(Math.max(due - state.now(), 0), MAX_TIMER_MILLIS)
  const timer = setTimeout(() => {
    state.timer = undefined
    state.timerAt = Number.POSITIVE_INFINITY
    sweep(state)
  }, delay)
  ;(timer as { unref?: () => void }).unref?.()
  state.timer = timer
  state.timerAt = due
}

/** Disposes least recently used sources (those that can be made again first) until the cap holds. */
const enforceCap = (state: Registry, keep?: Entry): void => {
  while (state.entries.size > state.maxSources) {
    let victim: Entry | undefined
    let fallback: Entry | undefined
    for (const entry of state.entries.values()) {
      if (entry === keep) continue
      fallback ??= entry
      if (entry.recreatable) {
        victim = entry
        break
      }
    }
    const chosen = victim ?? fallback
    if (chosen === undefined) return
    evict(state, chosen)
  }
}

/** Registers a new source for `key`, given out as `handle`. Throws `InvalidConfigError` (core's validation). */
const create = (
  state: Registry,
  key: string,
  config: TokenSourceConfig,
  options: CreateOptions | undefined,
  handle: TokenSourceHandle
): Entry => {
  const source = createTokenSource(config, options)
  const entry: Entry = {
    key,
    source,
    handle,
    recreatable: isRecreatable(config),
    lastUsed: state.now(),
    evicted: false,
    pending: 0
  }
  state.entries.set(key, entry)
  state.newest = entry
  enforceCap(state, entry)
  sweep(state)
  return entry
}

const disposedError = () => new InvalidConfigError({ problems: ["token source is disposed"] })

/**
 * The handle given out for a key: it follows the registry, so an eviction is
 * invisible to its holder (the next use makes a new source), while its own
 * `dispose()` is final, as for a core handle.
 */
const makeHandle = (
  state: Registry,
  key: string,
  config: TokenSourceConfig,
  options: CreateOptions | undefined
): TokenSourceHandle => {
  let disposed: Promise<void> | undefined
  const live = (): Entry => {
    const entry = state.entries.get(key)
    if (entry === undefined) return create(state, key, config, options, handle)
    touch(state, entry)
    return entry
  }
  const getToken = (getOptions?: GetTokenOptions): Promise<AccessToken> => {
    if (disposed) return Promise.reject(disposedError())
    let entry: Entry
    try {
      entry = live()
    } catch (error) {
      return Promise.reject(error)
    }
    entry.pending++
    return entry.source.getToken(getOptions).finally(() => {
      entry.pending--
      if (entry.evicted && entry.pending === 0) entry.source.dispose().catch(() => {})
    })
  }
  const dispose = (): Promise<void> => {
    if (disposed === undefined) {
      const entry = state.entries.get(key)
      if (entry?.handle === handle) {
        evict(state, entry)
        disposed = entry.source.dispose()
      } else {
        disposed = Promise.resolve()
      }
    }
    return disposed
  }
  const handle: TokenSourceHandle = {
    key,
    getToken,
    peek: () => {
      if (disposed) return undefined
      const entry = state.entries.get(key)
      if (entry === undefined) return undefined
      touch(state, entry)
      return entry.source.peek()
    },
    invalidate: (token) => {
      const entry = disposed ? undefined : state.entries.get(key)
      // An evicted source's tokens are gone with it.
      return entry === undefined ? Promise.resolve() : entry.source.invalidate(token)
    },
    dispose,
    [Symbol.asyncDispose]: dispose
  }
  return handle
}

/** The registry's handle for `key`, its source created if there is none. */
const registered = (key: string, config: TokenSourceConfig, options?: CreateOptions): TokenSourceHandle => {
  const state = registry()
  const existing = state.entries.get(key)
  if (existing !== undefined) {
    touch(state, existing)
    return existing.handle
  }
  const handle = makeHandle(state, key, config, options)
  create(state, key, config, options, handle)
  return handle
}

/** What a value is, for an error message: its kind, never its content (it may be a secret). */
export const kindOf = Config.kindOf

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

/** @internal `InvalidConfigError` for arguments, each problem naming the argument. */
export const invalidArguments = (problems: ReadonlyArray<string>): InvalidConfigError =>
  new InvalidConfigError({ problems })

const configProblem = (where: string, name: string, config: unknown): string | undefined =>
  isObject(config)
    ? undefined
    : `${where}: \`${name}\` must be a token source configuration (an object with tokenUrl and clientId), got ${kindOf(config)}`

const createOptionsProblem = (where: string, options: unknown): string | undefined =>
  options === undefined || (isObject(options) && (options.store === undefined || isObject(options.store)))
    ? undefined
    : `${where}: \`options\` must be undefined or an object whose \`store\` is a TokenStore layer or a store such as redisStore()`

const keyOf = (where: string, config: TokenSourceConfig): string => {
  try {
    return Config.cacheKey(config)
  } catch {
    const problems = Config.validate(config)
    throw invalidArguments(
      problems.length > 0
        ? problems.map((problem) => `${where}: config: ${problem}`)
        : [`${where}: \`config\` is not a valid configuration`]
    )
  }
}

/**
 * The process's token source for `config`: created on the first call for its
 * cache key, the same object on every later call (from any copy of the
 * calling module) while the registry keeps it. The first configuration given
 * for a key wins: its listeners, `fetch` and secret provider are the ones
 * used, until the source is disposed (which removes it from the registry).
 *
 * The handle survives the registry's evictions (a full registry, an idle
 * source): its next use makes a new source for the configuration. Its own
 * `dispose()` is final for it.
 *
 * Creating a source does not request a token; the first `getToken` does.
 * Throws `InvalidConfigError` for a configuration that cannot work.
 *
 * @example
 * ```ts
 * const tokens = getTokenSource(fromEnv("WEX"))
 * const token = await tokens.getToken()
 * ```
 *
 * @since 0.1.0
 */
export const getTokenSource = (config: TokenSourceConfig, options?: CreateOptions): TokenSourceHandle => {
  const problems = [
    configProblem("getTokenSource", "config", config),
    createOptionsProblem("getTokenSource", options)
  ]
  const found = problems.filter((problem) => problem !== undefined)
  if (found.length > 0) throw invalidArguments(found)
  return registered(keyOf("getTokenSource", config), config, options)
}

/**
 * Limits of the registry of `tokenSource` and `getTokenSource`.
 *
 * @since 0.1.0
 */
export interface TokenSourcesOptions {
  /**
   * the most sources kept (default 100): a new one disposes the least
   * recently used (preferring one its configuration can make again)
   */
  readonly maxSources?: number | undefined
  /**
   * a source not used (`getToken`, `peek`, `invalidate`, through its handle)
   * for this long is disposed, with its background refresh; default 15
   * minutes; `false` for never. Sources that cannot be made again from their
   * configuration (authorization code, refresh token) are never idle-evicted.
   */
  readonly idleTimeout?: Duration.Input | false | undefined
}

const durationMillis = (input: unknown): number | undefined => {
  try {
    const millis = Duration.toMillis(Duration.fromInputUnsafe(input as Duration.Input))
    return millis > 0 ? millis : undefined
  } catch {
    return undefined
  }
}

/**
 * Sets the registry's limits (for every copy of this package in the process;
 * options left out keep their value). Lowering `maxSources` disposes what no
 * longer fits at once. Throws `InvalidConfigError` naming a bad option.
 *
 * @example
 * ```ts
 * // app/lib/wex.ts (or instrumentation.ts)
 * configureTokenSources({ maxSources: 20, idleTimeout: "30 minutes" })
 * ```
 *
 * @since 0.1.0
 */
export const configureTokenSources = (options: TokenSourcesOptions): void => {
  if (!isObject(options)) {
    throw invalidArguments([`configureTokenSources: \`options\` must be an object, got ${kindOf(options)}`])
  }
  const problems: Array<string> = []
  const { maxSources, idleTimeout } = options as TokenSourcesOptions
  if (maxSources !== undefined && !(Number.isSafeInteger(maxSources) && maxSources >= 1)) {
    problems.push("configureTokenSources: `options.maxSources` must be a whole number of at least 1")
  }
  const idleMillis =
    idleTimeout === undefined || idleTimeout === false ? undefined : durationMillis(idleTimeout)
  if (idleTimeout !== undefined && idleTimeout !== false && idleMillis === undefined) {
    problems.push(
      'configureTokenSources: `options.idleTimeout` must be a positive duration ("15 minutes", milliseconds) or false'
    )
  }
  if (problems.length > 0) throw invalidArguments(problems)
  const state = registry()
  if (maxSources !== undefined) state.maxSources = maxSources
  if (idleTimeout !== undefined) {
    state.idleMillis = idleMillis
    clearTimer(state)
  }
  enforceCap(state)
  sweep(state)
}

/**
 * Disposes every registered token source and empties the registry (tests,
 * graceful shutdown). Sources are created again on their next use (handles
 * given out earlier included).
 *
 * @example
 * ```ts
 * afterEach(() => disposeTokenSources())
 * ```
 *
 * @since 0.1.0
 */
export const disposeTokenSources = async (): Promise<void> => {
  const state = registry()
  const entries = [...state.entries.values()]
  state.entries.clear()
  state.newest = undefined
  clearTimer(state)
  for (const entry of entries) entry.evicted = true
  await Promise.all(entries.map((entry) => entry.source.dispose()))
}

/**
 * A configuration, or a function returning one (called at the first use, not
 * at import or build time).
 *
 * @since 0.1.0
 */
export type ConfigInput = TokenSourceConfig | (() => TokenSourceConfig)

/**
 * A token source as `withAuthFetch` and `createProxyRoute` take it:
 *
 * - a configuration, or a function returning one: the registry's source for it
 *   (one per process, lazily created), which is what a route module wants;
 * - a token source (`createTokenSource`, `tokenSource`, or the Effect
 *   service), used as it is: keeping it one per process is then yours to do.
 *
 * @since 0.1.0
 */
export type TokensInput = Tokens | TokenSourceConfig | (() => TokenSourceConfig | PromiseTokens)

/** The Promise form of a token source. */
type PromiseTokens = Extract<Tokens, { readonly getToken: unknown }>

/**
 * A token source that resolves its configuration at its first use and then
 * always defers to the registry's source for it (so a disposed source is
 * replaced by a new one on the next call).
 *
 * @since 0.1.0
 */
export interface LazyTokenSource {
  /** `maxWait`: see core's `GetTokenOptions` (a spent budget fails fast) */
  readonly getToken: (options?: GetTokenOptions) => Promise<AccessToken>
  readonly peek: () => AccessToken | undefined
  readonly invalidate: (token: AccessToken) => Promise<void>
  /** the registry's source; resolves the configuration (and may throw `InvalidConfigError`) */
  readonly source: () => TokenSourceHandle
}

/**
 * The registry's token source for a configuration, as a value to keep at
 * module level: nothing is resolved or created until the first request. Pass
 * a function when the configuration reads the environment, so that
 * `next build` can import the module without it.
 *
 * @example
 * ```ts
 * export const tokens = tokenSource(() => fromEnv("WEX"))
 * export const GET = withAuthFetch(handler, { tokens, baseUrl })
 * ```
 *
 * @since 0.1.0
 */
export const tokenSource = (config: ConfigInput, options?: CreateOptions): LazyTokenSource => {
  const problems = [
    typeof config === "function" ? undefined : configProblem("tokenSource", "config", config),
    createOptionsProblem("tokenSource", options)
  ].filter((problem) => problem !== undefined)
  if (problems.length > 0) throw invalidArguments(problems)
  // The cache key is worked out once: `peek` runs on every request.
  let resolved: { readonly config: TokenSourceConfig; readonly key: string } | undefined
  const resolve = () => {
    if (resolved === undefined) {
      const value = typeof config === "function" ? config() : config
      if (!isObject(value)) {
        throw invalidArguments([
          `tokenSource: \`config\` (a function) must return a token source configuration, returned ${kindOf(value)}`
        ])
      }
      resolved = { config: value, key: keyOf("tokenSource", value) }
    }
    return resolved
  }
  const source = () => {
    const { key, config } = resolve()
    return registered(key, config, options)
  }
  return {
    getToken: (getOptions) => {
      try {
        return source().getToken(getOptions)
      } catch (error) {
        return Promise.reject(error)
      }
    },
    // Neither resolves nor creates anything: an evicted source is made again by `getToken`.
    peek: () => (resolved === undefined ? undefined : registeredEntry(resolved.key)?.source.peek()),
    invalidate: (token) =>
      (resolved === undefined ? undefined : registeredEntry(resolved.key))?.source.invalidate(token) ??
      Promise.resolve(),
    source
  }
}

/** The live entry for `key`, marked as used; `undefined` when there is none (never made, or evicted). */
const registeredEntry = (key: string): Entry | undefined => {
  const state = registry()
  const entry = state.entries.get(key)
  if (entry !== undefined) touch(state, entry)
  return entry
}

/**
 * Promise tokens over a source resolved at its first use: `getToken` and
 * `invalidate` reject (never throw) when resolving fails, and `peek` gives
 * nothing until then.
 */
const lazily = (
  resolve: () => PromiseTokens,
  ifResolved: () => PromiseTokens | undefined
): PromiseTokens & { readonly peek: () => AccessToken | undefined } => ({
  getToken: (getOptions) => {
    try {
      return resolve().getToken(getOptions)
    } catch (error) {
      return Promise.reject(error)
    }
  },
  peek: () => ifResolved()?.peek?.(),
  invalidate: (token) => {
    try {
      return resolve().invalidate(token)
    } catch (error) {
      return Promise.reject(error)
    }
  }
})

const isConfig = (value: Record<string, unknown>): boolean =>
  ("tokenUrl" in value || "clientId" in value) && !("getToken" in value)

const isPromiseTokens = (value: Record<string, unknown>): boolean =>
  typeof value.getToken === "function" && typeof value.invalidate === "function"

const TOKENS_EXPECTED =
  "a configuration (tokenUrl, clientId), a function returning one, or a token source (getToken and invalidate)"

/**
 * What is wrong with a `TokensInput` (`undefined` when nothing is), without
 * resolving it: `name` is how the message names the argument.
 *
 * @internal
 */
export const tokensInputProblem = (input: unknown, name: string): string | undefined => {
  if (typeof input === "function") return undefined
  if (isObject(input) && (isConfig(input) || isTokens(input))) return undefined
  return `${name} must be ${TOKENS_EXPECTED}, got ${kindOf(input)}`
}

/**
 * Turns a `TokensInput` into what the core takes, without resolving anything.
 * Throws `InvalidConfigError` naming `name` (default \`tokens\`) for a value
 * that is none of them; a function returning one is checked at its first use.
 *
 * @example
 * ```ts
 * const tokens = toTokens(() => fromEnv("WEX"))
 * ```
 *
 * @since 0.1.0
 */
export const toTokens = (input: TokensInput, name = "`tokens`"): Tokens => {
  const problem = tokensInputProblem(input, name)
  if (problem !== undefined) throw invalidArguments([problem])
  if (typeof input !== "function") {
    return isConfig(input as Record<string, unknown>)
      ? tokenSource(input as TokenSourceConfig)
      : (input as Tokens)
  }
  let resolved: PromiseTokens | undefined
  const tokens = (): PromiseTokens => {
    if (resolved === undefined) {
      const value: unknown = input()
      if (!isObject(value) || !(isConfig(value) || isPromiseTokens(value))) {
        throw invalidArguments([
          `${name} (a function) must return a configuration (tokenUrl, clientId) or a token source (getToken and invalidate), returned ${kindOf(value)}`
        ])
      }
      resolved = isConfig(value)
        ? tokenSource(value as unknown as TokenSourceConfig)
        : (value as PromiseTokens)
    }
    return resolved
  }
  return lazily(tokens, () => resolved)
}
