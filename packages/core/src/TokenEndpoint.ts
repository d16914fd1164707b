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
import { HttpClient, HttpClientRequest, type HttpClientResponse } from "effect/http"
import * as ClientAuth from "./ClientAuth.ts"
import { InvalidTokenResponseError, OAuthError, RateLimitedError, TokenEndpointError } from "./Errors.ts"
import * as Grant from "./Grant.ts"
import { concatBytes } from "./internal/bytes.ts"
import { parseRetryAfter } from "./RetryPolicy.ts"

/** Token responses are small; a larger body is a misrouted request or an attack. */
export const DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024
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
  /** local time the response arrived */
  readonly receivedAt: number
}

/**
 * Each field of a section 5.1 response with its own schema, so that a failure
 * names the field and never echoes the (possibly secret) value.
 */
const fields = {
  access_token: { schema: Schema.NonEmptyString, required: true, expected: "a non-empty string" },
  token_type: { schema: Schema.NonEmptyString, required: false, expected: "a non-empty string" },
  expires_in: {
    schema: Schema.Finite.check(Schema.isGreaterThan(0)),
    required: false,
    expected: "a positive number of seconds"
  },
  refresh_token: { schema: Schema.NonEmptyString, required: false, expected: "a non-empty string" },
  scope: { schema: Schema.String, required: false, expected: "a string" }
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
  const basic = applied.headers.authorization
  if (basic) values.push(basic.replace(/^Basic /, ""))
  // Also their form-encoded spellings, as they appear in an echoed body.
  return [...new Set(values.flatMap((v) => [v, ClientAuth.formEncode(v), encodeURIComponent(v)]))].filter(
    (v) => v.length >= 4
  )
}

const scrub = (text: string | undefined, secrets: ReadonlyArray<string>): string | undefined => {
  if (text === undefined) return undefined
  let result = text
  for (const secret of secrets) result = result.split(secret).join("<redacted>")
  return result
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
    const client = yield* HttpClient.HttpClient
    const applied = ClientAuth.apply(options.clientAuth, options.clientId, options.secret)
    const req = HttpClientRequest.post(options.tokenUrl).pipe(
      HttpClientRequest.setHeaders({ accept: "application/json", ...applied.headers }),
      HttpClientRequest.bodyText(buildBody(options, applied), "application/x-www-form-urlencoded")
    )
    const maxBytes = options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES
    const timeout = Duration.fromInputUnsafe(options.timeout ?? DEFAULT_TIMEOUT)

    const exchange = Effect.gen(function* () {
      const response = yield* client
        .execute(req)
        .pipe(
          Effect.mapError((error) => TokenEndpointError.fromCause("transport", error.reason.cause ?? error))
        )
      const receivedAt = yield* Clock.currentTimeMillis
      const text = yield* readCapped(response, maxBytes)
      return { response, receivedAt, text }
    }).pipe(
      Effect.scoped,
      Effect.timeoutOrElse({
        duration: timeout,
        orElse: () => Effect.fail(new TokenEndpointError({ reason: "timeout" }))
      })
    )
    const { response, receivedAt, text } = yield* exchange
    const status = response.status

    if (Option.isNone(text)) {
      return yield* status >= 200 && status < 300
        ? Effect.fail(new InvalidTokenResponseError({ reason: `body larger than ${maxBytes} bytes`, status }))
        : Effect.fail(new TokenEndpointError({ reason: "status", status, detail: "oversized error body" }))
    }
    const json = parseJson(text.value)

    if (status >= 200 && status < 300) {
      if (json === undefined) {
        const contentType = response.headers["content-type"] ?? "no content type"
        return yield* new InvalidTokenResponseError({ reason: `body is not JSON (${contentType})`, status })
      }
      return yield* decodeSuccess(json, status, receivedAt)
    }

    if (status === 429) {
      const wait = parseRetryAfter(response.headers["retry-after"], receivedAt, response.headers.date)
      return yield* new RateLimitedError({
        source: "server",
        status,
        retryAfterMillis: wait === undefined ? undefined : Duration.toMillis(wait)
      })
    }

    const oauth = Schema.decodeUnknownOption(OAuthErrorBody)(json)
    if (Option.isSome(oauth)) {
      const secrets = secretsOf(options, applied)
      return yield* new OAuthError({
        code: scrub(oauth.value.error, secrets)!,
        description: scrub(oauth.value.error_description, secrets),
        uri: scrub(oauth.value.error_uri, secrets),
        status
      })
    }
    return yield* new TokenEndpointError({ reason: "status", status })
  }).pipe(
    Effect.withSpan("authfetch.token_request", {
      attributes: { "oauth.grant_type": options.grant.type, "http.url": options.tokenUrl }
    })
  )
