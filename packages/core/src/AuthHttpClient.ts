/**
 * The request policy of `authFetch` as an `effect/http` HttpClient, for Effect
 * programs. It is not a second implementation: each request is taken apart
 * into the same `Outgoing` and answered by the same steps (`pipeline` in
 * `Middleware.ts`), run in the caller's fiber, so interruption aborts the
 * request at once and retries wait on the program's `Clock` (`TestClock` in
 * tests). The transport is `FetchHttpClient.Fetch` (provide it to swap fetch).
 *
 * Failures arrive as `HttpClientError` with a `TransportError` reason whose
 * `cause` is ours: an `OAuthError` from the token endpoint, a
 * `RetriesExhaustedError`, a `RequestTimeoutError`, or what fetch threw.
 *
 * @example
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { HttpClient } from "effect/http"
 * import { AuthHttpClient, TokenSource } from "@authfetch/core"
 *
 * const program = Effect.gen(function* () {
 *   const client = yield* HttpClient.HttpClient
 *   const response = yield* client.get("https://platform.uat.benefits.wexglobal.com/api/v1/consumers/12345")
 *   return yield* response.json
 * })
 *
 * const ApiClient = AuthHttpClient.layer({ origins: ["https://platform.uat.benefits.wexglobal.com"] }).pipe(
 *   Layer.provide(TokenSource.layerDefault(config))
 * )
 * Effect.runPromise(program.pipe(Effect.provide(ApiClient)))
 * ```
 *
 * @since 0.1.0
 */
import { Effect, Layer, Stream } from "effect"
import {
  FetchHttpClient,
  HttpClient,
  HttpClientError,
  type HttpClientRequest,
  HttpClientResponse
} from "effect/http"
import { type Fetch, fromParts, SendError, wireOf } from "./internal/outgoing.ts"
import type { FetchBody } from "./internal/webTypes.ts"
import { type AuthFetchOptions, pipeline, type Tokens } from "./Middleware.ts"
import { TokenSource } from "./TokenSource.ts"

/**
 * @since 0.1.0
 */
export interface Options extends Omit<AuthFetchOptions, "fetch" | "problemDetails" | "baseUrl"> {
  /** origins allowed a token (required: the token goes nowhere else) */
  readonly origins: ReadonlyArray<string | URL>
}

const bodyOf = (request: HttpClientRequest.HttpClientRequest): FetchBody | null => {
  const body = request.body
  switch (body._tag) {
    case "Empty":
      return null
    case "Uint8Array":
      return body.body as Uint8Array<ArrayBuffer>
    case "Raw":
      return body.body as FetchBody
    case "FormData":
      return body.formData
    case "Stream":
      return Stream.toReadableStream(body.stream)
    default:
      return null
  }
}

/**
 * An HttpClient that applies the policy over `FetchHttpClient.Fetch`.
 *
 * @example
 * ```ts
 * const client = AuthHttpClient.make(tokens, { origins: ["https://api.example.com"] })
 * ```
 *
 * @since 0.1.0
 */
export const make = (tokens: Tokens, options: Options): HttpClient.HttpClient => {
  const build = pipeline(tokens, options)
  return HttpClient.make((request, url, signal, fiber) => {
    const handler = build(wireOf(fiber.getRef(FetchHttpClient.Fetch) as Fetch))
    const outgoing = fromParts({
      url,
      method: request.method,
      headers: new Headers(request.headers as Record<string, string>),
      body: bodyOf(request),
      signal
    })
    return handler(outgoing).pipe(
      Effect.map((response) => HttpClientResponse.fromWeb(request, response)),
      Effect.mapError(
        (error) =>
          new HttpClientError.HttpClientError({
            reason: new HttpClientError.TransportError(
              error instanceof SendError
                ? { request, cause: error.cause }
                : { request, cause: error, description: (error as Error).message }
            )
          })
      )
    )
  })
}

/**
 * The HttpClient service over the `TokenSource` service.
 *
 * @example
 * ```ts
 * const ApiClient = AuthHttpClient.layer({ origins: [baseUrl] }).pipe(Layer.provide(TokenSource.layerDefault(config)))
 * ```
 *
 * @since 0.1.0
 */
export const layer = (options: Options): Layer.Layer<HttpClient.HttpClient, never, TokenSource> =>
  Layer.effect(
    HttpClient.HttpClient,
    Effect.map(TokenSource, (tokens) => make(tokens, options))
  )
