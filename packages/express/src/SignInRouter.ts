/**
 * Signing users in and out, as an Express router over the core's sessions
 * (`createUserSessions`): authorization code + PKCE, `state` bound to the
 * browser, OpenID Connect `nonce` and ID token checks, RFC 9207 `iss`, a new
 * session id at every sign-in, revocation at sign-out. The policy is the
 * core's; this module translates its framework-neutral methods (the `Cookie`
 * header in; `Location` and `Set-Cookie` out) into Express answers:
 *
 * | route | core | answer |
 * | --- | --- | --- |
 * | `GET /signin?returnTo=/path` | `startSignIn` | `302` to the authorization server, with the sign-in cookie |
 * | `GET /callback` | `completeSignIn` | `302` to `returnTo`, with the session cookie |
 * | `POST /signout` | `checkCsrf` (`header: false`: a form), `endSession` | `303` to `afterSignOut`, the cookie cleared |
 * | `POST /password` (`password: true`) | `checkCsrf` (custom header), `signInWithPassword` | `200 { user }`, with the session cookie |
 *
 * Every answer has `Cache-Control: no-store`. A refused request (a callback
 * that is not this browser's, a mix-up, an open redirect through `returnTo`,
 * a cross-site sign-out) becomes the core's problem+json (`BffProxy.problemFor`:
 * 400, 401, 403, 502, 503), or goes to `onError(error, req, res)` for a page of
 * the app's own. Nothing is stored for a refused sign-in (the core's rule).
 *
 * @example
 * ```ts
 * import express from "express"
 * import { createUserSessions } from "@authfetch/core"
 * import { createSignInRouter } from "@authfetch/express"
 *
 * const sessions = createUserSessions({
 *   issuer: "https://beta.auth.wealthcare.com",
 *   clientId,
 *   clientSecret,
 *   scope: "openid profile offline_access bensoft_api",
 *   redirectUri: "https://app.example/auth/callback"
 * })
 * const app = express()
 * app.use("/auth", createSignInRouter(sessions)) // /auth/signin, /auth/callback, /auth/signout
 * ```
 *
 * @since 0.2.0
 */
import { BffProxy, InvalidConfigError, type UserSessionsHandle } from "@authfetch/core"
import express, { type Request, type Response, type Router } from "express"
import { bodyAlreadyRead, sendResponse } from "./internal/node.ts"

/**
 * What the router needs of the sessions (`createUserSessions`'s handle has it).
 *
 * @since 0.2.0
 */
export type SignInSessions = Pick<
  UserSessionsHandle,
  "startSignIn" | "completeSignIn" | "endSession" | "signInWithPassword" | "checkCsrf"
>

/**
 * Options of `createSignInRouter`.
 *
 * @since 0.2.0
 */
export interface SignInRouterOptions {
  /**
   * called instead of the problem+json answer with every refused or failed
   * request (`SignInError`, `CsrfError`, `DiscoveryError`, `RateLimitedError`,
   * `TokenStoreError`, ...): render your own page (`toProblem(error)` gives
   * the status and a sentence safe to show). Errors that are not authfetch's
   * go to `next` either way. Throwing (or rejecting) sends that error to `next`.
   */
  readonly onError?: ((error: unknown, req: Request, res: Response) => void | Promise<void>) | undefined
  /**
   * serve `POST /password`: the password grant (RFC 6749 4.3) for a trusted
   * first-party app's own sign-in form, posted by its own script with the
   * CSRF header (`x-csrf: 1`); body JSON or a form with `username` and
   * `password`. Default `false`: RFC 9700 2.4 says the password grant must
   * not be used, and where it is, only by a client the user trusts with the
   * password.
   */
  readonly password?: boolean | undefined
}

/** A password sign-in body is a few hundred bytes; larger ones are refused unread. */
const PASSWORD_BODY_LIMIT = 8 * 1024

const kindOf = (value: unknown): string => (value === null ? "null" : typeof value)

const SESSION_METHODS = ["startSignIn", "completeSignIn", "endSession", "checkCsrf"] as const

const routerProblems = (sessions: unknown, options: unknown): Array<string> => {
  const problems: Array<string> = []
  if (sessions === undefined || sessions === null) {
    problems.push(
      `createSignInRouter(sessions, options): sessions is missing (createUserSessions(...)), got ${kindOf(sessions)}`
    )
  } else if (
    typeof sessions !== "object" ||
    SESSION_METHODS.some((name) => typeof (sessions as Record<string, unknown>)[name] !== "function")
  ) {
    problems.push(
      "createSignInRouter(sessions, options): sessions must be user sessions (createUserSessions)"
    )
  }
  if (typeof options !== "object" || options === null) {
    problems.push(`createSignInRouter(sessions, options): options must be an object, got ${kindOf(options)}`)
    return problems
  }
  const { onError, password } = options as Record<string, unknown>
  if (onError !== undefined && typeof onError !== "function") {
    problems.push("createSignInRouter option `onError` must be a function")
  }
  if (password !== undefined && typeof password !== "boolean") {
    problems.push("createSignInRouter option `password` must be a boolean")
  } else if (
    password === true &&
    typeof sessions === "object" &&
    sessions !== null &&
    typeof (sessions as Record<string, unknown>).signInWithPassword !== "function"
  ) {
    problems.push("createSignInRouter option `password` needs sessions with signInWithPassword")
  }
  return problems
}

/** The raw query of the URL below the mount point (not Express's parsed `req.query`, which makes arrays). */
const rawQuery = (req: Request): string => {
  const at = req.url.indexOf("?")
  return at === -1 ? "" : req.url.slice(at + 1)
}

const redirect = (res: Response, status: 302 | 303, location: string, cookies: ReadonlyArray<string>) => {
  const headers = new Headers({ location, "cache-control": "no-store" })
  for (const cookie of cookies) headers.append("set-cookie", cookie)
  return sendResponse(new Response(null, { status, headers }), res)
}

const methodNotAllowed = (res: Response, allow: string) =>
  sendResponse(
    BffProxy.problem(405, "Method Not Allowed", `Use ${allow.split(", ")[0]} here.`, { allow }),
    res
  )

/** What `Csrf.check` reads of an Express request. */
const csrfView = (req: Request) => ({
  method: req.method,
  headers: { get: (name: string) => req.get(name) }
})

class BadPasswordBody extends Error {
  override readonly name = "BadPasswordBody"
}

/**
 * `username` and `password` of a password sign-in: from a body parser that
 * ran before the router (`req.body`), else read here, bounded, as JSON or a
 * form. Parse errors are reported without the text (it holds a password).
 */
const readCredentials = async (req: Request): Promise<{ username: string; password: string }> => {
  let fields: unknown = req.body
  if (!bodyAlreadyRead(req)) {
    const type = (req.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase()
    if (type !== "application/json" && type !== "application/x-www-form-urlencoded")
      throw new BadPasswordBody()
    const chunks: Array<Buffer> = []
    let size = 0
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.byteLength
      if (size > PASSWORD_BODY_LIMIT) throw new BadPasswordBody()
      chunks.push(chunk)
    }
    const text = Buffer.concat(chunks).toString("utf8")
    try {
      fields = type === "application/json" ? JSON.parse(text) : Object.fromEntries(new URLSearchParams(text))
    } catch {
      throw new BadPasswordBody()
    }
  }
  const record = typeof fields === "object" && fields !== null ? (fields as Record<string, unknown>) : {}
  const { username, password } = record
  // What a parser before us left on the request loses the password: it is kept nowhere.
  if (typeof req.body === "object" && req.body !== null && "password" in req.body) delete req.body.password
  if (typeof username !== "string" || username === "" || typeof password !== "string" || password === "") {
    throw new BadPasswordBody()
  }
  return { username, password }
}

/**
 * The sign-in router: mount it where its paths should be (`app.use("/auth",
 * createSignInRouter(sessions))` serves `/auth/signin`, `/auth/callback` and
 * `/auth/signout`; the sessions' `redirectUri` must be the callback's URL).
 * The arguments are checked now (`InvalidConfigError`, naming each problem).
 *
 * @example
 * ```ts
 * app.use("/auth", createSignInRouter(sessions, {
 *   onError: (error, req, res) => {
 *     const problem = toProblem(error)
 *     res.status(problem.status).send(`<h1>${problem.title}</h1><p>${problem.detail}</p><a href="/auth/signin">Sign in</a>`)
 *   }
 * }))
 * ```
 *
 * @since 0.2.0
 */
export const createSignInRouter = (sessions: SignInSessions, options: SignInRouterOptions = {}): Router => {
  const problems = routerProblems(sessions, options)
  if (problems.length > 0) throw new InvalidConfigError({ problems })
  const { onError } = options

  const fail = async (error: unknown, req: Request, res: Response, next: express.NextFunction) => {
    if (BffProxy.problemFor(error) === undefined) return next(error)
    if (onError !== undefined) {
      try {
        await onError(error, req, res)
      } catch (thrown) {
        next(thrown)
      }
      return
    }
    const problem = BffProxy.problemFor(error)!
    // 5xx are ours to fix (discovery, store): one line, status and tag, never a detail
    if (problem.status >= 500)
      console.error(`[@authfetch/express] sign-in answered ${BffProxy.logLine(error, problem)}`)
    await sendResponse(BffProxy.problemResponse(problem), res, { replace: true })
  }

  const route =
    (handler: (req: Request, res: Response) => Promise<void>): express.RequestHandler =>
    (req, res, next) => {
      handler(req, res).catch((error: unknown) => fail(error, req, res, next).catch(next))
    }

  const router = express.Router()
  router.all(
    "/signin",
    route(async (req, res) => {
      if (req.method !== "GET" && req.method !== "HEAD") return methodNotAllowed(res, "GET, HEAD")
      const returnTo = new URLSearchParams(rawQuery(req)).get("returnTo") ?? undefined
      const started = await sessions.startSignIn({ cookie: req.headers.cookie, returnTo })
      await redirect(res, 302, started.location, started.cookies)
    })
  )
  router.all(
    "/callback",
    route(async (req, res) => {
      if (req.method !== "GET" && req.method !== "HEAD") return methodNotAllowed(res, "GET, HEAD")
      const done = await sessions.completeSignIn({ query: rawQuery(req), cookie: req.headers.cookie })
      await redirect(res, 302, done.location, done.cookies)
    })
  )
  router.all(
    "/signout",
    route(async (req, res) => {
      if (req.method !== "POST") return methodNotAllowed(res, "POST")
      // A form posts here: no custom header, so Origin or Fetch Metadata must say same-origin.
      const forged = sessions.checkCsrf(csrfView(req), { header: false })
      if (forged !== undefined) throw forged
      const ended = await sessions.endSession({ cookie: req.headers.cookie })
      // 303: the browser follows with a GET
      await redirect(res, 303, ended.location, ended.cookies)
    })
  )
  if (options.password === true) {
    router.all(
      "/password",
      route(async (req, res) => {
        if (req.method !== "POST") return methodNotAllowed(res, "POST")
        // Only the app's own script (or back end) posts here: the custom header is required.
        const forged = sessions.checkCsrf(csrfView(req))
        if (forged !== undefined) throw forged
        let credentials: { username: string; password: string }
        try {
          credentials = await readCredentials(req)
        } catch (error) {
          if (!(error instanceof BadPasswordBody)) throw error
          return sendResponse(
            BffProxy.problem(400, "Bad Request", "Send username and password, as JSON or a form."),
            res
          )
        }
        const done = await sessions.signInWithPassword({ ...credentials, cookie: req.headers.cookie })
        const headers = new Headers({ "content-type": "application/json", "cache-control": "no-store" })
        for (const cookie of done.cookies) headers.append("set-cookie", cookie)
        await sendResponse(
          new Response(JSON.stringify({ user: done.session.user }), { status: 200, headers }),
          res
        )
      })
    )
  }
  return router
}
