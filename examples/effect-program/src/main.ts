/**
 * An Effect program against the WEX Health Benefits Platform API.
 *
 * The program asks for an `HttpClient` and never mentions tokens: the layer
 * `AuthHttpClient.layer` attaches them, refreshes them ahead of expiry,
 * recovers from a `401` once and retries `429`/`503`, on top of the
 * `TokenSource` service. Three calls: a consumer, the consumer's accounts
 * (every page, following `Link: <...>; rel="next"`), and a claim POSTed with
 * an `Idempotency-Key`.
 *
 * Where it calls:
 * - by default, `@authfetch/sandbox` (WEX profile), started in this process;
 * - with `WEX_CLIENT_ID` and `WEX_CLIENT_SECRET` set (and optionally
 *   `WEX_ENVIRONMENT`, `WEX_TOKEN_URL`, `WEX_BASE_URL`), the real provider,
 *   configured by `fromEnv("WEX")`. The claim is then only sent with
 *   `--submit-claim`: it would be a real one. `WEX_CONSUMER_ID` picks the
 *   consumer (default 12345, the id of WEX's documentation);
 * - `--sandbox` forces the sandbox (the `test` script), and checks the results.
 *
 * Run: npx -y pnpm@12 --filter @authfetch/example-effect-program start
 */
import assert from "node:assert/strict"
import { randomUUID } from "node:crypto"
import { AuthHttpClient, type TokenEvent, TokenSource } from "@authfetch/core"
import { fromEnv } from "@authfetch/core/providers"
import { DEFAULT_CLIENT, startSandbox } from "@authfetch/sandbox"
import { Effect, Layer } from "effect"
import { FetchHttpClient, HttpClient, HttpClientRequest, HttpClientResponse } from "effect/http"

const useSandbox =
  process.argv.includes("--sandbox") || (!process.env.WEX_CLIENT_ID && !process.env.WEX_CLIENT_SECRET)
// To show the policy at work, the sandbox throttles the first API request (429, Retry-After: 1).
const sandbox = useSandbox
  ? await startSandbox({
      profile: "wex",
      faults: { api: { rateLimit429: { count: 1, retryAfterSeconds: 1 } } }
    })
  : undefined

const logTokenEvent = (event: TokenEvent) => {
  // events carry token ids, codes and durations: never a token or a secret
  if (event.type === "token_acquired") {
    console.log(
      `token #${event.tokenId} acquired in ${event.durationMillis} ms, valid ${event.expiresInSeconds} s`
    )
  } else if (event.type === "token_request_failed") {
    console.log(`token request failed: ${event.code ?? event.error} (HTTP ${event.status ?? "-"})`)
  }
}

// The configuration: from WEX_* variables, or the same variables pointing at the sandbox.
const config = fromEnv("WEX", {
  env: sandbox
    ? {
        WEX_CLIENT_ID: DEFAULT_CLIENT.clientId,
        WEX_CLIENT_SECRET: DEFAULT_CLIENT.clientSecret,
        WEX_TOKEN_URL: sandbox.tokenUrl,
        WEX_BASE_URL: sandbox.baseUrl
      }
    : process.env,
  overrides: { onEvent: logTokenEvent }
})
const baseUrl = config.baseUrl! // the WEX preset always has one
const consumerId = process.env.WEX_CONSUMER_ID?.trim() || "12345"
const submitClaim = sandbox !== undefined || process.argv.includes("--submit-claim")

interface Account {
  readonly accountId?: string
  readonly accountType?: string
  readonly balance?: number
  readonly currency?: string
}

/** The `rel="next"` target of an RFC 8288 `Link` header, if any. */
const nextLink = (header: string | undefined): string | undefined =>
  header
    ?.split(",")
    .map((part) => /^\s*<([^>]*)>(.*)$/.exec(part))
    .find((match) => match !== null && /;\s*rel="?([^"]*\s)?next(\s[^"]*)?"?/i.test(match[2]!))?.[1]

/** A 2xx response's JSON body; any other status fails (an `HttpClientError`). */
const okJson = (response: HttpClientResponse.HttpClientResponse) =>
  HttpClientResponse.filterStatusOk(response).pipe(Effect.flatMap((ok) => ok.json))

// ---------------------------------------------------------------------------
// The program: plain Effect code over HttpClient.HttpClient

const program = Effect.gen(function* () {
  const client = yield* HttpClient.HttpClient
  const base = `${baseUrl}/v1/consumers/${encodeURIComponent(consumerId)}`

  // 1. a consumer
  const consumer = (yield* okJson(yield* client.get(base))) as Record<string, any>
  yield* Effect.log(
    `consumer ${consumer.consumerId}: ${consumer.firstName} ${consumer.lastName}, plan ${consumer.plan?.name}`
  )

  // 2. the consumer's accounts, page after page, as long as the server says rel="next"
  const accounts: Array<Account> = []
  let url: string | undefined = `${base}/accounts?pageSize=5`
  let pages = 0
  let total: number | undefined
  while (url !== undefined && pages < 50) {
    const response: HttpClientResponse.HttpClientResponse = yield* client.get(url)
    const page = (yield* okJson(response)) as { items?: Array<Account>; total?: number }
    accounts.push(...(page.items ?? []))
    total ??= page.total
    pages++
    url = nextLink(response.headers.link)
  }
  yield* Effect.log(`accounts: ${accounts.length} in ${pages} pages (followed Link rel="next")`)

  // 3. a claim, with an Idempotency-Key: safe to retry after a 503 or a dropped connection
  let claimId: string | undefined
  if (submitClaim) {
    const idempotencyKey = randomUUID()
    const request = HttpClientRequest.post(`${baseUrl}/v1/claims`).pipe(
      HttpClientRequest.setHeader("idempotency-key", idempotencyKey),
      HttpClientRequest.bodyJsonUnsafe({
        consumerId,
        accountType: "HSA",
        amount: 42.5,
        serviceDate: "2026-01-15",
        description: "Effect example"
      })
    )
    const claim = (yield* okJson(yield* client.execute(request))) as Record<string, any>
    claimId = claim.claimId
    yield* Effect.log(`claim ${claim.claimId}: ${claim.status} (Idempotency-Key ${idempotencyKey})`)
  } else {
    yield* Effect.log("claim: not sent to the real provider (pass --submit-claim to send one)")
  }
  return { consumerId: consumer.consumerId as unknown, accounts: accounts.length, total, pages, claimId }
})

// ---------------------------------------------------------------------------
// The wiring: tokens from the token endpoint, the policy over fetch

const ApiClient = AuthHttpClient.layer({
  origins: [baseUrl], // the token goes to this origin only, redirects included
  onEvent: (event) => {
    if (event.type === "request_retried") {
      const why = event.status ?? event.error
      console.log(`${event.method} ${event.url} → ${why}: retry ${event.attempt} in ${event.delayMillis} ms`)
    }
  }
}).pipe(Layer.provide(TokenSource.layerDefault(config)), Layer.provideMerge(FetchHttpClient.layer))

try {
  console.log(
    sandbox
      ? `calling the sandbox at ${sandbox.url} (set WEX_CLIENT_ID and WEX_CLIENT_SECRET to call WEX instead)`
      : `calling ${baseUrl} as client ${config.clientId}`
  )
  const result = await Effect.runPromise(program.pipe(Effect.provide(ApiClient)))
  if (sandbox) {
    // `npm test`: the sandbox's answers are known, so check them
    assert.equal(result.consumerId, consumerId)
    assert.ok(result.pages > 1, "the accounts span several pages")
    assert.equal(result.accounts, result.total, "every account of every page")
    assert.match(result.claimId ?? "", /^CLM-/)
    const stats = sandbox.stats()
    assert.equal(stats.tokenRequests.total, 1, "one token for every call")
    assert.equal(stats.apiRequests.byStatus["429"], 1, "the throttled request was retried")
    assert.equal(stats.claims.created, 1)
    console.log(
      `checked: ${stats.apiRequests.total} API requests (one 429 retried), ${stats.tokenRequests.total} token request, 1 claim`
    )
  }
} finally {
  await sandbox?.close()
}
