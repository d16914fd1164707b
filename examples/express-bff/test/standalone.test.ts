/**
 * The example as `npm start` runs it: `node src/server.ts` as an OS process
 * with no provider variables, which starts its own sandboxes (WEX and
 * WealthCare). A user signs in through its pages over plain HTTP (the
 * sandbox's sign-in form posted), the account page shows them with the API's
 * answer for their token, sign-out works, `SIGTERM` stops it cleanly, and
 * nothing secret is in what it printed.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { once } from "node:events"
import { fileURLToPath } from "node:url"
import { afterAll, describe, expect, it } from "vitest"
import { http, Jar } from "../../../packages/core/test/signin/helpers.ts"
import { SANDBOX_CLIENT, SANDBOX_USERS } from "../src/signIn.ts"

const SERVER = fileURLToPath(new URL("../src/server.ts", import.meta.url))

let child: ChildProcess | undefined
let output = ""

afterAll(() => {
  if (child?.exitCode === null) child.kill("SIGKILL")
})

const started = (): Promise<{ url: string; sandbox: string }> =>
  new Promise((resolve, reject) => {
    const env: NodeJS.ProcessEnv = { ...process.env, PORT: "0", HOST: "127.0.0.1" }
    for (const name of Object.keys(env)) {
      if (/^(WEX|WEALTHCARE)_|^APP_URL$|^REDIS_URL$|^TOKEN_ENCRYPTION_KEYS$/.test(name)) delete env[name]
    }
    child = spawn(process.execPath, [SERVER], { env, stdio: ["ignore", "pipe", "pipe"] })
    const timer = setTimeout(() => reject(new Error(`the server did not start:\n${output}`)), 30_000)
    const onData = (chunk: Buffer) => {
      output += chunk.toString("utf8")
      const url = /express-bff on (http:\/\/[^\s,]+),/.exec(output)?.[1]
      const sandbox = /WealthCare sandbox at (http:\/\/[^\s,]+) /.exec(output)?.[1]
      if (url !== undefined && sandbox !== undefined) {
        clearTimeout(timer)
        resolve({ url, sandbox })
      }
    }
    child.stdout!.on("data", onData)
    child.stderr!.on("data", (chunk: Buffer) => {
      output += chunk.toString("utf8")
    })
    child.once("exit", (code) => reject(new Error(`the server exited (${code}):\n${output}`)))
  })

describe("npm start (src/server.ts as a process, its own sandboxes)", () => {
  it("signs a user in on the sandbox's form, shows the account with the user's token, signs out, stops on SIGTERM", async () => {
    const { url, sandbox } = await started()
    const [user] = SANDBOX_USERS
    const jar = new Jar()
    const page = await jar.send(`${url}/account`, { headers: { accept: "text/html" } })
    expect(page.status).toBe(302)
    expect(page.headers.location).toBe("/auth/signin?returnTo=%2Faccount")
    const start = await jar.send(`${url}${page.headers.location}`)
    expect(start.status).toBe(302)
    const authorize = new URL(String(start.headers.location))
    expect(authorize.origin).toBe(sandbox)
    expect(authorize.searchParams.get("redirect_uri")).toBe(`${url}/auth/callback`)
    const form = await http(authorize.href)
    const requestId = /name="request" value="([^"]+)"/.exec(form.text)?.[1]
    expect(requestId).toBeTypeOf("string")
    const posted = await http(`${sandbox}/connect/authorize`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        request: requestId!,
        username: user!.username,
        password: user!.password,
        action: "approve"
      }).toString()
    })
    expect(posted.status).toBe(302)
    const back = new URL(String(posted.headers.location))
    const callback = await jar.send(back.href)
    expect(callback.status).toBe(302)
    expect(callback.headers.location).toBe("/account")
    const session = jar.cookies.get("authfetch-session")
    expect(session).toBeTypeOf("string")

    const account = await jar.send(`${url}/account`, { headers: { accept: "text/html" } })
    expect(account.status).toBe(200)
    expect(account.headers["content-security-policy"]).toMatch(/script-src 'nonce-/)
    expect(account.text).toContain(`<span id="user-name">${user!.name}</span>`)
    expect(account.text).toContain(`<dd id="api-subject">${user!.username}</dd>`)
    expect(account.text).toContain(`<dd id="api-client">${SANDBOX_CLIENT.clientId}</dd>`)
    const proxied = await jar.send(`${url}/api/user/v1/me`)
    expect(JSON.parse(proxied.text).subject).toBe(user!.username)
    // the WEX half still answers
    expect((await http(`${url}/api/summary/12345`)).status).toBe(200)

    const out = await jar.send(`${url}/auth/signout`, { method: "POST", headers: { origin: url } })
    expect(out.status).toBe(303)
    expect(jar.cookies.has("authfetch-session")).toBe(false)
    const home = await jar.send(`${url}/`)
    expect(home.text).toContain('id="signed-out"')

    child!.kill("SIGTERM")
    const [code] = await once(child!, "exit")
    expect(code).toBe(0)
    expect(output).toContain(`sign-in: signed in subject=${user!.username}`)
    expect(output).toContain(`sign-in: signed out subject=${user!.username}`)
    for (const secret of [
      session!,
      back.searchParams.get("code")!,
      back.searchParams.get("state")!,
      user!.password,
      SANDBOX_CLIENT.clientSecret
    ]) {
      expect(output).not.toContain(secret)
    }
  })
})
