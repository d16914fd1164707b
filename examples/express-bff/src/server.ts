/**
 * Starts the BFF. By default against `@authfetch/sandbox` (WEX profile) in
 * this process; with `WEX_CLIENT_ID` set, against the real provider, from the
 * variables `fromEnv("WEX")` reads (`WEX_CLIENT_ID`, `WEX_CLIENT_SECRET`,
 * `WEX_ENVIRONMENT`, `WEX_TOKEN_URL`, `WEX_BASE_URL`).
 *
 *   node src/server.ts            # PORT=3000, HOST=127.0.0.1 by default
 */
import type { AddressInfo } from "node:net"
import { fileURLToPath } from "node:url"
import { createTokenSource } from "@authfetch/core"
import { fromEnv } from "@authfetch/core/providers"
import { DEFAULT_CLIENT, type Sandbox, startSandbox } from "@authfetch/sandbox"
import { createApp } from "./app.ts"

export interface Started {
  /** `http://127.0.0.1:PORT` */
  readonly url: string
  /** the sandbox, when one was started */
  readonly sandbox: Sandbox | undefined
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
  const sandbox = real ? undefined : await startSandbox({ profile: "wex" })
  const config = real ? fromEnv("WEX") : undefined
  const tokens = createTokenSource(
    config ?? {
      tokenUrl: sandbox!.tokenUrl,
      clientId: DEFAULT_CLIENT.clientId,
      clientSecret: DEFAULT_CLIENT.clientSecret
    }
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
    sandbox,
    close: async () => {
      await new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      })
      await tokens.dispose()
      await sandbox?.close()
    }
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const started = await start({ port: Number(process.env.PORT ?? 3000), host: process.env.HOST })
  const upstream = started.sandbox
    ? `the sandbox at ${started.sandbox.url} (set WEX_CLIENT_ID and WEX_CLIENT_SECRET to call WEX instead)`
    : "WEX"
  console.log(`express-bff on ${started.url}, calling ${upstream}`)
  console.log(`  GET  ${started.url}/api/summary/12345`)
  console.log(`  GET  ${started.url}/api/benefits/v1/consumers/12345`)
  console.log(`  GET  ${started.url}/api/benefits/v1/claims?page=1&pageSize=5`)
  const stop = () => {
    void started.close().then(() => process.exit(0))
  }
  process.once("SIGINT", stop)
  process.once("SIGTERM", stop)
}
