/**
 * The fleet acceptance checks of issue #14: several OS processes, each with
 * its own `redisStore`, token source and `authFetch` (`support/fleet.ts`),
 * behave like one OAuth client against the sandbox (the WEX emulator) through
 * a real redis-server. Each test starts its own redis-server, sandbox and
 * fleet, and stops them.
 *
 * Timing is never asserted tightly: bounds are wide, and whether a call waited
 * for a token is judged by which token it sent (one issued after the call
 * started), not by how long it took.
 */
import { randomBytes } from "node:crypto"
import type { TokenEvent } from "@authfetch/core"
import { type Sandbox, type SandboxEvent, type SandboxOptions, startSandbox } from "@authfetch/sandbox"
import { createClient } from "@redis/client"
import { describe, expect, it } from "vitest"
import type { StoreEvent } from "../src/index.ts"
import {
  type CallStats,
  type Fleet,
  mergeCalls,
  type Secrets,
  startFleet,
  type Worker,
  type WorkerConfig
} from "./support/fleet.ts"
import { type RedisServer, startRedis } from "./support/redisServer.ts"

const KEY = randomBytes(32).toString("base64")
const CLIENT_ID = "sandbox-client"
const SECRET = "sandbox-secret"
const WARMUP = { clientId: "warmup-client", clientSecret: "warmup-secret" }

interface Environment extends AsyncDisposable {
  readonly redis: RedisServer
  readonly sandbox: Sandbox
  readonly config: WorkerConfig
  /** the token requests of the client under test the sandbox saw so far, in order */
  tokenRequests(): Array<SandboxEvent>
  /** a fleet on this Redis and sandbox, stopped with the environment */
  fleet(size: number): Promise<Fleet>
}

/** A redis-server, a sandbox and the fleets of one test, stopped in reverse. */
const environment = async (
  sandboxOptions: Partial<SandboxOptions> = {},
  extra: Partial<WorkerConfig> = {}
): Promise<Environment> => {
  const redis = await startRedis()
  const seen: Array<SandboxEvent> = []
  const sandbox = await startSandbox({
    profile: "wex",
    clients: [{ clientId: CLIENT_ID, clientSecret: SECRET }, WARMUP],
    ...sandboxOptions,
    onEvent: (event) => {
      if (event.kind === "token" && event.clientId === CLIENT_ID) seen.push(event)
    }
  }).catch(async (error) => {
    await redis.stop()
    throw error
  })
  const fleets: Array<Fleet> = []
  const config: WorkerConfig = {
    redisUrl: redis.url,
    encryptionKey: KEY,
    prefix: `fleet${randomBytes(3).toString("hex")}`,
    // the default command deadline (500 ms): a busy process's late timers do not count against it
    pollIntervalMillis: 1_000,
    tokenUrl: sandbox.tokenUrl,
    baseUrl: sandbox.baseUrl,
    clientId: CLIENT_ID,
    clientSecret: SECRET,
    warmupClient: WARMUP,
    ...extra
  }
  return {
    redis,
    sandbox,
    config,
    tokenRequests: () => [...seen],
    fleet: async (size) => {
      const fleet = await startFleet(size, config)
      fleets.push(fleet)
      return fleet
    },
    [Symbol.asyncDispose]: async () => {
      for (const fleet of fleets.reverse()) await fleet.stop()
      await sandbox.close()
      await redis.stop()
    }
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

const eventually = async (
  check: () => boolean | Promise<boolean>,
  timeoutMillis = 20_000,
  context: () => string = () => ""
) => {
  const until = Date.now() + timeoutMillis
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`condition not met in time ${context()}`)
    await sleep(50)
  }
}

type Requested = Extract<TokenEvent, { type: "token_requested" }>
const requestedBy = (workers: ReadonlyArray<Worker>): Array<Requested> =>
  workers
    .flatMap((worker) => worker.tokenEvents)
    .filter((event): event is Requested => event.type === "token_requested")
    .sort((a, b) => a.at - b.at)
const storeEventsOf = (workers: ReadonlyArray<Worker>, type: StoreEvent["type"]) =>
  workers.flatMap((worker) => worker.storeEvents.filter((event) => event.type === type))

const startedAt = (event: SandboxEvent) => Date.parse(event.time)
/** when the sandbox answered: the token exists from then on */
const issuedAt = (event: SandboxEvent) => Date.parse(event.time) + event.durationMs

/** The most requests at `times` within any window of `windowMillis` (the sandbox's sliding window). */
const maxInWindow = (times: ReadonlyArray<number>, windowMillis: number) => {
  const sorted = [...times].sort((a, b) => a - b)
  let most = 0
  for (let last = 0, first = 0; last < sorted.length; last++) {
    while ((sorted[last] as number) - (sorted[first] as number) >= windowMillis) first++
    most = Math.max(most, last - first + 1)
  }
  return most
}

/** What a fleet did, for a failing assertion's reader. */
const summary = (fleet: Fleet, env: Environment) =>
  JSON.stringify({
    tokenRequests: env.tokenRequests().map((e) => [e.time, e.durationMs, e.status, e.tokenFingerprint]),
    workers: fleet.workers.map((worker) => ({
      worker: worker.index,
      store: worker.storeEvents.map(
        (e) =>
          `${e.type}${"operation" in e ? ` ${e.operation} ${e.reason}` : ""} ${new Date(e.at).toISOString()}`
      ),
      token: worker.tokenEvents.map((e) => `${e.type}${"reason" in e ? ` ${e.reason}` : ""}`),
      failures: worker.failures
    }))
  })

describe("8 processes of one client are one client", () => {
  it("cold: 500 concurrent calls in each of 8 processes make exactly 1 token request; none fails", async () => {
    await using env = await environment()
    const fleet = await env.fleet(8)
    // "Cold" is about tokens, not code: the processes first run the same calls as another
    // client. Running them for the first time, 8 processes on 2 cores blocked their event
    // loops for 1-2 s (measured: `maxLoopDelayMs`), past a Redis command's deadline; a
    // process whose `get` timed out that way fell back to its local store and made a token
    // request of its own. That is a load effect on the store's deadline, reported apart.
    await fleet.all({ op: "warmup", count: 500 })
    const calls = mergeCalls(await fleet.all<CallStats>({ op: "burst", count: 500 }))
    expect(calls.failures, summary(fleet, env)).toEqual({})
    expect(calls.ok).toBe(8 * 500)
    expect(
      env.tokenRequests(),
      `${summary(fleet, env)} longest event-loop delay: ${calls.maxLoopDelayMs} ms`
    ).toHaveLength(1)
    expect(requestedBy(fleet.workers).map((event) => event.reason)).toEqual(["initial"])
    // One process requested; the others waited for its lock and took its token.
    expect(new Set(Object.keys(calls.firstUse))).toEqual(new Set([env.tokenRequests()[0]?.tokenFingerprint]))
  }, 180_000)

  it("10 short lifetimes under steady traffic: each token is replaced once, ahead of expiry, and no call waits", async () => {
    const ttlSeconds = 4
    await using env = await environment({ tokenTtl: ttlSeconds })
    const fleet = await env.fleet(8)
    await fleet.all({ op: "burst", count: 1 })
    await fleet.all({ op: "traffic", loops: 2, pauseMs: 25 })
    const trafficStart = Date.now()
    await sleep(10 * ttlSeconds * 1_000)
    const { calls } = await fleet.halt()
    const trafficMillis = Date.now() - trafficStart
    const requests = env.tokenRequests()
    const context = summary(fleet, env)

    expect(calls.failures, context).toEqual({})
    expect(calls.ok).toBeGreaterThan(1_000)
    // Why each request was made: once for the first token, then only ahead of expiry (a
    // caller that found no usable token would have caused "expired").
    const reasons = requestedBy(fleet.workers).map((event) => event.reason)
    expect(reasons[0]).toBe("initial")
    expect(
      reasons.slice(1).every((reason) => reason === "refresh_ahead"),
      context
    ).toBe(true)
    expect(reasons).toHaveLength(requests.length)
    expect(requests.every((request) => request.status === 200)).toBe(true)
    // From the sandbox's timestamps: each token's successor was requested while it was still
    // valid (no lapse), and only one successor per token (a second request in the same
    // lifetime would follow the first within milliseconds; a refresh comes after at least
    // 63% of a lifetime).
    for (let i = 1; i < requests.length; i++) {
      const previous = requests[i - 1] as SandboxEvent
      const next = requests[i] as SandboxEvent
      expect(startedAt(next) - issuedAt(previous), context).toBeGreaterThan(1_000)
      expect(startedAt(next), context).toBeLessThan(issuedAt(previous) + ttlSeconds * 1_000)
    }
    // So at most one request per lifetime covered, plus the first token.
    expect(requests.length).toBeLessThanOrEqual(Math.ceil(trafficMillis / (0.6 * ttlSeconds * 1_000)) + 1)
    expect(requests.length).toBeGreaterThanOrEqual(Math.floor(trafficMillis / (ttlSeconds * 1_000)))
    // No call waited for a token: every token a call sent had been issued before the call
    // started (2 ms for the sandbox's rounding of its timestamps).
    const issued = new Map(requests.map((request) => [request.tokenFingerprint, issuedAt(request)]))
    for (const [print, firstCall] of Object.entries(calls.firstUse)) {
      expect(issued.has(print)).toBe(true)
      expect(firstCall, `a call sent token ${print}, issued after it started`).toBeGreaterThanOrEqual(
        (issued.get(print) as number) - 2
      )
    }
    // and, widely, calls stayed fast
    expect(calls.maxTokenWaitMs).toBeLessThan(5_000)
  }, 180_000)

  it("revocation storm: all 8 processes calling when every token is revoked make 1 token request; none fails", async () => {
    await using env = await environment()
    const fleet = await env.fleet(8)
    await fleet.all({ op: "burst", count: 1 })
    await fleet.all({ op: "traffic", loops: 4, pauseMs: 10 })
    await sleep(1_000)
    const before = env.tokenRequests().length
    const unauthorizedBefore = env.sandbox.stats().apiRequests.byStatus["401"] ?? 0
    env.sandbox.revokeAll()
    await sleep(3_000)
    const { calls } = await fleet.halt()
    const context = summary(fleet, env)
    expect(before).toBe(1)
    expect(calls.failures, context).toEqual({})
    // The storm hit: calls were answered 401, and replayed with the new token.
    expect(env.sandbox.stats().apiRequests.byStatus["401"] ?? 0).toBeGreaterThan(unauthorizedBefore)
    expect(env.tokenRequests().length - before, context).toBe(1)
    const reasons = requestedBy(fleet.workers).map((event) => event.reason)
    expect(reasons, context).toHaveLength(2)
    expect(reasons[0]).toBe("initial")
  }, 120_000)

  it("one budget: 8 processes re-acquiring as fast as they may never exceed 100 token requests per 60 s", async () => {
    await using env = await environment()
    const fleet = await env.fleet(8)
    // Each process loops getToken({ maxWait }) → invalidate: every token is thrown away at
    // once, so the fleet asks for tokens as fast as its shared budget (core's default, 100 per
    // minute) admits them, across the window's boundary.
    await fleet.all({ op: "churn", maxWaitMs: 2_000 })
    await sleep(72_000)
    const { churn } = await fleet.halt()
    const requests = env.tokenRequests()
    const t0 = startedAt(requests[0] as SandboxEvent)
    const context = JSON.stringify({
      churn,
      failures: fleet.workers.map((worker) => worker.failures),
      count: requests.length,
      requests: requests.map((e) => [startedAt(e) - t0, e.durationMs, e.status]),
      requested: requestedBy(fleet.workers).map((e) => [e.at - t0, e.attempt])
    })
    expect(churn.admitted).toBeGreaterThan(100)
    expect(churn.refused).toBeGreaterThan(0)
    // past the first window: the budget was spent, then admitted again as it slid
    expect(requests.length, context).toBeGreaterThan(100)
    expect(maxInWindow(requests.map(startedAt), 60_000), context).toBeLessThanOrEqual(100)
    expect(
      requests.filter((request) => request.status === 429),
      context
    ).toEqual([])
    expect(env.sandbox.stats().tokenRequests.byStatus["429"]).toBeUndefined()
  }, 180_000)
})

describe("Redis failing is not an outage", () => {
  it("Redis killed and restarted, then paused for 5 s: no call fails, and the fleet comes back to Redis", async () => {
    await using env = await environment({}, { commandTimeoutMillis: 500, pollIntervalMillis: 500 })
    const fleet = await env.fleet(8)
    /** whether every worker reported `type` at `since` or later */
    const everyWorker = (type: StoreEvent["type"], since: number) => () =>
      fleet.workers.every((worker) =>
        worker.storeEvents.some((event) => event.type === type && event.at >= since)
      )
    await fleet.all({ op: "burst", count: 1 })
    await fleet.all({ op: "traffic", loops: 2, pauseMs: 20 })
    await sleep(500)

    // Killed, and every token revoked meanwhile: each instance needs Redis (to invalidate, to
    // acquire), finds it gone, and re-acquires on its own (local single flight).
    const killedAt = Date.now()
    await env.redis.kill()
    const beforeKill = env.tokenRequests().length
    env.sandbox.revokeAll()
    await eventually(everyWorker("store_unavailable", killedAt), 20_000, () => summary(fleet, env))
    await sleep(1_000)
    expect(env.tokenRequests().length - beforeKill).toBeGreaterThan(0)
    expect(env.tokenRequests().length - beforeKill).toBeLessThanOrEqual(8)
    await env.redis.restart()
    await eventually(everyWorker("store_recovered", killedAt), 20_000, () => summary(fleet, env))

    // Paused for 5 s, and every token revoked meanwhile: commands time out, instances fall
    // back, and return once Redis answers again.
    const pausedAt = Date.now()
    // taken before SIGCONT: the queued commands are answered (and recovery reported) at once
    let resumedAt = Number.POSITIVE_INFINITY
    env.redis.pause()
    try {
      env.sandbox.revokeAll()
      await eventually(everyWorker("store_unavailable", pausedAt), 4_500, () => summary(fleet, env))
      await sleep(pausedAt + 5_000 - Date.now())
    } finally {
      resumedAt = Date.now()
      env.redis.resume()
    }
    await eventually(everyWorker("store_recovered", resumedAt), 20_000, () => summary(fleet, env))
    expect(
      storeEventsOf(fleet.workers, "store_unavailable").filter(
        (event) => event.type === "store_unavailable" && event.at >= pausedAt && event.reason === "timeout"
      ).length
    ).toBeGreaterThan(0)

    // Back on Redis: the stores say so, and a revocation costs the whole fleet one request again.
    expect(await fleet.all<boolean>({ op: "available" })).toEqual(Array(8).fill(true))
    const before = env.tokenRequests().length
    env.sandbox.revokeAll()
    await sleep(3_000)
    const { calls } = await fleet.halt()
    const context = summary(fleet, env)
    expect(calls.failures, context).toEqual({})
    expect(calls.ok).toBeGreaterThan(500)
    expect(env.tokenRequests().length - before, context).toBe(1)
  }, 180_000)

  it("a lock holder killed (SIGKILL) inside its token request: another instance acquires after the lock's expiry, and no call hangs", async () => {
    // The lock's expiry is the token-request timeout: 3 s.
    await using env = await environment({}, { tokenRequestTimeoutMillis: 3_000 })
    const fleet = await env.fleet(4)
    env.sandbox.setFaults({ token: { latencyMs: 10_000 } })
    const started = Date.now()
    const bursts = fleet.workers.map((worker) =>
      worker.request<CallStats>({ op: "burst", count: 5 }).then(
        (stats) => ({ stats, settledAt: Date.now() }),
        (error: unknown) => ({ error, settledAt: Date.now() })
      )
    )
    await eventually(() => requestedBy(fleet.workers).length > 0)
    const holder = fleet.workers.find((worker) => requestedBy([worker]).length > 0) as Worker
    holder.process.kill("SIGKILL")
    const killedAt = Date.now()
    env.sandbox.setFaults({})
    const results = await Promise.all(bursts)
    const survivors = fleet.workers.filter((worker) => worker !== holder)
    const context = summary(fleet, env)

    expect("error" in (results[holder.index] as object)).toBe(true)
    for (const worker of survivors) {
      const result = results[worker.index] as { stats?: CallStats; settledAt: number }
      expect(result.stats?.failures, context).toEqual({})
      expect(result.stats?.ok).toBe(5)
      // no caller hangs: every call settled, well within the per-attempt timeout (30 s)
      expect(result.settledAt - started).toBeLessThan(25_000)
    }
    // One survivor took the lock once it expired (a live holder renews it; this one could
    // not), at least 2 s after the kill (its last renewal was at most 1 s before it), and
    // made the one request after the dead one's.
    const after = requestedBy(survivors)
    expect(after, context).toHaveLength(1)
    expect((after[0] as Requested).at - killedAt, context).toBeGreaterThan(1_000)
    expect(storeEventsOf(survivors, "lock_waited").length).toBeGreaterThan(0)
    const answered = env.tokenRequests().filter((request) => request.status === 200)
    expect(answered, context).toHaveLength(1)
  }, 120_000)
})

describe("nothing readable in Redis", () => {
  it("no key, value, pub/sub message or command holds a client secret, password, access or refresh token", async () => {
    // WealthCare's password grant with offline_access: tokens come with refresh tokens.
    await using env = await environment(
      { profile: "wealthcare", tokenTtl: 4 },
      {
        user: { username: "sandbox-user", password: "sandbox-password" },
        scope: "bensoft_api offline_access"
      }
    )
    const { prefix } = env.config
    const connect = async () => {
      const client = createClient({ url: env.redis.url })
      client.on("error", () => {})
      await client.connect()
      return client
    }
    const messages: Array<string> = []
    const commands: Array<string> = []
    const subscriber = await connect()
    const monitor = await connect()
    const reader = await connect()
    try {
      await subscriber.subscribe(`${prefix}:changes`, (message) => void messages.push(message))
      await monitor.monitor((line) => void commands.push(line))
      const fleet = await env.fleet(4)
      await fleet.all({ op: "burst", count: 1 })
      await fleet.all({ op: "traffic", loops: 1, pauseMs: 50 })
      // refreshes ahead (with the refresh token), then a revocation (refresh token refused,
      // the password grant again)
      await sleep(7_000)
      env.sandbox.revokeAll()
      await sleep(3_000)
      const { calls } = await fleet.halt()
      expect(calls.failures, summary(fleet, env)).toEqual({})
      const secrets = await fleet.all<Secrets>({ op: "secrets" })
      const accessTokens = [...new Set(secrets.flatMap((s) => s.accessTokens))]
      const refreshTokens = [...new Set(secrets.flatMap((s) => s.refreshTokens))]
      expect(accessTokens.length).toBeGreaterThanOrEqual(3)
      expect(refreshTokens.length).toBeGreaterThanOrEqual(2)

      const dump: Array<string> = []
      for await (const keys of reader.scanIterator({ MATCH: "*" })) {
        for (const key of keys) {
          dump.push(key)
          const type = await reader.type(key)
          if (type === "hash") dump.push(JSON.stringify(await reader.hGetAll(key)))
          else if (type === "string") dump.push(String(await reader.get(key)))
          else if (type === "zset") dump.push(JSON.stringify(await reader.zRange(key, 0, -1)))
          else dump.push(`(${type})`)
        }
      }
      const events = JSON.stringify(fleet.workers.map((worker) => [worker.storeEvents, worker.tokenEvents]))
      const places = {
        "keys and values": dump.join("\n"),
        "pub/sub messages": messages.join("\n"),
        "commands (MONITOR)": commands.join("\n"),
        events
      }
      // there was something to look at: the token entry, the budget, messages, commands
      expect(places["keys and values"]).toContain(`${prefix}:{tk_`)
      expect(places["keys and values"]).toContain(`${prefix}:{cl_`)
      expect(messages.length).toBeGreaterThan(0)
      expect(commands.length).toBeGreaterThan(0)
      const needles = [
        SECRET,
        "sandbox-password",
        CLIENT_ID,
        "sandbox-user",
        KEY,
        // a token, and its signature alone (JWT-shaped: header.payload.signature)
        ...[...accessTokens, ...refreshTokens].flatMap((token) => [token, token.split(".").at(-1) as string])
      ].filter((needle) => needle.length >= 8)
      for (const [place, text] of Object.entries(places)) {
        for (const needle of needles) {
          expect(text.includes(needle), `${place} hold a secret (${needle.slice(0, 6)}...)`).toBe(false)
        }
      }
    } finally {
      for (const client of [subscriber, monitor, reader]) client.destroy()
    }
  }, 120_000)
})
