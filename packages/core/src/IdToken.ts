/**
 * The OpenID Connect ID token of a sign-in: its claims read and checked as
 * OIDC Core 3.1.3.7 asks of a client that receives it from the token endpoint.
 *
 * - `iss` is exactly the issuer the sign-in started with (a mix-up with
 *   another server is refused);
 * - `aud` contains our client id, and `azp`, when present (or when there are
 *   several audiences), is our client id;
 * - `exp` is in the future and `iat` not in the future (a small clock
 *   tolerance, the server's clock is another machine's);
 * - `nonce` is the one this browser's sign-in sent (a token injected from
 *   another sign-in is refused); an ID token from a refresh (OIDC Core 12.2)
 *   has the same `iss`, `sub` and `aud` as the sign-in's;
 * - `sub` is a non-empty string; `alg: none` is refused.
 *
 * The signature is not verified: the token comes straight from the token
 * endpoint over TLS, which OIDC Core 3.1.3.7 (6) accepts in its place, as
 * panva's oauth4webapi and openid-client do by default. An ID token from any
 * other channel must not be trusted through this module.
 *
 * @example
 * ```ts
 * import { IdToken } from "@authfetch/core"
 *
 * const claims = IdToken.validate(idToken, { issuer, clientId, nonce, now: Date.now() })
 * if (claims._tag === "Failure") throw claims.failure
 * ```
 *
 * @since 0.2.0
 */
import { Result } from "effect"
import { SignInError } from "./Errors.ts"

/**
 * The claims of an ID token (OIDC Core 2), protocol claims named, any others
 * kept.
 *
 * @since 0.2.0
 */
export interface Claims {
  readonly iss: string
  readonly sub: string
  readonly aud: string | ReadonlyArray<string>
  readonly exp: number
  readonly iat: number
  readonly nonce?: string | undefined
  readonly azp?: string | undefined
  readonly auth_time?: number | undefined
  readonly sid?: string | undefined
  readonly [claim: string]: unknown
}

/**
 * What a valid ID token must match.
 *
 * @since 0.2.0
 */
export interface Expected {
  /** the issuer the sign-in started with (its metadata's `issuer`) */
  readonly issuer: string
  readonly clientId: string
  /** the nonce the authorization request sent; required in the token when given */
  readonly nonce?: string | undefined
  /** a refresh's ID token: the subject of the sign-in, which must not change (OIDC Core 12.2) */
  readonly subject?: string | undefined
  /** ms since epoch */
  readonly now: number
  /** allowed difference between the server's clock and ours; default 60 s */
  readonly clockToleranceMillis?: number | undefined
}

/** The server's clock is another machine's: this much difference is tolerated. */
export const DEFAULT_CLOCK_TOLERANCE_MILLIS = 60_000

/**
 * Claims that describe the token rather than the user: left out of what an
 * app sees as its user (`userClaims`).
 *
 * @since 0.2.0
 */
export const PROTOCOL_CLAIMS: ReadonlySet<string> = new Set([
  "iss",
  "aud",
  "exp",
  "iat",
  "nbf",
  "jti",
  "nonce",
  "azp",
  "at_hash",
  "c_hash",
  "s_hash",
  "sid",
  "auth_time",
  "acr",
  "amr",
  "typ",
  "cnf"
])

const invalid = (detail: string) => Result.fail(new SignInError({ reason: "id_token_invalid", detail }))

const base64urlJson = (part: string): unknown => {
  try {
    const padded = part.replace(/-/g, "+").replace(/_/g, "/")
    const binary = atob(padded + "=".repeat((4 - (padded.length % 4)) % 4))
    const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0))
    return JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes))
  } catch {
    return undefined
  }
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

/**
 * The header and claims of a JWS compact JWT, unverified; `undefined` when it
 * is not one.
 *
 * @example
 * ```ts
 * const decoded = IdToken.decode(idToken)
 * decoded?.claims.sub
 * ```
 *
 * @since 0.2.0
 */
export const decode = (
  jwt: string
):
  | { readonly header: Readonly<Record<string, unknown>>; readonly claims: Readonly<Record<string, unknown>> }
  | undefined => {
  const parts = jwt.split(".")
  if (parts.length !== 3) return undefined
  const header = base64urlJson(parts[0]!)
  const claims = base64urlJson(parts[1]!)
  return isObject(header) && isObject(claims) ? { header, claims } : undefined
}

const isNumericDate = (value: unknown): value is number => typeof value === "number" && Number.isFinite(value)

/**
 * Checks an ID token received from the token endpoint (OIDC Core 3.1.3.7 and,
 * for a refresh, 12.2). Fails with `SignInError` (`reason: "id_token_invalid"`
 * or `"nonce_mismatch"`), whose detail names the claim, never its value.
 *
 * @example
 * ```ts
 * const result = IdToken.validate(jwt, { issuer: "https://auth.example.com", clientId: "app", nonce, now: Date.now() })
 * ```
 *
 * @since 0.2.0
 */
export const validate = (jwt: string, expected: Expected): Result.Result<Claims, SignInError> => {
  const decoded = decode(jwt)
  if (decoded === undefined) return invalid("not a JWT")
  const { header, claims } = decoded
  if (typeof header.alg !== "string" || header.alg === "none") return invalid("alg is missing or none")
  if (claims.iss !== expected.issuer) return invalid("iss is not the issuer the sign-in started with")
  if (typeof claims.sub !== "string" || claims.sub === "") return invalid("sub is missing")
  if (expected.subject !== undefined && claims.sub !== expected.subject) {
    return invalid("sub differs from the sign-in's (OIDC Core 12.2)")
  }
  const aud = claims.aud
  const audiences = typeof aud === "string" ? [aud] : Array.isArray(aud) ? aud : undefined
  if (audiences === undefined || !audiences.includes(expected.clientId)) {
    return invalid("aud does not contain the client id")
  }
  if (claims.azp !== undefined && claims.azp !== expected.clientId) return invalid("azp is not the client id")
  if (audiences.length > 1 && claims.azp === undefined)
    return invalid("azp is missing with several audiences")
  const tolerance = expected.clockToleranceMillis ?? DEFAULT_CLOCK_TOLERANCE_MILLIS
  if (!isNumericDate(claims.exp)) return invalid("exp is missing")
  if (claims.exp * 1000 + tolerance <= expected.now) return invalid("exp is in the past")
  if (!isNumericDate(claims.iat)) return invalid("iat is missing")
  if (claims.iat * 1000 - tolerance > expected.now) return invalid("iat is in the future")
  if (
    claims.nbf !== undefined &&
    (!isNumericDate(claims.nbf) || claims.nbf * 1000 - tolerance > expected.now)
  ) {
    return invalid("nbf is in the future")
  }
  if (expected.nonce !== undefined) {
    if (claims.nonce !== expected.nonce) {
      return Result.fail(new SignInError({ reason: "nonce_mismatch", detail: "nonce is not this sign-in's" }))
    }
  }
  return Result.succeed(claims as Claims)
}

/**
 * The claims an app sees as its user: the ID token's, less those that
 * describe the token (`PROTOCOL_CLAIMS`).
 *
 * @example
 * ```ts
 * IdToken.userClaims({ iss, aud, exp, iat, sub: "alice", name: "Alice" }) // { sub: "alice", name: "Alice" }
 * ```
 *
 * @since 0.2.0
 */
export const userClaims = (claims: Readonly<Record<string, unknown>>): Record<string, unknown> => {
  const user: Record<string, unknown> = {}
  for (const [name, value] of Object.entries(claims)) if (!PROTOCOL_CLAIMS.has(name)) user[name] = value
  return user
}
