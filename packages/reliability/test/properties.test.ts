/**
 * Property-based tests (fast-check) of every parser that reads what a server
 * or a caller sends: token responses and OAuth errors (through a real local
 * token endpoint), `Retry-After`, `WWW-Authenticate`, lenient JSON,
 * problem+json, and proxy paths.
 *
 * Each property has a bounded number of runs (`RUNS`), sized so that it takes
 * well under a few seconds on a 2-core machine. A failure prints its seed and
 * shrunk counterexample; rerun it with `FC_SEED=<seed>`.
 */
import { createServer, type IncomingMessage, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import { inspect } from "node:util"
import {
  createTokenSource,
  Grant,
  Problem,
  BffProxy as ProxyModule,
  RetryPolicy,
  TokenEndpoint,
  type TokenSourceHandle
} from "@authfetch/core"
import { Duration, Effect, Exit, Redacted } from "effect"
import { FetchHttpClient } from "effect/http"
import fc from "fast-check"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { renderings } from "../src/capture.ts"

const seed = process.env.FC_SEED === undefined ? undefined : Number(process.env.FC_SEED)
fc.configureGlobal({ ...(seed === undefined ? {} : { seed }), interruptAfterTimeLimit: 20_000 })

/** runs per property; the list in the report comes from here */
const RUNS = {
  retryAfterTotal: 3000,
  retryAfterIntegers: 2000,
  retryAfterDates: 1000,
  retryAfterAsctime: 500,
  wwwAuthenticateTotal: 3000,
  wwwAuthenticateRoundTrip: 1000,
  lenientJsonTotal: 2000,
  lenientJsonRoundTrip: 1000,
  lenientJsonTrailingCommas: 1000,
  problemParseTotal: 1500,
  problemRoundTrip: 1000,
  problemOAuth: 1000,
  problemUrl: 500,
  fromResponse: 300,
  tokenTotal: 300,
  tokenValid: 200,
  tokenUnusable: 200,
  tokenClassified: 300,
  tokenSecrets: 150,
  tokenRenders: 100,
  tokenLifetimeNoStorm: 25,
  checkPathTotal: 5000,
  checkPathAccepted: 5000,
  checkPathSafe: 2000,
  checkPathEncoded: 1000,
  proxyStaysUnderBase: 500
} as const

// ---------------------------------------------------------------------------
// shared arbitraries

/** any text, including lone surrogates, controls, NUL */
const anyText = fc.string({ unit: "binary", maxLength: 200 })
/** valid Unicode text */
const unicodeText = fc.string({ unit: "grapheme", maxLength: 60 })
/** text built from the characters a parser cares about */
const adversarial = (pieces: ReadonlyArray<string>, maxLength = 40) =>
  fc.array(fc.constantFrom(...pieces), { maxLength }).map((parts) => parts.join(""))

const TCHARS = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
const token = fc.string({ unit: fc.constantFrom(...TCHARS), minLength: 1, maxLength: 12 })

// ---------------------------------------------------------------------------
// Retry-After

describe("RetryPolicy.parseRetryAfter", () => {
  const now = fc.integer({ min: 0, max: 4_102_444_800_000 }) // 1970 .. 2100

  it("never throws; a wait is never negative nor NaN", () => {
    const header = fc.oneof(
      anyText,
      adversarial(["1", "0", "9", " ", "\t", "-", "+", ".", "e", "GMT", "Sun, ", "Nov ", "1994", ":", ","]),
      fc.constantFrom(null, undefined, "", " ", "NaN", "Infinity", "1e3", "9".repeat(400))
    )
    fc.assert(
      fc.property(header, now, (value, at) => {
        const wait = RetryPolicy.parseRetryAfter(value, at)
        if (wait === undefined) return
        const millis = Duration.toMillis(wait)
        expect(Number.isNaN(millis)).toBe(false)
        expect(millis).toBeGreaterThanOrEqual(0)
      }),
      { numRuns: RUNS.retryAfterTotal }
    )
  })

  it("delay-seconds: an integer n (padded with spaces or tabs) is n seconds; a sign, a fraction or an exponent is not a wait", () => {
    const ows = fc.constantFrom("", " ", "\t", "  ")
    fc.assert(
      fc.property(fc.nat({ max: 1e12 }), ows, ows, now, (n, before, after, at) => {
        const wait = RetryPolicy.parseRetryAfter(`${before}${n}${after}`, at)
        expect(wait && Duration.toMillis(wait)).toBe(n * 1000)
        for (const bad of [`-${n + 1}`, `+${n}`, `${n}.5`, `${n}e1`, `${n}s`]) {
          expect(RetryPolicy.parseRetryAfter(bad, at)).toBeUndefined()
        }
      }),
      { numRuns: RUNS.retryAfterIntegers }
    )
  })

  it("HTTP-date (IMF-fixdate and RFC 850): the wait is until that instant, 0 when it is past", () => {
    const date = fc.date({
      min: new Date("1970-01-01T00:00:00Z"),
      max: new Date("2099-12-31T23:59:59Z"),
      noInvalidDate: true
    })
    fc.assert(
      fc.property(date, now, (d, at) => {
        const instant = Math.floor(d.getTime() / 1000) * 1000
        const imf = new Date(instant).toUTCString()
        expect(Duration.toMillis(RetryPolicy.parseRetryAfter(imf, at)!)).toBe(Math.max(0, instant - at))
      }),
      { numRuns: RUNS.retryAfterDates }
    )
  })

  /**
   * RFC 9110 section 5.6.7: recipients accept the obsolete asctime format,
   * which is in GMT like the others. `Date.parse` reads a date without a zone
   * as local time, so outside UTC the wait is off by the zone's offset.
   * Known bug (reported): flips to failing when fixed; then make it a plain `it`.
   */
  it("an asctime date is read as GMT, whatever the local zone", () => {
    const previous = process.env.TZ
    process.env.TZ = "America/New_York"
    try {
      const date = fc.date({
        min: new Date("2000-01-01T00:00:00Z"),
        max: new Date("2099-12-31T23:59:59Z"),
        noInvalidDate: true
      })
      fc.assert(
        fc.property(date, (d) => {
          const instant = Math.floor(d.getTime() / 1000) * 1000
          const u = new Date(instant)
          const day = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"][u.getUTCDay()]
          const month = u.toUTCString().split(" ")[2]
          const time = u.toISOString().slice(11, 19)
          const asctime = `${day} ${month} ${String(u.getUTCDate()).padStart(2, " ")} ${time} ${u.getUTCFullYear()}`
          expect(Duration.toMillis(RetryPolicy.parseRetryAfter(asctime, 0)!)).toBe(instant)
        }),
        { numRuns: RUNS.retryAfterAsctime, endOnFailure: true }
      )
    } finally {
      if (previous === undefined) delete process.env.TZ
      else process.env.TZ = previous
    }
  })
})

// ---------------------------------------------------------------------------
// WWW-Authenticate

describe("Problem.parseWwwAuthenticate", () => {
  it("never throws; schemes and parameter names come out lower-cased tokens, values as strings", () => {
    const header = fc.oneof(
      anyText,
      adversarial(
        [
          "Bearer",
          "Basic",
          " ",
          "\t",
          ",",
          "=",
          '"',
          "\\",
          "error",
          "realm",
          "a",
          "==",
          "x y",
          "ü",
          "\u0000",
          '"\\"'
        ],
        60
      ),
      fc.constantFrom(null, undefined)
    )
    fc.assert(
      fc.property(header, (value) => {
        const challenges = Problem.parseWwwAuthenticate(value as string)
        expect(Array.isArray(challenges)).toBe(true)
        for (const challenge of challenges) {
          expect(challenge.scheme).toMatch(/^[!#$%&'*+\-.^_`|~0-9a-z]+$/)
          for (const [name, v] of Object.entries(challenge.params)) {
            expect(name).toMatch(/^[!#$%&'*+\-.^_`|~0-9a-z]+$/)
            expect(typeof v).toBe("string")
          }
        }
      }),
      { numRuns: RUNS.wwwAuthenticateTotal }
    )
  })

  it("round trip: challenges serialised per RFC 9110 11.6.1 (quoted-strings with escapes, tokens, token68) parse back", () => {
    const value = fc.oneof(
      token.map((t) => ({ text: t, quoted: false })),
      // a quoted-string: any printable character, including `"`, `\\`, `,` and `=`
      fc
        .string({ unit: fc.constantFrom(..." !\"#$%&'()*+,-./09:;<=>?@AZ[\\]^_`az{|}~\tü€"), maxLength: 20 })
        .map((t) => ({ text: t, quoted: true }))
    )
    const params = fc.uniqueArray(fc.tuple(token, value), {
      maxLength: 4,
      selector: ([name]) => name.toLowerCase()
    })
    const token68 = fc
      .tuple(
        fc.string({ unit: fc.constantFrom(..."-._~+/0123456789AZaz"), minLength: 1, maxLength: 20 }),
        fc.nat({ max: 2 })
      )
      .map(([t, pad]) => `${t}${"=".repeat(pad)}`)
    const challenge = fc.oneof(
      fc.record({ scheme: token, params, token68: fc.constant(undefined) }),
      fc.record({ scheme: token, params: fc.constant([]), token68 })
    )
    fc.assert(
      fc.property(fc.array(challenge, { minLength: 1, maxLength: 4 }), (list) => {
        const header = list
          .map(({ scheme, params, token68 }) => {
            if (token68 !== undefined) return `${scheme} ${token68}`
            if (params.length === 0) return scheme
            const rendered = params.map(([name, v]) =>
              v.quoted ? `${name}="${v.text.replace(/[\\"]/g, "\\$&")}"` : `${name}=${v.text}`
            )
            return `${scheme} ${rendered.join(", ")}`
          })
          .join(", ")
        const parsed = Problem.parseWwwAuthenticate(header)
        expect(parsed).toEqual(
          list.map(({ scheme, params, token68 }) => ({
            scheme: scheme.toLowerCase(),
            params: Object.fromEntries(params.map(([name, v]) => [name.toLowerCase(), v.text])),
            ...(token68 === undefined ? {} : { token68 })
          }))
        )
      }),
      { numRuns: RUNS.wwwAuthenticateRoundTrip }
    )
  })
})

// ---------------------------------------------------------------------------
// lenient JSON

/** JSON text with a trailing comma in every non-empty object and array, and random whitespace. */
const withTrailingCommas = (value: unknown, ws: () => string): string => {
  if (Array.isArray(value)) {
    if (value.length === 0) return "[]"
    return `[${value.map((v) => `${ws()}${withTrailingCommas(v, ws)}${ws()},`).join("")}${ws()}]`
  }
  if (typeof value === "object" && value !== null) {
    const entries = Object.entries(value)
    if (entries.length === 0) return "{}"
    return `{${entries.map(([k, v]) => `${ws()}${JSON.stringify(k)}${ws()}:${withTrailingCommas(v, ws)},`).join("")}${ws()}}`
  }
  return JSON.stringify(value)
}

describe("Problem.parseLenientJson", () => {
  it("never throws, not even on deep nesting or broken escapes", () => {
    const text = fc.oneof(
      { arbitrary: anyText, weight: 10 },
      {
        arbitrary: adversarial(
          ["{", "}", "[", "]", ",", '"', "\\", ":", "1", "null", " ", "\uFEFF", ',"a,}"'],
          80
        ),
        weight: 10
      },
      {
        arbitrary: fc.constantFrom(10_000, 100_000).map((n) => `${"[".repeat(n)}${"],".repeat(n)}`),
        weight: 1
      }
    )
    fc.assert(
      fc.property(text, (t) => {
        Problem.parseLenientJson(t)
      }),
      { numRuns: RUNS.lenientJsonTotal }
    )
  })

  it("reads any JSON text as JSON.parse does", () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const text = JSON.stringify(value)
        expect(Problem.parseLenientJson(text)).toEqual(JSON.parse(text))
      }),
      { numRuns: RUNS.lenientJsonRoundTrip }
    )
  })

  it("reads JSON with trailing commas and a byte order mark as the value without them; commas inside strings are kept", () => {
    const stringsWithCommas = fc.string({ unit: fc.constantFrom(...'a,}] \\"{['), maxLength: 8 })
    const value = fc.oneof(
      fc.jsonValue(),
      fc.dictionary(stringsWithCommas, fc.oneof(stringsWithCommas, fc.jsonValue({ maxDepth: 2 })), {
        maxKeys: 4
      }),
      fc.array(fc.oneof(stringsWithCommas, fc.jsonValue({ maxDepth: 2 })), { maxLength: 4 })
    )
    fc.assert(
      fc.property(
        value,
        fc.array(fc.constantFrom("", " ", "\n", "\t", "\r\n"), { minLength: 1 }),
        fc.boolean(),
        (v, spaces, bom) => {
          let i = 0
          const ws = () => spaces[i++ % spaces.length]!
          const text = `${bom ? "\uFEFF" : ""}${withTrailingCommas(v, ws)}`
          expect(Problem.parseLenientJson(text)).toEqual(JSON.parse(JSON.stringify(v)))
        }
      ),
      { numRuns: RUNS.lenientJsonTrailingCommas }
    )
  })
})

// ---------------------------------------------------------------------------
// problem+json

// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it finds
const LOG_BREAKERS = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it finds
const CONTROL = /[\u0000-\u001f\u007f]/

const problemHeaders = fc
  .record({
    contentType: fc.oneof(
      fc.constantFrom(
        "application/problem+json",
        "application/json",
        "Application/Problem+JSON; charset=utf-8",
        "text/html"
      ),
      anyText
    ),
    challenge: fc.option(
      fc.oneof(
        anyText,
        token.map((t) => `Bearer error="${t}", error_description="desc ${t}"`),
        fc.constant('DPoP error="invalid_token"')
      ),
      { nil: undefined }
    )
  })
  .map(({ contentType, challenge }) => {
    const headers = new Headers()
    try {
      headers.set("content-type", contentType)
    } catch {
      // not a valid header value: none
    }
    try {
      if (challenge !== undefined) headers.set("www-authenticate", challenge)
    } catch {
      // not a valid header value: none
    }
    return headers
  })

const problemLike = fc.dictionary(
  fc.constantFrom(
    "type",
    "title",
    "detail",
    "instance",
    "status",
    "error",
    "error_description",
    "errors",
    "traceId",
    "__proto__",
    "constructor"
  ),
  fc.oneof(anyText, fc.jsonValue({ maxDepth: 3 }), fc.constant(null)),
  { maxKeys: 6 }
)

const problemBody = fc.oneof(
  anyText,
  problemLike.map((p) => JSON.stringify(p)),
  problemLike.map((p) => withTrailingCommas(p, () => "\n")),
  fc.jsonValue().map((v) => JSON.stringify(v)),
  fc.constantFrom(1_000, 100_000).map((n) => `${"[".repeat(n)}${"]".repeat(n)}`)
)

const status = fc.oneof(
  fc.constantFrom(400, 401, 403, 404, 409, 422, 429, 500, 502, 503, 504),
  fc.integer({ min: -1000, max: 100_000 })
)

describe("Problem.parse", () => {
  it("never throws; keeps the status and body; renders without throwing; its message is one line (no log injection)", () => {
    fc.assert(
      fc.property(
        status,
        problemHeaders,
        problemBody,
        fc.option(fc.webUrl(), { nil: undefined }),
        (s, headers, body, url) => {
          const problem = Problem.parse({ status: s, headers, body, url })
          expect(problem).toBeInstanceOf(Problem.ProblemDetailsError)
          expect(problem.status).toBe(s)
          expect(problem.body).toBe(body)
          expect(typeof problem.type).toBe("string")
          expect(problem.message).not.toMatch(LOG_BREAKERS)
          String(problem)
          JSON.stringify(problem)
          inspect(problem, { depth: 10, showHidden: true })
        }
      ),
      { numRuns: RUNS.problemParseTotal }
    )
  })

  it("round trip: a problem+json object comes back member for member, extensions included; status is the response's", () => {
    const member = fc.option(unicodeText, { nil: undefined })
    const extensionName = fc
      .stringMatching(/^[a-z][a-zA-Z0-9_]{0,12}$/)
      .filter((n) => !["type", "title", "detail", "instance", "status", "constructor"].includes(n))
    const problem = fc.record({
      type: fc.option(fc.webUrl(), { nil: undefined }),
      title: member,
      detail: member,
      instance: fc.option(fc.webPath(), { nil: undefined }),
      extensions: fc.dictionary(extensionName, fc.jsonValue({ maxDepth: 3 }), { maxKeys: 4 })
    })
    fc.assert(
      fc.property(problem, fc.integer({ min: 400, max: 599 }), fc.boolean(), (p, s, trailing) => {
        const object = {
          ...p.extensions,
          ...(p.type === undefined ? {} : { type: p.type }),
          ...(p.title === undefined ? {} : { title: p.title }),
          ...(p.detail === undefined ? {} : { detail: p.detail }),
          ...(p.instance === undefined ? {} : { instance: p.instance }),
          status: s
        }
        const body = trailing ? withTrailingCommas(object, () => " ") : JSON.stringify(object)
        const parsed = Problem.parse({
          status: s,
          headers: new Headers({ "content-type": "application/problem+json" }),
          body
        })
        expect(parsed.status).toBe(s)
        expect(parsed.type).toBe(p.type ?? "about:blank")
        if (p.title !== undefined) expect(parsed.title).toBe(p.title)
        expect(parsed.detail).toBe(p.detail)
        expect(parsed.instance).toBe(p.instance)
        expect(parsed.extensions).toEqual(JSON.parse(JSON.stringify(p.extensions)))
      }),
      { numRuns: RUNS.problemRoundTrip }
    )
  })

  it("OAuth errors: an RFC 6749 5.2 body, or an RFC 6750 challenge when the body is not JSON, gives oauthError", () => {
    const code = fc.stringMatching(/^[a-z_]{1,24}$/)
    const description = fc.string({ unit: fc.constantFrom(..." abcxyzABC0189.,:;-_!?'()/=+"), maxLength: 40 })
    fc.assert(
      fc.property(
        code,
        description,
        fc.integer({ min: 400, max: 599 }),
        fc.boolean(),
        (error, desc, s, inBody) => {
          const parsed = inBody
            ? Problem.parse({
                status: s,
                headers: new Headers({ "content-type": "application/json" }),
                body: JSON.stringify({ error, error_description: desc })
              })
            : Problem.parse({
                status: s,
                headers: new Headers({
                  "www-authenticate": `Bearer realm="api", error="${error}", error_description="${desc}"`
                }),
                body: "<html>nope</html>"
              })
          expect(parsed.oauthError?.error).toBe(error)
          expect(parsed.oauthError?.errorDescription).toBe(desc)
        }
      ),
      { numRuns: RUNS.problemOAuth }
    )
  })

  it("the request URL's query, fragment and userinfo never reach the error", () => {
    const marker = fc.stringMatching(/^[A-Za-z0-9]{12,20}$/)
    fc.assert(
      fc.property(fc.webUrl(), marker, (url, m) => {
        const u = new URL(url)
        u.username = `user${m}`
        u.password = `pass${m}`
        u.search = `?api_key=${m}`
        u.hash = `#frag${m}`
        const parsed = Problem.parse({ status: 500, headers: new Headers(), body: "", url: u.href })
        for (const text of [
          parsed.message,
          String(parsed),
          JSON.stringify(parsed),
          inspect(parsed, { depth: 10, showHidden: true })
        ]) {
          expect(text).not.toContain(m)
        }
      }),
      { numRuns: RUNS.problemUrl }
    )
  })
})

describe("Problem.fromResponse", () => {
  it("never rejects: any bytes, cut anywhere, a stream that errors, a cap smaller than the body", async () => {
    const chunks = fc.array(fc.uint8Array({ maxLength: 2048 }), { maxLength: 6 })
    await fc.assert(
      fc.asyncProperty(
        chunks,
        fc.boolean(),
        fc.integer({ min: 0, max: 4096 }),
        problemHeaders,
        async (parts, fails, cap, headers) => {
          const body = new ReadableStream<Uint8Array>({
            start(controller) {
              for (const part of parts) controller.enqueue(part)
              if (fails) controller.error(new Error("connection reset"))
              else controller.close()
            }
          })
          const problem = await Problem.fromResponse(new Response(body, { status: 502, headers }), {
            maxBodyBytes: cap
          })
          expect(problem).toBeInstanceOf(Problem.ProblemDetailsError)
          expect(problem.status).toBe(502)
          // at most one character (a replacement character for a broken sequence) per byte read
          expect(problem.body.length).toBeLessThanOrEqual(cap)
        }
      ),
      { numRuns: RUNS.fromResponse }
    )
  })
})

// ---------------------------------------------------------------------------
// token responses, through a real token endpoint on 127.0.0.1

interface Scripted {
  status: number
  headers: Record<string, string>
  body: string | ((request: { body: string; authorization: string | undefined }) => string)
}

let server: Server
let tokenUrl = ""
let next: Scripted = { status: 500, headers: {}, body: "" }

const readAll = (req: IncomingMessage): Promise<string> =>
  new Promise((resolve) => {
    const chunks: Array<Buffer> = []
    req.on("data", (c: Buffer) => chunks.push(c))
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")))
  })

beforeAll(async () => {
  server = createServer(async (req, res) => {
    const body = await readAll(req)
    const answer =
      typeof next.body === "function"
        ? next.body({ body, authorization: req.headers.authorization })
        : next.body
    res.writeHead(next.status, next.headers)
    res.end(answer)
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  tokenUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/token`
})
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())))

const TYPED = new Set(["OAuthError", "RateLimitedError", "TokenEndpointError", "InvalidTokenResponseError"])

const requestToken = (
  secret: string,
  clientAuth: "client_secret_post" | "client_secret_basic" = "client_secret_post"
) =>
  Effect.runPromise(
    TokenEndpoint.request({
      tokenUrl,
      clientId: "property-client",
      clientAuth,
      secret: Redacted.make(secret),
      grant: Grant.clientCredentials(),
      timeout: "5 seconds"
    }).pipe(Effect.provide(FetchHttpClient.layer), Effect.exit)
  )

const anyJson = fc.oneof(
  anyText,
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.jsonValue({ maxDepth: 2 })
)
const tokenish = fc.record(
  {
    access_token: fc.oneof(fc.string({ maxLength: 40 }), anyJson),
    token_type: fc.oneof(fc.constantFrom("Bearer", "bearer", "DPoP", ""), anyJson),
    expires_in: fc.oneof(
      fc.integer({ min: -10, max: 100_000 }),
      fc.double(),
      fc.constantFrom("3600", "soon", 0, -1, 1e308)
    ),
    refresh_token: fc.oneof(fc.string({ maxLength: 40 }), anyJson),
    scope: anyJson,
    error: anyJson,
    error_description: anyJson
  },
  { requiredKeys: [] }
)
const tokenBody = fc.oneof(
  tokenish.map((t) => JSON.stringify(t)),
  anyText,
  fc.jsonValue().map((v) => JSON.stringify(v)),
  fc.constantFrom(
    "",
    "<html><body>Bad Gateway</body></html>",
    "{",
    "null",
    "[]",
    `{"access_token":"${"x".repeat(70 * 1024)}"}`
  )
)
const tokenStatus = fc.constantFrom(200, 201, 203, 400, 401, 403, 404, 408, 409, 429, 500, 502, 503, 504, 599)
const contentType = fc.constantFrom(
  "application/json",
  "application/json;charset=UTF-8",
  "text/html",
  "text/plain",
  "application/x-www-form-urlencoded"
)

/**
 * A valid RFC 6749 5.1 success, as issue #11 reads it: `access_token` visible
 * ASCII without spaces (A.12; it goes into a header as one token), `token_type`
 * an RFC 9110 token, `refresh_token` VSCHAR (A.17), `expires_in` at least 1 s.
 */
const validSuccess = fc.record({
  access_token: fc.stringMatching(/^[\x21-\x7e]{1,80}$/),
  token_type: fc.option(fc.constantFrom("Bearer", "bearer", "DPoP", "N_A"), { nil: undefined }),
  expires_in: fc.option(
    fc.oneof(fc.integer({ min: 1, max: 10_000_000 }), fc.double({ min: 1, max: 1e9, noNaN: true })),
    { nil: undefined }
  ),
  refresh_token: fc.option(fc.stringMatching(/^[\x20-\x7e]{1,80}$/), { nil: undefined }),
  scope: fc.option(fc.string({ maxLength: 40 }), { nil: undefined })
})

/** A character that cannot stand in a header value as part of one token. */
const notVisible = fc.oneof(
  fc.integer({ min: 0, max: 0x20 }).map((c) => String.fromCharCode(c)),
  fc.constantFrom("\u007f", "é", "\u00a0", "\u2028", "😀")
)

/** One field of a valid success made unusable, with the field's name and the bad value. */
const unusableSuccess = fc
  .tuple(
    validSuccess,
    fc.oneof(
      fc
        .tuple(fc.stringMatching(/^[\x21-\x7e]{8,40}$/), notVisible, fc.nat(40))
        .map(([t, c, at]) => ["access_token", `${t.slice(0, at)}${c}${t.slice(at)}`] as const),
      fc
        .tuple(
          fc.constantFrom("Bearer", "DPoP"),
          fc.constantFrom("\u0000", " ", "/", "@", ":", "é", "\r\n", "\t")
        )
        .map(([t, c]) => ["token_type", `${t}${c}`] as const),
      fc
        .tuple(
          fc.stringMatching(/^[\x21-\x7e]{8,40}$/),
          notVisible.filter((c) => c !== " "),
          fc.nat(40)
        )
        .map(([t, c, at]) => ["refresh_token", `${t.slice(0, at)}${c}${t.slice(at)}`] as const),
      fc
        .oneof(
          fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
          fc.constantFrom(1e-9, 0.5, 0.999)
        )
        .map((e) => ["expires_in", e] as const)
    )
  )
  .map(([valid, [field, value]]) => ({ body: { ...valid, [field]: value }, field, value }))

describe("TokenEndpoint.request (token responses and OAuth errors)", () => {
  it("never crashes: any status and body give a token or a typed error, never a defect", async () => {
    await fc.assert(
      fc.asyncProperty(
        tokenStatus,
        contentType,
        tokenBody,
        fc.option(
          anyText.filter((t) => /^[\t\x20-\x7e]*$/.test(t)),
          { nil: undefined }
        ),
        async (s, type, body, retryAfter) => {
          next = {
            status: s,
            headers: {
              "content-type": type,
              ...(retryAfter === undefined ? {} : { "retry-after": retryAfter })
            },
            body
          }
          const exit = await requestToken("property-secret-value")
          if (Exit.isSuccess(exit)) {
            expect(typeof Redacted.value(exit.value.accessToken)).toBe("string")
            expect(Redacted.value(exit.value.accessToken).length).toBeGreaterThan(0)
            expect(s).toBeGreaterThanOrEqual(200)
            expect(s).toBeLessThan(300)
            return
          }
          const failure = exit.cause.reasons.find((r) => r._tag === "Fail") as
            | { error: { _tag: string } }
            | undefined
          expect(failure, `not a typed failure: ${inspect(exit.cause)}`).toBeDefined()
          expect(TYPED.has(failure!.error._tag)).toBe(true)
        }
      ),
      { numRuns: RUNS.tokenTotal }
    )
  })

  it("a valid RFC 6749 5.1 success is read field for field", async () => {
    await fc.assert(
      fc.asyncProperty(validSuccess, fc.constantFrom(200, 201), async (t, s) => {
        next = { status: s, headers: { "content-type": "application/json" }, body: JSON.stringify(t) }
        const exit = await requestToken("property-secret-value")
        expect(Exit.isSuccess(exit), inspect(exit)).toBe(true)
        if (!Exit.isSuccess(exit)) return
        expect(Redacted.value(exit.value.accessToken)).toBe(t.access_token)
        expect(exit.value.tokenType).toBe(t.token_type ?? "Bearer")
        // lifetimes past ten years are clamped (TokenEndpoint.MAX_EXPIRES_IN)
        expect(exit.value.expiresIn).toBe(
          t.expires_in === undefined ? undefined : Math.min(t.expires_in, TokenEndpoint.MAX_EXPIRES_IN)
        )
        expect(exit.value.refreshToken && Redacted.value(exit.value.refreshToken)).toBe(t.refresh_token)
        expect(exit.value.scope).toBe(t.scope)
      }),
      { numRuns: RUNS.tokenValid }
    )
  })

  it("a 200 whose token cannot go into a header, or lives under 1 s, is refused naming the field, never the value", async () => {
    await fc.assert(
      fc.asyncProperty(unusableSuccess, async ({ body, field, value }) => {
        next = { status: 200, headers: { "content-type": "application/json" }, body: JSON.stringify(body) }
        const exit = await requestToken("property-secret-value")
        expect(Exit.isFailure(exit), `accepted ${field} ${JSON.stringify(value)}`).toBe(true)
        if (!Exit.isFailure(exit)) return
        const failure = exit.cause.reasons.find((r) => r._tag === "Fail") as
          | { error: { _tag: string; reason: string } }
          | undefined
        expect(failure?.error._tag).toBe("InvalidTokenResponseError")
        expect(failure?.error.reason).toContain(field)
        for (const text of renderings(failure?.error)) {
          if (typeof value === "string") expect(text).not.toContain(value)
          for (const secret of [body.access_token, body.refresh_token])
            if (typeof secret === "string" && secret.length >= 8) expect(text).not.toContain(secret)
        }
      }),
      { numRuns: RUNS.tokenUnusable }
    )
  })

  it("classification: 2xx but not a token → InvalidTokenResponseError; 429 → RateLimitedError; an OAuth error body → OAuthError; else TokenEndpointError", async () => {
    const errorCode = fc.stringMatching(/^[a-z_]{1,30}$/)
    const answer = fc.oneof(
      fc.record({
        kind: fc.constant("oauth" as const),
        error: errorCode,
        description: fc.option(fc.string({ maxLength: 40 }), { nil: undefined })
      }),
      fc.record({
        kind: fc.constant("other" as const),
        body: fc.oneof(
          anyText,
          fc.jsonValue().map((v) => JSON.stringify(v))
        )
      })
    )
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(200, 400, 401, 403, 429, 500, 503), answer, async (s, a) => {
        const body =
          a.kind === "oauth"
            ? JSON.stringify({
                error: a.error,
                ...(a.description === undefined ? {} : { error_description: a.description })
              })
            : a.body
        next = { status: s, headers: { "content-type": "application/json", "retry-after": "7" }, body }
        const exit = await requestToken("property-secret-value")
        let parsed: unknown
        try {
          parsed = JSON.parse(body)
        } catch {
          parsed = undefined
        }
        const isToken =
          typeof parsed === "object" &&
          parsed !== null &&
          typeof (parsed as { access_token?: unknown }).access_token === "string"
        if (s === 200) {
          if (Exit.isSuccess(exit)) {
            expect(isToken).toBe(true)
          } else {
            const error = (exit.cause.reasons.find((r) => r._tag === "Fail") as { error: { _tag: string } })
              .error
            expect(error._tag).toBe("InvalidTokenResponseError")
          }
          return
        }
        expect(Exit.isFailure(exit)).toBe(true)
        if (!Exit.isFailure(exit)) return
        const error = (
          exit.cause.reasons.find((r) => r._tag === "Fail") as {
            error: { _tag: string; code?: string; retryAfterMillis?: number; status?: number }
          }
        ).error
        if (s === 429) {
          expect(error._tag).toBe("RateLimitedError")
          expect(error.retryAfterMillis).toBe(7000)
        } else if (a.kind === "oauth") {
          expect(error._tag).toBe("OAuthError")
          expect(error.code).toBe(a.error)
        } else {
          const oauthShaped =
            typeof parsed === "object" &&
            parsed !== null &&
            typeof (parsed as { error?: unknown }).error === "string" &&
            (parsed as { error: string }).error !== ""
          expect(error._tag).toBe(oauthShaped ? "OAuthError" : "TokenEndpointError")
          if (!oauthShaped) expect(error.status).toBe(s)
        }
      }),
      { numRuns: RUNS.tokenClassified }
    )
  })

  it("a server that echoes the request (form body, Authorization, decoded credentials) into its error never gets the secret into the error", async () => {
    const secret = fc.string({ unit: "grapheme", minLength: 8, maxLength: 40 })
    await fc.assert(
      fc.asyncProperty(
        secret,
        fc.constantFrom("client_secret_post" as const, "client_secret_basic" as const),
        fc.constantFrom(400, 401, 500),
        async (s, clientAuth, st) => {
          next = {
            status: st,
            headers: { "content-type": "application/json" },
            body: ({ body, authorization }) => {
              const form = [...new URLSearchParams(body)].map(([k, v]) => `${k}=${v}`).join(" ")
              const basic = authorization?.startsWith("Basic ")
                ? Buffer.from(authorization.slice(6), "base64").toString("utf8")
                : ""
              return JSON.stringify({
                error: "invalid_client",
                error_description: `raw ${body} decoded ${form} auth ${authorization} basic ${basic}`,
                error_uri: `https://errors.example/?${body}`
              })
            }
          }
          const exit = await requestToken(s, clientAuth)
          expect(Exit.isFailure(exit)).toBe(true)
          const rendered = [inspect(exit, { depth: 10, showHidden: true }), JSON.stringify(exit)]
          if (Exit.isFailure(exit)) {
            const error = (exit.cause.reasons.find((r) => r._tag === "Fail") as { error: Error }).error
            rendered.push(
              error.message,
              String(error),
              JSON.stringify(error),
              inspect(error, { depth: 10, showHidden: true }),
              error.stack ?? ""
            )
          }
          const form = (v: string) => new URLSearchParams({ v }).toString().slice(2)
          const spellings = [
            s,
            encodeURIComponent(s),
            form(s),
            Buffer.from(`property-client:${form(s)}`).toString("base64")
          ]
          for (const text of rendered) for (const spelling of spellings) expect(text).not.toContain(spelling)
        }
      ),
      { numRuns: RUNS.tokenSecrets }
    )
  })
})

describe("TokenSource with any expires_in the decoder accepts", () => {
  let run = 0
  /** a source with its own client id: requests of an earlier run (still in flight) are not counted */
  const sourceFor = (expiresIn: number) => {
    const clientId = `lifetime-property-${++run}`
    let requests = 0
    next = {
      status: 200,
      headers: { "content-type": "application/json" },
      body: ({ body }) => {
        if (new URLSearchParams(body).get("client_id") === clientId) requests++
        return JSON.stringify({ access_token: "lifetime-property-token", expires_in: expiresIn })
      }
    }
    const tokens = createTokenSource({
      tokenUrl,
      clientId,
      clientSecret: "lifetime-secret",
      rateLimit: false
    })
    return { tokens, requests: () => requests }
  }

  it("an ordinary lifetime (up to 10 years) renders, and is requested once", async () => {
    await fc.assert(
      fc.asyncProperty(fc.double({ min: 60, max: 10 * 365 * 86_400, noNaN: true }), async (expiresIn) => {
        const { tokens, requests } = sourceFor(expiresIn)
        try {
          const token = await tokens.getToken()
          String(token)
          inspect(token, { depth: 10, showHidden: true })
          await new Promise((r) => setTimeout(r, 5))
          expect(requests()).toBe(1)
        } finally {
          await tokens.dispose()
        }
      }),
      { numRuns: RUNS.tokenRenders }
    )
  })

  /**
   * `expires_in` is accepted when it is any positive finite number. From about
   * 8.6e12 s the expiry is past the largest `Date`, and `String(token)` and
   * `util.inspect(token)` throw `RangeError: Invalid time value` (a logger
   * that prints the token crashes). Known bug (reported).
   */
  it("a token with an absurd lifetime can still be printed (expires_in is clamped)", async () => {
    await fc.assert(
      fc.asyncProperty(fc.double({ min: 60, max: 1e308, noNaN: true }), async (expiresIn) => {
        const { tokens } = sourceFor(expiresIn)
        try {
          const token = await tokens.getToken()
          String(token)
          inspect(token, { depth: 10, showHidden: true })
        } finally {
          await tokens.dispose()
        }
      }),
      { numRuns: RUNS.tokenRenders, endOnFailure: true }
    )
  })

  /**
   * From about 1.8e305 s the lifetime in milliseconds is `Infinity`,
   * `refreshAt` is `NaN`, and the refresh loop requests a new token at once,
   * again and again: hundreds of token requests a second (100 a minute, for
   * ever, with the default client-side limit). Known bug (reported).
   */
  it("a lifetime that would overflow to Infinity does not make refresh-ahead spin (clamped)", async () => {
    await fc.assert(
      fc.asyncProperty(fc.double({ min: 1e300, max: 1e308, noNaN: true }), async (expiresIn) => {
        const { tokens, requests } = sourceFor(expiresIn)
        try {
          await tokens.getToken()
          await new Promise((r) => setTimeout(r, 50))
          expect(requests()).toBe(1)
        } finally {
          await tokens.dispose()
        }
      }),
      { numRuns: RUNS.tokenLifetimeNoStorm, endOnFailure: true }
    )
  })
})

// ---------------------------------------------------------------------------
// proxy paths

/** percent-decoding that never gives up: valid `%XX` bytes decoded (as Latin-1), the rest kept */
const lenientDecode = (s: string) =>
  s.replace(/%([0-9a-fA-F]{2})/g, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)))

/** the path after 0, 1, 2, ... decodings (strict and lenient), until nothing changes */
const decodings = (path: string): Array<string> => {
  const out = new Set<string>([path])
  let frontier = [path]
  for (let i = 0; i < 8 && frontier.length > 0; i++) {
    const nextLayer: Array<string> = []
    for (const p of frontier) {
      const candidates = [lenientDecode(p)]
      try {
        candidates.push(decodeURIComponent(p))
      } catch {
        // malformed for a strict decoder: the lenient one still counts
      }
      for (const c of candidates) {
        if (!out.has(c)) {
          out.add(c)
          nextLayer.push(c)
        }
      }
    }
    frontier = nextLayer
  }
  return [...out]
}

const PATH_PIECES = [
  "/",
  "/",
  "a",
  "v1",
  ".",
  "..",
  "%2e",
  "%2E",
  "%252e",
  "%25",
  "2e",
  "%2f",
  "%2F",
  "%5c",
  "%5C",
  "\\",
  ";",
  ";x",
  "?",
  "#",
  "%3f",
  "%23",
  "%00",
  "\u0000",
  "\t",
  "%09",
  "%",
  "%%",
  "%c0%ae",
  "\uff0e",
  "//",
  "http:",
  "C:",
  "~",
  "-",
  "_"
]

describe("BffProxy.checkPath", () => {
  it("never throws", () => {
    fc.assert(
      fc.property(fc.oneof(anyText, adversarial(PATH_PIECES, 30)), (raw) => {
        const verdict = ProxyModule.checkPath(raw)
        expect(typeof verdict.ok).toBe("boolean")
      }),
      { numRuns: RUNS.checkPathTotal }
    )
  })

  it("an accepted path is clean after any number of decodings: no dot segment, no //, no backslash, no control character", () => {
    fc.assert(
      fc.property(
        adversarial(PATH_PIECES, 30).map((p) => `/${p}`),
        (raw) => {
          const verdict = ProxyModule.checkPath(raw)
          if (!verdict.ok) return
          expect(verdict.path.startsWith("/")).toBe(true)
          expect(verdict.path.startsWith("//")).toBe(false)
          for (const layer of decodings(verdict.path)) {
            const segments = layer
              .split("/")
              .slice(1)
              .map((s) => s.split(";")[0])
            expect(
              segments,
              `dot segment in ${JSON.stringify(layer)} from ${JSON.stringify(raw)}`
            ).not.toContain("..")
            expect(segments).not.toContain(".")
            expect(layer.includes("//"), `// in ${JSON.stringify(layer)}`).toBe(false)
            expect(layer.includes("\\"), `backslash in ${JSON.stringify(layer)}`).toBe(false)
            expect(layer).not.toMatch(CONTROL)
          }
        }
      ),
      { numRuns: RUNS.checkPathAccepted }
    )
  })

  it("paths of segments from the unreserved alphabet (with a query) are accepted as they are", () => {
    const segment = fc.stringMatching(/^[A-Za-z0-9._~-]{1,16}$/).filter((s) => s !== "." && s !== "..")
    const query = fc.option(fc.stringMatching(/^[A-Za-z0-9=&._~%-]{0,30}$/), { nil: undefined })
    fc.assert(
      fc.property(
        fc.array(segment, { minLength: 1, maxLength: 6 }),
        fc.boolean(),
        query,
        (segments, slash, q) => {
          const path = `/${segments.join("/")}${slash ? "/" : ""}`
          const raw = q === undefined ? path : `${path}?${q}`
          expect(ProxyModule.checkPath(raw)).toEqual({
            ok: true,
            path,
            search: q === undefined ? "" : `?${q}`
          })
        }
      ),
      { numRuns: RUNS.checkPathSafe }
    )
  })

  /**
   * What `checkPath` refuses as a look-alike: a segment an upstream that
   * normalises Unicode (NFKC) or trims blanks would read as nothing, as a dot
   * segment, or with a slash in it (`．．`, `%20`, `／`).
   */
  const looksAlike = (s: string): boolean => {
    if (/^[\x21-\x7e]*$/.test(s)) return false
    const folded = s
      .normalize("NFKC")
      .replace(/[\u3002\uff61]/g, ".")
      .replace(/[\s\p{Cf}]/gu, "")
    return folded === "" || /^\.+$/.test(folded) || /[/\\]/.test(folded)
  }

  it("percent-encoded Unicode segments are accepted (when they hold no %, /, \\, ?, #, ; or control character, and fold to no look-alike)", () => {
    const segment = unicodeText.filter(
      (s) =>
        s.length > 0 && s !== "." && s !== ".." && !/[%/\\?#;]/.test(s) && !CONTROL.test(s) && !looksAlike(s)
    )
    fc.assert(
      fc.property(fc.array(segment, { minLength: 1, maxLength: 4 }), (segments) => {
        const path = `/${segments.map(encodeURIComponent).join("/")}`
        expect(ProxyModule.checkPath(path)).toEqual({ ok: true, path, search: "" })
      }),
      { numRuns: RUNS.checkPathEncoded }
    )
  })
})

describe("BffProxy.checkPath, a literal %", () => {
  /**
   * Decoding repeatedly (to catch `%252e%252e`) must not refuse a segment
   * holding a literal `%` correctly encoded once (`100%` → `100%25`): below
   * the first layer a `%` that is not an escape is taken as itself.
   */
  it("a segment holding a literal % (not an escape), encoded once, is accepted", () => {
    const segment = unicodeText.filter(
      (s) =>
        s.includes("%") &&
        !/%[0-9a-fA-F]{2}/.test(s) &&
        s !== "." &&
        s !== ".." &&
        !/[/\\?#;]/.test(s) &&
        !CONTROL.test(s) &&
        // what an NFKC-normalising upstream reads as a slash or a dot segment is refused on purpose
        // (`℀` is "a/c"): not what this property is about
        !/[/\\]/.test(s.normalize("NFKC")) &&
        !/^[.\s\p{Cf}\u3002\uff61]*$/u.test(s.normalize("NFKC"))
    )
    fc.assert(
      fc.property(segment, (s) => {
        const path = `/v1/files/${encodeURIComponent(s)}`
        expect(ProxyModule.checkPath(path)).toEqual({ ok: true, path, search: "" })
      }),
      { numRuns: 200 }
    )
  })
})

describe("BffProxy.createProxyHandler", () => {
  let tokens: TokenSourceHandle
  beforeAll(() => {
    next = {
      status: 200,
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ access_token: "proxy-property-token", expires_in: 3600 })
    }
    tokens = createTokenSource({
      tokenUrl,
      clientId: "proxy-property",
      clientSecret: "proxy-property-secret"
    })
  })
  afterAll(() => tokens.dispose())

  it("whatever path a caller sends, nothing is fetched outside the upstream base", async () => {
    const seen: Array<string> = []
    const handle = ProxyModule.createProxyHandler({
      tokens,
      baseUrl: "https://upstream.example/api/base",
      retry: false,
      fetch: async (input) => {
        seen.push(input instanceof Request ? input.url : String(input))
        return new Response("{}", { status: 200, headers: { "content-type": "application/json" } })
      }
    })
    await fc.assert(
      fc.asyncProperty(
        adversarial(PATH_PIECES, 30).map((p) => `/${p}`),
        async (raw) => {
          seen.length = 0
          const response = await handle(new Request("https://bff.example/x"), raw)
          expect([200, 400, 404]).toContain(response.status)
          for (const url of seen) {
            const u = new URL(url)
            expect(u.origin).toBe("https://upstream.example")
            expect(`${u.pathname}/`.startsWith("/api/base/")).toBe(true)
          }
        }
      ),
      { numRuns: RUNS.proxyStaysUnderBase }
    )
  })
})
