/**
 * The proxy attack corpus, written once: hostile paths and header sets that
 * every proxy (core's handler, Express, Next.js) must refuse or neutralise,
 * without any request reaching an origin other than the upstream; and what a
 * hostile upstream may answer (redirects, bodies echoing our token, headers
 * naming its host or setting state on our origin), which must not reach the
 * browser as it was sent. `corpus.ts` runs the upstream half against any
 * proxy; each adapter's tests run the whole of it.
 */
import type { UpstreamReply } from "./hostileUpstream.ts"

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
  { name: "relative path", path: "v1/consumers", status: BAD },
  // Look-alike dots: an upstream that normalises Unicode (NFKC) or trims blanks reads them as `..`.
  { name: "full-width dots (U+FF0E)", path: "/v1/%EF%BC%8E%EF%BC%8E/admin", status: BAD },
  { name: "raw full-width dots", path: "/v1/\uFF0E\uFF0E/admin", status: BAD },
  { name: "one dot leaders (U+2024)", path: "/v1/%E2%80%A4%E2%80%A4/admin", status: BAD },
  { name: "two dot leader (U+2025)", path: "/v1/%E2%80%A5/admin", status: BAD },
  { name: "ellipsis (U+2026)", path: "/v1/%E2%80%A6/admin", status: BAD },
  { name: "small full stops (U+FE52)", path: "/v1/%EF%B9%92%EF%B9%92/admin", status: BAD },
  { name: "ideographic full stops (U+3002)", path: "/v1/%E3%80%82%E3%80%82/admin", status: BAD },
  { name: "halfwidth ideographic full stops (U+FF61)", path: "/v1/%EF%BD%A1%EF%BD%A1/admin", status: BAD },
  { name: "half full-width dot-dot", path: "/v1/.%EF%BC%8E/admin", status: BAD },
  { name: "double-encoded full-width dots", path: "/v1/%25EF%25BC%258E%25EF%25BC%258E/admin", status: BAD },
  { name: "dot-dot padded with a space", path: "/v1/..%20/admin", status: BAD },
  { name: "dot-dot led by a space", path: "/v1/%20../admin", status: BAD },
  { name: "dots split by a space", path: "/v1/.%20./admin", status: BAD },
  { name: "dot-dot padded with a tab", path: "/v1/..%09/admin", status: BAD },
  { name: "dot-dot padded with a no-break space", path: "/v1/..%C2%A0/admin", status: BAD },
  { name: "dot-dot padded with a zero-width space", path: "/v1/..%E2%80%8B/admin", status: BAD },
  { name: "dot-dot led by a byte order mark", path: "/v1/%EF%BB%BF../admin", status: BAD },
  { name: "double-encoded padded dot-dot", path: "/v1/..%2520/admin", status: BAD },
  { name: "blank segment", path: "/v1/%20/admin", status: BAD },
  { name: "full-width solidus (U+FF0F)", path: "/v1/..%EF%BC%8Fadmin", status: BAD },
  { name: "full-width reverse solidus (U+FF3C)", path: "/v1/..%EF%BC%BCadmin", status: BAD }
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
  },
  {
    name: "X-Request-Id named in Connection",
    headers: { connection: "x-request-id", "x-request-id": "r1" },
    mustNotReach: ["x-request-id"]
  },
  {
    name: "allowed headers named in Connection among others",
    headers: {
      connection: "keep-alive, Prefer,idempotency-key",
      prefer: "return=minimal",
      "idempotency-key": "k-1"
    },
    mustNotReach: ["prefer", "idempotency-key"]
  }
]

/**
 * The allow-list the upstream half of the corpus is run with (the example
 * Next app's): `/v1/admin`, `/internal`, `/v1/consumers/1/x/y` are outside it.
 */
export const hostileAllow: ReadonlyArray<string> = [
  "/v1/consumers/*",
  "/v1/consumers/*/accounts",
  "/v1/claims",
  "/v1/claims/*",
  "/v1/documents"
]

/** What the upstream's base path is, in every runner: the proxy's upstream is `${url}/api`. */
export const UPSTREAM_BASE = "/api"

/**
 * A redirect the upstream answers `GET /v1/consumers/1` with. `{upstream}`
 * stands for the upstream's origin, `{upstreamHost}` its host, `{trap}` for
 * another origin, `{trapHost}` its host. `rewritten`: where the browser is
 * sent, below the mount; none: refused with 502.
 */
export interface RedirectAttack {
  readonly name: string
  readonly status?: number
  readonly location: string
  readonly rewritten?: string
}

export const redirectAttacks: ReadonlyArray<RedirectAttack> = [
  { name: "to a path under the base outside the allow-list", location: "/api/internal/admin" },
  { name: "outside the upstream base", location: "/internal/admin" },
  { name: "to a sibling the allow-list does not hold", location: "/api/v1/admin/users" },
  { name: "dot segments climbing out of an allowed path", location: "/api/v1/consumers/1/../../admin" },
  { name: "relative dot segments", location: "../../admin/users" },
  { name: "encoded dot segments", location: "/api/v1/consumers/%2e%2e/%2e%2e/admin" },
  { name: "a double-encoded dot segment", location: "/api/v1/consumers/%252e%252e" },
  { name: "full-width dots", location: "/api/v1/consumers/%EF%BC%8E%EF%BC%8E" },
  { name: "a dot segment padded with a space", location: "/api/v1/consumers/..%20" },
  { name: "backslashes", location: "/api\\v1\\admin" },
  {
    name: "the upstream's own absolute URL outside the allow-list",
    location: "{upstream}/api/v1/admin/users"
  },
  { name: "another origin", location: "{trap}/api/v1/consumers/2" },
  { name: "a protocol-relative URL to another host", location: "//{trapHost}/api/v1/consumers/2" },
  { name: "userinfo on the upstream's origin", location: "http://user:pw@{upstreamHost}/api/v1/consumers/2" },
  { name: "another scheme", location: "javascript:alert(1)" },
  { name: "300 Multiple Choices", status: 300, location: "/api/v1/consumers/2" },
  {
    name: "an allowed path (307)",
    status: 307,
    location: "/api/v1/consumers/2",
    rewritten: "/v1/consumers/2"
  },
  {
    name: "the upstream's absolute URL of an allowed path, with a query",
    location: "{upstream}/api/v1/consumers/3?page=2",
    rewritten: "/v1/consumers/3?page=2"
  },
  { name: "a relative reference (303)", status: 303, location: "4", rewritten: "/v1/consumers/4" },
  {
    name: "a fragment (301)",
    status: 301,
    location: "/api/v1/consumers/5#top",
    rewritten: "/v1/consumers/5"
  },
  {
    name: "a deeper allowed path (308)",
    status: 308,
    location: "/api/v1/consumers/6/accounts",
    rewritten: "/v1/consumers/6/accounts"
  }
]

/**
 * A redirect chain the browser follows through the proxy, hop by hop: each
 * upstream path (query left out) redirects to the next; every rewritten hop
 * passes the proxy's checks again, and the last one, which climbs out of the
 * allow-list, is refused. The upstream never sees the admin path.
 */
export const redirectChain = {
  start: "/v1/consumers/1",
  hops: {
    "/api/v1/consumers/1": "/api/v1/consumers/2",
    "/api/v1/consumers/2": "{upstream}/api/v1/consumers/3?step=3",
    "/api/v1/consumers/3": "/api/v1/consumers/3/../../admin/users",
    "/api/v1/admin/users": "/api/v1/consumers/1"
  } as Readonly<Record<string, string>>,
  /** what the browser gets at each step: a Location below the mount, or a refusal */
  steps: ["/v1/consumers/2", "/v1/consumers/3?step=3", 502] as ReadonlyArray<string | number>,
  upstreamSaw: ["/api/v1/consumers/1", "/api/v1/consumers/2", "/api/v1/consumers/3?step=3"]
} as const

/**
 * An upstream answer that echoes the bearer token it was sent. `status`: what
 * the caller gets; `passed`: whether the upstream's body reaches it (with the
 * token cut out), or the proxy's own problem replaces it.
 */
export interface EchoAttack {
  readonly name: string
  readonly reply: (bearer: string) => UpstreamReply
  readonly status: number
  readonly passed: boolean
  /** `Retry-After` the caller must get */
  readonly retryAfter?: string
}

const json = (status: number, body: unknown, headers?: Record<string, string>): UpstreamReply => ({
  status,
  headers: { "content-type": "application/json", ...headers },
  body: JSON.stringify(body)
})

export const echoAttacks: ReadonlyArray<EchoAttack> = [
  {
    name: "400 problem quoting the bearer",
    reply: (bearer) => ({
      status: 400,
      headers: { "content-type": "application/problem+json" },
      body: JSON.stringify({ title: "Bad Request", status: 400, detail: `token ${bearer} lacks a scope` })
    }),
    status: 400,
    passed: true
  },
  {
    name: "403 quoting the Authorization header",
    reply: (bearer) => json(403, { error: "forbidden", seen: `Authorization: Bearer ${bearer}` }),
    status: 502,
    passed: false
  },
  {
    name: "407 quoting the bearer",
    reply: (bearer) => json(407, { token: bearer }, { "proxy-authenticate": "Basic" }),
    status: 502,
    passed: false
  },
  {
    name: "401 every time (the replay too), quoting the bearer",
    reply: (bearer) => json(401, { error: "invalid_token", token: bearer }),
    status: 502,
    passed: false
  },
  {
    name: "500 quoting the request",
    reply: (bearer) => ({
      status: 500,
      headers: { "content-type": "text/plain" },
      body: `NullPointerException at Auth.check(Bearer ${bearer}) on db-7.internal:5432`
    }),
    status: 502,
    passed: false
  },
  {
    name: "502 gateway page quoting the bearer",
    reply: (bearer) => ({
      status: 502,
      headers: { "content-type": "text/html" },
      body: `<h1>Bad Gateway</h1><pre>Bearer ${bearer}</pre>`
    }),
    status: 502,
    passed: false
  },
  {
    name: "503 with Retry-After, quoting the bearer",
    reply: (bearer) => json(503, { token: bearer }, { "retry-after": "1" }),
    status: 502,
    passed: false
  },
  {
    name: "504 quoting the bearer",
    reply: (bearer) => json(504, { token: bearer }),
    status: 504,
    passed: false
  },
  {
    name: "408 quoting the bearer",
    reply: (bearer) => json(408, { token: bearer }),
    status: 504,
    passed: false
  },
  {
    name: "429 with Retry-After, quoting the bearer",
    reply: (bearer) => json(429, { token: bearer }, { "retry-after": "1" }),
    status: 503,
    passed: false,
    retryAfter: "1"
  },
  {
    name: "200 quoting the bearer across chunk boundaries",
    reply: (bearer) => ({
      status: 200,
      headers: { "content-type": "application/json" },
      body: [
        '{"seen":"Bea',
        `rer ${bearer.slice(0, 7)}`,
        bearer.slice(7, 12),
        `${bearer.slice(12)}","ok":true}`
      ],
      pauseMs: 15
    }),
    status: 200,
    passed: true
  },
  {
    name: "404 quoting the bearer percent-encoded",
    reply: (bearer) =>
      json(404, { detail: `no resource for access_token=${encodeURIComponent(`Bearer ${bearer}`)}` }),
    status: 404,
    passed: true
  },
  {
    name: "422 quoting the bearer three times in 300 KiB",
    reply: (bearer) => ({
      status: 422,
      headers: { "content-type": "text/plain" },
      body: [
        `${bearer}\n`,
        "x".repeat(150 * 1024),
        `\n${bearer}\n`,
        "y".repeat(150 * 1024),
        `Bearer+${bearer}`
      ],
      pauseMs: 1
    }),
    status: 422,
    passed: true
  }
]

/**
 * A set of response headers the upstream answers `GET /v1/consumers/1` with.
 * `dropped`: names whose upstream value must not reach the caller (the
 * framework may add its own); `passed`: names and the value the caller gets
 * (`{mount}` stands for the mount point). `{upstream}`, `{trap}` and
 * `{bearer}` are filled in before the upstream sends them.
 */
export interface ResponseHeaderAttack {
  readonly name: string
  readonly status?: number
  readonly headers: Readonly<Record<string, string | ReadonlyArray<string>>>
  readonly dropped: ReadonlyArray<string>
  readonly passed?: Readonly<Record<string, string>>
}

export const responseHeaderAttacks: ReadonlyArray<ResponseHeaderAttack> = [
  {
    name: "state on our origin: Set-Cookie, Clear-Site-Data",
    headers: { "set-cookie": ["session=upstream; Path=/", "b=2"], "clear-site-data": '"cookies", "storage"' },
    dropped: ["set-cookie", "clear-site-data"]
  },
  {
    name: "CORS policy",
    headers: {
      "access-control-allow-origin": "*",
      "access-control-allow-credentials": "true",
      "access-control-expose-headers": "x-secret"
    },
    dropped: [
      "access-control-allow-origin",
      "access-control-allow-credentials",
      "access-control-expose-headers"
    ]
  },
  {
    name: "Refresh to the upstream",
    headers: { refresh: "0; url={upstream}/api/v1/admin" },
    dropped: ["refresh"]
  },
  {
    name: "Location of a created resource, as the upstream's absolute URL",
    status: 201,
    headers: { location: "{upstream}/api/v1/consumers/9" },
    dropped: [],
    passed: { location: "{mount}/v1/consumers/9" }
  },
  {
    name: "Location of a created resource outside the allow-list",
    status: 201,
    headers: { location: "{upstream}/api/internal/9" },
    dropped: ["location"]
  },
  {
    name: "Content-Location, absolute",
    headers: { "content-location": "{upstream}/api/v1/consumers/1" },
    dropped: [],
    passed: { "content-location": "{mount}/v1/consumers/1" }
  },
  {
    name: "Link with absolute upstream URLs, another origin, a path outside the allow-list, an anchor",
    headers: {
      link:
        '<{upstream}/api/v1/consumers/1/accounts?page=2>; rel="next", <{upstream}/api/internal/x>; rel="admin", ' +
        '<{trap}/x>; rel="other", </api/v1/consumers/1>; rel="self"; anchor="{upstream}/x", <2>; rel="sibling"'
    },
    dropped: [],
    passed: {
      link: '<{mount}/v1/consumers/1/accounts?page=2>; rel="next", <{mount}/v1/consumers/2>; rel="sibling"'
    }
  },
  {
    name: "headers the upstream names in Connection",
    headers: { connection: "x-request-id, etag", "x-request-id": "r-upstream", etag: '"v-upstream"' },
    dropped: ["x-request-id", "etag"]
  },
  {
    name: "challenges, transport policy, hop-by-hop and server details",
    headers: {
      "www-authenticate": 'Bearer error="invalid_token"',
      "proxy-authenticate": "Basic",
      "strict-transport-security": "max-age=1",
      "alt-svc": 'h3=":443"',
      "keep-alive": "timeout=1",
      "x-powered-by": "upstream-stack",
      server: "upstream-server/1.0",
      "x-internal-host": "db-7.internal"
    },
    dropped: [
      "www-authenticate",
      "proxy-authenticate",
      "strict-transport-security",
      "alt-svc",
      "x-powered-by",
      "server",
      "x-internal-host"
    ]
  },
  {
    name: "allowed headers whose values hold our token",
    headers: { "x-request-id": "Bearer {bearer}", etag: '"{bearer}"', "content-language": "en" },
    dropped: ["x-request-id", "etag"],
    passed: { "content-language": "en" }
  },
  {
    name: "the allowed headers",
    headers: {
      etag: '"v1"',
      "content-language": "de",
      "content-disposition": 'inline; filename="a.json"',
      "x-request-id": "r-1",
      "last-modified": "Wed, 21 Oct 2026 07:28:00 GMT"
    },
    dropped: [],
    passed: {
      etag: '"v1"',
      "content-language": "de",
      "content-disposition": 'inline; filename="a.json"',
      "x-request-id": "r-1",
      "last-modified": "Wed, 21 Oct 2026 07:28:00 GMT"
    }
  }
]

/**
 * Uploads to an upstream that never reads them: every upstream connection must close soon after
 * the abort. A graceful close would leave them open for as long as the upstream does not read
 * (for ever here), so any bound tells the reset apart; an idle machine closes them in a few
 * milliseconds, and 15 s leaves room for a loaded one (a `next start` process on two busy cores
 * once took 1.2 s; with a benchmark running beside CI, one of ten was still open at 5 s).
 */
export const abandonedUploads = {
  count: 10,
  bytes: 4 * 1024 * 1024,
  path: "/v1/documents",
  withinMs: 15_000
} as const

/** Anonymous callers hammering a path that always answers 401, then one legitimate call. */
export const unauthorizedStorm = {
  path: "/v1/consumers/401",
  sequential: 100,
  concurrent: 100,
  legitimate: "/v1/consumers/1",
  /** token requests the storm may cost at most (the WEX budget is 100 a minute) */
  maxTokenRequests: 10
} as const
