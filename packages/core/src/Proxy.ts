/**
 * Where a proxy path is checked, and the backend-for-frontend proxy built on
 * it, over web `Request`/`Response` so that Express and Next.js share one
 * implementation (the Express adapter converts Node streams; Next route
 * handlers use it as is).
 *
 * The browser never holds the client secret or a token: it calls our server,
 * which forwards to one fixed upstream with the bearer token. Everything the
 * caller controls is hostile until checked:
 *
 * - the path: `..` and its encodings (`%2e%2e`, `%252e%252e`, ...), encoded
 *   slashes, backslashes, `//host`, absolute URLs, control characters and NUL
 *   are rejected (400); an optional allow-list of path patterns (404
 *   otherwise); the upstream URL is rebuilt and must still be under the
 *   upstream base, whatever the path said;
 * - headers: only an allow-list is forwarded, so the caller's
 *   `Authorization`, `Cookie` and hop-by-hop headers never reach the upstream;
 *   the upstream's `Set-Cookie`, `WWW-Authenticate` and hop-by-hop headers
 *   never reach the caller;
 * - the body: bounded (`413`), streamed both ways;
 * - time: bounded per attempt (`504`);
 * - redirects: followed only within the upstream origin (a proxy must not
 *   fetch wherever the upstream points); otherwise `502`.
 *
 * Errors leave as RFC 9457 `application/problem+json` without internals: no
 * stack, no upstream URL, no token.
 *
 * @example
 * ```ts
 * import { Proxy } from "@authfetch/core"
 *
 * const handle = Proxy.createProxyHandler({ tokens, upstream: "https://platform.uat.benefits.wexglobal.com/api" })
 * // in a framework route for "/benefits/*":
 * const response = await handle(request, "/v1/consumers/12345")
 * ```
 *
 * @since 0.1.0
 */
import type { Duration } from "effect"
import { InvalidConfigError } from "./Errors.ts"
import type { RequestEvent } from "./Events.ts"
import { concatBytes } from "./internal/bytes.ts"
import { authFetch, type Tokens } from "./Middleware.ts"
import type { RequestRetryOptions } from "./RetryPolicy.ts"

/**
 * @since 0.1.0
 */
export interface ProxyOptions {
  readonly tokens: Tokens
  /** the fixed upstream base, e.g. `https://platform.uat.benefits.wexglobal.com/api` */
  readonly upstream: string
  /**
   * path patterns allowed (matched against the decoded path below the
   * upstream base): `*` is one segment, `**` any number; default: all paths
   */
  readonly allow?: ReadonlyArray<string | RegExp> | undefined
  /** methods forwarded; default GET, HEAD, POST, PUT, PATCH, DELETE */
  readonly methods?: ReadonlyArray<string> | undefined
  /** request bodies over this are refused with 413; default 1 MiB */
  readonly maxBodyBytes?: number | undefined
  /** time allowed to one upstream attempt; default 30 s */
  readonly timeout?: Duration.Input | undefined
  readonly retry?: RequestRetryOptions | false | undefined
  /** request headers forwarded, beyond the default allow-list */
  readonly forwardHeaders?: ReadonlyArray<string> | undefined
  /** the fetch underneath (tests, instrumentation) */
  readonly fetch?: typeof globalThis.fetch | undefined
  readonly onEvent?: ((event: RequestEvent) => void) | undefined
}

/** Request headers a client may pass to the upstream (everything else is dropped). */
const FORWARDED_REQUEST_HEADERS = [
  "accept",
  "accept-language",
  "cache-control",
  "content-language",
  "content-type",
  "if-match",
  "if-modified-since",
  "if-none-match",
  "if-unmodified-since",
  "idempotency-key",
  "prefer",
  "range",
  "traceparent",
  "tracestate",
  "x-request-id",
  "x-correlation-id"
]

/** Response headers never passed back: hop-by-hop (RFC 9110 7.6.1) and upstream credentials. */
const DROPPED_RESPONSE_HEADERS = new Set([
  "connection",
  "keep-alive",
  "proxy-authenticate",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "set-cookie",
  "set-cookie2",
  "www-authenticate",
  "content-length",
  "content-encoding",
  "alt-svc",
  "strict-transport-security"
])

const DEFAULT_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
const DEFAULT_MAX_BODY_BYTES = 1024 * 1024
/** Bodies up to this size (with a known length) are buffered so a 401 can be replayed. */
const REPLAYABLE_BODY_BYTES = 64 * 1024

/**
 * The verdict on a caller-supplied path.
 *
 * @since 0.1.0
 */
export type PathCheck =
  | { readonly ok: true; readonly path: string; readonly search: string }
  | { readonly ok: false; readonly reason: string }

// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it finds
const CONTROL = /[\u0000-\u001f\u007f]/

/**
 * Checks the part of a proxied URL below the mount point (`/v1/x?y=1`): the
 * path must be a plain, relative, normalised path; the query is kept as it
 * is (it goes to the same upstream). Percent-decoding is applied repeatedly
 * (up to 3 times) so that `%252e%252e` is seen as `..` too.
 *
 * @example
 * ```ts
 * Proxy.checkPath("/v1/consumers/12345?page=2") // { ok: true, path: "/v1/consumers/12345", search: "?page=2" }
 * Proxy.checkPath("/v1/%2e%2e/admin")           // { ok: false, reason: "dot segment" }
 * ```
 *
 * @since 0.1.0
 */
export const checkPath = (raw: string): PathCheck => {
  if (CONTROL.test(raw)) return { ok: false, reason: "control character" }
  const hash = raw.indexOf("#")
  const withoutHash = hash === -1 ? raw : raw.slice(0, hash)
  const q = withoutHash.indexOf("?")
  const path = q === -1 ? withoutHash : withoutHash.slice(0, q)
  const search = q === -1 ? "" : withoutHash.slice(q)
  if (!path.startsWith("/")) return { ok: false, reason: "not an absolute path" }
  if (path.startsWith("//")) return { ok: false, reason: "network-path reference" }
  if (/^\/*[a-zA-Z][a-zA-Z\d+\-.]*:/.test(path)) return { ok: false, reason: "absolute URL" }
  // Decode until stable (bounded): every layer must be as clean as the first.
  let current = path
  for (let layer = 0; layer < 4; layer++) {
    if (current.includes("\\")) return { ok: false, reason: "backslash" }
    if (CONTROL.test(current)) return { ok: false, reason: "control character" }
    if (/\/\/|^\/\//.test(current)) return { ok: false, reason: "empty segment" }
    // `..;x` is `..` to servlet containers (path parameters): judged without them.
    const segments = current
      .split("/")
      .slice(1)
      .map((s) => s.split(";")[0])
    if (segments.some((s) => s === "." || s === "..")) return { ok: false, reason: "dot segment" }
    if (layer > 0 && /[?#]/.test(current)) return { ok: false, reason: "encoded delimiter" }
    let decoded: string
    try {
      decoded = decodeURIComponent(current)
    } catch {
      // What the upstream receives must be well-formed. Below that, a `%` that is
      // not an escape is a literal one (`100%25` → `100%`): decode the escapes
      // around it and keep judging, as a server that decodes twice would read them.
      const lenient = layer === 0 ? undefined : decodeEscapes(current)
      if (lenient === undefined) return { ok: false, reason: "malformed percent-encoding" }
      decoded = lenient
    }
    if (decoded === current) return { ok: true, path, search }
    // An encoded slash would turn one segment into two upstream.
    if (/%2f/i.test(current)) return { ok: false, reason: "encoded slash" }
    current = decoded
  }
  return { ok: false, reason: "too many encoding layers" }
}

/**
 * Decodes the escapes of a string, leaving a stray `%` (one not followed by
 * two hex digits) as it is; `undefined` when the escapes are not UTF-8 (an
 * overlong `%C0%AE` is a dot to some servers: refused, not guessed at).
 */
const decodeEscapes = (s: string): string | undefined => {
  let malformed = false
  const decoded = s.replace(/(?:%[0-9a-fA-F]{2})+/g, (run) => {
    try {
      return decodeURIComponent(run)
    } catch {
      malformed = true
      return run
    }
  })
  return malformed ? undefined : decoded
}

/** Stands for `**` while the other segments are escaped (a private-use character). */
const GLOBSTAR = "\uE000"

const patternOf = (pattern: string | RegExp): RegExp => {
  if (pattern instanceof RegExp) return pattern
  const source = pattern
    .split("/")
    .map((segment) =>
      segment === "**"
        ? GLOBSTAR
        : segment
            .split("*")
            .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, "\\$&"))
            .join("[^/]*")
    )
    .join("/")
    .split(`/${GLOBSTAR}`)
    .join("(?:/.*)?")
    .split(GLOBSTAR)
    .join(".*")
  return new RegExp(`^${source}$`)
}

/**
 * An RFC 9457 problem response without internals.
 *
 * @example
 * ```ts
 * Proxy.problem(413, "Content Too Large", "The request body exceeds 1048576 bytes.")
 * ```
 *
 * @since 0.1.0
 */
export const problem = (
  status: number,
  title: string,
  detail: string,
  headers?: Readonly<Record<string, string>>
): Response =>
  new Response(JSON.stringify({ type: "about:blank", title, status, detail }), {
    status,
    headers: { ...headers, "content-type": "application/problem+json", "cache-control": "no-store" }
  })

class BodyTooLarge extends Error {}

/** Counts bytes as they stream, failing the stream past `max`. */
const bounded = (body: ReadableStream<Uint8Array>, max: number): ReadableStream<Uint8Array> => {
  let total = 0
  return body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        total += chunk.byteLength
        if (total > max) controller.error(new BodyTooLarge())
        else controller.enqueue(chunk)
      }
    })
  )
}

const readAll = async (body: ReadableStream<Uint8Array>, max: number): Promise<Uint8Array<ArrayBuffer>> => {
  const chunks: Array<Uint8Array> = []
  let total = 0
  for await (const chunk of body) {
    total += chunk.byteLength
    if (total > max) throw new BodyTooLarge()
    chunks.push(chunk)
  }
  return concatBytes(chunks, total)
}

const isBodyTooLarge = (error: unknown): boolean => {
  for (let e: unknown = error, depth = 0; e !== undefined && depth < 5; depth++) {
    if (e instanceof BodyTooLarge) return true
    e = (e as { cause?: unknown }).cause
  }
  return false
}

/**
 * The proxy as a web handler: `(request, path) => response`, where `path` is
 * the part of the URL below the mount point, still percent-encoded, with its
 * query (`/v1/consumers/1?x=2`).
 *
 * @example
 * ```ts
 * const handle = Proxy.createProxyHandler({ tokens, upstream, allow: ["/v1/consumers/*"], maxBodyBytes: 10 * 1024 * 1024 })
 * export const GET = (request: Request) => handle(request, new URL(request.url).pathname.slice("/api/benefits".length))
 * ```
 *
 * @since 0.1.0
 */
export const createProxyHandler = (
  options: ProxyOptions
): ((request: Request, path: string) => Promise<Response>) => {
  let base: URL
  try {
    base = new URL(options.upstream)
  } catch {
    throw new InvalidConfigError({ problems: ["upstream is not an absolute URL"] })
  }
  if (base.search || base.hash || base.username || base.password) {
    throw new InvalidConfigError({ problems: ["upstream must be a plain origin and path"] })
  }
  const basePath = base.pathname.replace(/\/+$/, "")
  const allow = options.allow?.map(patternOf)
  const methods = new Set((options.methods ?? DEFAULT_METHODS).map((m) => m.toUpperCase()))
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES
  const forwarded = new Set([
    ...FORWARDED_REQUEST_HEADERS,
    ...(options.forwardHeaders ?? []).map((h) => h.toLowerCase())
  ])
  for (const never of [
    "authorization",
    "cookie",
    "proxy-authorization",
    "host",
    "connection",
    "transfer-encoding"
  ]) {
    forwarded.delete(never)
  }
  const api = authFetch(options.tokens, {
    origins: [base.origin],
    retry: options.retry,
    timeout: options.timeout,
    fetch: options.fetch,
    onEvent: options.onEvent,
    crossOriginRedirects: "refuse"
  })

  return async (request, rawPath) => {
    const method = request.method.toUpperCase()
    if (!methods.has(method)) {
      // RFC 9110 15.5.6: a 405 lists the methods that are allowed.
      return problem(405, "Method Not Allowed", `${method} is not forwarded.`, {
        allow: [...methods].join(", ")
      })
    }
    const checked = checkPath(rawPath)
    if (!checked.ok) return problem(400, "Bad Request", `The path is not acceptable (${checked.reason}).`)
    const decodedPath = decodeURIComponent(checked.path)
    if (allow && !allow.some((pattern) => pattern.test(decodedPath))) {
      return problem(404, "Not Found", "No such resource.")
    }
    const target = new URL(`${base.origin}${basePath}${checked.path}${checked.search}`)
    // Defence in depth: whatever the path said, the target is under the upstream base.
    if (target.origin !== base.origin || !`${target.pathname}/`.startsWith(`${basePath}/`)) {
      return problem(400, "Bad Request", "The path is not acceptable (outside the upstream).")
    }

    const headers = new Headers()
    for (const [name, value] of request.headers) if (forwarded.has(name)) headers.set(name, value)

    let body: BodyInit | null = null
    if (request.body !== null && method !== "GET" && method !== "HEAD") {
      const declared = Number(request.headers.get("content-length") ?? Number.NaN)
      if (declared > maxBodyBytes) {
        await request.body.cancel().catch(() => {})
        return problem(413, "Content Too Large", `The request body exceeds ${maxBodyBytes} bytes.`)
      }
      try {
        // Small bodies of known size are buffered so that a 401 can replay them; others stream.
        body =
          declared <= REPLAYABLE_BODY_BYTES
            ? await readAll(request.body, maxBodyBytes)
            : bounded(request.body, maxBodyBytes)
      } catch (error) {
        if (isBodyTooLarge(error))
          return problem(413, "Content Too Large", `The request body exceeds ${maxBodyBytes} bytes.`)
        return problem(400, "Bad Request", "The request body could not be read.")
      }
    }

    let response: Response
    try {
      response = await api(target.href, {
        method,
        headers,
        body,
        signal: request.signal,
        ...(body instanceof ReadableStream ? { duplex: "half" } : {})
      } as RequestInit)
    } catch (error) {
      if (request.signal.aborted) throw error
      if (isBodyTooLarge(error))
        return problem(413, "Content Too Large", `The request body exceeds ${maxBodyBytes} bytes.`)
      const tag = (error as { _tag?: unknown })._tag
      if (tag === "RequestTimeoutError" || (tag === "RetriesExhaustedError" && isTimeoutCause(error))) {
        return problem(504, "Gateway Timeout", "The upstream did not answer in time.")
      }
      if (typeof tag === "string" && tag !== "RetriesExhaustedError") {
        // A token error (OAuthError, RateLimitedError, ...): ours to log, not the caller's to read.
        return problem(502, "Bad Gateway", "The upstream could not be authenticated.")
      }
      return problem(502, "Bad Gateway", "The upstream could not be reached.")
    }
    if (response.status >= 300 && response.status < 400 && response.headers.has("location")) {
      await response.body?.cancel().catch(() => {})
      return problem(502, "Bad Gateway", "The upstream redirected outside itself.")
    }
    if (response.status === 401) {
      // Our token was refused even after a fresh one: a server-side problem, not the caller's.
      await response.body?.cancel().catch(() => {})
      return problem(502, "Bad Gateway", "The upstream refused our credentials.")
    }
    const out = new Headers()
    for (const [name, value] of response.headers)
      if (!DROPPED_RESPONSE_HEADERS.has(name)) out.set(name, value)
    // The body is piped, not handed over: undici cancels the body of a collected,
    // unconsumed upstream Response, which would cut the stream we return.
    return new Response(
      method === "HEAD" || response.body === null ? null : response.body.pipeThrough(new TransformStream()),
      {
        status: response.status,
        statusText: response.statusText,
        headers: out
      }
    )
  }
}

const isTimeoutCause = (error: unknown): boolean =>
  (error as { cause?: { _tag?: unknown } }).cause?._tag === "RequestTimeoutError"
