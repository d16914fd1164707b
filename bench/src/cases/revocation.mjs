/**
 * Case 3, revocation storm: each system holds a valid token; the server
 * revokes every token; then 1,000 requests start at once. Counts the token
 * requests the system made, the requests that failed, the token requests the
 * server refused with 429, and the storm's duration.
 *
 * Server: `@authfetch/sandbox` (WEX profile) in its own process: WEX's
 * malformed 401 problem+json for a revoked token, and WEX's limit of 100
 * token requests per minute per client (each system and round gets a client
 * of its own, so one system's storm does not eat another's budget).
 */
import { burst, num, roundOrder, startChild, summarize } from "../lib.mjs"
import { byId } from "../systems.mjs"
import { fmt, spread } from "./hotPath.mjs"

const CASE = "3 revocation storm"
const IDS = ["core", "ky", "axios", "badgateway", "axios-auth-refresh", "oauth4webapi"]

export const run = async ({ record, table, path }) => {
  const rounds = num("BENCH_ROUNDS", 5, 3)
  const warmup = num("BENCH_WARMUP_ROUNDS", 1, 1)
  const size = num("BENCH_STORM_SIZE", 1000, 1000)
  const tokenLatencyMs = num("BENCH_TOKEN_LATENCY_MS", 50, 50)
  const systems = IDS.map(byId)
  const clients = systems.flatMap((s) =>
    Array.from({ length: warmup + rounds }, (_, r) => `storm-${s.id}-${r}`)
  )
  const sandbox = await startChild("./sandbox-server.mjs")
  const env = await sandbox.call("start", { clients, tokenTtl: 3600, tokenLatencyMs })
  const results = new Map(IDS.map((id) => [id, []]))
  for (let r = 0; r < warmup + rounds; r++) {
    for (const system of roundOrder(systems, r)) {
      const clientId = `storm-${system.id}-${r}`
      const instance = await system.make(env, clientId)
      const primed = await instance.get(path)
      if (primed.status !== 200) throw new Error(`${system.id}: priming request answered ${primed.status}`)
      const before = await sandbox.call("stats")
      await sandbox.call("revokeAll")
      const t0 = performance.now()
      const answers = await burst(() => instance.get(path), size)
      const ms = performance.now() - t0
      const after = await sandbox.call("stats")
      await instance.close()
      if (r < warmup) continue
      results.get(system.id).push({
        tokens: (after.tokenRequests[clientId] ?? 0) - (before.tokenRequests[clientId] ?? 0),
        refused: (after.tokenByStatus["429"] ?? 0) - (before.tokenByStatus["429"] ?? 0),
        failed: answers.filter((a) => a.status !== 200).length,
        ms
      })
    }
  }
  await sandbox.close()

  const rows = []
  const targets = []
  for (const system of systems) {
    const list = results.get(system.id)
    const tokens = summarize(list.map((x) => x.tokens))
    const refused = summarize(list.map((x) => x.refused))
    const failed = summarize(list.map((x) => x.failed))
    const ms = summarize(list.map((x) => x.ms))
    const metric = (name, unit, s) =>
      record({ case: CASE, system: system.label, metric: name, unit, ...s, ratio: null })
    metric("token_requests", "requests", tokens)
    metric("token_requests_refused_429", "requests", refused)
    metric("failed_requests", "requests", failed)
    metric("storm_ms", "ms", ms)
    rows.push([system.label, spread(tokens, 0), spread(refused, 0), spread(failed, 0), spread(ms, 0)])
    if (system.kind === "ours") {
      targets.push({
        name: `revocation storm: ${system.label} makes 1 token request, no request fails`,
        met: tokens.max === 1 && failed.max === 0,
        figure: `${fmt(tokens.value, 0)} token request(s) (max ${tokens.max}), ${fmt(failed.max, 0)} failed`
      })
    }
  }
  table(
    `Case 3 — revocation storm (${size.toLocaleString("en-US")} concurrent requests right after the server revoked every token; @authfetch/sandbox, WEX profile, in its own process, token endpoint answering after ${tokenLatencyMs} ms, 100 token requests per minute per client; ${rounds} rounds + ${warmup} warm-up)`,
    ["system", "token requests", "token requests refused (429)", "failed requests", "storm time ms"],
    rows
  )
  return { targets }
}
