/**
 * authfetch against its peers. Runs the cases in one client process (this
 * one), each against a server in its own process on 127.0.0.1, prints a
 * markdown report on stdout and writes `results/latest.json` and
 * `results/case4-latency.svg`.
 *
 *   npx -y pnpm@12 bench              # full run (about 5 minutes)
 *   BENCH_QUICK=1 npx -y pnpm@12 bench
 *   BENCH_CASES=1,4 ...               # some cases only
 *
 * Run with `--expose-gc` (the package script does) for case 5.
 */
import { mkdirSync, writeFileSync } from "node:fs"
import http from "node:http"
import os from "node:os"
import { Agent, setGlobalDispatcher } from "undici"
import * as coldBurst from "./cases/coldBurst.mjs"
import * as fleet from "./cases/fleet.mjs"
import * as hotPath from "./cases/hotPath.mjs"
import * as memory from "./cases/memory.mjs"
import * as proxies from "./cases/proxies.mjs"
import * as revocation from "./cases/revocation.mjs"
import * as steadyState from "./cases/steadyState.mjs"
import { num, QUICK } from "./lib.mjs"
import { SYSTEMS, versionOf } from "./systems.mjs"

const PATH = "/v1/consumers/12345"

// Every system shares one connection limit per origin: fetch (undici) and the
// http agent axios uses. Without it a 10,000-request burst opens 10,000
// sockets, and repeated bursts exhaust the ephemeral ports.
const connections = num("BENCH_CONNECTIONS", 64, 64)
setGlobalDispatcher(new Agent({ connections, keepAliveTimeout: 60_000, keepAliveMaxTimeout: 120_000 }))
http.globalAgent.maxSockets = connections

const CASES = [
  ["1", hotPath],
  ["2", coldBurst],
  ["3", revocation],
  ["4", steadyState],
  ["5", memory],
  ["6", proxies],
  ["7", fleet]
]
const selected = (process.env.BENCH_CASES ?? "1,2,3,4,5,6,7").split(",").map((s) => s.trim())
// Only a full run of every case replaces results/ (the published figures);
// quick and partial runs write to results/partial/ (git-ignored).
const complete = !QUICK && CASES.every(([id]) => selected.includes(id))
const RESULTS = new URL(complete ? "../results/" : "../results/partial/", import.meta.url)

const rows = []
const targets = []
const out = []
const print = (line = "") => {
  out.push(line)
  process.stdout.write(`${line}\n`)
}
const context = {
  path: PATH,
  results: RESULTS,
  record: (row) => rows.push(clean(row)),
  table: (title, header, body) => {
    print(`### ${title}`)
    print()
    print(`| ${header.join(" | ")} |`)
    print(`| ${header.map(() => "---").join(" | ")} |`)
    for (const row of body) print(`| ${row.join(" | ")} |`)
    print()
  },
  note: (line) => {
    print(line)
    print()
  }
}

const clean = (row) => {
  const result = {}
  for (const [key, value] of Object.entries(row)) {
    if (value === undefined) continue
    result[key] =
      typeof value !== "number" ? value : Number.isFinite(value) ? Math.round(value * 1e4) / 1e4 : null
  }
  result.ratio ??= null
  return result
}

mkdirSync(RESULTS, { recursive: true })
const started = performance.now()
const cpus = os.cpus()
print(`# authfetch benchmarks${QUICK ? " (quick mode: sizes cut, figures indicative only)" : ""}`)
print()
print(
  `${new Date().toISOString()} · Node ${process.version} · ${os.platform()} ${os.arch()} · ${cpus.length} × ${cpus[0]?.model ?? "cpu"} · load average at start ${os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(" ")} · ${connections} connections per origin`
)
print()
print(
  "Each figure is the median over rounds with the spread (min–max); systems alternate within each round and warm-up rounds are discarded. Timings on a shared 2-core machine are noisy: compare ratios within a run, not absolute figures across runs."
)
print()

context.table(
  "Systems",
  ["system", "kind", "packages"],
  SYSTEMS.filter((s) => s.kind !== "variant").map((s) => [
    s.label,
    s.kind,
    s.packages.length === 0 ? `Node ${process.version} fetch` : s.packages.map(versionOf).join(", ")
  ])
)
for (const [name, pkg] of [
  ["Case 6 proxies", ["@authfetch/express", "express", "@authfetch/next"]],
  ["Case 3 server", ["@authfetch/sandbox"]],
  ["Case 7 store", ["@authfetch/redis"]],
  ["Connection pool for fetch", ["undici"]]
]) {
  print(`${name}: ${pkg.map(versionOf).join(", ")}`)
  print()
}

for (const [id, module] of CASES) {
  if (!selected.includes(id)) continue
  const t0 = performance.now()
  try {
    const result = await module.run(context)
    targets.push(...(result?.targets ?? []))
  } catch (error) {
    print(`Case ${id} failed: ${error?.stack ?? error}`)
    print()
    process.exitCode = 1
  }
  process.stderr.write(`case ${id}: ${((performance.now() - t0) / 1000).toFixed(1)} s\n`)
}

if (targets.length > 0) {
  context.table(
    "Targets",
    ["target", "met", "figure"],
    targets.map((t) => [t.name, t.met === null ? "n/a" : t.met ? "yes" : "**no**", t.figure])
  )
}
print(`Total time ${((performance.now() - started) / 1000).toFixed(0)} s.`)

writeFileSync(
  new URL("latest.json", RESULTS),
  `${JSON.stringify(
    rows.map((row) => ({ ...row, quick: QUICK || undefined })),
    null,
    2
  )}\n`
)
writeFileSync(new URL("latest.md", RESULTS), `${out.join("\n")}\n`)
process.stderr.write(
  `wrote ${new URL("latest.json", RESULTS).pathname} (${rows.length} rows)${complete ? "" : "; quick or partial run, results/ left as it was"}\n`
)
process.exit()
