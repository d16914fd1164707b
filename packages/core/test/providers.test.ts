/**
 * Provider presets: their shape against what WEX and WealthCare document,
 * overrides, `fromEnv` errors (all problems at once, no secret in any rendering)
 * and the token requests they make against a real token endpoint.
 */
import { inspect } from "node:util"
import { Redacted } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { createTokenSource, Grant, InvalidConfigError } from "../src/index.ts"
import { fromEnv, type ProviderConfig, wealthcare, wex } from "../src/providers/index.ts"
import {
  issueToken,
  type RecordedRequest,
  startTokenServer,
  type TokenServer
} from "./support/tokenServer.ts"

const reveal = (secret: unknown): unknown => (Redacted.isRedacted(secret) ? Redacted.value(secret) : secret)

/** Runs `f`, which must throw `InvalidConfigError`, and returns the error. */
const configError = (f: () => unknown): InvalidConfigError => {
  try {
    f()
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidConfigError)
    return error as InvalidConfigError
  }
  throw new Error("expected an InvalidConfigError")
}

/** The form of a token request, sorted, so that its exact contents can be compared. */
const formOf = (request: RecordedRequest): Array<[string, string]> =>
  [...request.form.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))

describe("wex", () => {
  it("is client credentials with client_secret_post, the UAT URLs, 100 requests a minute and 600 s tokens", () => {
    const config = wex({ environment: "uat", clientId: "wex-client", clientSecret: "wex-secret" })
    expect(config).toMatchObject({
      provider: "wex",
      tokenUrl: "https://platform.uat.benefits.wexglobal.com/authorize",
      baseUrl: "https://platform.uat.benefits.wexglobal.com/api",
      clientId: "wex-client",
      clientAuth: "client_secret_post",
      grant: { type: "client_credentials" },
      rateLimit: { limit: 100, window: "1 minute" },
      defaultExpiresIn: "600 seconds"
    })
    expect(config.refreshMargin).toBeUndefined()
    expect(Redacted.isRedacted(config.clientSecret)).toBe(true)
    expect(reveal(config.clientSecret)).toBe("wex-secret")
    expect(Object.keys(config)).not.toContain("environment")
  })

  it("production uses the inferred production host", () => {
    const config = wex({ environment: "production", clientId: "c", clientSecret: "s" })
    expect(config.tokenUrl).toBe("https://platform.benefits.wexglobal.com/authorize")
    expect(config.baseUrl).toBe("https://platform.benefits.wexglobal.com/api")
  })

  it("takes URL and option overrides; an option passed as undefined keeps the preset's value", () => {
    const secret = () => "from-vault"
    const config = wex({
      environment: "uat",
      clientId: "c",
      clientSecret: secret,
      tokenUrl: "https://platform.uat.benefits.wexglobal.com/oauth/token",
      baseUrl: "https://platform.uat.benefits.wexglobal.com/apisandbox",
      refreshMargin: "2 minutes",
      defaultExpiresIn: undefined,
      rateLimit: false
    })
    expect(config).toMatchObject({
      tokenUrl: "https://platform.uat.benefits.wexglobal.com/oauth/token",
      baseUrl: "https://platform.uat.benefits.wexglobal.com/apisandbox",
      refreshMargin: "2 minutes",
      defaultExpiresIn: "600 seconds",
      rateLimit: false
    })
    expect(config.clientSecret).toBe(secret)
  })

  it("rejects any grant but client credentials", () => {
    const error = configError(() =>
      wex({
        environment: "uat",
        clientId: "c",
        clientSecret: "s",
        // @ts-expect-error WEX documents the client credentials grant only
        grant: Grant.password({ username: "u", password: "p" })
      })
    )
    expect(error.problems).toEqual([
      'WEX supports the client_credentials grant only (got "password"); omit grant'
    ])
    expect(
      wex({ environment: "uat", clientId: "c", clientSecret: "s", grant: Grant.clientCredentials() }).grant
    ).toEqual({ type: "client_credentials" })
  })

  it("reports bad URL overrides, an empty secret and an unknown environment in one error", () => {
    const error = configError(() =>
      wex({
        environment: "uat",
        clientId: "",
        clientSecret: " ",
        tokenUrl: "http://platform.example.com/authorize",
        baseUrl: "platform.example.com/api"
      })
    )
    expect(error.problems).toEqual([
      "clientSecret is empty",
      "clientId is required",
      "tokenUrl must use https: (http: is allowed for loopback hosts only)",
      "baseUrl is not an absolute URL"
    ])
    const unknown = configError(() =>
      wex({ environment: "staging" as "uat", clientId: "c", clientSecret: "s" })
    )
    expect(unknown.problems).toEqual(['environment must be one of uat, production (got "staging")'])
  })

  it("accepts http: on a loopback host (local emulators)", () => {
    const config = wex({
      environment: "uat",
      clientId: "c",
      clientSecret: "s",
      tokenUrl: "http://127.0.0.1:4010/authorize",
      baseUrl: "http://localhost:4010/api"
    })
    expect(config.tokenUrl).toBe("http://127.0.0.1:4010/authorize")
  })
})

describe("wealthcare", () => {
  it("is the documented beta endpoint, client credentials by default, client_secret_post, 3600 s tokens", () => {
    const config = wealthcare({
      clientId: "wc",
      clientSecret: "wc-secret",
      scope: ["bensoft_api", "mbi_api"]
    })
    expect(config).toMatchObject({
      provider: "wealthcare",
      tokenUrl: "https://beta.auth.wealthcare.com/connect/token",
      clientId: "wc",
      clientAuth: "client_secret_post",
      grant: { type: "client_credentials" },
      scope: ["bensoft_api", "mbi_api"],
      defaultExpiresIn: "3600 seconds"
    })
    expect(reveal(config.clientSecret)).toBe("wc-secret")
    expect(config.baseUrl).toBeUndefined()
    expect(config.rateLimit).toBeUndefined()
  })

  it("takes any of the four grants and never adds offline_access by itself", () => {
    const password = wealthcare({
      clientId: "wc",
      clientSecret: "s",
      grant: Grant.password({ username: "u", password: "p" }),
      scope: "bensoft_api"
    })
    expect(password.grant?.type).toBe("password")
    expect(password.scope).toBe("bensoft_api")
    const code = wealthcare({
      clientId: "wc",
      grant: Grant.authorizationCode({ code: "c", redirectUri: "https://app.example/cb", codeVerifier: "v" })
    })
    expect(code.grant?.type).toBe("authorization_code")
    expect(code.scope).toBeUndefined()
    expect(code.clientAuth).toBe("none")
    expect(code.clientSecret).toBeUndefined()
    expect(wealthcare({ clientId: "wc", grant: Grant.refreshToken("rt") }).grant?.type).toBe("refresh_token")
  })

  it("overrides the URLs; client credentials without a secret and a bad URL are one error", () => {
    const config = wealthcare({
      clientId: "wc",
      clientSecret: "s",
      tokenUrl: "https://auth.wealthcare.com/connect/token",
      baseUrl: "https://api.wealthcare.example/v1"
    })
    expect(config.tokenUrl).toBe("https://auth.wealthcare.com/connect/token")
    expect(config.baseUrl).toBe("https://api.wealthcare.example/v1")
    const error = configError(() => wealthcare({ clientId: "wc", baseUrl: "https://user:pw@api.example" }))
    expect(error.problems).toEqual([
      "clientSecret is required for the client_credentials grant (RFC 6749 section 4.4: confidential clients only)",
      "baseUrl must not contain credentials"
    ])
  })
})

describe("fromEnv", () => {
  it("WEX: a complete environment", () => {
    const config = fromEnv("WEX", {
      env: { WEX_CLIENT_ID: " wex-id ", WEX_CLIENT_SECRET: "wex-secret", WEX_ENVIRONMENT: "production" }
    })
    expect(config).toMatchObject({
      provider: "wex",
      clientId: "wex-id",
      tokenUrl: "https://platform.benefits.wexglobal.com/authorize",
      baseUrl: "https://platform.benefits.wexglobal.com/api",
      grant: { type: "client_credentials" },
      rateLimit: { limit: 100, window: "1 minute" }
    })
    expect(Redacted.isRedacted(config.clientSecret)).toBe(true)
    expect(String(config.clientSecret)).toBe("<redacted:WEX_CLIENT_SECRET>")
    expect(reveal(config.clientSecret)).toBe("wex-secret")
  })

  it("WEX: the environment is a decision, never a default; URL variables override", () => {
    const config = fromEnv("WEX", {
      env: {
        WEX_CLIENT_ID: "id",
        WEX_CLIENT_SECRET: "s",
        WEX_TOKEN_URL: "https://platform.uat.benefits.wexglobal.com/oauth/token",
        WEX_BASE_URL: "https://platform.uat.benefits.wexglobal.com/apisandbox"
      }
    })
    expect(config.tokenUrl).toBe("https://platform.uat.benefits.wexglobal.com/oauth/token")
    expect(config.baseUrl).toBe("https://platform.uat.benefits.wexglobal.com/apisandbox")
    expect(
      fromEnv("WEX", { env: { WEX_CLIENT_ID: "id", WEX_CLIENT_SECRET: "s", WEX_ENVIRONMENT: "uat" } })
        .tokenUrl
    ).toBe("https://platform.uat.benefits.wexglobal.com/authorize")
    // without WEX_ENVIRONMENT (and without both URLs) a deployment would silently call UAT
    for (const env of [
      { WEX_CLIENT_ID: "id", WEX_CLIENT_SECRET: "s" },
      { WEX_CLIENT_ID: "id", WEX_CLIENT_SECRET: "s", WEX_TOKEN_URL: "https://wex.example/token" }
    ]) {
      expect(configError(() => fromEnv("WEX", { env })).problems).toEqual([
        "WEX_ENVIRONMENT is missing: set it to uat or production (or set both WEX_TOKEN_URL and WEX_BASE_URL)"
      ])
    }
  })

  it("names every missing or empty required variable in one error", () => {
    const error = configError(() =>
      fromEnv("WEX", { env: { WEX_CLIENT_ID: "", WEX_CLIENT_SECRET: " \t", WEX_ENVIRONMENT: "uat" } })
    )
    expect(error.message).toBe(
      "Invalid authfetch configuration: missing environment variables: WEX_CLIENT_ID, WEX_CLIENT_SECRET"
    )
    expect(configError(() => fromEnv("WEX", { env: { WEX_ENVIRONMENT: "production" } })).problems).toEqual([
      "missing environment variables: WEX_CLIENT_ID, WEX_CLIENT_SECRET"
    ])
  })

  it("reports an invalid WEX_ENVIRONMENT with the allowed values, together with what is missing", () => {
    const error = configError(() =>
      fromEnv("WEX", {
        env: {
          WEX_CLIENT_SECRET: "wex-secret-1",
          WEX_ENVIRONMENT: "staging",
          WEX_TOKEN_URL: "http://wex.example/token"
        }
      })
    )
    expect(error.problems).toEqual([
      "missing environment variables: WEX_CLIENT_ID",
      'WEX_ENVIRONMENT must be one of uat, production (got "staging")',
      "WEX_TOKEN_URL must use https: (http: is allowed for loopback hosts only)"
    ])
  })

  it("WEX: overrides win, and make their variables optional; a non-client-credentials grant is rejected", () => {
    const secret = () => "from-vault"
    const config = fromEnv("WEX", {
      env: { WEX_CLIENT_ID: "id", WEX_ENVIRONMENT: "uat" },
      overrides: { clientSecret: secret, refreshMargin: "90 seconds" }
    })
    expect(config.clientSecret).toBe(secret)
    expect(config.refreshMargin).toBe("90 seconds")
    const error = configError(() =>
      fromEnv("WEX", {
        env: { WEX_CLIENT_ID: "id", WEX_CLIENT_SECRET: "s", WEX_ENVIRONMENT: "uat" },
        overrides: { grant: Grant.refreshToken("rt") }
      })
    )
    expect(error.problems).toEqual([
      'WEX supports the client_credentials grant only (got "refresh_token"); omit grant'
    ])
  })

  it("WEALTHCARE: client credentials by default, with the secret required", () => {
    const config = fromEnv("WEALTHCARE", {
      env: {
        WEALTHCARE_CLIENT_ID: "wc",
        WEALTHCARE_CLIENT_SECRET: "wc-secret",
        WEALTHCARE_SCOPE: "bensoft_api mbi_api",
        WEALTHCARE_BASE_URL: "https://api.wealthcare.example"
      }
    })
    expect(config).toMatchObject({
      provider: "wealthcare",
      tokenUrl: "https://beta.auth.wealthcare.com/connect/token",
      baseUrl: "https://api.wealthcare.example",
      grant: { type: "client_credentials" },
      scope: "bensoft_api mbi_api",
      clientAuth: "client_secret_post"
    })
    expect(configError(() => fromEnv("WEALTHCARE", { env: {} })).problems).toEqual([
      "missing environment variables: WEALTHCARE_CLIENT_ID, WEALTHCARE_CLIENT_SECRET"
    ])
  })

  it("WEALTHCARE: the password grant needs the username and the password", () => {
    const error = configError(() =>
      fromEnv("WEALTHCARE", {
        env: {
          WEALTHCARE_CLIENT_ID: "wc",
          WEALTHCARE_CLIENT_SECRET: "s",
          WEALTHCARE_GRANT: "password",
          WEALTHCARE_USERNAME: "svc-user",
          WEALTHCARE_PASSWORD: ""
        }
      })
    )
    expect(error.problems).toEqual(["missing environment variables: WEALTHCARE_PASSWORD"])
    const config = fromEnv("WEALTHCARE", {
      env: {
        WEALTHCARE_CLIENT_ID: "wc",
        WEALTHCARE_GRANT: "password",
        WEALTHCARE_USERNAME: "svc-user",
        WEALTHCARE_PASSWORD: "pw"
      }
    })
    expect(config.grant).toMatchObject({ type: "password", username: "svc-user" })
    expect(config.grant?.type === "password" && String(config.grant.password)).toBe(
      "<redacted:WEALTHCARE_PASSWORD>"
    )
    expect(config.clientAuth).toBe("none")
  })

  it("WEALTHCARE: refresh_token grant; authorization_code and unknown grants are refused", () => {
    const config = fromEnv("WEALTHCARE", {
      env: { WEALTHCARE_CLIENT_ID: "wc", WEALTHCARE_GRANT: "refresh_token", WEALTHCARE_REFRESH_TOKEN: "rt-1" }
    })
    expect(config.grant?.type === "refresh_token" && reveal(config.grant.refreshToken)).toBe("rt-1")
    expect(
      configError(() =>
        fromEnv("WEALTHCARE", { env: { WEALTHCARE_CLIENT_ID: "wc", WEALTHCARE_GRANT: "refresh_token" } })
      ).problems
    ).toEqual(["missing environment variables: WEALTHCARE_REFRESH_TOKEN"])
    const code = configError(() =>
      fromEnv("WEALTHCARE", { env: { WEALTHCARE_CLIENT_ID: "wc", WEALTHCARE_GRANT: "authorization_code" } })
    )
    expect(code.problems).toHaveLength(1)
    expect(code.problems[0]).toMatch(/^WEALTHCARE_GRANT=authorization_code cannot come from the environment/)
    expect(
      configError(() =>
        fromEnv("WEALTHCARE", { env: { WEALTHCARE_CLIENT_ID: "", WEALTHCARE_GRANT: "implicit" } })
      ).problems
    ).toEqual([
      "missing environment variables: WEALTHCARE_CLIENT_ID",
      'WEALTHCARE_GRANT must be one of client_credentials, password, refresh_token (got "implicit")'
    ])
  })

  it("any other prefix: a generic preset", () => {
    const config = fromEnv("ACME_API", {
      env: {
        ACME_API_TOKEN_URL: "https://auth.acme.example/oauth2/token",
        ACME_API_CLIENT_ID: "acme",
        ACME_API_CLIENT_SECRET: "acme-secret",
        ACME_API_SCOPE: "read write",
        ACME_API_AUDIENCE: "https://api.acme.example",
        ACME_API_CLIENT_AUTH: "client_secret_basic"
      }
    })
    expect(config).toMatchObject({
      provider: "generic",
      tokenUrl: "https://auth.acme.example/oauth2/token",
      clientId: "acme",
      scope: "read write",
      audience: "https://api.acme.example",
      clientAuth: "client_secret_basic"
    })
    expect(String(config.clientSecret)).toBe("<redacted:ACME_API_CLIENT_SECRET>")
    expect(config.grant).toBeUndefined()
    expect(config.rateLimit).toBeUndefined()
    expect(configError(() => fromEnv("ACME_API", { env: {} })).problems).toEqual([
      "missing environment variables: ACME_API_TOKEN_URL, ACME_API_CLIENT_ID"
    ])
    expect(
      configError(() =>
        fromEnv("ACME_API", {
          env: {
            ACME_API_TOKEN_URL: "http://auth.acme.example/token",
            ACME_API_CLIENT_ID: "acme",
            ACME_API_CLIENT_AUTH: "private_key_jwt"
          }
        })
      ).problems
    ).toEqual([
      "ACME_API_TOKEN_URL must use https: (http: is allowed for loopback hosts only)",
      'ACME_API_CLIENT_AUTH must be one of client_secret_post, client_secret_basic, none (got "private_key_jwt")'
    ])
    expect(configError(() => fromEnv("ACME_", { env: {} })).problems[0]).toMatch(/^fromEnv prefix must be/)
  })

  it("reads process.env by default, and {} where there is no process", () => {
    const names = ["AFPRESET_TOKEN_URL", "AFPRESET_CLIENT_ID"] as const
    process.env.AFPRESET_TOKEN_URL = "https://auth.example/token"
    process.env.AFPRESET_CLIENT_ID = "from-process"
    try {
      expect(fromEnv("AFPRESET").clientId).toBe("from-process")
    } finally {
      for (const name of names) delete process.env[name]
    }
    const saved = globalThis.process
    let thrown: unknown
    ;(globalThis as { process?: unknown }).process = undefined
    try {
      fromEnv("WEX")
    } catch (error) {
      thrown = error
    } finally {
      globalThis.process = saved
    }
    expect(thrown).toBeInstanceOf(InvalidConfigError)
    expect((thrown as InvalidConfigError).problems).toEqual([
      "missing environment variables: WEX_CLIENT_ID, WEX_CLIENT_SECRET",
      "WEX_ENVIRONMENT is missing: set it to uat or production (or set both WEX_TOKEN_URL and WEX_BASE_URL)"
    ])
  })
})

describe("no secret in any rendering", () => {
  const SECRET = "SECRET-5e1f-do-not-leak"
  const PASSWORD = "PWLEAK-8c2d pass"
  const REFRESH = "RTLEAK-3b7a"
  const needles = [SECRET, PASSWORD, REFRESH, "5e1f", "8c2d", "3b7a", encodeURIComponent(SECRET)]
  const renderings = (value: unknown): Array<string> => {
    const out = [
      String(value),
      JSON.stringify(value) ?? "",
      inspect(value, { depth: 10 }),
      inspect(value, { depth: 10, showHidden: true }),
      inspect(value, { depth: 10, customInspect: false })
    ]
    if (value instanceof Error) out.push(value.message, value.stack ?? "")
    return out
  }
  const expectClean = (value: unknown) => {
    for (const text of renderings(value)) {
      for (const needle of needles) expect(text).not.toContain(needle)
    }
  }

  const failing: Array<[string, string, Record<string, string>]> = [
    ["WEX", "a missing id and an invalid environment", { WEX_CLIENT_SECRET: SECRET, WEX_ENVIRONMENT: "qa" }],
    [
      "WEX",
      "the secret put in WEX_ENVIRONMENT",
      { WEX_CLIENT_ID: "id", WEX_CLIENT_SECRET: SECRET, WEX_ENVIRONMENT: SECRET }
    ],
    [
      "WEX",
      "credentials in a URL",
      {
        WEX_CLIENT_ID: "id",
        WEX_CLIENT_SECRET: SECRET,
        WEX_TOKEN_URL: `http://id:${SECRET}@wex.example/token`
      }
    ],
    [
      "WEALTHCARE",
      "an invalid grant next to a password and a refresh token",
      {
        WEALTHCARE_CLIENT_SECRET: SECRET,
        WEALTHCARE_GRANT: "passwd",
        WEALTHCARE_PASSWORD: PASSWORD,
        WEALTHCARE_REFRESH_TOKEN: REFRESH
      }
    ],
    [
      "WEALTHCARE",
      "a password grant with a bad token URL",
      {
        WEALTHCARE_CLIENT_ID: "wc",
        WEALTHCARE_CLIENT_SECRET: SECRET,
        WEALTHCARE_GRANT: "password",
        WEALTHCARE_PASSWORD: PASSWORD,
        WEALTHCARE_TOKEN_URL: PASSWORD
      }
    ],
    [
      "ACME",
      "the client secret put in the client auth method",
      {
        ACME_TOKEN_URL: "https://a.example/t",
        ACME_CLIENT_ID: "a",
        ACME_CLIENT_SECRET: SECRET,
        ACME_CLIENT_AUTH: `x${SECRET}`
      }
    ]
  ]

  it.each(failing)("%s with %s: the error has no secret", (prefix, _what, env) => {
    const error = configError(() => fromEnv(prefix, { env }))
    expect(error.problems.length).toBeGreaterThan(0)
    expectClean(error)
  })

  it("the configurations fromEnv returns have no secret", () => {
    const configs: Array<ProviderConfig> = [
      fromEnv("WEX", { env: { WEX_CLIENT_ID: "id", WEX_CLIENT_SECRET: SECRET, WEX_ENVIRONMENT: "uat" } }),
      fromEnv("WEALTHCARE", {
        env: {
          WEALTHCARE_CLIENT_ID: "wc",
          WEALTHCARE_CLIENT_SECRET: SECRET,
          WEALTHCARE_GRANT: "password",
          WEALTHCARE_USERNAME: "svc",
          WEALTHCARE_PASSWORD: PASSWORD
        }
      }),
      fromEnv("WEALTHCARE", {
        env: {
          WEALTHCARE_CLIENT_ID: "wc",
          WEALTHCARE_GRANT: "refresh_token",
          WEALTHCARE_REFRESH_TOKEN: REFRESH
        }
      }),
      fromEnv("ACME", {
        env: { ACME_TOKEN_URL: "https://a.example/t", ACME_CLIENT_ID: "a", ACME_CLIENT_SECRET: SECRET }
      }),
      wex({ environment: "uat", clientId: "id", clientSecret: SECRET }),
      wealthcare({ clientId: "wc", clientSecret: SECRET, refreshToken: REFRESH })
    ]
    for (const config of configs) expectClean(config)
    expect(reveal(configs[0]!.clientSecret)).toBe(SECRET)
  })
})

describe("token requests, end to end", () => {
  let server: TokenServer
  beforeAll(async () => {
    server = await startTokenServer()
  })
  afterAll(() => server.close())

  it("wex sends exactly grant_type=client_credentials, client_id and client_secret, as WEX documents", async () => {
    server.requests.length = 0
    await using tokens = createTokenSource(
      wex({
        environment: "uat",
        clientId: "wex-client",
        clientSecret: "wex secret:+%",
        tokenUrl: server.tokenUrl
      })
    )
    const token = await tokens.getToken()
    expect(token.authorization()).toMatch(/^Bearer at-/)
    expect(server.requests).toHaveLength(1)
    const [request] = server.requests
    expect(request!.method).toBe("POST")
    expect(request!.headers["content-type"]).toMatch(/^application\/x-www-form-urlencoded/)
    expect(request!.headers.authorization).toBeUndefined()
    expect(formOf(request!)).toEqual([
      ["client_id", "wex-client"],
      ["client_secret", "wex secret:+%"],
      ["grant_type", "client_credentials"]
    ])
  })

  it("wealthcare asks for the scope, keeps the refresh token and uses it after invalidate", async () => {
    server.requests.length = 0
    server.enqueue(
      issueToken({
        expires_in: 3600,
        scope: "bensoft_api mbi_api offline_access",
        refresh_token: "wc-refresh-1"
      }),
      issueToken({ expires_in: 3600, scope: "bensoft_api mbi_api offline_access" })
    )
    await using tokens = createTokenSource(
      wealthcare({
        clientId: "wc-client",
        clientSecret: "wc-secret",
        scope: "bensoft_api mbi_api offline_access",
        tokenUrl: server.tokenUrl
      })
    )
    const first = await tokens.getToken()
    expect(first.scope).toBe("bensoft_api mbi_api offline_access")
    expect(first.refreshToken).toBeDefined()
    expect(formOf(server.requests[0]!)).toEqual([
      ["client_id", "wc-client"],
      ["client_secret", "wc-secret"],
      ["grant_type", "client_credentials"],
      ["scope", "bensoft_api mbi_api offline_access"]
    ])
    await tokens.invalidate(first)
    const second = await tokens.getToken()
    expect(second.id).not.toBe(first.id)
    expect(server.requests).toHaveLength(2)
    expect(formOf(server.requests[1]!)).toEqual([
      ["client_id", "wc-client"],
      ["client_secret", "wc-secret"],
      ["grant_type", "refresh_token"],
      ["refresh_token", "wc-refresh-1"]
    ])
  })

  it("a WealthCare password grant from the environment sends username and password", async () => {
    server.requests.length = 0
    await using tokens = createTokenSource(
      fromEnv("WEALTHCARE", {
        env: {
          WEALTHCARE_CLIENT_ID: "wc-client",
          WEALTHCARE_CLIENT_SECRET: "wc-secret",
          WEALTHCARE_GRANT: "password",
          WEALTHCARE_USERNAME: "svc-user",
          WEALTHCARE_PASSWORD: "pass word",
          WEALTHCARE_SCOPE: "bensoft_api offline_access",
          WEALTHCARE_TOKEN_URL: server.tokenUrl
        }
      })
    )
    await tokens.getToken()
    expect(formOf(server.requests[0]!)).toEqual([
      ["client_id", "wc-client"],
      ["client_secret", "wc-secret"],
      ["grant_type", "password"],
      ["password", "pass word"],
      ["scope", "bensoft_api offline_access"],
      ["username", "svc-user"]
    ])
  })
})
