/**
 * One token source per process and configuration: a route module evaluated
 * again and again (what `next dev` does on every edit) makes one token
 * request; nothing is requested at import; the registry is keyed by the
 * core's `Config.cacheKey`, so another scope or client is another source.
 */
import { Config } from "@authfetch/core"
import { NextRequest } from "next/server.js"
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest"
import { startTokenServer, type TokenServer } from "../../core/test/support/tokenServer.ts"
import { disposeTokenSources, getTokenSource, tokenSource } from "../src/index.ts"

let auth: TokenServer
let api: TokenServer
const setup = { evaluations: 0, tokenUrl: "", apiBase: "" }

beforeAll(async () => {
  ;[auth, api] = await Promise.all([startTokenServer(), startTokenServer()])
  Object.assign(setup, { tokenUrl: auth.tokenUrl, apiBase: `${api.url}/api` })
  ;(globalThis as unknown as { __reloadSetup: typeof setup }).__reloadSetup = setup
})
afterEach(async () => {
  await disposeTokenSources()
  auth.requests.length = 0
  api.requests.length = 0
  setup.evaluations = 0
})
afterAll(async () => {
  await Promise.all([auth.close(), api.close()])
})

const evaluate = async () => {
  vi.resetModules()
  return import("./fixtures/reloadedRoute.ts")
}

describe("dev-mode reloads", () => {
  it("20 evaluations of a route module, each serving requests, make 1 token request", async () => {
    const seen = new Set<unknown>()
    for (let i = 0; i < 20; i++) {
      const route = await evaluate()
      seen.add(route.GET)
      expect(
        (await route.GET(new NextRequest("http://next.local/api/x"), { params: Promise.resolve({}) })).status
      ).toBe(200)
      expect(
        (await route.proxy.GET(new NextRequest("http://next.local/api/benefits/v1/claims"))).status
      ).toBe(200)
      seen.add(route.tokens.source())
    }
    expect(setup.evaluations).toBe(20)
    // 20 module instances (handlers), one token source among them.
    expect(seen.size).toBe(21)
    expect(auth.requests).toHaveLength(1)
    expect(api.requests).toHaveLength(40)
    expect(new Set(api.requests.map((r) => r.headers.authorization)).size).toBe(1)
  })

  it("requests nothing at import: 20 evaluations without a request make no token request", async () => {
    for (let i = 0; i < 20; i++) await evaluate()
    expect(setup.evaluations).toBe(20)
    expect(auth.requests).toHaveLength(0)
  })
})

describe("registry", () => {
  const base = () => ({ tokenUrl: auth.tokenUrl, clientId: "registry", clientSecret: "s" })

  it("is keyed by the core's cacheKey: equal configurations share, different scopes or clients do not", () => {
    const a = getTokenSource({ ...base(), scope: "a b" })
    expect(getTokenSource({ ...base(), scope: ["b", "a"], clientSecret: "another copy" })).toBe(a)
    expect(a.key).toBe(Config.cacheKey({ ...base(), scope: "b a" }))
    expect(getTokenSource({ ...base(), scope: "a" })).not.toBe(a)
    expect(getTokenSource({ ...base(), clientId: "other", scope: "a b" })).not.toBe(a)
  })

  it("forgets a disposed source, so the next use creates a new one", async () => {
    const first = getTokenSource(base())
    await first.getToken()
    await first.dispose()
    const second = getTokenSource(base())
    expect(second).not.toBe(first)
    await second.getToken()
    expect(auth.requests).toHaveLength(2)
  })

  it("tokenSource resolves its configuration once, at first use, and follows the registry after a dispose", async () => {
    let resolved = 0
    const lazy = tokenSource(() => {
      resolved++
      return base()
    })
    expect(lazy.peek()).toBeUndefined()
    expect(resolved).toBe(0)
    const token = await lazy.getToken()
    expect(lazy.peek()).toBe(token)
    await disposeTokenSources()
    expect(await lazy.getToken()).not.toBe(token)
    expect(resolved).toBe(1)
    expect(auth.requests).toHaveLength(2)
  })

  it("rejects getToken (does not throw) when the configuration cannot work", async () => {
    const broken = tokenSource(() => ({ tokenUrl: "http://auth.example.com/token", clientId: "" }))
    await expect(broken.getToken()).rejects.toMatchObject({ _tag: "InvalidConfigError" })
  })
})
