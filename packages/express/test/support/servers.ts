/**
 * Real servers and raw clients for the adapter's tests: an upstream that
 * records what reaches it, an app listener, and clients that send paths
 * exactly as written (Node's `http.request`, or a bare socket for what
 * `http.request` refuses to send).
 */
import { createHash } from "node:crypto"
import { createServer, type IncomingHttpHeaders, type IncomingMessage, request, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import { connect } from "node:net"

export interface Seen {
  readonly method: string
  readonly url: string
  readonly headers: IncomingHttpHeaders
  readonly bytes: number
  readonly sha256: string
}

export interface Answer {
  readonly status?: number
  readonly headers?: Record<string, string>
  readonly body?: string
  /** wait before answering (ms) */
  readonly delayMs?: number
  /** never answer (the request stays open until the client aborts it) */
  readonly hang?: boolean
}

export interface Recorder {
  readonly url: string
  readonly host: string
  readonly requests: Array<Seen>
  /** requests whose client went away before the answer was complete */
  readonly aborted: Array<string>
  /** requests received (headers), even before their body is read */
  readonly started: Array<string>
  answer: (seen: Seen) => Answer
  close(): Promise<void>
}

const listen = async (server: Server): Promise<string> => {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

/** An upstream that hashes and records every request, and answers as told (default 200 JSON). */
export const startRecorder = async (): Promise<Recorder> => {
  const server = createServer(async (req, res) => {
    recorder.started.push(req.url ?? "")
    res.once("close", () => {
      if (!res.writableFinished) recorder.aborted.push(req.url ?? "")
    })
    const hash = createHash("sha256")
    let bytes = 0
    try {
      for await (const chunk of req as AsyncIterable<Buffer>) {
        bytes += chunk.byteLength
        hash.update(chunk)
      }
    } catch {
      return
    }
    const seen: Seen = {
      method: req.method ?? "",
      url: req.url ?? "",
      headers: req.headers,
      bytes,
      sha256: hash.digest("hex")
    }
    recorder.requests.push(seen)
    const answer = recorder.answer(seen)
    if (answer.hang) return
    if (answer.delayMs) await new Promise((resolve) => setTimeout(resolve, answer.delayMs))
    if (res.destroyed) return
    res.writeHead(answer.status ?? 200, { "content-type": "application/json", ...answer.headers })
    res.end(answer.body ?? JSON.stringify({ ok: true, bytes, sha256: seen.sha256 }))
  })
  const url = await listen(server)
  const recorder: Recorder = {
    url,
    host: new URL(url).host,
    requests: [],
    aborted: [],
    started: [],
    answer: () => ({}),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      })
  }
  return recorder
}

export interface Listening {
  readonly url: string
  readonly port: number
  close(): Promise<void>
}

/** Listens with a request handler (an Express app) on 127.0.0.1. */
export const serve = async (handler: (req: IncomingMessage, res: any) => void): Promise<Listening> => {
  const server = createServer(handler)
  const url = await listen(server)
  return {
    url,
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      })
  }
}

export interface Reply {
  readonly status: number
  readonly headers: IncomingHttpHeaders
  readonly text: string
}

/**
 * One request with the path exactly as given (`http.request` does not
 * normalise it). `body`: a string, or chunks produced lazily (written with
 * backpressure). Resolves with the answer even if the connection is reset
 * after it (an upload cut short).
 */
export const send = (
  port: number,
  options: {
    readonly path: string
    readonly method?: string
    readonly headers?: Record<string, string>
    readonly body?: string | (() => AsyncIterable<Uint8Array>)
  }
): Promise<Reply> =>
  new Promise((resolve, reject) => {
    let answered = false
    const req = request(
      {
        host: "127.0.0.1",
        port,
        path: options.path,
        method: options.method ?? "GET",
        headers: options.headers,
        agent: false
      },
      (res) => {
        answered = true
        const chunks: Array<Buffer> = []
        res.on("data", (chunk: Buffer) => chunks.push(chunk))
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            text: Buffer.concat(chunks).toString("utf8")
          })
        )
        res.on("error", reject)
      }
    )
    req.on("error", (error) => {
      if (!answered) reject(error)
    })
    const body = options.body
    if (body === undefined) {
      req.end()
    } else if (typeof body === "string") {
      req.end(body)
    } else {
      void (async () => {
        try {
          for await (const chunk of body()) {
            if (answered || req.destroyed) break
            if (!req.write(chunk)) {
              await new Promise<void>((resume) => {
                const done = () => {
                  req.off("drain", done)
                  req.off("close", done)
                  req.off("response", done)
                  resume()
                }
                req.on("drain", done)
                req.on("close", done)
                req.on("response", done)
              })
            }
          }
          if (!req.destroyed) req.end()
        } catch (error) {
          req.destroy(error as Error)
        }
      })()
    }
  })

/**
 * A request written on a bare socket, for request targets `http.request`
 * refuses to send (raw NUL, CR, relative paths). Resolves with the status of
 * the answer (`0` if the connection closed without one) and its body.
 */
export const sendRaw = (
  port: number,
  requestLine: string
): Promise<{ status: number; contentType: string | undefined; text: string }> =>
  new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1", () => {
      socket.write(`${requestLine}\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`, "latin1")
    })
    const chunks: Array<Buffer> = []
    socket.on("data", (chunk: Buffer) => chunks.push(chunk))
    socket.on("error", () => {})
    socket.on("close", () => {
      const text = Buffer.concat(chunks).toString("latin1")
      const match = /^HTTP\/1\.1 (\d{3})/.exec(text)
      const head = text.slice(0, Math.max(0, text.indexOf("\r\n\r\n")))
      resolve({
        status: match ? Number(match[1]) : 0,
        contentType: /^content-type: *(.*)$/im.exec(head)?.[1]?.trim(),
        text: text.slice(head.length + 4)
      })
    })
  })

/** `count` bytes in chunks of `size`, made as they are asked for (nothing held). */
export async function* lazyBytes(count: number, size = 64 * 1024): AsyncGenerator<Uint8Array> {
  let sent = 0
  let n = 0
  while (sent < count) {
    const length = Math.min(size, count - sent)
    const chunk = new Uint8Array(length)
    // A pattern that differs per chunk, so reordered or repeated chunks change the hash.
    for (let i = 0; i < length; i += 4096) chunk[i] = (n + i) & 0xff
    chunk[length - 1] = n & 0xff
    n++
    sent += length
    yield chunk
  }
}

/** The sha256 of `lazyBytes(count, size)`. */
export const sha256OfLazy = async (count: number, size?: number): Promise<string> => {
  const hash = createHash("sha256")
  for await (const chunk of lazyBytes(count, size)) hash.update(chunk)
  return hash.digest("hex")
}
