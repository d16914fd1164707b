/**
 * Case 5, memory: heap after 200,000 requests vs after 10,000, per system,
 * measured after `global.gc()` (the process runs with `--expose-gc`). Every
 * system is warmed up first (not counted); then systems
 * run one after the other (heap growth is per process, so running them side
 * by side would mix their growth); raw fetch runs first and is the noise
 * floor: what the heap does when nothing but fetch is involved. Heap is also
 * read at intermediate checkpoints; their range is the spread shown.
 */
import { fixedCount, num, sleep, startChild, summarize } from "../lib.mjs"
import { byId } from "../systems.mjs"

const CASE = "5 memory"

const settledHeap = async () => {
  for (let i = 0; i < 4; i++) {
    global.gc()
    await sleep(20)
  }
  return process.memoryUsage().heapUsed
}

export const run = async ({ record, table, note, path }) => {
  if (typeof global.gc !== "function") {
    note("Case 5 skipped: run node with --expose-gc (the `bench` script does).")
    return {
      targets: [{ name: "memory: no growth beyond noise", met: null, figure: "not run (no --expose-gc)" }]
    }
  }
  const ids = (process.env.BENCH_MEMORY_SYSTEMS ?? "raw-fetch,core").split(",").map((s) => s.trim())
  const base = num("BENCH_MEMORY_BASE", 10_000, 2_000)
  const total = num("BENCH_MEMORY_TOTAL", 200_000, 20_000)
  const concurrency = num("BENCH_MEMORY_CONCURRENCY", 32, 32)
  const checkpoints = [0.25, 0.5, 0.75, 1].map((f) => Math.round(base + (total - base) * f))
  const server = await startChild("./server.mjs")
  await server.call("config", { ttlSeconds: 3600, tokenLatencyMs: 0 })
  const env = { tokenUrl: `${server.url}/token`, apiBase: `${server.url}/api` }
  const warmup = num("BENCH_MEMORY_WARMUP", 2_000, 1_000)
  // Every system is created and warmed up first (JIT, connections, lazily
  // built module state), so that the first one measured does not carry the
  // process's own start-up garbage into its baseline.
  const instances = new Map()
  for (const id of ids) {
    const instance = await byId(id).make(env, `mem-${id}`)
    await fixedCount(() => instance.get(path), warmup, concurrency)
    instances.set(id, instance)
  }
  const rows = []
  const growth = new Map()
  for (const id of ids) {
    const system = byId(id)
    const instance = instances.get(id)
    let done = 0
    let failures = 0
    const runTo = async (n) => {
      failures += (await fixedCount(() => instance.get(path), n - done, concurrency)).failures
      done = n
    }
    const t0 = performance.now()
    await runTo(base)
    const atBase = await settledHeap()
    const deltas = []
    let atEnd = atBase
    for (const n of checkpoints) {
      await runTo(n)
      atEnd = await settledHeap()
      deltas.push(atEnd - atBase)
      record({
        case: CASE,
        system: system.label,
        metric: `heap_growth_bytes_at_${n}`,
        unit: "bytes",
        value: atEnd - atBase,
        ratio: null,
        vs: `heap after ${base} requests`
      })
    }
    const seconds = (performance.now() - t0) / 1000
    await instance.close()
    const grown = atEnd - atBase
    growth.set(id, { grown, deltas })
    const spread = summarize(deltas)
    const kib = (bytes) => `${(bytes / 1024).toFixed(0)} KiB`
    record({
      case: CASE,
      system: system.label,
      metric: `heap_after_${base}_bytes`,
      unit: "bytes",
      value: atBase,
      ratio: null
    })
    record({
      case: CASE,
      system: system.label,
      metric: `heap_after_${total}_bytes`,
      unit: "bytes",
      value: atEnd,
      ratio: atEnd / atBase,
      vs: `heap after ${base} requests`
    })
    record({
      case: CASE,
      system: system.label,
      metric: "heap_growth_bytes",
      unit: "bytes",
      value: grown,
      min: spread.min,
      max: spread.max,
      ratio: null
    })
    record({
      case: CASE,
      system: system.label,
      metric: "heap_growth_bytes_per_1000_requests",
      unit: "bytes",
      value: (grown / (total - base)) * 1000,
      ratio: null
    })
    record({
      case: CASE,
      system: system.label,
      metric: "failed_requests",
      unit: "requests",
      value: failures,
      ratio: null
    })
    rows.push([
      system.label,
      `${(atBase / 2 ** 20).toFixed(2)} MiB`,
      `${(atEnd / 2 ** 20).toFixed(2)} MiB`,
      `${kib(grown)} (checkpoints ${kib(spread.min)} to ${kib(spread.max)})`,
      `${((grown / (total - base)) * 1000).toFixed(0)} B`,
      (atEnd / atBase).toFixed(3),
      `${failures}`,
      `${seconds.toFixed(1)} s`
    ])
  }
  await server.close()
  table(
    `Case 5 — memory (minimal node:http server in its own process; ${warmup.toLocaleString("en-US")} warm-up requests each, not counted; heap used after global.gc(), after ${base.toLocaleString("en-US")} and after ${total.toLocaleString("en-US")} requests; ${concurrency} in flight; checkpoints at ${checkpoints.map((n) => n.toLocaleString("en-US")).join(", ")})`,
    [
      "system",
      `heap after ${base.toLocaleString("en-US")}`,
      `heap after ${total.toLocaleString("en-US")}`,
      "growth",
      "growth per 1,000 requests",
      "ratio",
      "failed",
      "time"
    ],
    rows
  )
  const floor = growth.get("raw-fetch")
  const noise = Math.max(1024 * 1024, floor ? 2 * Math.max(...floor.deltas.map(Math.abs)) : 0)
  const targets = []
  for (const id of ids.filter((i) => byId(i).kind === "ours")) {
    const g = growth.get(id).grown
    targets.push({
      name: `memory: ${byId(id).label} heap growth 10k → 200k within noise`,
      met: g <= noise,
      figure: `${(g / 1024).toFixed(0)} KiB (noise bound ${(noise / 1024).toFixed(0)} KiB: twice raw fetch's largest checkpoint move, at least 1 MiB)`
    })
  }
  return { targets }
}
