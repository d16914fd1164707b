/**
 * The example's second test: several instances of this server, each its own
 * OS process (`node src/server.ts`), on one Redis and one sandbox, as they
 * would run behind a load balancer. Starts its own `redis-server` (loopback,
 * a free port, no persistence; Debian's package) and the sandbox, points every
 * instance at both with the variables a deployment sets (`WEX_*`, `REDIS_URL`,
 * `TOKEN_ENCRYPTION_KEYS`), and counts the token requests the sandbox sees.
 * Exits non-zero if any check fails.
 *
 *   node src/fleet.ts
 */
import { type ChildProcess, spawn } from "node:child_process"
import { randomBytes } from "node:crypto"
import { once } from "node:events"
import { createServer } from "node:net"
import { fileURLToPath } from "node:url"
import { DEFAULT_CLIENT, startSandbox } from "@authfetch/sandbox"
import { checks } from "./checks.ts"

const SERVER = fileURLToPath(new URL("./server.ts", import.meta.url))

const freePort = async (): Promise<number> => {
  const server = createServer().listen(0, "127.0.0.1")
  await once(server, "listening")
  const { port } = server.address() as { port: number }
  server.close()
  await once(server, "close")
  return port
}

/** A `redis-server` of our own: no persistence, loopback only, killed at the end. */
const startRedis = async (): Promise<{ url: string; stop(): Promise<void> }> => {
  const port = await freePort()
  const child = spawn(
    "redis-server",
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
    { stdio: ["ignore", "pipe", "pipe"] }
  )
  let output = ""
  await new Promise<void>((resolve, reject) => {
    child.stdout.on("data", (chunk: Buffer) => {
      output += chunk
      if (output.includes("Ready to accept connections")) resolve()
    })
    child.once("error", (error) =>
      reject(new Error(`redis-server could not start (apt-get install redis-server): ${error.message}`))
    )
    child.once("exit", (code) => reject(new Error(`redis-server exited (${code}): ${output.slice(-300)}`)))
  })
  return {
    url: `redis://127.0.0.1:${port}`,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return
      const exited = once(child, "exit")
      child.kill("SIGKILL")
      await exited
    }
  }
}

interface Instance {
  readonly url: string
  readonly output: () => string
  /** SIGTERM, as an orchestrator stops a pod; resolves with the exit code */
  stop(): Promise<number | null>
}

const children = new Set<ChildProcess>()

/** Runs `node src/server.ts` with `env`; resolves with its exit code and output if it exits first. */
const launch = (env: Record<string, string>) => {
  const child = spawn(process.execPath, [SERVER], {
    env: { PATH: process.env.PATH ?? "", PORT: "0", HOST: "127.0.0.1", ...env },
    stdio: ["ignore", "pipe", "pipe"]
  })
  children.add(child)
  child.once("exit", () => children.delete(child))
  let output = ""
  child.stdout.on("data", (chunk: Buffer) => (output += chunk))
  child.stderr.on("data", (chunk: Buffer) => (output += chunk))
  return { child, output: () => output }
}

const startInstance = async (env: Record<string, string>): Promise<Instance> => {
  const { child, output } = launch(env)
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no start within 15 s:\n${output()}`)), 15_000)
    const onData = () => {
      const match = /express-bff on (http:\/\/[^\s,]+),/.exec(output())
      if (match === null) return
      clearTimeout(timer)
      child.stdout.off("data", onData)
      resolve(match[1]!)
    }
    child.stdout.on("data", onData)
    child.once("exit", (code) => {
      clearTimeout(timer)
      reject(new Error(`exited (${code}):\n${output()}`))
    })
  })
  return {
    url,
    output,
    stop: async () => {
      if (child.exitCode !== null) return child.exitCode
      const exited = once(child, "exit")
      child.kill("SIGTERM")
      const timer = setTimeout(() => child.kill("SIGKILL"), 5_000)
      await exited
      clearTimeout(timer)
      return child.exitCode
    }
  }
}

/** Runs the server expecting it to refuse to start; resolves with its exit code and output. */
const refused = async (env: Record<string, string>) => {
  const { child, output } = launch(env)
  const timer = setTimeout(() => child.kill("SIGKILL"), 15_000)
  const [code] = (await once(child, "exit")) as [number | null]
  clearTimeout(timer)
  return { code, output: output() }
}

const { check, expect, counts, exitCode } = checks()

/** `n` proxied reads and one summary through `instance`, all at once; the statuses. */
const traffic = (instance: Instance, n: number) =>
  Promise.all([
    ...Array.from({ length: n }, (_, i) =>
      fetch(`${instance.url}/api/benefits/v1/consumers/${10_000 + i}`).then(async (res) => {
        await res.arrayBuffer()
        return res.status
      })
    ),
    fetch(`${instance.url}/api/summary/12345`).then(async (res) => {
      await res.arrayBuffer()
      return res.status
    })
  ])

const startedAt = performance.now()
const redis = await startRedis()
const sandbox = await startSandbox({ profile: "wex" })
const key = randomBytes(32).toString("base64")
const fleetEnv = {
  WEX_CLIENT_ID: DEFAULT_CLIENT.clientId,
  WEX_CLIENT_SECRET: DEFAULT_CLIENT.clientSecret,
  WEX_TOKEN_URL: sandbox.tokenUrl,
  WEX_BASE_URL: sandbox.baseUrl,
  REDIS_URL: redis.url,
  TOKEN_ENCRYPTION_KEYS: key
}
const instances: Array<Instance> = []
console.log(`express-bff fleet: redis-server at ${redis.url}, sandbox at ${sandbox.url}`)

try {
  await check("two instances (two processes) start on the shared Redis store", async () => {
    instances.push(...(await Promise.all([startInstance(fleetEnv), startInstance(fleetEnv)])))
    for (const instance of instances) {
      expect(instance.output().includes("tokens shared through Redis"), instance.output())
    }
  })

  await check(
    "cold, both at once: 2 × (20 proxied calls + a summary) → all 200, 1 token request between them",
    async () => {
      expect(instances.length === 2, "the instances did not start")
      const statuses = (await Promise.all(instances.map((instance) => traffic(instance, 20)))).flat()
      expect(
        statuses.every((status) => status === 200),
        `statuses ${statuses.join(",")}`
      )
      const { total } = sandbox.stats().tokenRequests
      expect(total === 1, `${total} token requests`)
    }
  )

  await check("after revokeAll(): calls through both → all 200, 1 new token for the fleet", async () => {
    expect(instances.length === 2, "the instances did not start")
    const before = sandbox.stats().tokenRequests.total
    sandbox.revokeAll()
    const statuses = (await Promise.all(instances.map((instance) => traffic(instance, 10)))).flat()
    expect(
      statuses.every((status) => status === 200),
      `statuses ${statuses.join(",")}`
    )
    const made = sandbox.stats().tokenRequests.total - before
    expect(made === 1, `${made} token requests`)
  })

  await check("a third instance started later serves with the fleet's token: no token request", async () => {
    const before = sandbox.stats().tokenRequests.total
    const late = await startInstance(fleetEnv)
    instances.push(late)
    const statuses = await traffic(late, 5)
    expect(
      statuses.every((status) => status === 200),
      `statuses ${statuses.join(",")}`
    )
    const made = sandbox.stats().tokenRequests.total - before
    expect(made === 0, `${made} token requests`)
  })

  await check("SIGTERM: every instance disposes its token source, closes the store and exits 0", async () => {
    const codes = await Promise.all(instances.splice(0).map((instance) => instance.stop()))
    expect(
      codes.every((code) => code === 0),
      `exit codes ${codes.join(",")}`
    )
  })

  await check("REDIS_URL without TOKEN_ENCRYPTION_KEYS: refused at start, naming the variable", async () => {
    const { code, output } = await refused({ REDIS_URL: redis.url })
    expect(code === 1, `exit code ${code}`)
    expect(output.includes("TOKEN_ENCRYPTION_KEYS is required"), output)
    expect(!output.includes("    at "), `a stack trace:\n${output}`)
  })

  await check("a key that is not 32 bytes: refused at start, the key never printed", async () => {
    const bad = `not-a-key-${randomBytes(6).toString("hex")}`
    const { code, output } = await refused({ REDIS_URL: redis.url, TOKEN_ENCRYPTION_KEYS: `${key},${bad}` })
    expect(code === 1, `exit code ${code}`)
    expect(output.includes("TOKEN_ENCRYPTION_KEYS: encryptionKeys[1] is not 32 bytes"), output)
    expect(!output.includes(bad) && !output.includes(key), `a key in the output:\n${output}`)
  })
} finally {
  for (const child of children) child.kill("SIGKILL")
  await sandbox.close()
  await redis.stop()
}

console.log(
  `\nexpress-bff fleet: ${counts.passed} passed, ${counts.failed} failed (${((performance.now() - startedAt) / 1000).toFixed(1)} s)`
)
process.exit(exitCode())
