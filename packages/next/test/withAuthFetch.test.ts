/**
 * `withAuthFetch` and `createAuthFetch`: what a route handler receives, when
 * things are resolved (never at import), and which failures become which
 * problem responses (and that none of them carries a token, a secret or an
 * internal URL). Runs in Node.js and in the Edge-runtime environment.
 */
import { NextRequest } from "next/server.js"
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest"
import { issueToken, startTokenServer, type TokenServer } from "../../core/test/support/tokenServer.ts"
import { createAuthFetch, disposeTokenSources, withAuthFetch } from "../src/index.ts"
import { expectClean } from "./support.ts"

const SECRET = "route-handler-secret"

let auth: TokenServer
let api: TokenServer
let clients = 0
/** A configuration of its own per test: the registry would otherwise share a token across tests. */
const config = () => ({ tokenUrl: auth.tokenUrl, clientId: `handler-${++clients}`, clientSecret: SECRET })
const tokenRequests = () =>
  auth.requests.filter((r) => r.form.get("grant_type") === "client_credentials").length
const issued = () => auth.requests.length
const noParams = { params: Promise.resolve({}) }

beforeAll(async () => {
  ;[auth, api] = await Promise.all([startTokenServer(), startTokenServer()])
})
afterEach(async () => {
  await disposeTokenSources()
  auth.requests.length = 0
  api.requests.length = 0
  auth.setDefault(() => issueToken())
  api.setDefault(() => ({ status: 200, body: { ok: true } }))
})
afterAll(async () => {
  await Promise.all([auth.close(), api.close()])
})

const quietly = async <A>(run: () => Promise<A>): Promise<A> => {
  const original = console.error
  console.error = () => {}
  try {
    return await run()
  } finally {
    console.error = original
  }
}

const expectProblem = async (response: Response, status: number, detail: string) => {
  expect(response.status).toBe(status)
  expect(response.headers.get("content-type")).toBe("application/problem+json")
  const text = await response.text()
  expect(JSON.parse(text)).toEqual({ type: "about:blank", title: expect.any(String), status, detail })
  expectClean(text, [SECRET])
}

describe("runtime", () => {
  it("runs in the runtime its Vitest project names", () => {
    const edge = (globalThis as { EdgeRuntime?: unknown }).EdgeRuntime
    if (process.env.TEST_RUNTIME === "edge") expect(typeof edge).toBe("string")
    else expect(edge).toBeUndefined()
  })
})

describe("withAuthFetch", () => {
  it("gives the handler the core's authFetch next to Next's context; one token for many requests", async () => {
    api.setDefault((request) => ({ status: 200, body: { path: request.url } }))
    const GET = withAuthFetch(
      async (request, { authFetch, params }) => {
        const { id } = await params
        const upstream = await authFetch(`/v1/consumers/${id}`, { headers: { accept: "application/json" } })
        return Response.json({ method: request.method, upstream: await upstream.json() })
      },
      { tokens: config(), baseUrl: `${api.url}/api` }
    )
    for (let i = 0; i < 5; i++) {
      const response = await GET(new NextRequest("http://next.local/api/consumer"), {
        params: Promise.resolve({ id: String(i) })
      })
      expect(await response.json()).toEqual({ method: "GET", upstream: { path: `/api/v1/consumers/${i}` } })
    }
    expect(tokenRequests()).toBe(1)
    expect(api.requests.map((r) => r.headers.authorization)).toEqual(
      Array(5).fill(api.requests[0]!.headers.authorization)
    )
    expect(api.requests[0]!.headers.authorization).toMatch(/^Bearer at-/)
  })

  it("resolves lazy options at the first request, not at definition (no token request at import)", async () => {
    let resolved = 0
    const GET = withAuthFetch(
      async (_request, { authFetch }) => authFetch("/v1/claims"),
      () => {
        resolved++
        return { tokens: config(), baseUrl: `${api.url}/api` }
      }
    )
    expect(resolved).toBe(0)
    expect(issued()).toBe(0)
    expect((await GET(new NextRequest("http://next.local/x"), noParams)).status).toBe(200)
    expect((await GET(new NextRequest("http://next.local/x"), noParams)).status).toBe(200)
    expect(resolved).toBe(1)
    expect(tokenRequests()).toBe(1)
  })

  it("answers a refused client with 502, never the server's text or our secret, and reports the error", async () => {
    auth.setDefault(() => ({
      status: 401,
      body: { error: "invalid_client", error_description: `client secret ${SECRET} is wrong` }
    }))
    const reported: Array<unknown> = []
    const GET = withAuthFetch(async (_request, { authFetch }) => authFetch("/v1/claims"), {
      tokens: config(),
      baseUrl: `${api.url}/api`,
      onError: (error) => reported.push(error)
    })
    await expectProblem(
      await GET(new NextRequest("http://next.local/x"), noParams),
      502,
      "The upstream could not be authenticated."
    )
    expect(reported.map((e) => (e as { _tag: string })._tag)).toEqual(["OAuthError"])
    expect(api.requests).toHaveLength(0)
  })

  it("answers a slow upstream with 504 and an unreachable one with 502", async () => {
    api.setDefault(() => ({ status: 200, delayMs: 1000 }))
    const slow = withAuthFetch(async (_request, { authFetch }) => authFetch("/v1/claims"), {
      tokens: config(),
      baseUrl: `${api.url}/api`,
      attemptTimeout: "100 millis",
      retry: false,
      onError: false
    })
    await expectProblem(
      await slow(new NextRequest("http://next.local/x"), noParams),
      504,
      "The upstream did not answer in time."
    )

    for (const retry of [false, { baseDelay: "1 millis", maxDelay: "2 millis", maxRetries: 1 }] as const) {
      const dead = withAuthFetch(async (_request, { authFetch }) => authFetch("/v1/claims"), {
        tokens: config(),
        baseUrl: "http://127.0.0.1:9/api",
        retry,
        onError: false
      })
      await expectProblem(
        await dead(new NextRequest("http://next.local/x"), noParams),
        502,
        "The upstream could not be reached."
      )
    }
  })

  it("with problemDetails: passes a 4xx status on without the upstream's text; 401 and 5xx become 502", async () => {
    const GET = withAuthFetch(
      async (_request, { authFetch }) => {
        const response = await authFetch("/v1/consumers/1")
        return Response.json(await response.json())
      },
      { tokens: config(), baseUrl: `${api.url}/api`, problemDetails: true, retry: false, onError: false }
    )
    const problem = (status: number) => ({
      status,
      headers: { "content-type": "application/problem+json" },
      body: { title: "x", detail: "internal db host 10.0.0.7 said no", status }
    })
    api.enqueue(problem(404))
    await expectProblem(
      await GET(new NextRequest("http://next.local/x"), noParams),
      404,
      "The upstream answered 404."
    )
    api.enqueue(problem(500))
    await expectProblem(
      await GET(new NextRequest("http://next.local/x"), noParams),
      502,
      "The upstream failed."
    )
    api.enqueue(problem(401), problem(401))
    await expectProblem(
      await GET(new NextRequest("http://next.local/x"), noParams),
      502,
      "The upstream refused our credentials."
    )
  })

  it("rethrows what is not a core error: the handler's own TypeErrors, Next's control flow", async () => {
    const buggy = withAuthFetch(
      async () => {
        const value = undefined as unknown as { call: () => Response }
        return value.call()
      },
      { tokens: config(), baseUrl: `${api.url}/api` }
    )
    await expect(buggy(new NextRequest("http://next.local/x"), noParams)).rejects.toBeInstanceOf(TypeError)
    const notFound = Object.assign(new Error("NEXT_HTTP_ERROR_FALLBACK;404"), {
      digest: "NEXT_HTTP_ERROR_FALLBACK;404"
    })
    const control = withAuthFetch(
      async () => {
        throw notFound
      },
      { tokens: config(), baseUrl: `${api.url}/api` }
    )
    await expect(control(new NextRequest("http://next.local/x"), noParams)).rejects.toBe(notFound)
  })

  it("answers a missing configuration with 500 and reports it (once per request)", async () => {
    const GET = withAuthFetch(
      async (_request, { authFetch }) => authFetch("/v1/claims"),
      () => ({ tokens: { tokenUrl: "not a url", clientId: "" }, baseUrl: `${api.url}/api` })
    )
    const lines: Array<string> = []
    const original = console.error
    console.error = (line: string) => lines.push(line)
    try {
      await expectProblem(
        await GET(new NextRequest("http://next.local/x"), noParams),
        500,
        "The server is not configured to call the upstream."
      )
    } finally {
      console.error = original
    }
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatch(/^\[@authfetch\/next\] GET InvalidConfigError: /)
  })
})

describe("createAuthFetch", () => {
  it("is a lazily configured fetch for server components, with relative paths", async () => {
    let resolved = 0
    const wex = createAuthFetch(() => {
      resolved++
      return { tokens: config(), baseUrl: `${api.url}/api` }
    })
    expect(resolved).toBe(0)
    const responses = await Promise.all([wex("/v1/consumers/1"), wex("/v1/consumers/2"), wex("/v1/claims")])
    expect(responses.map((r) => r.status)).toEqual([200, 200, 200])
    expect(resolved).toBe(1)
    expect(tokenRequests()).toBe(1)
    expect(api.requests.map((r) => r.url).sort()).toEqual([
      "/api/v1/claims",
      "/api/v1/consumers/1",
      "/api/v1/consumers/2"
    ])
  })

  it("rejects (does not throw) when its configuration is wrong, and tries again on the next call", async () => {
    let attempt = 0
    const wex = createAuthFetch(() => {
      attempt++
      if (attempt === 1) throw new Error("not yet")
      return { tokens: config(), baseUrl: `${api.url}/api` }
    })
    await expect(quietly(() => wex("/v1/claims"))).rejects.toThrow("not yet")
    expect((await wex("/v1/claims")).status).toBe(200)
  })
})
