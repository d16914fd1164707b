/**
 * A `redis-server` of the bench's own (Debian's package): a free loopback
 * port, no persistence (`--save "" --appendonly no`), killed at the end. Never
 * a system service. `command(...)` sends one command over a connection of its
 * own (a few lines of RESP, so the bench needs no Redis client): `INFO stats`
 * for the number of commands Redis processed, `PING` for a round trip
 * (`connectRedis`, also used by the fleet's instances).
 */
import { spawn } from "node:child_process"
import { once } from "node:events"
import { connect, createServer } from "node:net"

const freePort = async () => {
  const server = createServer().listen(0, "127.0.0.1")
  await once(server, "listening")
  const { port } = server.address()
  server.close()
  await once(server, "close")
  return port
}

const launch = (port) =>
  new Promise((resolve, reject) => {
    const child = spawn(
      "redis-server",
      ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
      { stdio: ["ignore", "pipe", "pipe"] }
    )
    let output = ""
    child.stdout.on("data", (chunk) => {
      output += chunk
      if (output.includes("Ready to accept connections")) resolve(child)
    })
    child.stderr.resume()
    child.once("error", (error) =>
      reject(new Error(`redis-server could not start (apt-get install redis-server): ${error.message}`))
    )
    child.once("exit", (code) => reject(new Error(`redis-server exited (${code}): ${output.slice(-300)}`)))
  })

/** The end of one RESP reply in `text` (simple string, error, integer or bulk string), or -1. */
const replyEnd = (text) => {
  const line = text.indexOf("\r\n")
  if (line < 0) return -1
  if (text[0] !== "$") return line + 2
  const length = Number(text.slice(1, line))
  if (length < 0) return line + 2
  const end = line + 2 + length + 2
  return text.length >= end ? end : -1
}

/**
 * A connection of its own to the Redis at `port` on 127.0.0.1: `command(...args)`
 * resolves to the reply as text (simple strings, integers and bulk strings;
 * enough for `INFO` and `PING`), one command at a time.
 */
export const connectRedis = async (port) => {
  const socket = connect(port, "127.0.0.1")
  await once(socket, "connect")
  socket.setNoDelay(true)
  let queue = Promise.resolve()
  const command = (...args) => {
    const run = () =>
      new Promise((resolve, reject) => {
        let text = ""
        const onData = (chunk) => {
          text += chunk.toString("latin1")
          const end = replyEnd(text)
          if (end < 0) return
          socket.off("data", onData)
          socket.off("error", reject)
          if (text[0] === "-") reject(new Error(text.slice(1, text.indexOf("\r\n"))))
          else
            resolve(text[0] === "$" ? text.slice(text.indexOf("\r\n") + 2, end - 2) : text.slice(1, end - 2))
        }
        socket.on("data", onData)
        socket.once("error", reject)
        socket.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join("")}`)
      })
    const result = queue.then(run)
    queue = result.catch(() => {})
    return result
  }
  /** The median of `n` PING round trips, in ms. */
  const ping = async (n = 21) => {
    const times = []
    for (let i = 0; i < n; i++) {
      const t0 = performance.now()
      await command("PING")
      times.push(performance.now() - t0)
    }
    times.sort((a, b) => a - b)
    return times[Math.floor(times.length / 2)]
  }
  return { command, ping, close: () => socket.destroy() }
}

/** Starts the server; resolves to `{ url, port, command(...args), ping(), commandsProcessed(), stop() }`. */
export const startRedisServer = async () => {
  let child
  let port
  for (let tries = 0; child === undefined; tries++) {
    port = await freePort()
    try {
      child = await launch(port)
    } catch (error) {
      if (tries >= 4) throw error
    }
  }
  // One connection for the bench's own commands.
  const connection = await connectRedis(port)
  const { command } = connection
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    command,
    ping: connection.ping,
    /** Commands Redis has processed so far (`INFO stats`, `total_commands_processed`; counts INFO itself). */
    commandsProcessed: async () =>
      Number(/total_commands_processed:(\d+)/.exec(await command("INFO", "stats"))?.[1]),
    stop: async () => {
      connection.close()
      if (child.exitCode !== null || child.signalCode !== null) return
      const exited = once(child, "exit")
      child.kill("SIGKILL")
      await exited
    }
  }
}
