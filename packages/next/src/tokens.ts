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
  type TokenSourceConfig,
  type TokenSourceHandle,
  type Tokens
} from "@authfetch/core"

/** The registry's key on `globalThis`: a registered symbol, the same for every copy of this module. */
const REGISTRY = Symbol.for("@authfetch/next/token-sources")

type Registry = Map<string, TokenSourceHandle>

const registry = (): Registry => {
  const holder = globalThis as { [REGISTRY]?: Registry }
  holder[REGISTRY] ??= new Map()
  return holder[REGISTRY]
}

/**
 * The process's token source for `config`: created on the first call for its
 * cache key, the same object on every later call (from any copy of the
 * calling module). The first configuration given for a key wins: its
 * listeners, `fetch` and secret provider are the ones used, until the source
 * is disposed (which removes it from the registry).
 *
 * Creating a source does not request a token; the first `getToken` does.
 *
 * @example
 * ```ts
 * const tokens = getTokenSource(fromEnv("WEX"))
 * const token = await tokens.getToken()
 * ```
 *
 * @since 0.1.0
 */
export const getTokenSource = (config: TokenSourceConfig, options?: CreateOptions): TokenSourceHandle =>
  registered(Config.cacheKey(config), config, options)

/** The registry's source under `key` (the configuration's cache key), created if there is none. */
const registered = (key: string, config: TokenSourceConfig, options?: CreateOptions): TokenSourceHandle => {
  const sources = registry()
  const existing = sources.get(key)
  if (existing !== undefined) return existing
  const created = createTokenSource(config, options)
  const dispose = () => {
    if (sources.get(key) === handle) sources.delete(key)
    return created.dispose()
  }
  const handle: TokenSourceHandle = {
    key: created.key,
    getToken: created.getToken,
    peek: created.peek,
    invalidate: created.invalidate,
    dispose,
    [Symbol.asyncDispose]: dispose
  }
  sources.set(key, handle)
  return handle
}

/**
 * Disposes every registered token source and empties the registry (tests,
 * graceful shutdown). Sources are created again on their next use.
 *
 * @example
 * ```ts
 * afterEach(() => disposeTokenSources())
 * ```
 *
 * @since 0.1.0
 */
export const disposeTokenSources = async (): Promise<void> => {
  const sources = [...registry().values()]
  registry().clear()
  await Promise.all(sources.map((source) => source.dispose()))
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
  readonly getToken: () => Promise<AccessToken>
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
  // The cache key is worked out once: `peek` runs on every request.
  let resolved: { readonly config: TokenSourceConfig; readonly key: string } | undefined
  const source = () => {
    if (resolved === undefined) {
      const value = typeof config === "function" ? config() : config
      resolved = { config: value, key: Config.cacheKey(value) }
    }
    return registered(resolved.key, resolved.config, options)
  }
  return { ...lazily(source, () => (resolved === undefined ? undefined : source())), source }
}

/**
 * Promise tokens over a source resolved at its first use: `getToken` rejects
 * (never throws) when resolving fails, and `peek` gives nothing until then.
 */
const lazily = (
  resolve: () => PromiseTokens,
  ifResolved: () => PromiseTokens | undefined
): PromiseTokens & { readonly peek: () => AccessToken | undefined } => ({
  getToken: () => {
    try {
      return resolve().getToken()
    } catch (error) {
      return Promise.reject(error)
    }
  },
  peek: () => ifResolved()?.peek?.(),
  invalidate: (token) => resolve().invalidate(token)
})

const isConfig = (value: object): value is TokenSourceConfig => "tokenUrl" in value && "clientId" in value

/**
 * Turns a `TokensInput` into what the core takes, without resolving anything.
 *
 * @example
 * ```ts
 * const tokens = toTokens(() => fromEnv("WEX"))
 * ```
 *
 * @since 0.1.0
 */
export const toTokens = (input: TokensInput): Tokens => {
  if (typeof input !== "function") return isConfig(input) ? tokenSource(input) : input
  let resolved: PromiseTokens | undefined
  const tokens = (): PromiseTokens => {
    if (resolved === undefined) {
      const value = input()
      resolved = isConfig(value) ? tokenSource(value) : value
    }
    return resolved
  }
  return lazily(tokens, () => resolved)
}
