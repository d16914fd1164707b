/**
 * The public shapes of the sandbox: its options, the clients and users it
 * knows, the faults it can inject, the events it reports and its stats.
 *
 * @example
 * ```ts
 * import type { SandboxOptions } from "@authfetch/sandbox"
 *
 * const options: SandboxOptions = {
 *   profile: "wex",
 *   tokenTtl: 5,
 *   faults: { token: { errorRate: 0.2 }, api: { latencyMs: 300 } }
 * }
 * ```
 *
 * @since 0.1.0
 */

/**
 * The grants a client may use. WEX documents `client_credentials` only;
 * WealthCare documents all four.
 *
 * @example
 * ```ts
 * const grants: Array<SandboxGrant> = ["authorization_code", "refresh_token"]
 * ```
 *
 * @since 0.1.0
 */
export type SandboxGrant = "client_credentials" | "authorization_code" | "refresh_token" | "password"

/**
 * A registered client. Confidential: it authenticates with its secret, in the
 * form body (`client_secret_post`) or with HTTP Basic (RFC 6749 section 2.3.1).
 *
 * @example
 * ```ts
 * const client: SandboxClient = {
 *   clientId: "partner-app",
 *   clientSecret: "partner-secret",
 *   scopes: ["bensoft_api", "offline_access"],
 *   grants: ["authorization_code", "refresh_token"],
 *   redirectUris: ["http://127.0.0.1/callback"]
 * }
 * ```
 *
 * @since 0.1.0
 */
export interface SandboxClient {
  clientId: string
  clientSecret: string
  /**
   * WealthCare: the scopes it may ask for; default `bensoft_api mbi_api offline_access openid profile email`
   * (`WEALTHCARE_SCOPES` and `WEALTHCARE_OIDC_SCOPES`). Ignored by WEX.
   */
  scopes?: string[]
  /** default: every grant of the profile */
  grants?: Array<SandboxGrant>
  /**
   * WealthCare `authorization_code`: registered redirect URIs, compared as exact strings
   * (RFC 9700 section 2.1), except that the port of a loopback `http:` URI may be anything
   * (RFC 8252 section 7.3). Default: `http://127.0.0.1/callback`, `http://localhost/callback`.
   */
  redirectUris?: string[]
}

/**
 * A test user (a resource owner) of WealthCare: who signs in on the sign-in
 * page of `/connect/authorize`, and who the `password` grant authenticates.
 * Its subject (`sub`) is its username.
 *
 * @example
 * ```ts
 * const user: SandboxUser = {
 *   username: "alice",
 *   password: "correct horse",
 *   name: "Alice Example",
 *   email: "alice@example.com",
 *   claims: { employee_id: "E-1001" }
 * }
 * ```
 *
 * @since 0.1.0
 */
export interface SandboxUser {
  /** unique, non-empty; also the subject (`sub`) of its tokens */
  username: string
  /** non-empty */
  password: string
  /** the `name` claim (scope `profile`) */
  name?: string
  /** the `email` claim, with `email_verified: true` (scope `email`) */
  email?: string
  /**
   * extra claims of its ID tokens and userinfo answers (with scope `openid`), such as
   * `{ employee_id: "E-1001" }`; JSON values; a protocol claim (`iss`, `sub`, `aud`, `exp`, ...) or
   * one the fields above set is refused
   */
  claims?: Record<string, unknown>
}

/**
 * Faults for one endpoint (the token endpoint, or the API). Applied in this
 * order: latency, then a dropped connection, then a 429, then an error status.
 *
 * @example
 * ```ts
 * const flaky: EndpointFaults = { latencyMs: 200, errorRate: 0.1, errorStatus: 502 }
 * const throttled: EndpointFaults = { rateLimit429: { count: 3, retryAfterSeconds: 2 } }
 * ```
 *
 * @since 0.1.0
 */
export interface EndpointFaults {
  /** added delay before answering, in milliseconds */
  latencyMs?: number
  /** 0..1 chance of answering `errorStatus` */
  errorRate?: number
  /** default 503 */
  errorStatus?: 500 | 502 | 503
  /** the next `count` requests (or a `rate` share of them) get 429 with `Retry-After` (default 1 s) */
  rateLimit429?: { count?: number; rate?: number; retryAfterSeconds?: number }
  /** 0..1 chance of destroying the socket without answering */
  dropRate?: number
  /**
   * API only: paths below `/api` (a prefix, such as `"/v1/admin"`) answered `401` whatever
   * the token, as a route the client may not call; a valid token stays valid elsewhere
   */
  unauthorizedPaths?: Array<string>
}

/**
 * Faults of the token endpoint: those of any endpoint, plus `invalidGrant`.
 *
 * @example
 * ```ts
 * // the next refresh is refused as if the refresh token had been revoked behind the client's back
 * const token: TokenEndpointFaults = { invalidGrant: { count: 1 } }
 * ```
 *
 * @since 0.2.0
 */
export interface TokenEndpointFaults extends EndpointFaults {
  /**
   * The next `count` token requests (or a `rate` share of them) of the given `grants` (default
   * `["refresh_token"]`) are answered `400 {"error":"invalid_grant"}` after client authentication:
   * the grant is not served, and a refresh token presented is not consumed.
   */
  invalidGrant?: { count?: number; rate?: number; grants?: Array<SandboxGrant> }
}

/**
 * Faults of WealthCare's authorization endpoint (`/connect/authorize`).
 *
 * @example
 * ```ts
 * // the browser waits two seconds for the redirect back to the application
 * const authorize: AuthorizeFaults = { latencyMs: 2000 }
 * ```
 *
 * @since 0.2.0
 */
export interface AuthorizeFaults {
  /**
   * added delay before answering a sign-in (`POST /connect/authorize`), and before an auto-approved
   * `GET` redirects back, in milliseconds
   */
  latencyMs?: number
}

/**
 * Every fault in effect. `clockOffsetSeconds` moves the sandbox's own clock:
 * its `Date` header, the absolute times it reports, and when its tokens expire.
 * `expires_in` stays relative, which is the point: clients must not depend on
 * the server's clock.
 *
 * @example
 * ```ts
 * sandbox.setFaults({ api: { errorRate: 1 }, clockOffsetSeconds: -300 })
 * ```
 *
 * @since 0.1.0
 */
export interface Faults {
  token?: TokenEndpointFaults
  api?: EndpointFaults
  /** wealthcare: the sign-in */
  authorize?: AuthorizeFaults
  clockOffsetSeconds?: number
}

/**
 * One token, authorization, revocation, userinfo, end-session, metadata, API
 * or admin request, as the sandbox saw it. Never carries a credential: tokens
 * appear as fingerprints (the first 8 hex characters of their SHA-256), paths
 * without their query.
 *
 * Reads of the admin API and the page are not events: the page polls twice a
 * second, and its own polling would bury the requests it is there to show.
 *
 * @example
 * ```ts
 * const sandbox = await startSandbox({
 *   profile: "wex",
 *   onEvent: (e) => console.log(e.method, e.path, e.status, e.clientId, e.tokenFingerprint)
 * })
 * ```
 *
 * @since 0.1.0
 */
export interface SandboxEvent {
  /** increasing number, for `GET /admin/events?since=` */
  readonly seq: number
  /** ISO 8601, by the sandbox's clock (offset included) */
  readonly time: string
  /**
   * `metadata`: discovery and JWKS reads (wealthcare); `endsession`: `/connect/endsession`;
   * `userinfo`: `/connect/userinfo`; `revocation`: `/connect/revocation` (RFC 7009)
   */
  readonly kind:
    | "token"
    | "authorize"
    | "revocation"
    | "userinfo"
    | "endsession"
    | "metadata"
    | "api"
    | "admin"
  readonly method: string
  /** the path, without the query string */
  readonly path: string
  /** `0` when the connection was dropped without an answer */
  readonly status: number
  readonly durationMs: number
  readonly clientId?: string
  /** token requests: the `grant_type` sent */
  readonly grantType?: string
  /**
   * token requests: the token issued; API and userinfo requests: the token presented;
   * revocation: the token revoked, when the sandbox knew it
   */
  readonly tokenFingerprint?: string
  /** revocation: what the token presented was, when the sandbox knew it */
  readonly tokenKind?: "access_token" | "refresh_token"
  /**
   * whose token it is: the username for user grants (authorization code, password, their
   * refreshes), the client id for `client_credentials`. Token requests: the subject the token was
   * issued to; API, userinfo and revocation requests: the subject of the token presented, when known;
   * a sign-in: the user who signed in
   */
  readonly subject?: string
  /**
   * an OAuth error code, or why a token was refused (`expired`, `revoked`, `unknown`, `missing`);
   * a sign-in: `invalid_credentials`, `too_many_attempts`, `access_denied` (Cancel); a revocation
   * that revoked nothing: `unknown_token`, `client_mismatch` (another client's token)
   */
  readonly error?: string
  /** the faults injected into this request */
  readonly faults?: ReadonlyArray<"latency" | "drop" | "rate_limit" | "error" | "invalid_grant">
}

/**
 * Counters since the start or the last `resetStats()`, and the number of
 * tokens currently valid.
 *
 * `apiRequests.byRoute` (keys like `"POST /v1/claims"`) and `claims` go beyond
 * a plain count so a test can tell a retried, duplicated submission from a
 * single one.
 *
 * @example
 * ```ts
 * const { tokenRequests, claims } = sandbox.stats()
 * expect(tokenRequests.byStatus["200"]).toBe(1)
 * expect(claims.duplicates).toBe(0)
 * ```
 *
 * @since 0.1.0
 */
export interface SandboxStats {
  tokenRequests: {
    total: number
    byClient: Record<string, number>
    byGrant: Record<string, number>
    byStatus: Record<string, number>
  }
  apiRequests: {
    total: number
    byStatus: Record<string, number>
    /** by method and route pattern, e.g. `"GET /v1/consumers/:id"`; `"(unmatched)"` for unknown paths */
    byRoute: Record<string, number>
    /** by the subject of the token presented (see `SandboxEvent.subject`), for tokens the sandbox knows */
    bySubject: Record<string, number>
  }
  /**
   * `POST /connect/revocation` (wealthcare): every request; `revoked`, those that found a token of
   * the requesting client and revoked it (or found it revoked already); by requesting client, and
   * by the subject of the tokens revoked
   */
  revocations: {
    total: number
    revoked: number
    byClient: Record<string, number>
    bySubject: Record<string, number>
  }
  /** `POST /v1/claims`: claims created, and how many had the same body as an earlier one */
  claims: { created: number; duplicates: number }
  tokensIssued: number
  tokensRevoked: number
  activeTokens: number
}

/**
 * How to start a sandbox.
 *
 * @example
 * ```ts
 * const sandbox = await startSandbox({ profile: "wealthcare", tokenTtl: 30, tokenRateLimit: false })
 * ```
 *
 * @since 0.1.0
 */
export interface SandboxOptions {
  profile: "wex" | "wealthcare"
  /** 0 / undefined = a random free port */
  port?: number
  /** default "127.0.0.1" */
  host?: string
  /** access token lifetime in seconds; default 600 (wex) / 3600 (wealthcare) */
  tokenTtl?: number
  /** refresh token lifetime in seconds (wealthcare); default 86400 */
  refreshTokenTtl?: number
  /** default: one client, "sandbox-client" / "sandbox-secret", every grant of the profile */
  clients?: SandboxClient[]
  /**
   * wealthcare: the test users who can sign in (and use the password grant); default one user,
   * "sandbox-user" / "sandbox-password" (`DEFAULT_USER`, named "Sandbox User", sandbox-user@example.com)
   */
  users?: SandboxUser[]
  /**
   * wealthcare: `GET /connect/authorize` approves at once, without the sign-in page, for the user
   * `login_hint` names if there is one, else the first user: for tests without a browser. Default
   * false. Ignored by wex.
   */
  autoApprove?: boolean
  faults?: Faults
  /** token requests per client and window; default 100 per 60 s (WEX's documented limit), both profiles */
  tokenRateLimit?: { limit: number; windowSeconds: number } | false
  /**
   * WEX: answer an expired or revoked token with the problem+json body exactly as WEX
   * publishes it, trailing comma included (so invalid JSON). Default true: clients must cope.
   */
  wexMalformedProblem?: boolean
  /** randomness for fault rates (tests); default `Math.random` */
  random?: () => number
  /** one event per token, authorization, revocation, userinfo, end-session, metadata, API or admin-write request */
  onEvent?: (event: SandboxEvent) => void
}

/**
 * A running sandbox.
 *
 * @example
 * ```ts
 * await using sandbox = await startSandbox({ profile: "wex" })
 * const res = await fetch(sandbox.tokenUrl, {
 *   method: "POST",
 *   body: new URLSearchParams({ grant_type: "client_credentials", client_id: "sandbox-client", client_secret: "sandbox-secret" })
 * })
 * ```
 *
 * @since 0.1.0
 */
export interface Sandbox {
  readonly profile: "wex" | "wealthcare"
  /** `http://127.0.0.1:PORT` */
  readonly url: string
  /** wex: `${url}/authorize`; wealthcare: `${url}/connect/token` */
  readonly tokenUrl: string
  /** wealthcare: `${url}/connect/authorize` */
  readonly authorizeUrl?: string
  /** wealthcare: the issuer (`iss` of its ID tokens and authorization responses): `url` itself */
  readonly issuer?: string
  /** wealthcare: `${url}/.well-known/openid-configuration` */
  readonly discoveryUrl?: string
  /** wealthcare: `${url}/.well-known/jwks.json` */
  readonly jwksUrl?: string
  /** wealthcare: `${url}/connect/userinfo` */
  readonly userinfoUrl?: string
  /** wealthcare: `${url}/connect/revocation` (RFC 7009) */
  readonly revocationUrl?: string
  /** wealthcare: `${url}/connect/endsession` (OpenID Connect RP-Initiated Logout) */
  readonly endSessionUrl?: string
  /** `${url}/api` (resources are under `/v1/...`) */
  readonly baseUrl: string
  /** `${url}/admin` */
  readonly adminUrl: string
  readonly clients: ReadonlyArray<SandboxClient>
  stats(): SandboxStats
  /** replaces every fault in effect */
  setFaults(faults: Faults): void
  /** early revocation of every token issued so far (access and refresh tokens, codes) */
  revokeAll(): void
  /**
   * revokes every access token, refresh token and authorization code issued to that user; returns
   * how many access tokens it revoked. Throws a `TypeError` for a username the sandbox does not know.
   */
  revokeUser(username: string): number
  /**
   * revokes the refresh tokens of that user (or of everyone); access tokens stay valid until they
   * expire. Returns how many refresh tokens it revoked. Throws a `TypeError` for an unknown username.
   */
  revokeRefreshTokens(username?: string): number
  resetStats(): void
  /** stops listening and closes every connection */
  close(): Promise<void>
  /** same as `close()`, for `await using` */
  [Symbol.asyncDispose](): Promise<void>
}
