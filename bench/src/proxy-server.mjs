/**
 * Case 6's proxies, in their own process (the load generator is the parent,
 * the upstream another child): each on its own port, all mounted at `/bff`,
 * forwarding `GET` and `POST /bff/v1/...` to the upstream's `/api/v1/...`
 * (bodies streamed both ways).
 *
 * - `express-auth`: Express 5 with `@authfetch/express` `createProxy`.
 * - `express-plain`: the same Express app with a hand-written proxy route: a
 *   token fetched once at start and set by hand, no token management, no
 *   path or header checks; the response written back the same way
 *   (`pipeline` of the web body into `res`).
 * - `next-auth`: `@authfetch/next` `createProxyRoute(...).GET` behind a
 *   minimal `node:http` server that adapts Node's req/res to a web
 *   `Request`/`Response` (what Next's own server does, minus Next), by method.
 * - `next-plain`: the same adapter around a route function that forwards with
 *   a hand-set token (`return fetch(...)`).
 *
 * Started with `{ cmd: "start", upstream, tokenUrl }`; answers which proxies
 * run and why any could not be loaded. `cpu` reports this process's CPU time.
 */
import { createServer } from "node:http"
import { Readable } from "node:stream"
import { pipeline } from "node:stream/promises"
import { createTokenSource } from "@authfetch/core"
import express from "express"
import { Agent, setGlobalDispatcher } from "undici"
import { SECRET, tokenByHand } from "./lib.mjs"

const servers = []
const sources = []

setGlobalDispatcher(new Agent({ connections: 64, keepAliveTimeout: 60_000, keepAliveMaxTimeout: 120_000 }))

const listen = (server) =>
  new Promise((resolve) => {
    server.keepAliveTimeout = 120_000
    server.headersTimeout = 130_000
    servers.push(server)
    server.listen(0, "127.0.0.1", () => resolve(`http://127.0.0.1:${server.address().port}`))
  })

/** A web Response written to a Node response (status, headers, streamed body). */
const send = async (response, res) => {
  res.statusCode = response.status
  for (const [name, value] of response.headers) {
    if (name !== "content-length" && name !== "content-encoding" && name !== "transfer-encoding")
      res.setHeader(name, value)
  }
  if (response.body === null) return res.end()
  await pipeline(Readable.fromWeb(response.body), res).catch(() => res.destroy())
}

/** What a Next server does before a route runs: a web Request from Node's req. */
const toRequest = (req, res) => {
  const headers = new Headers()
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2)
    headers.append(req.rawHeaders[i], req.rawHeaders[i + 1])
  const controller = new AbortController()
  res.once("close", () => {
    if (!res.writableFinished) controller.abort()
  })
  const withBody = req.method !== "GET" && req.method !== "HEAD"
  return new Request(`http://${req.headers.host}${req.url}`, {
    method: req.method,
    headers,
    body: withBody ? Readable.toWeb(req) : null,
    duplex: "half",
    signal: controller.signal
  })
}

/** `routes`: a route module's exports (`GET`, `POST`), as Next dispatches them by method. */
const nodeServerFor = (routes) =>
  createServer((req, res) => {
    const route = routes[req.method]
    if (route === undefined) {
      res.statusCode = 405
      return res.end()
    }
    route(toRequest(req, res)).then(
      (response) => send(response, res),
      () => {
        res.statusCode = 500
        res.end()
      }
    )
  })

const start = async ({ upstream, tokenUrl }) => {
  const urls = {}
  const skipped = {}
  const source = (clientId) => {
    const tokens = createTokenSource({ tokenUrl, clientId, clientSecret: SECRET })
    sources.push(tokens)
    return tokens
  }

  try {
    const { createProxy } = await import("@authfetch/express")
    const app = express()
    app.use("/bff", createProxy({ tokens: source("proxy-express-auth"), baseUrl: upstream }))
    urls["express-auth"] = await listen(createServer(app))
  } catch (error) {
    skipped["express-auth"] = `@authfetch/express could not be loaded (${error?.message ?? error})`
  }

  {
    const authorization = `Bearer ${await tokenByHand(tokenUrl, "proxy-express-plain", { checkStatus: false })}`
    const app = express()
    app.use("/bff", (req, res, next) => {
      const withBody = req.method !== "GET" && req.method !== "HEAD"
      fetch(upstream + req.url, {
        method: req.method,
        headers: withBody
          ? {
              accept: req.headers.accept ?? "*/*",
              "content-type": req.headers["content-type"] ?? "",
              authorization
            }
          : { accept: req.headers.accept ?? "*/*", authorization },
        body: withBody ? Readable.toWeb(req) : null,
        duplex: "half"
      })
        .then((response) => send(response, res))
        .catch(next)
    })
    urls["express-plain"] = await listen(createServer(app))
  }

  try {
    const { createProxyRoute } = await import("@authfetch/next")
    const { GET, POST } = createProxyRoute({
      tokens: source("proxy-next-auth"),
      baseUrl: upstream,
      prefix: "/bff"
    })
    urls["next-auth"] = await listen(nodeServerFor({ GET, POST }))
  } catch (error) {
    skipped["next-auth"] = `@authfetch/next could not be loaded (${error?.message ?? error})`
  }

  if (process.env.BENCH_PROXY_VARIANTS === "1") {
    // for src/profile-proxy.mjs: the same route over undici's fetch instead of the reset-capable node:http one
    const { createProxyRoute } = await import("@authfetch/next")
    const { GET, POST } = createProxyRoute({
      tokens: source("proxy-next-undici"),
      baseUrl: upstream,
      prefix: "/bff",
      fetch: (input, init) => globalThis.fetch(input, init)
    })
    urls["next-auth-undici"] = await listen(nodeServerFor({ GET, POST }))
  }

  {
    const authorization = `Bearer ${await tokenByHand(tokenUrl, "proxy-next-plain", { checkStatus: false })}`
    const GET = (request) => {
      const target = request.url.slice(request.url.indexOf("/bff/") + 4)
      return fetch(upstream + target, {
        headers: { accept: request.headers.get("accept") ?? "*/*", authorization },
        signal: request.signal
      })
    }
    const POST = (request) => {
      const target = request.url.slice(request.url.indexOf("/bff/") + 4)
      return fetch(upstream + target, {
        method: "POST",
        headers: {
          accept: request.headers.get("accept") ?? "*/*",
          "content-type": request.headers.get("content-type") ?? "",
          authorization
        },
        body: request.body,
        duplex: "half",
        signal: request.signal
      })
    }
    urls["next-plain"] = await listen(nodeServerFor({ GET, POST }))
  }
  return { urls, skipped }
}

process.on("message", async (message) => {
  const reply = (value) => process.send({ id: message.id, value })
  switch (message.cmd) {
    case "start":
      return reply(await start(message))
    case "cpu":
      return reply(process.cpuUsage())
    case "close":
      for (const tokens of sources) await tokens.dispose()
      for (const server of servers) {
        server.close()
        server.closeAllConnections()
      }
      reply(true)
      return process.disconnect()
    case "exit":
      // profiling (src/profile-proxy.mjs): exit by itself, so that --cpu-prof writes its file
      for (const tokens of sources) await tokens.dispose()
      process.exit(0)
  }
})

process.send({ ready: true })
