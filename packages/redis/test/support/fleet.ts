/**
 * A fleet of instances as real OS processes: `size` forks of `fleetWorker.ts`
 * (run by this very Node, which strips the types), each with its own Redis
 * store, token source and `authFetch`, driven over IPC. Their store and token
 * events arrive here as they happen.
 *
 * Workers die with the test: `stop()` (also `await using`) closes them and
 * kills what is left, an `exit` hook kills them if this process ends first,
 * and a worker exits by itself when its IPC channel disconnects (this process
 * crashed).
 */
import { type ChildProcess, fork } from "node:child_process"
import { once } from "node:events"
import { fileURLToPath } from "node:url"
import type { TokenEvent } from "@authfetch/core"
import { createClient } from "@redis/client"
import type { StoreEvent } from "../../src/index.ts"
import { type CallStats, mergeCalls } from "./callStats.ts"
import type { ChurnStats, Command, WorkerConfig, WorkerMessage } from "./fleetWorker.ts"

export type { CallStats, ChurnStats, Secrets, WorkerConfig } from "./fleetWorker.ts"
export { mergeCalls }

const WORKER = fileURLToPath(new URL("./fleetWorker.ts", import.meta.url))

export interface Worker {
  readonly index: number
  readonly process: ChildProcess
  readonly storeEvents: Array<StoreEvent>
  readonly tokenEvents: Array<TokenEvent>
  /** the first failure of each kind (error tag) in this worker, as an example */
  readonly failures: Record<string, string>
  /** sends a command; rejects if the worker answers with an error or dies first */
  request<A>(command: Command): Promise<A>
}

export interface Fleet extends AsyncDisposable {
  readonly workers: ReadonlyArray<Worker>
  /** the same command to every worker, at once; their answers in worker order */
  all<A>(command: Command): Promise<Array<A>>
  /** every worker's `halt` answer, merged */
  halt(): Promise<{ calls: CallStats; churn: ChurnStats }>
  stop(): Promise<void>
}

const live = new Set<ChildProcess>()
process.on("exit", () => {
  for (const child of live) child.kill("SIGKILL")
})

const startWorker = (index: number, config: WorkerConfig): Promise<Worker> => {
  const child = fork(WORKER, [JSON.stringify(config)], {
    execPath: process.execPath,
    execArgv: ["--no-warnings"],
    stdio: ["ignore", "pipe", "pipe", "ipc"]
  })
  live.add(child)
  let output = ""
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-4_000)
  }
  child.stdout?.on("data", keep)
  child.stderr?.on("data", keep)
  const pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>()
  let nextId = 0
  const storeEvents: Array<StoreEvent> = []
  const tokenEvents: Array<TokenEvent> = []
  const died = () =>
    new Error(`fleet worker ${index} exited (${child.exitCode ?? child.signalCode}): ${output}`)
  child.on("exit", () => {
    live.delete(child)
    for (const { reject } of pending.values()) reject(died())
    pending.clear()
  })
  const worker: Worker = {
    index,
    process: child,
    storeEvents,
    tokenEvents,
    failures: {},
    request: <A>(command: Command) =>
      new Promise<A>((resolve, reject) => {
        if (child.exitCode !== null || child.signalCode !== null || !child.connected) return reject(died())
        const id = ++nextId
        pending.set(id, { resolve: resolve as (value: unknown) => void, reject })
        child.send({ id, ...command })
      })
  }
  return new Promise<Worker>((resolve, reject) => {
    child.on("message", (message: WorkerMessage) => {
      if (message.type === "ready") resolve(worker)
      else if (message.type === "event" && message.source === "store") storeEvents.push(message.event)
      else if (message.type === "event" && message.source === "token") tokenEvents.push(message.event)
      else if (message.type === "failure") worker.failures[message.tag] = message.example
      else if (message.type === "reply") {
        const waiting = pending.get(message.id)
        pending.delete(message.id)
        if (message.error === undefined) waiting?.resolve(message.value)
        else waiting?.reject(new Error(`fleet worker ${index}: ${message.error}`))
      }
    })
    child.once("exit", () => reject(died()))
  })
}

export const mergeChurn = (all: ReadonlyArray<ChurnStats>): ChurnStats => {
  const merged: ChurnStats = { admitted: 0, refused: 0, errors: {} }
  for (const stats of all) {
    merged.admitted += stats.admitted
    merged.refused += stats.refused
    for (const [tag, n] of Object.entries(stats.errors)) merged.errors[tag] = (merged.errors[tag] ?? 0) + n
  }
  return merged
}

/**
 * Starts `size` workers with `config` and resolves once every one of them has
 * built its store and been seen by Redis (its heartbeat), so that the fleet is
 * formed before the test acts.
 */
export const startFleet = async (size: number, config: WorkerConfig): Promise<Fleet> => {
  const started = await Promise.allSettled(Array.from({ length: size }, (_, i) => startWorker(i, config)))
  const workers = started.flatMap((result) => (result.status === "fulfilled" ? [result.value] : []))
  let stopped: Promise<void> | undefined
  const stop = () => {
    stopped ??= (async () => {
      await Promise.all(
        workers.map(async ({ process: child, request }) => {
          if (child.exitCode !== null || child.signalCode !== null) return
          const exited = once(child, "exit")
          const timer = setTimeout(() => child.kill("SIGKILL"), 5_000)
          await request({ op: "close" }).catch(() => child.kill("SIGKILL"))
          await exited
          clearTimeout(timer)
        })
      )
    })()
    return stopped
  }
  const failed = started.find((result) => result.status === "rejected")
  if (failed !== undefined) {
    await stop()
    throw (failed as PromiseRejectedResult).reason
  }
  await heartbeats(config, size).catch(async (error) => {
    await stop()
    throw error
  })
  const all = <A>(command: Command) => Promise.all(workers.map((worker) => worker.request<A>(command)))
  return {
    workers,
    all,
    halt: async () => {
      const results = await all<{ calls: CallStats; churn: ChurnStats }>({ op: "halt" })
      return {
        calls: mergeCalls(results.map((result) => result.calls)),
        churn: mergeChurn(results.map((result) => result.churn))
      }
    },
    stop,
    [Symbol.asyncDispose]: stop
  }
}

/** Waits until `size` instances have sent their heartbeat to Redis (the store's `{instances}` set). */
const heartbeats = async (config: WorkerConfig, size: number) => {
  const client = createClient({ url: config.redisUrl })
  client.on("error", () => {})
  await client.connect()
  try {
    const until = Date.now() + 30_000
    while ((await client.zCard(`${config.prefix}:{instances}`)) < size) {
      if (Date.now() > until) throw new Error(`the fleet did not form: fewer than ${size} heartbeats`)
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  } finally {
    client.destroy()
  }
}
