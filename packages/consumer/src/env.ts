/**
 * The environment every snippet runs with: the variables `fromEnv("WEX")` and
 * `fromEnv("WEALTHCARE")` read (packages/core/src/providers/env.ts), pointing at sandboxes started
 * by the test. The one place that maps them: when a variable is renamed, change it here.
 */

/** What the table needs of a running sandbox (`startSandbox` of @authfetch/sandbox). */
export interface SandboxLike {
  /** `http://127.0.0.1:<port>` */
  readonly url: string
  readonly tokenUrl: string
  readonly clients: ReadonlyArray<{ readonly clientId: string; readonly clientSecret: string }>
}

/** The sandbox's API base: `${url}/api` (packages/sandbox/README.md). */
export const apiOf = (sandbox: SandboxLike): string => `${sandbox.url}/api`

/** Where @authfetch/redis's snippets find Redis (a redis-server the test starts). */
export interface RedisLike {
  readonly url: string
}

/** A fixed, test-only encryption key (32 bytes, base64): it seals nothing but the test's tokens. */
const TEST_ENCRYPTION_KEY = Buffer.alloc(32, 7).toString("base64")

export const snippetEnv = (
  wex: SandboxLike,
  wealthcare: SandboxLike,
  redis: RedisLike
): Record<string, string> => {
  const wexClient = wex.clients[0]!
  const wealthcareClient = wealthcare.clients[0]!
  return {
    WEX_CLIENT_ID: wexClient.clientId,
    WEX_CLIENT_SECRET: wexClient.clientSecret,
    WEX_ENVIRONMENT: "uat",
    WEX_TOKEN_URL: wex.tokenUrl,
    WEX_BASE_URL: apiOf(wex),

    WEALTHCARE_CLIENT_ID: wealthcareClient.clientId,
    WEALTHCARE_CLIENT_SECRET: wealthcareClient.clientSecret,
    WEALTHCARE_TOKEN_URL: wealthcare.tokenUrl,
    WEALTHCARE_BASE_URL: apiOf(wealthcare),
    // signInFromEnv("WEALTHCARE") (sign-in snippets): the sandbox is its own issuer
    WEALTHCARE_ISSUER: wealthcare.url,
    WEALTHCARE_REDIRECT_URI: "http://127.0.0.1:3000/auth/callback",
    WEALTHCARE_SCOPE: "openid profile offline_access bensoft_api",

    REDIS_URL: redis.url,
    TOKEN_ENCRYPTION_KEYS: TEST_ENCRYPTION_KEY,

    // servers (`ts server` snippets) listen on a free port
    PORT: "0",
    HOST: "127.0.0.1"
  }
}
