/**
 * Token revocation (RFC 7009): tell the authorization server that a refresh
 * token or an access token is no longer needed, as a sign-out does.
 *
 * The request is a form POST authenticated like a token request (RFC 7009
 * 2.1), sent the same way: no redirects, bounded in time and bytes. `200`
 * means revoked, or never valid (RFC 7009 2.2: both answer 200). Revoking a
 * refresh token revokes the access tokens of its grant too where the server
 * supports it (RFC 7009 2.1 SHOULD), so that is the token a sign-out revokes.
 *
 * @example
 * ```ts
 * import { Effect, Redacted } from "effect"
 * import { FetchHttpClient } from "effect/http"
 * import { Revocation } from "@authfetch/core"
 *
 * await Effect.runPromise(
 *   Revocation.revoke({
 *     revocationUrl: "https://beta.auth.wealthcare.com/connect/revocation",
 *     clientId,
 *     clientAuth: "client_secret_post",
 *     secret: Redacted.make(clientSecret),
 *     token: Redacted.make(refreshToken),
 *     tokenTypeHint: "refresh_token"
 *   }).pipe(Effect.provide(FetchHttpClient.layer))
 * )
 * ```
 *
 * @since 0.2.0
 */
import { type Duration, Effect, Redacted } from "effect"
import type { HttpClient } from "effect/http"
import * as ClientAuth from "./ClientAuth.ts"
import type { OAuthError, RateLimitedError, TokenEndpointError } from "./Errors.ts"
import { spellings } from "./internal/redact.ts"
import { errorOf, postForm } from "./TokenEndpoint.ts"

/**
 * @since 0.2.0
 */
export interface RevokeOptions {
  readonly revocationUrl: string
  readonly clientId: string
  readonly clientAuth: ClientAuth.Method
  readonly secret?: Redacted.Redacted<string> | undefined
  readonly token: Redacted.Redacted<string>
  /** RFC 7009 2.1: a hint to the server where to look */
  readonly tokenTypeHint?: "refresh_token" | "access_token" | undefined
  readonly timeout?: Duration.Input | undefined
}

/**
 * Revokes one token. Fails with `OAuthError` (`invalid_client`,
 * `unsupported_token_type`), `RateLimitedError`, or `TokenEndpointError`
 * (transport, timeout, `503`: RFC 7009 2.2.1 says try again later).
 *
 * @example
 * ```ts
 * yield* Revocation.revoke({ revocationUrl, clientId, clientAuth: "client_secret_basic", secret, token, tokenTypeHint: "refresh_token" })
 * ```
 *
 * @since 0.2.0
 */
export const revoke = (
  options: RevokeOptions
): Effect.Effect<void, OAuthError | RateLimitedError | TokenEndpointError, HttpClient.HttpClient> =>
  Effect.gen(function* () {
    const applied = ClientAuth.apply(options.clientAuth, options.clientId, options.secret)
    const body = new URLSearchParams()
    body.append("token", Redacted.value(options.token))
    if (options.tokenTypeHint !== undefined) body.append("token_type_hint", options.tokenTypeHint)
    for (const [name, value] of applied.params) {
      body.append(name, Redacted.isRedacted(value) ? Redacted.value(value) : value)
    }
    const answer = yield* postForm({
      url: options.revocationUrl,
      headers: applied.headers,
      body: body.toString(),
      timeout: options.timeout
    })
    if (answer.status === 200) return
    const secrets = [
      Redacted.value(options.token),
      ...(options.secret ? [Redacted.value(options.secret)] : [])
    ]
    return yield* Effect.fail(errorOf(answer, spellings([...secrets, ...secrets.map(ClientAuth.formEncode)])))
  }).pipe(Effect.withSpan("authfetch.revocation", { attributes: { "http.url": options.revocationUrl } }))
