/**
 * The resource API under `/api/v1/...`, the same for both profiles: a
 * consumer, its accounts (paginated, with a `Link` header), claims (list,
 * create, read), document upload (streamed), and `GET /v1/me`, which says
 * whose token reached the API (subject, client, scope, grant, fingerprint).
 *
 * What it is for is the edges a client must handle: each kind of refused
 * token answered the way the provider does, pagination, a non-idempotent POST
 * whose duplicates are counted, and a large upload that the server hashes as
 * it arrives instead of holding it.
 *
 * Refused tokens, by profile:
 * - wex, as documented: no token, `401 {"error":"unauthorized", ...}`; an
 *   unknown token, `401 {"error":"Unauthorized", ...}`; an expired or revoked
 *   one, `401 application/problem+json` in WEX's shape (by default with the
 *   trailing comma of WEX's published sample, so not valid JSON);
 * - wealthcare (not documented; what an ASP.NET JWT bearer API, the usual
 *   companion of a `/connect/token` server, answers): `401`, an empty body,
 *   and `WWW-Authenticate: Bearer error="invalid_token", error_description=...`.
 *
 * @internal
 */
import { createHash, randomUUID } from "node:crypto"
import type { IncomingMessage, ServerResponse } from "node:http"
import type { Context, RequestLog } from "./context.ts"
import { injectFaults } from "./faults.ts"
import {
  closeAfterResponse,
  mediaType,
  readCapped,
  sendEmpty,
  sendJson,
  sendProblem,
  sendText,
  streamCapped
} from "./http.ts"
import { fingerprint, sha256Hex } from "./tokens.ts"

/** `POST /v1/claims` bodies above this are refused (413). */
const CLAIM_BODY_LIMIT = 64 * 1024
/** `POST /v1/documents` bodies above this are refused (413), after being hashed up to it. */
export const DOCUMENT_LIMIT = 512 * 1024 * 1024
const MAX_PAGE_SIZE = 100
const DEFAULT_PAGE_SIZE = 10
const MAX_CLAIMS = 10_000

interface Route {
  readonly pattern: string
  readonly methods: ReadonlyArray<string>
  readonly id?: string
}

const ROUTES: ReadonlyArray<{
  readonly regex: RegExp
  readonly pattern: string
  readonly methods: Array<string>
}> = [
  { regex: /^\/v1\/consumers\/([^/]+)$/, pattern: "/v1/consumers/:id", methods: ["GET"] },
  { regex: /^\/v1\/consumers\/([^/]+)\/accounts$/, pattern: "/v1/consumers/:id/accounts", methods: ["GET"] },
  { regex: /^\/v1\/claims$/, pattern: "/v1/claims", methods: ["GET", "POST"] },
  { regex: /^\/v1\/claims\/([^/]+)$/, pattern: "/v1/claims/:id", methods: ["GET"] },
  { regex: /^\/v1\/documents$/, pattern: "/v1/documents", methods: ["POST"] },
  { regex: /^\/v1\/me$/, pattern: "/v1/me", methods: ["GET"] }
]

const matchRoute = (path: string): Route | undefined => {
  for (const route of ROUTES) {
    const match = route.regex.exec(path)
    if (match === null) continue
    return match[1] === undefined
      ? { pattern: route.pattern, methods: route.methods }
      : { pattern: route.pattern, methods: route.methods, id: match[1] }
  }
  return undefined
}

/** What an `Authorization` header carries: a bearer token, or nothing usable. */
export type Presented = { readonly kind: "missing" } | { readonly kind: "token"; readonly value: string }

/** The bearer token of an `Authorization` header (RFC 6750 section 2.1). */
// RFC 6750 section 2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
export const presentedToken = (header: string | undefined): Presented => {
  if (header === undefined) return { kind: "missing" }
  const match = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i.exec(header)
  // WEX lists "the token is empty or malformed" under the missing-header answer.
  return match === null ? { kind: "missing" } : { kind: "token", value: match[1]! }
}

const WEX_PROBLEM_TYPE = "https://platform.benefits.wexglobal.com/api/dksj"

const wexProblem = (ctx: Context, instance: string): string => {
  const fields = [
    `"type": ${JSON.stringify(WEX_PROBLEM_TYPE)}`,
    `"title": "Unauthorized"`,
    `"detail": "The request requires user authentication."`,
    `"instance": ${JSON.stringify(instance)}`
  ]
  // The trailing comma is WEX's, copied from their documentation on purpose.
  return ctx.wexMalformedProblem ? `{\n${fields.join(",\n")},\n}\n` : `{\n${fields.join(",\n")}\n}\n`
}

/** The answer to a refused token, in the profile's dialect. */
const refusal = (
  ctx: Context,
  reason: "missing" | "unknown" | "expired" | "revoked",
  path: string,
  expiresAt: number
): { readonly challenge: string; readonly body: string; readonly contentType: string | undefined } => {
  if (ctx.profile === "wex") {
    switch (reason) {
      case "missing":
        return {
          challenge: "Bearer",
          body: JSON.stringify({
            error: "unauthorized",
            error_description: "Full authentication is required to access this resource"
          }),
          contentType: "application/json; charset=utf-8"
        }
      case "unknown":
        return {
          challenge: 'Bearer error="invalid_token"',
          body: JSON.stringify({ error: "Unauthorized", error_description: "Unauthorized" }),
          contentType: "application/json; charset=utf-8"
        }
      default:
        return {
          challenge: 'Bearer error="invalid_token"',
          body: wexProblem(ctx, path),
          contentType: "application/problem+json"
        }
    }
  }
  const challenge =
    reason === "missing"
      ? "Bearer"
      : reason === "unknown"
        ? 'Bearer error="invalid_token"'
        : reason === "revoked"
          ? 'Bearer error="invalid_token", error_description="The token is not active"'
          : `Bearer error="invalid_token", error_description="The token expired at '${new Date(expiresAt).toISOString()}'"`
  return { challenge, body: "", contentType: undefined }
}

const refuseToken = (
  ctx: Context,
  res: ServerResponse,
  log: RequestLog,
  reason: "missing" | "unknown" | "expired" | "revoked",
  path: string,
  expiresAt = 0
): void => {
  log.error = reason
  const answer = refusal(ctx, reason, path, expiresAt)
  if (answer.contentType === undefined) {
    sendEmpty(res, 401, { "WWW-Authenticate": answer.challenge })
  } else {
    sendText(res, 401, answer.body, answer.contentType, { "WWW-Authenticate": answer.challenge })
  }
}

/** `/api/...` */
export const handleApi = async (
  ctx: Context,
  req: IncomingMessage,
  res: ServerResponse,
  log: RequestLog,
  url: URL
): Promise<void> => {
  log.kind = "api"
  const path = url.pathname.slice("/api".length)
  const route = matchRoute(path)
  const method = req.method ?? "GET"
  log.route = route === undefined ? "(unmatched)" : `${method} ${route.pattern}`

  // Attribution first (for the event), enforcement after the faults.
  const presented = presentedToken(req.headers.authorization)
  const check = presented.kind === "token" ? ctx.registry.checkAccess(presented.value, ctx.now()) : undefined
  if (presented.kind === "token") {
    log.tokenFingerprint = fingerprint(presented.value)
    if (check !== undefined && check.state !== "unknown") {
      log.clientId = check.record.clientId
      log.subject = check.record.subject
    }
  }

  const answered = await injectFaults(ctx.faults.api, ctx.random, ctx.sleep, req.socket, log, {
    rateLimited: (retryAfter) => {
      log.error = "rate_limited"
      sendProblem(res, 429, "Too Many Requests", `Retry after ${retryAfter} seconds`, url.pathname, {
        "Retry-After": String(retryAfter)
      })
    },
    failed: (status) => {
      log.error = `http_${status}`
      if (status === 502) {
        sendText(
          res,
          502,
          "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center></body></html>\n",
          "text/html; charset=utf-8"
        )
      } else {
        const title = status === 500 ? "Internal Server Error" : "Service Unavailable"
        sendProblem(res, status, title, "Injected fault", url.pathname)
      }
    }
  })
  if (answered) return

  if (presented.kind === "missing") return refuseToken(ctx, res, log, "missing", url.pathname)
  if (check === undefined || check.state === "unknown") {
    return refuseToken(ctx, res, log, "unknown", url.pathname)
  }
  if (check.state !== "valid") {
    return refuseToken(ctx, res, log, check.state, url.pathname, check.record.expiresAt)
  }
  if (ctx.faults.api.isUnauthorized(path)) return refuseToken(ctx, res, log, "unknown", url.pathname)

  if (route === undefined) {
    return sendProblem(res, 404, "Not Found", "No such resource", url.pathname)
  }
  if (!route.methods.includes(method)) {
    return sendProblem(res, 405, "Method Not Allowed", `Allowed: ${route.methods.join(", ")}`, url.pathname, {
      Allow: route.methods.join(", ")
    })
  }
  let id: string | undefined
  if (route.id !== undefined) {
    try {
      id = decodeURIComponent(route.id)
    } catch {
      id = undefined
    }
    if (id === undefined || !/^[A-Za-z0-9._-]{1,64}$/.test(id)) {
      return sendProblem(res, 400, "Bad Request", "The identifier is malformed", url.pathname)
    }
  }

  switch (`${method} ${route.pattern}`) {
    case "GET /v1/consumers/:id":
      return sendJson(res, 200, consumer(id!, ctx.now()))
    case "GET /v1/consumers/:id/accounts": {
      const total = accountCount(id!)
      return paginate(ctx, res, url, total, (index) => account(id!, index, ctx.now()))
    }
    case "GET /v1/claims": {
      const items = ctx.claims.items
      return paginate(ctx, res, url, items.length, (index) => items[index]!)
    }
    case "GET /v1/claims/:id": {
      const claim = ctx.claims.items.find((c) => c.claimId === id)
      return claim === undefined
        ? sendProblem(res, 404, "Not Found", "No such claim", url.pathname)
        : sendJson(res, 200, claim)
    }
    case "POST /v1/claims":
      return createClaim(ctx, req, res, url)
    case "POST /v1/documents":
      return uploadDocument(req, res, url)
    case "GET /v1/me": {
      // the token's fingerprint, never its value: a response body is where a leaked token spreads
      const record = check.record
      return sendJson(
        res,
        200,
        {
          subject: record.subject,
          clientId: record.clientId,
          scope: record.scope ?? null,
          grantType: record.grantType,
          tokenFingerprint: record.fingerprint
        },
        { "Cache-Control": "no-store" }
      )
    }
  }
}

const paginate = (
  ctx: Context,
  res: ServerResponse,
  url: URL,
  total: number,
  item: (index: number) => unknown
): void => {
  const page = intParam(url, "page", 1)
  const pageSize = intParam(url, "pageSize", DEFAULT_PAGE_SIZE)
  if (page === undefined || page < 1) {
    sendProblem(res, 400, "Bad Request", "page must be a positive integer", url.pathname)
    return
  }
  if (pageSize === undefined || pageSize < 1 || pageSize > MAX_PAGE_SIZE) {
    sendProblem(
      res,
      400,
      "Bad Request",
      `pageSize must be an integer from 1 to ${MAX_PAGE_SIZE}`,
      url.pathname
    )
    return
  }
  const start = (page - 1) * pageSize
  const items: Array<unknown> = []
  for (let i = start; i < Math.min(total, start + pageSize); i++) items.push(item(i))
  const lastPage = Math.max(1, Math.ceil(total / pageSize))
  const link = (n: number, rel: string) =>
    `<${ctx.url}${url.pathname}?page=${n}&pageSize=${pageSize}>; rel="${rel}"`
  // RFC 8288 web links, as GitHub and most paginated APIs send them.
  const links = [link(1, "first")]
  if (page > 1) links.push(link(Math.min(page - 1, lastPage), "prev"))
  if (page < lastPage) links.push(link(page + 1, "next"))
  links.push(link(lastPage, "last"))
  sendJson(res, 200, { page, pageSize, total, items }, { Link: links.join(", ") })
}

const intParam = (url: URL, name: string, fallback: number): number | undefined => {
  const values = url.searchParams.getAll(name)
  if (values.length === 0) return fallback
  if (values.length > 1 || !/^\d{1,9}$/.test(values[0]!)) return undefined
  return Number(values[0])
}

const createClaim = async (
  ctx: Context,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL
): Promise<void> => {
  const type = mediaType(req.headers["content-type"])
  if (type !== "application/json" && !type?.endsWith("+json")) {
    return sendProblem(res, 415, "Unsupported Media Type", "Send the claim as application/json", url.pathname)
  }
  const read = await readCapped(req, CLAIM_BODY_LIMIT)
  if (!read.ok) {
    if (read.reason === "aborted") return
    closeAfterResponse(res)
    return sendProblem(
      res,
      413,
      "Content Too Large",
      `A claim must be at most ${CLAIM_BODY_LIMIT} bytes`,
      url.pathname
    )
  }
  let body: unknown
  try {
    body = JSON.parse(read.body.toString("utf8"))
  } catch {
    return sendProblem(res, 400, "Bad Request", "The body is not valid JSON", url.pathname)
  }
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    return sendProblem(res, 400, "Bad Request", "The claim must be a JSON object", url.pathname)
  }
  const bodyHash = sha256Hex(canonicalJson(body))
  const claims = ctx.claims
  const key = req.headers["idempotency-key"]
  if (typeof key === "string") {
    const earlier = claims.idempotency.get(key)
    if (earlier !== undefined) {
      // draft-ietf-httpapi-idempotency-key-header: same key, same request: the first answer again;
      // same key, another request: 422.
      if (earlier.bodyHash !== bodyHash) {
        return sendProblem(
          res,
          422,
          "Unprocessable Content",
          "This Idempotency-Key was used with a different request",
          url.pathname
        )
      }
      return sendJson(res, 201, earlier.response, {
        Location: `/api/v1/claims/${earlier.response.claimId as string}`
      })
    }
  }
  if (claims.bodyHashes.has(bodyHash)) claims.duplicates++
  claims.bodyHashes.add(bodyHash)
  claims.created++
  const claimId = `CLM-${String(claims.nextId++).padStart(6, "0")}`
  const claim = {
    ...(body as Record<string, unknown>),
    claimId,
    status: "Submitted",
    receivedAt: new Date(ctx.now()).toISOString()
  }
  claims.items.push(claim)
  if (claims.items.length > MAX_CLAIMS) claims.items.shift()
  if (typeof key === "string") {
    claims.idempotency.set(key, { bodyHash, response: claim })
    if (claims.idempotency.size > MAX_CLAIMS) {
      claims.idempotency.delete(claims.idempotency.keys().next().value as string)
    }
  }
  sendJson(res, 201, claim, { Location: `/api/v1/claims/${claimId}` })
}

const uploadDocument = async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> => {
  const hash = createHash("sha256")
  const result = await streamCapped(req, DOCUMENT_LIMIT, (chunk) => hash.update(chunk))
  if (!result.ok) {
    if (result.reason === "aborted") return
    closeAfterResponse(res)
    return sendProblem(
      res,
      413,
      "Content Too Large",
      `A document must be at most ${DOCUMENT_LIMIT} bytes`,
      url.pathname
    )
  }
  sendJson(
    res,
    201,
    {
      documentId: randomUUID(),
      bytes: result.bytes,
      sha256: hash.digest("hex"),
      contentType: req.headers["content-type"] ?? "application/octet-stream"
    },
    {}
  )
}

/** JSON with sorted keys, so two equal claims hash alike whatever their key order. */
const canonicalJson = (value: unknown): string => {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`
  if (typeof value === "object" && value !== null) {
    const entries = Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`)
    return `{${entries.join(",")}}`
  }
  return JSON.stringify(value)
}

// ---- realistic, deterministic data: the same id always gives the same consumer ----

/** mulberry32, seeded from the id: plain data, not security. */
const seeded = (seed: string): (() => number) => {
  let state = createHash("sha256").update(seed).digest().readUInt32BE(0)
  return () => {
    state = (state + 0x6d2b79f5) | 0
    let t = Math.imul(state ^ (state >>> 15), 1 | state)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const pick = <T>(random: () => number, values: ReadonlyArray<T>): T =>
  values[Math.floor(random() * values.length)]!

const money = (random: () => number, max: number): number => Math.round(random() * max * 100) / 100

const FIRST = ["Avery", "Jordan", "Maria", "Wei", "Priya", "Samuel", "Fatima", "Lucas", "Grace", "Diego"]
const LAST = [
  "Nguyen",
  "Okafor",
  "Schmidt",
  "Garcia",
  "Patel",
  "Kowalski",
  "Haddad",
  "Johnson",
  "Tanaka",
  "Silva"
]
const EMPLOYERS = ["Acme Logistics", "Northwind Health", "Blue Fern Foods", "Contoso Manufacturing"]
const ACCOUNT_TYPES = ["HSA", "FSA", "LPFSA", "DCFSA", "HRA"] as const

const consumer = (id: string, now: number): Record<string, unknown> => {
  const random = seeded(`consumer:${id}`)
  const firstName = pick(random, FIRST)
  const lastName = pick(random, LAST)
  const year = new Date(now).getUTCFullYear()
  const planType = pick(random, ["HSA", "FSA", "HRA"])
  return {
    consumerId: id,
    firstName,
    lastName,
    email: `${firstName}.${lastName}@example.com`.toLowerCase(),
    status: "Active",
    employer: { employerId: `EMP-${1000 + Math.floor(random() * 9000)}`, name: pick(random, EMPLOYERS) },
    plan: {
      planId: `PLN-${year}-${planType}`,
      name: `${planType} ${pick(random, ["Basic", "Plus", "Select"])} ${year}`,
      type: planType,
      planYear: year,
      effectiveDate: `${year}-01-01`
    },
    balances: [
      {
        accountType: "HSA",
        available: money(random, 8000),
        contributionsYtd: money(random, 4000),
        currency: "USD"
      },
      {
        accountType: "FSA",
        available: money(random, 3000),
        contributionsYtd: money(random, 1500),
        currency: "USD"
      }
    ],
    updatedAt: new Date(now).toISOString()
  }
}

const accountCount = (id: string): number => 5 + Math.floor(seeded(`accounts:${id}`)() * 30)

const account = (id: string, index: number, now: number): Record<string, unknown> => {
  const random = seeded(`account:${id}:${index}`)
  const year = new Date(now).getUTCFullYear() - (index % 3)
  return {
    accountId: `${id}-ACC-${String(index + 1).padStart(4, "0")}`,
    accountType: ACCOUNT_TYPES[index % ACCOUNT_TYPES.length],
    planYear: year,
    status: index % 3 === 0 ? "Active" : "Closed",
    balance: money(random, 5000),
    currency: "USD"
  }
}

/** The claims a new sandbox starts with. */
export const seedClaims = (now: number): Array<Record<string, unknown>> =>
  Array.from({ length: 12 }, (_, index) => {
    const random = seeded(`claim:${index}`)
    return {
      claimId: `CLM-${String(index + 1).padStart(6, "0")}`,
      consumerId: "12345",
      accountType: pick(random, ACCOUNT_TYPES),
      amount: money(random, 900),
      currency: "USD",
      status: pick(random, ["Approved", "Pending", "Denied", "Paid"]),
      serviceDate: new Date(now - (index + 1) * 6 * 86_400_000).toISOString().slice(0, 10),
      receivedAt: new Date(now - (index + 1) * 5 * 86_400_000).toISOString()
    }
  })
