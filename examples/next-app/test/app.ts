/**
 * Running the built app: `next start` on 127.0.0.1 and a free port, with the
 * WEX (and WealthCare) variables pointing at local sandboxes; raw HTTP
 * requests (the path sent byte for byte, no client-side normalisation).
 */
import { type ChildProcess, spawn } from "node:child_process"
import { readFileSync, writeFileSync } from "node:fs"
import { connect, createServer } from "node:net"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

export const APP_DIR = join(dirname(fileURLToPath(import.meta.url)), "..")
export const NEXT_BIN = join(APP_DIR, "node_modules", "next", "dist", "bin", "next")

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.on("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })

export interface App {
  readonly url: string
  readonly port: number
  readonly pid: number
  readonly output: () => string
  stop(): Promise<void>
}

/** The app's environment, or a function of its origin (the sign-in's redirect URI is on it). */
export type AppEnv = Record<string, string> | ((url: string) => Record<string, string>)

export const startApp = async (
  appEnv: AppEnv,
  { dir = APP_DIR, command = "start" }: { dir?: string; command?: "start" | "dev" } = {}
): Promise<App> => {
  const port = await freePort()
  const env = typeof appEnv === "function" ? appEnv(`http://127.0.0.1:${port}`) : appEnv
  const child: ChildProcess = spawn(
    process.execPath,
    [NEXT_BIN, command, "-H", "127.0.0.1", "-p", String(port)],
    {
      cwd: dir,
      // No Redis unless a test asks for it (a developer's own REDIS_URL must not leak in).
      env: { ...process.env, NEXT_TELEMETRY_DISABLED: "1", REDIS_URL: "", TOKEN_ENCRYPTION_KEYS: "", ...env },
      stdio: ["ignore", "pipe", "pipe"],
      detached: true
    }
  )
  let output = ""
  child.stdout!.on("data", (chunk) => (output += chunk))
  child.stderr!.on("data", (chunk) => (output += chunk))
  const url = `http://127.0.0.1:${port}`
  const deadline = Date.now() + 30_000
  for (;;) {
    if (child.exitCode !== null) throw new Error(`next start exited (${child.exitCode}):\n${output}`)
    try {
      const res = await fetch(`${url}/favicon.ico`)
      await res.body?.cancel()
      break
    } catch {
      if (Date.now() > deadline) throw new Error(`next start did not answer:\n${output}`)
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }
  return {
    url,
    port,
    pid: child.pid!,
    output: () => output,
    stop: async () => {
      if (child.exitCode !== null) return
      const exited = new Promise((resolve) => child.once("exit", resolve))
      // Its own process group (detached): the server and anything it started, nothing else.
      process.kill(-child.pid!, "SIGTERM")
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5000))])
      if (child.exitCode === null) process.kill(-child.pid!, "SIGKILL")
    }
  }
}

export interface RawResponse {
  readonly status: number
  readonly headers: Record<string, string>
  readonly body: string
}

/** One request over a fresh socket, its target sent exactly as given. */
export const rawHttp = (
  port: number,
  target: string,
  { method = "GET", headers = {} }: { method?: string; headers?: Record<string, string> } = {}
) =>
  new Promise<RawResponse>((resolve, reject) => {
    const socket = connect(port, "127.0.0.1", () => {
      const lines = [`${method} ${target} HTTP/1.1`, `Host: 127.0.0.1:${port}`, "Connection: close"]
      for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`)
      socket.write(`${lines.join("\r\n")}\r\n\r\n`, "latin1")
    })
    const chunks: Array<Buffer> = []
    socket.on("data", (chunk) => chunks.push(chunk))
    socket.on("error", reject)
    socket.setTimeout(20_000, () => socket.destroy(new Error(`no answer to ${JSON.stringify(target)}`)))
    socket.on("end", () => resolve(parseRaw(Buffer.concat(chunks).toString("latin1"))))
  })

/** An HTTP/1.1 response as text: status, lower-cased headers, body (de-chunked). */
export const parseRaw = (text: string): RawResponse => {
  const split = text.indexOf("\r\n\r\n")
  const head = split === -1 ? text : text.slice(0, split)
  let body = split === -1 ? "" : text.slice(split + 4)
  const [statusLine = "", ...headerLines] = head.split("\r\n")
  const headers: Record<string, string> = {}
  for (const line of headerLines) {
    const colon = line.indexOf(":")
    if (colon > 0) headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim()
  }
  if (headers["transfer-encoding"] === "chunked") body = dechunk(body)
  return { status: Number(statusLine.split(" ")[1]), headers, body }
}

const dechunk = (text: string): string => {
  let out = ""
  let rest = text
  for (;;) {
    const eol = rest.indexOf("\r\n")
    if (eol === -1) return out
    const size = Number.parseInt(rest.slice(0, eol), 16)
    if (!(size > 0)) return out
    out += rest.slice(eol + 2, eol + 2 + size)
    rest = rest.slice(eol + 2 + size + 2)
  }
}

/** Peak resident memory of a process since the last reset, in bytes (Linux). */
export const peakRss = (pid: number): number => {
  const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))
  return match ? Number(match[1]) * 1024 : Number.NaN
}

export const residentRss = (pid: number): number => {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))
  return match ? Number(match[1]) * 1024 : Number.NaN
}

/** Resets the peak resident memory of a process (`VmHWM`) to its current size (Linux, own processes). */
export const resetPeakRss = (pid: number): void => {
  writeFileSync(`/proc/${pid}/clear_refs`, "5")
}
