/**
 * The shared request scenarios, run against core `authFetch` and
 * `AuthHttpClient` (the ky and axios adapters run the same table).
 */
import { Effect, Layer, Stream } from "effect"
import { FetchHttpClient, HttpClient, HttpClientRequest } from "effect/http"
import { afterEach, describe, it } from "vitest"
import { AuthHttpClient, authFetch } from "../src/index.ts"
import { makeWorld, type ScenarioClient, scenarios, type World } from "./scenarios/scenarios.ts"

const fast = { baseDelay: "20 millis", maxDelay: "100 millis" } as const

export const coreAuthFetch: ScenarioClient = {
  name: "authFetch",
  streams: true,
  make: (tokens, baseUrl, { onEvent }) => {
    const api = authFetch(tokens, { baseUrl, retry: fast, onEvent })
    return async (path, options) => {
      const response = await api(path, {
        method: options?.method,
        body: options?.body,
        headers: options?.headers,
        signal: options?.signal,
        ...(options?.body instanceof ReadableStream ? { duplex: "half" } : {})
      } as RequestInit)
      return { status: response.status, body: await response.text() }
    }
  }
}

export const effectHttpClient: ScenarioClient = {
  name: "AuthHttpClient",
  streams: true,
  make: (tokens, baseUrl, { onEvent }) => {
    const layer = Layer.succeed(
      HttpClient.HttpClient,
      AuthHttpClient.make(tokens, { origins: [baseUrl], retry: fast, onEvent })
    ).pipe(Layer.provideMerge(FetchHttpClient.layer))
    return (path, options) => {
      let request = HttpClientRequest.make((options?.method ?? "GET") as "GET")(`${baseUrl}${path}`)
      if (options?.headers) request = HttpClientRequest.setHeaders(request, options.headers)
      const body = options?.body
      if (typeof body === "string")
        request = HttpClientRequest.bodyText(request, body, options?.headers?.["content-type"])
      else if (body instanceof ReadableStream) {
        request = HttpClientRequest.bodyStream(
          request,
          Stream.fromReadableStream({ evaluate: () => body, onError: (e) => e })
        )
      }
      const program = Effect.gen(function* () {
        const client = yield* HttpClient.HttpClient
        const response = yield* client.execute(request)
        return { status: response.status, body: yield* response.text }
      }).pipe(Effect.provide(layer))
      return Effect.runPromise(program, options?.signal ? { signal: options.signal } : undefined).catch(
        (error) => {
          if (options?.signal?.aborted) throw options.signal.reason
          throw error
        }
      )
    }
  }
}

for (const client of [coreAuthFetch, effectHttpClient]) {
  describe(`scenarios: ${client.name}`, () => {
    let world: World | undefined
    afterEach(async () => {
      await world?.close()
      world = undefined
    })
    for (const scenario of scenarios) {
      if (scenario.needsStreams && !client.streams) continue
      it(scenario.name, async () => {
        world = await makeWorld(client)
        await scenario.run(world, client)
      })
    }
  })
}
