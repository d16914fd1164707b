/**
 * The adapter under Express 4 (4.22): this file runs in the `express4`
 * Vitest project, where `express` (in this file and in the adapter's
 * source) resolves to `npm:express@4`. Not the whole suite: the attack
 * corpus, TRACE, streaming both ways with the 413 bound, a client
 * disconnect, `req.authFetch` and `problemDetails()`.
 */
import { createTokenSource, type TokenSourceHandle } from "@authfetch/core"
import { DEFAULT_CLIENT, type Sandbox, startSandbox } from "@authfetch/sandbox"
import express from "express"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { headerAttacks, pathAttacks } from "../../../core/test/proxy/attacks.ts"
import { authFetchMiddleware, createProxy, problemDetails } from "../../src/index.ts"
import {
  type Listening,
  lazyBytes,
  type Recorder,
  send,
  sendRaw,
  serve,
  sha256OfLazy,
  startRecorder
} from "../support/servers.ts"

const MiB = 1024 * 1024

let sandbox: Sandbox
let upstream: Recorder
let tokens: TokenSourceHandle
let app: Listening

beforeAll(async () => {
  ;[sandbox, upstream] = await Promise.all([
    startSandbox({ profile: "wex", tokenRateLimit: false }),
    startRecorder()
  ])
  tokens = createTokenSource({ tokenUrl: sandbox.tokenUrl, ...DEFAULT_CLIENT })
  const server = express()
  server.use("/benefits", createProxy({ tokens, baseUrl: `${upstream.url}/api`, allow: ["/v1/**"] }))
  server.use("/docs", createProxy({ tokens, baseUrl: sandbox.baseUrl, maxBodyBytes: 4 * MiB }))
  server.use("/api", authFetchMiddleware(tokens, { baseUrl: sandbox.baseUrl, problemDetails: true }))
  server.get("/api/consumers/:id", (req, res, next) => {
    // Express 4 does not catch a rejected promise: errors go to next() by hand.
    req
      .authFetch(`/v1/consumers/${encodeURIComponent(req.params.id ?? "")}`)
      .then((r) => r.json())
      .then((consumer) => res.json({ consumer }))
      .catch(next)
  })
  server.use(problemDetails({ onError: false }))
  app = await serve(server)
})
afterAll(async () => {
  await tokens.dispose()
  await Promise.all([app.close(), upstream.close(), sandbox.close()])
})

describe("Express 4", () => {
  it("is really Express 4 underneath, for the test and for the adapter", () => {
    // `express.query` left in Express 5; Express 4's router layers have `handle_request`.
    expect(typeof (express as unknown as { query?: unknown }).query).toBe("function")
    const router = createProxy({ tokens, baseUrl: upstream.url }) as unknown as {
      stack: Array<{ handle_request?: unknown }>
    }
    expect(typeof router.stack[0]!.handle_request).toBe("function")
  })

  it("refuses the shared path attacks (raw over HTTP), TRACE with 405, nothing reaches the upstream", async () => {
    for (const attack of pathAttacks) {
      const raw = /[^\u0021-\u00ff]/.test(attack.path) || !attack.path.startsWith("/")
      const method = attack.method ?? "GET"
      const status = raw
        ? (
            await sendRaw(
              app.port,
              `${method} ${attack.path.startsWith("/") ? "/benefits" : ""}${attack.path} HTTP/1.1`
            )
          ).status
        : (await send(app.port, { path: `/benefits${attack.path}`, method })).status
      // Express 4's router eats the slash after the mount path (`/benefits//evil.example/x`
      // reaches the router as `/evil.example/x`): a path under the upstream, outside the allow-list.
      const expected = attack.name === "network-path reference" ? [404] : attack.status
      expect(expected, attack.name).toContain(status)
    }
    const trace = await send(app.port, { path: "/benefits/v1/consumers/1", method: "TRACE" })
    expect(trace.status).toBe(405)
    expect(trace.headers["content-type"]).toBe("application/problem+json")
    expect(upstream.started).toHaveLength(0)
  })

  it("neutralises the shared header attacks", async () => {
    for (const attack of headerAttacks) {
      upstream.requests.length = 0
      const reply = await send(app.port, { path: "/benefits/v1/consumers/1?x=%2e", headers: attack.headers })
      expect(reply.status).toBe(200)
      const seen = upstream.requests[0]!
      expect(seen.url).toBe("/api/v1/consumers/1?x=%2e")
      expect(seen.headers.authorization).toMatch(/^Bearer /)
      expect(seen.headers.authorization).not.toContain("attacker")
      for (const name of attack.mustNotReach) expect(seen.headers[name], name).toBeUndefined()
    }
  })

  it("streams an upload to the sandbox intact, and refuses one over maxBodyBytes with 413", async () => {
    const ok = await send(app.port, {
      path: "/docs/v1/documents",
      method: "POST",
      headers: { "content-type": "application/octet-stream" },
      body: () => lazyBytes(3 * MiB)
    })
    expect(ok.status).toBe(201)
    expect(JSON.parse(ok.text)).toMatchObject({ bytes: 3 * MiB, sha256: await sha256OfLazy(3 * MiB) })
    const tooLarge = await send(app.port, {
      path: "/docs/v1/documents",
      method: "POST",
      headers: { "content-type": "application/octet-stream" },
      body: () => lazyBytes(6 * MiB)
    })
    expect(tooLarge.status).toBe(413)
    expect(tooLarge.headers["content-type"]).toBe("application/problem+json")
  })

  it("aborts the upstream request when the client disconnects", async () => {
    upstream.answer = () => ({ hang: true })
    const { request } = await import("node:http")
    const req = request({ host: "127.0.0.1", port: app.port, path: "/benefits/v1/hang", agent: false })
    req.on("error", () => {})
    req.end()
    const until = Date.now() + 3_000
    while (!upstream.requests.some((r) => r.url === "/api/v1/hang") && Date.now() < until) {
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
    req.destroy()
    while (!upstream.aborted.includes("/api/v1/hang") && Date.now() < until) {
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
    expect(upstream.aborted).toContain("/api/v1/hang")
    upstream.answer = () => ({})
  })

  it("gives routes req.authFetch, and problemDetails() answers their errors", async () => {
    const found = await send(app.port, { path: "/api/consumers/12345" })
    expect(found.status).toBe(200)
    expect(JSON.parse(found.text).consumer).toBeTypeOf("object")
    const bad = await send(app.port, { path: "/api/consumers/bad%20id" })
    expect(bad.status).toBe(400)
    expect(bad.headers["content-type"]).toBe("application/problem+json")
    expect(JSON.parse(bad.text)).toMatchObject({ status: 400, detail: "The upstream answered 400." })
  })
})
