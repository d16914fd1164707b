/**
 * `Problem`: HTTP error responses into one typed error, leniently, on the
 * bodies WEX documents and on garbage.
 */
import { describe, expect, it } from "vitest"
import {
  DEFAULT_MAX_BODY_BYTES,
  fromResponse,
  isProblemContentType,
  ProblemDetailsError,
  parse,
  parseLenientJson,
  parseWwwAuthenticate
} from "../src/Problem.ts"

const problemJson = { "content-type": "application/problem+json" }
const json = { "content-type": "application/json" }

const parseWith = (status: number, headers: Record<string, string>, body: string) =>
  parse({ status, headers: new Headers(headers), body })

// Verbatim from the WEX Health Benefits Platform docs: note the trailing comma.
const wexExpired = `{
"type": "https://platform.benefits.wexglobal.com/api/dksj",
"title": "Unauthorized",
"detail": "The request requires user authentication.",
"instance": "path/to/resource",
}`

describe("parse: documented WEX bodies", () => {
  it("reads the expired-token problem+json despite its trailing comma", () => {
    expect(JSON.parse.bind(null, wexExpired)).toThrow()
    const problem = parseWith(401, problemJson, wexExpired)
    expect(problem).toBeInstanceOf(ProblemDetailsError)
    expect(problem._tag).toBe("ProblemDetailsError")
    expect(problem.status).toBe(401)
    expect(problem.type).toBe("https://platform.benefits.wexglobal.com/api/dksj")
    expect(problem.title).toBe("Unauthorized")
    expect(problem.detail).toBe("The request requires user authentication.")
    expect(problem.instance).toBe("path/to/resource")
    expect(problem.extensions).toEqual({})
    expect(problem.oauthError).toBeUndefined()
    expect(problem.body).toBe(wexExpired)
    expect(problem.message).toBe("HTTP 401 Unauthorized: The request requires user authentication.")
  })

  it('reads {"error":"Unauthorized","error_description":"Unauthorized"}', () => {
    const problem = parseWith(401, json, '{"error":"Unauthorized","error_description":"Unauthorized"}')
    expect(problem.oauthError).toEqual({ error: "Unauthorized", errorDescription: "Unauthorized" })
    expect(problem.type).toBe("about:blank")
    expect(problem.title).toBe("Unauthorized")
    expect(problem.detail).toBe("Unauthorized")
    // no "Unauthorized: Unauthorized (Unauthorized)"
    expect(problem.message).toBe("HTTP 401 Unauthorized")
  })

  it('reads {"error":"unauthorized","error_description":"Full authentication is required ..."}', () => {
    const body =
      '{"error":"unauthorized","error_description":"Full authentication is required to access this resource"}'
    const problem = parseWith(401, json, body)
    expect(problem.oauthError?.error).toBe("unauthorized")
    expect(problem.oauthError?.errorDescription).toBe(
      "Full authentication is required to access this resource"
    )
    expect(problem.title).toBe("Unauthorized")
    expect(problem.detail).toBe("Full authentication is required to access this resource")
    expect(problem.extensions).toEqual({
      error: "unauthorized",
      error_description: "Full authentication is required to access this resource"
    })
    expect(problem.message).toBe(
      "HTTP 401 Unauthorized: Full authentication is required to access this resource"
    )
  })
})

describe("parse: problem objects", () => {
  it("recognises a problem served as application/json by its members", () => {
    const problem = parseWith(404, json, '{"title":"No such consumer","detail":"12345","traceId":"t-1"}')
    expect(problem.type).toBe("about:blank")
    expect(problem.title).toBe("No such consumer")
    expect(problem.detail).toBe("12345")
    expect(problem.extensions).toEqual({ traceId: "t-1" })
  })

  it("treats any object served as problem+json as a problem, with about:blank and the reason phrase", () => {
    const problem = parseWith(503, { "content-type": "Application/Problem+JSON; charset=utf-8" }, '{"x":1}')
    expect(problem.type).toBe("about:blank")
    expect(problem.title).toBe("Service Unavailable")
    expect(problem.extensions).toEqual({ x: 1 })
  })

  it("drops members of the wrong type instead of failing", () => {
    const body =
      '{"type":"https://e.example/t","title":42,"detail":["no"],"instance":{},"status":"401","n":1}'
    const problem = parseWith(401, problemJson, body)
    expect(problem.type).toBe("https://e.example/t")
    expect(problem.title).toBeUndefined() // not the reason phrase: it would not describe this type
    expect(problem.detail).toBeUndefined()
    expect(problem.instance).toBeUndefined()
    expect(problem.extensions).toEqual({ n: 1 })
    expect(problem.message).toBe("HTTP 401 Unauthorized")
  })

  it("a wrong-typed type defaults to about:blank", () => {
    const problem = parseWith(400, problemJson, '{"type":7,"detail":"bad"}')
    expect(problem.type).toBe("about:blank")
    expect(problem.title).toBe("Bad Request")
  })

  it("keeps the HTTP status; a disagreeing status member goes to extensions, an agreeing one is dropped", () => {
    const disagreeing = parseWith(502, problemJson, '{"status":401,"title":"Unauthorized"}')
    expect(disagreeing.status).toBe(502)
    expect(disagreeing.extensions).toEqual({ status: 401 })
    const agreeing = parseWith(401, problemJson, '{"status":401,"title":"Unauthorized"}')
    expect(agreeing.status).toBe(401)
    expect(agreeing.extensions).toEqual({})
  })

  it("a problem that also carries an OAuth error exposes both", () => {
    const body = '{"timestamp":"2024-01-01","status":401,"error":"Unauthorized","path":"/x"}'
    const problem = parseWith(401, json, body)
    expect(problem.oauthError).toEqual({ error: "Unauthorized" })
    expect(problem.extensions).toEqual({ timestamp: "2024-01-01", error: "Unauthorized", path: "/x" })
  })

  it("keeps a member named __proto__ as data, without touching prototypes", () => {
    const problem = parseWith(400, problemJson, '{"title":"t","__proto__":{"polluted":true}}')
    expect(Object.hasOwn(problem.extensions, "__proto__")).toBe(true)
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
    expect(Object.getPrototypeOf(problem.extensions)).toBe(Object.prototype)
  })
})

describe("parse: WWW-Authenticate", () => {
  const bearer = 'Bearer realm="example", error="invalid_token", error_description="The access token expired"'

  it("takes the Bearer error when the body says nothing", () => {
    const problem = parseWith(401, { "www-authenticate": bearer }, "")
    expect(problem.oauthError).toEqual({
      error: "invalid_token",
      errorDescription: "The access token expired"
    })
    expect(problem.type).toBe("about:blank")
    expect(problem.title).toBe("Unauthorized")
    expect(problem.detail).toBe("The access token expired")
    expect(problem.message).toBe("HTTP 401 Unauthorized: The access token expired (invalid_token)")
  })

  it("keeps a problem body's members and adds the challenge as oauthError", () => {
    const problem = parseWith(401, { ...problemJson, "www-authenticate": bearer }, wexExpired)
    expect(problem.title).toBe("Unauthorized")
    expect(problem.detail).toBe("The request requires user authentication.")
    expect(problem.type).toBe("https://platform.benefits.wexglobal.com/api/dksj")
    expect(problem.oauthError?.error).toBe("invalid_token")
  })

  it("prefers the body's OAuth error to the challenge's", () => {
    const problem = parseWith(
      401,
      { ...json, "www-authenticate": bearer },
      '{"error":"unauthorized","error_description":"from body"}'
    )
    expect(problem.oauthError).toEqual({ error: "unauthorized", errorDescription: "from body" })
    expect(problem.detail).toBe("from body")
  })

  it("finds the Bearer challenge after another one, with its scope", () => {
    const problem = parseWith(
      403,
      { "www-authenticate": 'Basic realm="x", Bearer error="insufficient_scope", scope="a b"' },
      "<html><body>Forbidden</body></html>"
    )
    expect(problem.oauthError).toEqual({ error: "insufficient_scope", scope: "a b" })
    expect(problem.message).toBe("HTTP 403 Forbidden: insufficient_scope")
  })

  it("ignores a Bearer challenge without an error (RFC 6750 3.1: no token sent)", () => {
    const problem = parseWith(401, { "www-authenticate": 'Bearer realm="example"' }, "")
    expect(problem.oauthError).toBeUndefined()
    expect(problem.message).toBe("HTTP 401 Unauthorized")
  })
})

describe("parseWwwAuthenticate", () => {
  it("reads one Bearer challenge with quoted params, lower-casing scheme and names", () => {
    expect(
      parseWwwAuthenticate(
        'BEARER Realm="example", Error="invalid_token", error_description="The access token expired"'
      )
    ).toEqual([
      {
        scheme: "bearer",
        params: { realm: "example", error: "invalid_token", error_description: "The access token expired" }
      }
    ])
  })

  it("splits several challenges", () => {
    expect(parseWwwAuthenticate('Basic realm="x", Bearer error="insufficient_scope", scope="a b"')).toEqual([
      { scheme: "basic", params: { realm: "x" } },
      { scheme: "bearer", params: { error: "insufficient_scope", scope: "a b" } }
    ])
  })

  it("unescapes quoted-pairs and keeps commas and equals signs inside quotes", () => {
    const [challenge] = parseWwwAuthenticate(
      'Bearer error_description="say \\"hi\\", then \\\\ leave", realm="a, b=c", error=invalid_token'
    )
    expect(challenge?.params).toEqual({
      error_description: 'say "hi", then \\ leave',
      realm: "a, b=c",
      error: "invalid_token"
    })
  })

  it("reads token68 credentials and schemes without parameters", () => {
    expect(parseWwwAuthenticate("Negotiate abc==")).toEqual([
      { scheme: "negotiate", params: {}, token68: "abc==" }
    ])
    expect(parseWwwAuthenticate('Negotiate, NTLM abc+/9=, Bearer realm="r"')).toEqual([
      { scheme: "negotiate", params: {} },
      { scheme: "ntlm", params: {}, token68: "abc+/9=" },
      { scheme: "bearer", params: { realm: "r" } }
    ])
  })

  it("tolerates whitespace around = and a first-wins repeated name", () => {
    expect(parseWwwAuthenticate('Bearer error = "a" ,  error="b",scope=x')).toEqual([
      { scheme: "bearer", params: { error: "a", scope: "x" } }
    ])
  })

  it("survives garbage", () => {
    expect(parseWwwAuthenticate('Bearer error="unterminated')).toEqual([
      { scheme: "bearer", params: { error: "unterminated" } }
    ])
    expect(parseWwwAuthenticate("")).toEqual([])
    expect(parseWwwAuthenticate(null)).toEqual([])
    expect(parseWwwAuthenticate(undefined)).toEqual([])
    expect(parseWwwAuthenticate(",,, ,")).toEqual([])
    expect(parseWwwAuthenticate('"quoted", Bearer error="x"')).toEqual([
      { scheme: "bearer", params: { error: "x" } }
    ])
    expect(parseWwwAuthenticate('Bearer ="x", error="y"')).toEqual([
      { scheme: "bearer", params: { error: "y" } }
    ])
    expect(parseWwwAuthenticate('Bearer"x", Basic')).toEqual([{ scheme: "basic", params: {} }])
    expect(parseWwwAuthenticate('Bearer error="x" scope="y"')).toEqual([
      { scheme: "bearer", params: { error: "x", scope: "y" } }
    ])
    expect(parseWwwAuthenticate("Bearer \\")).toEqual([{ scheme: "bearer", params: {} }])
  })

  it("keeps a parameter named __proto__ as data", () => {
    const [challenge] = parseWwwAuthenticate('Bearer __proto__="x", error="e"')
    expect(Object.hasOwn(challenge!.params, "__proto__")).toBe(true)
    expect(challenge!.params.error).toBe("e")
  })
})

describe("parseLenientJson", () => {
  it("parses JSON and repairs trailing commas outside strings only", () => {
    expect(parseLenientJson('{"a":[1,2,],}')).toEqual({ a: [1, 2] })
    expect(parseLenientJson('{"detail":"a,}"}')).toEqual({ detail: "a,}" })
    expect(parseLenientJson('{"detail":"a,}", "b":"x, ]",\n}')).toEqual({ detail: "a,}", b: "x, ]" })
    expect(parseLenientJson('{"d":"q\\",}",}')).toEqual({ d: 'q",}' })
    expect(parseLenientJson("[1,\r\n\t ]")).toEqual([1])
  })

  it("strips a UTF-8 BOM", () => {
    const text = '\uFEFF{"title":"Unauthorized"}'
    expect(JSON.parse.bind(null, text)).toThrow()
    expect(parseLenientJson(text)).toEqual({ title: "Unauthorized" })
    const problem = parseWith(401, problemJson, '\uFEFF{"title":"Unauthorized","detail":"d",}')
    expect(problem.detail).toBe("d")
  })

  it("returns undefined for what is still not JSON, and JSON null for null", () => {
    expect(parseLenientJson("<html>")).toBeUndefined()
    expect(parseLenientJson("")).toBeUndefined()
    expect(parseLenientJson("[1,,]")).toBeUndefined()
    expect(parseLenientJson('{"a":"unterminated,}')).toBeUndefined()
    expect(parseLenientJson("null")).toBeNull()
  })
})

describe("parse: bodies that are not problems", () => {
  const cases: ReadonlyArray<readonly [string, string]> = [
    ["HTML", "<!doctype html><html><body><h1>401 Unauthorized</h1></body></html>"],
    ["empty", ""],
    ["null", "null"],
    ["an array", '[{"title":"x"}]'],
    ["a number", "401"],
    ["a string", '"Unauthorized"'],
    ["an object without members", '{"message":"nope"}'],
    ["an object with an empty error", '{"error":""}']
  ]
  for (const [name, body] of cases) {
    it(`${name} gives a bare problem`, () => {
      const problem = parseWith(401, json, body)
      expect(problem).toBeInstanceOf(ProblemDetailsError)
      expect(problem.type).toBe("about:blank")
      expect(problem.title).toBe("Unauthorized")
      expect(problem.detail).toBeUndefined()
      expect(problem.oauthError).toBeUndefined()
      expect(problem.body).toBe(body)
      expect(problem.message).toBe("HTTP 401 Unauthorized")
    })
  }

  it("an unknown status has no title", () => {
    const problem = parseWith(499, {}, "")
    expect(problem.title).toBeUndefined()
    expect(problem.message).toBe("HTTP 499")
  })

  it("1 MiB of garbage", () => {
    const garbage = Array.from({ length: 1024 * 1024 }, (_, i) => '{[",:}]\\ a'[(i * 7919) % 10]).join("")
    const problem = parseWith(500, problemJson, garbage)
    expect(problem.title).toBe("Internal Server Error")
    expect(problem.body.length).toBe(1024 * 1024)
  })

  it("100,000 nested arrays, alone and inside a problem, without a stack overflow", () => {
    const deep = "[".repeat(100_000) + "]".repeat(100_000)
    const alone = parseWith(400, json, deep)
    expect(alone.type).toBe("about:blank")
    const inside = parseWith(400, problemJson, `{"title":"t","x":${deep}}`)
    expect(inside.title).toBe("Bad Request") // too deep to be read as JSON
    expect(() => JSON.stringify(inside)).not.toThrow()
    const unclosed = parseWith(400, json, "[".repeat(100_000))
    expect(unclosed.type).toBe("about:blank")
  })

  it("collapses newlines and control characters in the message, and shortens it", () => {
    const problem = parseWith(
      400,
      problemJson,
      JSON.stringify({ title: "Bad\r\nInjected:\u001b[31m\u202e yes", detail: "x".repeat(500) })
    )
    for (const char of ["\r", "\n", "\u001b", "\u202e"]) expect(problem.message).not.toContain(char)
    expect(problem.message.startsWith("HTTP 400 Bad Injected: [31m yes: xxx")).toBe(true)
    expect(problem.message.length).toBeLessThan(250)
    expect(problem.detail).toHaveLength(500)
  })
})

describe("request URL", () => {
  const secretUrl =
    "https://user:pa55@api.example.com/v1/consumers/12345?access_token=SECRET-123&x=1#frag-SECRET"

  it("drops query, fragment and userinfo; the error never shows them", () => {
    const problem = parse({
      status: 401,
      headers: new Headers(problemJson),
      body: wexExpired,
      method: "GET",
      url: secretUrl
    })
    expect(problem.url).toBe("https://api.example.com/v1/consumers/12345")
    expect(problem.method).toBe("GET")
    for (const text of [JSON.stringify(problem), String(problem), problem.message, problem.stack ?? ""]) {
      expect(text).not.toContain("SECRET")
      expect(text).not.toContain("pa55")
    }
  })

  it("cuts a relative URL at ? or #", () => {
    expect(parse({ status: 404, headers: new Headers(), body: "", url: "/v1/x?token=SECRET" }).url).toBe(
      "/v1/x"
    )
    expect(parse({ status: 404, headers: new Headers(), body: "", url: "/v1/y#SECRET" }).url).toBe("/v1/y")
  })
})

describe("isProblemContentType", () => {
  it("matches application/problem+json with parameters, in any case", () => {
    expect(isProblemContentType("application/problem+json")).toBe(true)
    expect(isProblemContentType(" Application/Problem+JSON ; charset=UTF-8")).toBe(true)
    expect(isProblemContentType("application/json")).toBe(false)
    expect(isProblemContentType("application/problem+jsonx")).toBe(false)
    expect(isProblemContentType("text/html; profile=application/problem+json")).toBe(false)
    expect(isProblemContentType("")).toBe(false)
    expect(isProblemContentType(null)).toBe(false)
  })
})

/** A body of `total` ASCII bytes in `chunkSize` chunks, counting what was pulled and whether it was cancelled. */
const countingStream = (total: number, chunkSize: number) => {
  const state = { produced: 0, cancelled: false }
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (state.produced >= total) {
        controller.close()
        return
      }
      const size = Math.min(chunkSize, total - state.produced)
      controller.enqueue(new Uint8Array(size).fill(0x61))
      state.produced += size
    },
    cancel() {
      state.cancelled = true
    }
  })
  return { stream, state }
}

describe("fromResponse", () => {
  it("reads a problem+json response", async () => {
    const problem = await fromResponse(new Response(wexExpired, { status: 401, headers: problemJson }), {
      method: "GET",
      url: "https://platform.benefits.wexglobal.com/api/v1/x?k=SECRET"
    })
    expect(problem.detail).toBe("The request requires user authentication.")
    expect(problem.url).toBe("https://platform.benefits.wexglobal.com/api/v1/x")
    expect(problem.body).toBe(wexExpired)
  })

  it("cancels a 1 MiB body at the default 64 KiB cap and keeps its first 64 KiB", async () => {
    const { stream, state } = countingStream(1024 * 1024, 16 * 1024)
    const response = new Response(stream, {
      status: 401,
      headers: { ...problemJson, "www-authenticate": 'Bearer error="invalid_token"' }
    })
    const problem = await fromResponse(response)
    expect(problem.body.length).toBe(DEFAULT_MAX_BODY_BYTES)
    expect(state.cancelled).toBe(true)
    expect(state.produced).toBeLessThan(1024 * 1024)
    expect(problem.type).toBe("about:blank")
    expect(problem.title).toBe("Unauthorized")
    expect(problem.oauthError?.error).toBe("invalid_token") // the header is still read
  })

  it("does not parse a truncated body, even one that would still look like JSON", async () => {
    const body = `{"title":"T","detail":"${"d".repeat(100)}"}`
    const problem = await fromResponse(new Response(body, { status: 400, headers: problemJson }), {
      maxBodyBytes: 50
    })
    expect(problem.body).toBe(body.slice(0, 50))
    expect(problem.title).toBe("Bad Request")
  })

  it("a body of exactly the cap is complete", async () => {
    const body = '{"title":"T"}'
    const problem = await fromResponse(new Response(body, { status: 400, headers: problemJson }), {
      maxBodyBytes: body.length
    })
    expect(problem.title).toBe("T")
  })

  it("does not split a multi-byte character at the cap", async () => {
    const problem = await fromResponse(new Response("ab€€", { status: 500 }), { maxBodyBytes: 4 })
    expect(problem.body).toBe("ab") // "€" is 3 bytes: the cut one is dropped, not turned into U+FFFD
  })

  it("a body stream that errors midway gives a bare problem with what arrived", async () => {
    let pulls = 0
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulls++
        if (pulls === 1) controller.enqueue(new TextEncoder().encode('{"title":"partial'))
        else controller.error(new Error("connection reset"))
      }
    })
    const problem = await fromResponse(new Response(stream, { status: 502, headers: problemJson }))
    expect(problem.type).toBe("about:blank")
    expect(problem.title).toBe("Bad Gateway")
    expect(problem.body).toBe('{"title":"partial')
  })

  it("a stalled body times out and is cancelled", async () => {
    let cancelled = false
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode("<html>"))
      },
      cancel() {
        cancelled = true
      }
    })
    const started = Date.now()
    const problem = await fromResponse(new Response(stream, { status: 504 }), { timeoutMillis: 50 })
    expect(Date.now() - started).toBeLessThan(5_000)
    expect(problem.body).toBe("<html>")
    expect(problem.title).toBe("Gateway Timeout")
    expect(cancelled).toBe(true)
  })

  it("a body already read, or no body, still gives a problem", async () => {
    const used = new Response('{"title":"T"}', { status: 409, headers: problemJson })
    await used.text()
    const problem = await fromResponse(used)
    expect(problem.status).toBe(409)
    expect(problem.title).toBe("Conflict")
    const empty = await fromResponse(new Response(null, { status: 401 }))
    expect(empty.message).toBe("HTTP 401 Unauthorized")
  })

  it("never rejects, even for something that is not a Response", async () => {
    const problem = await fromResponse({} as Response)
    expect(problem).toBeInstanceOf(ProblemDetailsError)
  })
})

describe("property: never throws", () => {
  /** mulberry32: a small seeded PRNG, so a failure reproduces. */
  const prng = (seed: number) => () => {
    seed = (seed + 0x6d2b79f5) | 0
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  const alphabet = [
    ...'{}[]",:\\ \t\n=;/abe0-1.E+tuflnrs',
    "true",
    "null",
    '"type"',
    '"title"',
    '"error"',
    "\uFEFF",
    "é"
  ]
  const random = prng(20240601)
  const randomString = () => {
    const length = Math.floor(random() * 48)
    let text = ""
    for (let i = 0; i < length; i++) text += alphabet[Math.floor(random() * alphabet.length)]
    return text
  }

  it("parse, parseLenientJson and parseWwwAuthenticate on 5,000 JSON-ish strings", () => {
    for (let i = 0; i < 5000; i++) {
      const text = randomString()
      const header = `Bearer ${randomString()}`
      expect(() => parseLenientJson(text)).not.toThrow()
      const challenges = parseWwwAuthenticate(text)
      expect(Array.isArray(challenges)).toBe(true)
      expect(Array.isArray(parseWwwAuthenticate(header))).toBe(true)
      const problem = parse({
        status: 400 + (i % 200),
        headers: new Headers({
          "content-type": i % 2 ? "application/problem+json" : "text/plain",
          // a header value cannot hold line breaks or characters past U+00FF
          "www-authenticate": header.replace(/[\n\uFEFF]/g, " ")
        }),
        body: text
      })
      expect(problem).toBeInstanceOf(ProblemDetailsError)
      expect(typeof problem.message).toBe("string")
      expect(() => JSON.stringify(problem)).not.toThrow()
    }
  })
})
