/**
 * Case 6, proxies: throughput of the Express and Next backend-for-frontend
 * proxies (`@authfetch/express` `createProxy`, `@authfetch/next`
 * `createProxyRoute`) against the same server proxying with a hand-set token
 * and nothing else. Three processes: this one generates load (closed loop),
 * the proxies run in a child, the upstream (minimal node:http server) in
 * another. The proxies alternate in rounds; the proxy process's CPU time per
 * request is read over IPC around each window. Two loads: a small JSON answer
 * to `GET` (most API calls), and a 64 KiB `POST` the upstream streams back (64
 * KiB each way, which every proxy must stream, not buffer).
 */
import { closedLoop, num, roundOrder, startChild, summarize } from "../lib.mjs"
import { fmtRatio, spread } from "./hotPath.mjs"

const CASE = "6 proxies"
const LABELS = {
  "express-auth": "Express + @authfetch/express createProxy",
  "express-plain": "Express, hand-written proxy (static token)",
  "next-auth": "node:http → @authfetch/next createProxyRoute",
  "next-plain": "node:http → plain route function (static token)"
}
const BASELINE = { "express-auth": "express-plain", "next-auth": "next-plain" }

export const run = async ({ record, table, note, path }) => {
  const rounds = num("BENCH_ROUNDS", 5, 3)
  const warmup = num("BENCH_WARMUP_ROUNDS", 1, 1)
  const windowMs = num("BENCH_PROXY_WINDOW_MS", 750, 300)
  const concurrency = num("BENCH_PROXY_CONCURRENCY", 32, 32)
  const upstream = await startChild("./server.mjs")
  await upstream.call("config", { ttlSeconds: 3600, tokenLatencyMs: 0 })
  // Next runs route handlers under the react-server export condition (which is
  // what lets @authfetch/next's `import "server-only"` load); so does this process.
  const proxy = await startChild("./proxy-server.mjs", ["--conditions=react-server"])
  const { urls, skipped } = await proxy.call("start", {
    upstream: `${upstream.url}/api`,
    tokenUrl: `${upstream.url}/token`
  })
  const ids = Object.keys(LABELS).filter((id) => urls[id] !== undefined)
  const large = num("BENCH_PROXY_LARGE_BYTES", 64 * 1024, 64 * 1024)
  // printable, so that the proxies' token scan has text to look through, as in a real body
  const payload = new TextEncoder().encode("0123456789abcdef".repeat(Math.ceil(large / 16)).slice(0, large))
  const scenarios = [
    {
      key: "small",
      title: "a small JSON answer to GET",
      caller: (id) => {
        const url = `${urls[id]}/bff${path}`
        return () =>
          fetch(url).then(
            async (res) => {
              await res.json()
              return { status: res.status }
            },
            () => ({ status: 0 })
          )
      }
    },
    {
      key: "large",
      title: `POST of ${large / 1024} KiB, echoed back: ${large / 1024} KiB each way, streamed`,
      caller: (id) => {
        const url = `${urls[id]}/bff${path}`
        return () =>
          fetch(url, {
            method: "POST",
            headers: { "content-type": "application/octet-stream" },
            body: payload
          }).then(
            async (res) => {
              const echoed = await res.arrayBuffer()
              return { status: echoed.byteLength === large ? res.status : -1 }
            },
            () => ({ status: 0 })
          )
      }
    }
  ]
  const measured = []
  for (const scenario of scenarios) {
    const callers = Object.fromEntries(ids.map((id) => [id, scenario.caller(id)]))
    for (const id of ids) {
      const first = await callers[id]()
      if (first.status !== 200)
        throw new Error(`${id} (${scenario.key}): first request answered ${first.status}`)
    }
    const perRound = new Map(ids.map((id) => [id, []]))
    for (let r = 0; r < warmup + rounds; r++) {
      for (const id of roundOrder(ids, r)) {
        const cpu0 = await proxy.call("cpu")
        const result = await closedLoop(callers[id], concurrency, windowMs)
        const cpu1 = await proxy.call("cpu")
        const proxyCpu = cpu1.user + cpu1.system - cpu0.user - cpu0.system
        if (r >= warmup) perRound.get(id).push({ ...result, proxyCpuPerRequest: proxyCpu / result.requests })
      }
    }
    measured.push({ scenario, perRound })
  }
  await proxy.close()
  await upstream.close()

  const targets = []
  for (const { scenario, perRound } of measured) {
    const rows = []
    const suffix = scenario.key === "small" ? "" : `_${scenario.key}`
    for (const id of ids) {
      const list = perRound.get(id)
      const rps = summarize(list.map((x) => x.rps))
      const cpu = summarize(list.map((x) => x.proxyCpuPerRequest))
      const base = BASELINE[id] && perRound.has(BASELINE[id]) ? perRound.get(BASELINE[id]) : undefined
      const ratio = base ? summarize(list.map((x, i) => x.rps / base[i].rps)) : undefined
      const cpuRatio = base
        ? summarize(list.map((x, i) => x.proxyCpuPerRequest / base[i].proxyCpuPerRequest))
        : undefined
      const failures = list.reduce((n, x) => n + x.failures, 0)
      const vs = BASELINE[id] ? LABELS[BASELINE[id]] : undefined
      const system = scenario.key === "small" ? LABELS[id] : `${LABELS[id]}, ${scenario.title}`
      record({
        case: CASE,
        system,
        metric: `requests_per_s${suffix}`,
        unit: "req/s",
        ...rps,
        ratio: ratio?.value ?? null,
        ratioMin: ratio?.min,
        ratioMax: ratio?.max,
        vs
      })
      record({
        case: CASE,
        system,
        metric: `proxy_cpu_us_per_request${suffix}`,
        unit: "µs",
        ...cpu,
        ratio: cpuRatio?.value ?? null,
        ratioMin: cpuRatio?.min,
        ratioMax: cpuRatio?.max,
        vs
      })
      record({
        case: CASE,
        system,
        metric: `failed_requests${suffix}`,
        unit: "requests",
        value: failures,
        ratio: null
      })
      rows.push([
        LABELS[id],
        spread(rps),
        ratio ? fmtRatio(ratio) : "(baseline)",
        spread(cpu, 0),
        cpuRatio ? fmtRatio(cpuRatio) : "(baseline)",
        String(failures)
      ])
      if (ratio)
        targets.push(
          scenario.key === "small"
            ? {
                name: `proxy: ${LABELS[id]} ÷ without auth (req/s) ≥ 0.90`,
                met: ratio.value >= 0.9,
                figure: fmtRatio(ratio)
              }
            : {
                name: `proxy, ${scenario.title}: ${LABELS[id]} ÷ without auth (req/s)`,
                met: null,
                figure: fmtRatio(ratio)
              }
        )
    }
    table(
      `Case 6 — proxies, ${scenario.title} (proxies in their own process, upstream minimal node:http server in another; ${concurrency} requests in flight, ${windowMs} ms windows, ${rounds} rounds + ${warmup} warm-up)`,
      ["proxy", "req/s", "÷ same server without auth", "proxy CPU µs/req", "CPU ÷ without auth", "failed"],
      rows
    )
  }
  for (const [id, reason] of Object.entries(skipped)) note(`Skipped ${LABELS[id]}: ${reason}.`)
  return { targets }
}
