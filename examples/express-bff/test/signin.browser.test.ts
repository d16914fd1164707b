/**
 * The sign-in acceptance (issue #15) in Debian's Chromium against this
 * example, started as `src/server.ts` starts it (in this process, on
 * 127.0.0.1) and pointed with `WEALTHCARE_*` variables at a WealthCare
 * sandbox of 3-second access tokens: the shared scenarios of
 * packages/core/test/signin (sign-in on the sandbox's page, refresh, revoked
 * refresh token, sign-out, two users, the attacks, the leak scan).
 *
 * Needs Chromium at /usr/bin/chromium: without it these tests fail, on purpose.
 */
import { type Sandbox, type SandboxClient, type SandboxUser, startSandbox } from "@authfetch/sandbox"
import { describeSignInScenarios } from "../../../packages/core/test/signin/scenarios.ts"
import type { SignInApp } from "../../../packages/core/test/signin/types.ts"
import { start } from "../src/server.ts"
import { captureOutput, launchChromium, recordingStore } from "./support.ts"

const TOKEN_TTL_SECONDS = 3

const USERS: readonly [SandboxUser, SandboxUser] = [
  { username: "ada", password: "ada-correct-horse-7c1f", name: "Ada Lovelace", email: "ada@example.com" },
  {
    username: "linus",
    password: "linus-battery-staple-2e9b",
    name: "Linus Pauling",
    email: "linus@example.com"
  }
]

const CLIENT: SandboxClient = {
  clientId: "express-bff-test",
  clientSecret: "express-bff-test-secret-4a7d90c2e1",
  scopes: ["openid", "profile", "email", "offline_access", "bensoft_api"],
  grants: ["authorization_code", "refresh_token"],
  redirectUris: ["http://127.0.0.1/auth/callback"]
}

const startExample = async (): Promise<SignInApp> => {
  const output = captureOutput()
  let sandbox: Sandbox | undefined
  try {
    sandbox = await startSandbox({
      profile: "wealthcare",
      users: [...USERS],
      clients: [CLIENT],
      tokenTtl: TOKEN_TTL_SECONDS,
      tokenRateLimit: false
    })
    const store = recordingStore()
    const started = await start({
      // the real provider's variables, pointed at the sandbox; the WEX part on its own sandbox
      env: {
        WEALTHCARE_CLIENT_ID: CLIENT.clientId,
        WEALTHCARE_CLIENT_SECRET: CLIENT.clientSecret,
        WEALTHCARE_ISSUER: sandbox.issuer,
        WEALTHCARE_BASE_URL: sandbox.baseUrl
      },
      log: (line) => output.lines.push(line),
      // a logger that prints every error's message: none may hold a secret
      onError: (error) => output.lines.push(String(error)),
      sessionStore: store.layer
    })
    const wealthcare = sandbox
    return {
      name: "express-bff",
      url: started.url,
      paths: {
        signIn: "/auth/signin",
        callback: "/auth/callback",
        signOut: "/auth/signout",
        proxy: "/api/user",
        serverPage: "/account",
        scriptPage: "/app"
      },
      cookieName: started.sessions.cookieName,
      sandbox: wealthcare,
      tokenTtlSeconds: TOKEN_TTL_SECONDS,
      users: USERS,
      output: () => output.lines.join("\n"),
      secrets: () => [CLIENT.clientSecret, ...store.secrets()],
      storeKeys: () => store.liveKeys(),
      close: async () => {
        await started.close()
        await wealthcare.close()
        output.stop()
      }
    }
  } catch (error) {
    await sandbox?.close()
    output.stop()
    throw error
  }
}

describeSignInScenarios({ start: startExample, launch: launchChromium })
