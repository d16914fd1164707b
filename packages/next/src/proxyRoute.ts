/**
 * The backend-for-frontend proxy as an App Router catch-all route: the
 * browser calls `/api/benefits/v1/...` on our origin, the route forwards to
 * one fixed upstream with the bearer token, and the browser never holds the
 * token or the client secret. Everything is the core's
 * `BffProxy.createProxyHandler` (path checks, allow-list, header allow-lists
 * both ways, redirects rewritten to the mount point or refused, upstream
 * errors mapped, the token cut out of bodies, body bound, timeouts,
 * problem+json, `onError`); this module only finds the raw path below the
 * mount point and the mount point itself, and hands them over.
 *
 * Per-user mode (`sessions` instead of `tokens`): each request goes out with
 * the token of the user its `Cookie` says is signed in (`userSessions`); the
 * core refuses a state-changing request from another site, or without the
 * `csrfHeader` (default `x-csrf`), with 403, and one without a session with
 * 401.
 *
 * The raw path: the core must judge the path as the client sent it,
 * percent-encoded, so that `%2e%2e`, `%2f`, `%5c`, `%00` are seen. It is
 * taken from `request.url` as text (never re-parsed, never rebuilt from
 * Next's decoded `params`, in which `v1%2f..%2fadmin` is the single segment
 * `v1/../admin`). What Next itself normalises before the route runs (plain
 * `..` and `%2e%2e` segments are resolved by the URL parser, `//` and `\` are
 * answered with a `308` to the collapsed path) never reaches the route.
 *
 * The mount point: the `prefix` option (the path before the catch-all as it
 * appears in `request.url`, `basePath` included: `/api/benefits`); without
 * it, it is derived: the catch-all parameter (the one array in `params`) has
 * N segments, so the path below the mount is the last N raw segments, and
 * each of them must decode to the matching parameter (a mismatch is refused
 * with 400, never guessed at).
 *
 * @example
 * ```ts
 * // app/api/benefits/[...path]/route.ts
 * import { createProxyRoute } from "@authfetch/next"
 * import { fromEnv } from "@authfetch/core/providers"
 *
 * export const { GET, HEAD, POST, PUT, PATCH, DELETE } = createProxyRoute(() => ({
 *   tokens: fromEnv("WEX"),
 *   baseUrl: process.env.WEX_BASE_URL!,
 *   prefix: "/api/benefits",
 *   allow: ["/v1/consumers/*", "/v1/claims", "/v1/claims/*"]
 * }))
 * ```
 *
 * @since 0.1.0
 */
import { BffProxy, InvalidConfigError, type UserSessionsHandle } from "@authfetch/core"
import { ensureAbortSignalAny } from "./internal/abortSignalAny.ts"
import { sessionsProblem } from "./sessions.ts"
import { type TokensInput, toTokens } from "./tokens.ts"
import { type Lazy, resolveLazy } from "./withAuthFetch.ts"

/**
 * Reports a problem the proxy route answered with (refused requests, upstream
 * failures, token and configuration errors) with the error behind it: the
 * place to log and alert. Default: one `console.error` line per 5xx (status,
 * title, error tag; never a body, a URL or a token); `false`: none.
 *
 * @since 0.1.0
 */
export type ProxyRouteOnError =
  | ((error: unknown, request: Request, problem: BffProxy.ProblemAnswer) => void)
  | false

/**
 * @since 0.1.0
 */
export interface ProxyRouteOptions extends Omit<BffProxy.ProxyOptions, "tokens" | "sessions" | "onError"> {
  /**
   * the service's token: a configuration (or a function returning one: the
   * process's source for it), or a token source; exactly one of `tokens` and
   * `sessions`
   */
  readonly tokens?: TokensInput | undefined
  /**
   * per-user mode: each request goes out with the token of the user its
   * `Cookie` says is signed in (`userSessions(...)`, or core's
   * `createUserSessions`); no session: 401; a state-changing request from
   * another site, or without the `csrfHeader` (default `x-csrf`): 403
   */
  readonly sessions?: UserSessionsHandle | undefined
  /**
   * the mount point as it appears in `request.url` (with `basePath`), e.g.
   * `/api/benefits`; default: derived from the catch-all parameter
   */
  readonly prefix?: string | undefined
  /** where every problem the route answers with is reported (see `ProxyRouteOnError`) */
  readonly onError?: ProxyRouteOnError | undefined
}

/**
 * A route handler of the proxy: Next's `(request, context)`.
 *
 * @since 0.1.0
 */
export type ProxyRouteHandler = (
  request: Request,
  context?: {
    readonly params?: Promise<Readonly<Record<string, string | ReadonlyArray<string> | undefined>>>
  }
) => Promise<Response>

/**
 * The route module's exports. `OPTIONS` is left to Next (it answers with
 * `Allow`); a method the proxy does not forward gets the core's `405`.
 *
 * @since 0.1.0
 */
export interface ProxyRoute {
  readonly GET: ProxyRouteHandler
  readonly HEAD: ProxyRouteHandler
  readonly POST: ProxyRouteHandler
  readonly PUT: ProxyRouteHandler
  readonly PATCH: ProxyRouteHandler
  readonly DELETE: ProxyRouteHandler
}

/** The part of an absolute URL after its authority, as text: `/a/%2e%2e/b?x=1`. */
const pathAndQueryOf = (url: string): string => {
  const authority = /^[a-zA-Z][a-zA-Z\d+.-]*:\/\/[^/?#]*/.exec(url)
  const rest = authority === null ? url : url.slice(authority[0].length)
  const hash = rest.indexOf("#")
  return hash === -1 ? rest : rest.slice(0, hash)
}

const safeDecode = (segment: string): string | undefined => {
  try {
    return decodeURIComponent(segment)
  } catch {
    return undefined
  }
}

/** Where a request sits: the raw path below the mount (with its query), and the mount as the browser sees it. */
interface Located {
  readonly below: string
  readonly mount: string
}

const notMounted = () => new BffProxy.ProxyError({ reason: "path_not_allowed" })
const mismatch = () => new BffProxy.ProxyError({ reason: "path_refused", check: "does not match the route" })

/** Next's Edge runtime (`EdgeRuntime` is its global). */
const isEdgeRuntime = (): boolean => (globalThis as { EdgeRuntime?: unknown }).EdgeRuntime !== undefined

/**
 * The query without the parameters named like the route's dynamic segments.
 * In the Edge runtime Next hands a route its params in the query (each
 * segment as `path=...`, replacing any the caller sent under that name): they
 * are Next's, not the caller's, and must not reach the upstream.
 */
const withoutRouteParams = (search: string, names: ReadonlyArray<string>): string => {
  if (search === "" || names.length === 0) return search
  const kept = search
    .slice(1)
    .split("&")
    .filter((pair) => {
      const key = pair.split("=", 1)[0]!
      let name: string
      try {
        name = decodeURIComponent(key.replaceAll("+", " "))
      } catch {
        return true
      }
      return !names.includes(name)
    })
  return kept.length === 0 ? "" : `?${kept.join("&")}`
}

const locate = async (
  request: Request,
  context: Parameters<ProxyRouteHandler>[1],
  prefix: string | undefined
): Promise<Located | InstanceType<typeof BffProxy.ProxyError>> => {
  const target = pathAndQueryOf(request.url)
  const q = target.indexOf("?")
  const path = q === -1 ? target : target.slice(0, q)
  let search = q === -1 ? "" : target.slice(q)
  if (isEdgeRuntime() && context?.params !== undefined) {
    search = withoutRouteParams(search, Object.keys(await context.params))
  }
  if (prefix !== undefined) {
    if (path === prefix) return { below: `/${search}`, mount: prefix }
    if (!path.startsWith(`${prefix}/`)) return notMounted()
    return { below: `${path.slice(prefix.length)}${search}`, mount: prefix }
  }
  const params = context?.params === undefined ? undefined : await context.params
  const catchAll = Object.values(params ?? {}).filter((value) => Array.isArray(value))
  if (catchAll.length !== 1) {
    throw new InvalidConfigError({
      problems: [
        "createProxyRoute needs a `prefix` option, or a catch-all route segment such as app/api/benefits/[...path]"
      ]
    })
  }
  const segments = catchAll[0] as ReadonlyArray<string>
  const raw = path.split("/").slice(1)
  if (segments.length === 0)
    return { below: `/${search}`, mount: path.endsWith("/") ? path.slice(0, -1) : path }
  if (raw.length < segments.length) return mismatch()
  const below = raw.slice(raw.length - segments.length)
  // Each raw segment must be the one Next decoded into the parameter; otherwise the split is unknown.
  if (
    below.some((segment, i) => {
      const decoded = safeDecode(segment)
      return decoded !== undefined && decoded !== segments[i]
    })
  ) {
    return mismatch()
  }
  const mounted = raw.slice(0, raw.length - segments.length)
  return { below: `/${below.join("/")}${search}`, mount: mounted.length === 0 ? "" : `/${mounted.join("/")}` }
}

/**
 * The raw path below the mount point, with the query: what the core's handler
 * takes. A `Response` when it cannot be found (400, or 404 outside `prefix`).
 *
 * @example
 * ```ts
 * await pathBelowMount(new Request("http://x/api/benefits/v1/a?b=1"), undefined, "/api/benefits") // "/v1/a?b=1"
 * ```
 *
 * @since 0.1.0
 */
export const pathBelowMount = async (
  request: Request,
  context: Parameters<ProxyRouteHandler>[1],
  prefix: string | undefined
): Promise<string | Response> => {
  const located = await locate(request, context, prefix)
  if (located instanceof BffProxy.ProxyError) return BffProxy.problemResponse(BffProxy.problemFor(located)!)
  return located.below
}

/**
 * The proxy as route-handler exports: `export const { GET, HEAD, POST, PUT,
 * PATCH, DELETE } = createProxyRoute(options)` in
 * `app/api/<name>/[...path]/route.ts`. The options may be a function, called
 * at the first request (so that `next build` needs no environment); the core
 * handler is built once, then. Bodies stream both ways (request bodies are
 * bounded by `maxBodyBytes`, default 1 MiB, 413 beyond).
 *
 * Works in the Node.js and the Edge runtime (`export const runtime = "edge"`
 * next to the exports).
 *
 * @example
 * ```ts
 * export const { GET, HEAD, POST, PUT, PATCH, DELETE } = createProxyRoute({
 *   tokens: () => fromEnv("WEX"),
 *   baseUrl: "https://platform.uat.benefits.wexglobal.com/api",
 *   allow: ["/v1/consumers/*", "/v1/claims"],
 *   maxBodyBytes: 10 * 1024 * 1024,
 *   attemptTimeout: "20 seconds"
 * })
 * // per user: app/api/user/[...path]/route.ts, with the signed-in user's token
 * export const { GET, POST } = createProxyRoute({ sessions, baseUrl, prefix: "/api/user" })
 * ```
 *
 * @since 0.1.0
 */
export const createProxyRoute = (options: Lazy<ProxyRouteOptions>): ProxyRoute => {
  const optionsProblem = (value: unknown, what: string) =>
    typeof value === "object" && value !== null
      ? undefined
      : new InvalidConfigError({
          problems: [
            `createProxyRoute(options): ${what} must be an object ({ tokens or sessions, baseUrl, ... }), got ${value === null ? "null" : typeof value}`
          ]
        })
  if (typeof options !== "function") {
    const problem = optionsProblem(options, "options")
    if (problem !== undefined) throw problem
  }
  let built: { readonly handle: BffProxy.ProxyHandler; readonly prefix?: string } | undefined
  let onError: ProxyRouteOnError | undefined
  const build = () => {
    if (built !== undefined) return built
    const resolved = resolveLazy(options) as unknown
    const problem = optionsProblem(resolved, "the options function's result")
    if (problem !== undefined) throw problem
    const { tokens, sessions, prefix, onError: reporter, ...proxy } = resolved as ProxyRouteOptions
    if (reporter !== undefined && reporter !== false && typeof reporter !== "function") {
      throw new InvalidConfigError({
        problems: ["createProxyRoute option `onError` must be a function or false"]
      })
    }
    onError = reporter
    if (prefix !== undefined && (!prefix.startsWith("/") || prefix.endsWith("/") || prefix.includes("?"))) {
      throw new InvalidConfigError({
        problems: [
          `createProxyRoute prefix must start with "/" and not end with "/" (got ${JSON.stringify(prefix)})`
        ]
      })
    }
    const perUser = sessions !== undefined && sessions !== null
    if (!perUser && (tokens === undefined || tokens === null)) {
      throw new InvalidConfigError({
        problems: [
          "proxy option `tokens` is missing (a configuration or a token source; or `sessions` for per-user mode)"
        ]
      })
    }
    if (perUser) {
      const problem = sessionsProblem(sessions, "proxy option `sessions`")
      if (problem !== undefined) throw new InvalidConfigError({ problems: [problem] })
    }
    // Per-user mode: the core finds the user of each request and forbids `tokens` next to it.
    const handle = BffProxy.createProxyHandler({
      ...proxy,
      ...(tokens === undefined || tokens === null ? {} : { tokens: toTokens(tokens) }),
      ...(perUser ? { sessions } : {}),
      onError:
        typeof reporter === "function"
          ? (error, answer, request) => reporter(error, request, answer)
          : reporter
    })
    built = prefix === undefined ? { handle } : { handle, prefix }
    return built
  }
  /** Reports what is answered here, before or outside the core's handler. */
  const report = (error: unknown, request: Request, answer: BffProxy.ProblemAnswer) => {
    try {
      if (typeof onError === "function") onError(error, request, answer)
      else if (onError === undefined && answer.status >= 500)
        console.error(`[@authfetch/next] proxy route answered ${BffProxy.logLine(error, answer)}`)
    } catch {
      // A reporter that throws must not turn a problem response into a crash.
    }
  }
  const route: ProxyRouteHandler = async (request, context) => {
    ensureAbortSignalAny()
    try {
      const { handle, prefix } = build()
      const located = await locate(request, context, prefix)
      if (located instanceof BffProxy.ProxyError) throw located
      return await handle(request, located.below, { mount: located.mount })
    } catch (error) {
      if (request.signal.aborted) throw error
      const answer = BffProxy.problemFor(error)
      if (answer === undefined) throw error
      report(error, request, answer)
      return BffProxy.problemResponse(answer)
    }
  }
  return { GET: route, HEAD: route, POST: route, PUT: route, PATCH: route, DELETE: route }
}
