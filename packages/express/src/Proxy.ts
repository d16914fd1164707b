/**
 * The backend-for-frontend proxy as an Express router: `/<mount>/*` is
 * forwarded to one fixed upstream with our bearer token, by the core's
 * `Proxy.createProxyHandler` (path checks, allow-list, header allow-lists,
 * body bound, timeout, redirects, problem+json). This module only translates:
 *
 * - the raw path below the mount point (`req.url` inside the router: not
 *   decoded, not normalised, query included) goes to the handler as is;
 * - the Node request becomes a web `Request` whose body is the socket,
 *   streamed (`duplex: "half"`), paced by the upstream;
 * - methods a web `Request` cannot carry (`TRACE`, `TRACK`, `CONNECT`) are
 *   refused with `405` before one is built;
 * - the web `Response` is written back with backpressure;
 * - a client that disconnects aborts the upstream request (and its retries);
 * - a body already read by a body parser mounted before the proxy is a
 *   configuration error (`InvalidConfigError` to `next`): mount the proxy first.
 *
 * @example
 * ```ts
 * import express from "express"
 * import { createProxy, problemDetails } from "@authfetch/express"
 *
 * const app = express()
 * app.use("/benefits", createProxy({ tokens, upstream: "https://platform.uat.benefits.wexglobal.com/api", allow: ["/v1/**"] }))
 * app.use(express.json()) // body parsers after the proxy
 * app.use(problemDetails())
 * ```
 *
 * @since 0.1.0
 */
import { Proxy as CoreProxy, InvalidConfigError } from "@authfetch/core"
import express, { type Router } from "express"
import {
  bodyAlreadyRead,
  clientCloseSignal,
  finishRequest,
  hasBody,
  requestBody,
  sendResponse
} from "./internal/node.ts"

/**
 * Options of `createProxy`: the core's `Proxy.ProxyOptions` (`tokens`,
 * `upstream`, `allow`, `methods`, `maxBodyBytes`, `timeout`, `retry`,
 * `forwardHeaders`, `fetch`, `onEvent`).
 *
 * @since 0.1.0
 */
export type ProxyOptions = CoreProxy.ProxyOptions

/**
 * Methods the Fetch standard forbids in a `Request` (its constructor throws):
 * they are answered here, before one is built.
 */
const UNREPRESENTABLE_METHODS = new Set(["CONNECT", "TRACE", "TRACK"])

/** Any origin: the web `Request`'s URL is not used by the handler (the path is passed apart). */
const PLACEHOLDER_URL = "http://proxy.invalid/"

const bodyAlreadyReadError = () =>
  new InvalidConfigError({
    problems: [
      "the request body was read before createProxy (a body parser such as express.json() runs first): mount the proxy before body parsers"
    ]
  })

/**
 * A router forwarding every request under its mount point to `upstream`.
 * The configuration is checked now (`InvalidConfigError`); the token source
 * and the retry budget are shared by all its requests. Mount it with
 * `app.use(prefix, ...)` (or `router.use`), before any body parser.
 *
 * @example
 * ```ts
 * app.use(
 *   "/api/benefits",
 *   createProxy({
 *     tokens,
 *     upstream: config.apiBaseUrl,
 *     allow: ["/v1/consumers/**", "/v1/claims", "/v1/documents"],
 *     maxBodyBytes: 10 * 1024 * 1024,
 *     timeout: "15 seconds"
 *   })
 * )
 * ```
 *
 * @since 0.1.0
 */
export const createProxy = (options: ProxyOptions): Router => {
  const handle = CoreProxy.createProxyHandler(options)
  const router = express.Router()
  router.use((req, res, next) => {
    forward(handle, req, res).catch((error: unknown) => {
      finishRequest(req, res)
      next(error)
    })
  })
  return router
}

const forward = async (
  handle: (request: Request, path: string) => Promise<Response>,
  req: express.Request,
  res: express.Response
): Promise<void> => {
  const method = req.method.toUpperCase()
  if (UNREPRESENTABLE_METHODS.has(method)) {
    finishRequest(req, res)
    return sendResponse(CoreProxy.problem(405, "Method Not Allowed", `${method} is not forwarded.`), res)
  }
  const withBody = method !== "GET" && method !== "HEAD" && hasBody(req)
  if (withBody && bodyAlreadyRead(req)) throw bodyAlreadyReadError()

  const headers = new Headers()
  try {
    const raw = req.rawHeaders
    for (let i = 0; i + 1 < raw.length; i += 2) headers.append(raw[i]!, raw[i + 1]!)
  } catch {
    finishRequest(req, res)
    return sendResponse(CoreProxy.problem(400, "Bad Request", "The request headers are not acceptable."), res)
  }

  const signal = clientCloseSignal(res)
  const request = new Request(PLACEHOLDER_URL, {
    method,
    headers,
    body: withBody ? requestBody(req) : null,
    signal,
    duplex: "half"
  } as RequestInit)

  let response: Response
  try {
    response = await handle(request, req.url)
  } catch (error) {
    // The handler throws only when the request was aborted: the client is gone.
    if (signal.aborted) return
    throw error
  }
  finishRequest(req, res)
  await sendResponse(response, res)
}
