/**
 * One system of case 5 in a process of its own (forked with `--expose-gc`):
 * every system starts from the same fresh heap and JIT state, so no system
 * inherits another's warm-up or garbage. Told over IPC what to run; answers
 * the heap after each checkpoint, measured after `global.gc()`.
 */
import http from "node:http"
import { Agent, setGlobalDispatcher } from "undici"
import { fixedCount, sleep } from "./lib.mjs"
import { byId } from "./systems.mjs"

const settledHeap = async () => {
  for (let i = 0; i < 4; i++) {
    global.gc()
    await sleep(20)
  }
  return process.memoryUsage().heapUsed
}

process.on("message", async (message) => {
  if (message.cmd === "close") {
    process.send({ id: message.id, value: true })
    process.exit(0)
  }
  if (message.cmd !== "run") return
  const { system, env, path, clientId, warmup, checkpoints, concurrency, connections } = message
  setGlobalDispatcher(new Agent({ connections, keepAliveTimeout: 60_000, keepAliveMaxTimeout: 120_000 }))
  http.globalAgent.maxSockets = connections
  const instance = await byId(system).make(env, clientId)
  let failures = (await fixedCount(() => instance.get(path), warmup, concurrency)).failures
  const heaps = []
  let done = 0
  const t0 = performance.now()
  for (const n of checkpoints) {
    failures += (await fixedCount(() => instance.get(path), n - done, concurrency)).failures
    done = n
    heaps.push(await settledHeap())
  }
  const seconds = (performance.now() - t0) / 1000
  await instance.close()
  process.send({ id: message.id, value: { heaps, failures, seconds } })
})

process.send({ ready: true })
