/**
 * A real `redis-server` for one test file: its own process on a free loopback
 * port, no persistence, stopped at the end. Faults are real: `kill` (SIGKILL),
 * `pause`/`resume` (SIGSTOP/SIGCONT), `restart` on the same port.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { once } from "node:events"
import { createServer } from "node:net"

export interface RedisServer {
  readonly port: number
  readonly url: string
  /** SIGKILL: the process dies with its data (nothing is persisted) */
  kill(): Promise<void>
  /** starts again on the same port, empty */
  restart(): Promise<void>
  /** SIGSTOP: connections stay open, nothing answers */
  pause(): void
  /** SIGCONT */
  resume(): void
  stop(): Promise<void>
  [Symbol.asyncDispose](): Promise<void>
}

const freePort = async (): Promise<number> => {
  const server = createServer()
  server.listen(0, "127.0.0.1")
  await once(server, "listening")
  const address = server.address()
  const port = typeof address === "object" && address !== null ? address.port : 0
  server.close()
  await once(server, "close")
  return port
}

/** TLS files (PEM paths) to listen with TLS only, on the port. */
export interface TlsFiles {
  readonly cert: string
  readonly key: string
  readonly ca: string
}

const launch = async (port: number, tls?: TlsFiles): Promise<ChildProcess> => {
  const listen = tls
    ? [
        "--port",
        "0",
        "--tls-port",
        String(port),
        "--tls-cert-file",
        tls.cert,
        "--tls-key-file",
        tls.key,
        "--tls-ca-cert-file",
        tls.ca,
        "--tls-auth-clients",
        "no"
      ]
    : ["--port", String(port)]
  const child = spawn(
    "redis-server",
    [...listen, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--protected-mode", "no"],
    { stdio: ["ignore", "pipe", "pipe"] }
  )
  let output = ""
  await new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString()
      if (output.includes("Ready to accept connections")) {
        child.stdout?.off("data", onData)
        resolve()
      }
    }
    child.stdout?.on("data", onData)
    child.once("error", reject)
    child.once("exit", (code) => reject(new Error(`redis-server exited with ${code}: ${output.slice(-500)}`)))
  })
  child.stdout?.resume()
  child.stderr?.resume()
  return child
}

const stopped = async (child: ChildProcess, signal: NodeJS.Signals) => {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = once(child, "exit")
  child.kill(signal)
  await exited
}

/** Starts a `redis-server` (Debian's; `.ci/run` installs it) on a free port (with TLS: `rediss://`). */
export const startRedis = async (options: { readonly tls?: TlsFiles } = {}): Promise<RedisServer> => {
  let port = 0
  let child: ChildProcess | undefined
  for (let tries = 0; child === undefined; tries++) {
    port = await freePort()
    try {
      child = await launch(port, options.tls)
    } catch (error) {
      if (tries >= 4) throw error
    }
  }
  let current = child
  const stop = async () => {
    current.kill("SIGCONT")
    await stopped(current, "SIGKILL")
  }
  return {
    port,
    url: `${options.tls ? "rediss" : "redis"}://127.0.0.1:${port}`,
    kill: () => stopped(current, "SIGKILL"),
    restart: async () => {
      await stopped(current, "SIGKILL")
      current = await launch(port, options.tls)
    },
    pause: () => void current.kill("SIGSTOP"),
    resume: () => void current.kill("SIGCONT"),
    stop,
    [Symbol.asyncDispose]: stop
  }
}

/**
 * Creates the ACL user the README recommends (with `prefix` for its key and
 * channel patterns) through `client`, and returns `url` signed in as it.
 */
export const readmeAclUser = async (
  client: { sendCommand(args: Array<string>): Promise<unknown> },
  url: string,
  prefix: string
): Promise<string> => {
  // the README's line, with the test's prefix for the key and channel patterns
  await client.sendCommand([
    "ACL",
    "SETUSER",
    `u${prefix}`,
    "on",
    ">change-me",
    `~${prefix}:*`,
    `&${prefix}:*`,
    "+@read",
    "+@write",
    "+@scripting",
    "+@pubsub",
    "+ping",
    "+time",
    "-@dangerous"
  ])
  return url.replace("redis://", `redis://u${prefix}:change-me@`)
}
