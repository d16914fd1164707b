/**
 * The WEX configuration, read from the environment at the first request
 * (never at build time). Safe in both runtimes (Node.js and Edge).
 *
 *   WEX_CLIENT_ID, WEX_CLIENT_SECRET      the client credentials
 *   WEX_TOKEN_URL, WEX_BASE_URL           override the UAT URLs (e.g. a local sandbox)
 *   WEX_ENVIRONMENT                       uat (default) or production
 */
import { fromEnv } from "@authfetch/core/providers"

/** The preset from the environment; throws `InvalidConfigError` naming what is missing. */
export const wexConfig = () => fromEnv("WEX")

/** The API's base URL (the preset's, or `WEX_BASE_URL`). */
export const baseUrl = (): string => {
  const base = wexConfig().baseUrl
  if (base === undefined) throw new Error("WEX_BASE_URL is not set")
  return base
}
