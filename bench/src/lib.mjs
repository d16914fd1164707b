/**
 * Shared pieces: child processes with an IPC control channel, statistics,
 * load loops, configuration from the environment.
 */
import { fork } from "node:child_process"
import { fileURLToPath } from "node:url"

export const QUICK = process.env.BENCH_QUICK === "1"

/** A number from the environment, else the quick or the full default. */
export const num = (name, full, quick) => {
  const raw = process.env[name]
  if (raw !== undefined && raw !== "") {
    const value = Number(raw)
    if (!Number.isFinite(value)) throw new Error(`${name} must be a number, got ${raw}`)
    return value
  }
  return QUICK ? quick : full
}

/** Starts `script` (next to this file) in its own Node process; resolves once it says ready. */
export const startChild = (script, execArgv = []) =>
  new Promise((resolve, reject) => {
    const child = fork(fileURLToPath(new URL(script, import.meta.url)), [], {
      execArgv,
      stdio: ["ignore", "inherit", "inherit", "ipc"]
    })
    let nextId = 0
    const pending = new Map()
    child.on("message", (message) => {
      if (message.ready) {
        resolve({
          url: message.url,
          pid: child.pid,
          call: (cmd, extra = {}) =>
            new Promise((res) => {
              const id = ++nextId
              pending.set(id, res)
              child.send({ id, cmd, ...extra })
            }),
          close: async () => {
            if (!child.connected) return
            const id = ++nextId
            const done = new Promise((res) => pending.set(id, res))
            child.send({ id, cmd: "close" })
            await Promise.race([done, new Promise((res) => setTimeout(res, 2000))])
            if (child.exitCode === null) child.kill("SIGTERM")
          }
        })
        return
      }
      const callback = pending.get(message.id)
      if (callback) {
        pending.delete(message.id)
        callback(message.value)
      }
    })
    child.once("error", reject)
    child.once("exit", (code) => {
      if (code !== 0 && code !== null) reject(new Error(`${script} exited with ${code}`))
    })
  })

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

export const median = (values) => quantile(values, 0.5)

/** Linear-interpolated quantile of finite numbers (NaN for none). */
export const quantile = (values, q) => {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b)
  if (sorted.length === 0) return Number.NaN
  const pos = (sorted.length - 1) * q
  const lo = Math.floor(pos)
  const hi = Math.ceil(pos)
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo)
}

/** `{ value: median, min, max, n }` of per-round figures. */
export const summarize = (values) => {
  const finite = values.filter((v) => Number.isFinite(v))
  return {
    value: median(finite),
    min: finite.length ? Math.min(...finite) : Number.NaN,
    max: finite.length ? Math.max(...finite) : Number.NaN,
    n: finite.length
  }
}

/** Round `r`'s order: the list rotated by `r`, reversed on odd rounds (no system is always first). */
export const roundOrder = (items, r) => {
  const k = r % items.length
  const rotated = [...items.slice(k), ...items.slice(0, k)]
  return r % 2 === 1 ? rotated.reverse() : rotated
}

/** CPU time of this process in microseconds (user + system). */
export const cpuMicros = () => {
  const { user, system } = process.cpuUsage()
  return user + system
}

export const nowNs = () => Number(process.hrtime.bigint())

/**
 * Closed loop: `concurrency` workers call `fn` back to back for `durationMs`.
 * Returns requests, failures (status other than 200 or a throw), requests/s
 * and client CPU microseconds per request; with `{ latency: true }` also the
 * 50th and 99th percentile of the requests' durations in milliseconds.
 */
export const closedLoop = async (fn, concurrency, durationMs, { latency = false } = {}) => {
  let requests = 0
  let failures = 0
  const durations = []
  const cpu0 = cpuMicros()
  const t0 = performance.now()
  const end = t0 + durationMs
  const worker = async () => {
    while (performance.now() < end) {
      const start = latency ? performance.now() : 0
      const result = await fn()
      if (latency) durations.push(performance.now() - start)
      requests++
      if (result.status !== 200) failures++
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
  const elapsed = performance.now() - t0
  const cpu = cpuMicros() - cpu0
  const figures = { requests, failures, rps: (requests * 1000) / elapsed, cpuPerRequest: cpu / requests }
  return latency ? { ...figures, p50: quantile(durations, 0.5), p99: quantile(durations, 0.99) } : figures
}

/** `count` requests with at most `concurrency` in flight. */
export const fixedCount = async (fn, count, concurrency) => {
  let started = 0
  let failures = 0
  const worker = async () => {
    while (started < count) {
      started++
      const result = await fn()
      if (result.status !== 200) failures++
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker))
  return { failures }
}

/** `n` requests started at once; resolves with their results. */
export const burst = (fn, n) => Promise.all(Array.from({ length: n }, () => fn()))

/** The client secret the bench's token servers accept from any client id. */
export const SECRET = "bench-secret"

/**
 * A token by hand: one client-credentials POST (what the raw floors and the
 * plain proxies use). Throws on a non-2xx answer unless `checkStatus` is false.
 */
export const tokenByHand = async (tokenUrl, clientId, { checkStatus = true } = {}) => {
  const res = await fetch(tokenUrl, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "client_credentials",
      client_id: clientId,
      client_secret: SECRET
    })
  })
  if (checkStatus && !res.ok) throw new Error(`token request failed: ${res.status}`)
  return (await res.json()).access_token
}
