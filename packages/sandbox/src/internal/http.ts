/**
 * Reading requests and writing answers the way a strict server does.
 *
 * The sandbox exists to show client code what a real authorization server
 * will refuse, so input handling is deliberately unforgiving: bodies are
 * capped and never read past the cap, form bodies are decoded strictly
 * (bad percent-encoding, invalid UTF-8 and control characters are errors, not
 * silently repaired as `URLSearchParams` would), and a repeated parameter is a
 * refusal (RFC 6749 section 3.2: "parameters MUST NOT be included more than
 * once").
 *
 * @internal
 */
import type { IncomingMessage, ServerResponse } from "node:http"

/** The outcome of reading a capped body. */
export type BodyResult =
  | { readonly ok: true; readonly body: Buffer }
  | { readonly ok: false; readonly reason: "too_large" | "aborted" }

/**
 * Reads a request body into memory, at most `limit` bytes. A declared
 * `Content-Length` over the limit is refused before a byte is read; a body
 * that grows past it mid-stream stops being read at once (the caller then
 * answers with `Connection: close`, see {@link closeAfterResponse}).
 */
export const readCapped = async (req: IncomingMessage, limit: number): Promise<BodyResult> => {
  const chunks: Array<Buffer> = []
  const result = await streamCapped(req, limit, (chunk) => chunks.push(chunk))
  return result.ok ? { ok: true, body: Buffer.concat(chunks, result.bytes) } : result
}

/**
 * Streams a request body through `onChunk` without keeping it, at most
 * `limit` bytes: past the limit it stops reading and says so (the caller then
 * answers with `Connection: close`).
 */
export const streamCapped = (
  req: IncomingMessage,
  limit: number,
  onChunk: (chunk: Buffer) => void
): Promise<
  | { readonly ok: true; readonly bytes: number }
  | { readonly ok: false; readonly reason: "too_large" | "aborted" }
> => {
  const declared = Number(req.headers["content-length"])
  if (Number.isFinite(declared) && declared > limit) {
    return Promise.resolve({ ok: false, reason: "too_large" })
  }
  return new Promise((resolve) => {
    let bytes = 0
    const finish = (
      result:
        | { readonly ok: true; readonly bytes: number }
        | { readonly ok: false; readonly reason: "too_large" | "aborted" }
    ) => {
      req.off("data", onData)
      req.off("end", onEnd)
      req.off("error", onAbort)
      req.off("close", onAbort)
      resolve(result)
    }
    const onData = (chunk: Buffer) => {
      bytes += chunk.length
      if (bytes > limit) {
        req.pause()
        finish({ ok: false, reason: "too_large" })
        return
      }
      onChunk(chunk)
    }
    const onEnd = () => finish({ ok: true, bytes })
    const onAbort = () => finish({ ok: false, reason: "aborted" })
    req.on("data", onData)
    req.on("end", onEnd)
    req.on("error", onAbort)
    req.on("close", onAbort)
  })
}

/**
 * Marks a response as the last on its connection, for answers sent before the
 * request body was read to its end: the rest of that body is not wanted, and
 * reading it to keep the connection alive would mean reading whatever size
 * the client chose to send.
 */
export const closeAfterResponse = (res: ServerResponse): void => {
  res.setHeader("Connection", "close")
}

/** The outcome of a strict form decode. */
export type FormResult =
  | { readonly ok: true; readonly params: ReadonlyMap<string, string> }
  | { readonly ok: false; readonly description: string }

const utf8 = new TextDecoder("utf-8", { fatal: true })
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are exactly what is refused
const CONTROL = /[\u0000-\u001f\u007f]/

const decodeComponent = (raw: string): string => decodeURIComponent(raw.replace(/\+/g, " "))

/**
 * Decodes `application/x-www-form-urlencoded` (the token request body, and an
 * authorization request's query) strictly.
 *
 * - invalid UTF-8 or percent-encoding, or a control character: refused;
 * - a parameter present twice: refused (RFC 6749 section 3.1 and 3.2);
 * - a parameter without a value is treated as omitted (same sections).
 */
export const parseFormStrict = (input: Buffer | string): FormResult => {
  let text: string
  try {
    text = typeof input === "string" ? input : utf8.decode(input)
  } catch {
    return { ok: false, description: "The request body is not valid UTF-8" }
  }
  const params = new Map<string, string>()
  const seen = new Set<string>()
  if (text.length === 0) return { ok: true, params }
  for (const pair of text.split("&")) {
    if (pair.length === 0) continue
    const eq = pair.indexOf("=")
    let name: string
    let value: string
    try {
      name = decodeComponent(eq === -1 ? pair : pair.slice(0, eq))
      value = decodeComponent(eq === -1 ? "" : pair.slice(eq + 1))
    } catch {
      return {
        ok: false,
        description: "The request is not valid application/x-www-form-urlencoded (malformed percent-encoding)"
      }
    }
    if (name.length === 0) {
      return { ok: false, description: "The request contains a parameter without a name" }
    }
    if (CONTROL.test(name) || CONTROL.test(value)) {
      return { ok: false, description: "The request contains control characters" }
    }
    if (seen.has(name)) {
      return {
        ok: false,
        description: `The ${printable(name)} parameter is included more than once (RFC 6749 section 3.2)`
      }
    }
    seen.add(name)
    if (value.length > 0) params.set(name, value)
  }
  return { ok: true, params }
}

/** The outcome of reading a form POST ({@link readForm}). */
export type FormRead =
  | { readonly ok: true; readonly params: ReadonlyMap<string, string> }
  | { readonly ok: false; readonly aborted: true }
  | { readonly ok: false; readonly aborted: false; readonly description: string }

/**
 * Reads a form POST the way the token endpoint does (capped, then
 * `application/x-www-form-urlencoded` in UTF-8 only, decoded strictly): for
 * the revocation endpoint and the sign-in form. A body over the cap marks the
 * response as the connection's last ({@link closeAfterResponse}).
 */
export const readForm = async (
  req: IncomingMessage,
  res: ServerResponse,
  limit: number
): Promise<FormRead> => {
  const read = await readCapped(req, limit)
  if (!read.ok) {
    if (read.reason === "aborted") return { ok: false, aborted: true }
    closeAfterResponse(res)
    return { ok: false, aborted: false, description: `The request body is larger than ${limit} bytes` }
  }
  if (mediaType(req.headers["content-type"]) !== "application/x-www-form-urlencoded") {
    return {
      ok: false,
      aborted: false,
      description: "The Content-Type must be application/x-www-form-urlencoded"
    }
  }
  const cs = charset(req.headers["content-type"])
  if (cs !== undefined && cs !== "utf-8" && cs !== "utf8") {
    return { ok: false, aborted: false, description: "The request body must be UTF-8" }
  }
  const parsed = parseFormStrict(read.body)
  return parsed.ok
    ? { ok: true, params: parsed.params }
    : { ok: false, aborted: false, description: parsed.description }
}

/** A parameter name fit to quote in an error description (short, no quotes). */
export const printable = (value: string): string => {
  const cleaned = value.replace(/[^\x20-\x7e]|["\\]/g, "?")
  return cleaned.length > 40 ? `${cleaned.slice(0, 40)}...` : cleaned
}

/** The media type of a `Content-Type` header, lower case, without parameters. */
export const mediaType = (header: string | undefined): string | undefined =>
  header === undefined ? undefined : header.split(";", 1)[0]!.trim().toLowerCase()

/** The `charset` parameter of a `Content-Type` header, lower case, if any. */
export const charset = (header: string | undefined): string | undefined => {
  const match = header === undefined ? null : /;\s*charset\s*=\s*"?([^";\s]+)"?/i.exec(header)
  return match ? match[1]!.toLowerCase() : undefined
}

/** Writes a JSON answer. */
export const sendJson = (
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
  contentType = "application/json; charset=utf-8"
): void => sendText(res, status, JSON.stringify(body), contentType, headers)

/** Writes a text answer, as is (used for bodies that must not be re-serialised). */
export const sendText = (
  res: ServerResponse,
  status: number,
  text: string,
  contentType: string,
  headers: Record<string, string> = {}
): void => {
  res.writeHead(status, {
    ...headers,
    "Content-Type": contentType,
    "Content-Length": String(Buffer.byteLength(text))
  })
  res.end(text)
}

/** Writes an answer without a body. */
export const sendEmpty = (
  res: ServerResponse,
  status: number,
  headers: Record<string, string> = {}
): void => {
  res.writeHead(status, { ...headers, "Content-Length": "0" })
  res.end()
}

/** RFC 9457 problem details, well-formed, for the sandbox's own errors. */
export const sendProblem = (
  res: ServerResponse,
  status: number,
  title: string,
  detail: string,
  instance: string,
  headers: Record<string, string> = {}
): void =>
  sendJson(
    res,
    status,
    { type: "about:blank", title, status, detail, instance },
    headers,
    "application/problem+json; charset=utf-8"
  )
