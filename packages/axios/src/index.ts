/**
 * `@authfetch/axios`: OAuth 2.0 bearer tokens for axios, with the request
 * policy of `@authfetch/core`: tokens to allowed origins only (redirects
 * included), one replay after a `401` with a single token request however many
 * requests failed at once, retries with backoff and `Retry-After`, typed
 * problem details on errors, and no token in a logged `AxiosError`.
 *
 * @example
 * ```ts
 * import axios from "axios"
 * import { createTokenSource } from "@authfetch/core"
 * import { attachAuth } from "@authfetch/axios"
 *
 * const api = axios.create({ baseURL: "https://platform.uat.benefits.wexglobal.com/api" })
 * const detach = attachAuth(api, createTokenSource(config))
 * const { data } = await api.get("/v1/consumers/12345")
 * ```
 *
 * @since 0.1.0
 */
export {
  type AttachAuthOptions,
  type AxiosProblemError,
  attachAuth,
  type Detach,
  hasProblem,
  problemOf
} from "./attachAuth.ts"
export { RequestSummary } from "./RequestSummary.ts"
