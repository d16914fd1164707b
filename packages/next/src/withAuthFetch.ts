/**
 * Route handlers (and server components, server actions) with the core's
 * `authFetch`: bearer token for the API's origin only, one `401` replay,
 * retries with backoff, timeouts. The fetch is created once per route module
 * evaluation, at the first request, over the process's token source (see
 * `tokenSource`); errors from the core that escape the handler become RFC 9457
 * problem responses without internals.
 *
 * @example
 * ```ts
 * // app/api/consumer/route.ts
 * import { withAuthFetch } from "@authfetch/next"
 * import { fromEnv } from "@authfetch/core/providers"
 *
 * export const GET = withAuthFetch(
 *   async (request, { authFetch }) => Response.json(await (await authFetch("/v1/consumers/12345")).json()),
 *   () => ({ tokens: fromEnv("WEX"), baseUrl: process.env.WEX_BASE_URL })
 * )
 * ```
 *
 * @since 0.1.0
 */
import { type AuthFetchOptions, authFetch as coreAuthFetch } from "@authfetch/core"
import type { NextRequest } from "next/server.js"
import { ensureAbortSignalAny } from "./internal/abortSignalAny.ts"
import { problemFor, unreachable } from "./problems.ts"
import { invalidArguments, kindOf, type TokensInput, tokensInputProblem, toTokens } from "./tokens.ts"

/**
 * A value, or a function returning it that is called at the first request (so
 * that `next build` can import the module without run-time configuration).
 *
 * @since 0.1.0
 */
export type Lazy<A> = A | (() => A)

/**
 * Reports a core failure that was answered with a problem response: the
 * place to log and alert. Core errors carry no secrets (codes, statuses,
 * durations, server descriptions); `false` turns reporting off. Default:
 * one `console.error` line with the error's tag and message.
 *
 * @since 0.1.0
 */
export type OnError = ((error: unknown, request: Request) => void) | false

/**
 * @since 0.1.0
 */
export interface WithAuthFetchOptions extends AuthFetchOptions {
  /** a configuration (or a function returning one: the process's source for it), or a token source */
  readonly tokens: TokensInput
  readonly onError?: OnError | undefined
}

/**
 * What `withAuthFetch` adds to Next's route context.
 *
 * @since 0.1.0
 */
export interface AuthFetchContext {
  /** the core's `authFetch` for this route's options */
  readonly authFetch: typeof globalThis.fetch
}

/**
 * Next's second route-handler argument (`params` is a promise since Next 15).
 *
 * @since 0.1.0
 */
export interface NextRouteContext {
  readonly params: Promise<Record<string, string | Array<string> | undefined>>
}

/** @internal */
export const resolveLazy = <A extends object>(value: Lazy<A>): A =>
  typeof value === "function" ? (value as () => A)() : value

/** @internal */
export const report = (onError: OnError | undefined, error: unknown, request: Request): void => {
  if (onError === false) return
  try {
    if (onError !== undefined) {
      onError(error, request)
      return
    }
    const tag = (error as { _tag?: unknown })._tag
    console.error(
      `[@authfetch/next] ${request.method} ${typeof tag === "string" ? tag : "error"}: ${(error as Error).message}`
    )
  } catch {
    // A reporter that throws must not turn a problem response into a crash.
  }
}

/**
 * A fetch with the core's request policy whose options are resolved at the
 * first call and then kept: for server components, server actions and
 * anything else server-side. Relative paths resolve against `baseUrl`.
 * Throws `InvalidConfigError` naming the argument for options that are not
 * an object with `tokens` (a function's result is checked at the first call,
 * which then rejects).
 *
 * @example
 * ```ts
 * // app/lib/api.ts
 * export const api = createAuthFetch(() => ({ tokens: fromEnv("WEX"), baseUrl: process.env.WEX_BASE_URL }))
 * // app/page.tsx (a server component)
 * const consumer = await (await api("/v1/consumers/12345")).json()
 * ```
 *
 * @since 0.1.0
 */
export const createAuthFetch = (
  options: Lazy<Omit<WithAuthFetchOptions, "onError">>
): typeof globalThis.fetch => {
  const problems = optionsProblems("createAuthFetch", options)
  if (problems.length > 0) throw invalidArguments(problems)
  return lazyAuthFetch("createAuthFetch", options)
}

/**
 * What is wrong with the options of `where`, each problem naming the argument
 * (`name`: \`options\`, or \`options()\` for what a function returned). A
 * function is not called here: its result is checked at the first request.
 */
const optionsProblems = (where: string, options: unknown, name = "options"): Array<string> => {
  if (typeof options === "function" && name === "options") return []
  if (typeof options !== "object" || options === null || Array.isArray(options)) {
    return [
      `${where}: \`${name}\` must be an object with \`tokens\`${name === "options" ? ", or a function returning one" : ""}, got ${kindOf(options)}`
    ]
  }
  const { tokens, onError } = options as { tokens?: unknown; onError?: unknown }
  const problems: Array<string> = []
  const tokensProblem = tokensInputProblem(tokens, `${where}: \`${name}.tokens\``)
  if (tokensProblem !== undefined) problems.push(tokensProblem)
  if (onError !== undefined && onError !== false && typeof onError !== "function") {
    problems.push(
      `${where}: \`${name}.onError\` must be a function, false or undefined, got ${kindOf(onError)}`
    )
  }
  return problems
}

/** Options resolved at the first request, and checked then (`InvalidConfigError`). */
const resolveOptions = <A extends object>(where: string, options: Lazy<A>): A => {
  if (typeof options !== "function") return options
  const value: unknown = (options as () => unknown)()
  const problems = optionsProblems(where, value, "options()")
  if (problems.length > 0) throw invalidArguments(problems)
  return value as A
}

const lazyAuthFetch = (
  where: string,
  options: Lazy<Omit<WithAuthFetchOptions, "onError">>
): typeof globalThis.fetch => {
  let api: typeof globalThis.fetch | undefined
  return (input, init) => {
    ensureAbortSignalAny()
    if (api === undefined) {
      try {
        const { tokens, ...rest } = resolveOptions(where, options)
        api = coreAuthFetch(toTokens(tokens, `${where}: \`options.tokens\``), rest)
      } catch (error) {
        return Promise.reject(error)
      }
    }
    return api(input, init)
  }
}

/**
 * Wraps an App Router route handler: it receives Next's context plus
 * `authFetch`. A core error that escapes it (a token that cannot be had, a
 * timeout, retries given up, `ProblemDetailsError` with `problemDetails: true`,
 * a network failure of `authFetch`) is answered with problem+json (see
 * `problemFor`) and reported to `onError`; anything else is rethrown for Next
 * to handle (`notFound()`, `redirect()`, your own bugs). Throws
 * `InvalidConfigError` naming the argument for a `handler` that is not a
 * function or options that are not an object with `tokens` (a function's
 * result is checked at the first request, answered with a `500` problem).
 *
 * @example
 * ```ts
 * export const GET = withAuthFetch(
 *   async (request, { authFetch, params }) => {
 *     const { id } = await params
 *     return Response.json(await (await authFetch(`/v1/consumers/${encodeURIComponent(String(id))}`)).json())
 *   },
 *   { tokens: () => fromEnv("WEX"), baseUrl: "https://platform.uat.benefits.wexglobal.com/api" }
 * )
 * ```
 *
 * @since 0.1.0
 */
export const withAuthFetch = <Ctx extends object = NextRouteContext, Req extends Request = NextRequest>(
  handler: (request: Req, context: Ctx & AuthFetchContext) => Response | Promise<Response>,
  options: Lazy<WithAuthFetchOptions>
): ((request: Req, context: Ctx) => Promise<Response>) => {
  const problems = optionsProblems("withAuthFetch", options)
  if (typeof handler !== "function") {
    problems.unshift(
      `withAuthFetch: \`handler\` must be a function (request, context) => Response, got ${kindOf(handler)}`
    )
  }
  if (problems.length > 0) throw invalidArguments(problems)
  let onError: OnError | undefined
  const api = lazyAuthFetch("withAuthFetch", () => {
    const { onError: reporter, ...rest } = resolveOptions("withAuthFetch", options)
    onError = reporter
    return rest
  })
  // Failures of our fetch, told apart from the handler's own TypeErrors.
  const ours = new WeakSet<object>()
  const authFetch: typeof globalThis.fetch = (input, init) =>
    api(input, init).catch((error: unknown) => {
      if (typeof error === "object" && error !== null) ours.add(error)
      throw error
    })
  return async (request, context) => {
    try {
      return await handler(request, { ...context, authFetch })
    } catch (error) {
      if (request.signal.aborted) throw error
      const response =
        problemFor(error) ??
        (error instanceof TypeError && ours.has(error) && error.name !== "AbortError"
          ? unreachable()
          : undefined)
      if (response === undefined) throw error
      report(onError, error, request)
      return response
    }
  }
}
