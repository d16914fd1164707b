/**
 * The registry's bounds at scale and with real timers (Node.js only): 2,000
 * distinct scopes never hold more than the cap, the sources evicted are
 * disposed and memory stays flat; an idle source is disposed by the
 * registry's own timer; that timer never keeps a process alive.
 * Needs `--expose-gc` (set in vitest.config.ts for this project).
 */
import { spawn } from "node:child_process"
import { fileURLToPath } from "node:url"
import type { TokenSourceHandle } from "@authfetch/core"
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest"
import { startTokenServer, type TokenServer } from "../../core/test/support/tokenServer.ts"
import { configureTokenSources, disposeTokenSources, tokenSource } from "../src/index.ts"
import { getTokenSource, registry } from "../src/tokens.ts"

let auth: TokenServer

beforeAll(async () => {
  auth = await startTokenServer()
})
afterEach(async () => {
  configureTokenSources({ maxSources: 100, idleTimeout: "15 minutes" })
  await disposeTokenSources()
  auth.requests.length = 0
})
afterAll(async () => {
  await auth.close()
})

/** A configuration per scope; no client-side rate limit (2,000 token requests of one client). */
const scoped = (scope: string) => ({
  tokenUrl: auth.tokenUrl,
  clientId: "bounds",
  clientSecret: "s",
  scope,
  rateLimit: false as const
})

const heapAfterCollection = async (): Promise<number> => {
  const gc = (globalThis as { gc?: () => void }).gc
  if (gc === undefined) throw new Error("run with --expose-gc")
  for (let i = 0; i < 4; i++) {
    gc()
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  return process.memoryUsage().heapUsed
}

const disposed = (source: TokenSourceHandle) =>
  expect(source.getToken()).rejects.toMatchObject({ _tag: "InvalidConfigError" })

/** Sources for `count` distinct scopes, each with a token, `batch` at a time; the registry's size after each batch. */
const fill = async (from: number, count: number, each?: (handle: TokenSourceHandle) => void) => {
  const sizes: Array<number> = []
  for (let i = from; i < from + count; i += 20) {
    const handles = Array.from({ length: Math.min(20, from + count - i) }, (_, j) =>
      getTokenSource(scoped(`scope-${i + j}`))
    )
    sizes.push(registry().entries.size)
    await Promise.all(handles.map((handle) => handle.getToken()))
    for (const handle of handles) each?.(handle)
    auth.requests.length = 0
  }
  return sizes
}

describe("2,000 distinct scopes", () => {
  it("never more than the cap (default 100), the evicted disposed, memory flat", async () => {
    const early: Array<TokenSourceHandle> = []
    const sizes = await fill(0, 300, (handle) => {
      if (early.length < 20) early.push(registry().entries.get(handle.key)!.source)
    })
    const before = await heapAfterCollection()
    sizes.push(...(await fill(300, 1_700)))
    const after = await heapAfterCollection()
    expect(Math.max(...sizes, registry().entries.size)).toBe(100)
    for (const source of early) await disposed(source)
    // Unbounded, the 1,700 more live sources (each with its token and refresh fiber) held ~39 MB
    // here; bounded, the growth measured ~2 MB whatever the count (runtime caches, the server).
    expect(after - before).toBeLessThan(8 * 1024 * 1024)
  }, 120_000)

  it("a handle of an evicted source gets a new source (and token) on its next use", async () => {
    configureTokenSources({ maxSources: 10 })
    const first = getTokenSource(scoped("first"))
    const lazy = tokenSource(() => scoped("lazy"))
    await Promise.all([first.getToken(), lazy.getToken()])
    await fill(0, 40)
    expect(registry().entries.has(first.key)).toBe(false)
    expect((await first.getToken()).tokenType).toBe("Bearer")
    expect((await lazy.getToken()).tokenType).toBe("Bearer")
    expect(auth.requests).toHaveLength(2)
    expect(registry().entries.size).toBe(10)
  })
})

describe("idle eviction with real timers", () => {
  it("a source not used for idleTimeout is disposed by the registry's timer", async () => {
    configureTokenSources({ idleTimeout: "50 millis" })
    const tokens = getTokenSource(scoped("idle"))
    await tokens.getToken()
    const source = registry().entries.get(tokens.key)!.source
    // No upper bound on when: a loaded machine may run the timer late, never early.
    while (registry().entries.size > 0) await new Promise((resolve) => setTimeout(resolve, 20))
    await disposed(source)
    expect(registry().timer).toBeUndefined()
    // the handle makes a new source on its next use
    await tokens.getToken()
    expect(auth.requests).toHaveLength(2)
  })

  it("the idle timer never keeps a process alive", async () => {
    const child = spawn(
      process.execPath,
      [fileURLToPath(new URL("./fixtures/idleRegistryProcess.ts", import.meta.url))],
      { env: { ...process.env, TOKEN_URL: auth.tokenUrl }, stdio: ["ignore", "pipe", "pipe"] }
    )
    let output = ""
    child.stdout.on("data", (chunk: Buffer) => {
      output += chunk.toString("utf8")
    })
    child.stderr.on("data", (chunk: Buffer) => {
      output += chunk.toString("utf8")
    })
    // With a timer that kept it alive the child would live for an hour (past the test's timeout).
    const code = await new Promise<number | null>((resolve) => child.on("exit", resolve))
    expect(output).toContain("idle timer set")
    expect(code).toBe(0)
    expect(auth.requests).toHaveLength(1)
  })
})
