/**
 * An Effect program that reads benefits data from a protected API.
 *
 * The program asks for an `HttpClient` and never mentions tokens: the layer
 * `AuthHttpClient.layer` attaches them, refreshes them, recovers from a `401`
 * and retries transient failures, on top of the `TokenSource` service.
 *
 * By default it starts a local OAuth server (panva's oidc-provider) and a
 * protected API in this process. With `WEX_CLIENT_ID`, `WEX_CLIENT_SECRET`
 * (and optionally `WEX_ENVIRONMENT`) set, point `API_BASE_URL` and `TOKEN_URL`
 * at the real provider instead.
 */
import { AuthHttpClient, TokenSource } from "@authfetch/core"
import { startAuthorizationServer, startBenefitsApi } from "@authfetch/demo/servers"
import { Effect, Layer } from "effect"
import { FetchHttpClient, HttpClient } from "effect/http"

const clientId = process.env.WEX_CLIENT_ID ?? "effect-example"
const clientSecret = process.env.WEX_CLIENT_SECRET ?? "effect-example-secret"

const local = process.env.TOKEN_URL === undefined
const auth = local ? await startAuthorizationServer({ clientId, clientSecret }) : undefined
const api = local ? await startBenefitsApi() : undefined
const tokenUrl = process.env.TOKEN_URL ?? auth!.tokenUrl
const apiBaseUrl = process.env.API_BASE_URL ?? api!.url

// The program: five consumers, fetched concurrently, through whatever HttpClient it is given.
const program = Effect.gen(function* () {
  const client = yield* HttpClient.HttpClient
  const consumers = yield* Effect.forEach(
    [1001, 1002, 1003, 1004, 1005],
    (id) =>
      client.get(`${apiBaseUrl}/consumers/${id}`).pipe(
        Effect.flatMap((response) => response.json),
        Effect.map((body) => ({ id, body }))
      ),
    { concurrency: "unbounded" }
  )
  for (const { id, body } of consumers) yield* Effect.log(`consumer ${id}: ${JSON.stringify(body)}`)
  return consumers.length
})

// The wiring: tokens from the token endpoint, the policy over fetch.
const Tokens = TokenSource.layerDefault({ tokenUrl, clientId, clientSecret })
const ApiClient = AuthHttpClient.layer({ origins: [apiBaseUrl] }).pipe(
  Layer.provide(Tokens),
  Layer.provideMerge(FetchHttpClient.layer)
)

const count = await Effect.runPromise(program.pipe(Effect.provide(ApiClient)))
console.log(`read ${count} consumers through AuthHttpClient`)
await Promise.all([auth?.close(), api?.close()])
if (count !== 5) process.exit(1)
