/**
 * The app's one place for signing users in (WealthCare, authorization code +
 * PKCE, OpenID Connect): the process's sessions across `next dev` reloads,
 * configured from the environment at the first request (never at
 * `next build`, so the build needs none of these):
 *
 *   WEALTHCARE_CLIENT_ID       required: this app's client
 *   WEALTHCARE_CLIENT_SECRET   its secret (a confidential client)
 *   WEALTHCARE_BASE_URL        required: the API the signed-in pages call (WealthCare documents none)
 *   WEALTHCARE_ISSUER          default https://beta.auth.wealthcare.com (discovery and `iss` checks)
 *   WEALTHCARE_SCOPE           default "openid profile email offline_access bensoft_api"
 *   WEALTHCARE_REDIRECT_URI    default `${APP_URL}/auth/callback`: register it with the provider
 *   APP_URL                    this app's origin as browsers reach it (http://localhost:3000)
 *
 * Errors name the variables, never their values. Server-only (it imports
 * `@authfetch/next`).
 */
import { InvalidConfigError } from "@authfetch/core"
import { signInFromEnv } from "@authfetch/core/providers"
import { userSessions } from "@authfetch/next"

/** What the app asks for: an ID token with name and email, a refresh token, the API. */
export const SCOPE = "openid profile email offline_access bensoft_api"

const missing = (names: ReadonlyArray<string>) =>
  new InvalidConfigError({ problems: [`missing environment variables: ${names.join(", ")}`] })

const variable = (name: string): string | undefined => {
  const value = process.env[name]?.trim()
  return value === undefined || value === "" ? undefined : value
}

/** The sessions' configuration from the environment; throws `InvalidConfigError` naming what is missing. */
export const signInConfig = () => {
  const appUrl = variable("APP_URL")
  if (variable("WEALTHCARE_REDIRECT_URI") === undefined && appUrl === undefined) {
    throw missing(["APP_URL (or WEALTHCARE_REDIRECT_URI)"])
  }
  return signInFromEnv("WEALTHCARE", {
    overrides: {
      ...(variable("WEALTHCARE_REDIRECT_URI")
        ? {}
        : { redirectUri: `${appUrl!.replace(/\/+$/, "")}/auth/callback` }),
      ...(variable("WEALTHCARE_SCOPE") ? {} : { scope: SCOPE }),
      afterSignOut: "/signed-out"
    }
  })
}

/** The API the signed-in pages and the per-user proxy call. */
export const apiBaseUrl = (): string => {
  const base = variable("WEALTHCARE_BASE_URL")
  if (base === undefined) throw missing(["WEALTHCARE_BASE_URL (the API the signed-in pages call)"])
  return base
}

/** One sessions handle per process, whichever route or page asks, reloads included. */
export const sessions = userSessions(signInConfig)
