/**
 * Cross-site request forgery: a state-changing request (POST, PUT, PATCH,
 * DELETE) that carries a signed-in user's cookie must come from a page of the
 * app, not from another site the user happens to visit.
 *
 * Three rules, each enough to stop a forged request from a current browser,
 * together covering older ones and non-browser clients:
 *
 * - **Fetch Metadata**: `Sec-Fetch-Site`, when sent, must be `same-origin`;
 * - **Origin**: without Fetch Metadata (older browsers), `Origin`, when sent,
 *   must be the app's own origin (`null`, from a sandboxed frame or a privacy
 *   redirect, is refused);
 * - **a custom header** (default `x-csrf`, as Duende's BFF): a page can add it
 *   to its own `fetch`, but another origin cannot without a CORS preflight,
 *   which the app never grants. HTML forms cannot set headers, so routes that
 *   forms post to (sign-out) turn this rule off and require `Origin` or
 *   `Sec-Fetch-Site` instead.
 *
 * Safe methods (RFC 9110 9.2.1) are not checked: they must not change state.
 *
 * @example
 * ```ts
 * import { Csrf } from "@authfetch/core"
 *
 * const refused = Csrf.check(request, { appOrigin: "https://app.example" })
 * if (refused) return new Response(null, { status: 403 })
 * ```
 *
 * @since 0.2.0
 */
import { CsrfError } from "./Errors.ts"

/**
 * What `check` reads of a request: its method and a way to read a header
 * (a web `Headers`, or a function over Node's `req.headers`).
 *
 * @since 0.2.0
 */
export interface RequestLike {
  readonly method: string
  readonly headers: { get(name: string): string | null | undefined }
}

/**
 * @since 0.2.0
 */
export interface CsrfOptions {
  /** the app's origin as the browser sees it (`https://app.example`) */
  readonly appOrigin: string
  /**
   * the header a same-origin script adds to every state-changing call
   * (any non-empty value; send `1`); default `x-csrf`; `false` for routes
   * that HTML forms post to, which then need `Origin` or `Sec-Fetch-Site`
   */
  readonly header?: string | false | undefined
}

/** The custom header a page adds to its state-changing calls (Duende's BFF convention). */
export const DEFAULT_HEADER = "x-csrf"

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS", "TRACE"])

/**
 * Whether a method is safe (RFC 9110 9.2.1): read-only by definition, never checked.
 *
 * @example
 * ```ts
 * Csrf.isSafeMethod("GET") // true
 * ```
 *
 * @since 0.2.0
 */
export const isSafeMethod = (method: string): boolean => SAFE_METHODS.has(method.toUpperCase())

/**
 * Why a request is refused as possibly forged, or `undefined` when it may go
 * on.
 *
 * @example
 * ```ts
 * const refused = Csrf.check({ method: req.method, headers: { get: (name) => req.get(name) } }, { appOrigin })
 * ```
 *
 * @since 0.2.0
 */
export const check = (request: RequestLike, options: CsrfOptions): CsrfError | undefined => {
  if (isSafeMethod(request.method)) return undefined
  const site = request.headers.get("sec-fetch-site") ?? undefined
  if (site !== undefined && site !== "same-origin") return new CsrfError({ reason: "cross_site" })
  const origin = request.headers.get("origin") ?? undefined
  // Fetch Metadata, when sent, decides: a browser sends `Origin: null` for a page's own form
  // under `Referrer-Policy: no-referrer`, and says `same-origin` for it all the same.
  if (site === undefined && origin !== undefined && origin !== options.appOrigin) {
    return new CsrfError({ reason: "origin_mismatch" })
  }
  const header = options.header === undefined ? DEFAULT_HEADER : options.header
  if (header === false) {
    return site === undefined && origin === undefined ? new CsrfError({ reason: "no_origin" }) : undefined
  }
  const value = request.headers.get(header)
  return value === null || value === undefined || value === ""
    ? new CsrfError({ reason: "header_missing" })
    : undefined
}
