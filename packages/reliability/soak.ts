/**
 * The soak: every integration against its own long-lived sandbox, rotating
 * through the fault rows of the matrix for as long as asked, with the same
 * counts (sent / ok / lost / duplicated / resent / not retried) and the same
 * leak sweep, printed periodically and at the end. Not part of CI.
 *
 *   SOAK_SECONDS=600 npx -y pnpm@12 --filter @authfetch/reliability soak
 *   npx -y pnpm@12 --filter @authfetch/reliability soak -- --seconds 600 --profile wealthcare
 *
 * Options (environment or flags): SOAK_SECONDS / --seconds (default 60),
 * SOAK_REPORT_SECONDS / --report (default 10), SOAK_PROFILE / --profile
 * (wex, wealthcare; default wex), SOAK_WAVES / --waves (waves per visit of a
 * row, default 4), SOAK_TOKEN_TTL / --token-ttl (seconds, default 5),
 * SOAK_INTEGRATIONS / --integrations (comma-separated names, default all).
 *
 * Exits 1 when anything was lost, duplicated or resent, or a secret leaked.
 * Traffic goes to 127.0.0.1 only, and the run stops by itself.
 */
import { setTimeout as sleep } from "node:timers/promises"
import { parseArgs } from "node:util"
import type { Leak } from "./src/capture.ts"
import { INTEGRATIONS } from "./src/integrations.ts"
import { ROWS as ALL_ROWS, resetFaults } from "./src/rows.ts"
import {
  addCounts,
  type CellResult,
  COUNT_COLUMNS,
  type Counts,
  countCells,
  DEFAULT_TUNING,
  emptyCounts,
  formatTable,
  runWave,
  startHarness
} from "./src/runner.ts"

// `pnpm soak -- --seconds 600` hands the `--` over too
const argv = process.argv.slice(2)
const { values: flags } = parseArgs({
  args: argv[0] === "--" ? argv.slice(1) : argv,
  options: {
    seconds: { type: "string" },
    report: { type: "string" },
    profile: { type: "string" },
    waves: { type: "string" },
    "token-ttl": { type: "string" },
    integrations: { type: "string" }
  },
  allowPositionals: true
})

const number = (flag: string | undefined, env: string | undefined, fallback: number): number => {
  const value = Number(flag ?? env ?? fallback)
  if (!Number.isFinite(value) || value <= 0) throw new Error(`not a positive number: ${flag ?? env}`)
  return value
}

const seconds = number(flags.seconds, process.env.SOAK_SECONDS, 60)
const reportEvery = number(flags.report, process.env.SOAK_REPORT_SECONDS, 10)
const wavesPerVisit = Math.floor(number(flags.waves, process.env.SOAK_WAVES, 4))
const tokenTtl = Math.floor(number(flags["token-ttl"], process.env.SOAK_TOKEN_TTL, 5))
const profile = (flags.profile ?? process.env.SOAK_PROFILE ?? "wex") as "wex" | "wealthcare"
if (profile !== "wex" && profile !== "wealthcare") throw new Error(`unknown profile ${profile}`)
const wanted = (flags.integrations ?? process.env.SOAK_INTEGRATIONS)?.split(",").map((s) => s.trim())
const integrations = INTEGRATIONS.filter((i) => wanted === undefined || wanted.includes(i.name))
if (integrations.length === 0) throw new Error(`no integration named ${wanted?.join(", ")}`)

const tuning = { ...DEFAULT_TUNING, tokenTtl }
// rows that lose requests to a known bug would only repeat it (see rows.ts); rows with a `setup`
// need an environment of their own (token lifetime, API gateway, several clients, quiet time);
// a row that lingers would fail the requests of the rows after it
const ROWS = ALL_ROWS.filter(
  (row) => row.knownBug === undefined && row.setup === undefined && row.lingers !== true
)
const started = performance.now()
const deadline = started + seconds * 1000
const elapsed = () => `${((performance.now() - started) / 1000).toFixed(0)}s`

interface Lane {
  readonly name: string
  /** per row: counts and milliseconds spent */
  readonly byRow: Map<string, { counts: Counts; ms: number }>
  readonly total: Counts
  current: string
  readonly lostDetails: Array<string>
  readonly leaks: Array<Leak>
  error: unknown
}

const lanes: Array<Lane> = integrations.map((integration) => ({
  name: integration.name,
  byRow: new Map(),
  total: emptyCounts(),
  current: "starting",
  lostDetails: [],
  leaks: [],
  error: undefined
}))

const runLane = async (lane: Lane, integrationNo: number): Promise<void> => {
  const integration = integrations[integrationNo]!
  const harness = await startHarness({
    profile,
    integration,
    integrationNo: INTEGRATIONS.indexOf(integration),
    gateway: true,
    tuning,
    label: `soak · ${profile} · ${integration.name}`
  })
  const env = harness.env
  let duplicatesSeen = 0
  try {
    // each lane starts at another row, so that at any time the sandboxes are in different faults
    for (let visit = integrationNo; performance.now() < deadline; visit++) {
      const row = ROWS[visit % ROWS.length]!
      lane.current = row.id
      resetFaults(env)
      env.seen.token.length = 0
      env.seen.api.length = 0
      if (env.gateway) {
        env.gateway.scripted = 0
        env.gateway.requests = 0
      }
      const visitStarted = performance.now()
      const counts = emptyCounts()
      for (let wave = 0; wave < wavesPerVisit && performance.now() < deadline; wave++) {
        if (wave > 0) await sleep(tuning.pauseMs)
        const result = await runWave(harness, row, wave)
        addCounts(counts, result.counts)
        lane.lostDetails.push(...result.lostDetails.map((d) => `${elapsed()} ${row.id}: ${d}`))
        lane.lostDetails.push(...result.resentDetails.map((d) => `${elapsed()} ${row.id}: resent ${d}`))
        lane.leaks.push(...harness.capture.scan())
      }
      const duplicates = env.sandbox.stats().claims.duplicates
      counts.duplicated = duplicates - duplicatesSeen
      duplicatesSeen = duplicates
      counts.injected = row.injected?.(env) ?? 0
      counts.tokenRequests = env.gateway?.requests ?? env.seen.token.length
      const entry = lane.byRow.get(row.id) ?? { counts: emptyCounts(), ms: 0 }
      addCounts(entry.counts, counts)
      entry.ms += performance.now() - visitStarted
      lane.byRow.set(row.id, entry)
      addCounts(lane.total, counts)
    }
  } finally {
    resetFaults(env)
    await harness.close()
    lane.leaks.push(...harness.capture.scan())
    lane.current = "done"
  }
}

const progress = () => {
  const header = ["integration", ...COUNT_COLUMNS, "leaks", "now"]
  const rows = lanes.map((l) => [
    l.name,
    ...countCells(l.total),
    String(l.leaks.length),
    l.error === undefined ? l.current : `crashed: ${String(l.error)}`
  ])
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  const line = (cells: ReadonlyArray<string>) =>
    cells
      .map((c, i) => (i === 0 || i === cells.length - 1 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
      .join("  ")
  console.log(
    `\n[${elapsed()} of ${seconds}s] soak (${profile}, ${tokenTtl}s tokens)\n${line(header)}\n${rows.map(line).join("\n")}`
  )
}

console.log(
  `soak: ${integrations.map((i) => i.name).join(", ")} on ${profile} sandboxes for ${seconds}s, ${ROWS.length} fault rows in rotation, ${wavesPerVisit} waves of 8 requests per visit`
)
const timer = setInterval(progress, reportEvery * 1000)
await Promise.all(
  lanes.map((lane, i) =>
    runLane(lane, i).catch((error: unknown) => {
      lane.error = error
    })
  )
)
clearInterval(timer)
progress()

const cells = lanes.flatMap((lane) =>
  [...lane.byRow].map(
    ([row, { counts, ms }]) =>
      ({
        ...counts,
        profile,
        row,
        integration: lane.name,
        durationMs: Math.round(ms)
      }) as unknown as CellResult
  )
)
const order = (c: CellResult) => [
  ROWS.findIndex((r) => r.id === c.row),
  lanes.findIndex((l) => l.name === c.integration)
]
cells.sort((a, b) => order(a)[0]! - order(b)[0]! || order(a)[1]! - order(b)[1]!)
console.log(`\nsoak summary: integration × fault over ${elapsed()}\n${formatTable(cells)}`)

const problems = lanes.flatMap((lane) => [
  ...(lane.error === undefined ? [] : [`${lane.name}: crashed: ${String(lane.error)}`]),
  ...lane.lostDetails.map((d) => `${lane.name}: ${d}`),
  ...(lane.total.duplicated > 0 ? [`${lane.name}: ${lane.total.duplicated} duplicated claims`] : []),
  ...(lane.total.forwarded > 0
    ? [
        `${lane.name}: ${lane.total.forwarded} upstream requests carried the browser's Cookie or Authorization`
      ]
    : []),
  ...lane.leaks.map((l) => `${lane.name}: leak of ${l.secret} in ${l.where}: ${l.excerpt}`)
])
if (problems.length > 0) {
  console.log(`\n${problems.length} problem(s):\n${problems.slice(0, 50).join("\n")}`)
  process.exit(1)
}
console.log("\nsoak: nothing lost, duplicated or resent; no secret leaked")
process.exit(0)
