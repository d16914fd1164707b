/**
 * An authorization server's endpoints from its issuer alone: the metadata of
 * OpenID Connect Discovery 1.0 (`/.well-known/openid-configuration`, appended
 * to the issuer) or, when there is none, of RFC 8414
 * (`/.well-known/oauth-authorization-server`, inserted before the issuer's
 * path).
 *
 * The metadata is trusted only for the issuer it was asked for: its `issuer`
 * must be exactly that one (RFC 8414 3.3, OIDC Discovery 4.3), or an attacker
 * who controls one document could point sign-ins at another server. Its
 * endpoints must be `https:` (`http:` on a loopback host only). Like a token
 * request, discovery never follows a redirect, reads at most 64 KiB, and has
 * a timeout.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { FetchHttpClient } from "effect/http"
 * import { Discovery } from "@authfetch/core"
 *
 * const metadata = await Effect.runPromise(
 *   Discovery.discover("https://beta.auth.wealthcare.com").pipe(Effect.provide(FetchHttpClient.layer))
 * )
 * metadata.token_endpoint // "https://beta.auth.wealthcare.com/connect/token"
 * ```
 *
 * @since 0.2.0
 */
import { Duration, Effect, Option } from "effect"
import { FetchHttpClient, HttpClient, HttpClientRequest } from "effect/http"
import { isSecureOrigin } from "./Config.ts"
import { DiscoveryError } from "./Errors.ts"

/**
 * The metadata fields authfetch reads (RFC 8414 2, OIDC Discovery 3); the
 * document's other fields are kept.
 *
 * @since 0.2.0
 */
export interface ServerMetadata {
  readonly issuer: string
  readonly authorization_endpoint?: string | undefined
  readonly token_endpoint?: string | undefined
  /** RFC 7009 */
  readonly revocation_endpoint?: string | undefined
  readonly userinfo_endpoint?: string | undefined
  readonly jwks_uri?: string | undefined
  /** OpenID Connect RP-Initiated Logout 1.0 */
  readonly end_session_endpoint?: string | undefined
  readonly scopes_supported?: ReadonlyArray<string> | undefined
  readonly response_types_supported?: ReadonlyArray<string> | undefined
  readonly grant_types_supported?: ReadonlyArray<string> | undefined
  readonly code_challenge_methods_supported?: ReadonlyArray<string> | undefined
  readonly token_endpoint_auth_methods_supported?: ReadonlyArray<string> | undefined
  /** RFC 9207: the server puts `iss` in every authorization response */
  readonly authorization_response_iss_parameter_supported?: boolean | undefined
  readonly [field: string]: unknown
}

/**
 * Options of `discover`.
 *
 * @since 0.2.0
 */
export interface DiscoverOptions {
  /** default 10 s for each document */
  readonly timeout?: Duration.Input | undefined
}

/** Metadata documents are small; a larger one is refused. */
const MAX_BYTES = 64 * 1024

const ENDPOINTS = [
  "authorization_endpoint",
  "token_endpoint",
  "revocation_endpoint",
  "userinfo_endpoint",
  "jwks_uri",
  "end_session_endpoint"
] as const

/**
 * Where the metadata of an issuer is published: OIDC Discovery 4.1 appends
 * the well-known path to the issuer; RFC 8414 3.1 inserts it between the
 * host and the issuer's path.
 *
 * @example
 * ```ts
 * Discovery.wellKnownUrls("https://auth.example.com/tenant")
 * // ["https://auth.example.com/tenant/.well-known/openid-configuration",
 * //  "https://auth.example.com/.well-known/oauth-authorization-server/tenant"]
 * ```
 *
 * @since 0.2.0
 */
export const wellKnownUrls = (issuer: string): ReadonlyArray<string> => {
  const url = new URL(issuer)
  const path = url.pathname.replace(/\/+$/, "")
  return [
    `${url.origin}${path}/.well-known/openid-configuration`,
    `${url.origin}/.well-known/oauth-authorization-server${path}`
  ]
}

const fetchDocument = (
  url: string,
  timeout: Duration.Duration
): Effect.Effect<Option.Option<unknown>, DiscoveryError, HttpClient.HttpClient> =>
  Effect.gen(function* () {
    const client = yield* HttpClient.HttpClient
    const fetchInit = yield* Effect.serviceOption(FetchHttpClient.RequestInit)
    return yield* Effect.gen(function* () {
      const response = yield* client
        .execute(HttpClientRequest.get(url).pipe(HttpClientRequest.setHeader("accept", "application/json")))
        .pipe(
          Effect.provideService(FetchHttpClient.RequestInit, {
            ...Option.getOrUndefined(fetchInit),
            redirect: "manual"
          }),
          Effect.mapError(
            () => new DiscoveryError({ reason: "transport", detail: "the metadata could not be fetched" })
          )
        )
      // A missing document (404, 400, 405...) means "try the other well-known URL".
      if (response.status >= 400 && response.status < 500) return Option.none()
      if (response.status !== 200) {
        return yield* new DiscoveryError({ reason: "status", status: response.status })
      }
      const bytes = yield* response.arrayBuffer.pipe(
        Effect.mapError(
          () => new DiscoveryError({ reason: "transport", detail: "the metadata could not be read" })
        )
      )
      if (bytes.byteLength > MAX_BYTES) {
        return yield* new DiscoveryError({
          reason: "invalid_metadata",
          detail: `larger than ${MAX_BYTES} bytes`
        })
      }
      try {
        return Option.some(JSON.parse(new TextDecoder().decode(bytes)) as unknown)
      } catch {
        return yield* new DiscoveryError({ reason: "invalid_metadata", detail: "not JSON" })
      }
    }).pipe(
      Effect.scoped,
      Effect.timeoutOrElse({
        duration: timeout,
        orElse: () => Effect.fail(new DiscoveryError({ reason: "timeout" }))
      })
    )
  })

/**
 * Checks a metadata document for `issuer`: it is an object, its `issuer` is
 * exactly the one asked for, and its endpoints are absolute `https:` URLs
 * (`http:` on loopback).
 *
 * @example
 * ```ts
 * const metadata = Discovery.check(json, "https://auth.example.com")
 * ```
 *
 * @since 0.2.0
 */
export const check = (document: unknown, issuer: string): ServerMetadata => {
  if (typeof document !== "object" || document === null || Array.isArray(document)) {
    throw new DiscoveryError({ reason: "invalid_metadata", detail: "not a JSON object" })
  }
  const metadata = document as Record<string, unknown>
  if (metadata.issuer !== issuer) {
    throw new DiscoveryError({
      reason: "issuer_mismatch",
      detail: "the metadata's issuer is not the issuer asked for (RFC 8414 3.3)"
    })
  }
  for (const name of ENDPOINTS) {
    const value = metadata[name]
    if (value === undefined) continue
    if (typeof value !== "string" || !isSecureOrigin(value)) {
      throw new DiscoveryError({
        reason: "invalid_metadata",
        detail: `${name} must be an https: URL (http: on loopback only)`
      })
    }
  }
  return metadata as ServerMetadata
}

/**
 * The metadata of `issuer`: OIDC Discovery first, RFC 8414 when the first
 * document is missing. Fails with `DiscoveryError`.
 *
 * @example
 * ```ts
 * const metadata = yield* Discovery.discover("https://beta.auth.wealthcare.com")
 * ```
 *
 * @since 0.2.0
 */
export const discover = (
  issuer: string,
  options?: DiscoverOptions
): Effect.Effect<ServerMetadata, DiscoveryError, HttpClient.HttpClient> =>
  Effect.gen(function* () {
    if (!isSecureOrigin(issuer)) {
      return yield* new DiscoveryError({
        reason: "invalid_metadata",
        detail: "the issuer must be an https: URL (http: on loopback only)"
      })
    }
    const timeout = Duration.fromInputUnsafe(options?.timeout ?? Duration.seconds(10))
    for (const url of wellKnownUrls(issuer)) {
      const document = yield* fetchDocument(url, timeout)
      if (Option.isSome(document)) {
        return yield* Effect.try({
          try: () => check(document.value, issuer),
          catch: (error) =>
            error instanceof DiscoveryError
              ? error
              : new DiscoveryError({ reason: "invalid_metadata", detail: "unreadable" })
        })
      }
    }
    return yield* new DiscoveryError({
      reason: "status",
      status: 404,
      detail: "no metadata at either well-known URL"
    })
  }).pipe(Effect.withSpan("authfetch.discovery", { attributes: { "oauth.issuer": issuer } }))
