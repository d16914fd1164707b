/**
 * An axios script against the WEX Health Benefits Platform API, through `@authfetch/axios`.
 *
 * Three calls: a consumer, the consumer's accounts (every page, following
 * `Link: <...>; rel="next"`), and a claim POSTed with an `Idempotency-Key`.
 * The bearer token, its refresh, a `401` replay and retries of `429`/`503` are
 * `attachAuth`'s business; the script only asks axios for data.
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
 * Run: npx -y pnpm@12 --filter @authfetch/example-axios-script start
 */
import assert from "node:assert/strict"
import { randomUUID } from "node:crypto"
import { attachAuth } from "@authfetch/axios"
import { createTokenSource, type RequestEvent, type TokenEvent } from "@authfetch/core"
import { fromEnv } from "@authfetch/core/providers"
import { DEFAULT_CLIENT, startSandbox } from "@authfetch/sandbox"
import axios from "axios"

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
console.log(
  sandbox
    ? `calling the sandbox at ${sandbox.url} (set WEX_CLIENT_ID and WEX_CLIENT_SECRET to call WEX instead)`
    : `calling ${baseUrl} as client ${config.clientId}`
)

const tokens = createTokenSource(config)
const api = axios.create({ baseURL: baseUrl, timeout: 30_000 })
// The token goes to the origin of `baseURL` only, redirects included. Keep `detach` to undo.
const detach = attachAuth(api, tokens, {
  onEvent: (event: RequestEvent) => {
    if (event.type === "request_retried") {
      const why = event.status ?? event.error
      console.log(`${event.method} ${event.url} → ${why}: retry ${event.attempt} in ${event.delayMillis} ms`)
    }
  }
})

/** The `rel="next"` target of an RFC 8288 `Link` header, if any. */
const nextLink = (header: string | null): string | undefined =>
  header
    ?.split(",")
    .map((part) => /^\s*<([^>]*)>(.*)$/.exec(part))
    .find((match) => match !== null && /;\s*rel="?([^"]*\s)?next(\s[^"]*)?"?/i.test(match[2]!))?.[1]

interface Consumer {
  readonly consumerId?: string
  readonly firstName?: string
  readonly lastName?: string
  readonly status?: string
  readonly plan?: { readonly name?: string }
}
interface Page<A> {
  readonly items?: ReadonlyArray<A>
  readonly total?: number
}
interface Account {
  readonly accountId?: string
  readonly accountType?: string
  readonly balance?: number
  readonly currency?: string
}

try {
  const consumerId = process.env.WEX_CONSUMER_ID?.trim() || "12345"

  // 1. a consumer
  const { data: consumer } = await api.get<Consumer>(`/v1/consumers/${encodeURIComponent(consumerId)}`)
  console.log(
    `consumer ${consumer.consumerId}: ${consumer.firstName} ${consumer.lastName}, ${consumer.status}, plan ${consumer.plan?.name}`
  )

  // 2. the consumer's accounts, page after page, as long as the server says rel="next"
  const accounts: Array<Account> = []
  let url: string | undefined = `/v1/consumers/${encodeURIComponent(consumerId)}/accounts?pageSize=5`
  let pages = 0
  let total: number | undefined
  while (url !== undefined && pages < 50) {
    const { data: page, headers } = await api.get<Page<Account>>(url) // an absolute next URL is used as it is
    accounts.push(...(page.items ?? []))
    total ??= page.total
    pages++
    url = nextLink(typeof headers.link === "string" ? headers.link : null)
  }
  console.log(`accounts: ${accounts.length} in ${pages} pages (followed Link rel="next")`)
  for (const account of accounts.slice(0, 3)) {
    console.log(`  ${account.accountId}  ${account.accountType}  ${account.balance} ${account.currency}`)
  }
  if (accounts.length > 3) console.log(`  ... and ${accounts.length - 3} more`)

  // 3. a claim, with an Idempotency-Key: safe to retry after a 503 or a dropped connection
  let claimId: string | undefined
  if (sandbox || process.argv.includes("--submit-claim")) {
    const idempotencyKey = randomUUID()
    const { data: claim } = await api.post<{ claimId?: string; status?: string; amount?: number }>(
      "/v1/claims",
      {
        consumerId,
        accountType: "HSA",
        amount: 42.5,
        serviceDate: "2026-01-15",
        description: "axios example"
      },
      { headers: { "idempotency-key": idempotencyKey } }
    )
    claimId = claim.claimId
    console.log(
      `claim ${claim.claimId}: ${claim.status}, amount ${claim.amount} (Idempotency-Key ${idempotencyKey})`
    )
  } else {
    console.log("claim: not sent to the real provider (pass --submit-claim to send one)")
  }

  if (sandbox) {
    // `npm test`: the sandbox's answers are known, so check them
    assert.equal(consumer.consumerId, consumerId)
    assert.ok(pages > 1, "the accounts span several pages")
    assert.equal(accounts.length, total, "every account of every page")
    assert.match(claimId ?? "", /^CLM-/)
    const stats = sandbox.stats()
    assert.equal(stats.tokenRequests.total, 1, "one token for every call")
    assert.equal(stats.apiRequests.byStatus["429"], 1, "the throttled request was retried")
    assert.equal(stats.claims.created, 1)
    console.log(
      `checked: ${stats.apiRequests.total} API requests (one 429 retried), ${stats.tokenRequests.total} token request, 1 claim`
    )
  }
} finally {
  detach()
  await tokens.dispose()
  await sandbox?.close()
}
