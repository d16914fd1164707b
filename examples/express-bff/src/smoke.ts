/**
 * The example's test: starts the BFF with the sandbox in this process and
 * exercises it over real HTTP, the way a browser would. Exits non-zero if any
 * check fails.
 *
 *   node src/smoke.ts
 */
import { createHash } from "node:crypto"
import { type IncomingHttpHeaders, request } from "node:http"
import { checks } from "./checks.ts"
import { start } from "./server.ts"

const MiB = 1024 * 1024
// Tokens in memory whatever the environment says (src/fleet.ts runs the server on Redis).
delete process.env.REDIS_URL
const errors: Array<unknown> = []
const started = await start({ sandbox: true, onError: (error) => errors.push(error) })
const { port } = new URL(started.url)
const sandbox = started.sandbox!

interface Reply {
  readonly status: number
  readonly headers: IncomingHttpHeaders
  readonly text: string
  json(): any
}

/** One request, the path sent exactly as written (no client-side normalisation). */
const call = (
  path: string,
  init: { method?: string; headers?: Record<string, string>; body?: string | Iterable<Uint8Array> } = {}
): Promise<Reply> =>
  new Promise((resolve, reject) => {
    const req = request(
      { host: "127.0.0.1", port, path, method: init.method ?? "GET", headers: init.headers },
      (res) => {
        const chunks: Array<Buffer> = []
        res.on("data", (chunk: Buffer) => chunks.push(chunk))
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8")
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: () => JSON.parse(text) })
        })
      }
    )
    req.on("error", reject)
    if (typeof init.body === "string" || init.body === undefined) {
      req.end(init.body)
    } else {
      const chunks = init.body[Symbol.iterator]()
      const pump = () => {
        for (let next = chunks.next(); !next.done; next = chunks.next()) {
          if (!req.write(next.value)) return void req.once("drain", pump)
        }
        req.end()
      }
      pump()
    }
  })

function* bytes(total: number): Generator<Uint8Array> {
  for (let sent = 0, n = 0; sent < total; n++) {
    const chunk = new Uint8Array(Math.min(64 * 1024, total - sent)).fill(n & 0xff)
    sent += chunk.byteLength
    yield chunk
  }
}

const { check, expect, counts, exitCode } = checks()
const expectProblem = (reply: Reply, status: number) => {
  expect(reply.status === status, `status ${reply.status}, expected ${status}`)
  expect(
    reply.headers["content-type"] === "application/problem+json",
    `content-type ${reply.headers["content-type"]}`
  )
  const body = reply.json()
  expect(body.status === status && typeof body.title === "string", `problem body ${reply.text}`)
  expect(!/Bearer|127\.0\.0\.1|\bat .*\.[jt]s/.test(reply.text), `internals in ${reply.text}`)
}

console.log(`express-bff on ${started.url}, sandbox at ${sandbox.url}`)

await check("GET /api/summary/12345 aggregates a consumer and all its accounts (req.authFetch)", async () => {
  const reply = await call("/api/summary/12345")
  expect(reply.status === 200, `status ${reply.status}: ${reply.text}`)
  const summary = reply.json()
  expect(summary.consumerId === "12345" && summary.name.includes(" "), JSON.stringify(summary))
  expect(summary.accounts.total >= 5 && summary.accounts.active >= 1, JSON.stringify(summary.accounts))
})

await check(
  "GET /api/benefits/v1/consumers/12345 goes through the proxy, no upstream credentials back",
  async () => {
    const reply = await call("/api/benefits/v1/consumers/12345", { headers: { accept: "application/json" } })
    expect(reply.status === 200, `status ${reply.status}`)
    expect(reply.json().consumerId === "12345", reply.text)
    expect(
      reply.headers["www-authenticate"] === undefined && reply.headers["set-cookie"] === undefined,
      "headers"
    )
  }
)

await check("the query string passes as is (pagination)", async () => {
  const reply = await call("/api/benefits/v1/claims?page=2&pageSize=5")
  expect(reply.status === 200, `status ${reply.status}`)
  const page = reply.json()
  expect(page.page === 2 && page.items.length === 5, reply.text)
})

await check("POST /api/benefits/v1/claims with an Idempotency-Key creates one claim", async () => {
  const init = {
    method: "POST",
    headers: { "content-type": "application/json", "idempotency-key": "smoke-claim-1" },
    body: JSON.stringify({ consumerId: "12345", accountType: "HSA", amount: 42.5 })
  }
  const first = await call("/api/benefits/v1/claims", init)
  const again = await call("/api/benefits/v1/claims", init)
  expect(first.status === 201 && again.status === 201, `statuses ${first.status} ${again.status}`)
  expect(first.json().claimId === again.json().claimId, "same claim for the same key")
  expect(sandbox.stats().claims.created === 1, `claims created ${sandbox.stats().claims.created}`)
})

await check("a 5 MiB document upload streams through, intact", async () => {
  const size = 5 * MiB
  const hash = createHash("sha256")
  for (const chunk of bytes(size)) hash.update(chunk)
  const reply = await call("/api/benefits/v1/documents", {
    method: "POST",
    headers: { "content-type": "application/pdf" },
    body: bytes(size)
  })
  expect(reply.status === 201, `status ${reply.status}: ${reply.text}`)
  const document = reply.json()
  expect(document.bytes === size && document.sha256 === hash.digest("hex"), reply.text)
})

await check("an 11 MiB upload is refused with 413 (maxBodyBytes 10 MiB)", async () => {
  const reply = await call("/api/benefits/v1/documents", {
    method: "POST",
    headers: { "content-type": "application/pdf", "content-length": String(11 * MiB) },
    body: bytes(11 * MiB)
  }).catch((error: Error) => error)
  if (reply instanceof Error) throw reply
  expectProblem(reply, 413)
})

await check("path attacks are refused: ../, %2e%2e, //host, backslash (400)", async () => {
  const before = sandbox.stats().apiRequests.total
  for (const path of [
    "/v1/../../admin",
    "/v1/%2e%2e/admin",
    "//evil.example/x",
    "/v1/%5c..%5cadmin",
    "/v1%2f..%2fadmin"
  ]) {
    expectProblem(await call(`/api/benefits${path}`), 400)
  }
  expect(sandbox.stats().apiRequests.total === before, "nothing reached the sandbox")
})

await check("paths outside the allow-list get 404, TRACE gets 405", async () => {
  expectProblem(await call("/api/benefits/v1/admin/users"), 404)
  expectProblem(await call("/api/benefits/v1/consumers/12345", { method: "TRACE" }), 405)
})

await check(
  "the caller's Authorization and Cookie never reach the provider (our token is used)",
  async () => {
    const reply = await call("/api/benefits/v1/consumers/12345", {
      headers: { authorization: "Bearer stolen-or-forged", cookie: "session=abc" }
    })
    expect(reply.status === 200, `status ${reply.status}`)
  }
)

await check("a malformed consumer id never reaches a URL (400 problem)", async () => {
  expectProblem(await call("/api/summary/..%2f..%2fadmin"), 400)
  expectProblem(await call("/api/summary/a%20b"), 400)
})

await check("revoked tokens are replaced: the calls after revokeAll() succeed", async () => {
  const before = sandbox.stats().tokenRequests.total
  sandbox.revokeAll()
  const replies = await Promise.all([
    call("/api/summary/12345"),
    call("/api/benefits/v1/consumers/777"),
    call("/api/benefits/v1/claims")
  ])
  expect(
    replies.every((r) => r.status === 200),
    `statuses ${replies.map((r) => r.status)}`
  )
  expect(sandbox.stats().tokenRequests.total === before + 1, "one new token for all of them")
})

await check(
  "an upstream outage: the proxy and the summary answer 502 problem+json (never the upstream's page)",
  async () => {
    sandbox.setFaults({ api: { errorRate: 1, errorStatus: 503 } })
    try {
      expectProblem(await call("/api/benefits/v1/consumers/12345"), 502)
      expectProblem(await call("/api/summary/12345"), 502)
    } finally {
      sandbox.setFaults({})
    }
  }
)

await started.close()
console.log(`\nexpress-bff: ${counts.passed} passed, ${counts.failed} failed`)
if (errors.length > 0)
  console.log(`(${errors.length} errors went to onError: the proxy's refusals, the 400 and the 502 checks)`)
process.exit(exitCode())
