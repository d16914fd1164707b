/**
 * Profiles case 6's proxy process under load, for `--cpu-prof`: the proxies
 * run in a child started with `--cpu-prof` (and `--conditions=react-server`, as
 * case 6 runs them); this process drives one of them in a closed loop.
 *
 *   node src/profile-proxy.mjs express-auth 5000 /tmp/prof
 *
 * then `node src/profile.mjs --summary /tmp/prof/<file>.cpuprofile`.
 */
import { Agent, setGlobalDispatcher } from "undici"
import { closedLoop, startChild } from "./lib.mjs"

setGlobalDispatcher(new Agent({ connections: 64 }))
const id = process.argv[2] ?? "express-auth"
const ms = Number(process.argv[3] ?? 5000)
const dir = process.argv[4] ?? "/tmp/prof"
const upstream = await startChild("./server.mjs")
await upstream.call("config", { ttlSeconds: 3600, tokenLatencyMs: 0 })
const proxy = await startChild("./proxy-server.mjs", [
  "--conditions=react-server",
  "--cpu-prof",
  `--cpu-prof-dir=${dir}`
])
const { urls } = await proxy.call("start", {
  upstream: `${upstream.url}/api`,
  tokenUrl: `${upstream.url}/token`
})
const url = `${urls[id]}/bff/v1/consumers/12345`
const get = () =>
  fetch(url).then(
    async (res) => {
      await res.json()
      return { status: res.status }
    },
    () => ({ status: 0 })
  )
const warm = await closedLoop(get, 32, 1000)
const cpu0 = await proxy.call("cpu")
const result = await closedLoop(get, 32, ms)
const cpu1 = await proxy.call("cpu")
console.log(
  id,
  Math.round(result.rps),
  "req/s",
  Math.round((cpu1.user + cpu1.system - cpu0.user - cpu0.system) / result.requests),
  "µs proxy CPU/req",
  result.failures,
  "failed;",
  warm.requests + result.requests,
  "requests in the profile"
)
proxy.call("exit")
await new Promise((resolve) => setTimeout(resolve, 1500))
await upstream.close()
process.exit()
