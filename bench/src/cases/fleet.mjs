/**
 * Case 7, a fleet: N processes (`src/fleet-instance.mjs`), each with its own
 * token source and `authFetch` against the minimal server, as N instances of
 * an app behind a load balancer; the in-memory store (each instance on its
 * own) against `@authfetch/redis` (a `redis-server` this case starts). For
 * each fleet size, a memory fleet and a Redis fleet of N processes each:
 *
 * 1. cold start: every instance of both fleets sends a burst at the same
 *    moment (long tokens); the server counts each fleet's token requests (a
 *    client id per fleet and phase);
 * 2. steady state: every instance calls at a fixed rate for several token
 *    lifetimes (short tokens), both fleets side by side; token requests per
 *    lifetime for the whole fleet, cut into segments, and the requests that
 *    waited on a token request;
 * 3. hot path: one instance of each fleet in a closed loop with a fresh
 *    token (the rest of its fleet alive: subscribed, polling), the fleets
 *    alternating in rounds; requests/s and CPU per request, Redis ÷ memory
 *    paired per round, and the commands Redis processed meanwhile (reads stay
 *    local: only the store's poll and heartbeat);
 * 4. a cold instance joining while the fleet holds a fresh token: the time
 *    from `createTokenSource` to its first token, in a running instance (a
 *    new source) and in a new process (its first Redis command waits for the
 *    connection), against the same with the memory store (a token request).
 *
 * Benchmarks are not tests: the figures and ratios are reported, not judged.
 */
import { spawnSync } from "node:child_process"
import { randomBytes } from "node:crypto"
import { median, num, QUICK, roundOrder, startChild, summarize, tokenByHand } from "../lib.mjs"
import { startRedisServer } from "../redis-server.mjs"
import { fmt, fmtRatio, spread } from "./hotPath.mjs"

const CASE = "7 fleet"
const STORES = ["memory", "redis"]
const LABEL = { memory: "memory (default)", redis: "Redis (@authfetch/redis)" }

const sizesFromEnv = () => {
  const raw = process.env.BENCH_FLEET_SIZES
  const sizes = (raw === undefined || raw === "" ? "2,4,8" : raw).split(",").map(Number)
  if (sizes.some((n) => !Number.isInteger(n) || n < 1)) throw new Error(`BENCH_FLEET_SIZES: ${raw}`)
  return sizes
}

/** Sends `cmd` to every instance of `fleet`; resolves with their answers. */
const all = (fleet, cmd, extra = {}) => Promise.all(fleet.map((instance) => instance.call(cmd, extra)))

/** Counts by name, added up. */
const addUp = (list) => {
  const sum = {}
  for (const counts of list)
    for (const [name, count] of Object.entries(counts)) sum[name] = (sum[name] ?? 0) + count
  return sum
}
const eventList = (counts) =>
  Object.entries(counts)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, count]) => `${name} ${count}`)
    .join(", ") || "none"

export const run = async ({ record, table, note }) => {
  const sizes = sizesFromEnv()
  const ttlSeconds = num("BENCH_FLEET_TTL_S", 2, 2)
  const lifetimes = num("BENCH_FLEET_LIFETIMES", 8, 4)
  const segments = num("BENCH_FLEET_SEGMENTS", 4, 2)
  const rate = num("BENCH_FLEET_RPS", 20, 20)
  const burstSize = num("BENCH_FLEET_BURST", 50, 50)
  const hotRounds = num("BENCH_FLEET_HOT_ROUNDS", 7, 3)
  const hotWarmup = num("BENCH_FLEET_HOT_WARMUP_ROUNDS", 2, 2)
  const windowMs = num("BENCH_FLEET_HOT_WINDOW_MS", 750, 300)
  const concurrency = num("BENCH_FLEET_HOT_CONCURRENCY", 32, 32)
  const joinSamples = num("BENCH_FLEET_JOIN_SAMPLES", 5, 3)
  const tokenLatencyMs = num("BENCH_TOKEN_LATENCY_MS", 50, 50)

  const redis = await startRedisServer()
  const server = await startChild("./server.mjs").catch(async (error) => {
    await redis.stop()
    throw error
  })
  const key = randomBytes(32).toString("base64")
  const init = { tokenUrl: `${server.url}/token`, apiBase: `${server.url}/api`, key }
  const launched = new Set()
  const launch = async (store) => {
    const instance = await startChild("./fleet-instance.mjs")
    launched.add(instance)
    await instance.call("init", store === "redis" ? { ...init, redisUrl: redis.url } : init)
    return instance
  }
  const tokenRequests = async (clientId) => (await server.call("stats")).tokenRequests[clientId] ?? 0
  const at = (ms = 100) => Date.now() + ms

  const results = []
  let rtt
  let tokenRequestMs
  try {
    for (const n of sizes) {
      const fleets = {}
      for (const store of STORES)
        fleets[store] = await Promise.all(Array.from({ length: n }, () => launch(store)))
      const id = (store, phase) => `fleet${n}-${store}-${phase}`
      const result = { n, cold: {}, steady: {}, hot: {}, join: {}, events: {} }
      // The Redis fleet's store events since the last phase.
      const takeEvents = async () => addUp(await all(fleets.redis, "events"))

      // 1. Cold start: both fleets, every instance a burst at the same moment. Long tokens, so
      //    that no refresh ahead falls inside a slow start (16 processes on 2 cores).
      await server.call("config", { ttlSeconds: 3600, tokenLatencyMs })
      for (const store of STORES) await all(fleets[store], "source", { clientId: id(store, "cold") })
      const start = at(150)
      const bursts = await Promise.all(
        STORES.map((store) => all(fleets[store], "burst", { n: burstSize, at: start }))
      )
      for (const [i, store] of STORES.entries()) {
        result.cold[store] = {
          tokens: await tokenRequests(id(store, "cold")),
          failures: bursts[i].reduce((sum, b) => sum + b.failures, 0),
          ms: Math.max(...bursts[i].map((b) => b.ms))
        }
      }
      result.events.cold = await takeEvents()

      // 2. Steady state: short tokens, new sources (their first token not counted), a fixed rate
      //    for `lifetimes` token lifetimes.
      await server.call("config", { ttlSeconds, tokenLatencyMs })
      for (const store of STORES) {
        await all(fleets[store], "source", { clientId: id(store, "steady") })
        await all(fleets[store], "burst", { n: 1 })
      }
      const durationMs = lifetimes * ttlSeconds * 1000
      const steadyStart = at(150)
      const loads = Promise.all(
        STORES.map((store) => all(fleets[store], "load", { rps: rate, durationMs, at: steadyStart }))
      )
      const snapshots = []
      for (let k = 0; k <= segments; k++) {
        const wait = steadyStart + (k * durationMs) / segments - Date.now()
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait))
        snapshots.push((await server.call("stats")).tokenRequests)
      }
      const loaded = await loads
      const perSegment = lifetimes / segments
      for (const [i, store] of STORES.entries()) {
        const clientId = id(store, "steady")
        const counts = snapshots.slice(1).map((s, k) => (s[clientId] ?? 0) - (snapshots[k][clientId] ?? 0))
        const total = counts.reduce((a, b) => a + b, 0)
        result.steady[store] = {
          perLifetime: summarize(counts.map((c) => c / perSegment)),
          meanPerLifetime: total / lifetimes,
          total,
          requests: loaded[i].reduce((sum, l) => sum + l.requests, 0),
          failures: loaded[i].reduce((sum, l) => sum + l.failures, 0),
          waited: loaded[i].reduce((sum, l) => sum + l.waited, 0)
        }
      }
      result.events.steady = await takeEvents()

      // 3. Hot path: long tokens, fresh in every instance. Instance 0 of each fleet in a closed
      //    loop (the others of its fleet live: subscribed, polling), the fleets alternating.
      await server.call("config", { ttlSeconds: 3600, tokenLatencyMs })
      for (const store of STORES) {
        await all(fleets[store], "source", { clientId: id(store, "hot") })
        await all(fleets[store], "burst", { n: 1 })
      }
      const perRound = { memory: [], redis: [] }
      for (let r = 0; r < hotWarmup + hotRounds; r++) {
        for (const store of roundOrder(STORES, r)) {
          const commands0 = await redis.commandsProcessed()
          const loop = await fleets[store][0].call("hot", { concurrency, windowMs })
          const commands = (await redis.commandsProcessed()) - commands0 - 1 // less the INFO itself
          if (r >= hotWarmup) perRound[store].push({ ...loop, commands })
        }
      }
      for (const store of STORES) {
        const list = perRound[store]
        const requests = list.reduce((sum, x) => sum + x.requests, 0)
        result.hot[store] = {
          rps: summarize(list.map((x) => x.rps)),
          cpu: summarize(list.map((x) => x.cpuPerRequest)),
          failures: list.reduce((sum, x) => sum + x.failures, 0),
          commandsPer1000: (list.reduce((sum, x) => sum + x.commands, 0) * 1000) / requests
        }
      }
      result.hot.ratio = summarize(perRound.redis.map((x, i) => x.rps / perRound.memory[i].rps))
      result.hot.cpuRatio = summarize(
        perRound.redis.map((x, i) => x.cpuPerRequest / perRound.memory[i].cpuPerRequest)
      )
      result.events.hot = await takeEvents()

      // 4. A cold instance while the fleet holds a fresh token (the hot phase's).
      for (const store of STORES) {
        if (store === "redis") result.join.ping = summarize(await all(fleets.redis, "ping"))
        const times = []
        const commands0 = await redis.commandsProcessed()
        for (let s = 0; s < joinSamples; s++) {
          times.push(await fleets[store][s % n].call("firstToken", { clientId: id(store, "hot") }))
        }
        // Redis commands per first token (less the INFO; a poll may add one now and then).
        const commands = ((await redis.commandsProcessed()) - commands0 - 1) / joinSamples
        const before = await tokenRequests(id(store, "hot"))
        const late = await launch(store)
        const newProcess = await late.call("firstToken", { clientId: id(store, "hot") })
        if (store === "redis") result.join.lateEvents = await late.call("events")
        await late.close()
        if (store === "redis") {
          // The same, with the store built (and connected) at startup, before the first call.
          const warmed = await launch(store)
          await warmed.call("warm", { ms: 500 })
          result.join.warmedProcess = await warmed.call("firstToken", { clientId: id(store, "hot") })
          await warmed.close()
        }
        result.join[store] = {
          newSource: summarize(times),
          commands,
          newProcess,
          tokenRequestsByNewProcess: (await tokenRequests(id(store, "hot"))) - before
        }
      }
      result.events.join = await takeEvents()
      for (const store of STORES) await Promise.all(fleets[store].map((instance) => instance.close()))
      results.push(result)
    }

    // What a Redis round trip and a token request cost on this machine, for comparison.
    rtt = await redis.ping()
    const byHand = []
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now()
      await tokenByHand(`${server.url}/token`, "fleet-by-hand")
      byHand.push(performance.now() - t0)
    }
    tokenRequestMs = median(byHand)
  } finally {
    // Whatever a failure left running (close is a no-op for an instance already closed).
    await Promise.all([...launched].map((instance) => instance.close()))
    await redis.stop()
    await server.close()
  }

  // --- report ---------------------------------------------------------------------------
  const rec = (system, metric, unit, values) =>
    record({ case: CASE, system, metric, unit, ratio: null, ...values })
  const tokenRows = []
  for (const r of results) {
    for (const store of STORES) {
      const s = r.steady[store]
      const system = `${LABEL[store]}, ${r.n} processes`
      // One instance's rate, from the memory fleet (N instances, each on its own).
      const single = r.steady.memory.meanPerLifetime / r.n
      const factor = s.meanPerLifetime / single
      rec(system, "cold_start_token_requests", "requests", { value: r.cold[store].tokens })
      rec(system, "cold_start_failed_requests", "requests", { value: r.cold[store].failures })
      rec(system, "steady_token_requests_per_lifetime", "requests", { ...s.perLifetime })
      rec(system, "steady_token_requests_per_lifetime_mean", "requests", { value: s.meanPerLifetime })
      rec(system, "steady_token_requests_vs_one_instance", "ratio", { value: factor })
      rec(system, "steady_waited_on_token_request", "requests", { value: s.waited })
      rec(system, "steady_failed_requests", "requests", { value: s.failures })
      tokenRows.push([
        String(r.n),
        LABEL[store],
        `${r.cold[store].tokens}`,
        `${r.cold[store].failures}`,
        fmt(r.cold[store].ms, 0),
        `${fmt(s.meanPerLifetime)} (${spread(s.perLifetime)})`,
        fmt(factor),
        `${s.waited}`,
        `${s.failures}`,
        `${s.requests}`
      ])
    }
  }
  table(
    `Case 7 — fleet: token requests (N processes each with its own token source and authFetch, minimal node:http server in its own process, redis-server of the bench's own; cold: ${burstSize} concurrent calls per instance at the same moment; steady: ${ttlSeconds} s tokens, ${rate} calls/s per instance for ${lifetimes} lifetimes, both fleets side by side; token endpoint answering after ${tokenLatencyMs} ms)`,
    [
      "processes",
      "store",
      "cold start: token requests",
      "cold: failed",
      "cold: slowest burst ms",
      `steady: token requests per lifetime, mean (per ${fmt(lifetimes / segments, 0)}-lifetime segment: median, min–max)`,
      "÷ one instance's",
      "waited on a token request",
      "failed",
      "requests"
    ],
    tokenRows
  )
  note(
    `"÷ one instance's": the fleet's token requests per lifetime divided by one instance's (the memory fleet's ÷ N, in the same run): 1 means the whole fleet asks for tokens like a single instance (one acquisition, then one refresh ahead per cycle; with ${ttlSeconds} s tokens a refresh comes at about 64–71 % of the lifetime, so about 1.5 per lifetime); N means every instance asks on its own.`
  )

  const hotRows = []
  for (const r of results) {
    const { memory, redis: onRedis, ratio, cpuRatio } = r.hot
    rec(`${LABEL.redis}, ${r.n} processes`, "hot_requests_per_s", "req/s", {
      ...onRedis.rps,
      ratio: ratio.value,
      ratioMin: ratio.min,
      ratioMax: ratio.max,
      vs: `${LABEL.memory}, ${r.n} processes`
    })
    rec(`${LABEL.memory}, ${r.n} processes`, "hot_requests_per_s", "req/s", { ...memory.rps })
    rec(`${LABEL.redis}, ${r.n} processes`, "hot_client_cpu_us_per_request", "µs", {
      ...onRedis.cpu,
      ratio: cpuRatio.value,
      ratioMin: cpuRatio.min,
      ratioMax: cpuRatio.max,
      vs: `${LABEL.memory}, ${r.n} processes`
    })
    rec(`${LABEL.memory}, ${r.n} processes`, "hot_client_cpu_us_per_request", "µs", { ...memory.cpu })
    rec(`${LABEL.redis}, ${r.n} processes`, "hot_redis_commands_per_1000_requests", "commands", {
      value: onRedis.commandsPer1000
    })
    hotRows.push([
      String(r.n),
      spread(memory.rps, 0),
      spread(onRedis.rps, 0),
      fmtRatio(ratio),
      spread(memory.cpu, 0),
      spread(onRedis.cpu, 0),
      fmtRatio(cpuRatio),
      fmt(onRedis.commandsPer1000, 2),
      `${memory.failures + onRedis.failures}`
    ])
  }
  table(
    `Case 7 — fleet: hot path (one instance of each fleet in a closed loop, the rest of its fleet alive; ${concurrency} calls in flight, ${windowMs} ms windows, fresh token; the fleets alternate, ${hotRounds} rounds + ${hotWarmup} warm-up)`,
    [
      "processes",
      "memory: req/s",
      "Redis: req/s",
      "Redis ÷ memory",
      "memory: CPU µs/req",
      "Redis: CPU µs/req",
      "CPU Redis ÷ memory",
      "Redis commands per 1,000 requests",
      "failed"
    ],
    hotRows
  )
  note(
    "Redis commands per 1,000 requests: what Redis processed during the Redis fleet's windows (the 5 s poll and heartbeat of every instance of the fleet), per 1,000 calls; a call that read the token from Redis would count 1,000 by itself."
  )

  const joinRows = []
  for (const r of results) {
    const { memory, redis: onRedis } = r.join
    rec(`${LABEL.redis}, ${r.n} processes`, "join_first_token_new_source_ms", "ms", {
      ...onRedis.newSource,
      ratio: onRedis.newSource.value / memory.newSource.value,
      vs: `${LABEL.memory}, ${r.n} processes`
    })
    rec(`${LABEL.memory}, ${r.n} processes`, "join_first_token_new_source_ms", "ms", { ...memory.newSource })
    rec(`${LABEL.redis}, ${r.n} processes`, "join_first_token_new_process_ms", "ms", {
      value: onRedis.newProcess,
      ratio: onRedis.newProcess / memory.newProcess,
      vs: `${LABEL.memory}, ${r.n} processes`
    })
    rec(`${LABEL.memory}, ${r.n} processes`, "join_first_token_new_process_ms", "ms", {
      value: memory.newProcess
    })
    rec(`${LABEL.redis}, ${r.n} processes`, "join_first_token_new_process_store_connected_ms", "ms", {
      value: r.join.warmedProcess
    })
    rec(`${LABEL.redis}, ${r.n} processes`, "join_redis_commands_per_new_source", "commands", {
      value: onRedis.commands
    })
    rec(`${LABEL.redis}, ${r.n} processes`, "join_token_requests_by_new_process", "requests", {
      value: onRedis.tokenRequestsByNewProcess
    })
    rec(`${LABEL.redis}, ${r.n} processes`, "join_redis_ping_rtt_ms", "ms", { ...r.join.ping })
    joinRows.push([
      String(r.n),
      spread(r.join.ping, 3),
      spread(onRedis.newSource, 2),
      fmt(onRedis.newProcess, 1),
      fmt(r.join.warmedProcess, 1),
      `${onRedis.tokenRequestsByNewProcess}`,
      fmt(onRedis.commands, 1),
      spread(memory.newSource, 1),
      fmt(memory.newProcess, 1),
      fmt(onRedis.newSource.value / memory.newSource.value, 3)
    ])
  }
  table(
    `Case 7 — fleet: a cold instance's first token while the fleet holds a fresh one (from createTokenSource to the token, token endpoint answering after ${tokenLatencyMs} ms; new source: ${joinSamples} samples in running instances, store connected; new process: one, just started, its store built at the first call, whose first command waits for the connection; connected at startup: \`await store.isAvailable()\` at start builds the store, 500 ms before the call)`,
    [
      "processes",
      "Redis PING from the instances ms",
      "Redis: new source ms",
      "Redis: new process ms",
      "Redis: new process, store connected at startup ms",
      "Redis: token requests by the new process",
      "Redis commands per new source",
      "memory: new source ms (a token request)",
      "memory: new process ms",
      "Redis ÷ memory (new source)"
    ],
    joinRows
  )
  record({
    case: CASE,
    system: "(machine)",
    metric: "redis_ping_rtt_ms",
    unit: "ms",
    value: rtt,
    ratio: null
  })
  record({
    case: CASE,
    system: "(machine)",
    metric: "token_request_by_hand_ms",
    unit: "ms",
    value: tokenRequestMs,
    ratio: null
  })
  note(
    `redis-server ${/v=(\S+)/.exec(spawnSync("redis-server", ["--version"], { encoding: "utf8" }).stdout ?? "")?.[1] ?? "?"}, no persistence, on 127.0.0.1. For comparison on this machine: a Redis round trip (PING from the bench process) ${fmt(rtt, 3)} ms; a token request by hand (one POST, the endpoint answering after ${tokenLatencyMs} ms) ${fmt(tokenRequestMs, 1)} ms. The Redis store's events are in the next table.${QUICK ? " Quick mode: fewer lifetimes, shorter windows." : ""}`
  )

  table(
    "Case 7 — fleet: the Redis store's events, by phase (all instances of the Redis fleet; `store_unavailable <operation> <reason>`: a command failed or missed its 500 ms deadline and the instance ran on its local fallback)",
    ["processes", "cold start", "steady state", "hot path", "join (running instances; the new process)"],
    results.map((r) => [
      String(r.n),
      eventList(r.events.cold),
      eventList(r.events.steady),
      eventList(r.events.hot),
      `${eventList(r.events.join)}; ${eventList(r.join.lateEvents ?? {})}`
    ])
  )
  for (const r of results) {
    for (const [phase, counts] of Object.entries(r.events)) {
      for (const [name, count] of Object.entries(counts)) {
        rec(`${LABEL.redis}, ${r.n} processes`, `events_${phase}_${name.replaceAll(" ", "_")}`, "events", {
          value: count
        })
      }
    }
  }

  const largest = results.at(-1)
  return {
    targets: largest
      ? [
          {
            name: `fleet of ${largest.n}, Redis: 1 token request at a cold start (memory: ${largest.n})`,
            met: null,
            figure: `${largest.cold.redis.tokens} (memory ${largest.cold.memory.tokens})`
          },
          {
            name: `fleet of ${largest.n}, Redis: token requests per lifetime ÷ one instance's ≈ 1 (memory: ${largest.n})`,
            met: null,
            figure: `${fmt(largest.steady.redis.meanPerLifetime / (largest.steady.memory.meanPerLifetime / largest.n))} (memory ${fmt(largest.n)})`
          },
          ...results.map((r) => ({
            name: `fleet of ${r.n}: hot path, Redis ÷ memory store (req/s) ≥ 0.98`,
            met: null,
            figure: fmtRatio(r.hot.ratio)
          })),
          {
            name: `fleet of ${largest.n}: a cold instance's first token from Redis ≈ one round trip`,
            met: null,
            figure: `${fmt(largest.join.redis.newSource.value, 2)} ms (a token request ${fmt(largest.join.memory.newSource.value, 1)} ms; PING ${fmt(rtt, 3)} ms)`
          }
        ]
      : []
  }
}
