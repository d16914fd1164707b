/**
 * Per-user sign-in in the example app, built by `next build` (globalSetup)
 * and served by `next start`, against a WealthCare sandbox with 2-second
 * tokens, in Debian's Chromium: the acceptance scenarios of issue #15
 * (test/signin/scenarios.ts) through the app's pages (`/account`, a server
 * component with a client component), its sign-in route
 * (`app/auth/[action]/route.ts`) and its per-user proxy
 * (`app/api/user/[...path]/route.ts`).
 *
 * A recording front sits between the app and the sandbox's token endpoint
 * and API (the browser goes to the sandbox's sign-in page directly): it
 * captures every token issued (the sandbox keeps fingerprints only) for the
 * leak scan of the server's output, the pages, every answer the browsers got
 * and the whole `.next` directory.
 */
import { readdirSync, readFileSync, statSync } from "node:fs"
import { join } from "node:path"
import { type Sandbox, startSandbox } from "@authfetch/sandbox"
import { afterAll, beforeAll, inject } from "vitest"
import { type Front, startFront } from "../../../packages/next/test/support.ts"
import { APP_DIR, type App, startApp } from "./app.ts"
import { launchChromium } from "./browser.ts"
import { describeSignInScenarios, type SignInApp, type SignInUser } from "./signin/scenarios.ts"

const TOKEN_TTL = 2
const CLIENT_ID = "next-app"
const clientSecret = inject("wealthcareSecret")
const USERS: readonly [SignInUser & { email: string }, SignInUser & { email: string }] = [
  {
    username: "alice",
    password: "alice-sandbox-password",
    name: "Alice Example",
    email: "alice@example.com"
  },
  { username: "bob", password: "bob-sandbox-password", name: "Bob Example", email: "bob@example.com" }
]

let sandbox: Sandbox
let front: Front
let app: App
let target: SignInApp

const filesUnder = (dir: string): Array<string> =>
  readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    return statSync(path).isDirectory() ? filesUnder(path) : [path]
  })

beforeAll(async () => {
  sandbox = await startSandbox({
    profile: "wealthcare",
    tokenTtl: TOKEN_TTL,
    users: [...USERS],
    clients: [{ clientId: CLIENT_ID, clientSecret, redirectUris: ["http://127.0.0.1/auth/callback"] }]
  })
  front = await startFront(sandbox.url)
  app = await startApp((url) => ({
    WEALTHCARE_CLIENT_ID: CLIENT_ID,
    WEALTHCARE_CLIENT_SECRET: clientSecret,
    WEALTHCARE_ISSUER: sandbox.issuer!,
    // the token endpoint and the API through the front (the browser signs in at the sandbox itself)
    WEALTHCARE_TOKEN_URL: `${front.url}/connect/token`,
    WEALTHCARE_BASE_URL: `${front.url}/api`,
    APP_URL: url
  }))
  target = {
    url: app.url,
    paths: {
      account: "/account",
      signIn: "/auth/signin",
      callback: "/auth/callback",
      signOut: "/auth/signout",
      signedOut: "/signed-out",
      proxy: "/api/user"
    },
    cookieName: "authfetch-session",
    sandbox,
    users: USERS,
    tokenTtl: TOKEN_TTL,
    page: {
      userName: "user-name",
      serverSubject: "server-subject",
      clientSubject: "client-subject",
      claimId: "claim-id",
      askAgain: "Ask again",
      submitClaim: "Submit a claim",
      signOut: "Sign out"
    },
    secrets: () => [clientSecret, ...front.tokens],
    output: () => app.output(),
    files: () =>
      filesUnder(join(APP_DIR, ".next")).map((file) => ({ where: file, text: readFileSync(file, "latin1") }))
  }
})
afterAll(async () => {
  await app?.stop()
  await Promise.all([front?.close(), sandbox?.close()])
})

describeSignInScenarios("next start", () => target, launchChromium)
