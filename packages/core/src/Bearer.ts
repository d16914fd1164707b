/**
 * Where a token meets a request: the bearer token is attached only to the
 * origins the user allowed, redirects are followed here (not by fetch) so that
 * `Authorization` never reaches another origin, and a `401` invalidates exactly
 * the token that was used and replays the request once with a fresh one.
 *
 * Why redirects are followed here: fetch implementations and Effect's own
 * `HttpClient.followRedirects` have differed on whether `Authorization`
 * survives a cross-origin redirect. Following them ourselves makes the rule
 * ours: the token is set per hop, for allowed origins only, and the caller's
 * own `Authorization`, `Cookie` and `Proxy-Authorization` headers are dropped
 * when a hop changes origin (Fetch standard, HTTP-redirect fetch).
 *
 * @example
 * ```ts
 * const handler = Bearer.authorizing(tokens, { origins: ["https://api.example.com"] })(wireOf(fetch))
 * ```
 *
 * @since 0.1.0
 */
import { Clock, Duration, Effect } from "effect"
import { RedirectError, type RequestTimeoutError, TokenEndpointError, type TokenError } from "./Errors.ts"
import { emitRequestTo, type RequestEvent, safeUrl } from "./Events.ts"
import {
  canReplay,
  discard,
  type FirstSend,
  type Handler,
  type Outgoing,
  SendError,
  takeBody,
  toInit,
  type Wire
} from "./internal/outgoing.ts"
import { redactStream, redactText, spellings } from "./internal/redact.ts"
import type { FetchRedirect } from "./internal/webTypes.ts"
import type { AccessToken } from "./Token.ts"

/**
 * What the middleware needs of a token source: the Effect service
 * (`TokenSource.Shape`) has exactly this shape.
 *
 * @since 0.1.0
 */
export interface TokenAccess {
  readonly get: Effect.Effect<AccessToken, TokenError>
  readonly invalidate: (token: AccessToken) => Effect.Effect<void>
  /** `get` bounded in time, failing fast when the token budget is spent (see `TokenSource.Shape`) */
  readonly getWithin?: ((maxWaitMillis: number) => Effect.Effect<AccessToken, TokenError>) | undefined
}

/**
 * @since 0.1.0
 */
export interface BearerOptions {
  /** origins (`https://api.example.com`) or URLs whose origin is taken; the token goes nowhere else */
  readonly origins: ReadonlyArray<string | URL>
  /** redirect hops followed; default 20, as in the Fetch standard */
  readonly maxRedirects?: number | undefined
  /**
   * `"refuse"` hands a redirect to another origin back as the response
   * instead of following it (a proxy must not fetch wherever its upstream
   * points); default `"follow"` (without the token).
   */
  readonly crossOriginRedirects?: "follow" | "refuse" | undefined
  /**
   * The longest wait for a token before a request fails (`RateLimitedError` when the
   * client's token budget is what it waits for); default: no bound
   */
  readonly maxTokenWait?: Duration.Input | undefined
  /**
   * After a replay with a newly acquired token was answered `401` too, further `401`s
   * with that token are returned as they are, without invalidating it or requesting
   * another, for this long after its minting. Default 10 s. Why: a path that always
   * answers `401` would otherwise spend a token request per call (WEX: 100 a minute).
   */
  readonly unauthorizedCooldown?: Duration.Input | undefined
  readonly onEvent?: ((event: RequestEvent) => void) | undefined
}

/**
 * `get`, failing with `TokenEndpointError` (`timeout`) after `maxWaitMillis`:
 * the bound for a token source that cannot fail fast itself.
 *
 * @example
 * ```ts
 * const token = yield* Bearer.waitAtMost(tokens.get, 5_000)
 * ```
 *
 * @since 0.1.0
 */
export const waitAtMost = (
  get: Effect.Effect<AccessToken, TokenError>,
  maxWaitMillis: number
): Effect.Effect<AccessToken, TokenError> =>
  Effect.timeoutOrElse(get, {
    duration: Duration.millis(maxWaitMillis),
    orElse: () => Effect.fail(TokenEndpointError.waitTimedOut())
  })

/** Default `unauthorizedCooldown`. */
export const DEFAULT_UNAUTHORIZED_COOLDOWN: Duration.Duration = Duration.seconds(10)

/**
 * Tokens whose replay after a `401` was answered `401` too, and when. Keyed by
 * the token object, which every request of one source shares; forgotten with it.
 */
const failedReplays = new WeakMap<AccessToken, number>()

/** Fetch standard: the redirect statuses. */
const REDIRECTS = new Set([301, 302, 303, 307, 308])
/** Fetch standard, HTTP-redirect fetch step 13: request-body-header names. */
const BODY_HEADERS = [
  "content-encoding",
  "content-language",
  "content-location",
  "content-type",
  "content-length"
]
/** Credentials of the caller that must not follow a request to another origin. */
const CREDENTIAL_HEADERS = ["authorization", "cookie", "proxy-authorization"]

/**
 * The allowed-origin check, built once.
 *
 * @example
 * ```ts
 * Bearer.originMatcher(["https://api.example.com/v1"])(new URL("https://api.example.com/x")) // true
 * ```
 *
 * @since 0.1.0
 */
export const originMatcher = (origins: ReadonlyArray<string | URL>): ((url: URL) => boolean) => {
  const allowed = [
    ...new Set(
      origins
        .map((origin) => new URL(String(origin)))
        .filter((url) => url.protocol === "https:" || url.protocol === "http:")
        .map((url) => url.origin)
    )
  ]
  // On the href, not `url.origin` (a new string on every read, on the hot path):
  // an http(s) href is its origin, then "/" (or userinfo first, never allowed).
  return (url) => {
    const href = url.href
    return allowed.some((origin) => href.startsWith(origin) && href.charCodeAt(origin.length) === SLASH)
  }
}

const SLASH = 0x2f

/**
 * Whether the authorization step has more to do with the first response to a
 * request it authorized: a `401` (invalidate, replay) or a redirect to follow
 * (any redirect mode but `"manual"`). Anything else it hands back as it is.
 *
 * @example
 * ```ts
 * Bearer.actsOn(response, "follow") // true for a 401 or a 302 with a Location
 * ```
 *
 * @since 0.1.0
 */
export const actsOn = (response: Response, redirect: FetchRedirect): boolean =>
  response.status === 401 ||
  (redirect !== "manual" && REDIRECTS.has(response.status) && response.headers.has("location"))

const sameOrigin = (location: string, base: URL): boolean => {
  try {
    return new URL(location, base).origin === base.origin
  } catch {
    return false
  }
}

/**
 * The mark of a `Response` whose wire removed the token itself (an adapter whose
 * client keeps the body elsewhere, as axios does in `response.data`): `withoutToken`
 * hands it back as it is.
 *
 * @example
 * ```ts
 * Object.defineProperty(response, Bearer.TOKEN_REMOVED, { value: true })
 * ```
 *
 * @since 0.1.0
 */
export const TOKEN_REMOVED: unique symbol = Symbol.for("@authfetch/core/Bearer/tokenRemoved")

/**
 * `data` with every spelling of `token` (a value) replaced by `<redacted>`: strings,
 * bytes (an ASCII token is found in any encoding that keeps ASCII), parsed JSON
 * (arrays and plain objects, deeply) and web streams; anything else as it is.
 *
 * @example
 * ```ts
 * error.response.data = Bearer.removeToken(error.response.data, token.reveal())
 * ```
 *
 * @since 0.1.0
 */
export const removeToken = <A>(data: A, token: string): A => {
  const secrets = spellings([token])
  const clean = (value: unknown, depth: number): unknown => {
    if (typeof value === "string") return redactText(value, secrets)
    if (value instanceof Uint8Array) {
      // one character per byte and back: binary data survives unchanged
      const text = binaryString(value)
      const cleaned = redactText(text, secrets)
      if (cleaned === text) return value
      const bytes = Uint8Array.from(cleaned, (c) => c.charCodeAt(0))
      return value.constructor === Uint8Array
        ? bytes
        : Object.setPrototypeOf(bytes, Object.getPrototypeOf(value))
    }
    if (value instanceof ArrayBuffer) return (clean(new Uint8Array(value), depth) as Uint8Array).buffer
    if (value instanceof ReadableStream) return value.pipeThrough(redactStream(secrets))
    if (depth > 32 || value === null || typeof value !== "object") return value
    if (Array.isArray(value)) return value.map((item) => clean(item, depth + 1))
    if (Object.getPrototypeOf(value) !== Object.prototype) return value
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, clean(item, depth + 1)]))
  }
  return clean(data, 0) as A
}

/** Each byte as the character of that code (not a text decoding: every byte survives). */
const binaryString = (bytes: Uint8Array): string => {
  let text = ""
  for (let i = 0; i < bytes.length; i += 8192) {
    text += String.fromCharCode(...bytes.subarray(i, i + 8192))
  }
  return text
}

/**
 * An error answer to a request that carried `token`, with every spelling of the token
 * cut out of its headers and of its body as it streams: an API that echoes the bearer token (a debug page,
 * a careless gateway) must not get it into an `HTTPError`, an `AxiosError` or a log.
 * Successful answers are the API's data and are handed back untouched.
 *
 * @example
 * ```ts
 * const safe = Bearer.withoutToken(response, token)
 * ```
 *
 * @since 0.1.0
 */
export const withoutToken = (response: Response, token: AccessToken): Response => {
  if (response.ok || (response.status >= 300 && response.status < 400)) return response
  if ((response as { [TOKEN_REMOVED]?: boolean })[TOKEN_REMOVED] === true) return response
  const secrets = spellings([token.reveal()])
  const headers = new Headers()
  for (const [name, value] of response.headers) {
    // the length changes with every cut; a challenge or a debug header may quote the token
    if (name !== "content-length") headers.append(name, redactText(value, secrets))
  }
  const body = response.body === null ? null : response.body.pipeThrough(redactStream(secrets))
  const cleaned = new Response(body, {
    status: response.status,
    statusText: response.statusText,
    headers
  })
  // what a constructed Response cannot be given: where the answer came from
  Object.defineProperty(cleaned, "url", { value: response.url })
  Object.defineProperty(cleaned, "redirected", { value: response.redirected })
  return cleaned
}

const redirectFailure = (reason: RedirectError["reason"], message: string) =>
  new SendError({ cause: new RedirectError(reason, message) })

/**
 * The authorization step: a handler over the wire that attaches tokens,
 * follows redirects and recovers from a `401` once. A request that already
 * carries an `Authorization` header, or goes to an origin not allowed, is sent
 * without our token (redirects still followed by the same rules).
 *
 * @example
 * ```ts
 * const handler = Bearer.authorizing(tokenSource, { origins: [baseUrl] })(wireOf(fetch))
 * const response = yield* handler(outgoing)
 * ```
 *
 * @since 0.1.0
 */
export const authorizing = (tokens: TokenAccess, options: BearerOptions) => {
  const isAllowed = originMatcher(options.origins)
  const maxRedirects = options.maxRedirects ?? 20
  const cooldownMillis = Duration.toMillis(
    Duration.fromInputUnsafe(options.unauthorizedCooldown ?? DEFAULT_UNAUTHORIZED_COOLDOWN)
  )
  const maxWait =
    options.maxTokenWait === undefined
      ? undefined
      : Duration.toMillis(Duration.fromInputUnsafe(options.maxTokenWait))
  // The wait for a token is bounded like the request: a spent budget fails fast.
  const getToken: Effect.Effect<AccessToken, TokenError> =
    maxWait === undefined
      ? tokens.get
      : tokens.getWithin
        ? tokens.getWithin(maxWait)
        : waitAtMost(tokens.get, maxWait)

  return (wire: Wire): Handler<SendError | RequestTimeoutError | TokenError> => {
    // One logical send: every redirect hop, the token set or removed per hop.
    const sendFollowing = (
      outgoing: Outgoing,
      token: AccessToken | undefined,
      alreadySent?: FirstSend["result"]
    ) =>
      Effect.gen(function* () {
        let url = outgoing.url
        let method = outgoing.method
        let body = takeBody(outgoing)
        const headers = new Headers(outgoing.headers)
        for (let hop = 0; ; hop++) {
          const authorized = token !== undefined && isAllowed(url)
          // Set or cleared per hop: a token only ever goes to an allowed origin.
          if (authorized) headers.set("authorization", token.authorization())
          else if (token !== undefined) headers.delete("authorization")
          const response =
            hop === 0 && alreadySent !== undefined
              ? yield* alreadySent
              : yield* wire(
                  outgoing,
                  url,
                  // A one-shot stream is sent with redirect "error": undici copies a request
                  // whose redirect mode is not "error", buffering a stream body in full until
                  // the response (nodejs/undici#4058); and such a body could not follow a
                  // 307/308 anyway.
                  toInit(outgoing, {
                    method,
                    headers,
                    body,
                    redirect: outgoing.body.kind === "once" && body !== null ? "error" : "manual"
                  })
                )
          const location = response.headers.get("location")
          if (outgoing.redirect === "manual" || !REDIRECTS.has(response.status) || location === null) {
            return { response, authorized }
          }
          if (options.crossOriginRedirects === "refuse" && !sameOrigin(location, url))
            return { response, authorized }
          yield* discard(response)
          if (outgoing.redirect === "error")
            return yield* redirectFailure("mode_error", 'redirect with redirect mode "error"')
          if (hop >= maxRedirects) return yield* redirectFailure("too_many", "too many redirects")
          let next: URL
          try {
            next = new URL(location, url)
          } catch {
            return yield* redirectFailure("invalid_location", "invalid redirect location")
          }
          if (next.protocol !== "http:" && next.protocol !== "https:") {
            return yield* redirectFailure("unsupported_scheme", "redirect to a non-HTTP(S) URL")
          }
          // Fetch standard, HTTP-redirect fetch step 12.
          if (
            ((response.status === 301 || response.status === 302) && method === "POST") ||
            (response.status === 303 && method !== "GET" && method !== "HEAD")
          ) {
            method = "GET"
            body = null
            for (const name of BODY_HEADERS) headers.delete(name)
          } else if (body !== null) {
            // 307/308 resend the body; a one-shot stream cannot be: hand back the redirect.
            if (!canReplay(outgoing)) return { response, authorized }
            body = takeBody(outgoing)
          }
          if (next.origin !== url.origin) {
            for (const name of CREDENTIAL_HEADERS) headers.delete(name)
            if (authorized && !isAllowed(next)) {
              emitRequestTo(options.onEvent, {
                type: "redirect_authorization_dropped",
                at: Date.now(),
                method,
                from: url.origin,
                to: next.origin
              })
            }
          }
          url = next
        }
      })

    return (outgoing) =>
      Effect.gen(function* () {
        // A first hop already sent by authFetch's fast path is answered here, once.
        const handedOver = outgoing.first
        outgoing.first = undefined
        if (handedOver === undefined && (!isAllowed(outgoing.url) || outgoing.headers.has("authorization"))) {
          return (yield* sendFollowing(outgoing, undefined)).response
        }
        const token = handedOver?.token ?? (yield* getToken)
        const first = yield* sendFollowing(outgoing, token, handedOver?.result)
        if (first.response.status !== 401 || !first.authorized) {
          return first.authorized ? withoutToken(first.response, token) : first.response
        }
        const event = {
          at: Date.now(),
          method: outgoing.method,
          url: safeUrl(outgoing.url),
          tokenId: token.id
        }
        // This token already failed a replay: the 401s are not about the token. Within
        // the cooldown, spend nothing on them (no invalidation, no token request).
        const failedAt = failedReplays.get(token)
        if (failedAt !== undefined) {
          const left = token.receivedAt + cooldownMillis - (yield* Clock.currentTimeMillis)
          if (left > 0) {
            emitRequestTo(options.onEvent, {
              type: "unauthorized_token_kept",
              ...event,
              cooldownMillis: left
            })
            return withoutToken(first.response, token)
          }
        }
        // RFC 6750 section 3.1: invalid_token means "obtain a new one and retry";
        // any 401 to a bearer request is treated so, once.
        yield* tokens.invalidate(token)
        if (!canReplay(outgoing)) {
          emitRequestTo(options.onEvent, { type: "unauthorized_not_replayable", ...event })
          return withoutToken(first.response, token)
        }
        const fresh = yield* getToken
        // The source kept the token (it judged the 401 not to be about it): nothing to replay with.
        if (fresh === token) {
          emitRequestTo(options.onEvent, { type: "unauthorized_token_kept", ...event, cooldownMillis: 0 })
          return withoutToken(first.response, token)
        }
        yield* discard(first.response)
        emitRequestTo(options.onEvent, { type: "unauthorized_retry", ...event })
        const replay = yield* sendFollowing(outgoing, fresh)
        if (replay.response.status === 401 && replay.authorized) {
          failedReplays.set(fresh, yield* Clock.currentTimeMillis)
          emitRequestTo(options.onEvent, { type: "unauthorized_after_replay", ...event, tokenId: fresh.id })
        }
        return replay.authorized ? withoutToken(replay.response, fresh) : replay.response
      })
  }
}
