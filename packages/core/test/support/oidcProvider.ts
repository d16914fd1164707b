/**
 * panva's `oidc-provider` (a certified OpenID Connect / OAuth 2.0 server),
 * configured for the interoperability tests and started in-process on
 * 127.0.0.1 with a random port. Requests cross a real socket; nothing is mocked.
 *
 * Registered clients:
 * - `cc-post`: client_credentials, `client_secret_post`;
 * - `cc-basic`: client_credentials, `client_secret_basic`, a secret full of
 *   characters that RFC 6749 section 2.3.1 form-encoding must escape;
 * - `cc-refresh`: client_credentials and refresh_token, `client_secret_post`;
 * - `code-pkce`: authorization_code (PKCE S256 required) and refresh_token,
 *   `client_secret_post`, `offline_access` allowed.
 *
 * Refresh tokens rotate on every use (`rotateRefreshToken: true`); reusing a
 * rotated refresh token makes oidc-provider revoke the whole grant.
 */
import { generateKeyPairSync } from "node:crypto"
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { Provider } from "oidc-provider"

export const REDIRECT_URI = "https://rp.example.test/callback"

/**
 * Printable ASCII only: oidc-provider accepts a client_secret made of VSCHAR
 * (RFC 6749 appendix A, %x20-7E) and refuses to register anything else. Holds
 * `:`, `+`, `%`, a space and a `%41` that a double decode would turn into `A`.
 */
export const HOSTILE_SECRET = "s:e+c%r et-%41&=/?#~\"'\\"

export const CLIENTS = {
  ccPost: { clientId: "cc-post", clientSecret: "cc-post-secret-0123456789abcdef" },
  ccBasic: { clientId: "cc-basic", clientSecret: HOSTILE_SECRET },
  ccRefresh: { clientId: "cc-refresh", clientSecret: "cc-refresh-secret-0123456789abcdef" },
  code: { clientId: "code-pkce", clientSecret: "code-pkce-secret-0123456789abcdef" }
} as const

export interface OidcProviderOptions {
  /** lifetime of client_credentials access tokens, seconds; default 300 */
  readonly clientCredentialsTtl?: number | undefined
  /** lifetime of code-flow and refreshed access tokens, seconds; default 300 */
  readonly accessTokenTtl?: number | undefined
  /** lifetime of refresh tokens, seconds; default 1 day */
  readonly refreshTokenTtl?: number | undefined
}

/** One request to the token endpoint, as the provider saw it (no secrets). */
export interface TokenRequestRecord {
  readonly grantType: string | undefined
  readonly clientId: string | undefined
  /** `basic` when an Authorization header was sent */
  readonly authorization: "basic" | "none"
  readonly status: number
  /** the RFC 6749 section 5.2 `error` of the response, if any */
  readonly error: string | undefined
}

export interface Counters {
  /** token endpoint requests per grant_type since the last `reset` */
  readonly byGrantType: Readonly<Record<string, number>>
  readonly requests: ReadonlyArray<TokenRequestRecord>
  count(filter?: { readonly grantType?: string; readonly clientId?: string }): number
  reset(): void
}

export interface AuthorizeOptions {
  readonly clientId: string
  readonly redirectUri?: string | undefined
  readonly scope: string
  readonly codeChallenge: string
  readonly accountId?: string | undefined
}

export interface OidcProvider {
  readonly issuer: string
  readonly tokenUrl: string
  /** the `Provider` instance, for its models and events */
  readonly provider: Provider
  readonly counters: Counters
  /** errors the provider reported as `server_error` (a bug on either side) */
  readonly serverErrors: ReadonlyArray<unknown>
  /**
   * Runs the real authorization endpoint over HTTP like a browser would (dev
   * login form, then consent form) and returns the authorization code.
   */
  authorize(options: AuthorizeOptions): Promise<string>
  /**
   * Runs the authorization endpoint like a browser from a complete
   * authorization URL (one our code built), signing in as `accountId`
   * (default `alice`); returns the URL the provider redirected back to.
   */
  authorizeAt(
    url: string,
    options?: { readonly accountId?: string | undefined; readonly redirectUri?: string | undefined }
  ): Promise<URL>
  /** RFC 7662 introspection, authenticated as `client` (client_secret_post) */
  introspect(
    token: string,
    client: { readonly clientId: string; readonly clientSecret: string }
  ): Promise<Record<string, unknown>>
  /** RFC 7009 revocation, authenticated as `client` (client_secret_post) */
  revoke(
    token: string,
    client: { readonly clientId: string; readonly clientSecret: string },
    hint?: "access_token" | "refresh_token"
  ): Promise<number>
  close(): Promise<void>
}

const makeCounters = () => {
  const requests: Array<TokenRequestRecord> = []
  let byGrantType: Record<string, number> = {}
  const counters: Counters = {
    get byGrantType() {
      return byGrantType
    },
    requests,
    count: (filter) =>
      requests.filter(
        (r) =>
          (filter?.grantType === undefined || r.grantType === filter.grantType) &&
          (filter?.clientId === undefined || r.clientId === filter.clientId)
      ).length,
    reset: () => {
      requests.length = 0
      byGrantType = {}
    }
  }
  const record = (entry: TokenRequestRecord) => {
    requests.push(entry)
    const name = entry.grantType ?? "(none)"
    byGrantType = { ...byGrantType, [name]: (byGrantType[name] ?? 0) + 1 }
  }
  return { counters, record }
}

/** The few cookies the authorization flow sets; paths are ignored (names differ). */
class CookieJar {
  private readonly cookies = new Map<string, string>()

  store(response: Response): void {
    for (const line of response.headers.getSetCookie()) {
      const [pair = "", ...attributes] = line.split(";")
      const eq = pair.indexOf("=")
      if (eq <= 0) continue
      const name = pair.slice(0, eq).trim()
      const value = pair.slice(eq + 1).trim()
      const expired = attributes.some((a) => {
        const [key = "", date = ""] = a.trim().split("=")
        return key.toLowerCase() === "expires" && Date.parse(date) <= Date.now()
      })
      if (expired || value === "") this.cookies.delete(name)
      else this.cookies.set(name, value)
    }
  }

  header(): string {
    return [...this.cookies].map(([name, value]) => `${name}=${value}`).join("; ")
  }
}

const listen = (handler: (req: IncomingMessage, res: ServerResponse) => void) => {
  const server = createServer(handler)
  return new Promise<{ server: typeof server; port: number }>((resolve, reject) => {
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => resolve({ server, port: (server.address() as AddressInfo).port }))
  })
}

export const startOidcProvider = async (options: OidcProviderOptions = {}): Promise<OidcProvider> => {
  const clientCredentialsTtl = options.clientCredentialsTtl ?? 300
  const accessTokenTtl = options.accessTokenTtl ?? 300
  const refreshTokenTtl = options.refreshTokenTtl ?? 24 * 60 * 60

  let handler: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => {
    res.statusCode = 503
    res.end()
  }
  const { server, port } = await listen((req, res) => handler(req, res))
  const issuer = `http://127.0.0.1:${port}`

  // An RSA signing key of our own, so the provider does not fall back to its
  // (publicly known) development keys.
  const signingKey = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ format: "jwk" })

  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: CLIENTS.ccPost.clientId,
        client_secret: CLIENTS.ccPost.clientSecret,
        token_endpoint_auth_method: "client_secret_post",
        grant_types: ["client_credentials"],
        response_types: [],
        redirect_uris: [],
        scope: "api:read api:write"
      },
      {
        client_id: CLIENTS.ccBasic.clientId,
        client_secret: CLIENTS.ccBasic.clientSecret,
        token_endpoint_auth_method: "client_secret_basic",
        grant_types: ["client_credentials"],
        response_types: [],
        redirect_uris: [],
        scope: "api:read"
      },
      {
        client_id: CLIENTS.ccRefresh.clientId,
        client_secret: CLIENTS.ccRefresh.clientSecret,
        token_endpoint_auth_method: "client_secret_post",
        grant_types: ["client_credentials", "refresh_token"],
        response_types: [],
        redirect_uris: [],
        scope: "api:read"
      },
      {
        client_id: CLIENTS.code.clientId,
        client_secret: CLIENTS.code.clientSecret,
        token_endpoint_auth_method: "client_secret_post",
        grant_types: ["authorization_code", "refresh_token"],
        response_types: ["code"],
        redirect_uris: [REDIRECT_URI],
        scope: "openid offline_access api:read"
      }
    ],
    jwks: { keys: [{ ...signingKey, use: "sig", alg: "RS256", kid: "interop-rs256" }] },
    cookies: { keys: ["interop-cookie-key-0123456789abcdef"] },
    scopes: ["openid", "offline_access", "api:read", "api:write", "api:admin"],
    features: {
      clientCredentials: { enabled: true },
      introspection: { enabled: true, allowedPolicy: async () => true },
      revocation: { enabled: true, allowedPolicy: async () => true },
      devInteractions: { enabled: true }
    },
    pkce: { required: () => true },
    rotateRefreshToken: true,
    issueRefreshToken: async (
      _ctx: unknown,
      client: { grantTypeAllowed(type: string): boolean },
      code: {
        scopes: Set<string>
      }
    ) => client.grantTypeAllowed("refresh_token") && code.scopes.has("offline_access"),
    findAccount: async (_ctx: unknown, sub: string) => ({
      accountId: sub,
      claims: async () => ({ sub })
    }),
    ttl: {
      AccessToken: () => accessTokenTtl,
      AuthorizationCode: () => 60,
      ClientCredentials: () => clientCredentialsTtl,
      IdToken: () => 3600,
      RefreshToken: () => refreshTokenTtl,
      Interaction: () => 600,
      Session: () => 3600,
      Grant: () => 24 * 60 * 60
    },
    renderError: async (ctx: { type: string; body: unknown }, out: Record<string, unknown>) => {
      ctx.type = "json"
      ctx.body = out
    }
  })

  const serverErrors: Array<unknown> = []
  provider.on("server_error", (_ctx: unknown, error: unknown) => {
    serverErrors.push(error)
  })

  const { counters, record } = makeCounters()
  provider.use(async (ctx, next) => {
    await next()
    if (ctx.method !== "POST" || ctx.path !== "/token") return
    const params = ctx.oidc?.params as Record<string, unknown> | undefined
    const body = ctx.body as { error?: unknown } | undefined
    record({
      grantType: typeof params?.grant_type === "string" ? params.grant_type : undefined,
      clientId:
        ctx.oidc?.client?.clientId ?? (typeof params?.client_id === "string" ? params.client_id : undefined),
      authorization: ctx.headers.authorization === undefined ? "none" : "basic",
      status: ctx.status,
      error: body && typeof body.error === "string" ? body.error : undefined
    })
  })

  handler = provider.callback()

  const authorizeAt = async (
    url: string,
    atOptions?: { readonly accountId?: string | undefined; readonly redirectUri?: string | undefined }
  ): Promise<URL> => {
    const jar = new CookieJar()
    const redirectUri = atOptions?.redirectUri ?? REDIRECT_URI
    const send = async (target: string, form?: Record<string, string>) => {
      const response = await fetch(new URL(target, issuer), {
        method: form ? "POST" : "GET",
        redirect: "manual",
        headers: {
          cookie: jar.header(),
          ...(form ? { "content-type": "application/x-www-form-urlencoded" } : {})
        },
        ...(form ? { body: new URLSearchParams(form).toString() } : {})
      })
      jar.store(response)
      await response.arrayBuffer()
      const location = response.headers.get("location")
      if (response.status < 300 || response.status >= 400 || location === null) {
        throw new Error(`authorization flow: ${form ? "POST" : "GET"} ${target} answered ${response.status}`)
      }
      return new URL(location, issuer)
    }
    let next = await send(url)
    // at most: login interaction, resume, consent interaction, resume
    for (let step = 0; step < 6; step++) {
      if (next.href.startsWith(redirectUri)) return next
      const interaction = /^\/interaction\/([^/]+)$/.exec(next.pathname)
      if (interaction) {
        const page = await fetch(next, { headers: { cookie: jar.header() } })
        const html = await page.text()
        const prompt = /name="prompt" value="([a-z]+)"/.exec(html)?.[1]
        if (prompt === "login") {
          next = await send(next.href, { prompt, login: atOptions?.accountId ?? "alice", password: "any" })
        } else if (prompt === "consent") {
          next = await send(next.href, { prompt })
        } else {
          throw new Error(`authorization flow: unexpected interaction page (HTTP ${page.status})`)
        }
      } else {
        next = await send(next.href)
      }
    }
    throw new Error("authorization flow: too many redirects")
  }

  const authorize = async (authorizeOptions: AuthorizeOptions): Promise<string> => {
    const redirectUri = authorizeOptions.redirectUri ?? REDIRECT_URI
    const state = crypto.randomUUID()
    const start = new URL("/auth", issuer)
    for (const [name, value] of Object.entries({
      client_id: authorizeOptions.clientId,
      response_type: "code",
      redirect_uri: redirectUri,
      scope: authorizeOptions.scope,
      state,
      code_challenge: authorizeOptions.codeChallenge,
      code_challenge_method: "S256",
      // without prompt=consent, oidc-provider drops offline_access from the request
      prompt: "consent"
    })) {
      start.searchParams.set(name, value)
    }
    const back = await authorizeAt(start.href, { accountId: authorizeOptions.accountId, redirectUri })
    const error = back.searchParams.get("error")
    if (error)
      throw new Error(`authorization failed: ${error} ${back.searchParams.get("error_description") ?? ""}`)
    if (back.searchParams.get("state") !== state) throw new Error("authorization flow: state mismatch")
    const code = back.searchParams.get("code")
    if (!code) throw new Error("authorization flow: no code in the redirect")
    return code
  }

  const postForm = (path: string, form: Record<string, string>) =>
    fetch(new URL(path, issuer), {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", accept: "application/json" },
      body: new URLSearchParams(form).toString()
    })

  return {
    issuer,
    tokenUrl: `${issuer}/token`,
    provider,
    counters,
    serverErrors,
    authorize,
    authorizeAt,
    introspect: async (token, client) => {
      const response = await postForm("/token/introspection", {
        token,
        client_id: client.clientId,
        client_secret: client.clientSecret
      })
      return (await response.json()) as Record<string, unknown>
    },
    revoke: async (token, client, hint) => {
      const response = await postForm("/token/revocation", {
        token,
        client_id: client.clientId,
        client_secret: client.clientSecret,
        ...(hint ? { token_type_hint: hint } : {})
      })
      await response.arrayBuffer()
      return response.status
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections()
        server.close((error) => (error ? reject(error) : resolve()))
      })
  }
}
