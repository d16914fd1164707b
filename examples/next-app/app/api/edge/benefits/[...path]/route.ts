// The same proxy in the Edge runtime, with the mount point derived from the catch-all segment.
// Its own token source, in the Edge sandbox's memory: the Edge runtime cannot open a connection
// to Redis, so it imports the configuration only (lib/wex.ts is the Node.js runtime's).
import { createProxyRoute, tokenSource } from "@authfetch/next"
import { baseUrl, wexConfig } from "../../../../../lib/config"

export const runtime = "edge"
export const dynamic = "force-dynamic"

const tokens = tokenSource(wexConfig)

export const { GET, HEAD, POST, PUT, PATCH, DELETE } = createProxyRoute(() => ({
  tokens,
  baseUrl: baseUrl(),
  allow: ["/v1/consumers/*", "/v1/consumers/*/accounts", "/v1/claims"],
  attemptTimeout: "20 seconds"
}))
