/**
 * WealthCare's OpenID Connect side, as an IdentityServer-style server
 * publishes it: the claims of a user, ID tokens (OIDC Core section 2),
 * discovery (OpenID Connect Discovery 1.0, and the same document as RFC 8414
 * authorization server metadata), the JWK Set, the userinfo endpoint (OIDC
 * Core section 5.3) and RP-initiated logout (OpenID Connect RP-Initiated
 * Logout 1.0).
 *
 * The sandbox keeps no sign-in session (every authorization request shows the
 * sign-in form, unless `autoApprove`), so the end-session endpoint has
 * nothing of its own to end: it checks what it is given and sends the user
 * agent back, or says the user is signed out.
 *
 * @internal
 */
import type { IncomingMessage, ServerResponse } from "node:http"
import type { SandboxUser } from "../types.ts"
import { presentedToken } from "./api.ts"
import type { Context, RequestLog, ResolvedClient } from "./context.ts"
import { messagePage } from "./html.ts"
import { parseFormStrict, readForm, sendEmpty, sendJson, sendText } from "./http.ts"
import { signJwt, verifyJwt } from "./jwt.ts"
import { fingerprint, type SignIn } from "./tokens.ts"

/** End-session form bodies above this are refused, as token requests are. */
const BODY_LIMIT = 16 * 1024

/** The OpenID Connect scopes the sandbox knows (OIDC Core section 5.4): not API scopes. */
export const IDENTITY_SCOPES: ReadonlyArray<string> = ["openid", "profile", "email"]

/** Claims the protocol or a user's fields set: a user's extra `claims` may not name them. */
export const RESERVED_CLAIMS: ReadonlyArray<string> = [
  "iss",
  "sub",
  "aud",
  "exp",
  "iat",
  "nbf",
  "jti",
  "auth_time",
  "nonce",
  "azp",
  "sid",
  "at_hash",
  "c_hash",
  "acr",
  "amr",
  "name",
  "preferred_username",
  "email",
  "email_verified"
]

const WEALTHCARE_GRANTS = ["client_credentials", "authorization_code", "refresh_token", "password"]
const AUTH_METHODS = ["client_secret_post", "client_secret_basic"]

const scopesOf = (scope: string): ReadonlyArray<string> => scope.split(" ")

/**
 * What the sandbox says about a user, for a granted scope: `sub` always;
 * `name` and `preferred_username` with `profile`; `email` and
 * `email_verified` with `email` (OIDC Core section 5.4); the user's own extra
 * claims with `openid`.
 */
export const userClaims = (user: SandboxUser, scope: string): Record<string, unknown> => {
  const scopes = scopesOf(scope)
  const claims: Record<string, unknown> = { sub: user.username }
  if (scopes.includes("profile")) {
    if (user.name !== undefined) claims.name = user.name
    claims.preferred_username = user.username
  }
  if (scopes.includes("email") && user.email !== undefined) {
    claims.email = user.email
    // a sandbox's test users are what the configuration says they are
    claims.email_verified = true
  }
  return { ...claims, ...(user.claims ?? {}) }
}

/** The user a grant was for, if the subject names one (a client's own token names the client). */
export const userOf = (ctx: Context, subject: string): SandboxUser | undefined =>
  ctx.users.find((u) => u.username === subject)

/**
 * An ID token for a grant that began with a sign-in, when its scope has
 * `openid` (else undefined). `nonce` only for the authorization code's own
 * token response, never on a refresh (OIDC Core section 12.2).
 */
export const idToken = (
  ctx: Context,
  input: {
    readonly clientId: string
    readonly subject: string
    readonly scope: string
    readonly signIn: SignIn
    readonly nonce: string | undefined
    readonly now: number
  }
): string | undefined => {
  const key = ctx.signingKey
  const user = userOf(ctx, input.subject)
  if (key === undefined || user === undefined || !scopesOf(input.scope).includes("openid")) return undefined
  const iat = Math.floor(input.now / 1000)
  const { sub, ...claims } = userClaims(user, input.scope)
  // OIDC Core section 2: iss exactly the issuer of discovery; aud the client; azp as IdentityServer adds it.
  return signJwt(key, {
    iss: ctx.url,
    sub,
    aud: input.clientId,
    azp: input.clientId,
    iat,
    exp: iat + ctx.tokenTtl,
    auth_time: input.signIn.authTime,
    ...(input.nonce === undefined ? {} : { nonce: input.nonce }),
    sid: input.signIn.sid,
    ...claims
  })
}

/** The discovery document, the same at both well-known URLs. */
export const metadata = (ctx: Context): Record<string, unknown> => {
  const url = ctx.url
  const scopes = new Set<string>()
  for (const client of ctx.clients.values()) for (const scope of client.scopes) scopes.add(scope)
  const extraClaims = new Set<string>()
  for (const user of ctx.users) for (const name of Object.keys(user.claims ?? {})) extraClaims.add(name)
  return {
    issuer: url,
    authorization_endpoint: `${url}/connect/authorize`,
    token_endpoint: `${url}/connect/token`,
    userinfo_endpoint: `${url}/connect/userinfo`,
    revocation_endpoint: `${url}/connect/revocation`,
    end_session_endpoint: `${url}/connect/endsession`,
    jwks_uri: `${url}/.well-known/jwks.json`,
    scopes_supported: [...scopes],
    claims_supported: [
      "sub",
      "name",
      "preferred_username",
      "email",
      "email_verified",
      "iss",
      "aud",
      "azp",
      "iat",
      "exp",
      "auth_time",
      "nonce",
      "sid",
      ...extraClaims
    ],
    grant_types_supported: WEALTHCARE_GRANTS,
    response_types_supported: ["code"],
    response_modes_supported: ["query"],
    subject_types_supported: ["public"],
    id_token_signing_alg_values_supported: ["RS256"],
    code_challenge_methods_supported: ["S256"],
    token_endpoint_auth_methods_supported: AUTH_METHODS,
    revocation_endpoint_auth_methods_supported: AUTH_METHODS,
    prompt_values_supported: ["none", "login", "consent", "select_account"],
    // OpenID Connect Discovery 1.0 section 3: its default is true, and the sandbox has no request_uri.
    request_uri_parameter_supported: false,
    // RFC 9207 section 3: clients may then require `iss` in every authorization response.
    authorization_response_iss_parameter_supported: true
  }
}

/** The well-known paths this module answers. */
export const METADATA_PATHS: ReadonlyArray<string> = [
  "/.well-known/openid-configuration",
  "/.well-known/oauth-authorization-server",
  "/.well-known/jwks.json"
]

/** `GET /.well-known/openid-configuration`, `/.well-known/oauth-authorization-server`, `/.well-known/jwks.json`. */
export const handleMetadata = (
  ctx: Context,
  req: IncomingMessage,
  res: ServerResponse,
  log: RequestLog,
  url: URL
): void => {
  log.kind = "metadata"
  if (req.method !== "GET" && req.method !== "HEAD") {
    log.error = "method_not_allowed"
    sendText(res, 405, "Method Not Allowed\n", "text/plain; charset=utf-8", { Allow: "GET, HEAD" })
    return
  }
  // Revalidated, not cached: a restarted sandbox on the same port has another key.
  const headers = { "Cache-Control": "no-cache" }
  if (url.pathname === "/.well-known/jwks.json") {
    sendJson(res, 200, { keys: ctx.signingKey === undefined ? [] : [ctx.signingKey.jwk] }, headers)
    return
  }
  sendJson(res, 200, metadata(ctx), headers)
}

/**
 * `GET|POST /connect/userinfo` (OIDC Core section 5.3): the claims of the
 * token's user, for its scope. The access token comes in the `Authorization`
 * header only (RFC 6750 section 2.1). Refusals as RFC 6750 section 3.1 has
 * them: no token, `401` with a bare `Bearer` challenge; a token that is
 * unknown, expired or revoked, `401` `invalid_token`; a valid token without
 * `openid` (or of no user), `403` `insufficient_scope`.
 */
export const handleUserinfo = (
  ctx: Context,
  req: IncomingMessage,
  res: ServerResponse,
  log: RequestLog
): void => {
  log.kind = "userinfo"
  if (req.method !== "GET" && req.method !== "POST") {
    log.error = "method_not_allowed"
    sendText(res, 405, "Method Not Allowed\n", "text/plain; charset=utf-8", { Allow: "GET, POST" })
    return
  }
  const presented = presentedToken(req.headers.authorization)
  if (presented.kind === "missing") {
    log.error = "missing"
    sendEmpty(res, 401, { "WWW-Authenticate": 'Bearer realm="userinfo"' })
    return
  }
  const check = ctx.registry.checkAccess(presented.value, ctx.now())
  log.tokenFingerprint = fingerprint(presented.value)
  if (check.state !== "unknown") {
    log.clientId = check.record.clientId
    log.subject = check.record.subject
  }
  if (check.state !== "valid") {
    log.error = check.state
    const description =
      check.state === "expired"
        ? "The access token expired"
        : check.state === "revoked"
          ? "The access token is revoked"
          : "The access token is invalid"
    sendEmpty(res, 401, {
      "WWW-Authenticate": `Bearer realm="userinfo", error="invalid_token", error_description="${description}"`
    })
    return
  }
  const record = check.record
  const user = record.grantType === "client_credentials" ? undefined : userOf(ctx, record.subject)
  if (user === undefined || record.scope === undefined || !scopesOf(record.scope).includes("openid")) {
    log.error = "insufficient_scope"
    sendEmpty(res, 403, {
      "WWW-Authenticate": 'Bearer realm="userinfo", error="insufficient_scope", scope="openid"'
    })
    return
  }
  sendJson(res, 200, userClaims(user, record.scope), { "Cache-Control": "no-store", Pragma: "no-cache" })
}

/** Whether a post-logout redirect URI is on the origin of one of the client's redirect URIs. */
const onRegisteredOrigin = (client: ResolvedClient, given: string): boolean => {
  let target: URL
  try {
    target = new URL(given)
  } catch {
    return false
  }
  if (target.hash !== "" || given.includes("#")) return false
  return client.redirectUris.some((registered) => {
    const r = new URL(registered)
    if (r.protocol !== target.protocol || r.hostname !== target.hostname) return false
    // RFC 8252 section 7.3: a loopback redirect URI may come back on any port; so may the user after logout.
    const loopback =
      r.protocol === "http:" && ["127.0.0.1", "[::1]", "localhost"].includes(r.hostname) && r.port === ""
    return loopback || r.port === target.port
  })
}

/**
 * `GET|POST /connect/endsession` (OpenID Connect RP-Initiated Logout 1.0):
 * `id_token_hint` (an ID token of this sandbox, expired or not), `client_id`,
 * `post_logout_redirect_uri`, `state`. The user agent goes back to
 * `post_logout_redirect_uri` (with `state`) only when it is on the origin of
 * one of the client's registered redirect URIs, the client named by the hint
 * or `client_id`; otherwise it gets a page saying it is signed out.
 */
export const handleEndSession = async (
  ctx: Context,
  req: IncomingMessage,
  res: ServerResponse,
  log: RequestLog,
  url: URL
): Promise<void> => {
  log.kind = "endsession"
  const page = (status: number, heading: string, text: string) =>
    messagePage(res, status, "Sign out", heading, text)
  let params: ReadonlyMap<string, string>
  if (req.method === "GET") {
    const parsed = parseFormStrict(url.search.slice(1))
    if (!parsed.ok) {
      log.error = "invalid_request"
      return page(400, "invalid_request", parsed.description)
    }
    params = parsed.params
  } else if (req.method === "POST") {
    const form = await readForm(req, res, BODY_LIMIT)
    if (!form.ok) {
      if (form.aborted) return
      log.error = "invalid_request"
      return page(400, "invalid_request", form.description)
    }
    params = form.params
  } else {
    log.error = "method_not_allowed"
    sendText(res, 405, "Method Not Allowed\n", "text/plain; charset=utf-8", { Allow: "GET, POST" })
    return
  }

  let clientId = params.get("client_id")
  const hint = params.get("id_token_hint")
  if (hint !== undefined) {
    const claims = ctx.signingKey === undefined ? undefined : verifyJwt(ctx.signingKey, hint)
    if (claims === undefined || claims.iss !== ctx.url || typeof claims.aud !== "string") {
      log.error = "invalid_request"
      return page(400, "invalid_request", "The id_token_hint is not an ID token of this sandbox")
    }
    if (clientId !== undefined && clientId !== claims.aud) {
      log.error = "invalid_request"
      return page(400, "invalid_request", "The client_id is not the audience of the id_token_hint")
    }
    clientId = claims.aud
    if (typeof claims.sub === "string") log.subject = claims.sub
  }
  const client = clientId === undefined ? undefined : ctx.clients.get(clientId)
  if (clientId !== undefined) {
    log.clientId = clientId
    if (client === undefined) {
      log.error = "invalid_request"
      return page(400, "invalid_request", "Unknown client")
    }
  }
  const target = params.get("post_logout_redirect_uri")
  if (target !== undefined && client !== undefined && onRegisteredOrigin(client, target)) {
    const location = new URL(target)
    const state = params.get("state")
    if (state !== undefined) location.searchParams.set("state", state)
    res.writeHead(302, { Location: location.href, "Cache-Control": "no-store", "Content-Length": "0" })
    res.end()
    return
  }
  if (target !== undefined) log.error = "post_logout_redirect_uri_not_allowed"
  return page(
    200,
    "You are signed out",
    target === undefined
      ? "You can close this window."
      : "The application's post_logout_redirect_uri was not used: it is not on the origin of a redirect URI registered for the client (identified by id_token_hint or client_id)."
  )
}
