/**
 * Test helpers: requests whose URL keeps the raw path (as a server hands it
 * over before any URL parser normalises it), the params Next would derive
 * from it, and a dispatcher that calls a route module's export by method.
 */
import { createServer, request as httpRequest, type IncomingMessage } from "node:http"
import type { AddressInfo } from "node:net"
import type { ProxyRoute, ProxyRouteHandler } from "../src/index.ts"

/**
 * A `Request` whose `url` is `raw`, byte for byte. `new Request(url)` runs the
 * WHATWG URL parser, which resolves `..` and `%2e%2e`, turns `\` into `/` and
 * encodes control characters; a route handler must cope with whatever its
 * framework hands over, so the attacks are sent raw.
 */
export const rawRequest = (raw: string, init?: RequestInit & { duplex?: "half" }): Request => {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it replaces
  const request = new Request(raw.replace(/[\u0000-\u001f\u007f\\]/g, "_"), init)
  Object.defineProperty(request, "url", { value: raw, enumerable: true })
  return request
}

/** Next's params for a catch-all: the raw segments below the mount, each percent-decoded. */
export const nextParams = (below: string): { readonly params: Promise<{ path: Array<string> }> } => {
  const path = below.split("?")[0]!.split("/").slice(1)
  return {
    params: Promise.resolve({
      path: path.map((segment) => {
        try {
          return decodeURIComponent(segment)
        } catch {
          return segment
        }
      })
    })
  }
}

/** Calls the export for the request's method, as Next does; `GET` stands in for methods it lacks. */
export const dispatch = (
  route: ProxyRoute,
  request: Request,
  context?: Parameters<ProxyRouteHandler>[1]
): Promise<Response> => {
  const handler =
    (route as unknown as Record<string, ProxyRouteHandler | undefined>)[request.method] ?? route.GET
  return handler(request, context)
}

/** Everything a response body must never contain. */
export const expectClean = (text: string, secrets: ReadonlyArray<string> = []): void => {
  if (/\bat .*\.(ts|js):\d+|127\.0\.0\.1|Bearer|stack/.test(text))
    throw new Error(`internals leaked: ${text}`)
  for (const secret of secrets) if (secret && text.includes(secret)) throw new Error("a secret leaked")
}

export interface Front {
  readonly url: string
  /** bearer token values presented to the upstream */
  readonly bearers: Set<string>
  /** access tokens the token endpoint issued through the front */
  readonly issued: Set<string>
  /** every token value it issued through the front: access, refresh and ID tokens */
  readonly tokens: Set<string>
  /** request bodies' bytes received so far */
  readonly received: () => number
  readonly requests: Array<{
    readonly method: string
    readonly url: string
    readonly headers: IncomingMessage["headers"]
  }>
  close(): Promise<void>
}

/**
 * A recording reverse proxy in front of a server (the sandbox): it sees what
 * the upstream sees (raw paths, bearer values, body bytes as they arrive) and
 * the tokens the token endpoint hands out, which the sandbox itself only
 * records as fingerprints. `hold` delays a request before it is forwarded.
 */
export const startFront = async (
  target: string,
  options: { readonly hold?: (request: IncomingMessage) => number } = {}
): Promise<Front> => {
  const bearers = new Set<string>()
  const issued = new Set<string>()
  const tokens = new Set<string>()
  const requests: Array<{ method: string; url: string; headers: IncomingMessage["headers"] }> = []
  let received = 0
  const targetUrl = new URL(target)
  const server = createServer(async (req, res) => {
    requests.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers })
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? "")?.[1]
    if (bearer !== undefined) bearers.add(bearer)
    const hold = options.hold?.(req) ?? 0
    if (hold > 0) await new Promise((resolve) => setTimeout(resolve, hold))
    const forward = httpRequest(
      `${targetUrl.origin}${req.url}`,
      { method: req.method, headers: { ...req.headers, host: targetUrl.host } },
      (answer) => {
        const isToken = req.method === "POST" && !req.url?.startsWith("/api/")
        if (!isToken) {
          res.writeHead(answer.statusCode ?? 502, answer.headers)
          answer.pipe(res)
          return
        }
        const chunks: Array<Buffer> = []
        answer.on("data", (chunk: Buffer) => chunks.push(chunk))
        answer.on("end", () => {
          const body = Buffer.concat(chunks)
          try {
            const answer = JSON.parse(body.toString("utf8")) as Record<string, unknown>
            if (typeof answer.access_token === "string") issued.add(answer.access_token)
            for (const name of ["access_token", "refresh_token", "id_token"]) {
              if (typeof answer[name] === "string") tokens.add(answer[name] as string)
            }
          } catch {}
          res.writeHead(answer.statusCode ?? 502, answer.headers)
          res.end(body)
        })
      }
    )
    forward.on("error", () => res.destroy())
    req.on("data", (chunk: Buffer) => {
      received += chunk.byteLength
    })
    req.pipe(forward)
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    bearers,
    issued,
    tokens,
    received: () => received,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      })
  }
}
