/**
 * What a token source reports for observability: WEX asks partners to "log
 * authentication attempts (without exposing credentials)" and to "set up alerts
 * for authentication failures". Events are plain objects with a `type`, a
 * timestamp and the cache key; they carry codes, statuses, durations and token
 * ids (a process-local counter), never a secret, a token or a refresh token.
 *
 * @example
 * ```ts
 * createTokenSource({
 *   ...config,
 *   onEvent: (event) => {
 *     if (event.type === "token_request_failed" && !event.willRetry) pager.alert(event)
 *     logger.info(event)
 *   }
 * })
 * ```
 *
 * @since 0.1.0
 */

/**
 * Why a token was requested.
 *
 * @since 0.1.0
 */
export type AcquireReason = "initial" | "expired" | "invalidated" | "refresh_ahead"

/**
 * @since 0.1.0
 */
export type TokenEvent =
  | {
      readonly type: "token_requested"
      readonly at: number
      readonly key: string
      readonly grantType: string
      readonly reason: AcquireReason
      readonly attempt: number
    }
  | {
      readonly type: "token_acquired"
      readonly at: number
      readonly key: string
      readonly grantType: string
      readonly reason: AcquireReason
      readonly tokenId: number
      readonly expiresInSeconds: number
      readonly scope: string | undefined
      readonly hasRefreshToken: boolean
      readonly durationMillis: number
    }
  | {
      readonly type: "token_request_failed"
      readonly at: number
      readonly key: string
      readonly grantType: string
      readonly error: string
      readonly code: string | undefined
      readonly status: number | undefined
      readonly willRetry: boolean
    }
  | {
      readonly type: "rate_limited"
      readonly at: number
      readonly key: string
      readonly source: "server" | "client"
      readonly waitMillis: number
    }
  | {
      readonly type: "token_invalidated"
      readonly at: number
      readonly key: string
      readonly tokenId: number
    }
  | {
      readonly type: "refresh_failed_serving_cached"
      readonly at: number
      readonly key: string
      readonly tokenId: number
      readonly expiresInMillis: number
      readonly error: string
    }
  | {
      readonly type: "refresh_token_rejected"
      readonly at: number
      readonly key: string
      readonly code: string
    }

/**
 * Calls a listener without letting it break the token source: a listener that
 * throws is ignored (its error may quote anything, so it is not re-reported).
 *
 * @example
 * ```ts
 * emitTo(options.onEvent, { type: "token_invalidated", at: now, key, tokenId: 3 })
 * ```
 *
 * @since 0.1.0
 */
export const emitTo = (listener: ((event: TokenEvent) => void) | undefined, event: TokenEvent): void => {
  if (!listener) return
  try {
    listener(event)
  } catch {
    // A listener's failure is the listener's business.
  }
}

/**
 * What the fetch middleware reports about API requests. `url` is origin and
 * path only: a query string may carry secrets. No headers, no bodies.
 *
 * @since 0.1.0
 */
export type RequestEvent =
  | {
      readonly type: "request_retried"
      readonly at: number
      readonly method: string
      readonly url: string
      /** the attempt that failed, from 1 */
      readonly attempt: number
      readonly status: number | undefined
      readonly error: string | undefined
      readonly delayMillis: number
    }
  | {
      readonly type: "unauthorized_retry"
      readonly at: number
      readonly method: string
      readonly url: string
      readonly tokenId: number
    }
  | {
      readonly type: "unauthorized_not_replayable"
      readonly at: number
      readonly method: string
      readonly url: string
      readonly tokenId: number
    }
  | {
      readonly type: "request_gave_up"
      readonly at: number
      readonly method: string
      readonly url: string
      readonly attempts: number
      readonly reason: "attempts" | "deadline" | "budget" | "not_replayable" | "retry_after_too_long"
      readonly status: number | undefined
    }
  | {
      /**
       * The replay with a token acquired after a `401` was answered `401` too: not a
       * token problem (a path the client may not call, a server fault). The response
       * goes back to the caller; the token is kept.
       */
      readonly type: "unauthorized_after_replay"
      readonly at: number
      readonly method: string
      readonly url: string
      readonly tokenId: number
    }
  | {
      /**
       * A `401` with a token that already failed a replay, within the cooldown after its
       * minting: returned as it is, nothing invalidated, no token requested.
       */
      readonly type: "unauthorized_token_kept"
      readonly at: number
      readonly method: string
      readonly url: string
      readonly tokenId: number
      /** when a `401` with this token may invalidate it again */
      readonly cooldownMillis: number
    }
  | {
      readonly type: "redirect_authorization_dropped"
      readonly at: number
      readonly method: string
      readonly from: string
      readonly to: string
    }

/**
 * Calls a request-event listener; like `emitTo`, a throwing listener is ignored.
 *
 * @example
 * ```ts
 * emitRequestTo(options.onEvent, { type: "unauthorized_retry", at: Date.now(), method: "GET", url, tokenId: 2 })
 * ```
 *
 * @since 0.1.0
 */
export const emitRequestTo = (
  listener: ((event: RequestEvent) => void) | undefined,
  event: RequestEvent
): void => {
  if (!listener) return
  try {
    listener(event)
  } catch {
    // A listener's failure is the listener's business.
  }
}

/**
 * The part of a URL that is safe to report: origin and path.
 *
 * @example
 * ```ts
 * safeUrl(new URL("https://api.example/v1/x?key=s3cret")) // "https://api.example/v1/x"
 * ```
 *
 * @since 0.1.0
 */
export const safeUrl = (url: URL | string): string => {
  try {
    const parsed = typeof url === "string" ? new URL(url) : url
    return `${parsed.origin}${parsed.pathname}`
  } catch {
    return "<invalid url>"
  }
}

/**
 * What the sessions of signed-in users report: sign-ins (and why one was
 * refused), refreshes, sign-outs and their revocation, sessions that ended.
 * `session` is the session's key (a digest of its id, never the id); no
 * event carries a token, a code, a `state`, a password or a cookie value.
 *
 * @since 0.2.0
 */
export type SessionEvent =
  | { readonly type: "sign_in_started"; readonly at: number }
  | {
      readonly type: "signed_in"
      readonly at: number
      readonly session: string
      readonly subject: string | undefined
      readonly grantType: string
      readonly hasRefreshToken: boolean
      readonly expiresInSeconds: number
      readonly durationMillis: number
    }
  | {
      /** a callback or a password sign-in refused (`SignInError.reason`): alert on a run of these */
      readonly type: "sign_in_failed"
      readonly at: number
      readonly reason: string
      readonly code: string | undefined
    }
  | {
      readonly type: "session_refreshed"
      readonly at: number
      readonly session: string
      readonly subject: string | undefined
      /** `refresh_ahead`: the token was still usable; `expired`: a request waited for it */
      readonly reason: "refresh_ahead" | "expired"
      /** the server sent a new refresh token (rotation), already stored */
      readonly rotated: boolean
      readonly durationMillis: number
    }
  | {
      /** a refresh failed on the way (not a refusal of the refresh token: see `session_ended`) */
      readonly type: "session_refresh_failed"
      readonly at: number
      readonly session: string
      readonly error: string
      readonly code: string | undefined
    }
  | {
      readonly type: "session_token_invalidated"
      readonly at: number
      readonly session: string
      readonly tokenId: number
    }
  | {
      readonly type: "session_ended"
      readonly at: number
      readonly session: string
      readonly subject: string | undefined
      readonly reason:
        | "idle_timeout"
        | "absolute_timeout"
        | "refresh_rejected"
        | "no_refresh_token"
        | "id_token_invalid"
    }
  | {
      readonly type: "signed_out"
      readonly at: number
      readonly session: string
      readonly subject: string | undefined
      /** the refresh token (or access token) was revoked at the server (RFC 7009) */
      readonly revoked: boolean
    }
  | {
      readonly type: "revocation_failed"
      readonly at: number
      readonly session: string
      readonly error: string
      readonly code: string | undefined
    }

/**
 * Calls a session-event listener; like `emitTo`, a throwing listener is ignored.
 *
 * @example
 * ```ts
 * emitSessionTo(config.onEvent, { type: "sign_in_started", at: Date.now() })
 * ```
 *
 * @since 0.2.0
 */
export const emitSessionTo = (
  listener: ((event: SessionEvent) => void) | undefined,
  event: SessionEvent
): void => {
  if (!listener) return
  try {
    listener(event)
  } catch {
    // A listener's failure is the listener's business.
  }
}
