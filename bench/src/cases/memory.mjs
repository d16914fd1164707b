/**
 * Case 5, memory: how the heap grows with the number of requests, per system.
 * Each system runs in a fresh process of its own (src/memory-instance.mjs, with
 * `--expose-gc`), so none inherits another's JIT state or garbage: warmed up
 * first (not counted: the JIT's own one-off allocations, bytecode and optimised
 * code, settle there), then the heap is read after `global.gc()` at evenly
 * spaced checkpoints. Growth per 1,000 requests is the least-squares slope
 * through those checkpoints (a one-off step, such as a cache filling once, or
 * one noisy reading, moves it little; steady growth, a leak, is what it
 * measures). Raw fetch is the floor: what the heap does when nothing but fetch
 * is involved. Rounds alternate the order; the median round is reported.
 */
import { fork } from "node:child_process"
import { fileURLToPath } from "node:url"
import { median, num, startChild } from "../lib.mjs"
import { byId } from "../systems.mjs"

const CASE = "5 memory"

/** Least-squares slope of `ys` over `xs`, and the largest distance of a point from that line. */
const fit = (xs, ys) => {
  const n = xs.length
  const mx = xs.reduce((s, x) => s + x, 0) / n
  const my = ys.reduce((s, y) => s + y, 0) / n
  let sxy = 0
  let sxx = 0
  for (let i = 0; i < n; i++) {
    sxy += (xs[i] - mx) * (ys[i] - my)
    sxx += (xs[i] - mx) ** 2
  }
  const slope = sxy / sxx
  const residual = Math.max(...xs.map((x, i) => Math.abs(ys[i] - (my + slope * (x - mx)))))
  return { slope, residual }
}

/** One system's run in a process of its own. */
const runIsolated = (message) =>
  new Promise((resolve, reject) => {
    const child = fork(fileURLToPath(new URL("../memory-instance.mjs", import.meta.url)), [], {
      execArgv: ["--expose-gc"],
      stdio: ["ignore", "inherit", "inherit", "ipc"]
    })
    child.on("message", (reply) => {
      if (reply.ready) child.send({ id: 1, cmd: "run", ...message })
      else if (reply.id === 1) {
        resolve(reply.value)
        child.send({ id: 2, cmd: "close" })
      }
    })
    child.once("error", reject)
    child.once("exit", (code) => {
      if (code !== 0 && code !== null) reject(new Error(`memory-instance.mjs exited with ${code}`))
    })
  })

export const run = async ({ record, table, path }) => {
  const ids = (process.env.BENCH_MEMORY_SYSTEMS ?? "raw-fetch,core").split(",").map((s) => s.trim())
  const base = num("BENCH_MEMORY_BASE", 10_000, 2_000)
  const total = num("BENCH_MEMORY_TOTAL", 200_000, 20_000)
  const steps = num("BENCH_MEMORY_CHECKPOINTS", 8, 4)
  const concurrency = num("BENCH_MEMORY_CONCURRENCY", 32, 32)
  const warmup = num("BENCH_MEMORY_WARMUP", 30_000, 2_000)
  const rounds = num("BENCH_MEMORY_ROUNDS", 2, 1)
  const connections = num("BENCH_CONNECTIONS", 64, 64)
  const checkpoints = Array.from({ length: steps + 1 }, (_, i) =>
    Math.round(base + ((total - base) * i) / steps)
  )
  const server = await startChild("./server.mjs")
  await server.call("config", { ttlSeconds: 3600, tokenLatencyMs: 0 })
  const env = { tokenUrl: `${server.url}/token`, apiBase: `${server.url}/api` }
  const runs = new Map(ids.map((id) => [id, []]))
  for (let r = 0; r < rounds; r++) {
    for (const id of r % 2 === 0 ? ids : [...ids].reverse()) {
      const result = await runIsolated({
        system: id,
        env,
        path,
        clientId: `mem-${id}-${r}`,
        warmup,
        checkpoints,
        concurrency,
        connections
      })
      const { slope, residual } = fit(checkpoints, result.heaps)
      runs.get(id).push({ ...result, perThousand: slope * 1000, residual })
    }
  }
  await server.close()
  const rows = []
  const figures = new Map()
  for (const id of ids) {
    const system = byId(id)
    const all = runs.get(id)
    const perThousand = median(all.map((x) => x.perThousand))
    // the median round, by slope: its heaps are the ones shown
    const shown = [...all].sort((a, b) => a.perThousand - b.perThousand)[Math.floor((all.length - 1) / 2)]
    const growth = shown.heaps.at(-1) - shown.heaps[0]
    const failures = all.reduce((s, x) => s + x.failures, 0)
    figures.set(id, { perThousand, residual: Math.max(...all.map((x) => x.residual)) })
    shown.heaps.forEach((heap, i) => {
      record({
        case: CASE,
        system: system.label,
        metric: `heap_growth_bytes_at_${checkpoints[i]}`,
        unit: "bytes",
        value: heap - shown.heaps[0],
        ratio: null,
        vs: `heap after ${base} requests`
      })
    })
    record({
      case: CASE,
      system: system.label,
      metric: `heap_after_${base}_bytes`,
      unit: "bytes",
      value: shown.heaps[0],
      ratio: null
    })
    record({
      case: CASE,
      system: system.label,
      metric: `heap_after_${total}_bytes`,
      unit: "bytes",
      value: shown.heaps.at(-1),
      ratio: shown.heaps.at(-1) / shown.heaps[0],
      vs: `heap after ${base} requests`
    })
    record({
      case: CASE,
      system: system.label,
      metric: "heap_growth_bytes",
      unit: "bytes",
      value: growth,
      ratio: null
    })
    record({
      case: CASE,
      system: system.label,
      metric: "heap_growth_bytes_per_1000_requests",
      unit: "bytes",
      value: perThousand,
      min: Math.min(...all.map((x) => x.perThousand)),
      max: Math.max(...all.map((x) => x.perThousand)),
      ratio: null,
      vs: "least-squares slope through the checkpoints, median of rounds"
    })
    record({
      case: CASE,
      system: system.label,
      metric: "failed_requests",
      unit: "requests",
      value: failures,
      ratio: null
    })
    const kib = (bytes) => `${(bytes / 1024).toFixed(0)} KiB`
    rows.push([
      system.label,
      `${(shown.heaps[0] / 2 ** 20).toFixed(2)} MiB`,
      `${(shown.heaps.at(-1) / 2 ** 20).toFixed(2)} MiB`,
      kib(growth),
      `${perThousand.toFixed(0)} B (rounds ${all.map((x) => x.perThousand.toFixed(0)).join(", ")})`,
      kib(Math.max(...all.map((x) => x.residual))),
      `${failures}`,
      `${all.map((x) => x.seconds.toFixed(1)).join(" + ")} s`
    ])
  }
  table(
    `Case 5 — memory (minimal node:http server in its own process; each system in a fresh process of its own, ${warmup.toLocaleString("en-US")} warm-up requests, not counted; heap used after global.gc() at ${checkpoints.length} checkpoints from ${base.toLocaleString("en-US")} to ${total.toLocaleString("en-US")} requests; ${concurrency} in flight; ${rounds} round(s), order alternating; growth per 1,000 = least-squares slope, median round)`,
    [
      "system",
      `heap after ${base.toLocaleString("en-US")}`,
      `heap after ${total.toLocaleString("en-US")}`,
      "growth",
      "growth per 1,000 requests",
      "largest checkpoint off the line",
      "failed",
      "time"
    ],
    rows
  )
  // Raw fetch's slope is itself mostly noise (the allocator, undici's timers): the target allows
  // 1.2× of it, or the slope that raw fetch's own scatter around its line could make.
  const floor = figures.get("raw-fetch")
  const noisePerThousand = floor ? ((2 * floor.residual) / (total - base)) * 1000 : 0
  const targets = []
  for (const id of ids.filter((i) => byId(i).kind === "ours")) {
    const { perThousand } = figures.get(id)
    const bound = floor ? Math.max(1.2 * floor.perThousand, floor.perThousand + noisePerThousand) : Number.NaN
    targets.push({
      name: `memory: ${byId(id).label} heap growth per 1,000 requests ≤ 1.2× raw fetch's, or within its noise`,
      met: floor ? perThousand <= bound : null,
      figure: `${perThousand.toFixed(0)} B vs raw fetch ${floor?.perThousand.toFixed(0)} B (bound ${bound.toFixed(0)} B: the larger of 1.2× and raw fetch's slope plus twice its largest checkpoint off the line, per 1,000)`
    })
  }
  return { targets }
}
