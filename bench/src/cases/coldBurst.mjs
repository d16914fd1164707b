/**
 * Case 2, cold burst: N requests started at once on a system that has no
 * token yet. Counts the token requests the server received from that system
 * (target: 1), the requests that failed, and how long the burst took. A new
 * instance (and client id) per system per round.
 */
import { burst, num, roundOrder, startChild, summarize } from "../lib.mjs"
import { byId } from "../systems.mjs"
import { fmt, spread } from "./hotPath.mjs"

const CASE = "2 cold burst"
const IDS = ["core", "ky", "axios", "badgateway", "axios-auth-refresh", "oauth4webapi"]

export const run = async ({ record, table, path }) => {
  const rounds = num("BENCH_ROUNDS", 5, 3)
  // The largest burst runs fewer rounds by default: its token counts do not
  // vary and one round of it takes 20+ s (the hand-rolled cache makes 10,000
  // token requests), which would push a full run well past 5 minutes.
  const largeRounds = num("BENCH_BURST_LARGE_ROUNDS", 3, 3)
  const sizes = (
    process.env.BENCH_BURST_SIZES ?? (process.env.BENCH_QUICK === "1" ? "1000,2000" : "1000,10000")
  )
    .split(",")
    .map(Number)
  const tokenLatencyMs = num("BENCH_TOKEN_LATENCY_MS", 50, 50)
  const server = await startChild("./server.mjs")
  await server.call("config", { ttlSeconds: 3600, tokenLatencyMs })
  const env = { tokenUrl: `${server.url}/token`, apiBase: `${server.url}/api` }
  const systems = IDS.map(byId)
  const results = new Map()
  let seq = 0
  // One warm-up round at the smallest size (JIT, connections), discarded.
  for (const [size, r, warm] of [
    [sizes[0], 0, true],
    ...sizes.flatMap((n, k) =>
      Array.from({ length: k > 0 && n >= 10_000 ? Math.min(largeRounds, rounds) : rounds }, (_, i) => [
        n,
        i,
        false
      ])
    )
  ]) {
    for (const system of roundOrder(systems, r)) {
      const clientId = `cold-${system.id}-${++seq}`
      const instance = await system.make(env, clientId)
      const t0 = performance.now()
      const answers = await burst(() => instance.get(path), size)
      const ms = performance.now() - t0
      const stats = await server.call("stats")
      await instance.close()
      if (warm) continue
      const key = `${system.id}:${size}`
      if (!results.has(key)) results.set(key, [])
      results.get(key).push({
        tokens: stats.tokenRequests[clientId] ?? 0,
        failed: answers.filter((a) => a.status !== 200).length,
        ms
      })
    }
  }
  await server.close()

  const rows = []
  const targets = []
  for (const size of sizes) {
    for (const system of systems) {
      const list = results.get(`${system.id}:${size}`)
      const tokens = summarize(list.map((x) => x.tokens))
      const failed = summarize(list.map((x) => x.failed))
      const ms = summarize(list.map((x) => x.ms))
      const metric = (name, unit, s) =>
        record({ case: CASE, system: system.label, metric: `${name}@${size}`, unit, ...s, ratio: null })
      metric("token_requests", "requests", tokens)
      metric("failed_requests", "requests", failed)
      metric("burst_ms", "ms", ms)
      rows.push([
        system.label,
        size.toLocaleString("en-US"),
        spread(tokens, 0),
        spread(failed, 0),
        spread(ms, 0)
      ])
      if (system.kind === "ours") {
        targets.push({
          name: `cold burst ${size.toLocaleString("en-US")}: ${system.label} makes 1 token request`,
          met: tokens.max === 1 && failed.max === 0,
          figure: `${fmt(tokens.value, 0)} token request(s) (max ${tokens.max}), ${fmt(failed.max, 0)} failed`
        })
      }
    }
  }
  table(
    `Case 2 — cold burst (minimal node:http server in its own process, token endpoint answering after ${tokenLatencyMs} ms; ${rounds} rounds (${Math.min(largeRounds, rounds)} at 10,000 and more) + 1 warm-up, new client per round)`,
    ["system", "concurrent first requests", "token requests", "failed requests", "burst time ms"],
    rows
  )
  return { targets }
}
