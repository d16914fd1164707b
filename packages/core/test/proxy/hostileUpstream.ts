/**
 * An upstream that behaves badly on purpose, on 127.0.0.1 (a real HTTP
 * server, not a mocked fetch): a test scripts each answer from what the
 * request looked like (`answer`). It can echo the bearer token it was sent,
 * write a body in small pieces with pauses (so a token straddles chunks),
 * redirect anywhere, send any header, answer 401 forever, or take an upload
 * and never read it.
 *
 * `connections()` counts the upstream's own TCP connections as the kernel
 * sees them (`/proc/net/tcp`, Linux): a connection the client reset is gone
 * from there at once, even while the server, which is not reading, has not
 * noticed; a connection the client only half-closed behind unsent body bytes
 * stays `ESTABLISHED`.
 */
import { readFileSync } from "node:fs"
import { createServer, type IncomingHttpHeaders } from "node:http"
import type { AddressInfo } from "node:net"

export interface UpstreamRequest {
  readonly method: string
  readonly url: string
  readonly headers: IncomingHttpHeaders
  /** the bearer token value presented (without the scheme) */
  readonly bearer: string | undefined
}

export interface UpstreamReply {
  readonly status?: number
  /** header values; an array sends the header once per value */
  readonly headers?: Readonly<Record<string, string | ReadonlyArray<string>>>
  /** the body, or its pieces, written one by one with `pauseMs` between them */
  readonly body?: string | Uint8Array | ReadonlyArray<string | Uint8Array>
  readonly pauseMs?: number
  /** read the request body before answering (default true); false: never read it */
  readonly read?: boolean
  /** never answer */
  readonly hang?: boolean
}

export interface HostileUpstream {
  readonly url: string
  readonly port: number
  readonly host: string
  /** every request, in order of arrival (headers; bodies are not kept) */
  readonly requests: Array<UpstreamRequest>
  /** the bearer values presented, in order */
  readonly bearers: () => Array<string>
  answer: (request: UpstreamRequest) => UpstreamReply
  /** the server side's TCP connections now open (not counting the listener) */
  connections(): number
  /** resolves once `connections()` is at most `count`, or rejects after `withinMs` */
  connectionsDownTo(count: number, withinMs: number): Promise<number>
  /** closes the connections kept alive between requests, and waits until the kernel has none */
  closeIdle(): Promise<void>
  /** resolves once `count` requests arrived (their headers) */
  waitForRequests(count: number, withinMs?: number): Promise<void>
  reset(): void
  close(): Promise<void>
}

const OK: UpstreamReply = {
  status: 200,
  headers: { "content-type": "application/json" },
  body: '{"ok":true}'
}

/**
 * TCP connections in `/proc/net/tcp{,6}` on `port` that are open on that
 * side: ESTABLISHED, SYN_RECV, CLOSE_WAIT (the peer closed, this side has
 * not). `side`: the server's end (local port `port`, the default) or the
 * clients' ends (remote port `port`). Listeners and ends already closed
 * (FIN_WAIT, TIME_WAIT) are not counted.
 */
export const kernelConnections = (port: number, side: "server" | "client" = "server"): number => {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, "0")}`
  let count = 0
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text: string
    try {
      text = readFileSync(file, "utf8")
    } catch {
      continue
    }
    for (const line of text.split("\n").slice(1)) {
      // sl, local_address, rem_address, st
      const fields = line.trim().split(/\s+/)
      const address = side === "server" ? fields[1] : fields[2]
      if (fields.length > 3 && address?.endsWith(hex) && OPEN_STATES.has(fields[3]!)) count++
    }
  }
  return count
}

const OPEN_STATES = new Set(["01", "03", "08"])

export const startHostileUpstream = async (): Promise<HostileUpstream> => {
  const sockets = new Set<import("node:net").Socket>()
  const server = createServer((req, res) => {
    const authorization = req.headers.authorization
    const seen: UpstreamRequest = {
      method: req.method ?? "",
      url: req.url ?? "",
      headers: req.headers,
      bearer: authorization?.startsWith("Bearer ") ? authorization.slice("Bearer ".length) : undefined
    }
    upstream.requests.push(seen)
    let reply: UpstreamReply
    try {
      reply = upstream.answer(seen)
    } catch {
      reply = { status: 500, body: "the test's answer threw" }
    }
    const respond = async () => {
      if (reply.hang) return
      res.statusCode = reply.status ?? 200
      for (const [name, value] of Object.entries(reply.headers ?? {})) {
        res.setHeader(name, typeof value === "string" ? value : [...value])
      }
      const body = reply.body
      const pieces: ReadonlyArray<string | Uint8Array> =
        body === undefined
          ? []
          : typeof body === "string" || ArrayBuffer.isView(body)
            ? [body as string | Uint8Array]
            : (body as ReadonlyArray<string | Uint8Array>)
      for (const [i, piece] of pieces.entries()) {
        if (res.destroyed) return
        if (i > 0 && reply.pauseMs) await new Promise((resolve) => setTimeout(resolve, reply.pauseMs))
        res.write(piece)
      }
      res.end()
    }
    res.on("error", () => {})
    req.on("error", () => {})
    if (reply.read === false) {
      // Take the headers, then nothing: the body stays in the socket, unread.
      req.pause()
      void respond()
      return
    }
    req.resume()
    req.once("end", () => void respond())
  })
  server.on("connection", (socket) => {
    sockets.add(socket)
    socket.once("close", () => sockets.delete(socket))
  })
  server.keepAliveTimeout = 30_000
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const { port } = server.address() as AddressInfo
  const url = `http://127.0.0.1:${port}`
  const upstream: HostileUpstream = {
    url,
    port,
    host: `127.0.0.1:${port}`,
    requests: [],
    bearers: () => upstream.requests.flatMap((r) => (r.bearer === undefined ? [] : [r.bearer])),
    answer: () => OK,
    connections: () => kernelConnections(port),
    connectionsDownTo: async (count, withinMs) => {
      const deadline = Date.now() + withinMs
      for (;;) {
        const now = kernelConnections(port)
        if (now <= count) return now
        if (Date.now() > deadline) {
          throw new Error(
            `${now} upstream connections still open after ${withinMs} ms (expected at most ${count})`
          )
        }
        await new Promise((resolve) => setTimeout(resolve, 10))
      }
    },
    closeIdle: async () => {
      server.closeIdleConnections()
      await upstream.connectionsDownTo(0, 5000)
      // And until the clients have let go of their ends: a kept-alive socket the server
      // closed, reused before its client saw the FIN, would fail the next request.
      const deadline = Date.now() + 5000
      while (kernelConnections(port, "client") > 0) {
        if (Date.now() > deadline) throw new Error("clients kept their connections to the upstream open")
        await new Promise((resolve) => setTimeout(resolve, 10))
      }
    },
    waitForRequests: async (count, withinMs = 10_000) => {
      const deadline = Date.now() + withinMs
      while (upstream.requests.length < count) {
        if (Date.now() > deadline)
          throw new Error(`expected ${count} requests, got ${upstream.requests.length}`)
        await new Promise((resolve) => setTimeout(resolve, 10))
      }
    },
    reset: () => {
      upstream.requests.length = 0
      upstream.answer = () => OK
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy()
        server.close(() => resolve())
      })
  }
  return upstream
}
