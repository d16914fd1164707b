import { randomBytes } from "node:crypto"
import { createTokenSource } from "@authfetch/core"
import { startSandbox } from "@authfetch/sandbox"
import { afterAll, beforeAll, expect, it } from "vitest"
import { redisStore } from "../src/index.ts"
import { type RedisServer, startRedis } from "./support/redisServer.ts"

let redis: RedisServer
beforeAll(async () => {
  redis = await startRedis()
})
afterAll(async () => {
  await redis?.stop()
})

it("two stores, one token", async () => {
  await using sandbox = await startSandbox({ profile: "wex" })
  const key = randomBytes(32).toString("base64")
  const events: Array<unknown> = []
  const a = redisStore({ url: redis.url, encryptionKeys: [key], onEvent: (e) => events.push(e) })
  const b = redisStore({ url: redis.url, encryptionKeys: [key], onEvent: (e) => events.push(e) })
  const config = { tokenUrl: sandbox.tokenUrl, clientId: "sandbox-client", clientSecret: "sandbox-secret" }
  const ta = createTokenSource(config, { store: a })
  const tb = createTokenSource(config, { store: b })
  const tokens = await Promise.all([ta.getToken(), tb.getToken(), ta.getToken(), tb.getToken()])
  expect(new Set(tokens.map((t) => t.reveal())).size).toBe(1)
  console.log(sandbox.stats(), events)
  await ta.dispose()
  await tb.dispose()
  await a.close()
  await b.close()
})
