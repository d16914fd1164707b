/**
 * The app's one place for WEX credentials: read from the environment at the
 * first request (never at build time), one token source per process for the
 * whole app (route handlers, the proxy, server components), across `next dev`
 * reloads. Server-only: `@authfetch/next` cannot be imported by client code.
 *
 *   WEX_CLIENT_ID, WEX_CLIENT_SECRET      the client credentials
 *   WEX_TOKEN_URL, WEX_BASE_URL       override the UAT URLs (e.g. a local sandbox)
 *   WEX_ENVIRONMENT                       uat (default) or production
 */
import { fromEnv } from "@authfetch/core/providers"
import { createAuthFetch, tokenSource } from "@authfetch/next"

/** The preset from the environment; throws `InvalidConfigError` naming what is missing. */
export const wexConfig = () => fromEnv("WEX")

/** The API's base URL (the preset's, or `WEX_BASE_URL`). */
export const baseUrl = (): string => {
  const base = wexConfig().baseUrl
  if (base === undefined) throw new Error("WEX_BASE_URL is not set")
  return base
}

export const tokens = tokenSource(wexConfig)

/** For server components: the core's authFetch against the WEX API. */
export const wexApi = createAuthFetch(() => ({ tokens, baseUrl: baseUrl() }))
