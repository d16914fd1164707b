/**
 * The integrations under test, each written the way an application uses it,
 * behind one small interface: `send(request) → outcome`, never rejecting.
 *
 * Adding an integration is one entry in `INTEGRATIONS`: a `make` that builds
 * the client from an `IntegrationContext` (the token configuration, the
 * sandbox API base, the retry and timeout options, and a `wire` that counts
 * what actually goes over the network).
 *
 * Proxies (`express`, `next`) are seen from the browser's side: a plain
 * `fetch` to our server, which forwards to the sandbox with the token; every
 * response that reaches that caller (status, headers, body) goes to the leak
 * sweep.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { Readable } from "node:stream"
import { attachAuth } from "@authfetch/axios"
import {
  AuthHttpClient,
  authFetch,
  createTokenSource,
  type RequestEvent,
  type RetryPolicy,
  TokenSource,
  type TokenSourceConfig,
  type TokenSourceHandle,
  type TokenStore
} from "@authfetch/core"
import { authKyOptions } from "@authfetch/ky"
import axios, { type AxiosAdapter, type InternalAxiosRequestConfig } from "axios"
import { Effect, Layer, ManagedRuntime } from "effect"
import { FetchHttpClient, HttpBody, HttpClient, HttpClientRequest } from "effect/http"
import ky, { isHTTPError } from "ky"
import type { Capture } from "./capture.ts"

/** One logical request of a batch. */
export interface BatchRequest {
  readonly method: "GET" | "POST"
  /** below the API base: `/v1/...` */
  readonly path: string
  readonly body?: string | undefined
  readonly headers: Record<string, string>
  /** the `x-request-id` header: how the wire recognises its attempts */
  readonly id: string
}

export type Outcome =
  | { readonly kind: "response"; readonly status: number }
  | { readonly kind: "error"; readonly error: unknown }

export interface Client {
  send(request: BatchRequest): Promise<Outcome>
  dispose(): Promise<void>
}

/** What went over the wire, per logical request: the outcome of each attempt. */
export class Wire {
  readonly attempts = new Map<string, Array<string>>()
  /** per logical request: the bearer token of each attempt that carried one */
  readonly bearers = new Map<string, Array<string>>()
  /** requests that carried the browser's own `Cookie` or `Authorization` upstream (a proxy must drop them) */
  forwardedBrowserCredentials = 0
  readonly #capture: Capture

  constructor(capture: Capture) {
    this.#capture = capture
  }

  /** records the start of an attempt; returns how to record its end */
  #begin(id: string | null, authorization: string | null, cookie: string | null): (outcome: string) => void {
    if (cookie !== null || authorization === `Bearer ${BROWSER_TOKEN}`) this.forwardedBrowserCredentials++
    const bearer = authorization?.match(/^Bearer (.+)$/)?.[1]
    if (bearer !== undefined) this.#capture.token(bearer, "access token (seen on the wire)")
    if (id === null) return () => {}
    if (bearer !== undefined) {
      const tokens = this.bearers.get(id) ?? []
      this.bearers.set(id, tokens)
      tokens.push(bearer)
    }
    const list = this.attempts.get(id) ?? []
    this.attempts.set(id, list)
    const slot = list.length
    list.push("pending")
    return (outcome) => {
      list[slot] = outcome
    }
  }

  /** a fetch that records each attempt, over `next` */
  fetch(next: typeof globalThis.fetch = globalThis.fetch): typeof globalThis.fetch {
    return async (input, init) => {
      const headers = new Headers(init?.headers ?? (input instanceof Request ? input.headers : undefined))
      const end = this.#begin(
        headers.get("x-request-id"),
        headers.get("authorization"),
        headers.get("cookie")
      )
      try {
        const response = await next(input, init)
        end(String(response.status))
        return response
      } catch (error) {
        end(`error:${(error as Error)?.name ?? "unknown"}`)
        throw error
      }
    }
  }

  /** an axios adapter that records each attempt, over `next` */
  axiosAdapter(next: AxiosAdapter): AxiosAdapter {
    return async (config: InternalAxiosRequestConfig) => {
      const id = config.headers.get("x-request-id")
      const authorization = config.headers.get("authorization")
      const cookie = config.headers.get("cookie")
      const end = this.#begin(
        typeof id === "string" ? id : null,
        typeof authorization === "string" ? authorization : null,
        typeof cookie === "string" ? cookie : null
      )
      try {
        const response = await next(config)
        end(String(response.status))
        return response
      } catch (error) {
        end(`error:${(error as Error)?.name ?? "unknown"}`)
        throw error
      }
    }
  }
}

export interface IntegrationContext {
  /** the token source configuration (recording fetch and events included) */
  readonly tokenConfig: TokenSourceConfig
  /** a token store shared with other sources of the cell; `undefined`: the source's own */
  readonly tokenStore?: Layer.Layer<TokenStore.TokenStore> | undefined
  /** `http://127.0.0.1:PORT/api` */
  readonly baseUrl: string
  readonly retry: RetryPolicy.RequestRetryOptions
  /** per attempt */
  readonly attemptTimeoutMs: number
  readonly onRequestEvent: (event: RequestEvent) => void
  readonly wire: Wire
  readonly capture: Capture
}

export interface Integration {
  readonly name: string
  make(context: IntegrationContext): Promise<Client>
}

/** A response's body as text, never rejecting. */
const textOf = async (response: Response): Promise<string> => {
  try {
    return await response.text()
  } catch {
    return ""
  }
}

/** A response's body read as text, then captured as `where`; resolves to its status. */
const captured = async (capture: Capture, where: string, response: Response): Promise<number> => {
  const body = await textOf(response)
  capture.response(where, response.status, response.headers, body)
  return response.status
}

/**
 * The outcome of `send` (which resolves to the status that reached the
 * caller), never rejecting: an error is captured as `errorWhere`, and is a
 * response when `statusOf` finds one in it. The `ProblemDetailsError` our
 * adapters put on an error (`error.problem`: ky's `HTTPError`, `AxiosError`)
 * is captured on its own too, as `<errorWhere>.problem`, so that the sweep
 * tells it apart from the rest of the error.
 */
const settle = async (
  capture: Capture,
  errorWhere: string,
  send: () => Promise<number>,
  statusOf?: (error: unknown) => number | undefined
): Promise<Outcome> => {
  try {
    return { kind: "response", status: await send() }
  } catch (error) {
    capture.error(errorWhere, error)
    const problem =
      typeof error === "object" && error !== null ? (error as { problem?: unknown }).problem : undefined
    if (problem !== undefined) capture.error(`${errorWhere}.problem`, problem)
    const status = statusOf?.(error)
    return status === undefined ? { kind: "error", error } : { kind: "response", status }
  }
}

/** The context's token source, over the shared store when there is one. */
const tokensOf = (context: IntegrationContext): TokenSourceHandle =>
  createTokenSource(
    context.tokenConfig,
    context.tokenStore === undefined ? undefined : { store: context.tokenStore }
  )

// ---------------------------------------------------------------------------
// clients

const coreAuthFetch: Integration = {
  name: "authFetch",
  make: async (context) => {
    const { baseUrl, retry, attemptTimeoutMs, onRequestEvent, wire, capture } = context
    const tokens = tokensOf(context)
    const api = authFetch(tokens, {
      baseUrl: baseUrl,
      retry,
      attemptTimeout: attemptTimeoutMs,
      fetch: wire.fetch(),
      onEvent: onRequestEvent
    })
    return {
      send: (request) =>
        settle(capture, "authFetch error", async () =>
          captured(
            capture,
            "authFetch response",
            await api(request.path, {
              method: request.method,
              headers: request.headers,
              body: request.body ?? null
            })
          )
        ),
      dispose: () => tokens.dispose()
    }
  }
}

const effectAuthHttpClient: Integration = {
  name: "AuthHttpClient",
  make: async ({
    tokenConfig,
    tokenStore,
    baseUrl,
    retry,
    attemptTimeoutMs,
    onRequestEvent,
    wire,
    capture
  }) => {
    const origin = new URL(baseUrl).origin
    const ApiClient = AuthHttpClient.layer({
      origins: [origin],
      retry,
      attemptTimeout: attemptTimeoutMs,
      onEvent: onRequestEvent
    }).pipe(
      Layer.provideMerge(
        tokenStore === undefined
          ? TokenSource.layerDefault(tokenConfig)
          : TokenSource.layer(tokenConfig).pipe(
              Layer.provide(Layer.merge(TokenSource.layerDependencies, tokenStore))
            )
      ),
      Layer.provideMerge(FetchHttpClient.layer)
    )
    const runtime = ManagedRuntime.make(ApiClient)
    const fetch = wire.fetch()
    return {
      send: async (request) => {
        const program = Effect.gen(function* () {
          const client = yield* HttpClient.HttpClient
          const outgoing = HttpClientRequest.make(request.method)(`${baseUrl}${request.path}`, {
            headers: request.headers,
            ...(request.body === undefined ? {} : { body: HttpBody.text(request.body, "application/json") })
          })
          const response = yield* client.execute(outgoing)
          const body = yield* response.text
          capture.response("AuthHttpClient response", response.status, response.headers, body)
          return response.status
        }).pipe(Effect.provideService(FetchHttpClient.Fetch, fetch))
        return settle(capture, "AuthHttpClient error", () => runtime.runPromise(program))
      },
      dispose: () => runtime.dispose()
    }
  }
}

const kyClient: Integration = {
  name: "ky",
  make: async (context) => {
    const { baseUrl, retry, attemptTimeoutMs, onRequestEvent, wire, capture } = context
    const tokens = tokensOf(context)
    const api = ky.create(
      authKyOptions(tokens, {
        prefix: baseUrl,
        fetch: wire.fetch(),
        timeout: 60_000,
        auth: { retry, attemptTimeout: attemptTimeoutMs, onEvent: onRequestEvent }
      })
    )
    return {
      send: (request) =>
        settle(
          capture,
          "ky error",
          async () =>
            captured(
              capture,
              "ky response",
              await api(request.path, {
                method: request.method,
                headers: request.headers,
                ...(request.body === undefined ? {} : { body: request.body })
              })
            ),
          (error) => (isHTTPError(error) ? error.response.status : undefined)
        ),
      dispose: () => tokens.dispose()
    }
  }
}

const axiosClient: Integration = {
  name: "axios",
  make: async (context) => {
    const { baseUrl, retry, attemptTimeoutMs, onRequestEvent, wire, capture } = context
    const tokens = tokensOf(context)
    const http = axios.getAdapter("http")
    const api = axios.create({
      baseURL: baseUrl,
      timeout: attemptTimeoutMs,
      adapter: wire.axiosAdapter(http),
      responseType: "text",
      transformResponse: [(data: unknown) => data]
    })
    const detach = attachAuth(api, tokens, { retry, onEvent: onRequestEvent })
    return {
      send: (request) =>
        settle(
          capture,
          "axios error",
          async () => {
            const response = await api.request({
              method: request.method,
              url: request.path,
              headers: request.headers,
              data: request.body
            })
            capture.response(
              "axios response",
              response.status,
              { ...response.headers },
              String(response.data)
            )
            capture.text(
              "axios response object",
              JSON.stringify({ config: response.config, request: response.request })
            )
            return response.status
          },
          (error) => (axios.isAxiosError(error) && error.response ? error.response.status : undefined)
        ),
      dispose: async () => {
        detach()
        await tokens.dispose()
      }
    }
  }
}

// ---------------------------------------------------------------------------
// proxies

/** A server on 127.0.0.1 that closes every connection on `close`. */
const listen = async (
  handler: (req: IncomingMessage, res: ServerResponse) => void
): Promise<{ url: string; close(): Promise<void> }> => {
  const server: Server = createServer(handler)
  const sockets = new Set<import("node:net").Socket>()
  server.on("connection", (socket) => {
    sockets.add(socket)
    socket.once("close", () => sockets.delete(socket))
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const port = (server.address() as AddressInfo).port
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy()
        server.close(() => resolve())
      })
  }
}

/** The browser's own credentials for our server: a proxy must never pass them upstream. */
const BROWSER_TOKEN = "browser-session-token-for-the-bff"

/** What a browser does: one plain fetch to our server (with its cookie), no retries of its own. */
const browserSend =
  (name: string, base: string, capture: Capture) =>
  (request: BatchRequest): Promise<Outcome> =>
    settle(capture, `${name} browser fetch error`, async () =>
      captured(
        capture,
        `${name} response to the browser`,
        await fetch(`${base}${request.path}`, {
          method: request.method,
          headers: {
            ...request.headers,
            cookie: "session=browser-session-cookie",
            authorization: `Bearer ${BROWSER_TOKEN}`
          },
          body: request.body ?? null
        })
      )
    )

const proxyOptions = (
  tokens: TokenSourceHandle,
  { baseUrl, retry, attemptTimeoutMs, onRequestEvent, wire }: IntegrationContext
) => ({
  tokens,
  baseUrl: baseUrl,
  allow: ["/v1/**"],
  retry,
  timeout: attemptTimeoutMs,
  fetch: wire.fetch(),
  onEvent: onRequestEvent
})

/**
 * `@authfetch/express`'s `createProxy`, mounted at `/bff` of a real Express
 * server. Loaded lazily: the package may not be built yet.
 */
const expressProxy: Integration = {
  name: "express proxy",
  make: async (context) => {
    const [{ default: express }, { createProxy, problemDetails }] = await Promise.all([
      import("express"),
      import("@authfetch/express")
    ])
    const tokens = tokensOf(context)
    const app = express()
    app.use("/bff", createProxy(proxyOptions(tokens, context)))
    app.use(problemDetails())
    const server = await listen(app)
    return {
      send: browserSend("express proxy", `${server.url}/bff`, context.capture),
      dispose: async () => {
        await server.close()
        await tokens.dispose()
      }
    }
  }
}

const HOP_BY_HOP = new Set(["connection", "keep-alive", "transfer-encoding", "upgrade", "host"])

/**
 * `@authfetch/next`'s `createProxyRoute` (`prefix: "/bff"`), its route
 * functions called as Next calls them, through a minimal `node:http` adapter
 * (a web `Request` in, the web `Response` written back). Loaded lazily.
 */
const nextProxy: Integration = {
  name: "next proxy",
  make: async (context) => {
    const { createProxyRoute } = await import("@authfetch/next")
    const tokens = tokensOf(context)
    const route = createProxyRoute({ ...proxyOptions(tokens, context), prefix: "/bff" }) as unknown as Record<
      string,
      ((request: Request) => Promise<Response>) | undefined
    >
    let base = ""
    const server = await listen((req, res) => {
      const controller = new AbortController()
      res.once("close", () => {
        if (!res.writableFinished) controller.abort()
      })
      const method = req.method ?? "GET"
      const headers = new Headers()
      for (const [name, value] of Object.entries(req.headers)) {
        if (value === undefined || HOP_BY_HOP.has(name)) continue
        headers.set(name, Array.isArray(value) ? value.join(", ") : value)
      }
      const hasBody = method !== "GET" && method !== "HEAD"
      const request = new Request(`${base}${req.url ?? "/"}`, {
        method,
        headers,
        signal: controller.signal,
        ...(hasBody ? { body: Readable.toWeb(req) as ReadableStream<Uint8Array>, duplex: "half" } : {})
      } as RequestInit)
      const handler = route[method] ?? route.GET!
      handler(request)
        .then(async (response) => {
          res.writeHead(response.status, Object.fromEntries(response.headers))
          if (response.body) for await (const chunk of response.body) res.write(chunk)
          res.end()
        })
        .catch(() => res.destroy())
    })
    base = server.url
    return {
      send: browserSend("next proxy", `${server.url}/bff`, context.capture),
      dispose: async () => {
        await server.close()
        await tokens.dispose()
      }
    }
  }
}

/** Every integration the matrix and the soak run. One entry per integration. */
export const INTEGRATIONS: ReadonlyArray<Integration> = [
  coreAuthFetch,
  effectAuthHttpClient,
  kyClient,
  axiosClient,
  expressProxy,
  nextProxy
]
