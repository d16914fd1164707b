/**
 * The conformance table against each authorization server, for the grants
 * each supports: oidc-provider here; the sandbox profiles join below.
 */
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
