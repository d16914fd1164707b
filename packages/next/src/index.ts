/**
 * `@authfetch/next`: authfetch for Next.js App Router route handlers.
 *
 * - `withAuthFetch(handler, options)`: the handler gets the core's `authFetch`
 *   next to Next's context; core errors become problem+json.
 * - `createProxyRoute(options)`: `GET`, `HEAD`, `POST`, `PUT`, `PATCH`,
 *   `DELETE` for `app/api/<name>/[...path]/route.ts`, a backend-for-frontend
 *   proxy to one fixed upstream (the core's `BffProxy.createProxyHandler`).
 * - `tokenSource(config)`: one token source per
 *   process and configuration, across `next dev` reloads, created lazily;
 *   the registry is bounded (`configureTokenSources`: size cap, idle time).
 * - `createAuthFetch(options)`: the same fetch for server components and
 *   server actions.
 * - Signed-in users (per-user tokens): `userSessions(config)`, the process's
 *   sessions across reloads; `createSignInRoute(sessions)`, sign-in, callback
 *   and sign-out for `app/auth/[action]/route.ts`; `getUserSession`,
 *   `currentUser`, `requireUserSession`, `userFetch`, `redirectToSignIn` for
 *   server components, route handlers and server actions;
 *   `createProxyRoute({ sessions, baseUrl })`, the proxy with each user's
 *   token.
 *
 * Server-only: this entry imports `server-only`, so importing it from a
 * client component fails the build. Runs in the Node.js and Edge runtimes.
 *
 * @example
 * ```ts
 * // app/api/benefits/[...path]/route.ts
 * import { createProxyRoute } from "@authfetch/next"
 * import { fromEnv } from "@authfetch/core/providers"
 *
 * export const { GET, HEAD, POST, PUT, PATCH, DELETE } = createProxyRoute(() => ({
 *   tokens: fromEnv("WEX"),
 *   baseUrl: process.env.WEX_BASE_URL!,
 *   prefix: "/api/benefits"
 * }))
 * ```
 *
 * @since 0.1.0
 */
import "server-only"

export { problemFor } from "./problems.ts"
export {
  createProxyRoute,
  type ProxyRoute,
  type ProxyRouteHandler,
  type ProxyRouteOptions,
  pathBelowMount
} from "./proxyRoute.ts"
export {
  disposeUserSessions,
  type LazyUserSessions,
  type SessionsConfigInput,
  userSessions
} from "./sessions.ts"
export {
  createSignInRoute,
  type SignInAction,
  type SignInRoute,
  type SignInRouteHandler,
  type SignInRouteOnError,
  type SignInRouteOptions
} from "./signInRoute.ts"
export {
  type ConfigInput,
  configureTokenSources,
  disposeTokenSources,
  type LazyTokenSource,
  type TokenSourcesOptions,
  type TokensInput,
  tokenSource
} from "./tokens.ts"
export {
  currentUser,
  type FromRequest,
  getUserSession,
  redirectToSignIn,
  requireUserSession,
  type SignInRedirectOptions,
  type UserFetchOptions,
  userFetch
} from "./userSession.ts"
export {
  type AuthFetchContext,
  createAuthFetch,
  type Lazy,
  type NextRouteContext,
  type OnError,
  type WithAuthFetchOptions,
  withAuthFetch
} from "./withAuthFetch.ts"
