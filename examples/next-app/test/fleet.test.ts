/**
 * Several instances of the built app (`next start`, a process each) on one
 * Redis and one sandbox, configured as a deployment would be (`REDIS_URL`,
 * `TOKEN_ENCRYPTION_KEYS`): the Node.js runtime's token is the fleet's. A
 * `redis-server` of its own on a free loopback port, without persistence
 * (`packages/redis/test/support/redisServer.ts`).
 */
import { randomBytes } from "node:crypto"
import { type Sandbox, startSandbox } from "@authfetch/sandbox"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type RedisServer, startRedis } from "../../../packages/redis/test/support/redisServer.ts"
import { type App, startApp } from "./app.ts"

const CLIENT_ID = "next-app-fleet"
const clientSecret = `fleet-secret-${randomBytes(8).toString("hex")}`
const key = randomBytes(32).toString("base64")

let redis: RedisServer
let sandbox: Sandbox
const apps: Array<App> = []

const envFor = () => ({
  WEX_CLIENT_ID: CLIENT_ID,
  WEX_CLIENT_SECRET: clientSecret,
  WEX_TOKEN_URL: sandbox.tokenUrl,
  WEX_BASE_URL: sandbox.baseUrl,
  REDIS_URL: redis.url,
  TOKEN_ENCRYPTION_KEYS: key
})

beforeAll(async () => {
  redis = await startRedis()
  sandbox = await startSandbox({ profile: "wex", clients: [{ clientId: CLIENT_ID, clientSecret }] })
})
afterAll(async () => {
  await Promise.all(apps.map((app) => app.stop()))
  await sandbox?.close()
  await redis?.stop()
})

/** Every status 200, or the servers' output in the failure. */
const expectAllOk = (statuses: ReadonlyArray<number>) =>
  expect(
    statuses.every((status) => status === 200)
      ? "all 200"
      : `${statuses}\n${apps.map((app) => app.output()).join("\n")}`
  ).toBe("all 200")

/** The proxy route (10 calls), the route handler and the page of `app`, all at once; their statuses. */
const traffic = (app: App) =>
  Promise.all(
    [
      ...Array.from({ length: 10 }, (_, i) => `/api/benefits/v1/consumers/${20_000 + i}`),
      "/api/summary",
      "/"
    ].map(async (path) => {
      const response = await fetch(`${app.url}${path}`)
      await response.arrayBuffer()
      return response.status
    })
  )

describe("two next start on one Redis (REDIS_URL, TOKEN_ENCRYPTION_KEYS)", () => {
  it("cold, both at once: the proxy route, the route handler and the page on both → 1 token request", async () => {
    apps.push(...(await Promise.all([startApp(envFor()), startApp(envFor())])))
    const statuses = (await Promise.all(apps.map(traffic))).flat()
    expectAllOk(statuses)
    expect(sandbox.stats().tokenRequests.total).toBe(1)
  })

  it("after revokeAll(): both serve again with 1 new token between them", async () => {
    const before = sandbox.stats().tokenRequests.total
    sandbox.revokeAll()
    const statuses = (await Promise.all(apps.map(traffic))).flat()
    expectAllOk(statuses)
    expect(sandbox.stats().tokenRequests.total - before).toBe(1)
  })

  it("REDIS_URL without TOKEN_ENCRYPTION_KEYS, or a bad key: the server stops at start naming the variable, never a key", async () => {
    const missing = await startApp({ ...envFor(), TOKEN_ENCRYPTION_KEYS: "" }).then(
      (app) => {
        apps.push(app)
        return "started"
      },
      (error: Error) => error.message
    )
    expect(missing).toContain("TOKEN_ENCRYPTION_KEYS is required")
    const bad = `not-a-key-${randomBytes(6).toString("hex")}`
    const malformed = await startApp({ ...envFor(), TOKEN_ENCRYPTION_KEYS: `${key},${bad}` }).then(
      (app) => {
        apps.push(app)
        return "started"
      },
      (error: Error) => error.message
    )
    expect(malformed).toContain("TOKEN_ENCRYPTION_KEYS: encryptionKeys[1] is not 32 bytes")
    expect(malformed).not.toContain(bad)
    expect(malformed).not.toContain(key)
  })
})
