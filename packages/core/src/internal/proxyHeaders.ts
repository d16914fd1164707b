/**
 * What headers cross the proxy, each way: allow-lists (anything not named is
 * dropped), names that can never be added to them, the names a `Connection`
 * header lists (hop-by-hop by declaration, RFC 9110 section 7.6.1), and the
 * URL-bearing response headers (`Location`, `Content-Location`, `Link`) that
 * are rewritten to the mount point or dropped.
 *
 * @internal
 */

/** Request headers a client may pass to the upstream by default. */
export const FORWARDED_REQUEST_HEADERS: ReadonlyArray<string> = [
  "accept",
  "accept-language",
  "cache-control",
  "content-language",
  "content-type",
  "if-match",
  "if-modified-since",
  "if-none-match",
  "if-range",
  "if-unmodified-since",
  "idempotency-key",
  "prefer",
  "range",
  "traceparent",
  "tracestate",
  "x-correlation-id",
  "x-request-id"
]

/**
 * Request headers never forwarded, whatever `forwardHeaders` says: the
 * caller's credentials, the connection's own headers (hop-by-hop), framing
 * (recomputed for the upstream).
 */
export const NEVER_FORWARDED: ReadonlySet<string> = new Set([
  "authorization",
  "connection",
  "content-length",
  "cookie",
  "expect",
  "host",
  "keep-alive",
  "proxy-authorization",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade"
])

/** Response headers passed back by default (their values as the upstream sent them). */
export const PASSED_RESPONSE_HEADERS: ReadonlyArray<string> = [
  "accept-ranges",
  "age",
  "cache-control",
  "content-disposition",
  "content-language",
  "content-range",
  "content-type",
  "etag",
  "expires",
  "last-modified",
  "pragma",
  "retry-after",
  "vary",
  "x-correlation-id",
  "x-request-id"
]

/** Response headers carrying URLs: rewritten to the mount point when they map there, else dropped. */
export const REWRITTEN_RESPONSE_HEADERS: ReadonlyArray<string> = ["content-location", "link", "location"]

/**
 * Response headers never passed back, whatever `responseHeaders` says: state
 * the upstream would set on our origin (`Set-Cookie`, `Clear-Site-Data`,
 * `Strict-Transport-Security`, `Alt-Svc`), policies that are ours to decide
 * (`Access-Control-*`), navigation it would drive (`Refresh`), its challenges
 * to our credentials, hop-by-hop and framing headers.
 */
const NEVER_PASSED: ReadonlySet<string> = new Set([
  "alt-svc",
  "authentication-info",
  "clear-site-data",
  "connection",
  "content-encoding",
  "content-length",
  "keep-alive",
  "refresh",
  "set-cookie",
  "set-cookie2",
  "strict-transport-security",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "www-authenticate",
  ...REWRITTEN_RESPONSE_HEADERS
])
const NEVER_PASSED_PREFIXES = ["access-control-", "proxy-"]

/** Whether a response header name may never be added to the pass list. */
export const isNeverPassed = (name: string): boolean =>
  NEVER_PASSED.has(name) || NEVER_PASSED_PREFIXES.some((prefix) => name.startsWith(prefix))

/** RFC 9110 section 5.1: a field name is a token. */
export const isFieldName = (name: string): boolean => /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(name)

/** The names a `Connection` header lists (lower case): hop-by-hop for this message. */
export const connectionListed = (headers: Headers): ReadonlySet<string> => {
  const value = headers.get("connection")
  if (value === null) return EMPTY
  return new Set(
    value
      .split(",")
      .map((name) => name.trim().toLowerCase())
      .filter((name) => name.length > 0)
  )
}

const EMPTY: ReadonlySet<string> = new Set()

/**
 * The link-values of a `Link` header (RFC 8288 section 3): split on the commas
 * that are outside `<...>` and quoted strings.
 */
export const splitLinks = (header: string): Array<string> => {
  const parts: Array<string> = []
  let current = ""
  let inUri = false
  let inQuotes = false
  for (let i = 0; i < header.length; i++) {
    const c = header[i]!
    if (inQuotes) {
      current += c
      if (c === "\\" && i + 1 < header.length) current += header[++i]
      else if (c === '"') inQuotes = false
    } else if (inUri) {
      current += c
      if (c === ">") inUri = false
    } else if (c === "<") {
      inUri = true
      current += c
    } else if (c === '"') {
      inQuotes = true
      current += c
    } else if (c === ",") {
      parts.push(current)
      current = ""
    } else {
      current += c
    }
  }
  parts.push(current)
  return parts.map((part) => part.trim()).filter((part) => part.length > 0)
}

/**
 * A `Link` header with each target mapped by `map`; a link whose target does
 * not map, or that names a second URI (`anchor`), is dropped. `undefined`
 * when no link is left.
 */
export const rewriteLinks = (
  header: string,
  map: (uri: string) => string | undefined
): string | undefined => {
  const kept: Array<string> = []
  for (const link of splitLinks(header)) {
    const match = /^<([^>]*)>(.*)$/s.exec(link)
    if (match === null) continue
    const params = match[2]!.trim()
    if (params !== "" && !params.startsWith(";")) continue
    if (/(?:^|;)\s*anchor\s*=/i.test(params)) continue
    const target = map(match[1]!.trim())
    if (target !== undefined) kept.push(`<${target}>${params === "" ? "" : `; ${params.slice(1).trim()}`}`)
  }
  return kept.length === 0 ? undefined : kept.join(", ")
}
