/**
 * An Express error handler that answers RFC 9457 `application/problem+json`
 * for authfetch's errors and for anything else, without internals: no stack,
 * no message of an unknown error, no token, no secret, no upstream URL or
 * upstream-written text. The error itself goes to `onError` (your logger).
 *
 * Status mapping (what the caller of *this* server should understand):
 *
 * | error | status |
 * | --- | --- |
 * | `OAuthError`, `TokenEndpointError`, `InvalidTokenResponseError` (no token for the upstream) | 502 |
 * | `RateLimitedError` (the token endpoint throttles us) | 503, `Retry-After` when known |
 * | `TokenStoreError` (the shared token store is down) | 503 |
 * | `RequestTimeoutError`, `RetriesExhaustedError` after timeouts, a `TimeoutError` | 504 |
 * | `RetriesExhaustedError` otherwise, `RedirectError`, a fetch `TypeError` | 502 |
 * | `ProblemDetailsError` 401, 403, 407 (the upstream refused *our* credentials) | 502 |
 * | `ProblemDetailsError` 408, 504 | 504 |
 * | `ProblemDetailsError` 429 (after the core's retries) | 503 |
 * | `ProblemDetailsError` other 4xx (the upstream's answer to what the client asked) | the same status |
 * | `ProblemDetailsError` 5xx | 502 |
 * | `InvalidConfigError` | 500 |
 * | an error with `status`/`statusCode` 400–599 (`http-errors`, body parsers) | that status |
 * | anything else | 500 |
 *
 * Titles are the HTTP reason phrases; details are fixed sentences. A
 * `ProblemDetailsError` keeps its 4xx status, but not the upstream's title or
 * detail (they may quote internals or echo the request).
 *
 * @example
 * ```ts
 * app.use(problemDetails({ onError: (error, req) => logger.error({ err: error, path: req.path }) }))
 * ```
 *
 * @since 0.1.0
 */
import { Proxy as CoreProxy, Problem } from "@authfetch/core"
import type { ErrorRequestHandler, Request } from "express"
import { clientGone, sendResponse } from "./internal/node.ts"

/**
 * The problem an error becomes.
 *
 * @since 0.1.0
 */
export interface ProblemAnswer {
  readonly status: number
  readonly title: string
  readonly detail: string
  /** seconds, for `Retry-After` */
  readonly retryAfter?: number | undefined
}

/**
 * @since 0.1.0
 */
export interface ProblemDetailsOptions {
  /**
   * called with every error handled (the original, with its stack: for your
   * logs, not the client). Default: `console.error` for 5xx answers; `false`
   * for none.
   */
  readonly onError?: ((error: unknown, req: Request, problem: ProblemAnswer) => void) | false | undefined
}

const answer = (status: number, detail: string, retryAfter?: number): ProblemAnswer => ({
  status,
  title: Problem.reasonPhrase(status) ?? (status < 500 ? "Bad Request" : "Internal Server Error"),
  detail,
  ...(retryAfter === undefined ? {} : { retryAfter })
})

const UNEXPECTED = answer(500, "An unexpected error occurred.")
const NOT_AUTHENTICATED = answer(502, "The upstream could not be authenticated.")
const REFUSED = answer(502, "The upstream refused our credentials.")
const UNREACHABLE = answer(502, "The upstream could not be reached.")
const UPSTREAM_FAILED = answer(502, "The upstream failed.")
const TIMEOUT = answer(504, "The upstream did not answer in time.")
const UNAVAILABLE = answer(503, "A service this server depends on is unavailable. Try again later.")

const fieldOf = (error: unknown, name: string): unknown =>
  typeof error === "object" && error !== null ? (error as Record<string, unknown>)[name] : undefined

const tagOf = (error: unknown): unknown => fieldOf(error, "_tag")

const seconds = (millis: unknown): number | undefined =>
  typeof millis === "number" && Number.isFinite(millis) && millis >= 0 ? Math.ceil(millis / 1000) : undefined

const fromUpstreamStatus = (status: number): ProblemAnswer => {
  if (status === 401 || status === 403 || status === 407) return REFUSED
  if (status === 408 || status === 504) return TIMEOUT
  if (status === 429) return answer(503, "The upstream is rate limiting this service. Try again later.")
  if (status >= 400 && status < 500) return answer(status, "The upstream refused the request.")
  return UPSTREAM_FAILED
}

/**
 * The problem an error becomes (see the module comment for the table). Pure;
 * exported for handlers that answer errors themselves.
 *
 * @example
 * ```ts
 * toProblem(new RequestTimeoutError({ method: "GET", url, timeoutMillis: 30_000 }))
 * // { status: 504, title: "Gateway Timeout", detail: "The upstream did not answer in time." }
 * ```
 *
 * @since 0.1.0
 */
export const toProblem = (error: unknown): ProblemAnswer => {
  switch (tagOf(error)) {
    case "OAuthError":
    case "TokenEndpointError":
    case "InvalidTokenResponseError":
      return NOT_AUTHENTICATED
    case "RateLimitedError":
      return answer(
        503,
        "The upstream's token endpoint is rate limiting this service. Try again later.",
        seconds(fieldOf(error, "retryAfterMillis"))
      )
    case "TokenStoreError":
      return UNAVAILABLE
    case "RequestTimeoutError":
      return TIMEOUT
    case "RetriesExhaustedError":
      return tagOf(fieldOf(error, "cause")) === "RequestTimeoutError" ? TIMEOUT : UNREACHABLE
    case "ProblemDetailsError": {
      const status = fieldOf(error, "status")
      return typeof status === "number" ? fromUpstreamStatus(status) : UPSTREAM_FAILED
    }
    case "InvalidConfigError":
      return UNEXPECTED
  }
  const name = fieldOf(error, "name")
  if (name === "TimeoutError") return TIMEOUT
  if (name === "RedirectError") return UNREACHABLE
  if (error instanceof TypeError && error.message === "fetch failed") return UNREACHABLE
  const status = fieldOf(error, "status") ?? fieldOf(error, "statusCode")
  if (typeof status === "number" && Number.isInteger(status) && status >= 400 && status <= 599) {
    return status < 500
      ? answer(status, "The request cannot be processed as sent.")
      : answer(status, "The request could not be handled.")
  }
  return UNEXPECTED
}

const defaultOnError = (error: unknown, req: Request, problem: ProblemAnswer): void => {
  // The path without its query (a query may carry secrets); the error as the process sees it.
  if (problem.status >= 500)
    console.error(`[authfetch] ${req.method} ${req.path} -> ${problem.status}`, error)
}

/**
 * The error handler: mount it after your routes (`app.use(problemDetails())`).
 * When the answer has already started (`res.headersSent`), it passes the
 * error on to Express, which cuts the connection; when the client is gone,
 * it writes nothing.
 *
 * @example
 * ```ts
 * app.use("/api/benefits", createProxy({ tokens, upstream }))
 * app.get("/api/summary", summaryRoute)
 * app.use(problemDetails())
 * ```
 *
 * @since 0.1.0
 */
export const problemDetails = (options: ProblemDetailsOptions = {}): ErrorRequestHandler => {
  const onError = options.onError === false ? undefined : (options.onError ?? defaultOnError)
  return (error, req, res, next) => {
    const problem = toProblem(error)
    try {
      onError?.(error, req, problem)
    } catch {
      // a failing logger must not stop the answer
    }
    if (res.headersSent) return next(error)
    if (clientGone(res)) return
    const response = CoreProxy.problem(
      problem.status,
      problem.title,
      problem.detail,
      problem.retryAfter === undefined ? undefined : { "retry-after": String(problem.retryAfter) }
    )
    sendResponse(response, res, { replace: true }).catch(next)
  }
}
