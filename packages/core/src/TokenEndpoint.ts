/**
 * One token request (RFC 6749 section 3.2) over `effect/http`'s HttpClient:
 * the form-encoded POST, the decode of a section 5.1 success with `Schema`, the
 * classification of everything else into typed errors, a cap on how much of a
 * response is read, and `Retry-After` on `429`. No retries here: those are
 * decided by `RetryPolicy` and applied by `TokenSource`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { FetchHttpClient } from "effect/http"
 * import { Grant, TokenEndpoint } from "@authfetch/core"
 *
 * const response = TokenEndpoint.request({
 *   tokenUrl: "https://auth.example.com/token",
 *   clientId: "my-client",
 *   clientAuth: "client_secret_post",
 *   secret: Redacted.make("s3cret"),
 *   grant: Grant.clientCredentials()
 * }).pipe(Effect.provide(FetchHttpClient.layer))
 * ```
 *
 * @since 0.1.0
 */
import { Clock, Duration, Effect, Option, Redacted, Schema, Stream } from "effect"
import { FetchHttpClient, HttpClient, HttpClientRequest, type HttpClientResponse } from "effect/http"
import * as ClientAuth from "./ClientAuth.ts"
import { InvalidTokenResponseError, OAuthError, RateLimitedError, TokenEndpointError } from "./Errors.ts"
import * as Grant from "./Grant.ts"
import { concatBytes } from "./internal/bytes.ts"
import { redactText, spellings } from "./internal/redact.ts"
import { parseLenientJson } from "./Problem.ts"
import { parseRetryAfter } from "./RetryPolicy.ts"

/** Token responses are small; a larger body is a misrouted request or an attack. */
export const DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024
/** The shortest lifetime we accept, in seconds. */
export const MIN_EXPIRES_IN = 1
/** The longest lifetime we believe: ten years, in seconds. */
export const MAX_EXPIRES_IN = 10 * 365 * 24 * 3600
/** How long one token request may take, connection to last byte. */
export const DEFAULT_TIMEOUT: Duration.Duration = Duration.seconds(10)

/**
 * Everything one token request needs.
 *
 * @since 0.1.0
 */
export interface RequestOptions {
  readonly tokenUrl: string
  readonly clientId: string
  readonly clientAuth: ClientAuth.Method
  readonly secret?: Redacted.Redacted<string> | undefined
  readonly grant: Grant.Grant
  /** space-delimited scope (RFC 6749 section 3.3) */
  readonly scope?: string | undefined
  /** further form parameters: `audience`, `resource` (RFC 8707), vendor extras */
  readonly params?: ReadonlyArray<readonly [string, string]> | undefined
  readonly maxResponseBytes?: number | undefined
  readonly timeout?: Duration.Input | undefined
}

/**
 * A decoded RFC 6749 section 5.1 success.
 *
 * @since 0.1.0
 */
export interface TokenResponse {
  readonly accessToken: Redacted.Redacted<string>
  readonly tokenType: string
  /** `expires_in` in seconds, when the server sent it */
  readonly expiresIn: number | undefined
  readonly scope: string | undefined
  readonly refreshToken: Redacted.Redacted<string> | undefined
  /** OpenID Connect `id_token` (OIDC Core 3.1.3.3), when the server issued one; see `IdToken` */
  readonly idToken?: Redacted.Redacted<string> | undefined
  /** local time the response arrived */
  readonly receivedAt: number
}

/**
 * Each field of a section 5.1 response with its own schema, so that a failure
 * names the field and never echoes the (possibly secret) value.
 */
const fields = {
  // RFC 6749 A.12 (VSCHAR) and RFC 6750 2.1: the value goes into a header as one token, so
  // visible ASCII without spaces. A control character would make the HTTP client throw an
  // error whose message quotes the header, token included.
  access_token: {
    schema: Schema.String.check(Schema.isPattern(/^[\x21-\x7e]+$/)),
    required: true,
    expected: "visible ASCII characters (RFC 6749 A.12)"
  },
  // RFC 9110 5.6.2: an auth-scheme is a token of tchars.
  token_type: {
    schema: Schema.String.check(Schema.isPattern(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/)),
    required: false,
    expected: "an HTTP token (RFC 9110 tchar)"
  },
  // A lifetime under a second cannot be used (it is gone before a request arrives), and
  // accepting one would turn refresh-ahead into a loop of token requests.
  expires_in: {
    schema: Schema.Finite.check(Schema.isGreaterThanOrEqualTo(MIN_EXPIRES_IN)),
    required: false,
    expected: `a number of seconds, at least ${MIN_EXPIRES_IN}`
  },
  // RFC 6749 A.17: 1*VSCHAR.
  refresh_token: {
    schema: Schema.String.check(Schema.isPattern(/^[\x20-\x7e]+$/)),
    required: false,
    expected: "visible ASCII characters (RFC 6749 A.17)"
  },
  scope: { schema: Schema.String, required: false, expected: "a string" },
  // OIDC Core 3.1.3.3: a JWT in JWS compact serialisation (three base64url parts).
  id_token: {
    schema: Schema.String.check(Schema.isPattern(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/)),
    required: false,
    expected: "a JWT (JWS compact serialisation)"
  }
} as const

type Field = keyof typeof fields

const decodeSuccess = (
  body: unknown,
  status: number,
  receivedAt: number
): Effect.Effect<TokenResponse, InvalidTokenResponseError> => {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    return Effect.fail(new InvalidTokenResponseError({ reason: "body is not a JSON object", status }))
  }
  const record = body as Record<string, unknown>
  const decoded: Partial<Record<Field, unknown>> = {}
  for (const name of Object.keys(fields) as Array<Field>) {
    const field = fields[name]
    const value = record[name]
    if (value === undefined || value === null) {
      if (field.required) {
        return Effect.fail(new InvalidTokenResponseError({ reason: `${name} is missing`, status }))
      }
      continue
    }
    const result = Schema.decodeUnknownOption(field.schema as Schema.Codec<unknown>)(value)
    if (Option.isNone(result)) {
      return Effect.fail(
        new InvalidTokenResponseError({
          reason: `${name} must be ${field.expected} (got ${typeof value})`,
          status
        })
      )
    }
    decoded[name] = result.value
  }
  return Effect.succeed({
    accessToken: Redacted.make(decoded.access_token as string, { label: "access_token" }),
    // RFC 6749 makes token_type REQUIRED, but servers omit it; Bearer is the only type in use.
    tokenType: (decoded.token_type as string | undefined) ?? "Bearer",
    // A lifetime past any sane horizon is clamped: far-future dates cannot be
    // printed, and an infinite one would make refresh-ahead spin.
    expiresIn:
      decoded.expires_in === undefined ? undefined : Math.min(decoded.expires_in as number, MAX_EXPIRES_IN),
    scope: decoded.scope as string | undefined,
    refreshToken:
      decoded.refresh_token === undefined
        ? undefined
        : Redacted.make(decoded.refresh_token as string, { label: "refresh_token" }),
    ...(decoded.id_token === undefined
      ? {}
      : { idToken: Redacted.make(decoded.id_token as string, { label: "id_token" }) }),
    receivedAt
  })
}

const OAuthErrorBody = Schema.Struct({
  error: Schema.NonEmptyString,
  error_description: Schema.optional(Schema.String),
  error_uri: Schema.optional(Schema.String)
})

/** Reads at most `max` bytes; `None` if the body is larger. */
const readCapped = (
  response: HttpClientResponse.HttpClientResponse,
  max: number
): Effect.Effect<Option.Option<string>, TokenEndpointError> =>
  Effect.gen(function* () {
    const chunks: Array<Uint8Array> = []
    let total = 0
    yield* Stream.runForEachWhile(response.stream, (chunk) =>
      Effect.sync(() => {
        total += chunk.byteLength
        if (total > max) return false
        chunks.push(chunk)
        return true
      })
    )
    if (total > max) return Option.none()
    return Option.some(new TextDecoder().decode(concatBytes(chunks, total)))
  }).pipe(Effect.mapError((error) => TokenEndpointError.fromCause("transport", error.reason?.cause ?? error)))

/** 3xx, or 0 for an opaque redirect (a fetch in browser mode). */
const isRedirect = (status: number): boolean => status === 0 || (status >= 300 && status < 400)

/** Where a redirect points, as an origin only (its path and query may carry anything). */
const targetOrigin = (location: string | undefined, base: string): string => {
  if (location === undefined) return "no location"
  try {
    const url = new URL(location, base)
    return url.protocol === "http:" || url.protocol === "https:" ? url.origin : `a ${url.protocol} URL`
  } catch {
    return "an invalid location"
  }
}

const parseJson = (text: string): unknown => {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

/**
 * The secret values a request carries (client secret, refresh token, code,
 * verifier, password), so that a server that echoes the request into its error
 * description does not get them into our errors and logs.
 */
const secretsOf = (options: RequestOptions, applied: ClientAuth.Applied): ReadonlyArray<string> => {
  const values = [...Grant.toParams(options.grant), ...applied.params].flatMap(([, value]) =>
    Redacted.isRedacted(value) ? [Redacted.value(value)] : []
  )
  if (options.secret) values.push(Redacted.value(options.secret))
  // Extra parameters may be credentials too (`client_assertion`, vendor keys).
  for (const [, value] of options.params ?? []) values.push(value)
  const basic = applied.headers.authorization
  if (basic) values.push(basic.replace(/^Basic /, ""))
  // Also their encoded spellings (RFC 6749 2.3.1 form-encodes before Basic), as echoed.
  return spellings([...values, ...values.map(ClientAuth.formEncode)])
}

/** The longest server-written text kept on an error. */
const MAX_TEXT = 300

const scrub = (text: string | undefined, secrets: ReadonlyArray<string>): string | undefined =>
  text === undefined ? undefined : redactText(text, secrets).slice(0, MAX_TEXT)

/** `title` and `detail` of an error body that is not an OAuth error (problem+json, a gateway's JSON). */
const describeBody = (
  json: unknown,
  secrets: ReadonlyArray<string>
): { readonly title?: string; readonly detail?: string } => {
  if (typeof json !== "object" || json === null || Array.isArray(json)) return {}
  const record = json as Record<string, unknown>
  const text = (value: unknown) => (typeof value === "string" && value.trim() !== "" ? value : undefined)
  const title = scrub(text(record.title), secrets)
  const detail = scrub(text(record.detail) ?? text(record.message) ?? text(record.error_description), secrets)
  return { ...(title === undefined ? {} : { title }), ...(detail === undefined ? {} : { detail }) }
}

const buildBody = (options: RequestOptions, applied: ClientAuth.Applied): string => {
  const body = new URLSearchParams()
  for (const [name, value] of [...Grant.toParams(options.grant), ...applied.params]) {
    body.append(name, Redacted.isRedacted(value) ? Redacted.value(value) : value)
  }
  if (options.scope && options.grant.type !== "authorization_code") body.append("scope", options.scope)
  for (const [name, value] of options.params ?? []) body.append(name, value)
  return body.toString()
}

/**
 * What `postForm` read: the status, headers, body (`None` when it was larger
 * than the cap) and when the answer arrived.
 *
 * @internal
 */
export interface FormAnswer {
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  readonly text: Option.Option<string>
  readonly receivedAt: number
}

/**
 * One form POST to an endpoint of the authorization server (token,
 * revocation): never following a redirect, bounded in time and in the bytes
 * read. Shared by `request` and `Revocation.revoke`.
 *
 * @internal
 */
export const postForm = (options: {
  readonly url: string
  readonly headers: Readonly<Record<string, string>>
  readonly body: string
  readonly maxResponseBytes?: number | undefined
  readonly timeout?: Duration.Input | undefined
}): Effect.Effect<FormAnswer, TokenEndpointError, HttpClient.HttpClient> =>
  Effect.gen(function* () {
    const client = yield* HttpClient.HttpClient
    const req = HttpClientRequest.post(options.url).pipe(
      HttpClientRequest.setHeaders({ accept: "application/json", ...options.headers }),
      HttpClientRequest.bodyText(options.body, "application/x-www-form-urlencoded")
    )
    const maxBytes = options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES
    const timeout = Duration.fromInputUnsafe(options.timeout ?? DEFAULT_TIMEOUT)
    // A credential never follows a redirect: the form body holds the client secret, a
    // password, a refresh token or a code verifier, and a token minted at the redirect's
    // target is not one the configured endpoint vouches for (RFC 9700 4.11; RFC 6749 3.2
    // names one token endpoint). `redirect: "manual"` for fetch-based clients; any 3xx fails.
    const fetchInit = yield* Effect.serviceOption(FetchHttpClient.RequestInit)
    return yield* Effect.gen(function* () {
      const response = yield* client.execute(req).pipe(
        Effect.provideService(FetchHttpClient.RequestInit, {
          ...Option.getOrUndefined(fetchInit),
          redirect: "manual"
        }),
        Effect.mapError((error) => TokenEndpointError.fromCause("transport", error.reason.cause ?? error))
      )
      if (isRedirect(response.status)) {
        return yield* new TokenEndpointError({
          reason: "redirect",
          status: response.status,
          detail: `redirect to ${targetOrigin(response.headers.location, options.url)}`
        })
      }
      const receivedAt = yield* Clock.currentTimeMillis
      const text = yield* readCapped(response, maxBytes)
      return { status: response.status, headers: response.headers, receivedAt, text }
    }).pipe(
      Effect.scoped,
      Effect.timeoutOrElse({
        duration: timeout,
        orElse: () => Effect.fail(new TokenEndpointError({ reason: "timeout" }))
      })
    )
  })

/**
 * The typed error of a failed answer of the authorization server: `429` →
 * `RateLimitedError` (with `Retry-After`), an RFC 6749 5.2 error body (any
 * status) → `OAuthError`, anything else → `TokenEndpointError` (`status`),
 * every value of `secrets` scrubbed from the server's text.
 *
 * @internal
 */
export const errorOf = (
  answer: FormAnswer,
  secrets: ReadonlyArray<string>
): OAuthError | RateLimitedError | TokenEndpointError => {
  const { status } = answer
  if (Option.isNone(answer.text)) {
    return new TokenEndpointError({ reason: "status", status, detail: "oversized error body" })
  }
  if (status === 429) {
    const wait = parseRetryAfter(answer.headers["retry-after"], answer.receivedAt, answer.headers.date)
    return new RateLimitedError({
      source: "server",
      status,
      retryAfterMillis: wait === undefined ? undefined : Duration.toMillis(wait)
    })
  }
  const json = parseLenientJson(answer.text.value)
  const oauth = Schema.decodeUnknownOption(OAuthErrorBody)(json)
  if (Option.isSome(oauth)) {
    return new OAuthError({
      code: scrub(oauth.value.error, secrets)!,
      description: scrub(oauth.value.error_description, secrets),
      uri: scrub(oauth.value.error_uri, secrets),
      status
    })
  }
  return new TokenEndpointError({ reason: "status", status, ...describeBody(json, secrets) })
}

/**
 * Sends one token request and classifies the answer:
 * - 2xx with a valid body: `TokenResponse`;
 * - 2xx with anything else, or a body over the cap: `InvalidTokenResponseError`;
 * - an RFC 6749 5.2 error body (any status): `OAuthError`;
 * - `429`: `RateLimitedError` with the `Retry-After` wait;
 * - other statuses, transport failures, timeouts: `TokenEndpointError`.
 *
 * @example
 * ```ts
 * const token = yield* TokenEndpoint.request({ tokenUrl, clientId, clientAuth: "client_secret_post", secret, grant: Grant.clientCredentials() })
 * ```
 *
 * @since 0.1.0
 */
export const request = (
  options: RequestOptions
): Effect.Effect<
  TokenResponse,
  OAuthError | RateLimitedError | TokenEndpointError | InvalidTokenResponseError,
  HttpClient.HttpClient
> =>
  Effect.gen(function* () {
    const applied = ClientAuth.apply(options.clientAuth, options.clientId, options.secret)
    const maxBytes = options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES
    const answer = yield* postForm({
      url: options.tokenUrl,
      headers: applied.headers,
      body: buildBody(options, applied),
      maxResponseBytes: maxBytes,
      timeout: options.timeout
    })
    const { status, text, receivedAt } = answer
    if (status >= 200 && status < 300) {
      if (Option.isNone(text)) {
        return yield* new InvalidTokenResponseError({ reason: `body larger than ${maxBytes} bytes`, status })
      }
      const json = parseJson(text.value)
      if (json === undefined) {
        const contentType = answer.headers["content-type"] ?? "no content type"
        return yield* new InvalidTokenResponseError({ reason: `body is not JSON (${contentType})`, status })
      }
      return yield* decodeSuccess(json, status, receivedAt)
    }
    return yield* Effect.fail(errorOf(answer, secretsOf(options, applied)))
  }).pipe(
    Effect.withSpan("authfetch.token_request", {
      attributes: { "oauth.grant_type": options.grant.type, "http.url": options.tokenUrl }
    })
  )
