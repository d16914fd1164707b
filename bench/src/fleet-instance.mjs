/**
 * One instance of case 7's fleet, in its own process (`fork`): a token source
 * (`createTokenSource`) and `authFetch` against the bench's minimal server,
 * with the in-memory store (the default) or a `@authfetch/redis` store shared
 * with the other instances. Driven over IPC:
 *
 * - `init { tokenUrl, apiBase, redisUrl?, key? }`: the store (Redis when
 *   `redisUrl` is given), once per process;
 * - `source { clientId }`: a new token source and `authFetch` (the previous
 *   source disposed);
 * - `firstToken { clientId }`: the same, then the time from
 *   `createTokenSource` to the first token (`getToken()`), in ms;
 * - `burst { n, at }`: `n` calls at once, started at `at` (epoch ms);
 * - `load { rps, durationMs, at }`: calls at a fixed rate (open loop), with
 *   how many waited on a token request (the token they carried was issued
 *   after they started: `x-token-issued-at`, the monotonic clock every process
 *   of the machine shares);
 * - `hot { concurrency, windowMs, at }`: a closed loop; requests/s and this
 *   process's CPU µs per request;
 * - `warm { ms }`: builds the store (its client starts connecting), then waits;
 * - `ping`: the median PING round trip to Redis from this process;
 * - `events`: the Redis store's events since the last call, by type.
 */
import { authFetch, createTokenSource } from "@authfetch/core"
import { redisStore } from "@authfetch/redis"
import { Agent, setGlobalDispatcher } from "undici"
import { closedLoop, nowNs, SECRET, sleep } from "./lib.mjs"
import { connectRedis } from "./redis-server.mjs"

setGlobalDispatcher(new Agent({ connections: 64, keepAliveTimeout: 60_000, keepAliveMaxTimeout: 120_000 }))

const PATH = "/v1/consumers/12345"
let env
let store
let tokens
let api
let raw
let events = {}

const newSource = async (clientId) => {
  await tokens?.dispose()
  tokens = createTokenSource(
    { tokenUrl: env.tokenUrl, clientId, clientSecret: SECRET },
    store === undefined ? undefined : { store }
  )
  api = authFetch(tokens, { baseUrl: env.apiBase })
}

/** One call: `{ status, issued }`, never a rejection (status 0 for a throw). */
const get = () =>
  api(PATH).then(
    async (res) => {
      const issued = res.headers.get("x-token-issued-at")
      if (res.status === 200) await res.json()
      else await res.arrayBuffer()
      return { status: res.status, issued: issued === null ? undefined : Number(issued) }
    },
    () => ({ status: 0 })
  )

const until = async (at) => {
  const wait = (at ?? 0) - Date.now()
  if (wait > 0) await sleep(wait)
}

const commands = {
  init: async ({ tokenUrl, apiBase, redisUrl, key }) => {
    env = { tokenUrl, apiBase }
    if (redisUrl !== undefined) {
      raw = await connectRedis(Number(new URL(redisUrl).port))
      store = redisStore({
        url: redisUrl,
        encryptionKeys: [key],
        onEvent: (event) => {
          // By type, and for a fallback what failed and how (`store_unavailable get timeout`).
          const name =
            event.type === "store_unavailable"
              ? `${event.type} ${event.operation} ${event.reason}`
              : event.type
          events[name] = (events[name] ?? 0) + 1
        }
      })
    }
    return true
  },
  source: async ({ clientId }) => {
    await newSource(clientId)
    return true
  },
  firstToken: async ({ clientId }) => {
    const t0 = performance.now()
    await newSource(clientId)
    await tokens.getToken()
    return performance.now() - t0
  },
  burst: async ({ n, at }) => {
    await until(at)
    const t0 = performance.now()
    const results = await Promise.all(Array.from({ length: n }, get))
    return { failures: results.filter((r) => r.status !== 200).length, ms: performance.now() - t0 }
  },
  load: async ({ rps, durationMs, at }) => {
    await until(at)
    const interval = 1000 / rps
    const t0 = performance.now()
    const inflight = []
    let waited = 0
    let failures = 0
    for (let tick = 0; ; tick++) {
      const due = t0 + tick * interval
      if (due >= t0 + durationMs) break
      const wait = due - performance.now()
      if (wait > 0) await sleep(wait)
      const started = nowNs()
      inflight.push(
        get().then((answer) => {
          if (answer.status !== 200) failures++
          else if (answer.issued !== undefined && answer.issued > started) waited++
        })
      )
    }
    await Promise.all(inflight)
    return { requests: inflight.length, failures, waited }
  },
  hot: async ({ concurrency, windowMs, at }) => {
    await until(at)
    return closedLoop(get, concurrency, windowMs)
  },
  /**
   * Builds the store now (`isAvailable()` does), so that its client connects before the first
   * call, as an app would at startup; then lets the connection come up.
   */
  warm: async ({ ms }) => {
    await store?.isAvailable()
    await sleep(ms)
    return true
  },
  /** The median PING round trip from this process, over a connection of its own (not the store's). */
  ping: async () => raw?.ping(),
  /** The store's events since the last call, by type. */
  events: async () => {
    const taken = events
    events = {}
    return taken
  },
  close: async () => {
    await tokens?.dispose()
    await store?.close()
    raw?.close()
    return true
  }
}

process.on("message", async (message) => {
  const value = await commands[message.cmd](message)
  process.send({ id: message.id, value })
  if (message.cmd === "close") process.disconnect()
})

// The bench gone (it exits at the end, or failed): so does this instance.
process.on("disconnect", () => process.exit())

process.send({ ready: true })
