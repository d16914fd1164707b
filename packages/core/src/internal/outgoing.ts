/**
 * A fetch call, taken apart once so that it can be sent again: URL, method,
 * headers, the caller's redirect mode and signal, and a body that knows
 * whether it can be replayed.
 *
 * Replayable: no body, strings, bytes, `Blob`, `URLSearchParams`, `FormData`
 * (fetch re-reads them on every send), and a `Request`'s own body (cloned per
 * attempt: the tee keeps a copy). One-shot: a `ReadableStream` or async
 * iterable passed as `init.body`. It is sent once and never again, so a retry
 * never silently re-sends half a stream or a second POST.
 */
import { Data, Effect } from "effect"
import { RequestTimeoutError } from "../Errors.ts"
import { safeUrl } from "../Events.ts"
import type { AccessToken } from "../Token.ts"
import type { FetchBody, FetchInput, FetchRedirect } from "./webTypes.ts"

export type Fetch = typeof globalThis.fetch

type Body =
  | { readonly kind: "none" }
  | { readonly kind: "reusable"; readonly value: FetchBody }
  | { readonly kind: "request"; readonly request: Request }
  | { readonly kind: "once"; readonly value: FetchBody; sent: boolean }

export interface Outgoing {
  readonly url: URL
  readonly method: string
  readonly headers: Headers
  readonly redirect: FetchRedirect
  readonly signal: AbortSignal | undefined
  /** other init members (cache, credentials, keepalive, dispatcher, ...), passed through */
  readonly rest: RequestInit
  readonly body: Body
  /**
   * The first send, already made by `authFetch`'s fast path with `token`
   * (see `internal/firstAttempt.ts`): the authorization step takes its result
   * as the answer to its first hop instead of sending again.
   */
  first?: FirstSend | undefined
}

/** A send made before the Effect pipeline ran, handed over to it. */
export interface FirstSend {
  readonly token: AccessToken
  readonly result: Effect.Effect<Response, SendError | RequestTimeoutError>
}

const NO_BODY: Body = { kind: "none" }
const NO_INIT: RequestInit = {}

const isReusable = (body: unknown): body is FetchBody =>
  typeof body === "string" ||
  body instanceof ArrayBuffer ||
  ArrayBuffer.isView(body) ||
  body instanceof Blob ||
  body instanceof URLSearchParams ||
  body instanceof FormData

export const fromArgs = (input: FetchInput, init?: RequestInit): Outgoing => {
  const { method, headers, body, signal, redirect, ...rest } = init ?? NO_INIT
  if (input instanceof Request) {
    const requestBody: Body =
      body !== undefined && body !== null
        ? classify(body)
        : input.body !== null
          ? { kind: "request", request: input }
          : NO_BODY
    return {
      url: new URL(input.url),
      method: (method ?? input.method).toUpperCase(),
      headers: new Headers(headers ?? input.headers),
      redirect: redirect ?? input.redirect,
      signal: signal ?? input.signal,
      rest,
      body: requestBody,
      first: undefined
    }
  }
  return {
    url: new URL(String(input)),
    method: (method ?? "GET").toUpperCase(),
    headers: new Headers(headers),
    redirect: redirect ?? "follow",
    signal: signal ?? undefined,
    rest,
    body: body === undefined || body === null ? NO_BODY : classify(body),
    // declared up front: one object shape whether or not a first send is handed over
    first: undefined
  }
}

/** An `Outgoing` from parts already taken apart (Effect's HttpClient requests). */
export const fromParts = (parts: {
  readonly url: URL
  readonly method: string
  readonly headers: Headers
  readonly body: FetchBody | null
  readonly signal?: AbortSignal | undefined
}): Outgoing => ({
  url: parts.url,
  method: parts.method.toUpperCase(),
  headers: parts.headers,
  redirect: "follow",
  signal: parts.signal,
  rest: {},
  body: parts.body === null ? NO_BODY : classify(parts.body),
  first: undefined
})

const classify = (body: FetchBody): Body =>
  isReusable(body) ? { kind: "reusable", value: body } : { kind: "once", value: body, sent: false }

/** Whether the body can be sent more than once at all (a one-shot stream cannot). */
export const canReplay = (outgoing: Outgoing): boolean => outgoing.body.kind !== "once"

/** The body for one send; a one-shot body is marked sent. */
export const takeBody = (outgoing: Outgoing): FetchBody | null => {
  const body = outgoing.body
  switch (body.kind) {
    case "none":
      return null
    case "reusable":
      return body.value
    case "request":
      return body.request.clone().body
    case "once":
      body.sent = true
      return body.value
  }
}

/** A fetch `RequestInit` for one send. */
export const toInit = (
  outgoing: Outgoing,
  overrides: {
    readonly method: string
    readonly headers: Headers
    readonly body: FetchBody | null
    readonly redirect: FetchRedirect
  }
): Omit<RequestInit, "signal"> => {
  const streaming = overrides.body instanceof ReadableStream || isAsyncIterable(overrides.body)
  return {
    ...outgoing.rest,
    ...overrides,
    ...(streaming ? { duplex: "half" } : {})
  } as Omit<RequestInit, "signal">
}

const isAsyncIterable = (value: unknown): boolean =>
  typeof value === "object" && value !== null && Symbol.asyncIterator in value

/**
 * `AbortSignal.any`, where the runtime has it; Next's Edge runtime does not,
 * so the two signals are then joined by hand.
 */
export const anySignal = (a: AbortSignal, b: AbortSignal): AbortSignal => {
  if (typeof AbortSignal.any === "function") return AbortSignal.any([a, b])
  const controller = new AbortController()
  for (const signal of [a, b]) {
    if (signal.aborted) {
      controller.abort(signal.reason)
      return controller.signal
    }
  }
  const onAbort = (event: Event) => {
    controller.abort((event.target as AbortSignal).reason)
    a.removeEventListener("abort", onAbort)
    b.removeEventListener("abort", onAbort)
  }
  a.addEventListener("abort", onAbort)
  b.addEventListener("abort", onAbort)
  return controller.signal
}

/** Releases a response we will not hand out, so its connection can be reused. */
export const discard = (response: Response): Effect.Effect<void> =>
  Effect.promise(() => response.body?.cancel().catch(() => {}) ?? Promise.resolve())

/** The error of an attempt that got no response headers within `timeoutMillis`. */
export const timedOut = (outgoing: Outgoing, timeoutMillis: number): RequestTimeoutError =>
  new RequestTimeoutError({ method: outgoing.method, url: safeUrl(outgoing.url), timeoutMillis })

/** A failure of the transport (fetch rejected), kept as it was thrown. */
export class SendError extends Data.TaggedError("SendError")<{ readonly cause: unknown }> {}

/**
 * One request on the wire: the innermost step every policy calls, possibly
 * several times (redirect hops, retries) for one `Outgoing`.
 */
export type Wire = (
  outgoing: Outgoing,
  url: URL,
  init: Omit<RequestInit, "signal">
) => Effect.Effect<Response, SendError | RequestTimeoutError>

/** An `Outgoing` answered: what each policy step transforms. */
export type Handler<E> = (outgoing: Outgoing) => Effect.Effect<Response, E>

/**
 * The wire over a fetch function. Interrupting the effect (a timeout, the
 * caller's abort) aborts the fetch. A `Request`'s own body is forwarded as a
 * `Request` so that a fetch middleware below still sees a replayable body.
 */
export const wireOf =
  (next: Fetch): Wire =>
  (outgoing, url, init) =>
    Effect.tryPromise({
      try: (interrupt) =>
        send(next, outgoing, url, init, outgoing.signal ? anySignal(outgoing.signal, interrupt) : interrupt),
      catch: (cause) => new SendError({ cause })
    })

/** One call of the fetch underneath, with the signal that may abort it. */
export const send = (
  next: Fetch,
  outgoing: Outgoing,
  url: URL,
  init: Omit<RequestInit, "signal">,
  signal: AbortSignal | undefined
): Promise<Response> =>
  outgoing.body.kind === "request" && init.body !== null && init.body !== undefined
    ? next(new Request(url.href, { ...init, signal, duplex: "half" } as RequestInit))
    : next(url.href, signal === undefined ? init : { ...init, signal })

/** Sends an `Outgoing` once, as the caller asked (method, body, redirect mode). */
export const direct =
  (wire: Wire): Handler<SendError | RequestTimeoutError> =>
  (outgoing) =>
    Effect.suspend(() =>
      wire(outgoing, outgoing.url, {
        ...toInit(outgoing, {
          method: outgoing.method,
          headers: outgoing.headers,
          body: takeBody(outgoing),
          redirect: outgoing.redirect
        })
      })
    )

/** Runs a middleware program as a fetch call: the caller's abort rejects with the signal's reason. */
export const runAsFetch = <A>(
  program: Effect.Effect<A, unknown>,
  signal: AbortSignal | undefined
): Promise<A> =>
  Effect.runPromise(program, signal ? { signal } : undefined).catch((error: unknown) => {
    if (signal?.aborted) throw signal.reason
    throw error instanceof SendError ? error.cause : error
  })
