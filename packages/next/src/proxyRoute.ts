/**
 * The backend-for-frontend proxy as an App Router catch-all route: the
 * browser calls `/api/benefits/v1/...` on our origin, the route forwards to
 * one fixed upstream with the bearer token, and the browser never holds the
 * token or the client secret. Everything is the core's
 * `Proxy.createProxyHandler` (path checks, allow-list, header filtering,
 * body bound, timeouts, redirects, problem+json); this module only finds the
 * raw path below the mount point and hands it over.
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
 *   upstream: process.env.WEX_API_BASE_URL!,
 *   prefix: "/api/benefits",
 *   allow: ["/v1/consumers/*", "/v1/claims", "/v1/claims/*"]
 * }))
 * ```
 *
 * @since 0.1.0
 */
import { Proxy as CoreProxy, InvalidConfigError } from "@authfetch/core"
import { ensureAbortSignalAny } from "./internal/abortSignalAny.ts"
import { problemFor } from "./problems.ts"
import { type TokensInput, toTokens } from "./tokens.ts"
import { type Lazy, type OnError, report, resolveLazy } from "./withAuthFetch.ts"

/**
 * @since 0.1.0
 */
export interface ProxyRouteOptions extends Omit<CoreProxy.ProxyOptions, "tokens"> {
  /** a configuration (or a function returning one: the process's source for it), or a token source */
  readonly tokens: TokensInput
  /**
   * the mount point as it appears in `request.url` (with `basePath`), e.g.
   * `/api/benefits`; default: derived from the catch-all parameter
   */
  readonly prefix?: string | undefined
  /** where failures answered with a problem (configuration, thrown core errors) are reported */
  readonly onError?: OnError | undefined
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

const refuse = (reason: string): Response =>
  CoreProxy.problem(400, "Bad Request", `The path is not acceptable (${reason}).`)

const notMounted = (): Response => CoreProxy.problem(404, "Not Found", "No such resource.")

const safeDecode = (segment: string): string | undefined => {
  try {
    return decodeURIComponent(segment)
  } catch {
    return undefined
  }
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
  const target = pathAndQueryOf(request.url)
  const q = target.indexOf("?")
  const path = q === -1 ? target : target.slice(0, q)
  const search = q === -1 ? "" : target.slice(q)
  if (prefix !== undefined) {
    if (path === prefix) return `/${search}`
    if (!path.startsWith(`${prefix}/`)) return notMounted()
    return `${path.slice(prefix.length)}${search}`
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
  if (segments.length === 0) return `/${search}`
  if (raw.length < segments.length) return refuse("does not match the route")
  const below = raw.slice(raw.length - segments.length)
  // Each raw segment must be the one Next decoded into the parameter; otherwise the split is unknown.
  if (
    below.some((segment, i) => {
      const decoded = safeDecode(segment)
      return decoded !== undefined && decoded !== segments[i]
    })
  ) {
    return refuse("does not match the route")
  }
  return `/${below.join("/")}${search}`
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
 *   upstream: "https://platform.uat.benefits.wexglobal.com/api",
 *   allow: ["/v1/consumers/*", "/v1/claims"],
 *   maxBodyBytes: 10 * 1024 * 1024,
 *   timeout: "20 seconds"
 * })
 * ```
 *
 * @since 0.1.0
 */
export const createProxyRoute = (options: Lazy<ProxyRouteOptions>): ProxyRoute => {
  let built:
    | { readonly handle: ReturnType<typeof CoreProxy.createProxyHandler>; readonly prefix?: string }
    | undefined
  let onError: OnError | undefined
  const build = () => {
    if (built !== undefined) return built
    const { tokens, prefix, onError: reporter, ...proxy } = resolveLazy(options)
    onError = reporter
    if (prefix !== undefined && (!prefix.startsWith("/") || prefix.endsWith("/") || prefix.includes("?"))) {
      throw new InvalidConfigError({
        problems: [
          `createProxyRoute prefix must start with "/" and not end with "/" (got ${JSON.stringify(prefix)})`
        ]
      })
    }
    const handle = CoreProxy.createProxyHandler({ ...proxy, tokens: toTokens(tokens) })
    built = prefix === undefined ? { handle } : { handle, prefix }
    return built
  }
  const route: ProxyRouteHandler = async (request, context) => {
    ensureAbortSignalAny()
    try {
      const { handle, prefix } = build()
      const below = await pathBelowMount(request, context, prefix)
      if (typeof below !== "string") return below
      return await handle(request, below)
    } catch (error) {
      if (request.signal.aborted) throw error
      const response = problemFor(error)
      if (response === undefined) throw error
      report(onError, error, request)
      return response
    }
  }
  return { GET: route, HEAD: route, POST: route, PUT: route, PATCH: route, DELETE: route }
}
