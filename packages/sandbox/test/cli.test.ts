/**
 * The CLI as a user runs it: the built `dist/cli.js` in a child process.
 * It needs `dist/` (turbo's `test` task of this package depends on its
 * `build`; run `tsc -p tsconfig.build.json` first when calling vitest by hand).
 */
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process"
import { existsSync, readdirSync, statSync } from "node:fs"
import { join } from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { fingerprintOf, pkce, requestIdOf } from "./support.ts"

const root = new URL("..", import.meta.url).pathname
const cli = join(root, "dist", "cli.js")

const newestSource = (dir: string): number =>
  Math.max(
    ...readdirSync(dir, { withFileTypes: true }).map((entry) =>
      entry.isDirectory() ? newestSource(join(dir, entry.name)) : statSync(join(dir, entry.name)).mtimeMs
    )
  )

// Checked in each test, not in a hook: a failing hook reports the tests as skipped.
const requireBuiltCli = (): void => {
  if (!existsSync(cli)) {
    throw new Error(`${cli} is missing: build first (npx -y pnpm@12 --filter @authfetch/sandbox build)`)
  }
  if (statSync(cli).mtimeMs < newestSource(join(root, "src"))) {
    throw new Error(
      `${cli} is older than src/: build first (npx -y pnpm@12 --filter @authfetch/sandbox build)`
    )
  }
}

interface Running {
  readonly child: ChildProcessWithoutNullStreams
  stdout(): string
  stderr(): string
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpExecArray>
  exited(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

const children: Array<ChildProcessWithoutNullStreams> = []
afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill("SIGKILL")
})

const run = (args: Array<string>): Running => {
  requireBuiltCli()
  const child = spawn(process.execPath, [cli, ...args], { stdio: ["pipe", "pipe", "pipe"] })
  children.push(child)
  let out = ""
  let err = ""
  const waiters = new Set<() => void>()
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
    out += chunk
    for (const check of waiters) check()
  })
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
    err += chunk
  })
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal }))
  )
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exited: () => exit,
    waitFor: (pattern, timeoutMs = 10_000) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(check)
          reject(new Error(`no ${pattern} in CLI output within ${timeoutMs} ms:\n${out}\n${err}`))
        }, timeoutMs)
        const check = () => {
          const match = pattern.exec(out)
          if (match === null) return
          clearTimeout(timer)
          waiters.delete(check)
          resolve(match)
        }
        waiters.add(check)
        check()
      })
  }
}

const withinMs = async <T>(promise: Promise<T>, ms: number): Promise<T> => {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`not within ${ms} ms`)), ms)
  })
  try {
    return await Promise.race([promise, timeout])
  } finally {
    clearTimeout(timer)
  }
}

describe("authfetch-sandbox CLI", () => {
  it("prints its URLs and credentials, serves the documented request, logs events, stops on SIGTERM", async () => {
    const sandbox = run(["--profile", "wex", "--port", "0"])
    const tokenUrl = (await sandbox.waitFor(/^\s*token URL\s+(\S+)$/m))[1]!
    expect(tokenUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/authorize$/)
    expect(tokenUrl).not.toMatch(/:0\//)
    await sandbox.waitFor(/^Requests /m)
    const out = sandbox.stdout()
    const clientId = /^\s*client_id\s+(\S+)$/m.exec(out)![1]!
    const clientSecret = /^\s*client_secret\s+(\S+)\s+\(a sandbox secret/m.exec(out)![1]!
    const origin = new URL(tokenUrl).origin
    expect(out).toMatch(new RegExp(`API base\\s+${origin}/api`))
    expect(out).toMatch(new RegExp(`admin\\s+${origin}/admin`))
    expect(out).toMatch(new RegExp(`page\\s+${origin}/`))

    // what `curl -X POST $URL -H "Content-Type: application/x-www-form-urlencoded" -d ...` sends
    const ok = await fetch(tokenUrl, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: `grant_type=client_credentials&client_id=${clientId}&client_secret=${clientSecret}`
    })
    expect(ok.status).toBe(200)
    const token = ((await ok.json()) as { access_token: string }).access_token
    expect(token.length).toBeGreaterThan(20)

    const wrong = await fetch(tokenUrl, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: `grant_type=client_credentials&client_id=${clientId}&client_secret=wrong`
    })
    expect(wrong.status).toBe(401)
    expect(await wrong.text()).toBe(
      '{"error":"invalid_client","error_description":"Client authentication failed"}'
    )

    await sandbox.waitFor(
      new RegExp(`POST\\s+/authorize 200 client=${clientId} token=${fingerprintOf(token)} \\d+ms`)
    )
    await sandbox.waitFor(/POST\s+\/authorize 401 client=sandbox-client token=- \d+ms error=invalid_client/)
    expect(sandbox.stdout()).not.toContain(token)

    const t0 = performance.now()
    sandbox.child.kill("SIGTERM")
    const { code } = await withinMs(sandbox.exited(), 2000)
    expect(code).toBe(0)
    expect(performance.now() - t0).toBeLessThan(2000)
    await expect(fetch(tokenUrl, { method: "POST" })).rejects.toThrow()
  })

  it("wealthcare with a chosen client and token lifetime; the given secret is not printed; SIGINT stops it", async () => {
    const sandbox = run([
      "--profile",
      "wealthcare",
      "--token-ttl",
      "5",
      "--client-id",
      "my-app",
      "--client-secret",
      "my-very-own-secret"
    ])
    const tokenUrl = (await sandbox.waitFor(/^\s*token URL\s+(\S+)$/m))[1]!
    expect(tokenUrl).toMatch(/\/connect\/token$/)
    await sandbox.waitFor(/^Requests /m)
    expect(sandbox.stdout()).toMatch(/authorize URL\s+http:\/\/127\.0\.0\.1:\d+\/connect\/authorize/)
    expect(sandbox.stdout()).not.toContain("my-very-own-secret")
    const res = await fetch(tokenUrl, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "grant_type=client_credentials&client_id=my-app&client_secret=my-very-own-secret"
    })
    expect(res.status).toBe(200)
    expect(((await res.json()) as { expires_in: number }).expires_in).toBe(5)
    sandbox.child.kill("SIGINT")
    expect((await withinMs(sandbox.exited(), 2000)).code).toBe(0)
  })

  it("wealthcare --user NAME:PASSWORD (repeatable): the sign-in page's users, not printed; the new URLs printed", async () => {
    const sandbox = run(["--profile", "wealthcare", "--user", "alice:pw:with:colons", "--user", "bob:bob-pw"])
    await sandbox.waitFor(/^Requests /m)
    const out = sandbox.stdout()
    const authorizeUrl = /^\s*authorize URL\s+(\S+)\s+\(the sign-in page\)$/m.exec(out)![1]!
    const origin = new URL(authorizeUrl).origin
    expect(out).toMatch(new RegExp(`issuer\\s+${origin}$`, "m"))
    expect(out).toMatch(new RegExp(`discovery\\s+${origin}/\\.well-known/openid-configuration$`, "m"))
    expect(out).toMatch(new RegExp(`JWKS\\s+${origin}/\\.well-known/jwks\\.json$`, "m"))
    expect(out).toMatch(new RegExp(`userinfo\\s+${origin}/connect/userinfo$`, "m"))
    expect(out).toMatch(new RegExp(`revocation\\s+${origin}/connect/revocation$`, "m"))
    expect(out).toMatch(new RegExp(`end session\\s+${origin}/connect/endsession$`, "m"))
    expect(out).toMatch(/^\s*user\s+alice\s+\(password as given with --user\)$/m)
    expect(out).toMatch(/^\s*user\s+bob\s/m)
    expect(out).not.toContain("pw:with:colons")
    expect(out).not.toContain("bob-pw")
    expect(out).not.toContain("sandbox-user")

    const url = new URL(authorizeUrl)
    url.search = new URLSearchParams({
      response_type: "code",
      client_id: "sandbox-client",
      redirect_uri: "http://127.0.0.1/callback",
      code_challenge: pkce().challenge,
      code_challenge_method: "S256"
    }).toString()
    const page = await fetch(url)
    expect(page.status).toBe(200)
    const signedIn = await fetch(authorizeUrl, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        request: requestIdOf(await page.text()),
        username: "alice",
        password: "pw:with:colons"
      }).toString(),
      redirect: "manual"
    })
    expect(signedIn.status).toBe(302)
    await sandbox.waitFor(/POST\s+\/connect\/authorize 302 client=sandbox-client token=- \d+ms sub=alice$/m)
    sandbox.child.kill("SIGTERM")
    expect((await withinMs(sandbox.exited(), 2000)).code).toBe(0)
  })

  it("wealthcare --auto-approve redirects at once; --user and --auto-approve need wealthcare", async () => {
    const sandbox = run(["--profile", "wealthcare", "--auto-approve"])
    const authorizeUrl = (await sandbox.waitFor(/^\s*authorize URL\s+(\S+)\s+\(approves at once/m))[1]!
    await sandbox.waitFor(/^Requests /m)
    expect(sandbox.stdout()).toMatch(/user\s+sandbox-user \/ sandbox-password/)
    const url = new URL(authorizeUrl)
    url.search = new URLSearchParams({
      response_type: "code",
      client_id: "sandbox-client",
      redirect_uri: "http://127.0.0.1/callback",
      code_challenge: pkce().challenge,
      code_challenge_method: "S256"
    }).toString()
    const res = await fetch(url, { redirect: "manual" })
    expect(res.status).toBe(302)
    expect(new URL(res.headers.get("location")!).searchParams.get("code")).not.toBeNull()
    sandbox.child.kill("SIGINT")
    expect((await withinMs(sandbox.exited(), 2000)).code).toBe(0)

    for (const args of [
      ["--profile", "wex", "--user", "a:b"],
      ["--auto-approve"],
      ["--profile", "wealthcare", "--user", "nopassword"],
      ["--profile", "wealthcare", "--user", ":pw"],
      ["--profile", "wealthcare", "--user", "a:b", "--user", "a:c"]
    ]) {
      const bad = run(args)
      const exited = await withinMs(bad.exited(), 5000)
      expect(exited.code, args.join(" ")).not.toBe(0)
      expect(bad.stderr(), args.join(" ")).toMatch(/--user|--auto-approve|listed twice/)
    }
  })

  it("--help exits 0; a bad option exits 2 with the usage", async () => {
    const help = run(["--help"])
    expect((await withinMs(help.exited(), 5000)).code).toBe(0)
    expect(help.stdout()).toMatch(/^Usage: authfetch-sandbox/)
    const bad = run(["--profile", "auth0"])
    expect((await withinMs(bad.exited(), 5000)).code).toBe(2)
    expect(bad.stderr()).toMatch(/--profile must be/)
    const unknown = run(["--verbose"])
    expect((await withinMs(unknown.exited(), 5000)).code).toBe(2)
    expect(unknown.stderr()).toMatch(/Usage:/)
  })
})
