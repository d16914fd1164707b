/**
 * Where a proxy path is checked, and the backend-for-frontend proxy built on
 * it, over web `Request`/`Response` so that Express and Next.js share one
 * implementation (the Express adapter converts Node streams; Next route
 * handlers use it as is). What a caller may reach, what crosses in each
 * direction, and what every failure answers are decided here, once.
 *
 * The browser never holds the client secret or a token: it calls our server,
 * which forwards to one fixed upstream with the bearer token. Everything the
 * caller controls is hostile until checked, and so is everything the
 * upstream answers (it may echo our token, name its own host, or point
 * elsewhere):
 *
 * - the path: `..` and its encodings (`%2e%2e`, `%252e%252e`, ...), look-alike
 *   dots (`．`, `․`, `‥`, `。`) and dot segments padded with blanks (`..%20`),
 *   encoded slashes and their look-alikes, backslashes, `//host`, absolute
 *   URLs, control characters and NUL are refused (400); an optional allow-list
 *   of path patterns (404 otherwise); the upstream URL is rebuilt and must still
 *   be under the upstream base, whatever the path said;
 * - request headers: an allow-list, less the names the request's own
 *   `Connection` header lists; the caller's `Authorization`, `Cookie` and
 *   hop-by-hop headers never reach the upstream;
 * - response headers: an allow-list, less the names the upstream's `Connection`
 *   lists and any value holding our token; `Location`, `Content-Location` and
 *   `Link` are rewritten to the mount point when they point under the upstream
 *   base at an allowed path, and dropped otherwise; `Set-Cookie`, `Refresh`,
 *   `Access-Control-*`, `Clear-Site-Data` and the like never pass;
 * - redirects: never followed by the proxy. A redirect to an allowed path
 *   under the upstream base goes to the browser with its `Location` rewritten
 *   to the mount point (the browser's next request passes every check again);
 *   any other redirect is refused (502);
 * - upstream errors: `401`, `403`, `407` (our credentials) become 502, `408`
 *   and `504` 504, `429` 503 (with `Retry-After`), every 5xx our own 502; no
 *   such body is passed on. Other statuses pass with their body, from which the
 *   token used for the request is removed;
 * - the body: bounded (`413`), streamed both ways;
 * - time: bounded per attempt (`504`); a request given up on (timed out, or its
 *   caller gone) resets its upstream connection (in Node.js);
 * - errors: RFC 9457 `application/problem+json` without internals (no stack,
 *   no upstream URL, no token), decided by `problemFor`, one table for the
 *   core, Express and Next; each one the proxy produces goes to `onError`
 *   (default: one line on stderr per 5xx: status, title, error tag).
 *
 * @example
 * ```ts
 * import { BffProxy } from "@authfetch/core"
 *
 * const handle = BffProxy.createProxyHandler({ tokens, baseUrl: "https://platform.uat.benefits.wexglobal.com/api" })
 * // in a framework route for "/benefits/*":
 * const response = await handle(request, "/v1/consumers/12345", { mount: "/benefits" })
 * ```
 *
 * @since 0.1.0
 */
import { Data, Duration } from "effect"
import { isSecureOrigin } from "./Config.ts"
import { InvalidConfigError, SignInRequiredError } from "./Errors.ts"
import type { RequestEvent } from "./Events.ts"
import { concatBytes } from "./internal/bytes.ts"
import { nodeUpstream } from "./internal/nodeUpstream.ts"
import {
  connectionListed,
  FORWARDED_REQUEST_HEADERS,
  isFieldName,
  isNeverPassed,
  NEVER_FORWARDED,
  PASSED_RESPONSE_HEADERS,
  rewriteLinks
} from "./internal/proxyHeaders.ts"
import { redactBytes, redactStream, spellings } from "./internal/redact.ts"
import type { FetchBody } from "./internal/webTypes.ts"
import { authFetch, type Tokens } from "./Middleware.ts"
import { reasonPhrase } from "./Problem.ts"
import { parseRetryAfter, type RequestRetryOptions, withBudget } from "./RetryPolicy.ts"

/**
 * The problem an error becomes: what a caller of the proxy (or of any route
 * that meets a core error) is told.
 *
 * @since 0.1.0
 */
export interface ProblemAnswer {
  readonly status: number
  /** the HTTP reason phrase of `status` */
  readonly title: string
  /** a fixed sentence: never text from the upstream, the token endpoint or the error */
  readonly detail: string
  /** seconds, for `Retry-After` */
  readonly retryAfter?: number | undefined
}

/**
 * Called with every problem answer the proxy produces itself (refused
 * requests, upstream failures, core errors), with the error behind it: the
 * place to log and alert. `false`: nobody is told. Default: one line on stderr
 * per 5xx answer (`logLine`: status, title and the error's tag; never a body,
 * a detail, a URL or a token).
 *
 * @since 0.1.0
 */
export type OnProxyError = ((error: unknown, problem: ProblemAnswer, request: Request) => void) | false

/**
 * @since 0.1.0
 */
export interface ProxyOptions {
  /**
   * the service's token source (one token for every caller); exactly one of
   * `tokens` and `sessions`
   */
  readonly tokens?: Tokens | undefined
  /**
   * per-user mode: each request goes out with the token of the user signed in
   * with its `Cookie` (`createUserSessions`); without a session it is answered
   * 401, and a state-changing request from another site 403 (`Csrf`)
   */
  readonly sessions?: ProxySessions | undefined
  /**
   * per-user mode: the header a same-origin page adds to state-changing calls
   * (`Csrf`); default `x-csrf`; `false`: Origin and Fetch Metadata only
   */
  readonly csrfHeader?: string | false | undefined
  /** the API's base URL, the one fixed upstream, e.g. `https://platform.uat.benefits.wexglobal.com/api` */
  readonly baseUrl: string
  /**
   * path patterns allowed (matched against the decoded path below the
   * upstream base): `*` is one segment, `**` any number; default: all paths
   */
  readonly allow?: ReadonlyArray<string | RegExp> | undefined
  /** methods forwarded; default GET, HEAD, POST, PUT, PATCH, DELETE */
  readonly methods?: ReadonlyArray<string> | undefined
  /** request bodies over this are refused with 413; default 1 MiB */
  readonly maxBodyBytes?: number | undefined
  /** time allowed to one upstream attempt; default 30 s */
  readonly attemptTimeout?: Duration.Input | undefined
  readonly retry?: RequestRetryOptions | false | undefined
  /** request headers forwarded, beyond the default allow-list (never credentials or hop-by-hop ones) */
  readonly forwardHeaders?: ReadonlyArray<string> | undefined
  /**
   * response headers passed back, beyond the default allow-list (never
   * `Set-Cookie`, `Access-Control-*`, `Refresh`, `Clear-Site-Data`,
   * `Strict-Transport-Security`, hop-by-hop ones)
   */
  readonly responseHeaders?: ReadonlyArray<string> | undefined
  /**
   * the fetch underneath (tests, instrumentation). Default: in Node.js, a
   * fetch over `node:http` that resets the upstream connection of a request
   * given up on; elsewhere the global `fetch`.
   */
  readonly fetch?: typeof globalThis.fetch | undefined
  readonly onEvent?: ((event: RequestEvent) => void) | undefined
  /** see `OnProxyError`; default: one stderr line per 5xx */
  readonly onError?: OnProxyError | undefined
}

/**
 * What per-user mode needs of the sessions (`createUserSessions`'s handle
 * has it).
 *
 * @since 0.2.0
 */
export interface ProxySessions {
  readonly session: (cookie: string | null | undefined) => Promise<{ readonly tokens: Tokens } | undefined>
  readonly checkCsrf: (
    request: { readonly method: string; readonly headers: { get(name: string): string | null | undefined } },
    options?: { readonly header?: string | false | undefined }
  ) => unknown
}

/**
 * What the framework knows about one proxied request beyond the request.
 *
 * @since 0.1.0
 */
export interface ProxyContext {
  /**
   * the mount point as the browser sees it (`/api/benefits`): where a
   * redirect or a link the upstream answers with is rewritten to. Without it,
   * such redirects are refused (502) and such headers dropped.
   */
  readonly mount?: string | undefined
}

/**
 * The proxy as a web handler: `(request, path, context) => response`.
 *
 * @since 0.1.0
 */
export interface ProxyHandler {
  (request: Request, path: string, context?: ProxyContext): Promise<Response>
  /** the methods forwarded, for an `Allow` header */
  readonly methods: ReadonlyArray<string>
}

/**
 * Why the proxy answered with a problem of its own (the core's errors keep
 * their own classes): what was refused, or what the upstream answered.
 *
 * @since 0.1.0
 */
export class ProxyError extends Data.TaggedError("ProxyError")<{
  readonly reason:
    | "method_not_allowed"
    | "path_refused"
    | "path_not_allowed"
    | "body_too_large"
    | "body_unreadable"
    | "upstream_status"
    | "upstream_redirect"
  /** the request method (`method_not_allowed`) */
  readonly method?: string | undefined
  /** why the path was refused (`path_refused`): a fixed phrase */
  readonly check?: string | undefined
  /** the body limit in bytes (`body_too_large`) */
  readonly limit?: number | undefined
  /** the upstream's status (`upstream_status`, `upstream_redirect`) */
  readonly upstreamStatus?: number | undefined
  /** the wait the upstream asked for (`upstream_status` 429) */
  readonly retryAfterMillis?: number | undefined
}> {
  override get message(): string {
    switch (this.reason) {
      case "method_not_allowed":
        return `Proxy refused method ${this.method ?? ""}`.trim()
      case "path_refused":
        return `Proxy refused the path (${this.check ?? "not acceptable"})`
      case "path_not_allowed":
        return "Proxy refused a path outside the allow-list"
      case "body_too_large":
        return `Proxy refused a request body over ${this.limit ?? "the limit of"} bytes`
      case "body_unreadable":
        return "Proxy could not read the request body"
      case "upstream_status":
        return `Upstream answered HTTP ${this.upstreamStatus ?? "?"}`
      case "upstream_redirect":
        return `Upstream redirected (HTTP ${this.upstreamStatus ?? "?"}) outside what the proxy serves`
    }
    return "Proxy refused the request"
  }
}

const DEFAULT_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
/** Methods a web `Request` cannot carry, or that would turn the proxy into a tunnel or a mirror. */
const NEVER_FORWARDED_METHODS = new Set(["CONNECT", "TRACE", "TRACK"])
const DEFAULT_MAX_BODY_BYTES = 1024 * 1024
/** Bodies up to this size (with a known length) are buffered so a 401 can be replayed. */
const REPLAYABLE_BODY_BYTES = 64 * 1024

/** Upstream answers up to this size (with a `Content-Length`) are read whole: no stream per answer. */
const SMALL_BODY_BYTES = 16 * 1024

/** Tokens whose spellings the proxy keeps worked out (per-user mode sees one per user). */
const MAX_SPELLED_TOKENS = 1000
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308])

/**
 * The verdict on a caller-supplied path.
 *
 * @since 0.1.0
 */
export type PathCheck =
  | { readonly ok: true; readonly path: string; readonly search: string }
  | { readonly ok: false; readonly reason: string }

// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it finds
const CONTROL = /[\u0000-\u001f\u007f]/
/** A segment of printable ASCII without blanks: nothing in it for Unicode normalisation or trimming. */
const PLAIN_SEGMENT = /^[\u0021-\u007e]*$/
/** Full stops NFKC leaves as they are (ideographic, halfwidth ideographic). */
const OTHER_FULL_STOPS = /[\u3002\uff61]/g
/** What a trimming or normalising server drops: white space and format characters (zero-width, BOM). */
const IGNORABLE = /[\s\p{Cf}]/gu

/**
 * What an upstream that normalises Unicode (NFKC) or trims blanks would make
 * of a segment: a dot segment (`．．`, `‥`, `.. `), a blank one, or a slash
 * (`／`, `＼`). `undefined` when the segment stays what it is.
 */
const lookAlike = (segment: string): string | undefined => {
  if (PLAIN_SEGMENT.test(segment)) return undefined
  const folded = segment.normalize("NFKC").replace(OTHER_FULL_STOPS, ".").replace(IGNORABLE, "")
  if (folded === "") return "blank segment"
  if (/^\.+$/.test(folded)) return "look-alike dot segment"
  if (/[/\\]/.test(folded)) return "look-alike slash"
  return undefined
}

/**
 * Checks the part of a proxied URL below the mount point (`/v1/x?y=1`): the
 * path must be a plain, relative, normalised path; the query is kept as it
 * is (it goes to the same upstream). Percent-decoding is applied repeatedly
 * (up to 3 times) so that `%252e%252e` is seen as `..` too, and every layer
 * is judged as an upstream that normalises Unicode or trims blanks would read
 * it (`%EF%BC%8E%EF%BC%8E`, `..%20`: refused).
 *
 * @example
 * ```ts
 * BffProxy.checkPath("/v1/consumers/12345?page=2") // { ok: true, path: "/v1/consumers/12345", search: "?page=2" }
 * BffProxy.checkPath("/v1/%2e%2e/admin")           // { ok: false, reason: "dot segment" }
 * BffProxy.checkPath("/v1/..%20/admin")            // { ok: false, reason: "look-alike dot segment" }
 * ```
 *
 * @since 0.1.0
 */
export const checkPath = (raw: string): PathCheck => {
  if (CONTROL.test(raw)) return { ok: false, reason: "control character" }
  const hash = raw.indexOf("#")
  const withoutHash = hash === -1 ? raw : raw.slice(0, hash)
  const q = withoutHash.indexOf("?")
  const path = q === -1 ? withoutHash : withoutHash.slice(0, q)
  const search = q === -1 ? "" : withoutHash.slice(q)
  if (!path.startsWith("/")) return { ok: false, reason: "not an absolute path" }
  if (path.startsWith("//")) return { ok: false, reason: "network-path reference" }
  if (/^\/*[a-zA-Z][a-zA-Z\d+\-.]*:/.test(path)) return { ok: false, reason: "absolute URL" }
  // Decode until stable (bounded): every layer must be as clean as the first.
  let current = path
  for (let layer = 0; layer < 4; layer++) {
    if (current.includes("\\")) return { ok: false, reason: "backslash" }
    if (CONTROL.test(current)) return { ok: false, reason: "control character" }
    if (/\/\/|^\/\//.test(current)) return { ok: false, reason: "empty segment" }
    // `..;x` is `..` to servlet containers (path parameters): judged without them.
    const segments = current
      .split("/")
      .slice(1)
      .map((s) => s.split(";")[0] as string)
    if (segments.some((s) => s === "." || s === "..")) return { ok: false, reason: "dot segment" }
    for (const segment of segments) {
      const reason = lookAlike(segment)
      if (reason !== undefined) return { ok: false, reason }
    }
    if (layer > 0 && /[?#]/.test(current)) return { ok: false, reason: "encoded delimiter" }
    let decoded: string
    try {
      decoded = decodeURIComponent(current)
    } catch {
      // What the upstream receives must be well-formed. Below that, a `%` that is
      // not an escape is a literal one (`100%25` → `100%`): decode the escapes
      // around it and keep judging, as a server that decodes twice would read them.
      const lenient = layer === 0 ? undefined : decodeEscapes(current)
      if (lenient === undefined) return { ok: false, reason: "malformed percent-encoding" }
      decoded = lenient
    }
    if (decoded === current) return { ok: true, path, search }
    // An encoded slash would turn one segment into two upstream.
    if (/%2f/i.test(current)) return { ok: false, reason: "encoded slash" }
    current = decoded
  }
  return { ok: false, reason: "too many encoding layers" }
}

/**
 * Decodes the escapes of a string, leaving a stray `%` (one not followed by
 * two hex digits) as it is; `undefined` when the escapes are not UTF-8 (an
 * overlong `%C0%AE` is a dot to some servers: refused, not guessed at).
 */
const decodeEscapes = (s: string): string | undefined => {
  let malformed = false
  const decoded = s.replace(/(?:%[0-9a-fA-F]{2})+/g, (run) => {
    try {
      return decodeURIComponent(run)
    } catch {
      malformed = true
      return run
    }
  })
  return malformed ? undefined : decoded
}

/** Stands for `**` while the other segments are escaped (a private-use character). */
const GLOBSTAR = "\uE000"

const patternOf = (pattern: string | RegExp): RegExp => {
  if (pattern instanceof RegExp) return pattern
  const source = pattern
    .split("/")
    .map((segment) =>
      segment === "**"
        ? GLOBSTAR
        : segment
            .split("*")
            .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, "\\$&"))
            .join("[^/]*")
    )
    .join("/")
    .split(`/${GLOBSTAR}`)
    .join("(?:/.*)?")
    .split(GLOBSTAR)
    .join(".*")
  return new RegExp(`^${source}$`)
}

/**
 * An RFC 9457 problem response without internals.
 *
 * @example
 * ```ts
 * BffProxy.problem(413, "Content Too Large", "The request body exceeds 1048576 bytes.")
 * ```
 *
 * @since 0.1.0
 */
export const problem = (
  status: number,
  title: string,
  detail: string,
  headers?: Readonly<Record<string, string>>
): Response =>
  new Response(JSON.stringify({ type: "about:blank", title, status, detail }), {
    status,
    headers: { ...headers, "content-type": "application/problem+json", "cache-control": "no-store" }
  })

/**
 * The problem response of an answer (with `Retry-After` when it has one).
 *
 * @example
 * ```ts
 * const answer = BffProxy.problemFor(error)
 * if (answer) return BffProxy.problemResponse(answer)
 * ```
 *
 * @since 0.1.0
 */
export const problemResponse = (
  answer: ProblemAnswer,
  headers?: Readonly<Record<string, string>>
): Response =>
  problem(
    answer.status,
    answer.title,
    answer.detail,
    answer.retryAfter === undefined ? headers : { ...headers, "retry-after": String(answer.retryAfter) }
  )

const answer = (status: number, detail: string, retryAfter?: number): ProblemAnswer => ({
  status,
  title: reasonPhrase(status) ?? (status < 500 ? "Bad Request" : "Internal Server Error"),
  detail,
  ...(retryAfter === undefined ? {} : { retryAfter })
})

const NOT_AUTHENTICATED = answer(502, "The upstream could not be authenticated.")
const REFUSED = answer(502, "The upstream refused our credentials.")
const UNREACHABLE = answer(502, "The upstream could not be reached.")
const UPSTREAM_FAILED = answer(502, "The upstream failed.")
const REDIRECTED = answer(502, "The upstream redirected outside what this proxy serves.")
const TIMEOUT = answer(504, "The upstream did not answer in time.")
const UNAVAILABLE = answer(503, "A service this server depends on is unavailable. Try again later.")
const NOT_CONFIGURED = answer(500, "The server is not configured to call the upstream.")
const NOT_FOUND = answer(404, "No such resource.")
const UNREADABLE = answer(400, "The request body could not be read.")

const SIGN_IN_REQUIRED = answer(401, "Sign in to continue.")
const CROSS_SITE = answer(403, "A state-changing request from another site was refused.")

/** Fixed sentences for a refused sign-in (never the server's text: it came in a URL anyone can craft). */
const forSignInError = (reason: unknown, code: unknown): ProblemAnswer => {
  switch (reason) {
    case "state_missing":
    case "state_unknown":
    case "state_mismatch":
      return answer(
        400,
        "This sign-in is not valid in this browser (expired, completed, or started elsewhere). Sign in again."
      )
    case "authorization_error":
      return code === "access_denied"
        ? answer(400, "The sign-in was cancelled or refused.")
        : answer(400, "The authorization server refused the sign-in.")
    case "issuer_mismatch":
    case "issuer_missing":
      return answer(400, "The sign-in answer did not come from the expected authorization server.")
    case "code_missing":
      return answer(400, "The sign-in answer had no authorization code.")
    case "code_exchange_failed":
      return answer(400, "The authorization code could not be exchanged. Sign in again.")
    case "id_token_missing":
    case "id_token_invalid":
    case "nonce_mismatch":
      return answer(400, "The identity token of the sign-in did not check out. Sign in again.")
    case "return_to_refused":
      return answer(400, "returnTo must be a path of this app.")
    case "invalid_credentials":
      return answer(400, "The username or password is not valid.")
    default:
      return answer(400, "The sign-in was refused.")
  }
}

const fieldOf = (error: unknown, name: string): unknown =>
  typeof error === "object" && error !== null ? (error as Record<string, unknown>)[name] : undefined

const tagOf = (error: unknown): string | undefined => {
  const tag = fieldOf(error, "_tag")
  return typeof tag === "string" ? tag : undefined
}

const seconds = (millis: unknown): number | undefined =>
  typeof millis === "number" && Number.isFinite(millis) && millis >= 0 ? Math.ceil(millis / 1000) : undefined

/**
 * What an upstream status the caller must not see becomes; `undefined` for
 * the statuses passed on (the upstream's answer to what the caller asked).
 */
const forUpstreamStatus = (status: number, retryAfterMillis?: number): ProblemAnswer | undefined => {
  if (status === 401 || status === 403 || status === 407) return REFUSED
  if (status === 408 || status === 504) return TIMEOUT
  if (status === 429) {
    return answer(
      503,
      "The upstream is rate limiting this service. Try again later.",
      seconds(retryAfterMillis)
    )
  }
  if (status >= 500) return UPSTREAM_FAILED
  return undefined
}

const forProxyError = (error: ProxyError): ProblemAnswer => {
  switch (error.reason) {
    case "method_not_allowed":
      return answer(405, `${error.method ?? "This method"} is not forwarded.`)
    case "path_refused":
      return answer(400, `The path is not acceptable (${error.check ?? "refused"}).`)
    case "path_not_allowed":
      return NOT_FOUND
    case "body_too_large":
      return answer(413, `The request body exceeds ${error.limit ?? DEFAULT_MAX_BODY_BYTES} bytes.`)
    case "body_unreadable":
      return UNREADABLE
    case "upstream_redirect":
      return REDIRECTED
    case "upstream_status":
      return forUpstreamStatus(error.upstreamStatus ?? 502, error.retryAfterMillis) ?? UPSTREAM_FAILED
  }
}

/**
 * The one table from errors to problems, for the proxy and for every adapter
 * (Express's `problemDetails`, Next's route wrappers); `undefined` for an
 * error that is not authfetch's (not ours to translate: rethrow it).
 *
 * | error | answer |
 * | --- | --- |
 * | `OAuthError`, `TokenEndpointError`, `InvalidTokenResponseError` (no token for the upstream) | 502 |
 * | `RateLimitedError` (our token budget or the token endpoint throttles us) | 503, `Retry-After` when known |
 * | `TokenStoreError` (the shared token store is down) | 503 |
 * | `RequestTimeoutError`, `RetriesExhaustedError` after a timeout, a `TimeoutError` | 504 |
 * | `RetriesExhaustedError` otherwise, `RedirectError`, a fetch `TypeError` ("fetch failed") | 502 |
 * | upstream `401`, `403`, `407` (`ProblemDetailsError`, or answered to the proxy) | 502 |
 * | upstream `408`, `504` | 504 |
 * | upstream `429` (after the core's retries) | 503 |
 * | upstream 5xx | 502 |
 * | `ProblemDetailsError` other 4xx (the upstream's answer to what the caller asked) | the same status |
 * | `InvalidConfigError` | 500 |
 * | `ProxyError` (a refused request) | 400, 404, 405 or 413 |
 * | `SignInError` (a refused sign-in callback, `returnTo` or password) | 400 |
 * | `SignInRequiredError` (no signed-in user, or their refresh token was refused) | 401 |
 * | `CsrfError` (a state-changing request from another site) | 403 |
 * | `DiscoveryError` (the authorization server's metadata) | 502 |
 *
 * Titles are the HTTP reason phrases; details are fixed sentences (never the
 * upstream's or the token endpoint's text).
 *
 * @example
 * ```ts
 * BffProxy.problemFor(new RequestTimeoutError({ method: "GET", url, timeoutMillis: 30_000 }))
 * // { status: 504, title: "Gateway Timeout", detail: "The upstream did not answer in time." }
 * ```
 *
 * @since 0.1.0
 */
export const problemFor = (error: unknown): ProblemAnswer | undefined => {
  switch (tagOf(error)) {
    case "ProxyError":
      return error instanceof ProxyError ? forProxyError(error) : UPSTREAM_FAILED
    case "OAuthError":
    case "TokenEndpointError":
    case "InvalidTokenResponseError":
      return NOT_AUTHENTICATED
    case "RateLimitedError":
      return answer(
        503,
        "The upstream's token endpoint is rate limiting this service. Try again later.",
        seconds(fieldOf(error, "retryAfterMillis"))
      )
    case "TokenStoreError":
      return UNAVAILABLE
    case "RequestTimeoutError":
      return TIMEOUT
    case "RetriesExhaustedError":
      return tagOf(fieldOf(error, "cause")) === "RequestTimeoutError" ? TIMEOUT : UNREACHABLE
    case "ProblemDetailsError": {
      const status = fieldOf(error, "status")
      if (typeof status !== "number" || !Number.isInteger(status)) return UPSTREAM_FAILED
      return (
        forUpstreamStatus(status) ??
        (status >= 400 && status < 500 ? answer(status, `The upstream answered ${status}.`) : UPSTREAM_FAILED)
      )
    }
    case "InvalidConfigError":
      return NOT_CONFIGURED
    case "SignInError":
      return forSignInError(fieldOf(error, "reason"), fieldOf(error, "code"))
    case "SignInRequiredError":
      return SIGN_IN_REQUIRED
    case "CsrfError":
      return CROSS_SITE
    case "DiscoveryError":
      return answer(502, "The authorization server's metadata could not be used.")
  }
  const name = fieldOf(error, "name")
  if (name === "TimeoutError") return TIMEOUT
  if (name === "RedirectError") return UNREACHABLE
  if (error instanceof TypeError && error.message === "fetch failed") return UNREACHABLE
  return undefined
}

/**
 * The one log line of a problem: status, title and what the error is (its
 * tag, and a `ProxyError`'s reason), nothing else: no message, body, detail,
 * URL, header or token.
 *
 * @example
 * ```ts
 * BffProxy.logLine(new OAuthError({ code: "invalid_client" }), answer) // "502 Bad Gateway (OAuthError)"
 * ```
 *
 * @since 0.1.0
 */
export const logLine = (error: unknown, problem: ProblemAnswer): string => {
  const tag = tagOf(error)
  const name = fieldOf(error, "name")
  const what =
    error instanceof ProxyError
      ? `ProxyError ${error.reason}${error.upstreamStatus === undefined ? "" : ` ${error.upstreamStatus}`}`
      : (tag ?? (typeof name === "string" && /^\w{1,64}$/.test(name) ? name : "error"))
  return `${problem.status} ${problem.title} (${what})`
}

const defaultOnError = (error: unknown, problem: ProblemAnswer): void => {
  if (problem.status >= 500) console.error(`[@authfetch/core] proxy answered ${logLine(error, problem)}`)
}

class BodyTooLarge extends Error {}

/** Counts bytes as they stream, failing the stream past `max`. */
const bounded = (body: ReadableStream<Uint8Array>, max: number): ReadableStream<Uint8Array> => {
  let total = 0
  return body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        total += chunk.byteLength
        if (total > max) controller.error(new BodyTooLarge())
        else controller.enqueue(chunk)
      }
    })
  )
}

const readAll = async (body: ReadableStream<Uint8Array>, max: number): Promise<Uint8Array<ArrayBuffer>> => {
  const chunks: Array<Uint8Array> = []
  let total = 0
  // A reader, not `for await`: the async iterator costs a promise chain more per chunk.
  const reader = body.getReader()
  try {
    for (let next = await reader.read(); !next.done; next = await reader.read()) {
      total += next.value.byteLength
      if (total > max) {
        await reader.cancel().catch(() => {})
        throw new BodyTooLarge()
      }
      chunks.push(next.value)
    }
  } finally {
    reader.releaseLock()
  }
  return concatBytes(chunks, total)
}

const isBodyTooLarge = (error: unknown): boolean => {
  for (let e: unknown = error, depth = 0; e !== undefined && e !== null && depth < 6; depth++) {
    if (e instanceof BodyTooLarge) return true
    e = (e as { cause?: unknown }).cause
  }
  return false
}

/** The mount point if it is a plain path a browser can be sent to (`""` for the root). */
const mountOf = (mount: string | undefined): string | undefined => {
  if (mount === undefined) return undefined
  const trimmed = mount.endsWith("/") ? mount.slice(0, -1) : mount
  if (trimmed === "") return ""
  const checked = checkPath(trimmed)
  return checked.ok && checked.path === trimmed ? trimmed : undefined
}

const isFunction = (value: unknown): boolean => typeof value === "function"

const isSessionWithTokens = (value: unknown): value is { readonly tokens: Tokens } =>
  typeof value === "object" && value !== null && "tokens" in value && !(value instanceof Error)

const isStringList = (value: unknown): value is ReadonlyArray<string> =>
  Array.isArray(value) && value.every((item) => typeof item === "string")

/** Every problem of a proxy configuration, at once (`[]`: none). */
const problemsOf = (options: ProxyOptions): Array<string> => {
  const problems: Array<string> = []
  const tokens = options.tokens as unknown
  const sessions = options.sessions as unknown
  if (sessions !== undefined && sessions !== null) {
    if (tokens !== undefined) problems.push("proxy options `tokens` and `sessions` exclude each other")
    if (!isFunction(fieldOf(sessions, "session")) || !isFunction(fieldOf(sessions, "checkCsrf"))) {
      problems.push("proxy option `sessions` must be user sessions (createUserSessions)")
    }
  } else if (tokens === undefined || tokens === null) {
    problems.push("proxy option `tokens` is missing (a token source; or `sessions` for per-user mode)")
  } else if (
    typeof tokens !== "object" ||
    !(
      (isFunction(fieldOf(tokens, "getToken")) || fieldOf(tokens, "get") !== undefined) &&
      isFunction(fieldOf(tokens, "invalidate"))
    )
  ) {
    problems.push("proxy option `tokens` must be a token source (getToken and invalidate)")
  }
  const upstream = options.baseUrl as unknown
  if (upstream === undefined || upstream === null || upstream === "") {
    problems.push("proxy option `baseUrl` is missing (the API base URL)")
  } else if (typeof upstream !== "string" && !(upstream instanceof URL)) {
    problems.push("proxy option `baseUrl` must be a URL string")
  } else {
    let base: URL | undefined
    try {
      base = new URL(String(upstream))
    } catch {
      problems.push("proxy option `baseUrl` is not an absolute URL")
    }
    if (base !== undefined) {
      if (base.search || base.hash || base.username || base.password) {
        problems.push(
          "proxy option `baseUrl` must be a plain origin and path (no query, fragment or userinfo)"
        )
      } else if (!isSecureOrigin(base.href)) {
        problems.push("proxy option `baseUrl` must be https: (http: only for loopback hosts)")
      }
    }
  }
  const allow = options.allow as unknown
  if (
    allow !== undefined &&
    !(
      Array.isArray(allow) &&
      allow.every((p) => p instanceof RegExp || (typeof p === "string" && p.startsWith("/")))
    )
  ) {
    problems.push("proxy option `allow` must be a list of path patterns starting with / (or RegExps)")
  }
  const methods = options.methods as unknown
  if (methods !== undefined) {
    if (!isStringList(methods) || methods.length === 0 || !methods.every((m) => isFieldName(m))) {
      problems.push("proxy option `methods` must be a non-empty list of method names")
    } else {
      const never = methods.filter((m) => NEVER_FORWARDED_METHODS.has(m.toUpperCase()))
      if (never.length > 0) problems.push(`proxy option \`methods\` cannot include ${never.join(", ")}`)
    }
  }
  const max = options.maxBodyBytes as unknown
  if (max !== undefined && !(typeof max === "number" && Number.isSafeInteger(max) && max >= 0)) {
    problems.push("proxy option `maxBodyBytes` must be a whole number of bytes")
  }
  const timeout = options.attemptTimeout as unknown
  if (timeout !== undefined && (timeout as unknown) !== false) {
    let millis: number | undefined
    try {
      millis = Duration.toMillis(Duration.fromInputUnsafe(timeout as Duration.Input))
    } catch {
      millis = undefined
    }
    if (millis === undefined || !(millis > 0)) {
      problems.push(
        'proxy option `attemptTimeout` must be a positive duration ("30 seconds", or milliseconds)'
      )
    }
  }
  const retry = options.retry as unknown
  if (retry !== undefined && retry !== false && (typeof retry !== "object" || retry === null)) {
    problems.push("proxy option `retry` must be retry options or false")
  }
  for (const [key, never] of [
    ["forwardHeaders", (name: string) => NEVER_FORWARDED.has(name)],
    ["responseHeaders", isNeverPassed]
  ] as const) {
    const names = options[key] as unknown
    if (names === undefined) continue
    if (!isStringList(names) || !names.every(isFieldName)) {
      problems.push(`proxy option \`${key}\` must be a list of header names`)
      continue
    }
    const refused = names.filter((name) => never(name.toLowerCase()))
    if (refused.length > 0) problems.push(`proxy option \`${key}\` cannot include ${refused.join(", ")}`)
  }
  for (const key of ["fetch", "onEvent"] as const) {
    const value = options[key] as unknown
    if (value !== undefined && !isFunction(value)) problems.push(`proxy option \`${key}\` must be a function`)
  }
  const onError = options.onError as unknown
  if (onError !== undefined && onError !== false && !isFunction(onError)) {
    problems.push("proxy option `onError` must be a function or false")
  }
  return problems
}

/**
 * The proxy as a web handler: `(request, path, context) => response`, where
 * `path` is the part of the URL below the mount point, still percent-encoded,
 * with its query (`/v1/consumers/1?x=2`), and `context.mount` the mount point
 * itself (`/benefits`), where redirects and links are rewritten to. Invalid
 * options throw `InvalidConfigError` at once, naming each problem.
 *
 * @example
 * ```ts
 * const handle = BffProxy.createProxyHandler({ tokens, baseUrl, allow: ["/v1/consumers/*"], maxBodyBytes: 10 * 1024 * 1024 })
 * export const GET = (request: Request) =>
 *   handle(request, new URL(request.url).pathname.slice("/api/benefits".length), { mount: "/api/benefits" })
 * ```
 *
 * @since 0.1.0
 */
export const createProxyHandler = (options: ProxyOptions): ProxyHandler => {
  if (typeof options !== "object" || options === null) {
    throw new InvalidConfigError({
      problems: [
        `proxy options must be an object ({ tokens, baseUrl, ... }), got ${options === null ? "null" : typeof options}`
      ]
    })
  }
  const problems = problemsOf(options)
  if (problems.length > 0) throw new InvalidConfigError({ problems })
  const base = new URL(String(options.baseUrl))
  const basePath = base.pathname.replace(/\/+$/, "")
  const allow = options.allow?.map(patternOf)
  const methods = [...new Set((options.methods ?? DEFAULT_METHODS).map((m) => m.toUpperCase()))]
  const methodSet = new Set(methods)
  const allowHeader = methods.join(", ")
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES
  const forwardedNames = [
    ...new Set([...FORWARDED_REQUEST_HEADERS, ...(options.forwardHeaders ?? []).map((h) => h.toLowerCase())])
  ]
  const passed = new Set([
    ...PASSED_RESPONSE_HEADERS,
    ...(options.responseHeaders ?? []).map((h) => h.toLowerCase())
  ])
  const onError = options.onError === false ? undefined : (options.onError ?? defaultOnError)

  // The authorization each upstream response was answered to: the token to keep out of what passes on.
  const usedFor = new WeakMap<Response, string>()
  const transport = options.fetch ?? nodeUpstream() ?? ((input, init) => globalThis.fetch(input, init))
  const recording: typeof globalThis.fetch = async (input, init) => {
    const headers = init?.headers
    const authorization =
      headers instanceof Headers
        ? headers.get("authorization")
        : new Headers(headers ?? (input instanceof Request ? input.headers : undefined)).get("authorization")
    const response = await transport(input, init)
    if (authorization !== null) usedFor.set(response, authorization)
    return response
  }
  const apiOptions = {
    origins: [base.origin],
    retry: withBudget(options.retry),
    attemptTimeout: options.attemptTimeout,
    fetch: recording,
    onEvent: options.onEvent,
    crossOriginRedirects: "refuse"
  } as const
  // Service mode: one fetch for every request. Per-user mode: one per request, over that
  // user's tokens, all sharing one retry budget.
  const serviceApi = options.tokens === undefined ? undefined : authFetch(options.tokens, apiOptions)

  // A route passes the same mount on every request: checked once, not per request.
  let lastMount: { readonly given: string | undefined; readonly checked: string | undefined } | undefined
  const mountFor = (given: string | undefined): string | undefined => {
    if (lastMount === undefined || lastMount.given !== given) lastMount = { given, checked: mountOf(given) }
    return lastMount.checked
  }

  const isAllowed = (encodedPath: string): boolean =>
    allow === undefined || allow.some((pattern) => pattern.test(decodeURIComponent(encodedPath)))

  /** An upstream URL (absolute or relative to `against`) as a path below the mount, if it is one we serve. */
  const toMount = (value: string, against: URL, mount: string | undefined): string | undefined => {
    if (mount === undefined) return undefined
    let url: URL
    try {
      url = new URL(value, against)
    } catch {
      return undefined
    }
    if (url.origin !== base.origin || url.username !== "" || url.password !== "") return undefined
    if (url.pathname !== basePath && !url.pathname.startsWith(`${basePath}/`)) return undefined
    const checked = checkPath(`${url.pathname.slice(basePath.length) || "/"}${url.search}`)
    if (!checked.ok || !isAllowed(checked.path)) return undefined
    return `${mount}${checked.path}${checked.search}`
  }

  // The spellings of each token used, worked out once per token, not per response.
  const spelled = new Map<string, ReadonlyArray<string>>()
  const spellingsOf = (authorization: string): ReadonlyArray<string> => {
    let found = spelled.get(authorization)
    if (found === undefined) {
      found = spellings([authorization, authorization.slice(authorization.indexOf(" ") + 1)])
      if (spelled.size >= MAX_SPELLED_TOKENS) spelled.delete(spelled.keys().next().value as string)
      spelled.set(authorization, found)
    }
    return found
  }
  const secretsOf = (response: Response, tokens: Tokens): ReadonlyArray<string> => {
    const authorization = usedFor.get(response)
    if (authorization !== undefined) return spellingsOf(authorization)
    return spellings([(tokens as { peek?: () => { reveal(): string } | undefined }).peek?.()?.reveal()])
  }

  const responseHeaders = (
    upstream: Headers,
    target: URL,
    mount: string | undefined,
    secrets: ReadonlyArray<string>
  ): Headers => {
    const listed = connectionListed(upstream)
    const out = new Headers()
    for (const [name, value] of upstream) {
      if (listed.has(name) || secrets.some((secret) => value.includes(secret))) continue
      if (name === "location" || name === "content-location") {
        const rewritten = toMount(value, target, mount)
        if (rewritten !== undefined) out.set(name, rewritten)
      } else if (name === "link") {
        const rewritten = rewriteLinks(value, (uri) => toMount(uri, target, mount))
        if (rewritten !== undefined) out.set(name, rewritten)
      } else if (passed.has(name) && !isNeverPassed(name)) {
        out.append(name, value)
      }
    }
    return out
  }

  const handle = async (request: Request, rawPath: string, context?: ProxyContext): Promise<Response> => {
    const refuse = (error: unknown, headers?: Readonly<Record<string, string>>): Response => {
      const answer = problemFor(error) ?? UNREACHABLE
      try {
        onError?.(error, answer, request)
      } catch {
        // a failing logger must not stop the answer
      }
      return problemResponse(answer, headers)
    }
    const method = request.method.toUpperCase()
    if (!methodSet.has(method)) {
      // RFC 9110 15.5.6: a 405 lists the methods that are allowed.
      return refuse(new ProxyError({ reason: "method_not_allowed", method }), { allow: allowHeader })
    }
    let tokens = options.tokens
    let api = serviceApi
    if (options.sessions !== undefined) {
      // Forgery first: a cross-site POST learns nothing, not even whether the user is signed in.
      const forged = options.sessions.checkCsrf(request, { header: options.csrfHeader })
      if (forged !== undefined) return refuse(forged)
      const session = await options.sessions
        .session(request.headers.get("cookie"))
        .catch((error: unknown) => error)
      if (session === undefined) return refuse(new SignInRequiredError({ reason: "no_session" }))
      if (!isSessionWithTokens(session)) return refuse(session)
      tokens = session.tokens
      api = authFetch(tokens, apiOptions)
    }
    if (api === undefined || tokens === undefined)
      return refuse(new InvalidConfigError({ problems: ["no tokens"] }))
    const checked = checkPath(rawPath)
    if (!checked.ok) return refuse(new ProxyError({ reason: "path_refused", check: checked.reason }))
    if (!isAllowed(checked.path)) return refuse(new ProxyError({ reason: "path_not_allowed" }))
    const target = new URL(`${base.origin}${basePath}${checked.path}${checked.search}`)
    // Defence in depth: whatever the path said, the target is under the upstream base.
    if (target.origin !== base.origin || !`${target.pathname}/`.startsWith(`${basePath}/`)) {
      return refuse(new ProxyError({ reason: "path_refused", check: "outside the upstream" }))
    }
    const mount = mountFor(context?.mount)

    const hopByHop = connectionListed(request.headers)
    // A record, not a `Headers`: authFetch makes the one `Headers` of the call from it.
    // No prototype: a configured header named `__proto__` is a header like any other.
    const headers: Record<string, string> = Object.create(null)
    // Asked for by name: iterating a request's headers sorts them all first, per request.
    for (const name of forwardedNames) {
      const value = request.headers.get(name)
      if (value !== null && !hopByHop.has(name)) headers[name] = value
    }

    let body: FetchBody | null = null
    if (request.body !== null && method !== "GET" && method !== "HEAD") {
      const declared = Number(request.headers.get("content-length") ?? Number.NaN)
      if (declared > maxBodyBytes) {
        await request.body.cancel().catch(() => {})
        return refuse(new ProxyError({ reason: "body_too_large", limit: maxBodyBytes }))
      }
      try {
        // Small bodies of known size are buffered so that a 401 can replay them; others stream.
        body =
          declared <= REPLAYABLE_BODY_BYTES
            ? await readAll(request.body, maxBodyBytes)
            : bounded(request.body, maxBodyBytes)
      } catch (error) {
        if (isBodyTooLarge(error))
          return refuse(new ProxyError({ reason: "body_too_large", limit: maxBodyBytes }))
        return refuse(new ProxyError({ reason: "body_unreadable" }))
      }
    }

    let response: Response
    try {
      response = await api(target.href, {
        method,
        headers,
        body,
        signal: request.signal,
        // Never followed here: a redirect goes back to the browser (rewritten) or is refused.
        redirect: "manual",
        ...(body instanceof ReadableStream ? { duplex: "half" } : {})
      } as RequestInit)
    } catch (error) {
      if (request.signal.aborted) throw error
      if (isBodyTooLarge(error))
        return refuse(new ProxyError({ reason: "body_too_large", limit: maxBodyBytes }))
      return refuse(error)
    }

    const status = response.status
    const discard = () => response.body?.cancel().catch(() => {})
    const location = response.headers.get("location")
    if (status >= 300 && status < 400 && location !== null) {
      await discard()
      const rewritten = REDIRECT_STATUSES.has(status) ? toMount(location, target, mount) : undefined
      if (rewritten === undefined) {
        return refuse(new ProxyError({ reason: "upstream_redirect", upstreamStatus: status }))
      }
      const secrets = secretsOf(response, tokens)
      const out = responseHeaders(response.headers, target, mount, secrets)
      out.set("location", rewritten)
      return new Response(null, { status, headers: out })
    }
    if (forUpstreamStatus(status) !== undefined) {
      await discard()
      const retryAfter =
        status === 429
          ? parseRetryAfter(response.headers.get("retry-after"), Date.now(), response.headers.get("date"))
          : undefined
      return refuse(
        new ProxyError({
          reason: "upstream_status",
          upstreamStatus: status,
          retryAfterMillis: retryAfter === undefined ? undefined : Duration.toMillis(retryAfter)
        })
      )
    }
    const secrets = secretsOf(response, tokens)
    const out = responseHeaders(response.headers, target, mount, secrets)
    const init = { status, statusText: reasonPhrase(status) ?? "", headers: out }
    if (method === "HEAD" || response.body === null) return new Response(null, init)
    // A small body of known length (most API answers) is read whole and cleaned at once, and
    // answered with its length: no stream per response each way.
    const declared = Number(response.headers.get("content-length") ?? Number.NaN)
    if (declared <= SMALL_BODY_BYTES && !response.headers.has("content-encoding")) {
      let bytes: Uint8Array
      try {
        bytes = redactBytes(await readAll(response.body, SMALL_BODY_BYTES), secrets)
      } catch (error) {
        if (request.signal.aborted) throw error
        return refuse(new ProxyError({ reason: "upstream_status", upstreamStatus: 502 }))
      }
      out.set("content-length", String(bytes.byteLength))
      return new Response(bytes as Uint8Array<ArrayBuffer>, init)
    }
    // A larger one is piped, not handed over (undici cancels the body of a collected, unconsumed
    // upstream Response, which would cut the stream we return), and the token used is cut out of it.
    return new Response(response.body.pipeThrough(redactStream(secrets)), init)
  }
  return Object.assign(handle, { methods })
}
