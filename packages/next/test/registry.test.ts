/**
 * One token source per process and configuration: a route module evaluated
 * again and again (what `next dev` does on every edit) makes one token
 * request; nothing is requested at import; the registry is keyed by the
 * core's `Config.cacheKey`, so another scope or client is another source.
 * The registry is bounded: a size cap in least-recently-used order and idle
 * eviction (on an injected clock here; with real timers in
 * `tokenSources.bounds.test.ts`), what it evicts disposed, the handles it gave
 * out still working.
 */
import { Config, Grant, type TokenSourceHandle } from "@authfetch/core"
import { NextRequest } from "next/server.js"
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest"
import { issueToken, startTokenServer, type TokenServer } from "../../core/test/support/tokenServer.ts"
import { configureTokenSources, disposeTokenSources, tokenSource } from "../src/index.ts"
import { getTokenSource, registry } from "../src/tokens.ts"

let auth: TokenServer
let api: TokenServer
const setup = { evaluations: 0, tokenUrl: "", apiBase: "" }

beforeAll(async () => {
  ;[auth, api] = await Promise.all([startTokenServer(), startTokenServer()])
  Object.assign(setup, { tokenUrl: auth.tokenUrl, apiBase: `${api.url}/api` })
  ;(globalThis as unknown as { __reloadSetup: typeof setup }).__reloadSetup = setup
})
afterEach(async () => {
  configureTokenSources({ maxSources: 100, idleTimeout: "15 minutes" })
  registry().now = () => Date.now()
  await disposeTokenSources()
  auth.requests.length = 0
  api.requests.length = 0
  auth.setDefault(() => issueToken())
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

describe("bounds", () => {
  const scoped = (scope: string) => ({
    tokenUrl: auth.tokenUrl,
    clientId: "bounded",
    clientSecret: "s",
    scope
  })
  const keys = () => [...registry().entries.keys()]
  /** the core source behind a registry handle, as the registry holds it now */
  const coreSource = (handle: TokenSourceHandle) => registry().entries.get(handle.key)!.source

  it("a full registry disposes its least recently used source; its handle makes a new one on next use", async () => {
    configureTokenSources({ maxSources: 2 })
    const a = getTokenSource(scoped("a"))
    const b = getTokenSource(scoped("b"))
    await Promise.all([a.getToken(), b.getToken()])
    const bSource = coreSource(b)
    await a.getToken() // a is now the most recently used: b goes first
    const c = getTokenSource(scoped("c"))
    expect(keys()).toEqual([a.key, c.key])
    await expect(bSource.getToken()).rejects.toMatchObject({ _tag: "InvalidConfigError" })
    expect(b.peek()).toBeUndefined()
    expect(auth.requests).toHaveLength(2)
    // the handle given out for b still works: a new source, one token request, a (least recently used) goes
    await b.getToken()
    expect(auth.requests).toHaveLength(3)
    expect(keys()).toEqual([c.key, b.key])
    expect(getTokenSource(scoped("b"))).toBe(b)
  })

  it("a lazy tokenSource follows evictions transparently", async () => {
    configureTokenSources({ maxSources: 1 })
    const lazy = tokenSource(() => scoped("lazy"))
    const first = await lazy.getToken()
    expect(lazy.peek()).toBe(first)
    getTokenSource(scoped("other")) // evicts the lazy one's source
    expect(lazy.peek()).toBeUndefined()
    const second = await lazy.getToken()
    expect(second).not.toBe(first)
    expect(lazy.peek()).toBe(second)
    expect(keys()).toEqual([lazy.source().key])
  })

  it("a token request in flight when its source is evicted is answered, then that source is disposed", async () => {
    configureTokenSources({ maxSources: 1 })
    let release: () => void = () => {}
    const held = new Promise<void>((resolve) => {
      release = resolve
    })
    auth.setDefault(async (request) => {
      if (request.form.get("scope") === "slow") await held
      return issueToken()
    })
    const slow = getTokenSource(scoped("slow"))
    const pending = slow.getToken()
    await auth.waitForRequests(1)
    const slowSource = coreSource(slow)
    getTokenSource(scoped("other")) // evicts slow while its token is on the way
    expect(keys()).toEqual([Config.cacheKey(scoped("other"))])
    release()
    expect((await pending).tokenType).toBe("Bearer")
    await expect(slowSource.getToken()).rejects.toMatchObject({ _tag: "InvalidConfigError" })
    expect(auth.requests).toHaveLength(1)
  })

  it("idle sources are disposed; use keeps a source (injected clock)", async () => {
    let now = 1_000_000
    registry().now = () => now
    configureTokenSources({ idleTimeout: "10 minutes" })
    const a = getTokenSource(scoped("a"))
    const b = getTokenSource(scoped("b"))
    await Promise.all([a.getToken(), b.getToken()])
    const aSource = coreSource(a)
    now += 6 * 60_000
    expect(b.peek()).toBeDefined() // b used at 6 minutes
    now += 5 * 60_000 // 11 minutes: a idle for 11, b for 5
    getTokenSource(scoped("c")) // the registry sweeps on every new source (and on its timer)
    expect(keys()).toEqual([b.key, expect.any(String)])
    await expect(aSource.getToken()).rejects.toMatchObject({ _tag: "InvalidConfigError" })
    now += 9 * 60_000 // b idle for 14
    configureTokenSources({ idleTimeout: "10 minutes" })
    expect(keys()).toEqual([expect.any(String)])
    configureTokenSources({ idleTimeout: false })
    now += 60 * 60_000
    getTokenSource(scoped("d"))
    expect(keys()).toHaveLength(2)
  })

  it("a source its configuration cannot make again is never idle-evicted, and is evicted last", async () => {
    let now = 1_000_000
    registry().now = () => now
    configureTokenSources({ maxSources: 3, idleTimeout: "1 minute" })
    const code = getTokenSource({
      tokenUrl: auth.tokenUrl,
      clientId: "bounded",
      grant: Grant.authorizationCode({ code: "single-use", redirectUri: "https://app.example.com/cb" })
    })
    const a = getTokenSource(scoped("a"))
    now += 2 * 60_000
    const b = getTokenSource(scoped("b")) // a and the code source are idle: a goes, the code source stays
    expect(keys()).toEqual([code.key, b.key])
    const c = getTokenSource(scoped("c"))
    const d = getTokenSource(scoped("d")) // full: b goes (least recently used that can be made again)
    expect(keys()).toEqual([code.key, c.key, d.key])
    expect(keys()).not.toContain(a.key)
  })
})
