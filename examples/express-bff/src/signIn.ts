/**
 * Where users sign in: by default a WealthCare sandbox started in this
 * process (its sign-in page, two test users, tokens of five minutes); with
 * `WEALTHCARE_CLIENT_ID` set, the real WealthCare Access (or any server with
 * `/connect/*` endpoints) from these variables:
 *
 *   WEALTHCARE_CLIENT_ID       required: your client
 *   WEALTHCARE_CLIENT_SECRET   its secret (a confidential client)
 *   WEALTHCARE_BASE_URL        required: the API's base URL (WealthCare documents none)
 *   WEALTHCARE_ISSUER          default https://beta.auth.wealthcare.com (discovery and `iss` checks)
 *   WEALTHCARE_SCOPE           default "openid profile email offline_access bensoft_api"
 *   WEALTHCARE_REDIRECT_URI    default `${APP_URL}/auth/callback`: register it with the provider
 *   APP_URL                    this app's origin as browsers reach it; default the address it listens on
 *
 * Errors name the variables, never their values.
 */
import { InvalidConfigError, type UserSessionsConfig } from "@authfetch/core"
import { signInFromEnv } from "@authfetch/core/providers"
import { type Sandbox, type SandboxClient, type SandboxUser, startSandbox } from "@authfetch/sandbox"

/** What the app asks for: an ID token with name and email, a refresh token, the API. */
export const SCOPE = "openid profile email offline_access bensoft_api"

/** The sandbox's users: sign in as either on its page (it lists them). */
export const SANDBOX_USERS: ReadonlyArray<SandboxUser> = [
  { username: "grace", password: "grace-sandbox-password", name: "Grace Silva", email: "grace@example.com" },
  { username: "alan", password: "alan-sandbox-password", name: "Alan Moss", email: "alan@example.com" }
]

/** This app at the sandbox: the callback on any loopback port (RFC 8252 7.3: the port may vary). */
export const SANDBOX_CLIENT: SandboxClient = {
  clientId: "express-bff",
  clientSecret: "express-bff-sandbox-secret",
  scopes: SCOPE.split(" "),
  grants: ["authorization_code", "refresh_token"],
  redirectUris: ["http://127.0.0.1/auth/callback", "http://localhost/auth/callback"]
}

export interface SignInSetup {
  readonly config: UserSessionsConfig
  /** the API the signed-in pages and the per-user proxy call */
  readonly baseUrl: string
  /** the sandbox started here, if one was */
  readonly sandbox: Sandbox | undefined
}

/**
 * The sessions' configuration for an app reachable at `appUrl`: from the
 * environment when `WEALTHCARE_CLIENT_ID` is set, else over a WealthCare
 * sandbox started now (`tokenTtl` seconds, default 300).
 */
export const signInSetup = async (
  appUrl: string,
  options: {
    readonly env?: NodeJS.ProcessEnv | undefined
    readonly sandbox?: boolean | undefined
    readonly tokenTtl?: number | undefined
    readonly onEvent?: UserSessionsConfig["onEvent"]
  } = {}
): Promise<SignInSetup> => {
  const env = options.env ?? process.env
  const origin = (env.APP_URL ?? appUrl).replace(/\/+$/, "")
  if (options.sandbox !== true && env.WEALTHCARE_CLIENT_ID) {
    const baseUrl = env.WEALTHCARE_BASE_URL
    if (baseUrl === undefined || baseUrl.trim() === "") {
      throw new InvalidConfigError({
        problems: ["missing environment variables: WEALTHCARE_BASE_URL (the API the signed-in pages call)"]
      })
    }
    const config = signInFromEnv("WEALTHCARE", {
      env,
      overrides: {
        ...(env.WEALTHCARE_REDIRECT_URI ? {} : { redirectUri: `${origin}/auth/callback` }),
        ...(env.WEALTHCARE_SCOPE ? {} : { scope: SCOPE }),
        onEvent: options.onEvent
      }
    })
    return { config, baseUrl: baseUrl.trim(), sandbox: undefined }
  }
  const sandbox = await startSandbox({
    profile: "wealthcare",
    users: [...SANDBOX_USERS],
    clients: [SANDBOX_CLIENT],
    tokenTtl: options.tokenTtl ?? 300
  })
  return {
    config: {
      issuer: sandbox.issuer!,
      clientId: SANDBOX_CLIENT.clientId,
      clientSecret: SANDBOX_CLIENT.clientSecret,
      scope: SCOPE,
      redirectUri: `${origin}/auth/callback`,
      onEvent: options.onEvent
    },
    baseUrl: sandbox.baseUrl,
    sandbox
  }
}
