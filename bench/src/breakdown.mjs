/**
 * Where the hot path of `authFetch` spends its time: the same cached-token
 * GET through variants that switch one policy step off at a time, against
 * raw fetch, alternating in rounds (client CPU per request is the figure to
 * read; requests/s moves with the machine's load).
 *
 *   node src/breakdown.mjs [rounds]
 *
 * `prototype fast path` is NOT shipped code: it is a sketch of the change the
 * README proposes for the core (first attempt in plain Promise code when
 * `peek()` has a fresh token, the Effect pipeline only for 401s, redirects,
 * retryable statuses and failures), here to show what it would save.
 */
import { authFetch, createTokenSource } from "@authfetch/core"
import { Agent, setGlobalDispatcher } from "undici"
import { closedLoop, roundOrder, startChild, summarize } from "./lib.mjs"

setGlobalDispatcher(new Agent({ connections: 64 }))
const rounds = Number(process.argv[2] ?? 7)
const server = await startChild("./server.mjs")
const base = `${server.url}/api`
const path = "/v1/consumers/12345"
const tokens = createTokenSource({
  tokenUrl: `${server.url}/token`,
  clientId: "breakdown",
  clientSecret: "bench-secret"
})
const token = await tokens.getToken()
const headers = { authorization: token.authorization() }
const read = async (res) => {
  await res.json()
  return { status: res.status }
}
const core = (options) => {
  const api = authFetch(tokens, { baseUrl: base, ...options })
  return () => api(path).then(read)
}
const prototypeFastPath = () => {
  const full = authFetch(tokens, { baseUrl: base })
  return async () => {
    const fresh = tokens.peek()
    if (fresh === undefined) return full(path).then(read)
    const h = new Headers()
    h.set("authorization", fresh.authorization())
    const controller = new AbortController()
    const timer = setTimeout(() => controller.abort(), 30_000)
    try {
      const res = await fetch(new URL(base + path).href, {
        headers: h,
        redirect: "manual",
        signal: controller.signal
      })
      const s = res.status
      // Anything the policy must judge goes to the full pipeline (a real change would hand it the first attempt).
      if (s === 401 || s === 429 || (s >= 300 && s < 400) || s >= 502) return full(path).then(read)
      return read(res)
    } finally {
      clearTimeout(timer)
    }
  }
}
const variants = {
  "raw fetch": () => fetch(base + path, { headers }).then(read),
  "raw fetch + AbortController + 30 s timer": () => {
    const controller = new AbortController()
    const timer = setTimeout(() => controller.abort(), 30_000)
    return fetch(base + path, { headers, signal: controller.signal })
      .then(read)
      .finally(() => clearTimeout(timer))
  },
  "authFetch, retry and timeout off": core({ retry: false, timeout: false }),
  "authFetch, timeout off": core({ timeout: false }),
  "authFetch, retry off": core({ retry: false }),
  "authFetch (defaults)": core({}),
  "prototype fast path (not shipped)": prototypeFastPath()
}
const names = Object.keys(variants)
const results = Object.fromEntries(names.map((n) => [n, []]))
for (let r = 0; r <= rounds; r++) {
  for (const name of roundOrder(names, r)) {
    const x = await closedLoop(variants[name], 32, 1000)
    if (r > 0) results[name].push(x)
  }
}
console.log(`| variant | client CPU µs/req | CPU ÷ raw fetch | req/s |\n| --- | --- | --- | --- |`)
for (const name of names) {
  const cpu = summarize(results[name].map((x) => x.cpuPerRequest))
  const ratio = summarize(
    results[name].map((x, i) => x.cpuPerRequest / results["raw fetch"][i].cpuPerRequest)
  )
  const rps = summarize(results[name].map((x) => x.rps))
  console.log(
    `| ${name} | ${cpu.value.toFixed(0)} (${cpu.min.toFixed(0)}–${cpu.max.toFixed(0)}) | ${ratio.value.toFixed(2)} (${ratio.min.toFixed(2)}–${ratio.max.toFixed(2)}) | ${rps.value.toFixed(0)} |`
  )
}
await tokens.dispose()
await server.close()
process.exit()
