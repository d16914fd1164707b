/**
 * Instances of an app with signed-in users as real OS processes: forks of
 * `sessionWorker.ts` (run by this very Node, which strips the types), each
 * with its own Redis store and `createUserSessions`, driven over IPC. Workers
 * die with the test, as `fleet.ts`'s do.
 */
import { type ChildProcess, fork } from "node:child_process"
import { once } from "node:events"
import { fileURLToPath } from "node:url"
import type { StoreEvent } from "../../src/index.ts"
import type { SessionCommand, SessionWorkerConfig, SessionWorkerMessage } from "./sessionWorker.ts"

export type { SessionWorkerConfig, TokenAnswer } from "./sessionWorker.ts"

const WORKER = fileURLToPath(new URL("./sessionWorker.ts", import.meta.url))

export interface SessionWorker extends AsyncDisposable {
  readonly process: ChildProcess
  readonly events: Array<StoreEvent>
  request<A>(command: SessionCommand): Promise<A>
  /** closes the worker (kills it if it does not exit) */
  stop(): Promise<void>
}

const live = new Set<ChildProcess>()
process.on("exit", () => {
  for (const child of live) child.kill("SIGKILL")
})

export const startSessionWorker = (config: SessionWorkerConfig): Promise<SessionWorker> => {
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
  const events: Array<StoreEvent> = []
  const exited = () => child.exitCode !== null || child.signalCode !== null
  const died = () => new Error(`session worker exited (${child.exitCode ?? child.signalCode}): ${output}`)
  child.on("exit", () => {
    live.delete(child)
    for (const { reject } of pending.values()) reject(died())
    pending.clear()
  })
  const request = <A>(command: SessionCommand) =>
    new Promise<A>((resolve, reject) => {
      if (exited() || !child.connected) return reject(died())
      const id = ++nextId
      pending.set(id, { resolve: resolve as (value: unknown) => void, reject })
      child.send({ id, ...command })
    })
  const stop = async () => {
    if (exited()) return
    const gone = once(child, "exit")
    const timer = setTimeout(() => child.kill("SIGKILL"), 5_000)
    await request({ op: "close" }).catch(() => child.kill("SIGKILL"))
    await gone
    clearTimeout(timer)
  }
  const worker: SessionWorker = { process: child, events, request, stop, [Symbol.asyncDispose]: stop }
  return new Promise<SessionWorker>((resolve, reject) => {
    child.on("message", (message: SessionWorkerMessage) => {
      if (message.type === "ready") resolve(worker)
      else if (message.type === "event") events.push(message.event)
      else if (message.type === "reply") {
        const waiting = pending.get(message.id)
        pending.delete(message.id)
        if (message.error === undefined) waiting?.resolve(message.value)
        else waiting?.reject(new Error(`session worker: ${message.error}`))
      }
    })
    child.once("exit", () => reject(died()))
  })
}
