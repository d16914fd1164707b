/**
 * Starts the BFF. By default against `@authfetch/sandbox` (WEX profile) in
 * this process; with `WEX_CLIENT_ID` set, against the real provider, from the
 * variables `fromEnv("WEX")` reads (`WEX_CLIENT_ID`, `WEX_CLIENT_SECRET`,
 * `WEX_ENVIRONMENT`, `WEX_TOKEN_URL`, `WEX_BASE_URL`). With `REDIS_URL` (and
 * `TOKEN_ENCRYPTION_KEYS`) set, the token is shared with every other instance
 * through Redis (`src/store.ts`).
 *
 * Users sign in with WealthCare: by default a WealthCare sandbox started in
 * this process; with `WEALTHCARE_CLIENT_ID` set, the real provider
 * (`src/signIn.ts` lists the variables). The sessions live in this process's
 * memory.
 *
 *   node src/server.ts            # PORT=3000, HOST=127.0.0.1 by default
 */
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { fileURLToPath } from "node:url"
import {
  createTokenSource,
  createUserSessions,
  InvalidConfigError,
  type SessionEvent,
  type SessionStore,
  type UserSessionsHandle
} from "@authfetch/core"
import { fromEnv } from "@authfetch/core/providers"
import { DEFAULT_CLIENT, type Sandbox, startSandbox } from "@authfetch/sandbox"
import type { Layer } from "effect"
import { createApp } from "./app.ts"
import { SANDBOX_USERS, signInSetup } from "./signIn.ts"
import { storeFromEnv } from "./store.ts"

export interface Started {
  /** `http://127.0.0.1:PORT` */
  readonly url: string
  /** the API's base URL (the provider's, or the sandbox's) */
  readonly baseUrl: string
  /** the sandbox, when one was started */
  readonly sandbox: Sandbox | undefined
  /** where the token lives: `redis` (shared, REDIS_URL) or `memory` (this process) */
  readonly store: "redis" | "memory"
  /** the signed-in users' sessions */
  readonly sessions: UserSessionsHandle
  /** the WealthCare sandbox users sign in with, when one was started */
  readonly wealthcare: Sandbox | undefined
  close(): Promise<void>
}

/** One line per sign-in, sign-out, refusal and ended session: digests and usernames, never a token or an id. */
export const sessionLogLine = (event: SessionEvent): string | undefined => {
  const session = "session" in event ? ` session=${event.session.slice(0, 12)}` : ""
  const subject = "subject" in event && event.subject !== undefined ? ` subject=${event.subject}` : ""
  switch (event.type) {
    case "signed_in":
      return `sign-in: signed in${subject}${session} (${event.grantType})`
    case "sign_in_failed":
      return `sign-in: refused (${event.reason}${event.code === undefined ? "" : ` ${event.code}`})`
    case "signed_out":
      return `sign-in: signed out${subject}${session}${event.revoked ? ", refresh token revoked" : ""}`
    case "session_ended":
      return `sign-in: session ended${subject}${session} (${event.reason})`
    case "session_refresh_failed":
    case "revocation_failed":
      return `sign-in: ${event.type.replace(/_/g, " ")}${session} (${event.error}${event.code === undefined ? "" : ` ${event.code}`})`
    default:
      return undefined
  }
}

export const start = async (options: {
  readonly port?: number
  /** default `127.0.0.1` */
  readonly host?: string | undefined
  /** use the sandbox even if WEX_CLIENT_ID is set */
  readonly sandbox?: boolean
  readonly onError?: (error: unknown) => void
  /** where the server's lines go (sign-ins, sign-outs, refusals); default `console.log` */
  readonly log?: ((line: string) => void) | undefined
  /** the variables to read; default `process.env` */
  readonly env?: NodeJS.ProcessEnv | undefined
  /** the sandbox's access-token lifetime in seconds (tests: short), when it starts one */
  readonly tokenTtl?: number | undefined
  /** where the sessions live (tests: a store they can look into); default this process's memory */
  readonly sessionStore?: Layer.Layer<SessionStore.SessionStore> | undefined
}): Promise<Started> => {
  const env = options.env ?? process.env
  const log = options.log ?? ((line: string) => console.log(line))
  const real = options.sandbox !== true && Boolean(env.WEX_CLIENT_ID)
  // Configuration first (it may throw), then what has to be closed.
  const config = real ? fromEnv("WEX", { env }) : undefined
  const store = storeFromEnv(env)
  const sandbox = real ? undefined : await startSandbox({ profile: "wex" })
  const tokens = createTokenSource(
    config ?? {
      tokenUrl: sandbox!.tokenUrl,
      clientId: DEFAULT_CLIENT.clientId,
      clientSecret: DEFAULT_CLIENT.clientSecret
    },
    { store }
  )
  const baseUrl = config?.baseUrl ?? sandbox!.baseUrl
  // Listening first: the sign-in's redirect URI is this server's address (unless APP_URL says).
  const host = options.host ?? "127.0.0.1"
  const server = createServer()
  server.listen(options.port ?? 0, host)
  await new Promise<void>((resolve, reject) => {
    server.once("listening", resolve)
    server.once("error", reject)
  })
  const url = `http://${host.includes(":") ? `[${host}]` : host}:${(server.address() as AddressInfo).port}`
  const signIn = await signInSetup(url, {
    env,
    sandbox: options.sandbox,
    tokenTtl: options.tokenTtl,
    onEvent: (event) => {
      const line = sessionLogLine(event)
      if (line !== undefined) log(line)
    }
  })
  const sessions = createUserSessions(signIn.config, { store: options.sessionStore })
  const app = createApp({
    tokens,
    baseUrl,
    onError: options.onError,
    signIn: { sessions, baseUrl: signIn.baseUrl }
  })
  server.on("request", app)
  return {
    url,
    baseUrl,
    sandbox,
    store: store === undefined ? "memory" : "redis",
    sessions,
    wealthcare: signIn.sandbox,
    close: async () => {
      await new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      })
      // The token sources first, then the store's Redis connections.
      await tokens.dispose()
      await sessions.dispose()
      await store?.close()
      await Promise.all([sandbox?.close(), signIn.sandbox?.close()])
    }
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const started = await start({ port: Number(process.env.PORT ?? 3000), host: process.env.HOST }).catch(
    (error: unknown) => {
      // A configuration problem (missing variables, a bad key): the message, which names the
      // variables and never their values; anything else with its stack.
      console.error(error instanceof InvalidConfigError ? `express-bff: ${error.message}` : error)
      process.exit(1)
    }
  )
  const upstream = started.sandbox
    ? `the sandbox at ${started.sandbox.url} (set WEX_CLIENT_ID and WEX_CLIENT_SECRET to call WEX instead)`
    : `WEX at ${new URL(started.baseUrl).origin}`
  const store =
    started.store === "redis" ? "tokens shared through Redis (REDIS_URL)" : "tokens in this process's memory"
  console.log(`express-bff on ${started.url}, calling ${upstream}; ${store}`)
  console.log(`  GET  ${started.url}/api/summary/12345`)
  console.log(`  GET  ${started.url}/api/benefits/v1/consumers/12345`)
  console.log(`  GET  ${started.url}/api/benefits/v1/claims?page=1&pageSize=5`)
  const signInAt = started.wealthcare
    ? `the WealthCare sandbox at ${started.wealthcare.url} (users: ${SANDBOX_USERS.map((u) => u.username).join(", ")}; set WEALTHCARE_CLIENT_ID to use WealthCare)`
    : "WealthCare"
  console.log(`  open ${started.url}/account to sign in with ${signInAt}`)
  const stop = () => {
    void started.close().then(() => process.exit(0))
  }
  process.once("SIGINT", stop)
  process.once("SIGTERM", stop)
}
