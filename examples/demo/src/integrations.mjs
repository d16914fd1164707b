/**
 * The four ways to call an API with authfetch, each written as an application
 * writes it, each with its own token source. The demo drives them through one
 * small interface, so every scene runs the same calls through all four:
 *
 *   call(method, path, { json, headers }) → { status, body }
 *
 * A non-2xx answer is returned as a status, whatever the client's habit (ky and
 * axios throw for it); only a failure to get an answer at all rejects.
 *
 * `config` is a `wex()` preset pointed at the sandbox; `onRequestEvent`
 * receives the request policy's events (retries, 401 replays, give-ups).
 */
import { attachAuth } from "@authfetch/axios"
import { AuthHttpClient, authFetch, createTokenSource, TokenSource } from "@authfetch/core"
import { createProxy } from "@authfetch/express"
import { authKyOptions } from "@authfetch/ky"
import { createProxyRoute } from "@authfetch/next"
import axios from "axios"
import { Effect, Layer, ManagedRuntime } from "effect"
import { FetchHttpClient, HttpBody, HttpClient, HttpClientRequest } from "effect/http"
import express from "express"
import ky, { isHTTPError } from "ky"

const json = async (response) => (response.status === 204 ? undefined : response.json())

/** core: `authFetch`, a `fetch` with the policy built in. */
export const coreAuthFetch = async ({ config, onRequestEvent }) => {
  const tokens = createTokenSource(config)
  const api = authFetch(tokens, { baseUrl: config.baseUrl, onEvent: onRequestEvent })
  return {
    call: async (method, path, { json: body, headers } = {}) => {
      const response = await api(path, {
        method,
        headers: { ...headers, ...(body === undefined ? {} : { "content-type": "application/json" }) },
        body: body === undefined ? undefined : JSON.stringify(body)
      })
      return { status: response.status, body: response.ok ? await json(response) : await response.text() }
    },
    peek: () => tokens.peek(),
    dispose: () => tokens.dispose()
  }
}

/** Effect: `AuthHttpClient.layer` over the `TokenSource` service, run through a `ManagedRuntime`. */
export const effectAuthHttpClient = async ({ config, onRequestEvent }) => {
  const ApiClient = AuthHttpClient.layer({ origins: [config.baseUrl], onEvent: onRequestEvent }).pipe(
    Layer.provideMerge(TokenSource.layerDefault(config)),
    Layer.provideMerge(FetchHttpClient.layer)
  )
  const runtime = ManagedRuntime.make(ApiClient)
  // What an Effect program does: ask for an HttpClient, never mention tokens.
  const send = (method, path, { json: body, headers } = {}) =>
    Effect.gen(function* () {
      const client = yield* HttpClient.HttpClient
      const request = HttpClientRequest.make(method)(`${config.baseUrl}${path}`, {
        headers,
        ...(body === undefined ? {} : { body: HttpBody.jsonUnsafe(body) })
      })
      const response = yield* client.execute(request)
      const ok = response.status >= 200 && response.status < 300
      return { status: response.status, body: ok ? yield* response.json : yield* response.text }
    })
  // The service itself, for the demo's own look at the current token (`peek`).
  const tokens = await runtime.runPromise(
    Effect.gen(function* () {
      return yield* TokenSource.TokenSource
    })
  )
  return {
    call: (method, path, options) => runtime.runPromise(send(method, path, options)),
    peek: () => tokens.peek(Date.now()),
    dispose: () => runtime.dispose()
  }
}

/** ky: `ky.create(authKyOptions(tokens, { prefix }))`; retries belong to the core, not to ky. */
export const kyAuthOptions = async ({ config, onRequestEvent }) => {
  const tokens = createTokenSource(config)
  const api = ky.create(authKyOptions(tokens, { prefix: config.baseUrl, auth: { onEvent: onRequestEvent } }))
  return {
    call: async (method, path, { json: body, headers } = {}) => {
      try {
        const response = await api(path, { method, json: body, headers })
        return { status: response.status, body: await json(response) }
      } catch (error) {
        // ky throws for a non-2xx status; `error.problem` is the parsed problem details
        if (isHTTPError(error)) return { status: error.response.status, body: error.problem?.detail }
        throw error
      }
    },
    peek: () => tokens.peek(),
    dispose: () => tokens.dispose()
  }
}

/** axios: `attachAuth(axios.create({ baseURL }), tokens)`. */
export const axiosAttachAuth = async ({ config, onRequestEvent }) => {
  const tokens = createTokenSource(config)
  const api = axios.create({ baseURL: config.baseUrl, timeout: 10_000 })
  const detach = attachAuth(api, tokens, { onEvent: onRequestEvent })
  return {
    call: async (method, path, { json: body, headers } = {}) => {
      try {
        const response = await api.request({ method, url: path, data: body, headers })
        return { status: response.status, body: response.data }
      } catch (error) {
        // axios throws for a non-2xx status; `error.problem` is the parsed problem details
        if (axios.isAxiosError(error) && error.response) {
          return { status: error.response.status, body: error.problem?.detail }
        }
        throw error
      }
    },
    peek: () => tokens.peek(),
    dispose: async () => {
      detach()
      await tokens.dispose()
    }
  }
}

/** A proxy the demo calls over HTTP or in-process: same shape for Express and Next. */
const proxyClient = (tokens, send) => ({
  call: async (method, path, { json: body, headers } = {}) => {
    const text = body === undefined ? undefined : JSON.stringify(body)
    // As a browser sends it: with Content-Length (the proxy buffers small bodies of known
    // size so that a 401 or a 503 can replay them).
    const sized =
      text === undefined
        ? {}
        : { "content-type": "application/json", "content-length": String(Buffer.byteLength(text)) }
    const response = await send(method, path, { method, headers: { ...headers, ...sized }, body: text })
    const ok = response.status >= 200 && response.status < 300
    return { status: response.status, body: ok ? await json(response) : await response.text() }
  },
  peek: () => tokens.peek()
})

/**
 * Express: a backend-for-frontend, `app.use("/benefits", createProxy({ tokens, baseUrl }))`,
 * on 127.0.0.1; the demo plays the browser and calls it over HTTP.
 */
export const expressProxy = async ({ config, onRequestEvent }) => {
  const tokens = createTokenSource(config)
  const app = express()
  app.use("/benefits", createProxy({ tokens, baseUrl: config.baseUrl, onEvent: onRequestEvent }))
  const server = await new Promise((resolve) => {
    const listening = app.listen(0, "127.0.0.1", () => resolve(listening))
  })
  const base = `http://127.0.0.1:${server.address().port}/benefits`
  return {
    ...proxyClient(tokens, (_method, path, init) => fetch(`${base}${path}`, init)),
    dispose: async () => {
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
      await tokens.dispose()
    }
  }
}

/**
 * Next.js: the route module of `app/api/benefits/[...path]/route.ts`
 * (`createProxyRoute`), its handlers called with web Requests as Next calls them
 * (in-process here; examples/next-app runs the same route under `next start`).
 */
export const nextProxyRoute = async ({ config, onRequestEvent }) => {
  const tokens = createTokenSource(config)
  const route = createProxyRoute({
    tokens,
    baseUrl: config.baseUrl,
    prefix: "/api/benefits",
    onEvent: onRequestEvent,
    onError: false
  })
  return {
    ...proxyClient(tokens, (method, path, init) =>
      route[method](new Request(`http://bff.local/api/benefits${path}`, init))
    ),
    dispose: () => tokens.dispose()
  }
}
