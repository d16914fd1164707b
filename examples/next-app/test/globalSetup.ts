/**
 * Builds the app once for the end-to-end tests, with the client ids and
 * secrets (WEX and WealthCare) the tests will use in the environment: if
 * anything inlined them into the client bundle, the bundle scans would find
 * them. Nothing needs them at build time (the configurations are read at the
 * first request).
 */
import { spawnSync } from "node:child_process"
import { randomUUID } from "node:crypto"
import type { TestProject } from "vitest/node"
import { APP_DIR, NEXT_BIN } from "./app.ts"

declare module "vitest" {
  interface ProvidedContext {
    clientSecret: string
    wealthcareSecret: string
    buildSeconds: number
  }
}

export default function setup(project: TestProject) {
  const clientSecret = `next-app-secret-${randomUUID()}`
  const wealthcareSecret = `next-app-wealthcare-secret-${randomUUID()}`
  const started = Date.now()
  const build = spawnSync(process.execPath, [NEXT_BIN, "build"], {
    cwd: APP_DIR,
    encoding: "utf8",
    env: {
      ...process.env,
      NEXT_TELEMETRY_DISABLED: "1",
      WEX_CLIENT_ID: "next-app",
      WEX_CLIENT_SECRET: clientSecret,
      WEX_TOKEN_URL: "http://127.0.0.1:9/authorize",
      WEX_BASE_URL: "http://127.0.0.1:9/api",
      // The WealthCare secret only: the build must not need the sign-in's configuration (reading it
      // would fail on WEALTHCARE_CLIENT_ID, APP_URL, ... missing), and must not inline the secret.
      WEALTHCARE_CLIENT_SECRET: wealthcareSecret,
      WEALTHCARE_CLIENT_ID: "",
      WEALTHCARE_BASE_URL: "",
      APP_URL: ""
    }
  })
  if (build.status !== 0) {
    throw new Error(`next build failed (${build.status}):\n${build.stdout}\n${build.stderr}`)
  }
  const buildSeconds = (Date.now() - started) / 1000
  console.log(`next build: ${buildSeconds.toFixed(1)} s`)
  project.provide("clientSecret", clientSecret)
  project.provide("wealthcareSecret", wealthcareSecret)
  project.provide("buildSeconds", buildSeconds)
}
