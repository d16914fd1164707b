/**
 * The two servers the demo talks to, both in this process on 127.0.0.1:
 *
 * - an OAuth 2.0 authorization server: panva's oidc-provider (a certified
 *   implementation), issuing client-credentials access tokens that live only
 *   3 seconds, with a revocation endpoint (RFC 7009);
 * - a small protected "benefits API", the resource server, which accepts only
 *   tokens that server issued and that are neither expired nor revoked, and
 *   answers anything else with `401` and an RFC 7807 `application/problem+json`
 *   body.
 *
 * They stand in for the partner platform; nothing here is part of
 * `@authfetch/core`.
 */
import { generateKeyPairSync, randomBytes } from "node:crypto"
import { createServer } from "node:http"
import Provider from "oidc-provider"

/** Access-token lifetime for client credentials, in seconds. */
export const TOKEN_TTL_SECONDS = 3

/**
 * What the authorization server has stored, by `Model:id`. With opaque tokens
 * (oidc-provider's default format) an access token's id is its value, so the
 * benefits API can look tokens up here, the way a resource server can share an
 * authorization server's token store. Expiry is kept to the millisecond: the
 * provider's own `exp` claim has whole-second resolution, which at a 3 s
 * lifetime could cut up to a third of it.
 *
 * @type {Map<string, { payload: any, expiresAt: number, revoked: boolean }>}
 */
const stored = new Map()

/** The provider's storage adapter over `stored`: one instance per model, such as `ClientCredentials`. */
class StorageAdapter {
  constructor(model) {
    this.model = model
  }

  async upsert(id, payload, expiresIn) {
    stored.set(`${this.model}:${id}`, { payload, expiresAt: Date.now() + expiresIn * 1000, revoked: false })
  }

  async find(id) {
    const entry = stored.get(`${this.model}:${id}`)
    return entry && !entry.revoked ? entry.payload : undefined
  }

  /** Called on revocation; the entry stays, marked, so the API can say why it refuses the token. */
  async destroy(id) {
    const entry = stored.get(`${this.model}:${id}`)
    if (entry) entry.revoked = true
  }

  // Not used by the client-credentials grant.
  async consume() {}
  async revokeByGrantId() {}
  async findByUid() {}
  async findByUserCode() {}
}

/** Why the benefits API accepts or refuses an access token. */
const checkAccessToken = (value) => {
  const entry = value === undefined ? undefined : stored.get(`ClientCredentials:${value}`)
  if (!entry) return { ok: false, detail: "The access token is missing or was not issued by this server." }
  if (entry.revoked) return { ok: false, detail: "The access token has been revoked." }
  if (Date.now() >= entry.expiresAt) return { ok: false, detail: "The access token has expired." }
  return { ok: true, clientId: entry.payload.clientId }
}

const listen = async (handler) => {
  const server = createServer(handler)
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve))
  return { server, origin: `http://127.0.0.1:${server.address().port}` }
}

const close = (server) =>
  new Promise((resolve) => {
    server.close(() => resolve())
    server.closeAllConnections()
  })

/**
 * Starts the authorization server with one confidential client allowed the
 * client-credentials grant.
 *
 * @param {{ clientId: string, clientSecret: string }} client
 */
export const startAuthorizationServer = async (client) => {
  const { server, origin } = await listen()
  const provider = new Provider(origin, {
    adapter: StorageAdapter,
    clients: [
      {
        client_id: client.clientId,
        client_secret: client.clientSecret,
        grant_types: ["client_credentials"],
        response_types: [],
        redirect_uris: [],
        token_endpoint_auth_method: "client_secret_post"
      }
    ],
    features: {
      clientCredentials: { enabled: true },
      // A client may revoke its own tokens (RFC 7009), no one else's.
      revocation: {
        enabled: true,
        allowedPolicy: async (_ctx, caller, token) => token.clientId === caller.clientId
      },
      devInteractions: { enabled: false }
    },
    ttl: { ClientCredentials: TOKEN_TTL_SECONDS },
    // A fresh signing key and cookie key per run: no ID tokens or cookies are used, but the provider needs them.
    jwks: {
      keys: [generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ format: "jwk" })]
    },
    cookies: { keys: [randomBytes(32).toString("base64url")] }
  })
  server.on("request", provider.callback())

  // Discovery (RFC 8414 / OpenID Connect Discovery), as a client would find the endpoints.
  const metadata = await (await fetch(`${origin}/.well-known/openid-configuration`)).json()
  return {
    issuer: metadata.issuer,
    tokenUrl: metadata.token_endpoint,
    /**
     * Revokes an access token at the revocation endpoint (RFC 7009), as the
     * client that owns it would after a leak.
     */
    revoke: async (token) => {
      const body = new URLSearchParams({ token, token_type_hint: "access_token" })
      body.set("client_id", client.clientId)
      body.set("client_secret", client.clientSecret)
      const response = await fetch(metadata.revocation_endpoint, { method: "POST", body })
      if (!response.ok) throw new Error(`token revocation failed: HTTP ${response.status}`)
    },
    /** every access token it issued, to check that none was ever printed */
    issuedTokens: () =>
      [...stored.keys()]
        .filter((key) => key.startsWith("ClientCredentials:"))
        .map((key) => key.slice("ClientCredentials:".length)),
    close: () => close(server)
  }
}

/**
 * Starts the benefits API: `GET /api/v1/consumers/:id` with a bearer token
 * (RFC 6750).
 */
export const startBenefitsApi = async () => {
  const { server, origin } = await listen((req, res) => {
    const match = /^\/api\/v1\/consumers\/(\d+)$/.exec(req.url ?? "")
    if (req.method !== "GET" || !match) {
      res.writeHead(404, { "content-type": "application/problem+json" })
      res.end(JSON.stringify({ type: "about:blank", title: "Not Found", status: 404, instance: req.url }))
      return
    }
    const bearer = /^Bearer (\S+)$/i.exec(req.headers.authorization ?? "")?.[1]
    const verdict = checkAccessToken(bearer)
    if (!verdict.ok) {
      res.writeHead(401, {
        "content-type": "application/problem+json",
        "www-authenticate": `Bearer error="invalid_token", error_description="${verdict.detail}"`
      })
      res.end(
        JSON.stringify({
          type: "https://tools.ietf.org/html/rfc7235#section-3.1",
          title: "Unauthorized",
          status: 401,
          detail: verdict.detail,
          instance: req.url
        })
      )
      return
    }
    res.writeHead(200, { "content-type": "application/json" })
    res.end(
      JSON.stringify({ consumerId: match[1], plan: "HSA", balance: 1250.75, requestedBy: verdict.clientId })
    )
  })
  return { url: `${origin}/api/v1`, close: () => close(server) }
}
