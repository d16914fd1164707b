/**
 * Where the hot path of `authFetch` spends its time: the same cached-token
 * GET through variants that switch one policy step off at a time, against
 * raw fetch, alternating in rounds (client CPU per request is the figure to
 * read; requests/s moves with the machine's load).
 *
 *   node src/breakdown.mjs [rounds]
 *
 * A second table takes the network out: the same calls over a `fetch` that
 * answers at once, so what is left is our own code per call (nanoseconds).
 * A third does the same for each integration, step by step, against the same
 * integration without us: ky and its hooks, axios and its adapter, the proxy
 * handler of core and Next's route around it (Express's own translation of
 * req/res is what case 6 shows beyond the handler's figure).
 *
 *   node --conditions=react-server src/breakdown.mjs   (the package script)
 */
import { attachAuth } from "@authfetch/axios"
import { authFetch, BffProxy, createTokenSource } from "@authfetch/core"
import { authKyOptions } from "@authfetch/ky"
import { createProxyRoute } from "@authfetch/next"
import axios from "axios"
import ky from "ky"
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
const variants = {
  "raw fetch": () => fetch(base + path, { headers }).then(read),
  "raw fetch + AbortController + 30 s timer": () => {
    const controller = new AbortController()
    const timer = setTimeout(() => controller.abort(), 30_000)
    return fetch(base + path, { headers, signal: controller.signal })
      .then(read)
      .finally(() => clearTimeout(timer))
  },
  "authFetch, retry and timeout off": core({ retry: false, attemptTimeout: false }),
  "authFetch, timeout off": core({ attemptTimeout: false }),
  "authFetch, retry off": core({ retry: false }),
  "authFetch (defaults)": core({})
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
// Our code alone: a fetch that answers at once, 200,000 calls a variant (100 in flight).
const answered = new Response(null, { status: 200 })
const instant = () => Promise.resolve(answered)
const own = {
  "a hand-written call: peek + header + fetch": () =>
    instant(base + path, { headers: { authorization: tokens.peek().authorization() } }),
  "authFetch, retry and timeout off": authFetch(tokens, {
    baseUrl: base,
    fetch: instant,
    retry: false,
    attemptTimeout: false
  }),
  "authFetch (defaults)": authFetch(tokens, { baseUrl: base, fetch: instant })
}
const ownRounds = 3
const ownResults = Object.fromEntries(Object.keys(own).map((n) => [n, []]))
for (let r = 0; r <= ownRounds; r++) {
  for (const [name, f] of Object.entries(own)) {
    const calls = 200_000
    const started = process.hrtime.bigint()
    for (let i = 0; i < calls; i += 100) await Promise.all(Array.from({ length: 100 }, () => f(path)))
    if (r > 0) ownResults[name].push(Number(process.hrtime.bigint() - started) / calls)
  }
}
// What a signal costs inside Node's fetch: it builds a Request from (url, init) on every call,
// and a Request given a signal links it to its own controller (listener, WeakRef,
// FinalizationRegistry). Every per-attempt timeout pays this; raw fetch without one does not.
const url = base + path
const plain = { headers: { authorization: "Bearer x" } }
const request = {
  "Node's fetch: new Request(url, init), no signal": () => new Request(url, plain),
  "Node's fetch: new Request(url, init), with an AbortSignal": () =>
    new Request(url, { ...plain, signal: new AbortController().signal })
}
for (const [name, f] of Object.entries(request)) {
  const values = []
  for (let r = 0; r <= ownRounds; r++) {
    const calls = 100_000
    const started = process.hrtime.bigint()
    for (let i = 0; i < calls; i++) f()
    if (r > 0) values.push(Number(process.hrtime.bigint() - started) / calls)
  }
  ownResults[name] = values
}
console.log(`\n| our code alone (fetch answers at once) | ns per call |\n| --- | --- |`)
for (const [name, values] of Object.entries(ownResults)) {
  const ns = summarize(values)
  console.log(`| ${name} | ${ns.value.toFixed(0)} (${ns.min.toFixed(0)}–${ns.max.toFixed(0)}) |`)
}

// Each integration step by step, every transport answering at once: what is left is the
// integration's own code, and ours beside it. Each answer is made fresh (a body reads once).
const json = JSON.stringify({ id: "12345", name: "Ada Lovelace", plan: "HSA", balance: 1234.56 })
const answer = () =>
  new Response(json, {
    status: 200,
    headers: { "content-type": "application/json", "content-length": String(Buffer.byteLength(json)) }
  })
const instantFetch = async () => answer()
const axiosAnswer = (config) =>
  Promise.resolve({
    data: json,
    status: 200,
    statusText: "OK",
    headers: { "content-type": "application/json" },
    config,
    request: {}
  })
const rawKy = ky.create({ prefix: base, fetch: instantFetch, headers: headers, throwHttpErrors: false })
const ourKy = ky.create(authKyOptions(tokens, { prefix: base, fetch: instantFetch, throwHttpErrors: false }))
const rawAxios = axios.create({ baseURL: base, adapter: axiosAnswer, headers })
const ourAxios = axios.create({ baseURL: base, adapter: axiosAnswer, timeout: 30_000 })
attachAuth(ourAxios, tokens)
const handler = BffProxy.createProxyHandler({ tokens, baseUrl: base, fetch: instantFetch })
const route = createProxyRoute({ tokens, baseUrl: base, prefix: "/bff", fetch: instantFetch })
const incoming = () => new Request(`http://bff.local/bff${path}`, { headers: { accept: "application/json" } })
/** the hand-written proxy of case 6, as a route: the target, the token by hand, the answer handed back */
const handWritten = (request) => {
  const target = request.url.slice(request.url.indexOf("/bff/") + 4)
  return instantFetch(base + target, {
    headers: { accept: request.headers.get("accept") ?? "*/*", ...headers }
  })
}
const drained = (promise) => promise.then((res) => res.arrayBuffer())
const steps = [
  ["ky", "ky alone, token set by hand", () => drained(rawKy.get(path.slice(1)))],
  ["ky", "ky + @authfetch/ky (hooks, fresh token)", () => drained(ourKy.get(path.slice(1)))],
  ["axios", "axios alone, token set by hand", () => rawAxios.get(path)],
  ["axios", "axios + @authfetch/axios (hot path)", () => ourAxios.get(path)],
  ["proxy", "hand-written route (static token)", () => drained(handWritten(incoming()))],
  ["proxy", "core BffProxy handler (checks, token, redaction)", () => drained(handler(incoming(), path))],
  ["proxy", "@authfetch/next createProxyRoute GET (handler + route)", () => drained(route.GET(incoming()))]
]
const stepResults = new Map(steps.map(([, name]) => [name, []]))
for (let r = 0; r <= ownRounds; r++) {
  for (const [, name, f] of steps) {
    const calls = 50_000
    const started = process.hrtime.bigint()
    for (let i = 0; i < calls; i += 100) await Promise.all(Array.from({ length: 100 }, f))
    if (r > 0) stepResults.get(name).push(Number(process.hrtime.bigint() - started) / calls)
  }
}
console.log(
  `\n| integration step (every transport answers at once) | ns per call | ours beyond the integration alone |\n| --- | --- | --- |`
)
let first
for (const [group, name] of steps) {
  const ns = summarize(stepResults.get(name))
  const isFirst = first?.group !== group
  if (isFirst) first = { group, ns: ns.value }
  const beyond = isFirst ? "(reference)" : `+${(ns.value - first.ns).toFixed(0)} ns`
  console.log(
    `| ${group}: ${name} | ${ns.value.toFixed(0)} (${ns.min.toFixed(0)}–${ns.max.toFixed(0)}) | ${beyond} |`
  )
}
await tokens.dispose()
await server.close()
process.exit()
