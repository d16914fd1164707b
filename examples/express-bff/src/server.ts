/**
 * Starts the BFF. By default against `@authfetch/sandbox` (WEX profile) in
 * this process; with `WEX_CLIENT_ID` set, against the real provider, from the
 * variables `fromEnv("WEX")` reads (`WEX_CLIENT_ID`, `WEX_CLIENT_SECRET`,
 * `WEX_ENVIRONMENT`, `WEX_TOKEN_URL`, `WEX_BASE_URL`). With `REDIS_URL` (and
 * `TOKEN_ENCRYPTION_KEYS`) set, the token is shared with every other instance
 * through Redis (`src/store.ts`).
 *
 *   node src/server.ts            # PORT=3000, HOST=127.0.0.1 by default
 */
import type { AddressInfo } from "node:net"
import { fileURLToPath } from "node:url"
import { createTokenSource, InvalidConfigError } from "@authfetch/core"
import { fromEnv } from "@authfetch/core/providers"
import { DEFAULT_CLIENT, type Sandbox, startSandbox } from "@authfetch/sandbox"
import { createApp } from "./app.ts"
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
  close(): Promise<void>
}

export const start = async (options: {
  readonly port?: number
  /** default `127.0.0.1` */
  readonly host?: string | undefined
  /** use the sandbox even if WEX_CLIENT_ID is set */
  readonly sandbox?: boolean
  readonly onError?: (error: unknown) => void
}): Promise<Started> => {
  const real = options.sandbox !== true && Boolean(process.env.WEX_CLIENT_ID)
  // Configuration first (it may throw), then what has to be closed.
  const config = real ? fromEnv("WEX") : undefined
  const store = storeFromEnv()
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
  const app = createApp({ tokens, baseUrl, onError: options.onError })
  const host = options.host ?? "127.0.0.1"
  const server = app.listen(options.port ?? 0, host)
  await new Promise<void>((resolve, reject) => {
    server.once("listening", resolve)
    server.once("error", reject)
  })
  const url = `http://${host.includes(":") ? `[${host}]` : host}:${(server.address() as AddressInfo).port}`
  return {
    url,
    baseUrl,
    sandbox,
    store: store === undefined ? "memory" : "redis",
    close: async () => {
      await new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      })
      // The token sources first, then the store's Redis connections.
      await tokens.dispose()
      await store?.close()
      await sandbox?.close()
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
  const stop = () => {
    void started.close().then(() => process.exit(0))
  }
  process.once("SIGINT", stop)
  process.once("SIGTERM", stop)
}
