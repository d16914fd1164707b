/**
 * An Express error handler that answers RFC 9457 `application/problem+json`
 * for authfetch's errors and for anything else, without internals: no stack,
 * no message of an unknown error, no token, no secret, no upstream URL or
 * upstream-written text. The error itself goes to `onError` (your logger).
 *
 * Status mapping: the core's one table (`BffProxy.problemFor`), shared with the
 * proxy and the Next adapter, for authfetch's errors:
 *
 * | error | status |
 * | --- | --- |
 * | `OAuthError`, `TokenEndpointError`, `InvalidTokenResponseError` (no token for the upstream) | 502 |
 * | `RateLimitedError` (the token budget or the token endpoint throttles us) | 503, `Retry-After` when known |
 * | `TokenStoreError` (the shared token store is down) | 503 |
 * | `RequestTimeoutError`, `RetriesExhaustedError` after timeouts, a `TimeoutError` | 504 |
 * | `RetriesExhaustedError` otherwise, `RedirectError`, a fetch `TypeError` | 502 |
 * | `ProblemDetailsError` 401, 403, 407 (the upstream refused *our* credentials) | 502 |
 * | `ProblemDetailsError` 408, 504 | 504 |
 * | `ProblemDetailsError` 429 (after the core's retries) | 503 |
 * | `ProblemDetailsError` other 4xx (the upstream's answer to what the client asked) | the same status |
 * | `ProblemDetailsError` 5xx | 502 |
 * | `InvalidConfigError` | 500 |
 * | `SignInError` (a refused sign-in callback, `returnTo` or password) | 400 |
 * | `SignInRequiredError` (no signed-in user, or their refresh token was refused) | 401, or a `302` to `signInPath` for a page load |
 * | `CsrfError` (a state-changing request from another site) | 403 |
 * | `DiscoveryError` (the authorization server's metadata) | 502 |
 *
 * and, for the rest, here:
 *
 * | error | status |
 * | --- | --- |
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
import { BffProxy, InvalidConfigError, Problem } from "@authfetch/core"
import type { ErrorRequestHandler, Request } from "express"
import { clientGone, sendResponse } from "./internal/node.ts"
import { answerSignInRequired, isAppPath } from "./internal/signInRequired.ts"

/**
 * The problem an error becomes (the core's `BffProxy.ProblemAnswer`).
 *
 * @since 0.1.0
 */
export type ProblemAnswer = BffProxy.ProblemAnswer

/**
 * @since 0.1.0
 */
export interface ProblemDetailsOptions {
  /**
   * called with every error handled (the original, with its stack: for your
   * logs, not the client). Default: one `console.error` line per 5xx answer
   * with the status, the title and the error's tag (never its message, a
   * body or a detail); `false` for none.
   */
  readonly onError?: ((error: unknown, req: Request, problem: ProblemAnswer) => void) | false | undefined
  /**
   * where the sign-in starts (the sign-in router's `GET /signin`, such as
   * `/auth/signin`): a `SignInRequiredError` (the user's session ended, or
   * their refresh token was refused) met by a browser loading a page is
   * answered with a `302` there, with the page as `returnTo`, instead of the
   * `401` problem (which everything else still gets). Same rule as
   * `requireSignIn`.
   */
  readonly signInPath?: string | undefined
}

const answer = (status: number, detail: string): ProblemAnswer => ({
  status,
  title: Problem.reasonPhrase(status) ?? (status < 500 ? "Bad Request" : "Internal Server Error"),
  detail
})

const UNEXPECTED = answer(500, "An unexpected error occurred.")

const fieldOf = (error: unknown, name: string): unknown =>
  typeof error === "object" && error !== null ? (error as Record<string, unknown>)[name] : undefined

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
  const ours = BffProxy.problemFor(error)
  if (ours !== undefined) return ours
  const status = fieldOf(error, "status") ?? fieldOf(error, "statusCode")
  if (typeof status === "number" && Number.isInteger(status) && status >= 400 && status <= 599) {
    return status < 500
      ? answer(status, "The request cannot be processed as sent.")
      : answer(status, "The request could not be handled.")
  }
  return UNEXPECTED
}

const isSignInRequired = (error: unknown): boolean => fieldOf(error, "_tag") === "SignInRequiredError"

const defaultOnError = (error: unknown, _req: Request, problem: ProblemAnswer): void => {
  // Status, title and tag: an error's message or detail may quote a server's text.
  if (problem.status >= 500) console.error(`[@authfetch/express] ${BffProxy.logLine(error, problem)}`)
}

/**
 * The error handler: mount it after your routes (`app.use(problemDetails())`).
 * When the answer has already started (`res.headersSent`), it passes the
 * error on to Express, which cuts the connection; when the client is gone,
 * it writes nothing.
 *
 * @example
 * ```ts
 * app.use("/api/benefits", createProxy({ tokens, baseUrl }))
 * app.get("/api/summary", summaryRoute)
 * app.use(problemDetails())
 * ```
 *
 * @since 0.1.0
 */
export const problemDetails = (options: ProblemDetailsOptions = {}): ErrorRequestHandler => {
  if (typeof options !== "object" || options === null) {
    throw new InvalidConfigError({
      problems: [
        `problemDetails(options): options must be an object, got ${options === null ? "null" : typeof options}`
      ]
    })
  }
  if (options.onError !== undefined && options.onError !== false && typeof options.onError !== "function") {
    throw new InvalidConfigError({
      problems: ["problemDetails option `onError` must be a function or false"]
    })
  }
  if (options.signInPath !== undefined && !isAppPath(options.signInPath)) {
    throw new InvalidConfigError({
      problems: ["problemDetails option `signInPath` must be a path of this app (such as /auth/signin)"]
    })
  }
  const onError = options.onError === false ? undefined : (options.onError ?? defaultOnError)
  const { signInPath } = options
  return (error, req, res, next) => {
    const problem = toProblem(error)
    try {
      onError?.(error, req, problem)
    } catch {
      // a failing logger must not stop the answer
    }
    if (res.headersSent) return next(error)
    if (clientGone(res)) return
    if (signInPath !== undefined && problem.status === 401 && isSignInRequired(error)) {
      answerSignInRequired(req, res, signInPath, error).catch(next)
      return
    }
    const response = BffProxy.problemResponse(problem)
    sendResponse(response, res, { replace: true }).catch(next)
  }
}
