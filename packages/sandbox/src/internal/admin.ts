/**
 * The admin API under `/admin`: what a test or a person changes and reads at
 * run time. Unauthenticated (a local sandbox, on 127.0.0.1 by default), but
 * writes refuse a foreign `Origin` and `PUT /admin/faults` needs a JSON body,
 * so a web page in the same browser cannot flip faults or revoke tokens
 * behind the developer's back.
 *
 * Reads (`GET`) are not events: the page polls them twice a second.
 *
 * @internal
 */
import type { IncomingMessage, ServerResponse } from "node:http"
import type { Faults, SandboxEvent, SandboxStats } from "../types.ts"
import type { Context, RequestLog } from "./context.ts"
import { closeAfterResponse, mediaType, readCapped, sendEmpty, sendJson, sendProblem } from "./http.ts"

/** What the admin API acts on: the sandbox itself. */
export interface AdminOps {
  stats(): SandboxStats
  faults(): Faults
  setFaults(faults: unknown): Faults
  revokeAll(): number
  /** throws a `TypeError` for an unknown user */
  revokeUser(username: string): number
  /** throws a `TypeError` for an unknown user */
  revokeRefreshTokens(username: string | undefined): number
  resetStats(): void
  events(since: number): { readonly events: ReadonlyArray<SandboxEvent>; readonly lastSeq: number }
}

const NO_STORE = { "Cache-Control": "no-store" }

/** Most tokens `GET /admin/tokens` lists (newest first). */
const TOKENS_LISTED = 200

/** Admin bodies above this are refused (413). */
const BODY_LIMIT = 16 * 1024

type JsonBody =
  | { readonly ok: true; readonly value: unknown }
  | { readonly ok: false; readonly sent: boolean }

/**
 * The JSON body of an admin write. `application/json` is required when there
 * is a body: a cross-site form cannot send it without a CORS preflight, which
 * the sandbox never grants. `optional`: no body at all stands for `{}`.
 */
const readJson = async (
  req: IncomingMessage,
  res: ServerResponse,
  log: RequestLog,
  url: URL,
  optional: boolean
): Promise<JsonBody> => {
  const declared = req.headers["content-length"]
  const empty =
    req.headers["content-type"] === undefined &&
    (declared === undefined || declared === "0") &&
    req.headers["transfer-encoding"] === undefined
  if (optional && empty) return { ok: true, value: {} }
  if (mediaType(req.headers["content-type"]) !== "application/json") {
    log.error = "unsupported_media_type"
    sendProblem(res, 415, "Unsupported Media Type", "Send the body as application/json", url.pathname)
    return { ok: false, sent: true }
  }
  const read = await readCapped(req, BODY_LIMIT)
  if (!read.ok) {
    if (read.reason === "aborted") return { ok: false, sent: false }
    closeAfterResponse(res)
    log.error = "too_large"
    sendProblem(res, 413, "Content Too Large", `At most ${BODY_LIMIT} bytes`, url.pathname)
    return { ok: false, sent: true }
  }
  try {
    return { ok: true, value: JSON.parse(read.body.toString("utf8")) }
  } catch {
    log.error = "invalid_json"
    sendProblem(res, 400, "Bad Request", "The body is not valid JSON", url.pathname)
    return { ok: false, sent: true }
  }
}

/** `{ "username": "..." }` (or `{}` when `optional`), else a 400 answered. */
const usernameOf = (
  body: unknown,
  optional: boolean
):
  | { readonly ok: true; readonly username: string | undefined }
  | { readonly ok: false; readonly detail: string } => {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    return { ok: false, detail: "The body must be a JSON object" }
  }
  const keys = Object.keys(body)
  const unknown = keys.find((k) => k !== "username")
  if (unknown !== undefined) return { ok: false, detail: `Unknown field "${unknown}"` }
  const username = (body as { username?: unknown }).username
  if (username === undefined && optional) return { ok: true, username: undefined }
  if (typeof username !== "string" || username.length === 0) {
    return { ok: false, detail: "username must be a non-empty string" }
  }
  return { ok: true, username }
}

export const handleAdmin = async (
  ctx: Context,
  ops: AdminOps,
  req: IncomingMessage,
  res: ServerResponse,
  log: RequestLog,
  url: URL
): Promise<void> => {
  const path = url.pathname.replace(/\/+$/, "")
  const method = req.method ?? "GET"
  const isRead = method === "GET" || method === "HEAD"
  if (!isRead) {
    log.kind = "admin"
    const origin = req.headers.origin
    if ((origin !== undefined && origin !== ctx.url) || req.headers["sec-fetch-site"] === "cross-site") {
      log.error = "forbidden_origin"
      return sendProblem(
        res,
        403,
        "Forbidden",
        "Admin writes are accepted from this sandbox only",
        url.pathname
      )
    }
  }
  const allow = (methods: string) =>
    sendProblem(res, 405, "Method Not Allowed", `Allowed: ${methods}`, url.pathname, { Allow: methods })

  switch (path) {
    case "/admin":
      if (!isRead) return allow("GET")
      return sendJson(
        res,
        200,
        {
          profile: ctx.profile,
          endpoints: [
            "GET /admin/stats",
            "GET /admin/faults",
            "PUT /admin/faults",
            "POST /admin/revoke-all",
            'POST /admin/revoke-user {"username":"..."}',
            'POST /admin/revoke-refresh-tokens {"username":"..."} (username optional)',
            "POST /admin/reset-stats",
            "GET /admin/events?since=<seq>",
            "GET /admin/tokens"
          ]
        },
        NO_STORE
      )
    case "/admin/stats":
      if (!isRead) return allow("GET")
      return sendJson(res, 200, ops.stats(), NO_STORE)
    case "/admin/faults": {
      if (isRead) return sendJson(res, 200, ops.faults(), NO_STORE)
      if (method !== "PUT") return allow("GET, PUT")
      if (mediaType(req.headers["content-type"]) !== "application/json") {
        log.error = "unsupported_media_type"
        return sendProblem(
          res,
          415,
          "Unsupported Media Type",
          "Send the faults as application/json",
          url.pathname
        )
      }
      const read = await readCapped(req, 16 * 1024)
      if (!read.ok) {
        if (read.reason === "aborted") return
        closeAfterResponse(res)
        log.error = "too_large"
        return sendProblem(res, 413, "Content Too Large", "At most 16384 bytes", url.pathname)
      }
      let faults: Faults
      try {
        faults = ops.setFaults(JSON.parse(read.body.toString("utf8")))
      } catch (err) {
        log.error = "invalid_faults"
        const detail = err instanceof SyntaxError ? "The body is not valid JSON" : (err as Error).message
        return sendProblem(res, 400, "Bad Request", detail, url.pathname)
      }
      return sendJson(res, 200, faults, NO_STORE)
    }
    case "/admin/revoke-all":
      if (method !== "POST") return allow("POST")
      return sendJson(res, 200, { revoked: ops.revokeAll() }, NO_STORE)
    case "/admin/revoke-user":
    case "/admin/revoke-refresh-tokens": {
      if (method !== "POST") return allow("POST")
      const optional = path === "/admin/revoke-refresh-tokens"
      const body = await readJson(req, res, log, url, optional)
      if (!body.ok) return
      const named = usernameOf(body.value, optional)
      if (!named.ok) {
        log.error = "invalid_body"
        return sendProblem(res, 400, "Bad Request", named.detail, url.pathname)
      }
      let revoked: number
      try {
        revoked = optional ? ops.revokeRefreshTokens(named.username) : ops.revokeUser(named.username!)
      } catch (err) {
        log.error = "unknown_user"
        return sendProblem(res, 404, "Not Found", (err as Error).message, url.pathname)
      }
      return sendJson(res, 200, { revoked }, NO_STORE)
    }
    case "/admin/reset-stats":
      if (method !== "POST") return allow("POST")
      ops.resetStats()
      return sendEmpty(res, 204, NO_STORE)
    case "/admin/events": {
      if (!isRead) return allow("GET")
      const raw = url.searchParams.get("since") ?? "0"
      if (!/^\d{1,15}$/.test(raw)) {
        return sendProblem(res, 400, "Bad Request", "since must be a non-negative integer", url.pathname)
      }
      return sendJson(res, 200, ops.events(Number(raw)), NO_STORE)
    }
    case "/admin/tokens": {
      if (!isRead) return allow("GET")
      const now = ctx.now()
      const tokens = ctx.registry.recentAccess(TOKENS_LISTED).map((t) => ({
        fingerprint: t.fingerprint,
        clientId: t.clientId,
        grantType: t.grantType,
        scope: t.scope ?? null,
        subject: t.subject,
        issuedAt: new Date(t.issuedAt).toISOString(),
        expiresAt: new Date(t.expiresAt).toISOString(),
        expiresAtMs: t.expiresAt,
        expiresInSeconds: Math.max(0, Math.round((t.expiresAt - now) / 1000)),
        expired: now >= t.expiresAt,
        revoked: t.revoked
      }))
      return sendJson(res, 200, { now: new Date(now).toISOString(), nowMs: now, tokens }, NO_STORE)
    }
    default:
      if (!isRead) log.error = "not_found"
      return sendProblem(res, 404, "Not Found", "No such admin endpoint", url.pathname)
  }
}
