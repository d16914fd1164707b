/**
 * A real token endpoint on 127.0.0.1 whose answers a test scripts: each
 * request is recorded (headers, parsed form) and answered by the next queued
 * reply, or by the default one. Not a mock of fetch: requests cross a socket.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"

export interface RecordedRequest {
  readonly method: string
  readonly url: string
  readonly headers: IncomingMessage["headers"]
  readonly form: URLSearchParams
  readonly rawBody: string
}

export interface Reply {
  readonly status?: number
  readonly headers?: Record<string, string>
  readonly body?: unknown
  /** raw text body, sent as is */
  readonly text?: string
  /** hold the response this long (real milliseconds) */
  readonly delayMs?: number
  /** destroy the socket without answering */
  readonly drop?: boolean
}

export type Responder = (request: RecordedRequest, index: number) => Reply | Promise<Reply>

export interface TokenServer {
  readonly url: string
  readonly tokenUrl: string
  readonly requests: Array<RecordedRequest>
  /** queue replies consumed in order before the default responder */
  enqueue(...replies: Array<Reply>): void
  setDefault(responder: Responder): void
  /** resolves once at least `count` requests arrived */
  waitForRequests(count: number, timeoutMs?: number): Promise<void>
  close(): Promise<void>
}

let tokenCounter = 0
export const issueToken = (overrides: Record<string, unknown> = {}): Reply => ({
  status: 200,
  body: {
    access_token: `at-${++tokenCounter}-${Math.random().toString(36).slice(2)}`,
    token_type: "Bearer",
    expires_in: 600,
    ...overrides
  }
})

export const startTokenServer = async (responder: Responder = () => issueToken()): Promise<TokenServer> => {
  const requests: Array<RecordedRequest> = []
  const queue: Array<Reply> = []
  let fallback = responder
  const waiters: Array<{ count: number; resolve: () => void }> = []

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Array<Buffer> = []
    for await (const chunk of req) chunks.push(chunk as Buffer)
    const rawBody = Buffer.concat(chunks).toString("utf8")
    const recorded: RecordedRequest = {
      method: req.method ?? "",
      url: req.url ?? "",
      headers: req.headers,
      form: new URLSearchParams(rawBody),
      rawBody
    }
    requests.push(recorded)
    for (const waiter of waiters.splice(0)) {
      if (requests.length >= waiter.count) waiter.resolve()
      else waiters.push(waiter)
    }
    const reply = queue.shift() ?? (await fallback(recorded, requests.length - 1))
    if (reply.delayMs) await new Promise((r) => setTimeout(r, reply.delayMs))
    if (reply.drop) {
      req.socket.destroy()
      return
    }
    const text = reply.text ?? (reply.body === undefined ? "" : JSON.stringify(reply.body))
    res.writeHead(reply.status ?? 200, {
      "content-type": reply.text === undefined ? "application/json" : "text/plain",
      ...reply.headers
    })
    res.end(text)
  }

  const server = createServer((req, res) => {
    handle(req, res).catch(() => res.destroy())
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const { port } = server.address() as AddressInfo
  const url = `http://127.0.0.1:${port}`
  return {
    url,
    tokenUrl: `${url}/token`,
    requests,
    enqueue: (...replies) => {
      queue.push(...replies)
    },
    setDefault: (r) => {
      fallback = r
    },
    waitForRequests: (count, timeoutMs = 5000) =>
      requests.length >= count
        ? Promise.resolve()
        : new Promise<void>((resolve, reject) => {
            const timer = setTimeout(
              () => reject(new Error(`expected ${count} requests, got ${requests.length}`)),
              timeoutMs
            )
            waiters.push({
              count,
              resolve: () => {
                clearTimeout(timer)
                resolve()
              }
            })
          }),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      })
  }
}
