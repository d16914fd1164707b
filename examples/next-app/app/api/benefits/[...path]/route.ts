// The backend-for-frontend proxy (Node.js runtime): /api/benefits/v1/... → WEX API /v1/..., with our token.
import { createProxyRoute } from "@authfetch/next"
import { proxyOptions } from "../../../../lib/proxy"

export const dynamic = "force-dynamic"

export const { GET, HEAD, POST, PUT, PATCH, DELETE } = createProxyRoute(() => proxyOptions("/api/benefits"))
