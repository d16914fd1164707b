/**
 * The upstream half of the attack corpus (written once in core) through an
 * Express app over a real socket: redirects rewritten to the mount or
 * refused, bodies echoing our token, response header sets, uploads to an
 * upstream that never reads them (given up on by the proxy's timeout, and by
 * the browser going away), and a 401 storm against the WEX emulator's token
 * budget. Then what the adapter itself adds: `onError` with the Express
 * request, the 405's `Allow`, and argument checks.
 */
import { createTokenSource, InvalidConfigError, type TokenSourceHandle } from "@authfetch/core"
import { DEFAULT_CLIENT, type Sandbox, startSandbox } from "@authfetch/sandbox"
import express from "express"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { hostileAllow } from "../../core/test/proxy/attacks.ts"
import {
  type CorpusTarget,
  describeAbandonedUploads,
  describeHostileUpstream,
  describeUnauthorizedStorm,
  overHttp
} from "../../core/test/proxy/corpus.ts"
import { type HostileUpstream, startHostileUpstream } from "../../core/test/proxy/hostileUpstream.ts"
import { authFetchMiddleware, createProxy, problemDetails } from "../src/index.ts"
import { type Listening, send, serve } from "./support/servers.ts"

const MOUNT = "/benefits"
/** The same proxy with a long timeout: uploads there are given up on by the browser. */
const PATIENT_MOUNT = "/patient"

let sandbox: Sandbox
let upstream: HostileUpstream
let trap: HostileUpstream
let tokens: TokenSourceHandle
let app: Listening
const reported: Array<{ tag: unknown; status: number; baseUrl: string; method: string }> = []

beforeAll(async () => {
  ;[sandbox, upstream, trap] = await Promise.all([
    startSandbox({ profile: "wex" }),
    startHostileUpstream(),
    startHostileUpstream()
  ])
  tokens = createTokenSource({ tokenUrl: sandbox.tokenUrl, ...DEFAULT_CLIENT })
  const options = {
    tokens,
    baseUrl: `${upstream.url}/api`,
    allow: hostileAllow,
    maxBodyBytes: 16 * 1024 * 1024,
    retry: { baseDelay: "5 millis", maxDelay: "10 millis" }
  } as const
  const server = express()
  server.use(
    MOUNT,
    createProxy({
      ...options,
      attemptTimeout: "1 second",
      onError: (error, req, problem) =>
        reported.push({
          tag: (error as { _tag?: unknown })._tag,
          status: problem.status,
          baseUrl: req.baseUrl,
          method: req.method
        })
    })
  )
  server.use(PATIENT_MOUNT, createProxy({ ...options, attemptTimeout: "30 seconds", onError: false }))
  server.use(problemDetails({ onError: false }))
  app = await serve(server)
})
afterAll(async () => {
  await tokens.dispose()
  await Promise.all([app.close(), upstream.close(), trap.close(), sandbox.close()])
})

const over = (mount: string) => overHttp(app.url, mount)

const target = (mount: string) => (): CorpusTarget => ({ mount, upstream, trap, send: over(mount) })

describeHostileUpstream("Express", target(MOUNT), "timeout")
describeAbandonedUploads("Express", target(PATIENT_MOUNT), "abort")
describeUnauthorizedStorm("Express", () => ({
  upstream,
  send: (path) => over(MOUNT)(path),
  tokenRequests: () => sandbox.stats().tokenRequests.total
}))

describe("what the Express adapter adds", () => {
  it("onError gets the Express request for every problem the proxy answers with, TRACE's 405 included", async () => {
    reported.length = 0
    upstream.reset()
    upstream.answer = () => ({ status: 500, body: "db-7.internal is down" })
    expect((await over(MOUNT)("/v1/consumers/1")).status).toBe(502)
    expect((await over(MOUNT)("/v1/%2e%2e/admin")).status).toBe(400)
    const trace = await send(app.port, { path: `${MOUNT}/v1/consumers/1`, method: "TRACE" })
    expect(trace.status).toBe(405)
    expect(trace.headers.allow).toBe("GET, HEAD, POST, PUT, PATCH, DELETE")
    expect(reported).toEqual([
      { tag: "ProxyError", status: 502, baseUrl: MOUNT, method: "GET" },
      { tag: "ProxyError", status: 400, baseUrl: MOUNT, method: "GET" },
      { tag: "ProxyError", status: 405, baseUrl: MOUNT, method: "TRACE" }
    ])
  })

  it("a wrong client secret: 502, one stderr line by default (status, title, tag), never the secret", async () => {
    const secret = "wrong-secret-7c1d"
    const wrong = createTokenSource({
      tokenUrl: sandbox.tokenUrl,
      clientId: DEFAULT_CLIENT.clientId,
      clientSecret: secret
    })
    const server = express()
    server.use("/wrong", createProxy({ tokens: wrong, baseUrl: `${upstream.url}/api`, retry: false }))
    const local = await serve(server)
    const lines: Array<string> = []
    const original = console.error
    console.error = (...args: Array<unknown>) => {
      lines.push(args.map(String).join(" "))
    }
    try {
      const reply = await send(local.port, { path: "/wrong/v1/consumers/1" })
      expect(reply.status).toBe(502)
      expect(reply.text).not.toContain(secret)
    } finally {
      console.error = original
      await local.close()
      await wrong.dispose()
    }
    expect(lines).toEqual(["[@authfetch/core] proxy answered 502 Bad Gateway (OAuthError)"])
  })

  it("every public entry point refuses bad arguments with InvalidConfigError naming them, never a TypeError", () => {
    const refused = (make: () => unknown, ...parts: Array<string>) => {
      let thrown: unknown
      try {
        make()
      } catch (error) {
        thrown = error
      }
      expect(thrown).toBeInstanceOf(InvalidConfigError)
      for (const part of parts) expect((thrown as Error).message).toContain(part)
    }
    const anyArgs = (f: (...args: Array<any>) => unknown) => f
    refused(() => anyArgs(createProxy)(null), "createProxy(options)", "null")
    refused(() => anyArgs(createProxy)(), "createProxy(options)", "undefined")
    refused(() => anyArgs(createProxy)({}), "`tokens` is missing", "`baseUrl` is missing")
    refused(() => anyArgs(createProxy)({ tokens }), "`baseUrl` is missing")
    refused(() => anyArgs(createProxy)({ baseUrl: "https://api.example.com" }), "`tokens` is missing")
    refused(
      () => anyArgs(createProxy)({ tokens, baseUrl: "https://api.example.com", onError: 1 }),
      "`onError`"
    )
    refused(() => anyArgs(authFetchMiddleware)(), "tokens is missing")
    refused(
      () => anyArgs(authFetchMiddleware)(null, { baseUrl: "https://api.example.com" }),
      "tokens is missing"
    )
    refused(() => anyArgs(authFetchMiddleware)({ getToken: 1 }), "tokens must be a token source")
    refused(() => anyArgs(authFetchMiddleware)(tokens, null), "options must be an object", "null")
    refused(
      () =>
        anyArgs(authFetchMiddleware)(tokens, {
          baseUrl: "https://api.example.com",
          abortOnClientClose: "yes"
        }),
      "`abortOnClientClose`"
    )
    refused(() => anyArgs(problemDetails)(null), "problemDetails(options)", "null")
    refused(() => anyArgs(problemDetails)("verbose"), "problemDetails(options)", "string")
    refused(() => anyArgs(problemDetails)({ onError: "console" }), "`onError`")
  })
})
