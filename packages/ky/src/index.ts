/**
 * `@authfetch/ky`: authfetch's request policy (OAuth 2.0 bearer tokens, one
 * `401` replay, retries with backoff and `Retry-After`) for ky, by its `fetch`
 * option. ky's automatic retry is off, so retries never stack; ky's
 * `HTTPError` keeps its shape and gains `problem`.
 *
 * @example
 * ```ts
 * import ky from "ky"
 * import { createTokenSource } from "@authfetch/core"
 * import { authKyOptions } from "@authfetch/ky"
 *
 * const tokens = createTokenSource(config)
 * const api = ky.create(authKyOptions(tokens, { prefix: "https://platform.uat.benefits.wexglobal.com/api" }))
 * ```
 *
 * @since 0.1.0
 */
export { type AuthKyOptions, type AuthSettings, authKyOptions, problemOf } from "./AuthKy.ts"
