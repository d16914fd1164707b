/**
 * The secret-leak sweep: every failure scenario runs with recognisable
 * secrets, access tokens and refresh tokens, and every error (message,
 * String, JSON, util.inspect, stack), every event, every AccessToken rendering
 * and everything written to stdout/stderr is scanned for them.
 */
import { inspect } from "node:util"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { createTokenSource, Grant, type TokenEvent, type TokenSourceConfig } from "../src/index.ts"
import { type Reply, startTokenServer, type TokenServer } from "./support/tokenServer.ts"

const SECRET = "SECRET-7f3a9c:+% ü-do-not-leak"
const ACCESS = "ATLEAK-0b1c2d3e4f"
const REFRESH = "RTLEAK-9a8b7c6d5e"
const PASSWORD = "PWLEAK-pass word"
const needles = [
  SECRET,
  encodeURIComponent(SECRET),
  new URLSearchParams({ s: SECRET }).toString().slice(2),
  ACCESS,
  REFRESH,
  PASSWORD,
  "7f3a9c",
  "0b1c2d3e4f",
  "9a8b7c6d5e",
  "PWLEAK"
]

const renderings = (value: unknown): Array<string> => {
  const out = [
    String(value),
    JSON.stringify(value) ?? "",
    inspect(value, { depth: 10, showHidden: true }),
    inspect(value, { depth: 10, customInspect: false })
  ]
  if (value instanceof Error) out.push(value.message, value.stack ?? "")
  return out
}

let server: TokenServer
const output: Array<string> = []
const originalWrite = { out: process.stdout.write, err: process.stderr.write }

beforeAll(async () => {
  server = await startTokenServer()
  const capture =
    (original: typeof process.stdout.write) =>
    (chunk: unknown, ...rest: Array<unknown>): boolean => {
      output.push(String(chunk))
      return (original as (...args: Array<unknown>) => boolean).call(process.stdout, chunk, ...rest)
    }
  process.stdout.write = capture(originalWrite.out) as typeof process.stdout.write
  process.stderr.write = capture(originalWrite.err) as typeof process.stderr.write
})

afterAll(async () => {
  process.stdout.write = originalWrite.out
  process.stderr.write = originalWrite.err
  await server.close()
})

const echoBody =
  (status: number, error: string) => (req: { rawBody: string; headers: Record<string, unknown> }) => ({
    status,
    body: {
      error,
      error_description: `got ${req.rawBody} auth=${String(req.headers.authorization)}`,
      error_uri: req.rawBody
    }
  })

const scenarios: Array<{
  name: string
  replies: Array<Reply | ((req: any) => Reply)>
  config?: Partial<TokenSourceConfig>
}> = [
  { name: "invalid_client echoing the request (post)", replies: [echoBody(401, "invalid_client")] },
  {
    name: "invalid_client echoing the request (basic)",
    replies: [echoBody(401, "invalid_client")],
    config: { clientAuth: "client_secret_basic" }
  },
  {
    name: "invalid_grant echoing a refresh token",
    replies: [echoBody(400, "invalid_grant")],
    config: {
      refreshToken: REFRESH,
      grant: Grant.authorizationCode({ code: "CODE-7f3a9c", redirectUri: "https://app/cb" })
    }
  },
  {
    name: "password grant rejected",
    replies: [echoBody(400, "invalid_grant")],
    config: { grant: Grant.password({ username: "u", password: PASSWORD }) }
  },
  { name: "500 with the body echoed", replies: [(req) => ({ status: 500, text: req.rawBody })] },
  {
    name: "bad expires_in next to a token",
    replies: [{ status: 200, body: { access_token: ACCESS, expires_in: "soon" } }]
  },
  {
    name: "numeric refresh_token next to a token",
    replies: [{ status: 200, body: { access_token: ACCESS, refresh_token: 5 } }]
  },
  {
    name: "1 MiB body holding a token",
    replies: [{ status: 200, text: JSON.stringify({ access_token: ACCESS, pad: "x".repeat(1 << 20) }) }]
  },
  {
    name: "HTML holding a token",
    replies: [{ status: 200, text: `<p>${ACCESS}</p>`, headers: { "content-type": "text/html" } }]
  },
  { name: "429", replies: [{ status: 429, headers: { "retry-after": "9999" }, body: { error: ACCESS } }] },
  { name: "dropped connection", replies: [{ drop: true }] },
  {
    name: "slow endpoint",
    replies: [{ status: 200, body: { access_token: ACCESS }, delayMs: 300 }],
    config: { tokenRequestTimeout: "50 millis" }
  },
  {
    name: "secret provider throwing with the secret in its message",
    replies: [],
    config: {
      clientSecret: () => {
        throw new Error(`cannot read ${SECRET}`)
      }
    }
  }
]

describe("secret-leak sweep", () => {
  it("no secret, access token or refresh token appears in any error, event, token rendering or output", async () => {
    const seen: Array<string> = []
    const events: Array<TokenEvent> = []
    for (const scenario of scenarios) {
      server.requests.length = 0
      let i = 0
      server.setDefault((req) => {
        const reply = scenario.replies[Math.min(i++, scenario.replies.length - 1)]
        return typeof reply === "function" ? reply(req) : (reply ?? { status: 500 })
      })
      const tokens = createTokenSource({
        tokenUrl: server.tokenUrl,
        clientId: "client-leak",
        clientSecret: SECRET,
        tokenRequestRetry: { maxRetries: 1, baseDelay: "1 millis", maxDelay: "1 millis" },
        onEvent: (e) => events.push(e),
        ...scenario.config
      })
      const error = await tokens.getToken().then(
        () => new Error(`scenario "${scenario.name}" unexpectedly succeeded`),
        (e: unknown) => e
      )
      expect(error, scenario.name).toBeInstanceOf(Error)
      expect((error as Error).message).not.toContain("unexpectedly succeeded")
      seen.push(...renderings(error))
      await tokens.dispose()
    }

    // The success path: the token and its renderings.
    server.setDefault(() => ({
      status: 200,
      body: { access_token: ACCESS, refresh_token: REFRESH, expires_in: 600 }
    }))
    const tokens = createTokenSource({
      tokenUrl: server.tokenUrl,
      clientId: "client-leak",
      clientSecret: SECRET,
      onEvent: (e) => events.push(e)
    })
    const token = await tokens.getToken()
    expect(token.reveal()).toBe(ACCESS) // the value is there for who asks for it
    seen.push(...renderings(token), ...renderings({ token }), `${token}`, ...renderings(tokens))
    await tokens.invalidate(token)
    await tokens.getToken()
    await tokens.dispose()

    seen.push(...events.map((e) => JSON.stringify(e)), ...events.map((e) => inspect(e, { depth: 10 })))
    seen.push(...output)
    expect(events.length).toBeGreaterThan(scenarios.length)
    expect(seen.length).toBeGreaterThan(50)
    for (const text of seen) {
      for (const needle of needles)
        expect(text, `leak of ${needle.slice(0, 6)}… in: ${text.slice(0, 120)}`).not.toContain(needle)
    }
    // Scrubbing keeps the useful rest of the server's description.
    const described = seen.find(
      (t) => t.includes("invalid_client") && t.includes("grant_type=client_credentials")
    )
    expect(described).toBeDefined()
  })
})
