/**
 * WealthCare's authorization endpoint, `/connect/authorize`, as an
 * IdentityServer-style server has it: `GET` checks the authorization request
 * and shows a sign-in page; `POST` is that page's form, and on the right
 * credentials redirects back to the client with a code (RFC 6749 section
 * 4.1.2), `state` and `iss` (RFC 9207).
 *
 * What a request must be: a known client and a registered redirect URI
 * (compared as exact strings, RFC 9700 section 2.1, except the port of a
 * loopback one, RFC 8252 section 7.3), `response_type=code`, PKCE with S256
 * (RFC 7636; plain is refused, RFC 9700 section 2.1.1) and allowed scopes.
 * When the client or the redirect URI is wrong, the user agent must not be
 * sent to it (RFC 6749 section 4.1.2.1): those errors are a page; every later
 * error goes back to the client by redirect.
 *
 * The request itself waits server side (see `pending.ts`); the code issued
 * is bound to the client, the redirect URI, the PKCE challenge, the scope,
 * the user and the request's `nonce`. The sandbox keeps no sign-in session:
 * every request shows the form, unless `autoApprove` (tests without a
 * browser) approves at once for the `login_hint` user or the first user.
 *
 * @internal
 */
import { randomBytes } from "node:crypto"
import type { IncomingMessage, ServerResponse } from "node:http"
import type { SandboxUser } from "../types.ts"
import type { Context, RequestLog, ResolvedClient } from "./context.ts"
import { messagePage, signInPage } from "./html.ts"
import { parseFormStrict, readForm, sendText } from "./http.ts"
import { resolveScope, sameSecret } from "./oauth.ts"
import { MAX_FAILED_ATTEMPTS, PENDING_TTL_MS, type PendingRequest } from "./pending.ts"
import { newFamily } from "./tokens.ts"

/** Authorization codes live this long (RFC 6749 section 4.1.2: "maximum ... of 10 minutes RECOMMENDED"; short is better). */
const CODE_TTL_MS = 60_000

/** Sign-in form bodies above this are refused unread. A real one is a few hundred bytes. */
const SIGN_IN_BODY_LIMIT = 16 * 1024

/** Longest `nonce` accepted (IdentityServer refuses past 300 characters): it is copied into ID tokens. */
const MAX_NONCE_LENGTH = 300

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
  | {
      readonly ok: true
      readonly challenge: string
      readonly scope: string
      readonly nonce: string | undefined
      /** `prompt=none`: no page may be shown (OIDC Core section 3.1.2.1) */
      readonly promptNone: boolean
    }
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
  const responseMode = params.get("response_mode")
  if (responseMode !== undefined && responseMode !== "query") {
    return refuse("invalid_request", "Only response_mode=query is supported")
  }
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
  const nonce = params.get("nonce")
  if (nonce !== undefined && nonce.length > MAX_NONCE_LENGTH) {
    return refuse("invalid_request", `The nonce is longer than ${MAX_NONCE_LENGTH} characters`)
  }
  // OIDC Core section 3.1.2.1: "none" with any other value is an error.
  const prompt = (params.get("prompt") ?? "").split(" ").filter((p) => p.length > 0)
  if (prompt.includes("none") && prompt.length > 1) {
    return refuse("invalid_request", "prompt=none cannot be combined with other prompt values")
  }
  return { ok: true, challenge, scope: scope.scope, nonce, promptNone: prompt.includes("none") }
}

/** The part of an authorization request the redirect back needs. */
interface Return {
  readonly redirectUri: string
  readonly state: string | undefined
}

/** Sends the user agent back to the client with `query`, `state` if it sent one, and `iss` (RFC 9207). */
const redirectBack = (ctx: Context, res: ServerResponse, back: Return, query: Record<string, string>) => {
  const location = new URL(back.redirectUri)
  for (const [key, value] of Object.entries(query)) location.searchParams.set(key, value)
  if (back.state !== undefined) location.searchParams.set("state", back.state)
  // RFC 9207: say which server answers, against mix-up attacks.
  location.searchParams.set("iss", ctx.url)
  res.writeHead(302, { Location: location.href, "Cache-Control": "no-store", "Content-Length": "0" })
  res.end()
}

/** A code for `user`: the request approved. */
const approve = (
  ctx: Context,
  res: ServerResponse,
  log: RequestLog,
  request: Omit<PendingRequest, "expiresAt" | "failures" | "loginHint">,
  user: SandboxUser
): void => {
  const now = ctx.now()
  const code = ctx.registry.issueCode({
    clientId: request.clientId,
    redirectUri: request.redirectUri,
    redirectUriGiven: request.redirectUriGiven,
    codeChallenge: request.codeChallenge,
    scope: request.scope,
    subject: user.username,
    nonce: request.nonce,
    // one sign-in, one session id (OIDC Core section 2 `sid`): 128 random bits
    signIn: { sid: randomBytes(16).toString("hex").toUpperCase(), authTime: Math.floor(now / 1000) },
    familyId: newFamily(),
    expiresAt: now + CODE_TTL_MS
  })
  log.subject = user.username
  redirectBack(ctx, res, request, { code })
}

/** The latency fault of the sign-in. */
const signInLatency = async (ctx: Context, log: RequestLog): Promise<void> => {
  const latency = ctx.faults.authorize.latencyMs ?? 0
  if (latency > 0) {
    log.faults.push("latency")
    await ctx.sleep(latency)
  }
}

/**
 * `/connect/authorize` (wealthcare): `GET` the authorization request, `POST`
 * the sign-in form.
 */
export const handleAuthorize = async (
  ctx: Context,
  req: IncomingMessage,
  res: ServerResponse,
  log: RequestLog,
  url: URL
): Promise<void> => {
  log.kind = "authorize"
  if (req.method === "GET") return authorizationRequest(ctx, res, log, url)
  if (req.method === "POST") return signIn(ctx, req, res, log)
  log.error = "invalid_request"
  sendText(res, 405, "Method Not Allowed\n", "text/plain; charset=utf-8", { Allow: "GET, POST" })
}

const errorPage = (
  res: ServerResponse,
  log: RequestLog,
  status: number,
  error: string,
  description: string
) => {
  log.error = error
  messagePage(res, status, "Authorization error", error, description)
}

const authorizationRequest = async (
  ctx: Context,
  res: ServerResponse,
  log: RequestLog,
  url: URL
): Promise<void> => {
  // a repeated client_id or redirect_uri cannot be trusted to redirect to: a page, too
  const parsed = parseFormStrict(url.search.slice(1))
  if (!parsed.ok) return errorPage(res, log, 400, "invalid_request", parsed.description)
  const params = parsed.params
  const clientId = params.get("client_id")
  if (clientId !== undefined) log.clientId = clientId
  const target = authorizationTarget(ctx, params)
  if (!target.ok) return errorPage(res, log, 400, "invalid_request", target.description)

  const back: Return = { redirectUri: target.redirectUri, state: params.get("state") }
  const checked = checkAuthorization(params, target.client)
  if (!checked.ok) {
    log.error = checked.error
    return redirectBack(ctx, res, back, { error: checked.error, error_description: checked.description })
  }
  const request = {
    clientId: target.client.clientId,
    redirectUri: target.redirectUri,
    redirectUriGiven: target.given,
    codeChallenge: checked.challenge,
    scope: checked.scope,
    state: back.state,
    nonce: checked.nonce,
    loginHint: params.get("login_hint")
  }
  if (ctx.autoApprove) {
    const user =
      ctx.users.find((u) => u.username === request.loginHint) ??
      // the users are validated non-empty at start
      ctx.users[0]!
    await signInLatency(ctx, log)
    return approve(ctx, res, log, request, user)
  }
  if (checked.promptNone) {
    // OIDC Core section 3.1.2.6: no session, and no page may be shown.
    log.error = "login_required"
    return redirectBack(ctx, res, back, {
      error: "login_required",
      error_description: "The user is not signed in (the sandbox keeps no sign-in session)"
    })
  }
  // prompt=login, consent, select_account or none given: the form, always (there is no session to reuse)
  const requestId = ctx.pending.add({ ...request, expiresAt: ctx.now() + PENDING_TTL_MS })
  signInPage(res, 200, {
    requestId,
    clientId: request.clientId,
    scope: request.scope,
    redirectUri: request.redirectUri,
    username: request.loginHint,
    error: undefined,
    users: ctx.users
  })
}

const signIn = async (
  ctx: Context,
  req: IncomingMessage,
  res: ServerResponse,
  log: RequestLog
): Promise<void> => {
  const form = await readForm(req, res, SIGN_IN_BODY_LIMIT)
  if (!form.ok && form.aborted) return
  await signInLatency(ctx, log)
  if (!form.ok) return errorPage(res, log, 400, "invalid_request", form.description)
  const params = form.params
  const requestId = params.get("request")
  const request = requestId === undefined ? undefined : ctx.pending.find(requestId, ctx.now())
  if (requestId === undefined || request === undefined) {
    return errorPage(
      res,
      log,
      400,
      "invalid_request",
      "This sign-in request is unknown, expired or already used. Start again from the application."
    )
  }
  log.clientId = request.clientId
  // A form submitted without pressing a button (Enter, a script) signs in, as the first button does.
  const action = params.get("action") ?? "approve"
  if (action === "deny") {
    ctx.pending.remove(requestId)
    log.error = "access_denied"
    return redirectBack(ctx, res, request, {
      error: "access_denied",
      error_description: "The user cancelled the sign-in"
    })
  }
  if (action !== "approve") {
    return errorPage(res, log, 400, "invalid_request", "The action must be approve or deny")
  }
  const username = params.get("username")
  const password = params.get("password") ?? ""
  const user = ctx.users.find((u) => u.username === username)
  // compared even for an unknown user, so timing does not tell which usernames exist
  const matches = sameSecret(password, user?.password ?? "\u0000no-such-user")
  if (user !== undefined && matches) {
    ctx.pending.remove(requestId)
    return approve(ctx, res, log, request, user)
  }
  request.failures++
  if (request.failures >= MAX_FAILED_ATTEMPTS) {
    ctx.pending.remove(requestId)
    return errorPage(
      res,
      log,
      400,
      "too_many_attempts",
      `${MAX_FAILED_ATTEMPTS} failed sign-in attempts: this sign-in request is no longer valid. Start again from the application.`
    )
  }
  log.error = "invalid_credentials"
  signInPage(res, 200, {
    requestId,
    clientId: request.clientId,
    scope: request.scope,
    redirectUri: request.redirectUri,
    username,
    error: "Invalid username or password",
    users: ctx.users
  })
}
