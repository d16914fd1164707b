/**
 * `@authfetch/express`: authfetch in Express apps.
 *
 * - `authFetchMiddleware(tokens, options)`: `req.authFetch`, the core's
 *   `authFetch` (created once, shared by all requests), aborted when the
 *   client disconnects;
 * - `createProxy(options)`: a backend-for-frontend router forwarding
 *   `/<mount>/*` to one fixed upstream with our bearer token, over the core's
 *   `BffProxy.createProxyHandler` (hostile paths and headers refused, bodies
 *   bounded and streamed both ways);
 * - `problemDetails()`: an error handler answering RFC 9457
 *   `application/problem+json` without stacks, tokens or upstream internals;
 * - signed-in users (the core's `createUserSessions`):
 *   `createSignInRouter(sessions)` serves sign-in, callback and sign-out;
 *   `userSessionMiddleware(sessions, options)` puts `req.user`,
 *   `req.userSession` and `req.userFetch` (the user's token) on each request;
 *   `requireSignIn({ signInPath })` guards routes; `createProxy({ sessions,
 *   baseUrl })` forwards with the signed-in user's token.
 *
 * @example
 * ```ts
 * import express from "express"
 * import { createTokenSource } from "@authfetch/core"
 * import { wex } from "@authfetch/core/providers"
 * import { authFetchMiddleware, createProxy, problemDetails } from "@authfetch/express"
 *
 * const config = wex({ environment: "uat", clientId, clientSecret })
 * const tokens = createTokenSource(config)
 * const app = express()
 * app.use("/api/benefits", createProxy({ tokens, baseUrl: config.baseUrl, allow: ["/v1/**"] }))
 * app.use(express.json())
 * app.use(authFetchMiddleware(tokens, { baseUrl: config.baseUrl, problemDetails: true }))
 * app.get("/api/consumers/:id/name", async (req, res) => {
 *   const consumer = await (await req.authFetch(`/v1/consumers/${encodeURIComponent(req.params.id)}`)).json()
 *   res.json({ name: consumer.name })
 * })
 * app.use(problemDetails())
 * ```
 *
 * @since 0.1.0
 */
export { type AuthFetch, type AuthFetchMiddlewareOptions, authFetchMiddleware } from "./Middleware.ts"
export {
  type ProblemAnswer,
  type ProblemDetailsOptions,
  problemDetails,
  toProblem
} from "./ProblemDetails.ts"
export { createProxy, type ProxyOptions } from "./Proxy.ts"
export { createSignInRouter, type SignInRouterOptions, type SignInSessions } from "./SignInRouter.ts"
export {
  type RequireSignInOptions,
  requireSignIn,
  type SessionLookup,
  type UserSessionMiddlewareOptions,
  userSessionMiddleware
} from "./UserSession.ts"
