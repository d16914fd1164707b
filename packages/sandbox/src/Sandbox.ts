/**
 * `startSandbox`: one local HTTP server that plays a provider (WEX Health or
 * WealthCare), its token endpoint and its API, with faults that can be set at
 * start or at run time, an admin API and a live page.
 *
 * Built on `node:http` and `node:crypto` only: the sandbox is the other side
 * of the wire, so it must not share a line of code (or a bug) with the
 * clients it is used to test.
 *
 * Routes:
 * - wex: `POST /authorize`;
 * - wealthcare: `POST /connect/token`, `GET|POST /connect/authorize` (the
 *   sign-in page and its form), `POST /connect/revocation` (RFC 7009), `GET
 *   /connect/userinfo`, `GET /connect/endsession`, `GET
 *   /.well-known/openid-configuration` and `/.well-known/oauth-authorization-server`
 *   (the same metadata), `GET /.well-known/jwks.json`;
 * - both: `/api/v1/...`, `/admin/...`, and the page at `GET /`.
 *
 * The sandbox's clock is `Date.now()` plus `faults.clockOffsetSeconds`: its
 * `Date` header, the absolute times it reports and the expiry of its tokens
 * follow it; `expires_in` does not (it is relative).
 *
 * @example
 * ```ts
 * import { startSandbox } from "@authfetch/sandbox"
 *
 * const sandbox = await startSandbox({ profile: "wex", tokenTtl: 5 })
 * const token = await fetch(sandbox.tokenUrl, {
 *   method: "POST",
 *   body: new URLSearchParams({ grant_type: "client_credentials", client_id: "sandbox-client", client_secret: "sandbox-secret" })
 * }).then((r) => r.json())
 * const consumer = await fetch(`${sandbox.baseUrl}/v1/consumers/12345`, {
 *   headers: { authorization: `Bearer ${token.access_token}` }
 * })
 * sandbox.setFaults({ api: { errorRate: 1 } }) // every API call now answers 503
 * await sandbox.close()
 * ```
 *
 * @since 0.1.0
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { handleAdmin } from "./internal/admin.ts"
import { handleApi, seedClaims } from "./internal/api.ts"
import { handleAuthorize } from "./internal/authorize.ts"
import type { ClaimsState, Context, RequestLog, ResolvedClient } from "./internal/context.ts"
import {
  EndpointFaultState,
  InvalidGrantState,
  SlidingWindowLimiter,
  validateFaults
} from "./internal/faults.ts"
import { sendProblem } from "./internal/http.ts"
import { newSigningKey, type SigningKey } from "./internal/jwt.ts"
import { handleToken } from "./internal/oauth.ts"
import {
  handleEndSession,
  handleMetadata,
  handleUserinfo,
  METADATA_PATHS,
  RESERVED_CLAIMS
} from "./internal/oidc.ts"
import { sendPage } from "./internal/page.ts"
import { PendingRequests } from "./internal/pending.ts"
import { handleRevocation } from "./internal/revocation.ts"
import { Registry } from "./internal/tokens.ts"
import type {
  Faults,
  Sandbox,
  SandboxClient,
  SandboxEvent,
  SandboxGrant,
  SandboxOptions,
  SandboxStats,
  SandboxUser
} from "./types.ts"

/**
 * The client every sandbox knows unless told otherwise. Its secret is a
 * sandbox secret: it opens nothing but this local emulator.
 *
 * @example
 * ```ts
 * const body = new URLSearchParams({ grant_type: "client_credentials", ...DEFAULT_CLIENT_FORM })
 * ```
 *
 * @since 0.1.0
 */
export const DEFAULT_CLIENT = { clientId: "sandbox-client", clientSecret: "sandbox-secret" } as const

/**
 * The resource owner every WealthCare sandbox knows unless told otherwise
 * (then also named "Sandbox User", with the email sandbox-user@example.com).
 *
 * @example
 * ```ts
 * new URLSearchParams({ grant_type: "password", username: DEFAULT_USER.username, password: DEFAULT_USER.password })
 * ```
 *
 * @since 0.1.0
 */
export const DEFAULT_USER = { username: "sandbox-user", password: "sandbox-password" } as const

/**
 * The scopes of WealthCare's published sample, plus what yields a refresh token.
 *
 * @example
 * ```ts
 * const scope = WEALTHCARE_SCOPES.join(" ") // "bensoft_api mbi_api offline_access"
 * ```
 *
 * @since 0.1.0
 */
export const WEALTHCARE_SCOPES: ReadonlyArray<string> = ["bensoft_api", "mbi_api", "offline_access"]

/**
 * The OpenID Connect scopes of the WealthCare profile (OIDC Core section
 * 5.4): `openid` yields an ID token after a sign-in and opens the userinfo
 * endpoint; `profile` adds `name` and `preferred_username`, `email` adds
 * `email` and `email_verified`. A client may ask for them by default, besides
 * `WEALTHCARE_SCOPES`; a request without a `scope` parameter is not granted
 * them (it is a plain OAuth 2.0 request).
 *
 * @example
 * ```ts
 * const scope = [...WEALTHCARE_SCOPES, ...WEALTHCARE_OIDC_SCOPES].join(" ")
 * // "bensoft_api mbi_api offline_access openid profile email"
 * ```
 *
 * @since 0.2.0
 */
export const WEALTHCARE_OIDC_SCOPES: ReadonlyArray<string> = ["openid", "profile", "email"]

const PROFILE_GRANTS: Record<"wex" | "wealthcare", ReadonlyArray<SandboxGrant>> = {
  wex: ["client_credentials"],
  wealthcare: ["client_credentials", "authorization_code", "refresh_token", "password"]
}

const DEFAULT_REDIRECT_URIS = ["http://127.0.0.1/callback", "http://localhost/callback"]

/** Recent events kept for `GET /admin/events`. */
const EVENTS_KEPT = 1000
/** Most events one `GET /admin/events` returns. */
const EVENTS_PER_READ = 500

const isPositiveInteger = (value: unknown): value is number =>
  typeof value === "number" && Number.isInteger(value) && value > 0

const checkOptions = (options: SandboxOptions): void => {
  if (typeof options !== "object" || options === null)
    throw new TypeError("startSandbox: options are required")
  if (options.profile !== "wex" && options.profile !== "wealthcare") {
    throw new TypeError('startSandbox: profile must be "wex" or "wealthcare"')
  }
  if (
    options.port !== undefined &&
    !(Number.isInteger(options.port) && options.port >= 0 && options.port <= 65535)
  ) {
    throw new TypeError("startSandbox: port must be an integer from 0 to 65535")
  }
  if (options.tokenTtl !== undefined && !isPositiveInteger(options.tokenTtl)) {
    throw new TypeError(
      "startSandbox: tokenTtl must be a positive integer (seconds; expires_in is an integer)"
    )
  }
  if (options.refreshTokenTtl !== undefined && !isPositiveInteger(options.refreshTokenTtl)) {
    throw new TypeError("startSandbox: refreshTokenTtl must be a positive integer (seconds)")
  }
  const limit = options.tokenRateLimit
  if (limit !== undefined && limit !== false) {
    if (
      !isPositiveInteger(limit.limit) ||
      !(typeof limit.windowSeconds === "number" && limit.windowSeconds > 0)
    ) {
      throw new TypeError(
        "startSandbox: tokenRateLimit needs a positive integer limit and a positive windowSeconds"
      )
    }
  }
  if (options.clients !== undefined) {
    if (!Array.isArray(options.clients) || options.clients.length === 0) {
      throw new TypeError("startSandbox: clients must be a non-empty array")
    }
    const ids = new Set<string>()
    for (const client of options.clients) {
      if (typeof client.clientId !== "string" || client.clientId.length === 0) {
        throw new TypeError("startSandbox: every client needs a clientId")
      }
      if (typeof client.clientSecret !== "string" || client.clientSecret.length === 0) {
        throw new TypeError(`startSandbox: client ${client.clientId} needs a clientSecret`)
      }
      if (ids.has(client.clientId))
        throw new TypeError(`startSandbox: client ${client.clientId} is listed twice`)
      ids.add(client.clientId)
    }
  }
  if (options.users !== undefined) checkUsers(options.users)
  if (options.autoApprove !== undefined && typeof options.autoApprove !== "boolean") {
    throw new TypeError("startSandbox: autoApprove must be a boolean")
  }
  if (options.faults !== undefined) validateFaults(options.faults)
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are exactly what is refused
const CONTROL = /[\u0000-\u001f\u007f]/

const checkUsers = (users: unknown): void => {
  if (!Array.isArray(users) || users.length === 0) {
    throw new TypeError("startSandbox: users must be a non-empty array")
  }
  const names = new Set<string>()
  for (const user of users as Array<SandboxUser>) {
    if (typeof user !== "object" || user === null)
      throw new TypeError("startSandbox: every user must be an object")
    // the sign-in form refuses control characters (strict form decoding), so such a user could never sign in
    if (typeof user.username !== "string" || user.username.length === 0 || CONTROL.test(user.username)) {
      throw new TypeError("startSandbox: every user needs a non-empty username without control characters")
    }
    if (typeof user.password !== "string" || user.password.length === 0 || CONTROL.test(user.password)) {
      throw new TypeError(
        `startSandbox: user ${user.username} needs a non-empty password without control characters`
      )
    }
    if (names.has(user.username)) throw new TypeError(`startSandbox: user ${user.username} is listed twice`)
    names.add(user.username)
    for (const field of ["name", "email"] as const) {
      if (user[field] !== undefined && typeof user[field] !== "string") {
        throw new TypeError(`startSandbox: user ${user.username}: ${field} must be a string`)
      }
    }
    if (user.claims !== undefined) {
      if (typeof user.claims !== "object" || user.claims === null || Array.isArray(user.claims)) {
        throw new TypeError(`startSandbox: user ${user.username}: claims must be an object`)
      }
      for (const [name, value] of Object.entries(user.claims)) {
        if (RESERVED_CLAIMS.includes(name)) {
          throw new TypeError(
            `startSandbox: user ${user.username}: the claim "${name}" is set by the sandbox (or by the user's name and email fields)`
          )
        }
        if (
          value === undefined ||
          typeof value === "function" ||
          typeof value === "symbol" ||
          typeof value === "bigint"
        ) {
          throw new TypeError(`startSandbox: user ${user.username}: the claim "${name}" must be a JSON value`)
        }
      }
    }
  }
}

const resolveClient = (profile: "wex" | "wealthcare", client: SandboxClient): ResolvedClient => ({
  clientId: client.clientId,
  clientSecret: client.clientSecret,
  scopes:
    client.scopes ?? (profile === "wealthcare" ? [...WEALTHCARE_SCOPES, ...WEALTHCARE_OIDC_SCOPES] : []),
  grants: new Set(client.grants ?? PROFILE_GRANTS[profile]),
  redirectUris: client.redirectUris ?? (profile === "wealthcare" ? DEFAULT_REDIRECT_URIS : [])
})

/** The host part of the sandbox's URL: a wildcard address is reached through loopback. */
const urlHost = (host: string): string => {
  if (host === "0.0.0.0") return "127.0.0.1"
  if (host === "::" || host === "[::]") return "[::1]"
  return host.includes(":") && !host.startsWith("[") ? `[${host}]` : host
}

interface Counters {
  tokenTotal: number
  tokenByClient: Record<string, number>
  tokenByGrant: Record<string, number>
  tokenByStatus: Record<string, number>
  apiTotal: number
  apiByStatus: Record<string, number>
  apiByRoute: Record<string, number>
  apiBySubject: Record<string, number>
  revocationTotal: number
  revocationRevoked: number
  revocationByClient: Record<string, number>
  revocationBySubject: Record<string, number>
}

const emptyCounters = (): Counters => ({
  tokenTotal: 0,
  tokenByClient: {},
  tokenByGrant: {},
  tokenByStatus: {},
  apiTotal: 0,
  apiByStatus: {},
  apiByRoute: {},
  apiBySubject: {},
  revocationTotal: 0,
  revocationRevoked: 0,
  revocationByClient: {},
  revocationBySubject: {}
})

const bump = (record: Record<string, number>, key: string): void => {
  record[key] = (record[key] ?? 0) + 1
}

/** The run-time state of checked faults (a `count` starts afresh). */
const faultStates = (faults: Faults): Context["faults"] => ({
  token: new EndpointFaultState(faults.token),
  api: new EndpointFaultState(faults.api),
  invalidGrant: new InvalidGrantState(faults.token),
  authorize: { ...faults.authorize }
})

/**
 * Starts a sandbox and resolves once it listens.
 *
 * @example
 * ```ts
 * const sandbox = await startSandbox({
 *   profile: "wealthcare",
 *   clients: [{ clientId: "app", clientSecret: "s3cret", redirectUris: ["http://127.0.0.1/cb"] }],
 *   faults: { token: { rateLimit429: { count: 1, retryAfterSeconds: 2 } } }
 * })
 * console.log(sandbox.tokenUrl) // http://127.0.0.1:PORT/connect/token
 * ```
 *
 * @since 0.1.0
 */
export const startSandbox = async (options: SandboxOptions): Promise<Sandbox> => {
  checkOptions(options)
  const profile = options.profile
  const host = options.host ?? "127.0.0.1"
  const clients = (options.clients ?? [{ ...DEFAULT_CLIENT }]).map((c) => resolveClient(profile, c))
  const users: ReadonlyArray<SandboxUser> = (
    options.users ?? [{ ...DEFAULT_USER, name: "Sandbox User", email: "sandbox-user@example.com" }]
  ).map((u) => ({
    ...u,
    // what a JWT can carry: JSON values (checked at start; nested values are copied as JSON)
    ...(u.claims === undefined
      ? {}
      : { claims: JSON.parse(JSON.stringify(u.claims)) as Record<string, unknown> })
  }))
  // wealthcare signs ID tokens; generated while the server starts listening
  const signingKey: Promise<SigningKey> | undefined = profile === "wealthcare" ? newSigningKey() : undefined
  const random = options.random ?? Math.random
  const onEvent = options.onEvent

  let rawFaults: Faults = structuredClone(options.faults ?? {})
  let offsetMs = (rawFaults.clockOffsetSeconds ?? 0) * 1000
  const now = () => Date.now() + offsetMs

  // Latency waits, cut short by close() so a slow fault never holds the process.
  let closing = false
  const waits = new Set<{ timer: NodeJS.Timeout; resolve: () => void }>()
  const sleep = (ms: number): Promise<void> =>
    closing
      ? Promise.resolve()
      : new Promise((resolve) => {
          const entry = {
            timer: setTimeout(() => {
              waits.delete(entry)
              resolve()
            }, ms),
            resolve
          }
          waits.add(entry)
        })

  let counters = emptyCounters()
  const events: Array<SandboxEvent> = []
  let seq = 0

  const claims: ClaimsState = {
    items: seedClaims(now()),
    bodyHashes: new Set(),
    idempotency: new Map(),
    nextId: 13,
    created: 0,
    duplicates: 0
  }

  const limitOption = options.tokenRateLimit ?? { limit: 100, windowSeconds: 60 }
  const limiter =
    limitOption === false ? undefined : new SlidingWindowLimiter(limitOption.limit, limitOption.windowSeconds)

  let ctx: Context | undefined

  const record = (
    log: RequestLog,
    method: string,
    path: string,
    status: number,
    started: number,
    at: number
  ) => {
    if (log.kind === undefined) return
    const event: SandboxEvent = {
      seq: ++seq,
      time: new Date(at).toISOString(),
      kind: log.kind,
      method,
      path: path.length > 300 ? `${path.slice(0, 300)}...` : path,
      status,
      durationMs: Math.round(performance.now() - started),
      ...(log.clientId === undefined ? {} : { clientId: log.clientId }),
      ...(log.grantType === undefined ? {} : { grantType: log.grantType }),
      ...(log.tokenFingerprint === undefined ? {} : { tokenFingerprint: log.tokenFingerprint }),
      ...(log.tokenKind === undefined ? {} : { tokenKind: log.tokenKind }),
      ...(log.subject === undefined ? {} : { subject: log.subject }),
      ...(log.error === undefined ? {} : { error: log.error }),
      ...(log.faults.length === 0 ? {} : { faults: [...log.faults] })
    }
    events.push(event)
    if (events.length > EVENTS_KEPT) events.shift()
    if (log.kind === "token") {
      counters.tokenTotal++
      bump(counters.tokenByClient, log.clientId ?? "(none)")
      bump(counters.tokenByGrant, log.grantType ?? "(none)")
      bump(counters.tokenByStatus, String(status))
    } else if (log.kind === "api") {
      counters.apiTotal++
      bump(counters.apiByStatus, String(status))
      bump(counters.apiByRoute, log.route ?? "(unmatched)")
      if (log.subject !== undefined) bump(counters.apiBySubject, log.subject)
    } else if (log.kind === "revocation") {
      counters.revocationTotal++
      bump(counters.revocationByClient, log.clientId ?? "(none)")
      if (log.revoked === true) {
        counters.revocationRevoked++
        if (log.subject !== undefined) bump(counters.revocationBySubject, log.subject)
      }
    }
    if (onEvent !== undefined) {
      try {
        onEvent(event)
      } catch {
        // a listener's failure is the listener's: the sandbox keeps answering
      }
    }
  }

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const started = performance.now()
    const at = now()
    const method = req.method ?? "GET"
    const log: RequestLog = { kind: undefined, faults: [] }
    let path = "/"
    // The event is recorded when the status line is written, before the client can read it,
    // so `stats()` after an awaited fetch already counts that request.
    let recorded = false
    const recordOnce = (status: number) => {
      if (recorded) return
      recorded = true
      record(log, method, path, status, started, at)
    }
    const writeHead = res.writeHead.bind(res) as (...args: Array<unknown>) => ServerResponse
    res.writeHead = ((...args: Array<unknown>) => {
      const result = writeHead(...args)
      recordOnce(res.statusCode)
      return result
    }) as typeof res.writeHead
    res.once("close", () => recordOnce(res.headersSent ? res.statusCode : 0))
    res.setHeader("Date", new Date(at).toUTCString())

    if (ctx === undefined) {
      sendProblem(res, 503, "Service Unavailable", "The sandbox is starting", "/")
      return
    }
    const raw = req.url ?? "/"
    // absolute-form and authority-form targets are for proxies (RFC 9112 section 3.2)
    if (!raw.startsWith("/")) {
      sendProblem(res, 400, "Bad Request", "The request target must be a path", "/")
      return
    }
    // Concatenated, not resolved: "//host/x" must stay a path here.
    const url = new URL(`http://sandbox.invalid${raw}`)
    path = url.pathname
    const c = ctx

    if (profile === "wex" && path === "/authorize") return handleToken(c, req, res, log)
    if (profile === "wealthcare") {
      switch (path) {
        case "/connect/token":
          return handleToken(c, req, res, log)
        case "/connect/authorize":
          return handleAuthorize(c, req, res, log, url)
        case "/connect/revocation":
          return handleRevocation(c, req, res, log)
        case "/connect/userinfo":
          return handleUserinfo(c, req, res, log)
        case "/connect/endsession":
          return handleEndSession(c, req, res, log, url)
      }
      if (METADATA_PATHS.includes(path)) return handleMetadata(c, req, res, log, url)
    }
    if (path === "/api" || path.startsWith("/api/")) return handleApi(c, req, res, log, url)
    if (path === "/admin" || path.startsWith("/admin/")) return handleAdmin(c, adminOps, req, res, log, url)
    if ((method === "GET" || method === "HEAD") && (path === "/" || path === "/index.html")) {
      return sendPage(res, {
        profile,
        url: c.url,
        tokenUrl: sandbox.tokenUrl,
        authorizeUrl: sandbox.authorizeUrl,
        discoveryUrl: sandbox.discoveryUrl,
        revocationUrl: sandbox.revocationUrl,
        baseUrl: sandbox.baseUrl,
        adminUrl: sandbox.adminUrl
      })
    }
    sendProblem(res, 404, "Not Found", "No such endpoint on this sandbox", path)
  }

  const server = createServer(
    { requestTimeout: 300_000, headersTimeout: 30_000, keepAliveTimeout: 5_000 },
    (req, res) => {
      handle(req, res).catch(() => {
        // never crash on one request: answer 500 if nothing was sent yet, else cut the connection
        if (!res.headersSent) sendProblem(res, 500, "Internal Server Error", "The sandbox failed", "/")
        else res.destroy()
      })
    }
  )

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject)
    server.listen(options.port ?? 0, host, () => {
      server.off("error", reject)
      resolve()
    })
  })
  const port = (server.address() as AddressInfo).port
  const url = `http://${urlHost(host)}:${port}`

  const setFaults = (faults: unknown): Faults => {
    const checked = structuredClone(validateFaults(faults))
    rawFaults = checked
    offsetMs = (checked.clockOffsetSeconds ?? 0) * 1000
    if (ctx !== undefined) ctx.faults = faultStates(checked)
    return structuredClone(checked)
  }

  ctx = {
    profile,
    url,
    autoApprove: options.autoApprove ?? false,
    pending: new PendingRequests(),
    signingKey: await signingKey,
    now,
    registry: new Registry(url),
    clients: new Map(clients.map((c) => [c.clientId, c])),
    users,
    tokenTtl: options.tokenTtl ?? (profile === "wex" ? 600 : 3600),
    refreshTokenTtl: options.refreshTokenTtl ?? 86_400,
    limiter,
    wexMalformedProblem: options.wexMalformedProblem ?? true,
    random,
    claims,
    faults: faultStates(rawFaults),
    sleep
  }
  const registry = ctx.registry

  const stats = (): SandboxStats => ({
    tokenRequests: {
      total: counters.tokenTotal,
      byClient: { ...counters.tokenByClient },
      byGrant: { ...counters.tokenByGrant },
      byStatus: { ...counters.tokenByStatus }
    },
    apiRequests: {
      total: counters.apiTotal,
      byStatus: { ...counters.apiByStatus },
      byRoute: { ...counters.apiByRoute },
      bySubject: { ...counters.apiBySubject }
    },
    revocations: {
      total: counters.revocationTotal,
      revoked: counters.revocationRevoked,
      byClient: { ...counters.revocationByClient },
      bySubject: { ...counters.revocationBySubject }
    },
    claims: { created: claims.created, duplicates: claims.duplicates },
    tokensIssued: registry.issued,
    tokensRevoked: registry.revoked,
    activeTokens: registry.activeCount(now())
  })

  const resetStats = () => {
    counters = emptyCounters()
    registry.issued = 0
    registry.revoked = 0
    claims.created = 0
    claims.duplicates = 0
    claims.bodyHashes.clear()
  }

  const knownUser = (username: unknown, where: string): string => {
    if (typeof username !== "string" || !users.some((u) => u.username === username)) {
      throw new TypeError(
        `${where}: no user ${JSON.stringify(username)} (users: ${users.map((u) => u.username).join(", ")})`
      )
    }
    return username
  }
  const revokeUser = (username: string): number => registry.revokeSubject(knownUser(username, "revokeUser"))
  const revokeRefreshTokens = (username?: string): number =>
    registry.revokeRefresh(username === undefined ? undefined : knownUser(username, "revokeRefreshTokens"))

  const adminOps = {
    stats,
    faults: () => structuredClone(rawFaults),
    setFaults,
    revokeAll: () => registry.revokeAll(),
    revokeUser,
    revokeRefreshTokens,
    resetStats,
    events: (since: number) => {
      const newer = events.filter((e) => e.seq > since).slice(0, EVENTS_PER_READ)
      return { events: newer, lastSeq: newer.length > 0 ? newer[newer.length - 1]!.seq : Math.max(since, 0) }
    }
  }

  let closed: Promise<void> | undefined
  const close = (): Promise<void> => {
    closed ??= new Promise<void>((resolve) => {
      closing = true
      for (const wait of waits) {
        clearTimeout(wait.timer)
        wait.resolve()
      }
      waits.clear()
      server.close(() => resolve())
      server.closeAllConnections()
    })
    return closed
  }

  const publicClients: ReadonlyArray<SandboxClient> = Object.freeze(
    clients.map((c) =>
      Object.freeze({
        clientId: c.clientId,
        clientSecret: c.clientSecret,
        scopes: [...c.scopes],
        grants: [...c.grants],
        redirectUris: [...c.redirectUris]
      })
    )
  )

  const sandbox: Sandbox = {
    profile,
    url,
    tokenUrl: profile === "wex" ? `${url}/authorize` : `${url}/connect/token`,
    ...(profile === "wealthcare"
      ? {
          authorizeUrl: `${url}/connect/authorize`,
          issuer: url,
          discoveryUrl: `${url}/.well-known/openid-configuration`,
          jwksUrl: `${url}/.well-known/jwks.json`,
          userinfoUrl: `${url}/connect/userinfo`,
          revocationUrl: `${url}/connect/revocation`,
          endSessionUrl: `${url}/connect/endsession`
        }
      : {}),
    baseUrl: `${url}/api`,
    adminUrl: `${url}/admin`,
    clients: publicClients,
    stats,
    setFaults: (faults: Faults) => {
      setFaults(faults)
    },
    revokeAll: () => {
      registry.revokeAll()
    },
    revokeUser,
    revokeRefreshTokens,
    resetStats,
    close,
    [Symbol.asyncDispose]: close
  }
  return sandbox
}
