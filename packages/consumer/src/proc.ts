/**
 * Child processes for the consumer test: a command run to its end with a timeout, and a server run
 * until it is ready, then stopped. Every child gets its own process group, so that a timeout or a
 * stop also ends whatever it started.
 */
import { type ChildProcess, spawn } from "node:child_process"

export interface Result {
  readonly command: string
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
  readonly timedOut: boolean
  readonly millis: number
}

export interface RunOptions {
  readonly cwd: string
  readonly env: NodeJS.ProcessEnv
  readonly timeoutMs: number
}

/** What a child printed, at most this much of each stream (the end is kept). */
const MAX_OUTPUT = 200_000

const keepTail = (text: string) => (text.length > MAX_OUTPUT ? `...${text.slice(-MAX_OUTPUT)}` : text)

const killGroup = (child: ChildProcess, signal: NodeJS.Signals) => {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return
  try {
    process.kill(-child.pid, signal)
  } catch {
    try {
      child.kill(signal)
    } catch {
      // already gone
    }
  }
}

/** Children still running: ended with their process group when this process exits. */
const live = new Set<ChildProcess>()

/** Kills every child still running (and what it started). Also done when this process exits. */
export const killAll = (): void => {
  for (const child of live) killGroup(child, "SIGKILL")
}
process.on("exit", killAll)

const track = <C extends ChildProcess>(child: C): C => {
  live.add(child)
  child.on("close", () => live.delete(child))
  return child
}

const describe = (command: string, args: ReadonlyArray<string>) => [command, ...args].join(" ")

/** Runs `command args` to its end; after `timeoutMs` the process group is killed (`timedOut`). */
export const run = (command: string, args: ReadonlyArray<string>, options: RunOptions): Promise<Result> =>
  new Promise((resolve) => {
    const started = Date.now()
    const child = track(
      spawn(command, args, {
        cwd: options.cwd,
        env: options.env,
        stdio: ["ignore", "pipe", "pipe"],
        detached: true
      })
    )
    let stdout = ""
    let stderr = ""
    let timedOut = false
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      stdout = keepTail(stdout + chunk)
    })
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      stderr = keepTail(stderr + chunk)
    })
    const timer = setTimeout(() => {
      timedOut = true
      killGroup(child, "SIGKILL")
    }, options.timeoutMs)
    const finish = (code: number | null, signal: NodeJS.Signals | null, error?: Error) => {
      clearTimeout(timer)
      resolve({
        command: describe(command, args),
        code,
        signal,
        stdout,
        stderr: error === undefined ? stderr : `${stderr}\n${String(error)}`,
        timedOut,
        millis: Date.now() - started
      })
    }
    child.on("error", (error) => finish(null, null, error))
    child.on("close", (code, signal) => finish(code, signal))
  })

export interface ServeResult extends Result {
  /** how it became ready: a "listening" line, or 3 s up without exiting; null: it never did */
  readonly ready: "listening" | "stayed up" | null
}

/**
 * Starts `command args` as a server: ready when a line of its output contains "listening"
 * (case-insensitive), or when it has stayed up `upMs` without exiting. Then it is stopped (SIGTERM,
 * SIGKILL after 5 s). A server that exits before it is ready is not ready (`ready: null`).
 */
export const serve = (
  command: string,
  args: ReadonlyArray<string>,
  options: RunOptions & { readonly upMs: number }
): Promise<ServeResult> =>
  new Promise((resolve) => {
    const started = Date.now()
    const child = track(
      spawn(command, args, {
        cwd: options.cwd,
        env: options.env,
        stdio: ["ignore", "pipe", "pipe"],
        detached: true
      })
    )
    let stdout = ""
    let stderr = ""
    let ready: ServeResult["ready"] = null
    let timedOut = false
    const stop = (how: ServeResult["ready"]) => {
      if (ready !== null || child.exitCode !== null || child.signalCode !== null) return
      ready = how
      clearTimeout(upTimer)
      killGroup(child, "SIGTERM")
      setTimeout(() => killGroup(child, "SIGKILL"), 5_000).unref()
    }
    const watch = (text: string) => {
      if (/listening/i.test(text)) stop("listening")
    }
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      stdout = keepTail(stdout + chunk)
      watch(stdout)
    })
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      stderr = keepTail(stderr + chunk)
      watch(stderr)
    })
    const upTimer = setTimeout(() => stop("stayed up"), options.upMs)
    const timer = setTimeout(() => {
      timedOut = true
      killGroup(child, "SIGKILL")
    }, options.timeoutMs)
    const finish = (code: number | null, signal: NodeJS.Signals | null, error?: Error) => {
      clearTimeout(timer)
      clearTimeout(upTimer)
      resolve({
        command: describe(command, args),
        code,
        signal,
        stdout,
        stderr: error === undefined ? stderr : `${stderr}\n${String(error)}`,
        timedOut,
        millis: Date.now() - started,
        ready
      })
    }
    child.on("error", (error) => finish(null, null, error))
    child.on("close", (code, signal) => finish(code, signal))
  })

/** A result for an assertion message: the command, how it ended, and what it printed. */
export const report = (result: Result): string =>
  [
    `$ ${result.command}`,
    `(${result.timedOut ? "killed after the timeout" : `exit code ${result.code}${result.signal ? `, signal ${result.signal}` : ""}`}, ${result.millis} ms)`,
    result.stdout.trim() === "" ? "" : `stdout:\n${result.stdout.trimEnd()}`,
    result.stderr.trim() === "" ? "" : `stderr:\n${result.stderr.trimEnd()}`
  ]
    .filter((line) => line !== "")
    .join("\n")
