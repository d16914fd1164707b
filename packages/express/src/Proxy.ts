/**
 * The backend-for-frontend proxy as an Express router: `/<mount>/*` is
 * forwarded to one fixed upstream with our bearer token, by the core's
 * `BffProxy.createProxyHandler` (path checks, allow-list, header allow-lists
 * both ways, redirects rewritten to the mount or refused, upstream errors
 * mapped, the token cut out of bodies, body bound, timeout, problem+json,
 * `onError`). This module only translates:
 *
 * - the raw path below the mount point (`req.url` inside the router: not
 *   decoded, not normalised, query included) goes to the handler as is, and
 *   the mount point (`req.baseUrl`) as where redirects and links point to;
 * - the Node request becomes a web `Request` whose body is the socket,
 *   streamed (`duplex: "half"`), paced by the upstream;
 * - methods a web `Request` cannot carry (`TRACE`, `TRACK`, `CONNECT`) are
 *   refused with `405` (with `Allow`, as the core's) before one is built;
 * - the web `Response` is written back with backpressure;
 * - a client that disconnects aborts the upstream request (and its retries),
 *   and the core resets the upstream connection;
 * - `onError` gets the Express request (`(error, req, problem)`);
 * - a body already read by a body parser mounted before the proxy is a
 *   configuration error (`InvalidConfigError` to `next`): mount the proxy first;
 * - per-user mode (`sessions` instead of `tokens`): the request's headers,
 *   `Cookie` included, reach the core as received, which checks CSRF for
 *   state-changing methods (403), finds the signed-in user (none: 401) and
 *   forwards with that user's token; the `Cookie` never goes upstream.
 *
 * @example
 * ```ts
 * import express from "express"
 * import { createProxy, problemDetails } from "@authfetch/express"
 *
 * const app = express()
 * app.use("/benefits", createProxy({ tokens, baseUrl: "https://platform.uat.benefits.wexglobal.com/api", allow: ["/v1/**"] }))
 * app.use(express.json()) // body parsers after the proxy
 * app.use(problemDetails())
 * ```
 *
 * @since 0.1.0
 */
import { BffProxy, InvalidConfigError } from "@authfetch/core"
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
 * Options of `createProxy`: the core's `BffProxy.ProxyOptions` (`tokens`, or
 * `sessions` and `csrfHeader` for per-user mode, `baseUrl`, `allow`, `methods`, `maxBodyBytes`, `timeout`, `retry`,
 * `forwardHeaders`, `responseHeaders`, `fetch`, `onEvent`), with `onError`
 * given the Express request.
 *
 * @since 0.1.0
 */
export interface ProxyOptions extends Omit<BffProxy.ProxyOptions, "onError"> {
  /**
   * called with every problem the proxy answers with itself (refused
   * requests, upstream failures, token errors) and the error behind it: the
   * place to log and alert. Default: one stderr line per 5xx (status, title,
   * error tag; never a body, a URL or a token); `false`: none.
   */
  readonly onError?:
    | ((error: unknown, req: express.Request, problem: BffProxy.ProblemAnswer) => void)
    | false
    | undefined
}

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
 * A router forwarding every request under its mount point to `baseUrl`.
 * The configuration is checked now (`InvalidConfigError`); the token source
 * (or the sessions) and the retry budget are shared by all its requests. Mount it with
 * `app.use(prefix, ...)` (or `router.use`), before any body parser.
 *
 * @example
 * ```ts
 * app.use(
 *   "/api/benefits",
 *   createProxy({
 *     tokens,
 *     baseUrl: config.baseUrl,
 *     allow: ["/v1/consumers/**", "/v1/claims", "/v1/documents"],
 *     maxBodyBytes: 10 * 1024 * 1024,
 *     attemptTimeout: "15 seconds"
 *   })
 * )
 * // per user: each request with the token of the user signed in with its cookie
 * app.use("/api/user", createProxy({ sessions, baseUrl: "https://api.example/api", allow: ["/v1/me"] }))
 * ```
 *
 * @since 0.1.0
 */
export const createProxy = (options: ProxyOptions): Router => {
  if (typeof options !== "object" || options === null) {
    throw new InvalidConfigError({
      problems: [
        `createProxy(options): options must be an object ({ tokens, baseUrl, ... }), got ${options === null ? "null" : typeof options}`
      ]
    })
  }
  const { onError, ...core } = options
  if (onError !== undefined && onError !== false && typeof onError !== "function") {
    throw new InvalidConfigError({ problems: ["createProxy option `onError` must be a function or false"] })
  }
  // The core reports with the web Request; the Express request is found from it.
  const requests = new WeakMap<Request, express.Request>()
  const handle = BffProxy.createProxyHandler({
    ...core,
    onError:
      typeof onError === "function"
        ? (error, problem, request) => {
            const req = requests.get(request)
            if (req !== undefined) onError(error, req, problem)
          }
        : onError
  })
  /** The same reporting for what is answered here, before the core sees a request. */
  const report = (error: unknown, req: express.Request, problem: BffProxy.ProblemAnswer) => {
    try {
      if (typeof onError === "function") onError(error, req, problem)
      else if (onError === undefined && problem.status >= 500)
        console.error(`[@authfetch/core] proxy answered ${BffProxy.logLine(error, problem)}`)
    } catch {
      // a failing logger must not stop the answer
    }
  }
  const router = express.Router()
  router.use((req, res, next) => {
    forward(handle, requests, report, req, res).catch((error: unknown) => {
      finishRequest(req, res)
      next(error)
    })
  })
  return router
}

const forward = async (
  handle: BffProxy.ProxyHandler,
  requests: WeakMap<Request, express.Request>,
  report: (error: unknown, req: express.Request, problem: BffProxy.ProblemAnswer) => void,
  req: express.Request,
  res: express.Response
): Promise<void> => {
  const method = req.method.toUpperCase()
  if (UNREPRESENTABLE_METHODS.has(method)) {
    finishRequest(req, res)
    const error = new BffProxy.ProxyError({ reason: "method_not_allowed", method })
    const problem = BffProxy.problemFor(error)!
    report(error, req, problem)
    return sendResponse(BffProxy.problemResponse(problem, { allow: handle.methods.join(", ") }), res)
  }
  const withBody = method !== "GET" && method !== "HEAD" && hasBody(req)
  if (withBody && bodyAlreadyRead(req)) throw bodyAlreadyReadError()

  const headers = new Headers()
  try {
    const raw = req.rawHeaders
    for (let i = 0; i + 1 < raw.length; i += 2) headers.append(raw[i]!, raw[i + 1]!)
  } catch {
    finishRequest(req, res)
    return sendResponse(BffProxy.problem(400, "Bad Request", "The request headers are not acceptable."), res)
  }

  const signal = clientCloseSignal(res)
  const request = new Request(PLACEHOLDER_URL, {
    method,
    headers,
    body: withBody ? requestBody(req) : null,
    signal,
    duplex: "half"
  } as RequestInit)

  requests.set(request, req)
  let response: Response
  try {
    response = await handle(request, req.url, { mount: req.baseUrl })
  } catch (error) {
    // The handler throws only when the request was aborted: the client is gone.
    if (signal.aborted) return
    throw error
  }
  finishRequest(req, res)
  await sendResponse(response, res)
}
