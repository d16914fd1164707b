/**
 * Sign-in, callback and sign-out as one App Router route,
 * `app/auth/[action]/route.ts`: `GET /auth/signin?returnTo=/account` sends the
 * browser to the authorization server, `GET /auth/callback` completes the
 * sign-in and lands on `returnTo` with the session cookie, `POST
 * /auth/signout` (a form of the app) ends the session, revokes its refresh
 * token and clears the cookie.
 *
 * Everything is the core's (`UserSessionsHandle`): `state`, PKCE, nonce and
 * `iss` checks, the browser binding, `returnTo` kept to this app's paths, a
 * new session id at every sign-in, sign-out's Origin check (`checkCsrf` with
 * no custom header: HTML forms cannot send one), revocation, and the problem
 * table (`BffProxy.problemFor`). This module picks the action from the route
 * segment and turns the core's answers into `Response`s. It calls the core's
 * framework-neutral methods (`startSignIn`, `completeSignIn`, `endSession`)
 * rather than its web handlers so that a refused sign-in reaches `onError` as
 * the error itself (the web handlers answer it themselves).
 *
 * @example
 * ```ts
 * // app/auth/[action]/route.ts
 * import { createSignInRoute } from "@authfetch/next"
 * import { sessions } from "../../../lib/auth"
 *
 * export const { GET, POST } = createSignInRoute(sessions)
 * ```
 *
 * @since 0.2.0
 */
import { BffProxy, InvalidConfigError, type UserSessionsHandle } from "@authfetch/core"
import { sessionsProblem } from "./sessions.ts"
import { invalidArguments, kindOf } from "./tokens.ts"

/**
 * The actions of the route, the last segment of its path.
 *
 * @since 0.2.0
 */
export type SignInAction = "signin" | "callback" | "signout"

/**
 * The app's own answer to a refused sign-in or sign-out (a page saying
 * "you cancelled, try again", a redirect to one), or `undefined` for the
 * default problem+json. It gets the core's error (`SignInError` with its
 * `reason` and `code`, `CsrfError`, `DiscoveryError`, `RateLimitedError`,
 * `TokenStoreError`, `InvalidConfigError`; never carrying a secret, a code or
 * a state) and the problem the route would answer. Anything it throws is
 * Next's to handle (a `redirect()` works).
 *
 * @since 0.2.0
 */
export type SignInRouteOnError = (
  error: unknown,
  request: Request,
  problem: BffProxy.ProblemAnswer
) => Response | undefined | Promise<Response | undefined>

/**
 * @since 0.2.0
 */
export interface SignInRouteOptions {
  /**
   * see `SignInRouteOnError`; default: problem+json (400 for a refused
   * sign-in, 403 for a forged sign-out, 5xx for a server that cannot be
   * used), and one `console.error` line per 5xx (status, title, error tag; for
   * `InvalidConfigError` its message, which names what is wrong, never a value)
   */
  readonly onError?: SignInRouteOnError | undefined
}

/**
 * A route handler of the sign-in route: Next's `(request, context)`.
 *
 * @since 0.2.0
 */
export type SignInRouteHandler = (
  request: Request,
  context?: {
    readonly params?: Promise<Readonly<Record<string, string | ReadonlyArray<string> | undefined>>>
  }
) => Promise<Response>

/**
 * The route module's exports.
 *
 * @since 0.2.0
 */
export interface SignInRoute {
  /** `signin` and `callback` */
  readonly GET: SignInRouteHandler
  /** `signout` */
  readonly POST: SignInRouteHandler
}

const METHODS: Readonly<Record<SignInAction, "GET" | "POST">> = {
  signin: "GET",
  callback: "GET",
  signout: "POST"
}

const isAction = (value: string | undefined): value is SignInAction =>
  value === "signin" || value === "callback" || value === "signout"

/**
 * The action: the route's one dynamic segment (`[action]`, whatever its
 * name), or, without params, the last segment of the path.
 */
const actionOf = async (
  request: Request,
  context: Parameters<SignInRouteHandler>[1]
): Promise<string | undefined> => {
  const params = context?.params === undefined ? undefined : await context.params
  const named = params?.action
  if (typeof named === "string") return named
  const strings = Object.values(params ?? {}).filter((value) => typeof value === "string")
  if (strings.length === 1) return strings[0] as string
  const path = new URL(request.url).pathname
  return path.slice(path.lastIndexOf("/") + 1)
}

const redirect = (
  status: 302 | 303,
  answer: { readonly location: string; readonly cookies: ReadonlyArray<string> }
): Response => {
  const headers = new Headers({ location: answer.location, "cache-control": "no-store" })
  for (const cookie of answer.cookies) headers.append("set-cookie", cookie)
  return new Response(null, { status, headers })
}

/**
 * The sign-in route: `export const { GET, POST } = createSignInRoute(sessions)`
 * in `app/auth/[action]/route.ts`, with the sessions' `redirectUri` at its
 * `callback` action (`${APP_URL}/auth/callback`).
 *
 * - `GET signin` (`?returnTo=/a/path`): 302 to the authorization server, with
 *   the cookie binding the sign-in to this browser. A `returnTo` that is not
 *   a path of this app (`//evil.example`, `https://evil.example`) is refused
 *   with 400: no open redirect.
 * - `GET callback`: 302 to `returnTo` (default `afterSignIn`) with the new
 *   session's cookie; a missing or foreign `state`, a replayed code, a PKCE
 *   verifier the server refuses, an `iss` of another server: 400, nothing
 *   stored.
 * - `POST signout`: 303 to `afterSignOut` with the cookie cleared, the
 *   session deleted and its refresh token revoked (RFC 7009); refused with
 *   403 when `Origin` (or `Sec-Fetch-Site`) says another site, or neither is
 *   sent.
 * - Another method for an action: 405 with `Allow`; another action: 404.
 *
 * Every answer has `Cache-Control: no-store`. Throws `InvalidConfigError`
 * naming the argument for `sessions` that are not user sessions or bad
 * `options`.
 *
 * @example
 * ```ts
 * export const { GET, POST } = createSignInRoute(sessions, {
 *   onError: (error) =>
 *     (error as { reason?: string }).reason === "authorization_error"
 *       ? Response.redirect(new URL("/signed-out?cancelled=1", process.env.APP_URL), 303)
 *       : undefined
 * })
 * ```
 *
 * @since 0.2.0
 */
export const createSignInRoute = (
  sessions: UserSessionsHandle,
  options?: SignInRouteOptions
): SignInRoute => {
  const problems = [sessionsProblem(sessions, "createSignInRoute: `sessions`")]
  if (options !== undefined && (typeof options !== "object" || options === null)) {
    problems.push(`createSignInRoute: \`options\` must be an object or undefined, got ${kindOf(options)}`)
  } else if (options?.onError !== undefined && typeof options.onError !== "function") {
    problems.push(
      `createSignInRoute: \`options.onError\` must be a function or undefined, got ${kindOf(options.onError)}`
    )
  }
  const found = problems.filter((problem) => problem !== undefined)
  if (found.length > 0) throw invalidArguments(found)
  const onError = options?.onError

  const refuse = async (error: unknown, request: Request): Promise<Response> => {
    const answer = BffProxy.problemFor(error)
    if (answer === undefined) throw error
    if (onError !== undefined) {
      const own = await onError(error, request, answer)
      if (own !== undefined) return own
    } else if (answer.status >= 500) {
      // a configuration that cannot work says what is wrong (names, never values: core's InvalidConfigError)
      const why = error instanceof InvalidConfigError ? `: ${error.message}` : ""
      console.error(`[@authfetch/next] sign-in route answered ${BffProxy.logLine(error, answer)}${why}`)
    }
    return BffProxy.problemResponse(answer)
  }

  const act = async (action: SignInAction, request: Request): Promise<Response> => {
    const cookie = request.headers.get("cookie")
    const url = new URL(request.url)
    switch (action) {
      case "signin":
        return redirect(
          302,
          await sessions.startSignIn({ cookie, returnTo: url.searchParams.get("returnTo") ?? undefined })
        )
      case "callback":
        return redirect(302, await sessions.completeSignIn({ query: url.searchParams, cookie }))
      case "signout": {
        // A form posts here: no custom header, so Origin or Sec-Fetch-Site must say this app.
        const forged = sessions.checkCsrf(request, { header: false })
        if (forged !== undefined) throw forged
        return redirect(303, await sessions.endSession({ cookie }))
      }
    }
  }

  const handler =
    (method: "GET" | "POST"): SignInRouteHandler =>
    async (request, context) => {
      const action = await actionOf(request, context)
      if (!isAction(action)) return BffProxy.problem(404, "Not Found", "No such sign-in action.")
      if (METHODS[action] !== method) {
        // RFC 9110 15.5.6: a 405 says which method the action takes
        return BffProxy.problem(405, "Method Not Allowed", `Use ${METHODS[action]} for ${action}.`, {
          allow: METHODS[action]
        })
      }
      try {
        return await act(action, request)
      } catch (error) {
        return refuse(error, request)
      }
    }
  return { GET: handler("GET"), POST: handler("POST") }
}
