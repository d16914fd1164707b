/**
 * The signed-in user on every request: `req.user` (the claims the app may
 * see), `req.userSession` (the core's `UserSession`) and `req.userFetch` (the
 * core's `authFetch` with that user's token), set by
 * `userSessionMiddleware(sessions, options)`; and `requireSignIn`, the guard
 * for routes that need a user.
 *
 * Whose token a request carries is decided by core: the session is looked up
 * from the request's own `Cookie` header (`sessions.session(cookie)`), and
 * `req.userFetch` is `authFetch(session.tokens, options)`: that user's access
 * token, refreshed with their refresh token, one refresh at a time per
 * session. This module only hands the header over and puts the answer on the
 * request.
 *
 * @example
 * ```ts
 * import express from "express"
 * import { createUserSessions } from "@authfetch/core"
 * import { createSignInRouter, problemDetails, requireSignIn, userSessionMiddleware } from "@authfetch/express"
 *
 * const sessions = createUserSessions({ issuer, clientId, clientSecret, scope, redirectUri })
 * const app = express()
 * app.use("/auth", createSignInRouter(sessions))
 * app.use(userSessionMiddleware(sessions, { baseUrl: "https://api.example/api", problemDetails: true }))
 * app.get("/account", requireSignIn({ signInPath: "/auth/signin" }), async (req, res) => {
 *   const me = await (await req.userFetch("/v1/me")).json()
 *   res.json({ name: req.user?.name, me })
 * })
 * app.use(problemDetails({ signInPath: "/auth/signin" }))
 * ```
 *
 * @since 0.2.0
 */
import {
  type AuthFetchOptions,
  authFetch,
  InvalidConfigError,
  RetryPolicy,
  SignInRequiredError,
  type Tokens,
  type UserSession,
  type UserSessionsHandle
} from "@authfetch/core"
import type { RequestHandler } from "express"
import { followingClient } from "./internal/node.ts"
import { answerSignInRequired, isAppPath } from "./internal/signInRequired.ts"
import type { AuthFetch } from "./Middleware.ts"

declare global {
  namespace Express {
    /**
     * What the app may see of the signed-in user: the ID token's claims less
     * the protocol ones (`name`, `email`, ...), or what the sessions'
     * `user(claims)` option made of them. Augment it with the claims your
     * provider sends (`interface User { name?: string }`). The same interface
     * as Passport's, so the two declarations merge (but both set `req.user`:
     * use one of them per route).
     */
    interface User {
      readonly [claim: string]: unknown
    }

    interface Request {
      /**
       * The signed-in user's claims (`userSessionMiddleware`), `undefined`
       * when nobody is signed in with this request's cookie.
       */
      user?: User | undefined
      /**
       * The signed-in user's session (`userSessionMiddleware`): key (a
       * digest, safe to log), user, subject, lifetimes and the user's token
       * source; `undefined` when nobody is signed in.
       */
      userSession?: UserSession | undefined
      /**
       * `fetch` with the signed-in user's token and the core's request policy
       * (`userSessionMiddleware`); rejects with `SignInRequiredError` when
       * nobody is signed in, or when the user's refresh token was refused.
       */
      userFetch: AuthFetch
    }
  }
}

/**
 * What `userSessionMiddleware` needs of the sessions (`createUserSessions`'s
 * handle has it).
 *
 * @since 0.2.0
 */
export type SessionLookup = Pick<UserSessionsHandle, "session">

/**
 * Options of `userSessionMiddleware`: the core's `AuthFetchOptions` for
 * `req.userFetch` (`baseUrl`, `origins`, `retry`, `attemptTimeout`,
 * `problemDetails`, `fetch`, `onEvent`, ...) plus how a request's calls
 * follow the client.
 *
 * @example
 * ```ts
 * const options: UserSessionMiddlewareOptions = { baseUrl: "https://api.example/api", problemDetails: true }
 * ```
 *
 * @since 0.2.0
 */
export interface UserSessionMiddlewareOptions extends AuthFetchOptions {
  /**
   * abort the calls a request makes with `req.userFetch` when its client
   * disconnects before the answer is complete; default `true`
   */
  readonly abortOnClientClose?: boolean | undefined
}

const kindOf = (value: unknown): string => (value === null ? "null" : typeof value)

/** Stands for the user where there is none: `authFetch` is built over it once, to check the options. */
const NOBODY: Tokens = {
  getToken: () => Promise.reject(new SignInRequiredError({ reason: "no_session" })),
  invalidate: () => Promise.resolve()
}

/** `req.userFetch` of a request without a signed-in user. */
const signInRequired: AuthFetch = () => Promise.reject(new SignInRequiredError({ reason: "no_session" }))

const middlewareProblems = (sessions: unknown, options: unknown): Array<string> => {
  const problems: Array<string> = []
  if (sessions === undefined || sessions === null) {
    problems.push(
      `userSessionMiddleware(sessions, options): sessions is missing (createUserSessions(...)), got ${kindOf(sessions)}`
    )
  } else if (typeof (sessions as Record<string, unknown>).session !== "function") {
    problems.push(
      "userSessionMiddleware(sessions, options): sessions must be user sessions (createUserSessions)"
    )
  }
  if (typeof options !== "object" || options === null) {
    problems.push(
      `userSessionMiddleware(sessions, options): options must be an object, got ${kindOf(options)}`
    )
  } else {
    const close = (options as Record<string, unknown>).abortOnClientClose
    if (close !== undefined && typeof close !== "boolean") {
      problems.push("userSessionMiddleware option `abortOnClientClose` must be a boolean")
    }
  }
  return problems
}

/**
 * Puts the signed-in user on each request: `req.user`, `req.userSession`
 * and `req.userFetch`. The session is read from the store on every request
 * (a sign-out elsewhere is seen at once); a store that fails sends its error
 * (`TokenStoreError`, 503 with `problemDetails()`) to `next`.
 *
 * `req.userFetch` is the core's `authFetch(session.tokens, options)`, built
 * per request over one retry budget shared by every request (an outage does
 * not multiply traffic per user), and aborted when the client disconnects.
 * The options are checked now: invalid ones throw `InvalidConfigError`,
 * naming them.
 *
 * @example
 * ```ts
 * app.use(userSessionMiddleware(sessions, { baseUrl: "https://api.example/api", problemDetails: true }))
 * app.get("/me", async (req, res) => {
 *   if (req.user === undefined) return res.status(401).end()
 *   res.json(await (await req.userFetch("/v1/me")).json())
 * })
 * ```
 *
 * @since 0.2.0
 */
export const userSessionMiddleware = (
  sessions: SessionLookup,
  options: UserSessionMiddlewareOptions = {}
): RequestHandler => {
  const problems = middlewareProblems(sessions, options)
  if (problems.length > 0) throw new InvalidConfigError({ problems })
  const { abortOnClientClose = true, ...fetchOptions } = options
  // One retry budget for every request of every user (AWS standard mode: retries are a
  // shared resource), the rest of the options as given.
  const shared: AuthFetchOptions = { ...fetchOptions, retry: RetryPolicy.withBudget(fetchOptions.retry) }
  authFetch(NOBODY, shared) // throws InvalidConfigError now for options that cannot work
  return (req, res, next) => {
    sessions.session(req.headers.cookie).then((session) => {
      req.userSession = session
      req.user = session?.user as Express.User | undefined
      if (session === undefined) {
        req.userFetch = signInRequired
      } else {
        const api = authFetch(session.tokens, shared)
        req.userFetch = abortOnClientClose ? followingClient(api, res) : api
      }
      next()
    }, next)
  }
}

/**
 * Options of `requireSignIn`.
 *
 * @since 0.2.0
 */
export interface RequireSignInOptions {
  /**
   * where the sign-in starts: the path of the sign-in router's `GET /signin`
   * (`/auth/signin` when it is mounted at `/auth`); a path of this app
   */
  readonly signInPath: string
}

/**
 * The guard of routes that need a signed-in user (mount it after
 * `userSessionMiddleware`). Without one, a browser loading a page (`GET` or
 * `HEAD` with `Sec-Fetch-Mode: navigate`, or `Accept: text/html` from a
 * browser without Fetch Metadata) is redirected (`302`) to
 * `signInPath?returnTo=<the page asked for>`; anything else (a script's
 * `fetch`, an API client, a form post) is answered `401` problem+json.
 *
 * A session can still end later in the request (the user's refresh token is
 * refused: `req.userFetch` rejects with `SignInRequiredError`): give
 * `problemDetails({ signInPath })` the same path to answer that the same way.
 *
 * @example
 * ```ts
 * const signedIn = requireSignIn({ signInPath: "/auth/signin" })
 * app.get("/account", signedIn, accountPage)
 * app.use("/api/user", signedIn, createProxy({ sessions, baseUrl }))
 * ```
 *
 * @since 0.2.0
 */
export const requireSignIn = (options: RequireSignInOptions): RequestHandler => {
  if (typeof options !== "object" || options === null) {
    throw new InvalidConfigError({
      problems: [`requireSignIn(options): options must be an object ({ signInPath }), got ${kindOf(options)}`]
    })
  }
  if (!isAppPath(options.signInPath)) {
    throw new InvalidConfigError({
      problems: ["requireSignIn option `signInPath` must be a path of this app (such as /auth/signin)"]
    })
  }
  const { signInPath } = options
  return (req, res, next) => {
    if (!("userSession" in req)) {
      return next(
        new InvalidConfigError({
          problems: ["requireSignIn needs userSessionMiddleware(sessions, options) mounted before it"]
        })
      )
    }
    if (req.userSession !== undefined) return next()
    answerSignInRequired(req, res, signInPath).catch(next)
  }
}
