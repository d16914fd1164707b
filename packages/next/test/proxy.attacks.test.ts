/**
 * The shared proxy attack corpus against `createProxyRoute`, called as Next
 * calls a route module's exports, with the raw path preserved: once with the
 * `prefix` option and once with the mount derived from the catch-all params.
 * Then the same paths as the URL parser hands them over (normalised), and
 * what an allowed request looks like on both sides.
 *
 * Then the upstream half of the corpus (redirects, bodies echoing our token,
 * response headers, abandoned uploads, a 401 storm against the WEX
 * emulator's token budget) with real `Request`s, and the route's own
 * `onError` and argument checks.
 *
 * Runs in Node.js and in the Edge-runtime environment (see vitest.config.ts).
 * The corpus also runs against a real `next start` in examples/next-app.
 */
import { BffProxy, InvalidConfigError } from "@authfetch/core"
import { DEFAULT_CLIENT, type Sandbox, startSandbox } from "@authfetch/sandbox"
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest"
import { headerAttacks, hostileAllow, pathAttacks } from "../../core/test/proxy/attacks.ts"
import {
  answerOf,
  type CorpusTarget,
  describeAbandonedUploads,
  describeHostileUpstream,
  describeUnauthorizedStorm,
  type SendOptions,
  streamOf
} from "../../core/test/proxy/corpus.ts"
import { type HostileUpstream, startHostileUpstream } from "../../core/test/proxy/hostileUpstream.ts"
import { startTokenServer, type TokenServer } from "../../core/test/support/tokenServer.ts"
import { createProxyRoute, disposeTokenSources, type ProxyRoute } from "../src/index.ts"
import { dispatch, expectClean, nextParams, rawRequest } from "./support.ts"

/** In the Edge runtime the proxy's fetch is the platform's: it has no hold on the upstream's sockets. */
const EDGE = process.env.TEST_RUNTIME === "edge"
const HOSTILE_MOUNT = "/api/hostile"

const ORIGIN = "http://next.local"
const PREFIX = "/api/benefits"
const SECRET = "attack-suite-secret"

let auth: TokenServer
let upstream: TokenServer
let trap: TokenServer
let withPrefix: ProxyRoute
let derived: ProxyRoute
let trapHost: string
let sandbox: Sandbox
let hostile: HostileUpstream
let hostileTrap: HostileUpstream
let hostileRoute: ProxyRoute
let derivedHostileRoute: ProxyRoute
let patientRoute: ProxyRoute

beforeAll(async () => {
  ;[auth, upstream, trap, sandbox, hostile, hostileTrap] = await Promise.all([
    startTokenServer(),
    startTokenServer(),
    startTokenServer(),
    startSandbox({ profile: "wex" }),
    startHostileUpstream(),
    startHostileUpstream()
  ])
  trapHost = new URL(trap.url).host
  const options = {
    tokens: { tokenUrl: auth.tokenUrl, clientId: "next-bff", clientSecret: SECRET },
    baseUrl: `${upstream.url}/api`,
    allow: ["/v1/**"],
    attemptTimeout: "2 seconds",
    retry: { baseDelay: "5 millis", maxDelay: "10 millis" },
    onError: false
  } as const
  withPrefix = createProxyRoute({ ...options, prefix: PREFIX })
  derived = createProxyRoute(options)
  const hostileOptions = {
    tokens: { tokenUrl: sandbox.tokenUrl, ...DEFAULT_CLIENT },
    baseUrl: `${hostile.url}/api`,
    allow: hostileAllow,
    maxBodyBytes: 16 * 1024 * 1024,
    attemptTimeout: "1 second",
    retry: { baseDelay: "5 millis", maxDelay: "10 millis" },
    onError: false
  } as const
  hostileRoute = createProxyRoute({ ...hostileOptions, prefix: HOSTILE_MOUNT })
  derivedHostileRoute = createProxyRoute(hostileOptions)
  patientRoute = createProxyRoute({ ...hostileOptions, prefix: HOSTILE_MOUNT, attemptTimeout: "30 seconds" })
})
afterEach(() => {
  upstream.requests.length = 0
  trap.requests.length = 0
  upstream.setDefault(() => ({ status: 200, body: { ok: true } }))
})
afterAll(async () => {
  await disposeTokenSources()
  await Promise.all([
    auth.close(),
    upstream.close(),
    trap.close(),
    sandbox.close(),
    hostile.close(),
    hostileTrap.close()
  ])
})

/** The corpus aims at `evil.example`; here it aims at a server we watch. */
const aimed = (path: string) => path.replaceAll("evil.example", trapHost)

const expectRefused = async (response: Response, statuses: ReadonlyArray<number>) => {
  expect(statuses).toContain(response.status)
  expect(response.headers.get("content-type")).toBe("application/problem+json")
  const text = await response.text()
  expect(JSON.parse(text)).toMatchObject({ type: "about:blank", status: response.status })
  expectClean(text, [SECRET])
  expect(upstream.requests).toHaveLength(0)
  expect(trap.requests).toHaveLength(0)
}

describe("attack corpus, raw paths, prefix option", () => {
  for (const attack of pathAttacks) {
    it(`refuses ${attack.name}: ${JSON.stringify(attack.path)}`, async () => {
      const path = aimed(attack.path)
      const response = await dispatch(
        withPrefix,
        rawRequest(`${ORIGIN}${PREFIX}${path}`, { method: attack.method ?? "GET" })
      )
      // A path without a leading "/" is not below the mount at all ("/api/benefitsv1/..."): 404.
      await expectRefused(response, path.startsWith("/") ? attack.status : [404])
    })
  }
})

describe("attack corpus, raw paths, mount derived from the catch-all params", () => {
  for (const attack of pathAttacks.filter((a) => a.path.startsWith("/"))) {
    it(`refuses ${attack.name}: ${JSON.stringify(attack.path)}`, async () => {
      const path = aimed(attack.path)
      const request = rawRequest(`${ORIGIN}${PREFIX}${path}`, { method: attack.method ?? "GET" })
      await expectRefused(await dispatch(derived, request, nextParams(path)), attack.status)
    })
  }
})

describe("attack corpus, as the URL parser hands the paths over", () => {
  for (const attack of pathAttacks) {
    it(`${attack.name}: refused, or normalised into a clean path under the upstream`, async () => {
      const request = new Request(`${ORIGIN}${PREFIX}${aimed(attack.path)}`, {
        method: attack.method ?? "GET"
      })
      const response = await dispatch(withPrefix, request)
      expect(trap.requests).toHaveLength(0)
      if (upstream.requests.length === 0) {
        expect(response.status).toBeGreaterThanOrEqual(400)
        expect(response.status).toBeLessThan(500)
        expectClean(await response.text(), [SECRET])
      } else {
        // The parser resolved the attack into an ordinary path before the route saw it.
        for (const seen of upstream.requests) {
          expect(seen.url.startsWith("/api/v1/")).toBe(true)
          expect(BffProxy.checkPath(seen.url.slice("/api".length)).ok).toBe(true)
        }
      }
    })
  }
})

describe("header attacks", () => {
  for (const attack of headerAttacks) {
    it(`neutralises ${attack.name}`, async () => {
      const response = await withPrefix.GET(
        rawRequest(`${ORIGIN}${PREFIX}/v1/consumers/1`, { headers: attack.headers })
      )
      expect(response.status).toBe(200)
      expect(upstream.requests).toHaveLength(1)
      const seen = upstream.requests[0]!.headers
      expect(seen.authorization).toMatch(/^Bearer at-/)
      for (const name of attack.mustNotReach) expect(seen[name], name).toBeUndefined()
      expect(seen.host).toBe(new URL(upstream.url).host)
      expect(trap.requests).toHaveLength(0)
    })
  }
})

describe("createProxyRoute", () => {
  it("forwards the raw path (a literal % included) and query below the mount, with our token, filtering headers both ways", async () => {
    upstream.enqueue({
      status: 200,
      body: { consumer: 1 },
      headers: { "set-cookie": "upstream=1", "www-authenticate": "Bearer", etag: '"v1"' }
    })
    const response = await withPrefix.GET(
      new Request(`${ORIGIN}${PREFIX}/v1/files/a%20b/100%25?fields=name%20plan&x=%2e%2e`, {
        headers: { accept: "application/json", cookie: "session=1", authorization: "Bearer theirs" }
      })
    )
    expect(response.status).toBe(200)
    expect(await response.json()).toEqual({ consumer: 1 })
    expect(response.headers.get("set-cookie")).toBeNull()
    expect(response.headers.get("www-authenticate")).toBeNull()
    expect(response.headers.get("etag")).toBe('"v1"')
    const seen = upstream.requests[0]!
    expect(seen.url).toBe("/api/v1/files/a%20b/100%25?fields=name%20plan&x=%2e%2e")
    expect(seen.headers.authorization).toMatch(/^Bearer at-/)
    expect(seen.headers.cookie).toBeUndefined()
  })

  it("derives the mount from the catch-all params, basePath and dynamic segments included", async () => {
    const response = await derived.GET(
      new Request(`${ORIGIN}/base/api/tenant-1/benefits/v1/claims/CLM%2D1?page=2`),
      { params: Promise.resolve({ tenant: "tenant-1", path: ["v1", "claims", "CLM-1"] }) }
    )
    expect(response.status).toBe(200)
    expect(upstream.requests[0]!.url).toBe("/api/v1/claims/CLM%2D1?page=2")
  })

  it("refuses a request whose raw segments do not match Next's params (the split would be a guess)", async () => {
    const response = await derived.GET(new Request(`${ORIGIN}${PREFIX}/v1/claims`), {
      params: Promise.resolve({ path: ["v1", "consumers"] })
    })
    await expectRefused(response, [400])
  })

  it("answers 404 outside the prefix, and maps the mount itself to the upstream base", async () => {
    await expectRefused(await withPrefix.GET(new Request(`${ORIGIN}/api/other/v1/claims`)), [404])
    await expectRefused(await withPrefix.GET(new Request(`${ORIGIN}/api/benefits-v2/v1/claims`)), [404])
    const root = await withPrefix.GET(new Request(`${ORIGIN}${PREFIX}?x=1`))
    // "/" is outside the allow-list (/v1/**): refused by the core, not by the mount logic.
    await expectRefused(root, [404])
  })

  it("refuses a method the core does not forward, and forwards HEAD without a body", async () => {
    await expectRefused(
      await dispatch(withPrefix, rawRequest(`${ORIGIN}${PREFIX}/v1/claims`, { method: "PROPFIND" })),
      [405]
    )
    const head = await withPrefix.HEAD(new Request(`${ORIGIN}${PREFIX}/v1/claims`, { method: "HEAD" }))
    expect(head.status).toBe(200)
    expect(head.body).toBeNull()
    expect(upstream.requests[0]!.method).toBe("HEAD")
  })

  it("resolves lazy options at the first request; configuration errors become a 500 problem", async () => {
    let calls = 0
    const lazy = createProxyRoute(() => {
      calls++
      return {
        tokens: { tokenUrl: auth.tokenUrl, clientId: "lazy", clientSecret: SECRET },
        baseUrl: `${upstream.url}/api`,
        prefix: PREFIX
      }
    })
    expect(calls).toBe(0)
    expect((await lazy.GET(new Request(`${ORIGIN}${PREFIX}/v1/claims`))).status).toBe(200)
    expect((await lazy.GET(new Request(`${ORIGIN}${PREFIX}/v1/claims`))).status).toBe(200)
    expect(calls).toBe(1)

    const errors: Array<unknown> = []
    const broken = createProxyRoute(() => {
      throw new InvalidConfigError({ problems: ["missing environment variables: WEX_CLIENT_ID"] })
    })
    const misconfigured = createProxyRoute({
      tokens: { tokenUrl: auth.tokenUrl, clientId: "x" },
      baseUrl: "not a url",
      onError: (error) => errors.push(error)
    })
    const noCatchAll = createProxyRoute({
      tokens: { tokenUrl: auth.tokenUrl, clientId: "x" },
      baseUrl: `${upstream.url}/api`,
      onError: false
    })
    const badPrefix = createProxyRoute({
      tokens: { tokenUrl: auth.tokenUrl, clientId: "x" },
      baseUrl: `${upstream.url}/api`,
      prefix: "/api/benefits/",
      onError: false
    })
    const consoleError = console.error
    console.error = () => {}
    try {
      for (const route of [broken, misconfigured, noCatchAll, badPrefix]) {
        const response = await route.GET(new Request(`${ORIGIN}${PREFIX}/v1/claims`), {
          params: Promise.resolve({})
        })
        expect(response.status).toBe(500)
        expect(await response.json()).toEqual({
          type: "about:blank",
          title: "Internal Server Error",
          status: 500,
          detail: "The server is not configured to call the upstream."
        })
      }
    } finally {
      console.error = consoleError
    }
    expect(errors).toHaveLength(1)
    expect(upstream.requests).toHaveLength(2)
  })

  it("ends the upstream request when the caller goes away (its signal reaches the core)", async () => {
    upstream.setDefault(() => ({ status: 200, delayMs: 3000 }))
    const controller = new AbortController()
    const started = Date.now()
    const pending = withPrefix.GET(
      new Request(`${ORIGIN}${PREFIX}/v1/consumers/1`, { signal: controller.signal })
    )
    await upstream.waitForRequests(1)
    controller.abort()
    await expect(pending).rejects.toBeDefined()
    expect(Date.now() - started).toBeLessThan(2000)
    // The Edge runtime has no AbortSignal.any of its own: the route supplied the standard one.
    expect(typeof AbortSignal.any).toBe("function")
  })

  it("answers the core's problems: upstream redirect elsewhere 502, slow upstream 504", async () => {
    upstream.enqueue({ status: 302, headers: { location: `${trap.url}/steal` } })
    const redirected = await withPrefix.GET(new Request(`${ORIGIN}${PREFIX}/v1/consumers/1`))
    expect(redirected.status).toBe(502)
    expectClean(await redirected.text(), [SECRET])
    expect(trap.requests).toHaveLength(0)
    upstream.setDefault(() => ({ status: 200, delayMs: 2500 }))
    const slow = await withPrefix.POST(
      new Request(`${ORIGIN}${PREFIX}/v1/claims`, { method: "POST", body: "{}" })
    )
    expect(slow.status).toBe(504)
    expectClean(await slow.text(), [SECRET])
  })
})

/** A real `Request` to a route export, as Next calls it; the mount derived from params when `derive`. */
const through =
  (route: () => ProxyRoute, derive = false) =>
  async (path: string, options: SendOptions = {}) => {
    const request = new Request(`${ORIGIN}${HOSTILE_MOUNT}${path}`, {
      method: options.method ?? "GET",
      ...(options.headers === undefined ? {} : { headers: options.headers }),
      ...(options.body === undefined ? {} : { body: streamOf(options.body()), duplex: "half" }),
      ...(options.signal === undefined ? {} : { signal: options.signal })
    } as RequestInit)
    return answerOf(await dispatch(route(), request, derive ? nextParams(path) : undefined))
  }

const hostileTarget =
  (route: () => ProxyRoute, derive = false) =>
  (): CorpusTarget => ({
    mount: HOSTILE_MOUNT,
    upstream: hostile,
    trap: hostileTrap,
    send: through(route, derive)
  })

describeHostileUpstream(
  "Next route, prefix option",
  hostileTarget(() => hostileRoute),
  EDGE ? false : "timeout"
)
describeHostileUpstream(
  "Next route, mount derived from the catch-all",
  hostileTarget(() => derivedHostileRoute, true),
  false
)
if (!EDGE)
  describeAbandonedUploads(
    "Next route",
    hostileTarget(() => patientRoute),
    "abort"
  )
describeUnauthorizedStorm("Next route", () => ({
  upstream: hostile,
  send: (path) => through(() => hostileRoute)(path),
  tokenRequests: () => sandbox.stats().tokenRequests.total
}))

describe("the route's own reporting and checks", () => {
  it("onError gets the request and the problem for every problem the route answers with, its own refusals included", async () => {
    const seen: Array<[string | undefined, number, string]> = []
    const route = createProxyRoute({
      tokens: { tokenUrl: auth.tokenUrl, clientId: "next-bff", clientSecret: SECRET },
      baseUrl: `${upstream.url}/api`,
      prefix: PREFIX,
      retry: false,
      onError: (error, request, problem) =>
        seen.push([(error as { _tag?: string })._tag, problem.status, new URL(request.url).pathname])
    })
    upstream.setDefault(() => ({ status: 503, text: "db-7.internal is down" }))
    expect((await route.GET(new Request(`${ORIGIN}${PREFIX}/v1/claims`))).status).toBe(502)
    expect((await route.GET(new Request(`${ORIGIN}/elsewhere/v1/claims`))).status).toBe(404)
    expect(seen).toEqual([
      ["ProxyError", 502, `${PREFIX}/v1/claims`],
      ["ProxyError", 404, "/elsewhere/v1/claims"]
    ])
  })

  it("a wrong client secret: 502, and by default one stderr line (status, title, tag) without the secret", async () => {
    const secret = "wrong-next-secret-91ab"
    const route = createProxyRoute({
      tokens: { tokenUrl: sandbox.tokenUrl, clientId: "next-wrong-client", clientSecret: secret },
      baseUrl: `${hostile.url}/api`,
      prefix: PREFIX,
      retry: false
    })
    const lines: Array<string> = []
    const original = console.error
    console.error = (...args: Array<unknown>) => {
      lines.push(args.map(String).join(" "))
    }
    try {
      const response = await route.GET(new Request(`${ORIGIN}${PREFIX}/v1/consumers/1`))
      expect(response.status).toBe(502)
      expect(await response.text()).not.toContain(secret)
    } finally {
      console.error = original
    }
    expect(lines).toEqual(["[@authfetch/core] proxy answered 502 Bad Gateway (OAuthError)"])
  })

  it("refuses bad arguments with InvalidConfigError naming them: at once, or (lazy options) as a 500 problem", async () => {
    const anyArgs = (f: (...args: Array<any>) => unknown) => f
    for (const [value, kind] of [
      [null, "null"],
      [undefined, "undefined"],
      ["https://api.example.com", "string"]
    ] as const) {
      let thrown: unknown
      try {
        anyArgs(createProxyRoute)(value)
      } catch (error) {
        thrown = error
      }
      expect(thrown).toBeInstanceOf(InvalidConfigError)
      expect((thrown as Error).message).toContain(`createProxyRoute(options): options must be an object`)
      expect((thrown as Error).message).toContain(kind)
    }
    const reported: Array<string> = []
    for (const options of [
      () => null,
      () => ({ baseUrl: `${upstream.url}/api`, prefix: PREFIX }),
      () => ({ tokens: { tokenUrl: auth.tokenUrl, clientId: "x" }, prefix: PREFIX })
    ]) {
      const route = anyArgs(createProxyRoute)(() => {
        const resolved = options() as Record<string, unknown> | null
        return resolved === null
          ? null
          : { ...resolved, onError: (error: Error) => reported.push(error.message) }
      }) as ProxyRoute
      const response = await route.GET(new Request(`${ORIGIN}${PREFIX}/v1/claims`))
      expect(response.status).toBe(500)
      expect(await response.json()).toMatchObject({
        detail: "The server is not configured to call the upstream."
      })
    }
    expect(reported).toEqual([
      expect.stringContaining("`tokens` is missing"),
      expect.stringContaining("`baseUrl` is missing")
    ])
  })
})
