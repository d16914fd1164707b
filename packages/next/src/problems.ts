/**
 * Core failures as RFC 9457 problem responses: the core's one table
 * (`BffProxy.problemFor`, shared with the core's proxy handler and with
 * Express's `problemDetails`) decides the status, the title, the fixed
 * detail and `Retry-After`; this module only makes the `Response`. A caller
 * learns that the upstream timed out, could not be reached, refused our
 * credentials or could not be authenticated, and nothing else (no stack, no
 * URL, no token, no server description).
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
import { BffProxy } from "@authfetch/core"

/**
 * The problem response for a core error, or `undefined` for anything that is
 * not one (it is not ours to translate: rethrow it). See the core's
 * `BffProxy.problemFor` for the table: token errors 502 (rate limited and token
 * store 503), timeouts 504, network failures 502, `InvalidConfigError` 500,
 * an upstream's `401`/`403`/`407` 502, its `429` 503, its 5xx 502, its other
 * 4xx the same status without its text.
 *
 * @example
 * ```ts
 * problemFor(new RequestTimeoutError({ method: "GET", url: "https://x/y", timeoutMillis: 100 }))?.status // 504
 * ```
 *
 * @since 0.1.0
 */
export const problemFor = (error: unknown): Response | undefined => {
  const answer = BffProxy.problemFor(error)
  return answer === undefined ? undefined : BffProxy.problemResponse(answer)
}

/**
 * A network failure of the fetch underneath (the Fetch standard's
 * `TypeError`), which the core hands back when it does not retry.
 *
 * @since 0.1.0
 */
export const unreachable = (): Response => problemFor(new TypeError("fetch failed")) as Response
