/**
 * The crossing between Node's `http` streams and web streams, done once for
 * the proxy and the error handler:
 *
 * - a request body as a web `ReadableStream` that follows the reader's pace
 *   (the socket is paused while the stream is full), and that, when the
 *   reader stops early (a `413`), leaves the rest unread instead of
 *   destroying the connection before the answer is written;
 * - an `AbortSignal` that fires when the client goes away before its answer
 *   is complete;
 * - a web `Response` written to a `ServerResponse` with backpressure;
 * - a fetch whose calls are aborted when the client goes away.
 *
 * @internal
 */
import type { IncomingMessage, ServerResponse } from "node:http"
import { Readable } from "node:stream"
import { pipeline } from "node:stream/promises"
import type { ReadableStream as NodeReadableStream } from "node:stream/web"

/** Bytes of request body buffered ahead of the reader. */
const BODY_HIGH_WATER_MARK = 64 * 1024

/**
 * Request body left unread after the answer (the upstream refused it, or it
 * was too large) that is read and discarded so the connection can be reused;
 * past this the connection is closed instead.
 */
const DISCARD_LIMIT = 256 * 1024

/** Whether the request has a body, by its framing (RFC 9112 section 6.3). */
export const hasBody = (req: IncomingMessage): boolean =>
  req.headers["transfer-encoding"] !== undefined ||
  (req.headers["content-length"] !== undefined && req.headers["content-length"] !== "0")

/**
 * Whether something before us read the body (a body parser: `express.json()`
 * sets `req._body`; any reader sets `readableDidRead`).
 */
export const bodyAlreadyRead = (req: IncomingMessage): boolean =>
  (req as { _body?: unknown })._body === true || req.readableDidRead || req.readableEnded

/** The client's connection is gone and its answer was not completed. */
export const clientGone = (res: ServerResponse): boolean =>
  !res.writableFinished && (res.destroyed || res.socket?.destroyed === true)

/**
 * A signal that aborts when the client disconnects before its response is
 * finished (`res` closes without having finished).
 */
export const clientCloseSignal = (res: ServerResponse): AbortSignal => {
  const controller = new AbortController()
  const abort = () => controller.abort(new DOMException("The client closed the connection.", "AbortError"))
  if (clientGone(res)) {
    abort()
  } else if (!res.writableFinished) {
    res.once("close", () => {
      if (!res.writableFinished) abort()
    })
  }
  return controller.signal
}

/**
 * `api`, with the client's disconnect added to each call's signal (created
 * on first use) and combined with the caller's own signal, if any.
 */
export const followingClient = (api: typeof fetch, res: ServerResponse): typeof fetch => {
  let client: AbortSignal | undefined
  return (input, init) => {
    client ??= clientCloseSignal(res)
    const own = init?.signal ?? (input instanceof Request ? input.signal : undefined)
    return api(input, { ...init, signal: own ? AbortSignal.any([client, own]) : client })
  }
}

/**
 * The request body as a web stream. Chunks are handed over as they arrive;
 * the socket is paused while `BODY_HIGH_WATER_MARK` bytes wait for the reader.
 * A client that disconnects mid-body errors the stream. Cancelling it (the
 * reader gave up) only pauses the request: `finishRequest` deals with the
 * rest once the answer is written.
 */
export const requestBody = (req: IncomingMessage): ReadableStream<Uint8Array> => {
  let cleanup = () => {}
  return new ReadableStream<Uint8Array>(
    {
      start(controller) {
        const onData = (chunk: Buffer) => {
          controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength))
          if ((controller.desiredSize ?? 0) <= 0) req.pause()
        }
        const onEnd = () => {
          cleanup()
          controller.close()
        }
        const onAbort = () => {
          cleanup()
          controller.error(new DOMException("The client closed the connection.", "AbortError"))
        }
        const onClose = () => {
          if (!req.readableEnded) onAbort()
        }
        cleanup = () => {
          req.off("data", onData)
          req.off("end", onEnd)
          req.off("error", onAbort)
          req.off("close", onClose)
        }
        req.on("data", onData)
        req.once("end", onEnd)
        req.once("error", onAbort)
        req.once("close", onClose)
        req.pause()
      },
      pull() {
        req.resume()
      },
      cancel() {
        cleanup()
        req.pause()
      }
    },
    new ByteLengthQueuingStrategy({ highWaterMark: BODY_HIGH_WATER_MARK })
  )
}

/**
 * Once the answer is written, a request body that was not read to its end is
 * read and discarded up to `DISCARD_LIMIT` bytes (so a keep-alive connection
 * stays usable after a small overrun), and the connection is closed past it
 * (a client announcing gigabytes is not read for nothing).
 */
export const finishRequest = (req: IncomingMessage, res: ServerResponse): void => {
  const discard = () => {
    if (req.readableEnded || req.destroyed) return
    let discarded = 0
    req.on("data", (chunk: Buffer) => {
      discarded += chunk.byteLength
      if (discarded > DISCARD_LIMIT) req.destroy()
    })
    req.on("error", () => {})
    req.resume()
  }
  if (res.writableFinished) discard()
  else res.once("finish", discard)
}

/** Headers whose value an error answer must not inherit from whatever was set before. */
const REPRESENTATION_HEADERS = [
  "content-type",
  "content-length",
  "content-encoding",
  "content-language",
  "content-location",
  "content-range",
  "content-disposition",
  "etag",
  "last-modified",
  "expires"
]

/**
 * Writes a web `Response` (status, headers, body) to a Node response, the
 * body with backpressure. Resolves when the body is written, the client went
 * away, or the body failed midway (then the connection is cut: the status
 * line may already be out).
 *
 * @param replace drop representation headers set earlier (error answers)
 */
/** Bodies up to this size, with a `Content-Length`, are written in one go. */
const SMALL_BODY_BYTES = 64 * 1024

export const sendResponse = async (
  response: Response,
  res: ServerResponse,
  options?: { readonly replace?: boolean }
): Promise<void> => {
  if (options?.replace) for (const name of REPRESENTATION_HEADERS) res.removeHeader(name)
  res.statusCode = response.status
  for (const [name, value] of response.headers) {
    if (name !== "set-cookie") res.setHeader(name, value)
  }
  const cookies = response.headers.getSetCookie()
  if (cookies.length > 0) res.setHeader("set-cookie", cookies)
  const body = response.body
  if (body === null) {
    res.end()
    return
  }
  if (clientGone(res)) {
    await body.cancel().catch(() => {})
    return
  }
  // A small body of known length (the proxy's answers of up to 16 KiB) in one write, without a
  // stream between the web body and the socket.
  const length = Number(response.headers.get("content-length") ?? Number.NaN)
  if (length <= SMALL_BODY_BYTES) {
    const bytes = await response.arrayBuffer().catch(() => undefined)
    if (bytes === undefined) res.destroy()
    else res.end(new Uint8Array(bytes))
    return
  }
  try {
    await pipeline(Readable.fromWeb(body as unknown as NodeReadableStream<Uint8Array>), res)
  } catch {
    // The client left (nothing to tell it), or the body failed midway (the upstream
    // dropped it): `pipeline` has destroyed `res`, a truncated answer is all that can be given.
    if (!res.destroyed) res.destroy()
  }
}
