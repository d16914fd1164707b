/**
 * The sessions of signed-in users, one per process and configuration,
 * whatever Next.js does to modules: `next dev` evaluates a module again on
 * every edit, and Next loads a module once per bundle (each route, each
 * page). Core's `createUserSessions` called at module level would run again
 * each time: a new engine, its discovery read again, its refreshes no longer
 * shared. `userSessions(config)` keeps one core handle per configuration in a
 * registry held by `globalThis` (which survives re-evaluation), keyed by the
 * core's `UserSessions.clientKeyOf(config)` (issuer or endpoints, client id,
 * redirect URI: what makes a session this app's; never the secret).
 *
 * The sessions themselves live in the core's session store, not here: the
 * default memory store is one per process on `globalThis` too, so a user
 * signed in before an edit is still signed in after it.
 *
 * Creation is lazy: nothing is created, and nothing is read from the
 * environment, at import or at `next build`. A configuration may be a
 * function, called at the first use.
 *
 * **Edge runtime.** Next runs edge routes in a sandbox with its own
 * `globalThis`, so the memory store there is not the one the Node.js routes
 * (the sign-in route, the pages) write to: a user signed in through a Node.js
 * route would be unknown to an edge route. A handle used in the Edge runtime
 * without a `store` is therefore refused at its first use
 * (`InvalidConfigError`); give it a store both runtimes reach.
 *
 * @example
 * ```ts
 * // lib/auth.ts: evaluated again on every edit under `next dev`; still one handle, same sessions
 * import { userSessions } from "@authfetch/next"
 *
 * export const sessions = userSessions(() => ({
 *   issuer: process.env.WEALTHCARE_ISSUER!,
 *   clientId: process.env.WEALTHCARE_CLIENT_ID!,
 *   clientSecret: process.env.WEALTHCARE_CLIENT_SECRET!,
 *   scope: "openid profile email offline_access bensoft_api",
 *   redirectUri: `${process.env.APP_URL}/auth/callback`
 * }))
 * ```
 *
 * @since 0.2.0
 */
import {
  type CreateUserSessionsOptions,
  createUserSessions,
  UserSessions,
  type UserSessionsConfig,
  type UserSessionsHandle
} from "@authfetch/core"
import { invalidArguments, kindOf } from "./tokens.ts"

/**
 * The registry's key on `globalThis`: a registered symbol, the same for every
 * copy of this module (one per Next.js bundle).
 */
const REGISTRY = Symbol.for("@authfetch/next/user-sessions/v1")

/** One registered handle: the core's, for one configuration. */
interface Entry {
  readonly handle: UserSessionsHandle
  /** the redirect URI's path, for the sign-in path next to it */
  readonly callbackPath: string
}

const registry = (): Map<string, Entry> => {
  const holder = globalThis as { [REGISTRY]?: Map<string, Entry> }
  holder[REGISTRY] ??= new Map()
  return holder[REGISTRY]
}

/** Next's Edge runtime (`EdgeRuntime` is its global, and `@edge-runtime/vm`'s). */
export const isEdgeRuntime = (): boolean =>
  (globalThis as { EdgeRuntime?: unknown }).EdgeRuntime !== undefined

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

/**
 * A sessions configuration, or a function returning one (called at the first
 * use, not at import or build time).
 *
 * @since 0.2.0
 */
export type SessionsConfigInput = UserSessionsConfig | (() => UserSessionsConfig)

/**
 * The sessions handle `userSessions` gives: the core's `UserSessionsHandle`
 * (pass it to `createSignInRoute`, `createProxyRoute({ sessions })`, the
 * session helpers, or use its methods), resolved at its first use and then
 * always deferring to the registry's core handle for its configuration.
 *
 * `appOrigin` and `cookieName` resolve the configuration when read (and
 * throw `InvalidConfigError` when it cannot work); the methods returning a
 * promise reject instead of throwing.
 *
 * @since 0.2.0
 */
export interface LazyUserSessions extends UserSessionsHandle {
  /** the registry's core handle now; resolves the configuration (throws `InvalidConfigError`) */
  readonly handle: () => UserSessionsHandle
  /**
   * the path of the sign-in action next to the callback (`/auth/callback` →
   * `/auth/signin`), or `undefined` when the redirect URI's path does not end
   * in `/callback`; resolves the configuration
   */
  readonly signInPath: () => string | undefined
}

const optionsProblem = (options: unknown): string | undefined =>
  options === undefined ||
  (isObject(options) && (options.store === undefined || typeof options.store === "object"))
    ? undefined
    : `userSessions: \`options\` must be undefined or an object whose \`store\` is a SessionStore layer or a store such as redisStore(), got ${kindOf(options)}`

const EDGE_NEEDS_STORE =
  "userSessions: in the Edge runtime, user sessions need a `store` option (a session store the Node.js runtime shares): " +
  "the default memory store here is the Edge sandbox's own, and cannot see the sessions the Node.js routes make"

/**
 * The process's user sessions for a configuration, as a value to keep at
 * module level: nothing is resolved or created until the first use (a
 * request). The first configuration given for a client key wins (its
 * `onEvent`, `fetch`, secret provider, timeouts, store) until the handle is
 * disposed (`dispose()` or `disposeUserSessions()`; the next use creates it
 * again, and the sessions, which live in the store, are still there).
 *
 * Throws `InvalidConfigError` naming the argument for a `config` that is
 * neither an object nor a function, or bad `options`; a configuration that
 * cannot work (core's `UserSessions.validate`) is refused at the first use,
 * as is a handle used in the Edge runtime without a `store`.
 *
 * @example
 * ```ts
 * export const sessions = userSessions(() => ({
 *   issuer: process.env.WEALTHCARE_ISSUER!,
 *   clientId: process.env.WEALTHCARE_CLIENT_ID!,
 *   clientSecret: process.env.WEALTHCARE_CLIENT_SECRET!,
 *   scope: "openid profile email offline_access bensoft_api",
 *   redirectUri: `${process.env.APP_URL}/auth/callback`
 * }))
 * const session = await sessions.session(request.headers.get("cookie"))
 * ```
 *
 * @since 0.2.0
 */
export const userSessions = (
  config: SessionsConfigInput,
  options?: CreateUserSessionsOptions
): LazyUserSessions => {
  const problems = [
    typeof config === "function" || isObject(config)
      ? undefined
      : `userSessions: \`config\` must be a sessions configuration (an object with issuer, clientId, scope, redirectUri) or a function returning one, got ${kindOf(config)}`,
    optionsProblem(options)
  ].filter((problem) => problem !== undefined)
  if (problems.length > 0) throw invalidArguments(problems)

  // The key is worked out once: the configuration is read at the first use only.
  let resolved: { readonly config: UserSessionsConfig; readonly key: string } | undefined
  const resolve = () => {
    if (resolved !== undefined) return resolved
    const value: unknown = typeof config === "function" ? config() : config
    if (!isObject(value)) {
      throw invalidArguments([
        `userSessions: \`config\` (a function) must return a sessions configuration, returned ${kindOf(value)}`
      ])
    }
    const found = UserSessions.validate(value as unknown as UserSessionsConfig)
    if (found.length > 0) throw invalidArguments(found.map((problem) => `userSessions: config: ${problem}`))
    const valid = value as unknown as UserSessionsConfig
    resolved = { config: valid, key: UserSessions.clientKeyOf(valid) }
    return resolved
  }
  const entry = (): Entry => {
    if (isEdgeRuntime() && options?.store === undefined) throw invalidArguments([EDGE_NEEDS_STORE])
    const { key, config: valid } = resolve()
    const sessions = registry()
    const existing = sessions.get(key)
    if (existing !== undefined) return existing
    const created: Entry = {
      handle: createUserSessions(valid, options),
      callbackPath: new URL(valid.redirectUri).pathname
    }
    sessions.set(key, created)
    return created
  }
  const handle = () => entry().handle
  /** A method that returns a promise: a configuration that cannot work rejects it. */
  const later =
    <A extends ReadonlyArray<unknown>, R>(call: (sessions: UserSessionsHandle, ...args: A) => Promise<R>) =>
    (...args: A): Promise<R> => {
      try {
        return call(handle(), ...args)
      } catch (error) {
        return Promise.reject(error)
      }
    }
  const dispose = (): Promise<void> => {
    if (resolved === undefined) return Promise.resolve()
    const sessions = registry()
    const found = sessions.get(resolved.key)
    if (found === undefined) return Promise.resolve()
    sessions.delete(resolved.key)
    return found.handle.dispose()
  }
  return {
    get appOrigin() {
      return handle().appOrigin
    },
    get cookieName() {
      return handle().cookieName
    },
    handle,
    signInPath: () => {
      const path = entry().callbackPath
      return path.endsWith("/callback") ? `${path.slice(0, -"/callback".length)}/signin` : undefined
    },
    session: later((sessions, cookie: string | null | undefined) => sessions.session(cookie)),
    startSignIn: later((sessions, input: Parameters<UserSessionsHandle["startSignIn"]>[0]) =>
      sessions.startSignIn(input)
    ),
    completeSignIn: later((sessions, input: Parameters<UserSessionsHandle["completeSignIn"]>[0]) =>
      sessions.completeSignIn(input)
    ),
    endSession: later((sessions, input: Parameters<UserSessionsHandle["endSession"]>[0]) =>
      sessions.endSession(input)
    ),
    signInWithPassword: later((sessions, input: Parameters<UserSessionsHandle["signInWithPassword"]>[0]) =>
      sessions.signInWithPassword(input)
    ),
    signIn: later((sessions, request: Request, signInOptions?: { readonly returnTo?: string | undefined }) =>
      sessions.signIn(request, signInOptions)
    ),
    callback: later((sessions, request: Request) => sessions.callback(request)),
    signOut: later((sessions, request: Request) => sessions.signOut(request)),
    // Synchronous, as the core's: a configuration that cannot work throws here (the proxy answers 500).
    checkCsrf: (request, csrfOptions) => handle().checkCsrf(request, csrfOptions),
    dispose,
    [Symbol.asyncDispose]: dispose
  }
}

/**
 * Disposes every registered sessions handle and empties the registry (tests,
 * graceful shutdown): background refreshes stop. The sessions stay in their
 * store; handles given out earlier create their core handle again at their
 * next use.
 *
 * @example
 * ```ts
 * afterEach(() => disposeUserSessions())
 * ```
 *
 * @since 0.2.0
 */
export const disposeUserSessions = async (): Promise<void> => {
  const sessions = registry()
  const entries = [...sessions.values()]
  sessions.clear()
  await Promise.all(entries.map((entry) => entry.handle.dispose()))
}

/** @internal how many handles the registry holds (tests) */
export const registeredSessions = (): number => registry().size

const isFunction = (value: unknown): boolean => typeof value === "function"

/**
 * What is wrong with a sessions argument (`undefined` when nothing is): it
 * must be a handle (`userSessions`, or core's `createUserSessions`).
 *
 * @internal
 */
export const sessionsProblem = (sessions: unknown, name: string): string | undefined =>
  isObject(sessions) && isFunction(sessions.session) && isFunction(sessions.checkCsrf)
    ? undefined
    : `${name} must be user sessions (userSessions(...) or core's createUserSessions(...)), got ${kindOf(sessions)}`

/**
 * The sign-in path for redirects: the one given, the one next to the
 * callback (`userSessions` knows it), or `/auth/signin`.
 *
 * @internal
 */
export const signInPathOf = (sessions: UserSessionsHandle, given: string | undefined): string => {
  if (given !== undefined) return given
  const derived = (sessions as Partial<LazyUserSessions>).signInPath?.()
  return derived ?? "/auth/signin"
}
