/**
 * The proxy's fetch in Node.js: `node:http`/`node:https` underneath, so that
 * a request given up on (timed out, or its caller gone) closes its upstream
 * connection at once.
 *
 * Why not the global `fetch`: aborting an undici request closes its socket
 * gracefully, and a FIN is queued behind the request body already in the
 * kernel's send buffer. An upstream that never reads the body never gets to
 * the FIN: the connection stays open on both ends (FIN-WAIT-1 here, a live
 * request there) for minutes. Ten abandoned 4 MiB uploads left ten upstream
 * connections open. Here an aborted request resets its connection (TCP RST,
 * `socket.resetAndDestroy()`; under TLS the TCP socket beneath), which the
 * upstream sees at once, whatever it left unread.
 *
 * What it does, as fetch would for the proxy: method, headers, a body (bytes,
 * text or a stream, sent chunked with backpressure), no redirect ever
 * followed (`redirect: "error"` rejects on one, as fetch does), `gzip`,
 * `deflate` and `br` responses decoded (and asked for, as undici does),
 * network failures as `TypeError("fetch failed", { cause })`, the caller's
 * abort as its signal's reason. Connections are kept alive and reused.
 *
 * The modules are taken with `process.getBuiltinModule` (Node 22.3+), never
 * imported: this file is part of a package that also runs in edge runtimes,
 * where the proxy keeps the global `fetch` (and the platform decides).
 *
 * @internal
 */
import type * as Http from "node:http"
import type * as Https from "node:https"
import type * as Net from "node:net"
import type { Readable, Transform } from "node:stream"
import type * as Tls from "node:tls"
import type * as Zlib from "node:zlib"
import type { FetchBody } from "./webTypes.ts"

type Fetch = typeof globalThis.fetch

interface Modules {
  readonly http: typeof Http
  readonly https: typeof Https
  readonly net: typeof Net
  readonly tls: typeof Tls
  readonly zlib: typeof Zlib
}

/** The TCP socket beneath a TLS socket this module opened (to reset it). */
const TCP = Symbol("authfetch.tcp")

/** Bytes of response body buffered ahead of the reader. */
const HIGH_WATER_MARK = 64 * 1024

const loadModules = (): Modules | undefined => {
  const runtime = globalThis as {
    readonly process?: { readonly getBuiltinModule?: (id: string) => unknown }
    readonly EdgeRuntime?: unknown
  }
  if (runtime.EdgeRuntime !== undefined) return undefined
  const get = runtime.process?.getBuiltinModule
  if (typeof get !== "function") return undefined
  try {
    const load = <A>(id: string) => get.call(runtime.process, id) as A | undefined
    const modules = {
      http: load<typeof Http>("node:http"),
      https: load<typeof Https>("node:https"),
      net: load<typeof Net>("node:net"),
      tls: load<typeof Tls>("node:tls"),
      zlib: load<typeof Zlib>("node:zlib")
    }
    if (Object.values(modules).some((m) => m === undefined || typeof m !== "object")) return undefined
    if (typeof modules.net?.Socket?.prototype?.resetAndDestroy !== "function") return undefined
    return modules as Modules
  } catch {
    return undefined
  }
}

interface Agents {
  readonly "http:": Http.Agent
  readonly "https:": Https.Agent
}

let shared: { readonly modules: Modules; readonly agents: Agents } | undefined | null

/** The modules and one pair of keep-alive agents per process (their idle sockets do not keep it alive). */
const runtime = (): { readonly modules: Modules; readonly agents: Agents } | undefined => {
  if (shared === null) return undefined
  if (shared !== undefined) return shared
  const modules = loadModules()
  if (modules === undefined) {
    shared = null
    return undefined
  }
  shared = { modules, agents: agentsOf(modules) }
  return shared
}

const agentsOf = (modules: Modules, tls?: { readonly ca?: string | undefined }): Agents => {
  const { http, https, net } = modules
  // TLS over a TCP socket of our own, kept on the TLS socket: resetting a TLS
  // socket itself is not possible (its handle is not a TCP one).
  class ResettableHttpsAgent extends https.Agent {
    override createConnection(
      options: Https.RequestOptions & Net.TcpNetConnectOpts,
      callback?: (error: Error | null, socket: Net.Socket) => void
    ): Net.Socket | null | undefined {
      const tcp = net.connect({
        host: options.host ?? "localhost",
        port: Number(options.port ?? 443),
        ...(options.family === undefined ? {} : { family: options.family }),
        ...(options.localAddress === undefined ? {} : { localAddress: options.localAddress }),
        ...(options.lookup === undefined ? {} : { lookup: options.lookup })
      })
      const socket = (
        https.Agent.prototype as unknown as {
          createConnection: (o: unknown, c?: unknown) => Net.Socket | null | undefined
        }
      ).createConnection.call(this, { ...options, socket: tcp }, callback)
      if (socket) (socket as unknown as Record<symbol, unknown>)[TCP] = tcp
      return socket
    }
  }
  return {
    "http:": new http.Agent({ keepAlive: true }),
    "https:": new ResettableHttpsAgent({ keepAlive: true, ...(tls?.ca === undefined ? {} : { ca: tls.ca }) })
  }
}

/** Closes a connection with a TCP RST: the peer sees it at once, unread data or not. */
const reset = (socket: Net.Socket | null | undefined): void => {
  if (!socket || socket.destroyed) return
  const tcp = (socket as unknown as Record<symbol, Net.Socket | undefined>)[TCP] ?? socket
  try {
    tcp.resetAndDestroy()
  } catch {
    // not a TCP handle after all: a plain close is what is left
  }
  socket.destroy()
}

const networkError = (cause: unknown): TypeError => new TypeError("fetch failed", { cause })

const NULL_BODY_STATUSES = new Set([101, 204, 205, 304])
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308])

/** The response body of `source` as a web stream that follows the reader's pace. */
const webBody = (source: Readable, onCancel: () => void): ReadableStream<Uint8Array> => {
  let cleanup = () => {}
  let settled = false
  return new ReadableStream<Uint8Array>(
    {
      start(controller) {
        const onData = (chunk: Buffer) => {
          controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength))
          if ((controller.desiredSize ?? 0) <= 0) source.pause()
        }
        const finish = (error?: unknown) => {
          if (settled) return
          settled = true
          cleanup()
          if (error === undefined) controller.close()
          else controller.error(error)
        }
        const onEnd = () => finish()
        const onError = (error: unknown) => finish(networkError(error))
        const onClose = () => {
          if (!source.readableEnded) finish(networkError(new Error("the upstream closed the connection")))
        }
        cleanup = () => {
          source.off("data", onData)
          source.off("end", onEnd)
          source.off("error", onError)
          source.off("close", onClose)
        }
        source.on("data", onData)
        source.once("end", onEnd)
        source.once("error", onError)
        source.once("close", onClose)
        source.pause()
      },
      pull() {
        source.resume()
      },
      cancel() {
        settled = true
        cleanup()
        onCancel()
      }
    },
    new ByteLengthQueuingStrategy({ highWaterMark: HIGH_WATER_MARK })
  )
}

/** The body decoded as undici decodes it (`gzip`, `deflate`, `br`), or `undefined` to pass as is. */
const decoder = (zlib: typeof Zlib, encoding: string | undefined): Transform | undefined => {
  const flush = { flush: zlib.constants.Z_SYNC_FLUSH, finishFlush: zlib.constants.Z_SYNC_FLUSH }
  switch (encoding?.trim().toLowerCase()) {
    case "gzip":
    case "x-gzip":
      return zlib.createGunzip(flush)
    case "deflate":
      return zlib.createInflate(flush)
    case "br":
      return zlib.createBrotliDecompress({
        flush: zlib.constants.BROTLI_OPERATION_FLUSH,
        finishFlush: zlib.constants.BROTLI_OPERATION_FLUSH
      })
    default:
      return undefined
  }
}

const encoder = new TextEncoder()

/** The request body as bytes or a stream (other `BodyInit`s through a `Response`, which reads them). */
const bodyOf = (
  body: FetchBody | null | undefined
): { readonly bytes?: Uint8Array; readonly stream?: ReadableStream<Uint8Array>; readonly type?: string } => {
  if (body === null || body === undefined) return {}
  if (typeof body === "string") return { bytes: encoder.encode(body), type: "text/plain;charset=UTF-8" }
  if (body instanceof Uint8Array) return { bytes: body }
  if (body instanceof ArrayBuffer) return { bytes: new Uint8Array(body) }
  if (ArrayBuffer.isView(body))
    return { bytes: new Uint8Array(body.buffer, body.byteOffset, body.byteLength) }
  if (body instanceof ReadableStream) return { stream: body as ReadableStream<Uint8Array> }
  const response = new Response(body)
  const type = response.headers.get("content-type")
  return { stream: response.body as ReadableStream<Uint8Array>, ...(type === null ? {} : { type }) }
}

/**
 * The fetch, or `undefined` where `node:http` cannot be had (edge runtimes).
 * A `Request` as input is handed to the global `fetch` (the proxy never
 * passes one). `tls.ca`: trust this CA too (tests; agents of their own).
 */
export const nodeUpstream = (tls?: { readonly ca?: string | undefined }): Fetch | undefined => {
  const node = runtime()
  if (node === undefined) return undefined
  const { modules } = node
  const agents = tls?.ca === undefined ? node.agents : agentsOf(modules, tls)
  return (input, init) => {
    if (input instanceof Request) return globalThis.fetch(input, init)
    const url = new URL(String(input))
    const signal = init?.signal ?? undefined
    if (signal?.aborted) return Promise.reject(signal.reason)
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      return Promise.reject(networkError(new Error(`unsupported protocol ${url.protocol}`)))
    }
    const method = (init?.method ?? "GET").toUpperCase()
    const headers = new Headers(init?.headers)
    let body: ReturnType<typeof bodyOf>
    try {
      body = method === "GET" || method === "HEAD" ? {} : bodyOf(init?.body)
    } catch (error) {
      return Promise.reject(error)
    }
    if (body.type !== undefined && !headers.has("content-type")) headers.set("content-type", body.type)
    if (!headers.has("accept-encoding")) headers.set("accept-encoding", "gzip, deflate, br")
    if (!headers.has("accept")) headers.set("accept", "*/*")
    headers.delete("content-length")
    headers.delete("transfer-encoding")
    headers.delete("host")
    if (body.bytes !== undefined) headers.set("content-length", String(body.bytes.byteLength))
    else if (method !== "GET" && method !== "HEAD" && body.stream === undefined) {
      if (method === "POST" || method === "PUT" || method === "PATCH") headers.set("content-length", "0")
    }
    const outgoing: Record<string, string | Array<string>> = {}
    for (const [name, value] of headers) outgoing[name] = value
    if (body.stream !== undefined) outgoing["transfer-encoding"] = "chunked"

    return new Promise<Response>((resolve, reject) => {
      let answered = false
      let finished = false
      let bodySent = body.stream === undefined
      let reader: ReadableStreamDefaultReader<Uint8Array> | undefined
      let response: Http.IncomingMessage | undefined
      const module = url.protocol === "https:" ? modules.https : modules.http
      // The options spelled out (what `urlToHttpOptions` would make of the URL, minus its cost).
      const request = module.request({
        protocol: url.protocol,
        hostname: url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname,
        ...(url.port === "" ? {} : { port: Number(url.port) }),
        path: `${url.pathname}${url.search}`,
        method,
        headers: outgoing,
        agent: agents[url.protocol as "http:" | "https:"]
      })

      const stopBody = (reason: unknown) => {
        const current = reader
        reader = undefined
        current?.cancel(reason).catch(() => {})
      }
      const settle = () => {
        finished = true
        signal?.removeEventListener("abort", onAbort)
      }
      /** Before an answer: reject; after it: the body errors (the caller is reading it). */
      const fail = (error: unknown) => {
        if (finished) return
        settle()
        stopBody(error)
        reset(request.socket)
        request.destroy()
        if (!answered) reject(error)
        else response?.destroy(error instanceof Error ? error : networkError(error))
      }
      const onAbort = () => fail(signal?.reason)
      signal?.addEventListener("abort", onAbort, { once: true })

      request.on("error", (error) => fail(networkError(error)))
      request.on("response", (incoming) => {
        response = incoming
        // Errors reach the reader through the body stream; none may go unheard.
        incoming.on("error", () => {})
        const status = incoming.statusCode ?? 0
        if (status < 200 || status > 599) {
          fail(networkError(new Error(`invalid status ${status}`)))
          return
        }
        if (
          init?.redirect === "error" &&
          REDIRECT_STATUSES.has(status) &&
          incoming.headers.location !== undefined
        ) {
          fail(networkError(new Error('redirect with redirect mode "error"')))
          return
        }
        const responseHeaders = new Headers()
        const raw = incoming.rawHeaders
        for (let i = 0; i + 1 < raw.length; i += 2) {
          try {
            responseHeaders.append(raw[i]!, raw[i + 1]!)
          } catch {
            // a value fetch cannot represent: left out
          }
        }
        incoming.once("end", () => {
          if (finished) return
          if (bodySent) return settle()
          // Answered in full without taking the whole body: the rest is not wanted, and the
          // connection cannot be reused before it is sent. Closed, not left waiting.
          settle()
          stopBody(undefined)
          reset(request.socket)
        })
        let stream: ReadableStream<Uint8Array> | null = null
        if (method === "HEAD" || NULL_BODY_STATUSES.has(status)) {
          incoming.resume()
        } else {
          const decode = decoder(modules.zlib, incoming.headers["content-encoding"])
          let source: Readable = incoming
          if (decode !== undefined) {
            responseHeaders.delete("content-encoding")
            responseHeaders.delete("content-length")
            decode.on("error", () => {})
            incoming.on("error", (error) => decode.destroy(error))
            incoming.on("close", () => {
              if (!incoming.complete) decode.destroy(new Error("the upstream closed the connection"))
            })
            source = incoming.pipe(decode)
          }
          stream = webBody(source, () => {
            decode?.destroy()
            if (incoming.complete) {
              // All of it is here already: drained, the connection can serve the next request.
              incoming.unpipe()
              incoming.resume()
            } else {
              // The reader gave up midway: the rest is not wanted, nor this connection.
              reset(request.socket)
              incoming.destroy()
            }
          })
        }
        let answer: Response
        try {
          answer = new Response(stream, {
            status,
            statusText: incoming.statusMessage ?? "",
            headers: responseHeaders
          })
        } catch {
          answer = new Response(stream, { status, headers: responseHeaders })
        }
        answered = true
        resolve(answer)
      })

      if (body.bytes !== undefined) {
        request.end(body.bytes)
      } else if (body.stream !== undefined) {
        const current = body.stream.getReader()
        reader = current
        const pump = async () => {
          for (;;) {
            const { done, value } = await current.read()
            if (reader !== current) return
            if (done) {
              reader = undefined
              bodySent = true
              request.end()
              if (response?.complete) settle()
              return
            }
            if (!request.write(value)) {
              await new Promise<void>((resume) => {
                const go = () => {
                  request.off("drain", go)
                  request.off("close", go)
                  resume()
                }
                request.on("drain", go)
                request.on("close", go)
              })
              if (request.destroyed) return
            }
          }
        }
        pump().catch((error: unknown) => {
          // The body failed (too large, or its own source went away): the request cannot complete.
          if (reader !== current) return
          reader = undefined
          fail(networkError(error))
        })
      } else {
        request.end()
      }
    })
  }
}
