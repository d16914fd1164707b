/**
 * The signed-in user where Next renders and answers: server components,
 * route handlers and server actions. The session is the core's, found from
 * the request's cookies: `cookies()` of `next/headers` (the request scope
 * Next gives server components, route handlers and server actions), or the
 * `request` a route handler was given. The adapter hands the core the
 * `Cookie` header and never chooses a user itself.
 *
 * - `getUserSession(sessions)`: the core's `UserSession`, or `undefined`;
 * - `currentUser(sessions)`: what the app may see of the user (ID token
 *   claims less the protocol ones), or `undefined`;
 * - `requireUserSession(sessions, { returnTo })`: the session, or a
 *   `redirect()` to the sign-in route that comes back to `returnTo`;
 * - `userFetch(sessions, options)`: the core's `authFetch` over the user's
 *   tokens (refreshed with their refresh token), one retry budget for all
 *   users; with `signIn`, a user whose
 *   session is gone or whose refresh token was refused, now or at a later
 *   call, is redirected to sign in;
 * - `redirectToSignIn(sessions, { returnTo })`: that redirect.
 *
 * @example
 * ```tsx
 * // app/account/page.tsx
 * import { requireUserSession, userFetch } from "@authfetch/next"
 * import { sessions } from "../../lib/auth"
 *
 * export default async function Account() {
 *   const session = await requireUserSession(sessions, { returnTo: "/account" })
 *   const api = await userFetch(sessions, { baseUrl: process.env.WEALTHCARE_BASE_URL, signIn: { returnTo: "/account" } })
 *   const me = (await (await api("/v1/me")).json()) as { subject: string }
 *   return <p>{String(session.user.name)} ({me.subject})</p>
 * }
 * ```
 *
 * @since 0.2.0
 */
import {
  type AuthFetchOptions,
  authFetch,
  RetryPolicy,
  SignInRequiredError,
  type UserSession,
  type UserSessionsHandle
} from "@authfetch/core"
// The react-server entry of `next/navigation`: what Next itself resolves `next/navigation` to in server
// code. By its path, because `next/navigation.js` is the client entry (React contexts), which a plain
// Node process with the `react-server` condition (scripts, tests of this package's users) cannot load.
import { redirect } from "next/dist/client/components/navigation.react-server.js"
import { cookies } from "next/headers.js"
import { ensureAbortSignalAny } from "./internal/abortSignalAny.ts"
import { type LazyUserSessions, sessionsProblem, signInPathOf } from "./sessions.ts"
import { invalidArguments, kindOf } from "./tokens.ts"

/**
 * Where a signed-out user is sent: the sign-in route, which comes back to
 * `returnTo` after the sign-in.
 *
 * @since 0.2.0
 */
export interface SignInRedirectOptions {
  /**
   * a path of this app to land on after the sign-in (`/account?tab=2`); the
   * sign-in route refuses any other (400); default: the sessions'
   * `afterSignIn`. A server component does not know its own URL: pass it.
   */
  readonly returnTo?: string | undefined
  /**
   * the sign-in route's `signin` action; default: next to the sessions'
   * callback (`/auth/callback` → `/auth/signin`), else `/auth/signin`
   */
  readonly signInPath?: string | undefined
}

/**
 * Where the session is read from.
 *
 * @since 0.2.0
 */
export interface FromRequest {
  /**
   * the request a route handler got (its `Cookie` header); default: the
   * request scope's `cookies()` (server components, route handlers, server
   * actions)
   */
  readonly request?: Request | undefined
}

/** The `Cookie` header of the request being handled, as the browser would send it. */
const cookieHeader = async (request: Request | undefined): Promise<string> => {
  if (request !== undefined) return request.headers.get("cookie") ?? ""
  // Next 15+: a promise. Names and values as Next parsed them; our values are base64url, unchanged.
  const jar = await cookies()
  return jar
    .getAll()
    .map((cookie) => `${cookie.name}=${cookie.value}`)
    .join("; ")
}

const optionsProblems = (where: string, options: unknown): Array<string> => {
  if (options === undefined) return []
  if (typeof options !== "object" || options === null || Array.isArray(options)) {
    return [`${where}: \`options\` must be an object or undefined, got ${kindOf(options)}`]
  }
  const { request, returnTo, signInPath, signIn } = options as Record<string, unknown>
  const problems: Array<string> = []
  if (request !== undefined && !(typeof request === "object" && request !== null && "headers" in request)) {
    problems.push(`${where}: \`options.request\` must be the route handler's Request, got ${kindOf(request)}`)
  }
  const paths = { returnTo, signInPath }
  if (signIn !== undefined && signIn !== false) {
    if (typeof signIn !== "object" || signIn === null) {
      problems.push(
        `${where}: \`options.signIn\` must be an object ({ returnTo }) or false, got ${kindOf(signIn)}`
      )
    } else {
      const given = signIn as Record<string, unknown>
      Object.assign(paths, { "signIn.returnTo": given.returnTo, "signIn.signInPath": given.signInPath })
    }
  }
  for (const [name, value] of Object.entries(paths)) {
    if (value === undefined) continue
    if (typeof value !== "string" || !value.startsWith("/")) {
      problems.push(
        `${where}: \`options.${name}\` must be a path of this app (starting with /), got ${kindOf(value)}`
      )
    }
  }
  return problems
}

const check = (where: string, sessions: unknown, options: unknown): void => {
  const problems = [sessionsProblem(sessions, `${where}: \`sessions\``), ...optionsProblems(where, options)]
  const found = problems.filter((problem) => problem !== undefined)
  if (found.length > 0) throw invalidArguments(found)
}

/**
 * The signed-in user of the request being handled, with their tokens, or
 * `undefined`. Reads the store every call: a sign-out in another tab is seen
 * at once. Rejects with `InvalidConfigError` for sessions whose configuration
 * cannot work, and when called outside a request scope without `request`
 * (Next's own error).
 *
 * @example
 * ```ts
 * // app/api/whoami/route.ts
 * export async function GET(request: Request) {
 *   const session = await getUserSession(sessions, { request })
 *   return Response.json({ signedIn: session !== undefined })
 * }
 * ```
 *
 * @since 0.2.0
 */
export const getUserSession = async (
  sessions: UserSessionsHandle,
  options?: FromRequest
): Promise<UserSession | undefined> => {
  check("getUserSession", sessions, options)
  return sessions.session(await cookieHeader(options?.request))
}

/**
 * What the app may see of the signed-in user (the ID token's claims less
 * the protocol ones: `sub`, `name`, `email`, ...; or what the sessions'
 * `user` option made of them), or `undefined` when nobody is signed in.
 *
 * @example
 * ```tsx
 * const user = await currentUser(sessions)
 * return user ? <p>Signed in as {String(user.name)}</p> : <a href="/auth/signin">Sign in</a>
 * ```
 *
 * @since 0.2.0
 */
export const currentUser = async (
  sessions: UserSessionsHandle,
  options?: FromRequest
): Promise<Readonly<Record<string, unknown>> | undefined> => {
  check("currentUser", sessions, options)
  return (await sessions.session(await cookieHeader(options?.request)))?.user
}

const signInUrl = (sessions: UserSessionsHandle, options: SignInRedirectOptions | undefined): string => {
  const path = signInPathOf(sessions, options?.signInPath)
  return options?.returnTo === undefined ? path : `${path}?returnTo=${encodeURIComponent(options.returnTo)}`
}

/**
 * Sends the browser to the sign-in route (`redirect()` of `next/navigation`:
 * it throws, so nothing after it runs), which comes back to `returnTo` after
 * the sign-in. In a server component, a route handler or a server action.
 *
 * @example
 * ```ts
 * if ((await currentUser(sessions)) === undefined) redirectToSignIn(sessions, { returnTo: "/claims" })
 * ```
 *
 * @since 0.2.0
 */
export const redirectToSignIn = (sessions: UserSessionsHandle, options?: SignInRedirectOptions): never => {
  check("redirectToSignIn", sessions, options)
  return redirect(signInUrl(sessions, options))
}

/**
 * The signed-in user's session, or a redirect to sign in (see
 * `redirectToSignIn`): for pages that need a user.
 *
 * @example
 * ```tsx
 * export default async function Account() {
 *   const session = await requireUserSession(sessions, { returnTo: "/account" })
 *   return <h1>{String(session.user.name)}</h1>
 * }
 * ```
 *
 * @since 0.2.0
 */
export const requireUserSession = async (
  sessions: UserSessionsHandle,
  options?: SignInRedirectOptions & FromRequest
): Promise<UserSession> => {
  check("requireUserSession", sessions, options)
  const session = await sessions.session(await cookieHeader(options?.request))
  return session ?? redirect(signInUrl(sessions, options))
}

/**
 * @since 0.2.0
 */
export interface UserFetchOptions extends AuthFetchOptions, FromRequest {
  /**
   * a user who is not signed in, or whose session ends at a call (the
   * refresh token refused: revoked, expired; the session idle or over), is
   * redirected to sign in with these options (`redirect()`: in a server
   * component, the page load that needed the user becomes that redirect).
   * Default (`undefined` or `false`): `SignInRequiredError`, which a route
   * handler answers with 401 (`problemFor`).
   */
  readonly signIn?: SignInRedirectOptions | false | undefined
}

/**
 * The retry budgets of `userFetch`, one per core sessions handle (per app
 * configuration), on `globalThis` so that every bundle's copy of this module
 * spends from the same one.
 */
const BUDGETS = Symbol.for("@authfetch/next/user-fetch-budgets/v1")

/**
 * One retry budget for every request of every user of these sessions (AWS
 * standard mode: retries are a shared resource, so an outage does not
 * multiply traffic per user or per page load).
 */
const sharedBudget = (sessions: UserSessionsHandle): RetryPolicy.RetryBudget => {
  const holder = globalThis as { [BUDGETS]?: WeakMap<object, RetryPolicy.RetryBudget> }
  holder[BUDGETS] ??= new WeakMap()
  const budgets = holder[BUDGETS]
  const owner =
    typeof (sessions as Partial<LazyUserSessions>).handle === "function"
      ? (sessions as LazyUserSessions).handle()
      : sessions
  let budget = budgets.get(owner)
  if (budget === undefined) {
    budget = new RetryPolicy.RetryBudget()
    budgets.set(owner, budget)
  }
  return budget
}

const isSignInRequired = (error: unknown): boolean =>
  error instanceof SignInRequiredError ||
  (typeof error === "object" &&
    error !== null &&
    (error as { _tag?: unknown })._tag === "SignInRequiredError")

/**
 * The core's `authFetch` with the signed-in user's access token: only theirs,
 * refreshed with their refresh token when it expires (one refresh per
 * session, whoever asks), for the API at `baseUrl` (its origin only). Make
 * one per request: it belongs to that request's user. Retries spend from one
 * budget shared by every `userFetch` of these sessions, all users together
 * (an outage does not multiply traffic), unless `retry.budget` says otherwise.
 *
 * Nobody signed in: `SignInRequiredError` (rejected here), or, with
 * `signIn`, a redirect to sign in; the same for a call whose session ends
 * (its refresh token refused).
 *
 * @example
 * ```ts
 * // app/api/me/route.ts: a route handler; signed out → 401 problem+json
 * export async function GET(request: Request) {
 *   try {
 *     const api = await userFetch(sessions, { request, baseUrl: process.env.WEALTHCARE_BASE_URL })
 *     return Response.json(await (await api("/v1/me")).json())
 *   } catch (error) {
 *     const problem = problemFor(error)
 *     if (problem === undefined) throw error
 *     return problem
 *   }
 * }
 * ```
 *
 * @since 0.2.0
 */
export const userFetch = async (
  sessions: UserSessionsHandle,
  options?: UserFetchOptions
): Promise<typeof globalThis.fetch> => {
  check("userFetch", sessions, options)
  const { request, signIn, ...fetchOptions } = options ?? {}
  const session = await sessions.session(await cookieHeader(request))
  if (session === undefined) {
    if (signIn) return redirect(signInUrl(sessions, signIn))
    throw new SignInRequiredError({ reason: "no_session" })
  }
  const { retry } = fetchOptions
  const api = authFetch(session.tokens, {
    ...fetchOptions,
    retry: retry === false ? false : { ...retry, budget: retry?.budget ?? sharedBudget(sessions) }
  })
  return (input, init) => {
    ensureAbortSignalAny()
    const sent = api(input, init)
    if (!signIn) return sent
    return sent.catch((error: unknown) => {
      if (isSignInRequired(error)) redirect(signInUrl(sessions, signIn))
      throw error
    })
  }
}
