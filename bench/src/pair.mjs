/**
 * Two or more systems of `src/systems.mjs` head to head on case 1's hot path,
 * alternating in rounds (order rotated), with paired ratios to the first:
 * a quicker, narrower look than the full bench when working on one adapter.
 *
 *   node src/pair.mjs raw-axios,axios [rounds] [windowMs]
 */
import http from "node:http"
import { Agent, setGlobalDispatcher } from "undici"
import { closedLoop, median, roundOrder, startChild, summarize } from "./lib.mjs"
import { byId } from "./systems.mjs"

setGlobalDispatcher(new Agent({ connections: 64 }))
http.globalAgent.maxSockets = 64
const ids = (process.argv[2] ?? "raw-fetch,core").split(",")
const rounds = Number(process.argv[3] ?? 15)
const windowMs = Number(process.argv[4] ?? 750)
const server = await startChild("./server.mjs")
const env = { tokenUrl: `${server.url}/token`, apiBase: `${server.url}/api` }
const path = "/v1/consumers/12345"
const instances = {}
for (const id of ids) instances[id] = await byId(id).make(env, `pair-${id}`)
const results = Object.fromEntries(ids.map((id) => [id, []]))
for (let r = 0; r <= rounds; r++) {
  for (const id of roundOrder(ids, r)) {
    const x = await closedLoop(() => instances[id].get(path), 32, windowMs)
    if (r > 0) results[id].push(x)
  }
}
const [first] = ids
console.log(
  `| system | req/s | ÷ ${first} (paired) | CPU µs/req | CPU ÷ ${first} |\n| --- | --- | --- | --- | --- |`
)
for (const id of ids) {
  const rps = summarize(results[id].map((x) => x.rps))
  const cpu = summarize(results[id].map((x) => x.cpuPerRequest))
  const ratios = summarize(results[id].map((x, i) => x.rps / results[first][i].rps))
  const cpuRatio = median(results[id].map((x, i) => x.cpuPerRequest / results[first][i].cpuPerRequest))
  console.log(
    `| ${id} | ${Math.round(rps.value)} (${Math.round(rps.min)}–${Math.round(rps.max)}) | ${ratios.value.toFixed(2)} (${ratios.min.toFixed(2)}–${ratios.max.toFixed(2)}) | ${Math.round(cpu.value)} | ${cpuRatio.toFixed(2)} |`
  )
}
for (const id of ids) await instances[id].close()
await server.close()
process.exit()
