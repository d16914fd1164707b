/**
 * The conformance table against each authorization server, for the grants
 * each supports: panva's oidc-provider (certified) and both profiles of
 * @authfetch/sandbox, so the emulator is held to the same answers.
 */
import { DEFAULT_CLIENT, DEFAULT_USER, startSandbox, WEALTHCARE_SCOPES } from "@authfetch/sandbox"
import { afterAll, afterEach, beforeAll, describe, it } from "vitest"
import { Grant } from "../src/index.ts"
import { type Capability, type ConformanceServer, conformance, opener } from "./conformance/conformance.ts"
import { CLIENTS, type OidcProvider, REDIRECT_URI, startOidcProvider } from "./support/oidcProvider.ts"

const suite = (
  name: string,
  capabilities: ReadonlyArray<Capability>,
  start: () => Promise<{ server: ConformanceServer; close: () => Promise<void> }>
) =>
  describe(`conformance: ${name}`, () => {
    let started: { server: ConformanceServer; close: () => Promise<void> }
    const sources = opener()
    beforeAll(async () => {
      started = await start()
    })
    afterEach(() => sources.disposeAll())
    afterAll(() => started?.close())
    for (const scenario of conformance.filter((c) => capabilities.includes(c.needs))) {
      it(scenario.name, () => scenario.run(started.server, sources.open))
    }
  })

suite("oidc-provider", ["clientCredentials", "basic", "code", "unsupported"], async () => {
  const op: OidcProvider = await startOidcProvider()
  const server: ConformanceServer = {
    name: "oidc-provider",
    tokenUrl: op.tokenUrl,
    clientCredentials: CLIENTS.ccPost,
    basic: CLIENTS.ccBasic,
    code: {
      ...CLIENTS.code,
      redirectUri: REDIRECT_URI,
      scope: "openid offline_access",
      authorize: (codeChallenge) =>
        op.authorize({ clientId: CLIENTS.code.clientId, scope: "openid offline_access", codeChallenge })
    },
    unsupported: { client: CLIENTS.ccPost, grant: Grant.password({ username: "u", password: "p" }) },
    tokenRequests: () => op.counters.requests.length
  }
  return { server, close: () => op.close() }
})

const sandboxSuite = (profile: "wex" | "wealthcare", capabilities: ReadonlyArray<Capability>) =>
  suite(`@authfetch/sandbox (${profile})`, capabilities, async () => {
    // autoApprove: the authorization endpoint approves at once instead of showing its sign-in page
    const sandbox = await startSandbox({ profile, tokenRateLimit: false, autoApprove: true })
    const redirectUri = "http://127.0.0.1/callback"
    const scope = WEALTHCARE_SCOPES.join(" ")
    const server: ConformanceServer = {
      name: `sandbox ${profile}`,
      tokenUrl: sandbox.tokenUrl,
      clientCredentials: DEFAULT_CLIENT,
      basic: DEFAULT_CLIENT,
      code: {
        ...DEFAULT_CLIENT,
        redirectUri,
        scope,
        // With autoApprove, the sandbox's authorization endpoint approves at once and redirects with the code.
        authorize: async (codeChallenge) => {
          const url = new URL(sandbox.authorizeUrl!)
          for (const [name, value] of Object.entries({
            response_type: "code",
            client_id: DEFAULT_CLIENT.clientId,
            redirect_uri: redirectUri,
            scope,
            state: "s1",
            code_challenge: codeChallenge,
            code_challenge_method: "S256"
          })) {
            url.searchParams.set(name, value)
          }
          const response = await fetch(url, { redirect: "manual" })
          const code = new URL(response.headers.get("location") ?? "").searchParams.get("code")
          if (!code) throw new Error(`no code in the authorization response (HTTP ${response.status})`)
          return code
        }
      },
      password: { ...DEFAULT_CLIENT, ...DEFAULT_USER },
      unsupported: {
        client: DEFAULT_CLIENT,
        grant: Grant.password({ username: DEFAULT_USER.username, password: DEFAULT_USER.password })
      },
      tokenRequests: () => sandbox.stats().tokenRequests.total
    }
    return { server, close: () => sandbox.close() }
  })

// WEX documents client credentials only: every other grant is unsupported_grant_type.
sandboxSuite("wex", ["clientCredentials", "basic", "unsupported"])
sandboxSuite("wealthcare", ["clientCredentials", "basic", "code", "password"])
