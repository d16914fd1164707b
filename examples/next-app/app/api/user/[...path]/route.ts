// The per-user proxy (Node.js runtime): /api/user/v1/... → the API /v1/..., with the signed-in user's
// token. No session: 401. A POST from another site, or without the x-csrf header: 403.
import { createProxyRoute } from "@authfetch/next"
import { apiBaseUrl, sessions } from "../../../../lib/auth"

export const dynamic = "force-dynamic"

export const { GET, HEAD, POST, PUT, PATCH, DELETE } = createProxyRoute(() => ({
  sessions,
  baseUrl: apiBaseUrl(),
  prefix: "/api/user",
  allow: ["/v1/me", "/v1/claims", "/v1/claims/*"]
}))
