/**
 * `req.authFetch`: the core's `authFetch` (bearer token for the allowed
 * origins, one `401` replay, retries with backoff, per-attempt timeouts) on
 * every request of the routes behind the middleware.
 *
 * The fetch is created once, when the middleware is: the token source, the
 * retry budget and the connection pool are shared by every request. Per
 * request, only the client's disconnect is added: when the browser goes
 * away, the calls the route still has in flight are aborted (and their
 * retries, backoff waits included, end at once).
 *
 * @example
 * ```ts
 * import express from "express"
 * import { authFetchMiddleware } from "@authfetch/express"
 *
 * const app = express()
 * app.use("/api", authFetchMiddleware(tokens, { baseUrl: "https://platform.uat.benefits.wexglobal.com/api" }))
 * app.get("/api/consumers/:id", async (req, res) => {
 *   const upstream = await req.authFetch(`/v1/consumers/${encodeURIComponent(req.params.id)}`)
 *   res.status(upstream.status).json(await upstream.json())
 * })
 * ```
 *
 * @since 0.1.0
 */
import { type AuthFetchOptions, authFetch, InvalidConfigError, type Tokens } from "@authfetch/core"
import type { RequestHandler } from "express"
import { followingClient } from "./internal/node.ts"

/**
 * The fetch on `req.authFetch`: a `fetch` with the core's request policy.
 *
 * @since 0.1.0
 */
export type AuthFetch = typeof globalThis.fetch

declare global {
  namespace Express {
    interface Request {
      /**
       * `fetch` with OAuth 2.0 bearer tokens and the core's request policy, set by
       * `authFetchMiddleware` (present only on routes behind it). Aborted when the
       * client disconnects, unless the middleware says otherwise.
       */
      authFetch: AuthFetch
    }
  }
}

/**
 * Options of `authFetchMiddleware`: the core's `AuthFetchOptions` (`baseUrl`,
 * `origins`, `retry`, `timeout`, `problemDetails`, `fetch`, `onEvent`, ...)
 * plus how a request's calls follow the client.
 *
 * @example
 * ```ts
 * const options: AuthFetchMiddlewareOptions = { baseUrl, problemDetails: true, abortOnClientClose: false }
 * ```
 *
 * @since 0.1.0
 */
export interface AuthFetchMiddlewareOptions extends AuthFetchOptions {
  /**
   * abort the calls a request makes when its client disconnects before the
   * answer is complete; default `true`. Turn it off for routes whose upstream
   * writes must complete whatever the client does (or pass your own `signal`
   * per call, which is combined with the client's).
   */
  readonly abortOnClientClose?: boolean | undefined
}

const kindOf = (value: unknown): string => (value === null ? "null" : typeof value)

const isTokenSource = (tokens: unknown): boolean => {
  if (typeof tokens !== "object" || tokens === null) return false
  const source = tokens as Record<string, unknown>
  return (
    (typeof source.getToken === "function" || source.get !== undefined) &&
    typeof source.invalidate === "function"
  )
}

/** Every problem of the arguments, named (`[]`: none). */
const argumentProblems = (tokens: unknown, options: unknown): Array<string> => {
  const problems: Array<string> = []
  if (tokens === undefined || tokens === null) {
    problems.push(
      `authFetchMiddleware(tokens, options): tokens is missing (a token source), got ${kindOf(tokens)}`
    )
  } else if (!isTokenSource(tokens)) {
    problems.push(
      "authFetchMiddleware(tokens, options): tokens must be a token source (getToken and invalidate)"
    )
  }
  if (typeof options !== "object" || options === null) {
    problems.push(`authFetchMiddleware(tokens, options): options must be an object, got ${kindOf(options)}`)
  } else {
    const close = (options as Record<string, unknown>).abortOnClientClose
    if (close !== undefined && typeof close !== "boolean") {
      problems.push("authFetchMiddleware option `abortOnClientClose` must be a boolean")
    }
  }
  return problems
}

/**
 * Puts `req.authFetch` on each request. The core's `authFetch(tokens, options)`
 * is created once, here (invalid arguments throw `InvalidConfigError` at once,
 * naming them, not on the first request).
 *
 * @example
 * ```ts
 * app.use(authFetchMiddleware(tokens, { baseUrl: config.baseUrl, problemDetails: true }))
 * app.get("/summary", async (req, res) => {
 *   const consumer = await (await req.authFetch("/v1/consumers/12345")).json()
 *   res.json({ name: consumer.name })
 * })
 * app.use(problemDetails()) // a ProblemDetailsError becomes problem+json, without internals
 * ```
 *
 * @since 0.1.0
 */
export const authFetchMiddleware = (
  tokens: Tokens,
  options: AuthFetchMiddlewareOptions = {}
): RequestHandler => {
  const problems = argumentProblems(tokens, options)
  if (problems.length > 0) throw new InvalidConfigError({ problems })
  const { abortOnClientClose = true, ...fetchOptions } = options
  const api = authFetch(tokens, fetchOptions)
  return (req, res, next) => {
    req.authFetch = abortOnClientClose ? followingClient(api, res) : api
    next()
  }
}
