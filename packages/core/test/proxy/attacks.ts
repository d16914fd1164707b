/**
 * The proxy attack corpus, written once: hostile paths and header sets that
 * every proxy (core's handler, Express, Next.js) must refuse or neutralise,
 * without any request reaching an origin other than the upstream.
 */

export interface PathAttack {
  readonly name: string
  /** the raw path below the mount point, sent as is (no client-side normalisation) */
  readonly path: string
  readonly method?: string
  /** acceptable statuses (all problem+json) */
  readonly status: ReadonlyArray<number>
}

export interface HeaderAttack {
  readonly name: string
  readonly headers: Readonly<Record<string, string>>
  /** request headers the upstream must not see (lower-case names) */
  readonly mustNotReach: ReadonlyArray<string>
}

const BAD = [400]

export const pathAttacks: ReadonlyArray<PathAttack> = [
  { name: "dot-dot", path: "/../admin", status: BAD },
  { name: "nested dot-dot", path: "/v1/../../admin", status: BAD },
  { name: "encoded dot-dot", path: "/%2e%2e/admin", status: BAD },
  { name: "upper-case encoded dot-dot", path: "/%2E%2E/admin", status: BAD },
  { name: "half-encoded dot-dot", path: "/.%2e/admin", status: BAD },
  { name: "other half-encoded dot-dot", path: "/%2e./admin", status: BAD },
  { name: "double-encoded dot-dot", path: "/%252e%252e/admin", status: BAD },
  { name: "triple-encoded dot-dot", path: "/%25252e%25252e/admin", status: BAD },
  { name: "dot-dot with a path parameter", path: "/v1/..;/admin", status: BAD },
  { name: "single dot", path: "/v1/./consumers", status: BAD },
  { name: "encoded single dot", path: "/v1/%2e/consumers", status: BAD },
  { name: "encoded slash", path: "/v1%2f..%2fadmin", status: BAD },
  { name: "encoded double slash to a host", path: "/v1/%2f%2fevil.example/x", status: BAD },
  { name: "dot-dot behind encoded slashes", path: "/v1/consumers/..%2f..%2fadmin", status: BAD },
  { name: "network-path reference", path: "//evil.example/x", status: BAD },
  { name: "triple slash", path: "///evil.example", status: BAD },
  { name: "empty segment", path: "/v1//consumers", status: BAD },
  { name: "backslash", path: "/\\evil.example/x", status: BAD },
  { name: "encoded backslash", path: "/%5cevil.example", status: BAD },
  { name: "encoded backslash dot-dot", path: "/%5c..%5cadmin", status: BAD },
  { name: "absolute URL", path: "/http://evil.example/x", status: BAD },
  { name: "absolute URL with encoded slashes", path: "/https:%2f%2fevil.example", status: BAD },
  { name: "NUL", path: "/v1/%00", status: BAD },
  { name: "raw NUL", path: "/v1/\u0000x", status: BAD },
  { name: "CRLF header injection", path: "/v1/%0d%0aSet-Cookie:%20x=1", status: BAD },
  { name: "raw CR", path: "/v1/\rx", status: BAD },
  { name: "encoded tab", path: "/v1/%09tab", status: BAD },
  { name: "DEL", path: "/v1/%7f", status: BAD },
  { name: "malformed percent-encoding", path: "/v1/%ZZ", status: BAD },
  { name: "overlong UTF-8 dots", path: "/v1/%c0%ae%c0%ae/admin", status: BAD },
  { name: "double-encoded dot-dot beside a literal %", path: "/v1/%252e%252e/%25/admin", status: BAD },
  {
    name: "double-encoded overlong dots beside a literal %",
    path: "/v1/%25c0%25ae%25c0%25ae/%25/admin",
    status: BAD
  },
  { name: "IIS %u encoding", path: "/v1/%u002e%u002e/admin", status: BAD },
  { name: "encoded question mark smuggling a query", path: "/v1/x%3f..%2f", status: BAD },
  { name: "path outside the allow-list", path: "/internal/admin", status: [404] },
  { name: "method not forwarded", path: "/v1/consumers/1", method: "PROPFIND", status: [405] },
  { name: "relative path", path: "v1/consumers", status: BAD }
]

export const headerAttacks: ReadonlyArray<HeaderAttack> = [
  {
    name: "the caller's Authorization",
    headers: { authorization: "Bearer attacker-token" },
    mustNotReach: ["cookie", "proxy-authorization"]
  },
  { name: "cookies", headers: { cookie: "session=abc; csrftoken=def" }, mustNotReach: ["cookie"] },
  {
    name: "hop-by-hop named in Connection",
    headers: { connection: "keep-alive, x-internal", "x-internal": "1", "keep-alive": "timeout=5" },
    mustNotReach: ["x-internal", "keep-alive"]
  },
  {
    name: "proxy credentials",
    headers: { "proxy-authorization": "Basic YTpi" },
    mustNotReach: ["proxy-authorization"]
  },
  {
    name: "forwarding headers",
    headers: { "x-forwarded-host": "evil.example", "x-forwarded-for": "1.2.3.4", forwarded: "for=1.2.3.4" },
    mustNotReach: ["x-forwarded-host", "x-forwarded-for", "forwarded"]
  },
  {
    name: "method override",
    headers: { "x-http-method-override": "DELETE" },
    mustNotReach: ["x-http-method-override"]
  }
]
