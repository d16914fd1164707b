/**
 * The authorization server side: the token endpoint of each profile, and
 * WealthCare's authorization endpoint.
 *
 * WEX (`POST /authorize`): client credentials only, errors worded exactly as
 * WEX documents them. WealthCare (`POST /connect/token`, `GET
 * /connect/authorize`): the four grants it documents, with what a careful
 * server adds around them: PKCE S256 only, single-use codes bound to client
 * and redirect URI, rotating refresh tokens whose reuse revokes the whole
 * grant (RFC 9700 section 4.14.2).
 *
 * Order of checks on a token request: the body is read (capped), the faults
 * of the token endpoint apply (they stand for the gateway in front), then the
 * request is validated, the client authenticated, the per-client rate limit
 * taken, and the grant served. A refused client does not use up the rate
 * limit of the client it claims to be.
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
import { newFamily } from "./tokens.ts"

/** Token request bodies above this are refused unread. A real one is a few hundred bytes. */
export const TOKEN_BODY_LIMIT = 16 * 1024

/** Authorization codes live this long (RFC 6749 section 4.1.2: "maximum ... of 10 minutes RECOMMENDED"; short is better). */
const CODE_TTL_MS = 60_000

/** RFC 6749 section 5.1: token responses (and, by its examples, errors) must not be cached. */
const NO_STORE = { "Cache-Control": "no-store", Pragma: "no-cache" } as const

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

const tokenError = (
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
const sameSecret = (a: string, b: string): boolean => timingSafeEqual(digest(a), digest(b))

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

type ClientAuthentication =
  | { readonly ok: true; readonly client: ResolvedClient }
  | {
      readonly ok: false
      readonly status: 400 | 401
      readonly error: "invalid_client" | "invalid_request"
      readonly description: string
      readonly basic: boolean
    }

/** The client id a request claims, for attribution before it is authenticated. */
const claimedClientId = (req: IncomingMessage, params: ReadonlyMap<string, string>): string | undefined => {
  const header = req.headers.authorization
  if (header !== undefined) return decodeBasic(header)?.id ?? params.get("client_id")
  return params.get("client_id")
}

const authenticateClient = (
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

// RFC 6749 section 3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
const SCOPE_TOKEN = /^[\x21\x23-\x5b\x5d-\x7e]+$/

type ScopeResult =
  | { readonly ok: true; readonly scope: string }
  | { readonly ok: false; readonly description: string }

/**
 * The scope to grant: what was asked for, if every part of it is allowed, or
 * everything allowed when nothing was asked for (RFC 6749 section 3.3 lets the
 * server pick a default).
 */
const resolveScope = (
  requested: string | undefined,
  allowed: ReadonlyArray<string>,
  offlineAllowed: boolean
): ScopeResult => {
  if (requested === undefined) {
    return { ok: true, scope: allowed.filter((s) => offlineAllowed || s !== "offline_access").join(" ") }
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
    if (part === "offline_access" && !offlineAllowed) {
      return {
        ok: false,
        description: "offline_access is not available with client_credentials (RFC 6749 section 4.4.3)"
      }
    }
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
    now,
    ttlSeconds: ctx.tokenTtl,
    familyId
  })
  log.tokenFingerprint = record.fingerprint
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
      familyId,
      expiresAt: now + ctx.refreshTokenTtl * 1000
    })
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

  const auth = authenticateClient(ctx, req, params)
  if (!auth.ok) {
    const headers: Record<string, string> = auth.basic
      ? { "WWW-Authenticate": 'Basic realm="authfetch-sandbox", charset="UTF-8"' }
      : {}
    tokenError(res, log, auth.status, auth.error, auth.description, headers)
    return
  }
  const client = auth.client
  log.clientId = client.clientId

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
        familyId: code.familyId
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
      issueTokens(ctx, res, log, {
        client,
        grantType: grant,
        scope: scope.scope,
        subject: token.subject,
        familyId: token.familyId
      })
      return
    }
  }
}

const BAD_GATEWAY_HTML =
  "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center></body></html>\n"

const LOOPBACK_ORIGIN = /^http:\/\/(127\.0\.0\.1|\[::1\]|localhost)(?::\d{1,5})?(?=[/?]|$)/

/**
 * Redirect URIs are compared as exact strings (RFC 9700 section 2.1: no
 * normalisation, so `/callback/../evil` is not `/evil`), except that a
 * loopback `http:` URI matches whatever its port (RFC 8252 section 7.3).
 */
const redirectMatches = (registered: string, given: string): boolean => {
  if (registered === given) return true
  const r = LOOPBACK_ORIGIN.exec(registered)
  const g = LOOPBACK_ORIGIN.exec(given)
  if (r === null || g === null || r[1] !== g[1]) return false
  return registered.slice(r[0].length) === given.slice(g[0].length)
}

const escapeHtml = (value: string): string => value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)

type AuthorizationTarget =
  | {
      readonly ok: true
      readonly client: ResolvedClient
      readonly redirectUri: string
      readonly given: boolean
    }
  | { readonly ok: false; readonly description: string }

/** The client and where to send the user agent back to, if both can be trusted. */
const authorizationTarget = (ctx: Context, params: ReadonlyMap<string, string>): AuthorizationTarget => {
  const clientId = params.get("client_id")
  if (clientId === undefined) return { ok: false, description: "The client_id parameter is missing" }
  const client = ctx.clients.get(clientId)
  if (client === undefined) return { ok: false, description: "Unknown client" }
  const given = params.get("redirect_uri")
  if (given === undefined) {
    // RFC 6749 section 3.1.2.3: optional only when a single redirect URI is registered
    return client.redirectUris.length === 1
      ? { ok: true, client, redirectUri: client.redirectUris[0]!, given: false }
      : { ok: false, description: "The redirect_uri parameter is missing" }
  }
  return client.redirectUris.some((registered) => redirectMatches(registered, given))
    ? { ok: true, client, redirectUri: given, given: true }
    : { ok: false, description: "The redirect_uri is not registered for this client" }
}

type AuthorizationCheck =
  | { readonly ok: true; readonly challenge: string; readonly scope: string }
  | { readonly ok: false; readonly error: string; readonly description: string }

/** Everything else about an authorization request; these errors go back by redirect. */
const checkAuthorization = (
  params: ReadonlyMap<string, string>,
  client: ResolvedClient
): AuthorizationCheck => {
  const refuse = (error: string, description: string): AuthorizationCheck => ({
    ok: false,
    error,
    description
  })
  const responseType = params.get("response_type")
  if (responseType === undefined) return refuse("invalid_request", "The response_type parameter is missing")
  if (responseType !== "code")
    return refuse("unsupported_response_type", "Only response_type=code is supported")
  if (!client.grants.has("authorization_code")) {
    return refuse("unauthorized_client", "The client is not allowed to use the authorization_code grant")
  }
  const challenge = params.get("code_challenge")
  if (challenge === undefined) {
    return refuse("invalid_request", "PKCE is required: the code_challenge parameter is missing (RFC 7636)")
  }
  if (params.get("code_challenge_method") !== "S256") {
    return refuse(
      "invalid_request",
      "code_challenge_method must be S256; plain is not accepted (RFC 7636 section 4.2, RFC 9700 section 2.1.1)"
    )
  }
  // BASE64URL(SHA256(verifier)) is always 43 characters.
  if (!/^[A-Za-z0-9_-]{43}$/.test(challenge)) {
    return refuse("invalid_request", "The code_challenge is not a base64url SHA-256 (RFC 7636 section 4.2)")
  }
  const scope = resolveScope(params.get("scope"), client.scopes, true)
  if (!scope.ok) return refuse("invalid_scope", scope.description)
  return { ok: true, challenge, scope: scope.scope }
}

/**
 * `GET /connect/authorize` (wealthcare): auto-approves for the first user and
 * redirects back with a code. RFC 6749 section 4.1.2.1: when the client or the
 * redirect URI is wrong, the user agent must not be sent to it, so those
 * errors are a page; every later error goes back to the client by redirect.
 */
export const handleAuthorize = (
  ctx: Context,
  req: IncomingMessage,
  res: ServerResponse,
  log: RequestLog,
  url: URL
): void => {
  log.kind = "authorize"
  const page = (description: string) => {
    log.error = "invalid_request"
    sendText(
      res,
      400,
      `<!doctype html><meta charset="utf-8"><title>Authorization error</title><h1>invalid_request</h1><p>${escapeHtml(description)}</p>\n`,
      "text/html; charset=utf-8",
      { "Cache-Control": "no-store" }
    )
  }
  if (req.method !== "GET") {
    log.error = "invalid_request"
    sendText(res, 405, "Method Not Allowed\n", "text/plain; charset=utf-8", { Allow: "GET" })
    return
  }
  // a repeated client_id or redirect_uri cannot be trusted to redirect to: a page, too
  const parsed = parseFormStrict(url.search.slice(1))
  if (!parsed.ok) {
    page(parsed.description)
    return
  }
  const params = parsed.params
  const clientId = params.get("client_id")
  if (clientId !== undefined) log.clientId = clientId
  const target = authorizationTarget(ctx, params)
  if (!target.ok) {
    page(target.description)
    return
  }

  const back = (query: Record<string, string>) => {
    const location = new URL(target.redirectUri)
    for (const [key, value] of Object.entries(query)) location.searchParams.set(key, value)
    const state = params.get("state")
    if (state !== undefined) location.searchParams.set("state", state)
    // RFC 9207: say which server answers, against mix-up attacks.
    location.searchParams.set("iss", ctx.url)
    res.writeHead(302, { Location: location.href, "Cache-Control": "no-store", "Content-Length": "0" })
    res.end()
  }
  const checked = checkAuthorization(params, target.client)
  if (!checked.ok) {
    log.error = checked.error
    back({ error: checked.error, error_description: checked.description })
    return
  }
  const code = ctx.registry.issueCode({
    clientId: target.client.clientId,
    redirectUri: target.redirectUri,
    redirectUriGiven: target.given,
    codeChallenge: checked.challenge,
    scope: checked.scope,
    subject: ctx.users[0]?.username ?? "sandbox-user",
    familyId: newFamily(),
    expiresAt: ctx.now() + CODE_TTL_MS
  })
  back({ code })
}
