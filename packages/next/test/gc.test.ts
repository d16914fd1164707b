/**
 * A proxied response body must survive a garbage collection between the
 * route's return and Next reading it. The core's handler drops the upstream
 * `Response`, whose finalizer in undici cancels an unlocked body stream; the
 * handler pipes the body into a stream of its own first, which locks it.
 * Needs `--expose-gc` (set in vitest.config.ts for this project).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { startTokenServer, type TokenServer } from "../../core/test/support/tokenServer.ts"
import { createProxyRoute, disposeTokenSources } from "../src/index.ts"

let auth: TokenServer
let upstream: TokenServer

beforeAll(async () => {
  ;[auth, upstream] = await Promise.all([startTokenServer(), startTokenServer()])
  upstream.setDefault((request) => ({ status: 200, body: { path: request.url } }))
})
afterAll(async () => {
  await disposeTokenSources()
  await Promise.all([auth.close(), upstream.close()])
})

const collect = async () => {
  const gc = (globalThis as { gc?: () => void }).gc
  if (gc === undefined) throw new Error("run with --expose-gc")
  for (let i = 0; i < 5; i++) {
    gc()
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

describe("response bodies and garbage collection", () => {
  it("the route's response bodies are still readable after a collection", async () => {
    const route = createProxyRoute({
      tokens: { tokenUrl: auth.tokenUrl, clientId: "gc", clientSecret: "s" },
      baseUrl: `${upstream.url}/api`,
      prefix: "/p"
    })
    const responses = []
    for (let i = 0; i < 20; i++) responses.push(await route.GET(new Request(`http://next.local/p/v1/${i}`)))
    await collect()
    const bodies = await Promise.all(responses.map((r) => r.json()))
    expect(bodies).toEqual(Array.from({ length: 20 }, (_, i) => ({ path: `/api/v1/${i}` })))
  })
})
