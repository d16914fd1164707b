/**
 * Profiles one system's hot path (default: core authFetch) for `--cpu-prof`:
 *
 *   node --cpu-prof --cpu-prof-dir=/tmp/prof src/profile.mjs core 5000
 *
 * then `node src/profile.mjs --summary /tmp/prof/<file>.cpuprofile` prints
 * self time by function and by package.
 */
import { readFileSync } from "node:fs"
import http from "node:http"
import { Agent, setGlobalDispatcher } from "undici"
import { closedLoop, startChild } from "./lib.mjs"
import { byId } from "./systems.mjs"

if (process.argv[2] === "--summary") {
  const profile = JSON.parse(readFileSync(process.argv[3], "utf8"))
  const self = new Map()
  const byPackage = new Map()
  const dt = new Map()
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i]
    dt.set(id, (dt.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0))
  }
  let total = 0
  for (const node of profile.nodes) {
    const micros = dt.get(node.id) ?? 0
    total += micros
    const { functionName, url, lineNumber } = node.callFrame
    const file = url
      .replace(/^.*node_modules\/(\.pnpm\/[^/]+\/node_modules\/)?/, "")
      .replace(/^file:\/\/\/work\/main\//, "")
    const key = `${functionName || "(anonymous)"} ${file}:${lineNumber + 1}`
    self.set(key, (self.get(key) ?? 0) + micros)
    const pkg =
      url === ""
        ? functionName
        : url.startsWith("node:")
          ? "node internals"
          : (file.match(/^(@[^/]+\/[^/]+|[^/]+)/)?.[1] ?? file)
    byPackage.set(pkg, (byPackage.get(pkg) ?? 0) + micros)
  }
  const top = (map, n) =>
    [...map]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([k, v]) => `${((v / total) * 100).toFixed(1).padStart(5)} %  ${k}`)
  console.log(`by package / area:\n${top(byPackage, 25).join("\n")}`)
  console.log(`\nby function (self):\n${top(self, Number(process.argv[4] ?? 40)).join("\n")}`)
  process.exit()
}

setGlobalDispatcher(new Agent({ connections: 64 }))
http.globalAgent.maxSockets = 64
const id = process.argv[2] ?? "core"
const ms = Number(process.argv[3] ?? 5000)
const server = await startChild("./server.mjs")
const env = { tokenUrl: `${server.url}/token`, apiBase: `${server.url}/api` }
const instance = await byId(id).make(env, `prof-${id}`)
const path = "/v1/consumers/12345"
await closedLoop(() => instance.get(path), 32, 1000)
const result = await closedLoop(() => instance.get(path), 32, ms)
console.log(id, Math.round(result.rps), "req/s", Math.round(result.cpuPerRequest), "µs CPU/req")
await instance.close()
await server.close()
process.exit()
