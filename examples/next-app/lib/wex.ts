/**
 * The app's one place for WEX credentials (Node.js runtime): one token source
 * per process for the whole app (route handlers, the proxy, server
 * components), across `next dev` reloads, configured from the environment at
 * the first request (never at build time; `lib/config.ts`). With `REDIS_URL`
 * set, every instance of the app shares that token through Redis
 * (`lib/store.ts`). Server-only: `@authfetch/next` cannot be imported by
 * client code. The Edge route makes its own source (`lib/config.ts` only):
 * the Edge runtime cannot reach Redis.
 */
import { createAuthFetch, tokenSource } from "@authfetch/next"
import { baseUrl, wexConfig } from "./config"
import { storeFromEnv } from "./store"

export { baseUrl, wexConfig }

export const tokens = tokenSource(wexConfig, { store: storeFromEnv() })

/** For server components: the core's authFetch against the WEX API. */
export const wexApi = createAuthFetch(() => ({ tokens, baseUrl: baseUrl() }))
