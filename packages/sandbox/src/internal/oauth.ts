/**
 * The token endpoint of each profile, and what the other endpoints of the
 * authorization server share with it: client authentication and scopes.
 *
 * WEX (`POST /authorize`): client credentials only, errors worded exactly as
 * WEX documents them. WealthCare (`POST /connect/token`): the four grants it
 * documents, with what a careful server adds around them: PKCE S256 only,
 * single-use codes bound to client, redirect URI, user and nonce, rotating
 * refresh tokens whose reuse revokes the whole grant (RFC 9700 section
 * 4.14.2), and an OpenID Connect ID token when the grant has scope `openid`
 * and began with a sign-in (authorization code, and its refreshes).
 *
 * Order of checks on a token request: the body is read (capped), the faults
 * of the token endpoint apply (they stand for the gateway in front), then the
 * request is validated, the client authenticated, the per-client rate limit
 * taken, and the grant served. A refused client does not use up the rate
 * limit of the client it claims to be. The `invalidGrant` fault comes after
 * the rate limit: it is the server refusing a grant, not the gateway.
 *
 * @internal
 */
import { createHash, timingSafeEqual } from "node:crypto"
import type { IncomingMessage, ServerResponse } from "node:http"
import type { SandboxGrant } from "../types.ts"
import type { Context, RequestLog, ResolvedClient } from "./context.ts"
import { injectFaults } from "./faults.ts"
import {
  charset,
  closeAfterResponse,
  mediaType,
  parseFormStrict,
  printable,
  readCapped,
  sendJson,
  sendText
} from "./http.ts"
import { IDENTITY_SCOPES, idToken } from "./oidc.ts"
import { newFamily, type SignIn } from "./tokens.ts"

/** Token request bodies above this are refused unread. A real one is a few hundred bytes. */
export const TOKEN_BODY_LIMIT = 16 * 1024

/** RFC 6749 section 5.1: token responses (and, by its examples, errors) must not be cached. */
export const NO_STORE = { "Cache-Control": "no-store", Pragma: "no-cache" } as const

const DESCRIPTIONS = {
  wex: {
    invalidClient: "Client authentication failed",
    unsupportedGrant: "Grant type not supported"
  },
  wealthcare: {
    invalidClient: "Client authentication failed.",
    unsupportedGrant: "The grant type is not supported."
  }
} as const

export const tokenError = (
  res: ServerResponse,
  log: RequestLog,
  status: number,
  error: string,
  description: string,
  headers: Record<string, string> = {}
): void => {
  log.error = error
  sendJson(res, status, { error, error_description: description }, { ...NO_STORE, ...headers })
}

const digest = (value: string): Buffer => createHash("sha256").update(value).digest()

/** Constant-time comparison of two secrets of any length (hashing first evens the lengths). */
export const sameSecret = (a: string, b: string): boolean => timingSafeEqual(digest(a), digest(b))

/** RFC 6749 section 2.3.1: id and secret are form-encoded before Basic encoding, so form-decode them. */
const decodeBasic = (header: string): { id: string; secret: string } | undefined => {
  const match = /^Basic +([A-Za-z0-9+/]+={0,2}) *$/i.exec(header)
  if (match === null) return undefined
  const decoded = Buffer.from(match[1]!, "base64").toString("utf8")
  const colon = decoded.indexOf(":")
  if (colon === -1) return undefined
  try {
    const form = (s: string) => decodeURIComponent(s.replace(/\+/g, " "))
    return { id: form(decoded.slice(0, colon)), secret: form(decoded.slice(colon + 1)) }
  } catch {
    return undefined
  }
}

export type ClientAuthentication =
  | { readonly ok: true; readonly client: ResolvedClient }
  | {
      readonly ok: false
      readonly status: 400 | 401
      readonly error: "invalid_client" | "invalid_request"
      readonly description: string
      readonly basic: boolean
    }

/** The client id a request claims, for attribution before it is authenticated. */
export const claimedClientId = (
  req: IncomingMessage,
  params: ReadonlyMap<string, string>
): string | undefined => {
  const header = req.headers.authorization
  if (header !== undefined) return decodeBasic(header)?.id ?? params.get("client_id")
  return params.get("client_id")
}

export const authenticateClient = (
  ctx: Context,
  req: IncomingMessage,
  params: ReadonlyMap<string, string>
): ClientAuthentication => {
  const failed = DESCRIPTIONS[ctx.profile].invalidClient
  const header = req.headers.authorization
  let id: string | undefined
  let secret: string | undefined
  const basic = header !== undefined
  if (basic) {
    const credentials = decodeBasic(header)
    if (credentials === undefined) {
      return { ok: false, status: 401, error: "invalid_client", description: failed, basic }
    }
    // RFC 6749 section 2.3: "The client MUST NOT use more than one authentication method in each request."
    if (params.has("client_secret")) {
      return {
        ok: false,
        status: 400,
        error: "invalid_request",
        description: "The client used more than one authentication method (RFC 6749 section 2.3)",
        basic
      }
    }
    const bodyId = params.get("client_id")
    if (bodyId !== undefined && bodyId !== credentials.id) {
      return { ok: false, status: 401, error: "invalid_client", description: failed, basic }
    }
    id = credentials.id
    secret = credentials.secret
  } else {
    id = params.get("client_id")
    secret = params.get("client_secret")
  }
  const client = id === undefined ? undefined : ctx.clients.get(id)
  if (client === undefined || secret === undefined || !sameSecret(secret, client.clientSecret)) {
    return { ok: false, status: 401, error: "invalid_client", description: failed, basic }
  }
  return { ok: true, client }
}

/**
 * The authenticated client of a request to the token or revocation endpoint,
 * or `undefined` once the refusal is answered (RFC 6749 5.2: `401` with a
 * `Basic` challenge when the client tried HTTP Basic).
 */
export const authenticatedClient = (
  ctx: Context,
  req: IncomingMessage,
  res: ServerResponse,
  log: RequestLog,
  params: ReadonlyMap<string, string>
): ResolvedClient | undefined => {
  const auth = authenticateClient(ctx, req, params)
  if (!auth.ok) {
    const headers: Record<string, string> = auth.basic
      ? { "WWW-Authenticate": 'Basic realm="authfetch-sandbox", charset="UTF-8"' }
      : {}
    tokenError(res, log, auth.status, auth.error, auth.description, headers)
    return undefined
  }
  log.clientId = auth.client.clientId
  return auth.client
}

// RFC 6749 section 3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
const SCOPE_TOKEN = /^[\x21\x23-\x5b\x5d-\x7e]+$/

export type ScopeResult =
  | { readonly ok: true; readonly scope: string }
  | { readonly ok: false; readonly description: string }

/**
 * The scope to grant: what was asked for, if every part of it is allowed, or
 * the allowed scopes when nothing was asked for (RFC 6749 section 3.3 lets the
 * server pick a default).
 *
 * The default leaves out the OpenID Connect scopes: a request without
 * `openid` is a plain OAuth 2.0 request (OIDC Core section 3.1.2.1), and an
 * ID token nobody asked for is not wanted. `profile` or `email` without
 * `openid` is refused, as IdentityServer does (they are claims of an identity
 * that was not asked for); so is any of them where no user signs in
 * (`client_credentials`).
 */
export const resolveScope = (
  requested: string | undefined,
  allowed: ReadonlyArray<string>,
  userGrant: boolean
): ScopeResult => {
  if (requested === undefined) {
    return {
      ok: true,
      scope: allowed
        .filter((s) => !IDENTITY_SCOPES.includes(s) && (userGrant || s !== "offline_access"))
        .join(" ")
    }
  }
  const parts = [...new Set(requested.split(" ").filter((s) => s.length > 0))]
  for (const part of parts) {
    if (!SCOPE_TOKEN.test(part)) return { ok: false, description: "The scope parameter is malformed" }
    if (!allowed.includes(part)) {
      return {
        ok: false,
        description: `The requested scope is invalid, unknown or not allowed: ${printable(part)}`
      }
    }
    if (part === "offline_access" && !userGrant) {
      return {
        ok: false,
        description: "offline_access is not available with client_credentials (RFC 6749 section 4.4.3)"
      }
    }
    if (IDENTITY_SCOPES.includes(part) && !userGrant) {
      return {
        ok: false,
        description: `${part} is an OpenID Connect scope: it needs a user, not client_credentials`
      }
    }
  }
  if (!parts.includes("openid") && parts.some((p) => IDENTITY_SCOPES.includes(p))) {
    return { ok: false, description: "Identity scopes (profile, email) need the openid scope" }
  }
  return { ok: true, scope: parts.join(" ") }
}

const hasOffline = (scope: string): boolean => scope.split(" ").includes("offline_access")

const issueTokens = (
  ctx: Context,
  res: ServerResponse,
  log: RequestLog,
  input: {
    readonly client: ResolvedClient
    readonly grantType: SandboxGrant
    readonly scope: string | undefined
    readonly subject: string
    readonly familyId: string | undefined
    /** the sign-in the grant began with: an ID token is issued with scope `openid` */
    readonly signIn?: SignIn | undefined
    /** the authorization request's nonce, for the first ID token only (OIDC Core section 12.2) */
    readonly nonce?: string | undefined
  }
): void => {
  const now = ctx.now()
  const withRefresh = input.scope !== undefined && hasOffline(input.scope)
  const familyId = input.familyId ?? (withRefresh ? newFamily() : undefined)
  const { value, record } = ctx.registry.issueAccess({
    clientId: input.client.clientId,
    grantType: input.grantType,
    scope: input.scope,
    subject: input.subject,
    signIn: input.signIn,
    now,
    ttlSeconds: ctx.tokenTtl,
    familyId
  })
  log.tokenFingerprint = record.fingerprint
  log.subject = input.subject
  const body: Record<string, unknown> = {
    access_token: value,
    token_type: "Bearer",
    expires_in: ctx.tokenTtl
  }
  if (input.scope !== undefined && input.scope.length > 0) body.scope = input.scope
  if (withRefresh && familyId !== undefined) {
    body.refresh_token = ctx.registry.issueRefresh({
      clientId: input.client.clientId,
      scope: input.scope!,
      subject: input.subject,
      signIn: input.signIn,
      familyId,
      expiresAt: now + ctx.refreshTokenTtl * 1000
    })
  }
  if (input.signIn !== undefined && input.scope !== undefined) {
    const token = idToken(ctx, {
      clientId: input.client.clientId,
      subject: input.subject,
      scope: input.scope,
      signIn: input.signIn,
      nonce: input.nonce,
      now
    })
    if (token !== undefined) body.id_token = token
  }
  sendJson(res, 200, body, NO_STORE)
}

/** `POST /authorize` (wex) and `POST /connect/token` (wealthcare). */
export const handleToken = async (
  ctx: Context,
  req: IncomingMessage,
  res: ServerResponse,
  log: RequestLog
): Promise<void> => {
  log.kind = "token"
  const read = await readCapped(req, TOKEN_BODY_LIMIT)
  if (!read.ok) {
    if (read.reason === "aborted") return
    closeAfterResponse(res)
    tokenError(res, log, 400, "invalid_request", `The request body is larger than ${TOKEN_BODY_LIMIT} bytes`)
    return
  }
  const isForm = mediaType(req.headers["content-type"]) === "application/x-www-form-urlencoded"
  const parsed = isForm ? parseFormStrict(read.body) : undefined
  if (parsed?.ok) {
    const grantType = parsed.params.get("grant_type")
    const clientId = claimedClientId(req, parsed.params)
    if (grantType !== undefined) log.grantType = grantType
    if (clientId !== undefined) log.clientId = clientId
  }

  const answered = await injectFaults(ctx.faults.token, ctx.random, ctx.sleep, req.socket, log, {
    rateLimited: (retryAfter) =>
      tokenError(res, log, 429, "too_many_requests", `Too many requests; retry after ${retryAfter} seconds`, {
        "Retry-After": String(retryAfter)
      }),
    failed: (status) => {
      if (status === 502) {
        log.error = "bad_gateway"
        sendText(res, 502, BAD_GATEWAY_HTML, "text/html; charset=utf-8", NO_STORE)
      } else if (status === 500) {
        tokenError(
          res,
          log,
          500,
          "server_error",
          "The authorization server encountered an unexpected condition"
        )
      } else {
        tokenError(
          res,
          log,
          503,
          "temporarily_unavailable",
          "The authorization server is temporarily unavailable"
        )
      }
    }
  })
  if (answered) return

  if (req.method !== "POST") {
    tokenError(res, log, 405, "invalid_request", "The token endpoint accepts POST only", { Allow: "POST" })
    return
  }
  if (!isForm) {
    tokenError(res, log, 400, "invalid_request", "The Content-Type must be application/x-www-form-urlencoded")
    return
  }
  const cs = charset(req.headers["content-type"])
  if (cs !== undefined && cs !== "utf-8" && cs !== "utf8") {
    tokenError(res, log, 400, "invalid_request", "The request body must be UTF-8")
    return
  }
  if (parsed === undefined || !parsed.ok) {
    tokenError(res, log, 400, "invalid_request", parsed?.description ?? "Malformed request body")
    return
  }
  const params = parsed.params
  const grantType = params.get("grant_type")
  if (grantType === undefined) {
    tokenError(res, log, 400, "invalid_request", "The grant_type parameter is missing")
    return
  }

  const client = authenticatedClient(ctx, req, res, log, params)
  if (client === undefined) return

  if (ctx.limiter !== undefined) {
    const slot = ctx.limiter.take(client.clientId)
    if (!slot.ok) {
      tokenError(
        res,
        log,
        429,
        "too_many_requests",
        `Token request rate limit exceeded for this client; retry after ${slot.retryAfterSeconds} seconds`,
        { "Retry-After": String(slot.retryAfterSeconds) }
      )
      return
    }
  }

  if (ctx.faults.invalidGrant.refuses(grantType, ctx.random)) {
    // Nothing is looked up or consumed: the same request may succeed once the fault is gone.
    log.faults.push("invalid_grant")
    tokenError(res, log, 400, "invalid_grant", "The provided grant is invalid, expired or revoked")
    return
  }

  if (ctx.profile === "wex") {
    if (grantType !== "client_credentials") {
      tokenError(res, log, 400, "unsupported_grant_type", DESCRIPTIONS.wex.unsupportedGrant)
      return
    }
    issueTokens(ctx, res, log, {
      client,
      grantType,
      scope: undefined,
      subject: client.clientId,
      familyId: undefined
    })
    return
  }
  await wealthcareGrant(ctx, res, log, client, grantType, params)
}

const WEALTHCARE_GRANTS: ReadonlyArray<string> = [
  "client_credentials",
  "authorization_code",
  "refresh_token",
  "password"
]

const wealthcareGrant = async (
  ctx: Context,
  res: ServerResponse,
  log: RequestLog,
  client: ResolvedClient,
  grantType: string,
  params: ReadonlyMap<string, string>
): Promise<void> => {
  if (!WEALTHCARE_GRANTS.includes(grantType)) {
    tokenError(res, log, 400, "unsupported_grant_type", DESCRIPTIONS.wealthcare.unsupportedGrant)
    return
  }
  const grant = grantType as SandboxGrant
  if (!client.grants.has(grant)) {
    tokenError(res, log, 400, "unauthorized_client", `The client is not allowed to use the ${grant} grant`)
    return
  }
  const fail = (error: string, description: string) => tokenError(res, log, 400, error, description)
  // A new grant (no refresh family yet): the requested scope checked, then tokens issued.
  const issueScoped = (offline: boolean, subject: string) => {
    const scope = resolveScope(params.get("scope"), client.scopes, offline)
    if (!scope.ok) return fail("invalid_scope", scope.description)
    issueTokens(ctx, res, log, { client, grantType: grant, scope: scope.scope, subject, familyId: undefined })
  }

  switch (grant) {
    case "client_credentials":
      return issueScoped(false, client.clientId)

    case "password": {
      const username = params.get("username")
      const password = params.get("password")
      if (username === undefined || password === undefined) {
        return fail("invalid_request", "The username and password parameters are required")
      }
      const user = ctx.users.find((u) => u.username === username)
      // compare even for an unknown user, so timing does not tell which usernames exist
      const matches = sameSecret(password, user?.password ?? "\u0000no-such-user")
      if (user === undefined || !matches) return fail("invalid_grant", "Invalid username or password")
      return issueScoped(true, user.username)
    }

    case "authorization_code": {
      const value = params.get("code")
      if (value === undefined) return fail("invalid_request", "The code parameter is missing")
      const code = ctx.registry.findCode(value)
      if (code === undefined || code.clientId !== client.clientId) {
        return fail("invalid_grant", "The authorization code is invalid")
      }
      if (code.used) {
        // RFC 6749 section 4.1.2: a code used twice must be refused, and what it produced revoked.
        ctx.registry.revokeFamily(code.familyId)
        return fail(
          "invalid_grant",
          "The authorization code was already used; the tokens issued from it are revoked (RFC 6749 section 4.1.2)"
        )
      }
      // Consumed by any attempt, failed or not: a code must not serve to guess its verifier.
      code.used = true
      if (code.revoked) return fail("invalid_grant", "The authorization code is revoked")
      if (ctx.now() >= code.expiresAt) return fail("invalid_grant", "The authorization code has expired")
      const redirectUri = params.get("redirect_uri")
      // RFC 6749 section 4.1.3: identical to the authorization request's, when that one carried it.
      if (
        (code.redirectUriGiven && redirectUri !== code.redirectUri) ||
        (redirectUri !== undefined && redirectUri !== code.redirectUri)
      ) {
        return fail("invalid_grant", "The redirect_uri does not match the authorization request")
      }
      const verifier = params.get("code_verifier")
      if (verifier === undefined) {
        return fail("invalid_grant", "PKCE verification failed: the code_verifier parameter is missing")
      }
      // RFC 7636 section 4.1: 43 to 128 unreserved characters.
      if (!/^[A-Za-z0-9\-._~]{43,128}$/.test(verifier)) {
        return fail(
          "invalid_grant",
          "PKCE verification failed: the code_verifier is malformed (RFC 7636 section 4.1)"
        )
      }
      const challenge = createHash("sha256").update(verifier, "ascii").digest("base64url")
      if (!sameSecret(challenge, code.codeChallenge)) {
        return fail(
          "invalid_grant",
          "PKCE verification failed: the code_verifier does not match the code_challenge"
        )
      }
      issueTokens(ctx, res, log, {
        client,
        grantType: grant,
        scope: code.scope,
        subject: code.subject,
        familyId: code.familyId,
        signIn: code.signIn,
        nonce: code.nonce
      })
      return
    }

    case "refresh_token": {
      const value = params.get("refresh_token")
      if (value === undefined) return fail("invalid_request", "The refresh_token parameter is missing")
      const token = ctx.registry.findRefresh(value)
      if (token === undefined || token.clientId !== client.clientId) {
        return fail("invalid_grant", "The refresh token is invalid")
      }
      if (token.revoked) return fail("invalid_grant", "The refresh token is revoked")
      if (token.used) {
        // RFC 9700 section 4.14.2: a rotated refresh token presented again means it leaked, or
        // the client is confused; either way the whole grant is revoked.
        ctx.registry.revokeFamily(token.familyId)
        return fail(
          "invalid_grant",
          "The refresh token was already used; every token of this grant is revoked (RFC 9700 section 4.14.2)"
        )
      }
      if (ctx.now() >= token.expiresAt) return fail("invalid_grant", "The refresh token has expired")
      const scope = resolveScope(params.get("scope") ?? token.scope, token.scope.split(" "), true)
      if (!scope.ok) return fail("invalid_scope", scope.description)
      token.used = true
      // OIDC Core section 12.2: the new ID token has the same sub, iss, aud and sid, and no nonce.
      issueTokens(ctx, res, log, {
        client,
        grantType: grant,
        scope: scope.scope,
        subject: token.subject,
        familyId: token.familyId,
        signIn: token.signIn
      })
      return
    }
  }
}

export const BAD_GATEWAY_HTML =
  "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center></body></html>\n"
