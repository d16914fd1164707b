/**
 * A script that forgets `dispose()` must exit by itself: no timer of ours (or
 * of the Effect version the app installed) may keep Node alive. Run in child
 * processes, against the locked `effect` and against the newest `effect` the
 * peer range allows, installed fresh from the registry outside the lockfile
 * (`effect` 4.1.5 once added a rate-limiter sweep on a timer that was not
 * `unref`'d, which the locked version could not show).
 */
import { execFile, spawn } from "node:child_process"
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { promisify } from "node:util"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { issueToken, startTokenServer, type TokenServer } from "./support/tokenServer.ts"

const coreDir = new URL("..", import.meta.url).pathname
const manifest = JSON.parse(readFileSync(join(coreDir, "package.json"), "utf8")) as {
  peerDependencies: Record<string, string>
  dependencies: Record<string, string>
}

let server: TokenServer
beforeAll(async () => {
  // a token endpoint and an API in one: every answer is a token, 200
  server = await startTokenServer(() => issueToken({ expires_in: 30 }))
})
afterAll(() => server.close())

/** What a careless script does: tokens, an invalidation, a spent budget, API calls; no dispose. */
const script = (entry: string) => `
  const { authFetch, createTokenSource } = await import(${JSON.stringify(entry)})
  const { readFileSync } = await import("node:fs")
  const { createRequire } = await import("node:module")
  const tokens = createTokenSource({
    tokenUrl: ${JSON.stringify(server.tokenUrl)},
    clientId: "forgetful",
    clientSecret: "s",
    rateLimit: { limit: 2, window: "1 minute" }
  })
  const first = await tokens.getToken()
  await tokens.invalidate(first)
  await tokens.getToken()
  const api = authFetch(tokens, { baseUrl: ${JSON.stringify(server.url)}, attemptTimeout: "2 seconds" })
  const res = await api("/v1/anything")
  await res.arrayBuffer()
  // the budget is spent: a wait that fails fast, and a background request left waiting for it
  await tokens.invalidate(await tokens.getToken())
  const limited = await tokens.getToken({ maxWait: "10 millis" }).catch((e) => e._tag)
  const effectEntry = createRequire(${JSON.stringify(entry)}).resolve("effect")
  const version = JSON.parse(readFileSync(effectEntry.replace(/dist\\/.*$/, "package.json"), "utf8")).version
  console.log(JSON.stringify({ status: res.status, limited, version }))
`

/** Runs `code` as an ES module in `cwd`; resolves with its exit code and output, or fails after 20 s. */
const run = (code: string, cwd: string) =>
  new Promise<{ code: number | null; stdout: string; millis: number }>((resolve, reject) => {
    const started = Date.now()
    const child = spawn(process.execPath, ["--input-type=module", "-e", code], {
      cwd,
      stdio: ["ignore", "pipe", "inherit"]
    })
    let stdout = ""
    child.stdout.on("data", (d) => {
      stdout += d
    })
    const killer = setTimeout(() => {
      child.kill("SIGKILL")
      reject(new Error(`the child process did not exit within 20 s: something keeps Node alive\n${stdout}`))
    }, 20_000)
    child.on("exit", (exitCode) => {
      clearTimeout(killer)
      resolve({ code: exitCode, stdout, millis: Date.now() - started })
    })
  })

const expectCleanExit = (result: { code: number | null; stdout: string }) => {
  expect(result.code).toBe(0)
  const report = JSON.parse(result.stdout.trim().split("\n").at(-1) ?? "{}") as Record<string, unknown>
  expect(report.status).toBe(200)
  expect(report.limited).toBe("RateLimitedError")
  return report
}

describe("a token source that is never disposed does not keep Node alive", () => {
  it("with the locked effect", async () => {
    const result = await run(script(join(coreDir, "src/index.ts")), coreDir)
    const report = expectCleanExit(result)
    expect(report.version).toBe(
      JSON.parse(readFileSync(join(coreDir, "node_modules/effect/package.json"), "utf8")).version
    )
  })

  it("with the newest effect the peer range allows, installed fresh outside the lockfile", async () => {
    const dir = mkdtempSync(join(tmpdir(), "authfetch-newest-effect-"))
    try {
      writeFileSync(join(dir, "package.json"), JSON.stringify({ private: true, type: "module" }))
      const wanted = [
        `effect@${manifest.peerDependencies.effect}`,
        ...Object.entries(manifest.dependencies).map(([name, range]) => `${name}@${range}`)
      ]
      // npm installs the highest version the range allows (fresh metadata, no lockfile); once
      // more on a failure, as a busy registry connection can drop
      const install = () =>
        promisify(execFile)(
          "npm",
          [
            "install",
            "--no-save",
            "--no-package-lock",
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
            ...wanted
          ],
          { cwd: dir, timeout: 240_000 }
        )
      await install().catch(install)
      const newest = JSON.parse(readFileSync(join(dir, "node_modules/effect/package.json"), "utf8")).version
      // our sources beside the fresh node_modules (type stripping does not run inside node_modules)
      cpSync(join(coreDir, "src"), join(dir, "core"), { recursive: true })
      const result = await run(script(join(dir, "core/index.ts")), dir)
      const report = expectCleanExit(result)
      expect(report.version).toBe(newest)
      console.log(`exited by itself with effect ${newest} in ${result.millis} ms`)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }, 300_000)
})
