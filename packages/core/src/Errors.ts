/**
 * The typed failures of authfetch.
 *
 * Every error is a tagged class (`_tag`, for `Effect.catchTag`) that is also a
 * real `Error` (for `instanceof` in Promise code). None of them ever holds a
 * client secret, an access token or a refresh token: fields are codes, statuses,
 * durations and server-written descriptions, and `cause`s from the transport are
 * reduced to their message before they are stored (an HTTP client error carries
 * the request, whose body holds `client_secret`).
 *
 * @example
 * ```ts
 * import { OAuthError } from "@authfetch/core"
 *
 * try {
 *   await tokens.getToken()
 * } catch (err) {
 *   if (err instanceof OAuthError && err.code === "invalid_client") alertOps(err.message)
 * }
 * ```
 *
 * @since 0.1.0
 */
import { Data } from "effect"

const describeCause = (cause: unknown): string | undefined => {
  if (cause === undefined || cause === null) return undefined
  if (cause instanceof Error) {
    const code = (cause as { code?: unknown }).code
    const inner = (cause as { cause?: unknown }).cause
    const innerText = inner instanceof Error ? describeCause(inner) : undefined
    return [typeof code === "string" ? code : undefined, cause.message, innerText].filter(Boolean).join(": ")
  }
  return typeof cause === "string" ? cause : undefined
}

/**
 * The error codes of the OAuth 2.0 specifications, for completion and
 * exhaustive checks; a server's own code is any other string.
 *
 * - RFC 6749 5.2 (token endpoint): `invalid_request`, `invalid_client`,
 *   `invalid_grant`, `unauthorized_client`, `unsupported_grant_type`, `invalid_scope`
 * - RFC 6749 4.1.2.1 (authorization endpoint): `access_denied`,
 *   `unsupported_response_type`, `server_error`, `temporarily_unavailable`
 * - RFC 6750 3.1 (resource server): `invalid_token`, `insufficient_scope`
 * - RFC 7009 2.2.1 (revocation): `unsupported_token_type`
 * - RFC 9449 (DPoP): `invalid_dpop_proof`, `use_dpop_nonce`
 * - RFC 8628 3.5 (device grant): `authorization_pending`, `slow_down`, `expired_token`
 * - RFC 8707 2 (resource indicators): `invalid_target`
 *
 * @since 0.1.0
 */
export type OAuthErrorCode =
  | "invalid_request"
  | "invalid_client"
  | "invalid_grant"
  | "unauthorized_client"
  | "unsupported_grant_type"
  | "invalid_scope"
  | "access_denied"
  | "unsupported_response_type"
  | "server_error"
  | "temporarily_unavailable"
  | "invalid_token"
  | "insufficient_scope"
  | "unsupported_token_type"
  | "invalid_dpop_proof"
  | "use_dpop_nonce"
  | "authorization_pending"
  | "slow_down"
  | "expired_token"
  | "invalid_target"
  | (string & {})

/**
 * The authorization server answered with an RFC 6749 section 5.2 error
 * (`invalid_client`, `invalid_grant`, `unsupported_grant_type`, `invalid_scope`,
 * `invalid_request`, `unauthorized_client`, or an extension code).
 *
 * @example
 * ```ts
 * if (err instanceof OAuthError && err.code === "invalid_grant") promptLogin()
 * ```
 *
 * @since 0.1.0
 */
export class OAuthError extends Data.TaggedError("OAuthError")<{
  /** RFC 6749 5.2 `error` */
  readonly code: OAuthErrorCode
  /** RFC 6749 5.2 `error_description`, as the server wrote it */
  readonly description?: string | undefined
  /** RFC 6749 5.2 `error_uri` */
  readonly uri?: string | undefined
  /** HTTP status of the token response */
  readonly status: number
}> {
  override get message(): string {
    return `OAuth token request failed: ${this.code}${this.description ? ` (${this.description})` : ""} [HTTP ${this.status}]`
  }
}

/**
 * The token endpoint refused with `429 Too Many Requests`, or the client-side
 * limit on token requests would have been exceeded and waiting was not allowed.
 *
 * @example
 * ```ts
 * if (err instanceof RateLimitedError) console.warn(`retry in ${err.retryAfterMillis} ms`)
 * ```
 *
 * @since 0.1.0
 */
export class RateLimitedError extends Data.TaggedError("RateLimitedError")<{
  /** milliseconds the server (or the local limiter) asked us to wait, if known */
  readonly retryAfterMillis?: number | undefined
  readonly source: "server" | "client"
  readonly status?: number | undefined
}> {
  override get message(): string {
    const wait = this.retryAfterMillis === undefined ? "" : ` (retry after ${this.retryAfterMillis} ms)`
    return this.source === "server"
      ? `Token endpoint rate limit reached: HTTP 429${wait}`
      : `Client-side token request limit reached${wait}`
  }
}

/**
 * The token endpoint could not be reached or failed on its side: a transport
 * error, a timeout, a 5xx, or a non-OAuth error status. Retried with backoff
 * before it reaches a caller.
 *
 * @example
 * ```ts
 * if (err instanceof TokenEndpointError && err.reason === "transport") checkNetwork()
 * ```
 *
 * @since 0.1.0
 */
export class TokenEndpointError extends Data.TaggedError("TokenEndpointError")<{
  /** `redirect`: the endpoint answered 3xx, which a token request never follows (not retried) */
  readonly reason: "transport" | "timeout" | "status" | "redirect"
  readonly status?: number | undefined
  /**
   * a short, secret-free account of the failure: the transport's error, or the
   * `detail` of an error body that is not an OAuth error (problem+json, a
   * gateway's JSON), with every value the request carried removed
   */
  readonly detail?: string | undefined
  /** the `title` of such an error body (RFC 9457), scrubbed likewise */
  readonly title?: string | undefined
}> {
  /** @internal */
  static fromCause(reason: "transport" | "timeout", cause: unknown): TokenEndpointError {
    return new TokenEndpointError({ reason, detail: describeCause(cause) })
  }

  /** @internal A caller's wait for a token ran past its bound (the request goes on for others). */
  static waitTimedOut(): TokenEndpointError {
    return new TokenEndpointError({ reason: "timeout", detail: "waiting for a token" })
  }

  override get message(): string {
    const detail = this.detail ? `: ${this.detail}` : ""
    if (this.reason === "timeout") return `Token request timed out${detail}`
    if (this.reason === "transport") return `Token endpoint unreachable${detail}`
    if (this.reason === "redirect")
      return `Token endpoint answered HTTP ${this.status}${detail}; token requests never follow redirects`
    const title = this.title ? ` ${this.title}` : ""
    return `Token endpoint answered HTTP ${this.status}${title}${detail}`
  }
}

/**
 * The token endpoint answered 2xx with something that is not a usable RFC 6749
 * section 5.1 token response: not JSON, too large, no `access_token`, a negative
 * or non-numeric `expires_in`. The `reason` names the field, never its value.
 *
 * @example
 * ```ts
 * if (err instanceof InvalidTokenResponseError) console.error(err.reason)
 * ```
 *
 * @since 0.1.0
 */
export class InvalidTokenResponseError extends Data.TaggedError("InvalidTokenResponseError")<{
  readonly reason: string
  readonly status: number
}> {
  override get message(): string {
    return `Invalid token response (HTTP ${this.status}): ${this.reason}`
  }
}

/**
 * The configuration cannot work: a missing client id, a token URL that is not
 * `https:` (plain `http:` is allowed for loopback hosts only), a bad option.
 *
 * @example
 * ```ts
 * createTokenSource({ tokenUrl: "http://auth.example.com/token", clientId: "x" }) // throws InvalidConfigError
 * ```
 *
 * @since 0.1.0
 */
export class InvalidConfigError extends Data.TaggedError("InvalidConfigError")<{
  readonly problems: ReadonlyArray<string>
}> {
  override get message(): string {
    return `Invalid authfetch configuration: ${this.problems.join("; ")}`
  }
}

/**
 * Any failure of a token request, as seen by a caller of `getToken`; for a
 * signed-in user's tokens also `SignInRequiredError` (the session is gone, or
 * its refresh token was refused).
 *
 * @since 0.1.0
 */
export type TokenError =
  | OAuthError
  | RateLimitedError
  | TokenEndpointError
  | InvalidTokenResponseError
  | InvalidConfigError
  | TokenStoreError
  | SignInRequiredError

/**
 * A shared `TokenStore` (Redis, a database) failed. The memory store never
 * fails. Carries the store's own account, which must not include values.
 *
 * @example
 * ```ts
 * if (err instanceof TokenStoreError) metrics.increment("token_store_failure")
 * ```
 *
 * @since 0.1.0
 */
export class TokenStoreError extends Data.TaggedError("TokenStoreError")<{
  readonly operation: "get" | "set" | "invalidate" | "lock" | "delete" | "take"
  readonly detail?: string | undefined
  /** which store: a `TokenStore` (the default) or the `SessionStore` of signed-in users */
  readonly store?: "token" | "session" | undefined
}> {
  override get message(): string {
    const store = this.store === "session" ? "Session" : "Token"
    return `${store} store ${this.operation} failed${this.detail ? `: ${this.detail}` : ""}`
  }
}

/**
 * One attempt of an API request took longer than the configured timeout. The
 * request was aborted. Retried like a network error when the request is
 * idempotent.
 *
 * @example
 * ```ts
 * if (err instanceof RequestTimeoutError) console.warn(`${err.method} ${err.url} took over ${err.timeoutMillis} ms`)
 * ```
 *
 * @since 0.1.0
 */
export class RequestTimeoutError extends Data.TaggedError("RequestTimeoutError")<{
  readonly method: string
  /** origin and path, without query or fragment */
  readonly url: string
  readonly timeoutMillis: number
}> {
  override get message(): string {
    return `${this.method} ${this.url} timed out after ${this.timeoutMillis} ms`
  }
}

/**
 * An API request failed on the network (or timed out) and retrying gave up:
 * attempts used up, the total deadline reached, or the shared retry budget
 * empty (an outage must not multiply traffic). `cause` is the last failure.
 *
 * @example
 * ```ts
 * if (err instanceof RetriesExhaustedError && err.reason === "budget") circuitOpen()
 * ```
 *
 * @since 0.1.0
 */
export class RetriesExhaustedError extends Data.TaggedError("RetriesExhaustedError")<{
  readonly method: string
  /** origin and path, without query or fragment */
  readonly url: string
  readonly attempts: number
  readonly reason: "attempts" | "deadline" | "budget"
  readonly cause: unknown
}> {
  override get message(): string {
    const why =
      this.reason === "budget"
        ? "retry budget exhausted"
        : this.reason === "deadline"
          ? "deadline reached"
          : "no attempts left"
    return `${this.method} ${this.url} failed after ${this.attempts} attempt(s) (${why}): ${describeCause(this.cause) ?? "unknown error"}`
  }
}

/**
 * A redirect could not be followed: too many hops, redirect mode `"error"`, a
 * `Location` that is not a URL or not HTTP(S). A `TypeError`, as fetch
 * reports redirect failures (Fetch standard, HTTP-redirect fetch), with a
 * `reason`; never retried (the answer would be the same).
 *
 * @example
 * ```ts
 * if (err instanceof RedirectError && err.reason === "too_many") console.error("redirect loop")
 * ```
 *
 * @since 0.1.0
 */
export class RedirectError extends TypeError {
  override readonly name = "RedirectError"
  readonly reason: "too_many" | "mode_error" | "invalid_location" | "unsupported_scheme"

  constructor(reason: RedirectError["reason"], message: string) {
    super(`fetch failed: ${message}`)
    this.reason = reason
  }
}

/**
 * Why a sign-in (authorization code flow) was refused: its callback did not
 * belong to a sign-in this browser started, the authorization server
 * answered with an error, or what the token endpoint returned did not check
 * out. Nothing was stored. `detail` is a fixed sentence; `code` and
 * `description` are the server's (RFC 6749 4.1.2.1 or 5.2), `description`
 * cut to 200 printable characters (it arrived in a URL anyone can craft).
 *
 * @example
 * ```ts
 * if (err instanceof SignInError && err.reason === "authorization_error" && err.code === "access_denied") showCancelled()
 * ```
 *
 * @since 0.2.0
 */
export class SignInError extends Data.TaggedError("SignInError")<{
  readonly reason: /** the callback has no `state` */
    | "state_missing"
    /** no sign-in under way has this `state` (expired, already completed, or never started) */
    | "state_unknown"
    /** the sign-in with this `state` was started by another browser (its cookie does not match) */
    | "state_mismatch"
    /** the authorization server answered `error=...` (RFC 6749 4.1.2.1) */
    | "authorization_error"
    /** `iss` names another server (RFC 9207: a mix-up) */
    | "issuer_mismatch"
    /** the server says it sends `iss` and did not (RFC 9207 2.4) */
    | "issuer_missing"
    /** the callback has no `code` */
    | "code_missing"
    /** the token endpoint refused the code (`code`: its OAuth error) or could not be reached */
    | "code_exchange_failed"
    /** the scope asked for `openid` and the token response had no `id_token` */
    | "id_token_missing"
    /** the ID token failed a check of OIDC Core 3.1.3.7 (`detail` names the claim) */
    | "id_token_invalid"
    /** the ID token's `nonce` is not the one this sign-in sent */
    | "nonce_mismatch"
    /** `returnTo` is not a path of this app (an open redirect) */
    | "return_to_refused"
    /** the credentials of a password sign-in were refused (`invalid_grant`) */
    | "invalid_credentials"
  readonly detail?: string | undefined
  /** the OAuth error code, for `authorization_error` and `code_exchange_failed` */
  readonly code?: string | undefined
  /** the server's `error_description`, cut and cleaned */
  readonly description?: string | undefined
}> {
  override get message(): string {
    const code = this.code ? ` ${this.code}` : ""
    const description = this.description ? ` (${this.description})` : ""
    const detail = this.detail ? `: ${this.detail}` : ""
    return `Sign-in refused, ${this.reason}${code}${description}${detail}`
  }
}

/**
 * The request has no signed-in user with usable tokens: no session cookie, a
 * session that expired (idle or absolute lifetime) or was signed out, or a
 * refresh token the server refused (`invalid_grant`: revoked, expired,
 * reused). The user has to sign in again; the session, if any, is gone.
 *
 * @example
 * ```ts
 * if (err instanceof SignInRequiredError) return res.redirect(`/auth/signin?returnTo=${encodeURIComponent(req.originalUrl)}`)
 * ```
 *
 * @since 0.2.0
 */
export class SignInRequiredError extends Data.TaggedError("SignInRequiredError")<{
  readonly reason: "no_session" | "session_expired" | "refresh_rejected" | "no_refresh_token"
}> {
  override get message(): string {
    const why = {
      no_session: "no session",
      session_expired: "the session expired",
      refresh_rejected: "the authorization server refused the refresh token",
      no_refresh_token: "the access token expired and there is no refresh token"
    }[this.reason]
    return `Sign-in required: ${why}`
  }
}

/**
 * A state-changing request that may come from another site was refused
 * (cross-site request forgery): its `Sec-Fetch-Site` or `Origin` names
 * another site, or it lacks the header that only a same-origin script can
 * add. See `Csrf`.
 *
 * @example
 * ```ts
 * if (err instanceof CsrfError) res.status(403).end()
 * ```
 *
 * @since 0.2.0
 */
export class CsrfError extends Data.TaggedError("CsrfError")<{
  readonly reason: "cross_site" | "origin_mismatch" | "header_missing" | "no_origin"
}> {
  override get message(): string {
    return `Cross-site request refused (${this.reason})`
  }
}

/**
 * An issuer's metadata (RFC 8414, OpenID Connect Discovery) could not be used:
 * unreachable, an error status or a redirect, not JSON, an `issuer` that is
 * not the one asked for (`issuer_mismatch`: trusting it would let one server
 * speak for another), or an endpoint that is not `https:`.
 *
 * @example
 * ```ts
 * if (err instanceof DiscoveryError && err.reason === "issuer_mismatch") alertOps(err.message)
 * ```
 *
 * @since 0.2.0
 */
export class DiscoveryError extends Data.TaggedError("DiscoveryError")<{
  readonly reason: "transport" | "timeout" | "status" | "invalid_metadata" | "issuer_mismatch"
  readonly status?: number | undefined
  readonly detail?: string | undefined
}> {
  override get message(): string {
    const status = this.status === undefined ? "" : ` HTTP ${this.status}`
    return `Authorization server metadata unusable: ${this.reason}${status}${this.detail ? ` (${this.detail})` : ""}`
  }
}
