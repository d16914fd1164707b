/**
 * Per-user sign-in in the example app, built by `next build` (globalSetup)
 * and served by `next start`, against a WealthCare sandbox of 3-second
 * access tokens, in Debian's Chromium: the acceptance scenarios of issue #15
 * shared with the Express example (packages/core/test/signin: sign-in on the
 * sandbox's page, refresh across four lifetimes, a revoked refresh token,
 * sign-out with revocation, two users x 50 proxied calls, every attack
 * refused with nothing stored, the leak scan) through the app's pages
 * (`/account`, a server component; `/proxy-check`, whose client component
 * calls the per-user proxy `/api/user`) and its sign-in route
 * (`app/auth/[action]/route.ts`).
 *
 * The app is configured as its README says, with `WEALTHCARE_*` and
 * `APP_URL`. A recording front sits between the app and the sandbox's token
 * endpoint (the browser goes to the sandbox's sign-in page itself): it
 * captures every token issued (the sandbox keeps fingerprints only) for the
 * leak scan of the server's output, everything the browser received and the
 * whole `.next` directory (the client bundle included). `next start` runs in
 * its own process: the scenarios cannot look into its session store
 * (`storeKeys`); "nothing stored" is judged by the cookies and the answers.
 */
import { readdirSync, readFileSync, statSync } from "node:fs"
import { join } from "node:path"
import { type Sandbox, type SandboxUser, startSandbox } from "@authfetch/sandbox"
import { inject } from "vitest"
import { describeSignInScenarios } from "../../../packages/core/test/signin/scenarios.ts"
import type { SignInApp } from "../../../packages/core/test/signin/types.ts"
import { type Front, startFront } from "../../../packages/next/test/support.ts"
import { APP_DIR, type App, startApp } from "./app.ts"
import { launchChromium } from "./browser.ts"

const TOKEN_TTL_SECONDS = 3
const CLIENT_ID = "next-app"
const clientSecret = inject("wealthcareSecret")

const USERS: readonly [SandboxUser, SandboxUser] = [
  {
    username: "alice",
    password: "alice-sandbox-password-5d2e",
    name: "Alice Example",
    email: "alice@example.com"
  },
  { username: "bob", password: "bob-sandbox-password-81c3", name: "Bob Example", email: "bob@example.com" }
]

const filesUnder = (dir: string): Array<string> =>
  readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    return statSync(path).isDirectory() ? filesUnder(path) : [path]
  })

const startExample = async (): Promise<SignInApp> => {
  let sandbox: Sandbox | undefined
  let front: Front | undefined
  let app: App | undefined
  try {
    sandbox = await startSandbox({
      profile: "wealthcare",
      tokenTtl: TOKEN_TTL_SECONDS,
      tokenRateLimit: false,
      users: [...USERS],
      clients: [{ clientId: CLIENT_ID, clientSecret, redirectUris: ["http://127.0.0.1/auth/callback"] }]
    })
    front = await startFront(sandbox.url)
    const wealthcare = sandbox
    const recording = front
    app = await startApp((url) => ({
      WEALTHCARE_CLIENT_ID: CLIENT_ID,
      WEALTHCARE_CLIENT_SECRET: clientSecret,
      WEALTHCARE_ISSUER: wealthcare.issuer!,
      // the token endpoint through the front; the sign-in page and the API at the sandbox
      WEALTHCARE_TOKEN_URL: `${recording.url}/connect/token`,
      WEALTHCARE_BASE_URL: wealthcare.baseUrl,
      APP_URL: url
    }))
    const started = app
    return {
      name: "next-app",
      url: started.url,
      paths: {
        signIn: "/auth/signin",
        callback: "/auth/callback",
        signOut: "/auth/signout",
        proxy: "/api/user",
        serverPage: "/account",
        scriptPage: "/proxy-check"
      },
      cookieName: "authfetch-session",
      sandbox: wealthcare,
      tokenTtlSeconds: TOKEN_TTL_SECONDS,
      users: USERS,
      output: () => started.output(),
      secrets: () => [clientSecret, ...recording.tokens],
      files: () =>
        filesUnder(join(APP_DIR, ".next")).map((file) => ({
          where: file,
          text: readFileSync(file, "latin1")
        })),
      close: async () => {
        await started.stop()
        await Promise.all([recording.close(), wealthcare.close()])
      }
    }
  } catch (error) {
    await app?.stop()
    await Promise.all([front?.close(), sandbox?.close()])
    throw error
  }
}

describeSignInScenarios({ start: startExample, launch: launchChromium })
