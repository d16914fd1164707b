/**
 * Core failures as RFC 9457 problem responses (`Proxy.problem`), by the core's
 * error tags, in the words of the core's proxy handler: a caller learns that
 * the upstream timed out, could not be reached, or could not be authenticated,
 * and nothing else (no stack, no URL, no token, no server description).
 *
 * This is the translation the core's `Proxy.createProxyHandler` applies to
 * the errors it catches; the route-handler wrapper needs it for errors that
 * escape a handler. (Asked of the core: export it as `Proxy.problemFor`, so
 * that Express and Next share one table.)
 *
 * @example
 * ```ts
 * try {
 *   return await work()
 * } catch (error) {
 *   const response = problemFor(error)
 *   if (response === undefined) throw error
 *   return response
 * }
 * ```
 *
 * @since 0.1.0
 */
import { Proxy as CoreProxy, Problem } from "@authfetch/core"

const TOKEN_ERRORS = new Set([
  "OAuthError",
  "RateLimitedError",
  "TokenEndpointError",
  "InvalidTokenResponseError",
  "TokenStoreError"
])

/** The 4xx statuses an upstream problem may be passed on with (titled by `Problem.reasonPhrase`). */
const CLIENT_ERRORS: ReadonlySet<number> = new Set([
  400, 403, 404, 405, 406, 409, 410, 412, 413, 415, 422, 428, 429
])

const tagOf = (error: unknown): string | undefined => {
  const tag = typeof error === "object" && error !== null ? (error as { _tag?: unknown })._tag : undefined
  return typeof tag === "string" ? tag : undefined
}

const isTimeout = (error: unknown): boolean => {
  const tag = tagOf(error)
  return (
    tag === "RequestTimeoutError" ||
    (tag === "RetriesExhaustedError" && tagOf((error as { cause?: unknown }).cause) === "RequestTimeoutError")
  )
}

/**
 * The problem response for a core error, or `undefined` for anything that is
 * not one (it is not ours to translate: rethrow it).
 *
 * - `RequestTimeoutError`, or retries given up on a timeout: `504`;
 * - `RetriesExhaustedError`, `RedirectError`: `502` "could not be reached";
 * - token errors (`OAuthError`, `RateLimitedError`, `TokenEndpointError`,
 *   `InvalidTokenResponseError`, `TokenStoreError`): `502` "could not be
 *   authenticated" (the server's logs say which: see `onError`);
 * - `InvalidConfigError`: `500` "not configured";
 * - `ProblemDetailsError` (`problemDetails: true`): `401` becomes `502` (our
 *   credentials, not the caller's), other 4xx keep their status with the
 *   standard title, 5xx become `502`; the upstream's own text is not passed on.
 *
 * @example
 * ```ts
 * problemFor(new RequestTimeoutError({ method: "GET", url: "https://x/y", timeoutMillis: 100 }))?.status // 504
 * ```
 *
 * @since 0.1.0
 */
export const problemFor = (error: unknown): Response | undefined => {
  const tag = tagOf(error)
  if (isTimeout(error))
    return CoreProxy.problem(504, "Gateway Timeout", "The upstream did not answer in time.")
  if (tag === "RetriesExhaustedError" || (error instanceof TypeError && error.name === "RedirectError")) {
    return CoreProxy.problem(502, "Bad Gateway", "The upstream could not be reached.")
  }
  if (tag !== undefined && TOKEN_ERRORS.has(tag)) {
    return CoreProxy.problem(502, "Bad Gateway", "The upstream could not be authenticated.")
  }
  if (tag === "InvalidConfigError") {
    return CoreProxy.problem(
      500,
      "Internal Server Error",
      "The server is not configured to call the upstream."
    )
  }
  if (tag === "ProblemDetailsError") {
    const status = (error as { status?: unknown }).status
    if (status === 401 || status === 407) {
      return CoreProxy.problem(502, "Bad Gateway", "The upstream refused our credentials.")
    }
    const title =
      typeof status === "number" && CLIENT_ERRORS.has(status) ? Problem.reasonPhrase(status) : undefined
    if (title !== undefined) {
      return CoreProxy.problem(status as number, title, `The upstream answered ${status}.`)
    }
    return CoreProxy.problem(502, "Bad Gateway", "The upstream failed.")
  }
  return undefined
}

/**
 * A network failure of the fetch underneath (the Fetch standard's
 * `TypeError`), which the core hands back when it does not retry.
 *
 * @since 0.1.0
 */
export const unreachable = (): Response =>
  CoreProxy.problem(502, "Bad Gateway", "The upstream could not be reached.")
