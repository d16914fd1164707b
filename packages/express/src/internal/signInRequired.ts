/**
 * What a request without a signed-in user is answered, shared by the guard
 * (`requireSignIn`) and the error handler (`problemDetails({ signInPath })`,
 * for a `SignInRequiredError` a route met later, such as a refresh token the
 * server refused):
 *
 * - a browser navigating to a page (`GET`/`HEAD`, `Sec-Fetch-Mode: navigate`,
 *   or, from a browser that sends no Fetch Metadata, `Accept: text/html`) is
 *   sent to sign in (`302`), with the page it asked for as `returnTo`;
 * - anything else (a script's `fetch`, an API client, a form post) gets the
 *   core's `401` problem: redirecting a `fetch` would hand it the
 *   authorization server's HTML page, and a `POST` cannot be resumed.
 *
 * @internal
 */
import { BffProxy, SignIn, SignInRequiredError } from "@authfetch/core"
import type { Request, Response } from "express"
import { sendResponse } from "./node.ts"

/**
 * Only used to check that a path stays a path: `safeReturnTo` resolves it
 * against an origin and refuses anything that leaves it.
 */
const ANY_ORIGIN = "http://app.invalid"

/** Whether the request is a browser loading a page (WHATWG Fetch: request mode `navigate`). */
export const isNavigation = (req: Request): boolean => {
  const method = req.method.toUpperCase()
  if (method !== "GET" && method !== "HEAD") return false
  // Fetch Metadata, where the browser sends it, says exactly what the request is.
  const mode = req.headers["sec-fetch-mode"]
  if (typeof mode === "string") return mode === "navigate"
  const accept = req.headers.accept
  return typeof accept === "string" && accept.toLowerCase().includes("text/html")
}

/** Whether a value names a path of the app (`/...`, not `//host`): for `signInPath`. */
export const isAppPath = (value: unknown): value is string =>
  typeof value === "string" && SignIn.safeReturnTo(value, ANY_ORIGIN) !== undefined

/** `signInPath` with the request's own URL (path and query) as `returnTo`, when it is a path of the app. */
export const signInLocation = (req: Request, signInPath: string): string => {
  const returnTo = SignIn.safeReturnTo(req.originalUrl, ANY_ORIGIN)
  if (returnTo === undefined) return signInPath
  return `${signInPath}${signInPath.includes("?") ? "&" : "?"}returnTo=${encodeURIComponent(returnTo)}`
}

/** Answers a request that needs a signed-in user: the redirect or the 401 problem. */
export const answerSignInRequired = (
  req: Request,
  res: Response,
  signInPath: string | undefined,
  error: unknown = new SignInRequiredError({ reason: "no_session" })
): Promise<void> => {
  if (signInPath !== undefined && isNavigation(req)) {
    return sendResponse(
      new Response(null, {
        status: 302,
        headers: { location: signInLocation(req, signInPath), "cache-control": "no-store" }
      }),
      res,
      { replace: true }
    )
  }
  const problem =
    BffProxy.problemFor(error) ?? BffProxy.problemFor(new SignInRequiredError({ reason: "no_session" }))!
  return sendResponse(BffProxy.problemResponse(problem), res, { replace: true })
}
