import type { ProxyRouteOptions } from "@authfetch/next"
import { baseUrl, tokens } from "./wex"

/** What the browser may reach through the proxy routes: the resources the pages use, nothing else. */
export const proxyOptions = (prefix: string): ProxyRouteOptions => ({
  tokens,
  baseUrl: baseUrl(),
  prefix,
  allow: ["/v1/consumers/*", "/v1/consumers/*/accounts", "/v1/claims", "/v1/claims/*", "/v1/documents"],
  maxBodyBytes: 16 * 1024 * 1024,
  attemptTimeout: "20 seconds"
})
