/**
 * `@authfetch/sandbox`: a local emulator of the WEX Health Benefits Platform
 * and WealthCare Access token endpoints and APIs, for developing and testing
 * OAuth 2.0 clients without partner credentials, and for breaking them on
 * purpose (latency, 5xx, 429 with `Retry-After`, dropped connections, clock
 * skew, early revocation). The WealthCare profile also plays the user's side
 * of an OpenID Connect provider: a sign-in page for test users, ID tokens,
 * discovery, userinfo, revocation and end session.
 *
 * A library (`startSandbox`) and a CLI (`authfetch-sandbox`). It depends on
 * nothing but Node.js.
 *
 * @example
 * ```ts
 * import { startSandbox } from "@authfetch/sandbox"
 *
 * const sandbox = await startSandbox({ profile: "wex", tokenTtl: 5, faults: { api: { errorRate: 0.1 } } })
 * // point the client under test at sandbox.tokenUrl and sandbox.baseUrl, open sandbox.url in a browser
 * console.log(sandbox.stats().tokenRequests.total)
 * await sandbox.close()
 * ```
 *
 * @since 0.1.0
 */
export {
  DEFAULT_CLIENT,
  DEFAULT_USER,
  startSandbox,
  WEALTHCARE_OIDC_SCOPES,
  WEALTHCARE_SCOPES
} from "./Sandbox.ts"
export type {
  AuthorizeFaults,
  EndpointFaults,
  Faults,
  Sandbox,
  SandboxClient,
  SandboxEvent,
  SandboxGrant,
  SandboxOptions,
  SandboxStats,
  SandboxUser,
  TokenEndpointFaults
} from "./types.ts"
