/**
 * The steps of a sign-in with the authorization code grant, as pure
 * functions: the authorization request (RFC 6749 4.1.1) with PKCE (RFC 7636,
 * `S256` only), `state` and, for OpenID Connect, `nonce`; the checks of the
 * callback (RFC 6749 4.1.2, RFC 9207 `iss`); and what a `returnTo` may be.
 * `UserSessions` runs them with a store, cookies and the token endpoint.
 *
 * Why each value: `state` ties the callback to a sign-in this browser started
 * (login CSRF, RFC 6749 10.12); the PKCE verifier ties the code to this
 * client's exchange (a stolen code is useless, RFC 7636 1); `nonce` ties the
 * ID token to this sign-in (OIDC Core 3.1.2.1); `iss` names the server that
 * answered, so a code from another server is never sent to ours (mix-up,
 * RFC 9207).
 *
 * @example
 * ```ts
 * import { SignIn } from "@authfetch/core"
 *
 * const url = SignIn.authorizationUrl({
 *   authorizationUrl: "https://beta.auth.wealthcare.com/connect/authorize",
 *   clientId: "app",
 *   redirectUri: "https://app.example/auth/callback",
 *   scope: "openid bensoft_api offline_access",
 *   state,
 *   codeChallenge,
 *   nonce
 * })
 * ```
 *
 * @since 0.2.0
 */
import { Result } from "effect"
import { SignInError } from "./Errors.ts"

/**
 * What goes into an authorization request.
 *
 * @since 0.2.0
 */
export interface AuthorizationRequest {
  readonly authorizationUrl: string
  readonly clientId: string
  readonly redirectUri: string
  /** space-delimited (RFC 6749 3.3) */
  readonly scope: string
  readonly state: string
  /** `BASE64URL(SHA256(code_verifier))` (`Grant.codeChallengeS256`) */
  readonly codeChallenge: string
  /** OpenID Connect: sent when the scope has `openid` */
  readonly nonce?: string | undefined
  /** further parameters (`prompt`, `login_hint`, `acr_values`, `audience`, ...) */
  readonly params?: Readonly<Record<string, string>> | undefined
}

/**
 * The parameters this module sets; `params` may not repeat them.
 *
 * @since 0.2.0
 */
export const AUTHORIZATION_PARAMETERS: ReadonlySet<string> = new Set([
  "response_type",
  "client_id",
  "redirect_uri",
  "scope",
  "state",
  "code_challenge",
  "code_challenge_method",
  "nonce"
])

/**
 * The URL to send the browser to (RFC 6749 4.1.1): `response_type=code`, the
 * client, the redirect URI, scope, state, the PKCE challenge (`S256`), nonce.
 * Parameters already in `authorizationUrl`'s query are kept (RFC 6749 3.1).
 *
 * @example
 * ```ts
 * const url = SignIn.authorizationUrl({ authorizationUrl, clientId, redirectUri, scope: "openid", state, codeChallenge, nonce })
 * return Response.redirect(url, 302)
 * ```
 *
 * @since 0.2.0
 */
export const authorizationUrl = (request: AuthorizationRequest): URL => {
  const url = new URL(request.authorizationUrl)
  for (const [name, value] of Object.entries(request.params ?? {})) {
    if (!AUTHORIZATION_PARAMETERS.has(name)) url.searchParams.set(name, value)
  }
  url.searchParams.set("response_type", "code")
  url.searchParams.set("client_id", request.clientId)
  url.searchParams.set("redirect_uri", request.redirectUri)
  url.searchParams.set("scope", request.scope)
  url.searchParams.set("state", request.state)
  url.searchParams.set("code_challenge", request.codeChallenge)
  url.searchParams.set("code_challenge_method", "S256")
  if (request.nonce !== undefined) url.searchParams.set("nonce", request.nonce)
  return url
}

/**
 * What a callback must show.
 *
 * @since 0.2.0
 */
export interface ExpectedCallback {
  /** the issuer of the server the sign-in went to, when known */
  readonly issuer?: string | undefined
  /** the server says it always sends `iss` (RFC 9207 `authorization_response_iss_parameter_supported`) */
  readonly issRequired?: boolean | undefined
}

/** At most this much of a server's `error_description` is kept: it arrived in a URL anyone can craft. */
const MAX_DESCRIPTION = 200

/**
 * Text from a URL as an error may carry it: printable characters only, cut
 * short.
 *
 * @example
 * ```ts
 * SignIn.printable("a\u0000b".repeat(300)) // "a b a b ..." (200 characters at most)
 * ```
 *
 * @since 0.2.0
 */
export const printable = (text: string): string =>
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is removed
  text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, " ").slice(0, MAX_DESCRIPTION)

/**
 * Checks a callback's parameters after its `state` has been matched to this
 * browser's sign-in, and returns the authorization code. In order: `iss`
 * (RFC 9207 2.4, checked first so that not even an error of another server
 * is believed), an `error` answer (RFC 6749 4.1.2.1), the `code`.
 *
 * @example
 * ```ts
 * const result = SignIn.checkCallback(new URL(request.url).searchParams, { issuer, issRequired: true })
 * if (Result.isFailure(result)) return problem(result.failure)
 * ```
 *
 * @since 0.2.0
 */
export const checkCallback = (
  params: URLSearchParams,
  expected: ExpectedCallback
): Result.Result<string, SignInError> => {
  const iss = params.get("iss")
  if (iss !== null) {
    if (expected.issuer !== undefined && iss !== expected.issuer) {
      return Result.fail(
        new SignInError({
          reason: "issuer_mismatch",
          detail: "the callback's iss names another authorization server (RFC 9207)"
        })
      )
    }
  } else if (expected.issRequired) {
    return Result.fail(
      new SignInError({
        reason: "issuer_missing",
        detail: "the authorization server sends iss (its metadata says so) and this callback has none"
      })
    )
  }
  const error = params.get("error")
  if (error !== null) {
    const description = params.get("error_description")
    return Result.fail(
      new SignInError({
        reason: "authorization_error",
        code: printable(error),
        ...(description === null ? {} : { description: printable(description) })
      })
    )
  }
  const code = params.get("code")
  if (code === null || code === "") {
    return Result.fail(new SignInError({ reason: "code_missing", detail: "the callback has no code" }))
  }
  return Result.succeed(code)
}

/** Longest `returnTo` accepted. */
const MAX_RETURN_TO = 2048

/**
 * Where to send the browser after sign-in, if `value` is a path of this app:
 * it starts with one `/` (not `//` or `/\`, which browsers read as another
 * host), has no backslash, control character or space, and resolves to
 * `appOrigin`. Anything else (`https://evil.example`, `//evil.example`,
 * `/\evil.example`, `javascript:...`) is `undefined`: refused, never
 * "fixed".
 *
 * @example
 * ```ts
 * SignIn.safeReturnTo("/claims?page=2", "https://app.example") // "/claims?page=2"
 * SignIn.safeReturnTo("//evil.example", "https://app.example") // undefined
 * ```
 *
 * @since 0.2.0
 */
export const safeReturnTo = (value: string, appOrigin: string): string | undefined => {
  if (value.length === 0 || value.length > MAX_RETURN_TO) return undefined
  if (value[0] !== "/" || value[1] === "/" || value[1] === "\\") return undefined
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are refused
  if (/[\u0000-\u0020\u007f\\]/.test(value)) return undefined
  let url: URL
  try {
    url = new URL(value, appOrigin)
  } catch {
    return undefined
  }
  if (url.origin !== appOrigin) return undefined
  return `${url.pathname}${url.search}${url.hash}`
}
