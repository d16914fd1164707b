// The same proxy in the Edge runtime, with the mount point derived from the catch-all segment.
import { createProxyRoute } from "@authfetch/next"
import { baseUrl, tokens } from "../../../../../lib/wex"

export const runtime = "edge"
export const dynamic = "force-dynamic"

export const { GET, HEAD, POST, PUT, PATCH, DELETE } = createProxyRoute(() => ({
  tokens,
  baseUrl: baseUrl(),
  allow: ["/v1/consumers/*", "/v1/consumers/*/accounts", "/v1/claims"],
  attemptTimeout: "20 seconds"
}))
