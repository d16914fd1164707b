/**
 * `sandboxes.mjs`, the README's way to run the example locally: both
 * sandboxes start, the variables it prints configure them, the WealthCare
 * one accepts this app's callback on localhost (its sign-in page opens for
 * `http://localhost:3000/auth/callback`), and SIGTERM stops it.
 */
import { spawn } from "node:child_process"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { APP_DIR } from "./app.ts"

describe("sandboxes.mjs", () => {
  it("starts both sandboxes, prints the variables, accepts the app's callback, stops on SIGTERM", async () => {
    const child = spawn(process.execPath, [join(APP_DIR, "sandboxes.mjs")], {
      cwd: APP_DIR,
      env: { ...process.env, WEX_SANDBOX_PORT: "0", WEALTHCARE_SANDBOX_PORT: "0" },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let output = ""
    child.stdout.on("data", (chunk) => (output += chunk))
    child.stderr.on("data", (chunk) => (output += chunk))
    const exited = new Promise<number | null>((resolve) => child.once("exit", resolve))
    try {
      const deadline = Date.now() + 20_000
      while (!output.includes("APP_URL=")) {
        if (child.exitCode !== null || Date.now() > deadline) throw new Error(`sandboxes.mjs:\n${output}`)
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
      const env = Object.fromEntries(
        [...output.matchAll(/\b([A-Z_]+)=(\S+)/g)].map((match) => [match[1]!, match[2]!])
      )
      expect(Object.keys(env)).toEqual(
        expect.arrayContaining([
          "WEX_CLIENT_ID",
          "WEX_TOKEN_URL",
          "WEALTHCARE_CLIENT_ID",
          "WEALTHCARE_CLIENT_SECRET",
          "WEALTHCARE_ISSUER",
          "WEALTHCARE_BASE_URL",
          "APP_URL"
        ])
      )
      const token = await fetch(env.WEX_TOKEN_URL!, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({
          grant_type: "client_credentials",
          client_id: env.WEX_CLIENT_ID!,
          client_secret: env.WEX_CLIENT_SECRET!
        })
      })
      expect(token.status).toBe(200)
      const authorize = new URL(`${env.WEALTHCARE_ISSUER}/connect/authorize`)
      authorize.search = new URLSearchParams({
        response_type: "code",
        client_id: env.WEALTHCARE_CLIENT_ID!,
        redirect_uri: `${env.APP_URL}/auth/callback`,
        scope: "openid profile email offline_access bensoft_api",
        state: "s".repeat(43),
        code_challenge: "c".repeat(43),
        code_challenge_method: "S256"
      }).toString()
      const page = await fetch(authorize)
      expect(page.status).toBe(200)
      expect(await page.text()).toContain("alice")
    } finally {
      child.kill("SIGTERM")
    }
    expect(await exited).toBe(0)
  })
})
