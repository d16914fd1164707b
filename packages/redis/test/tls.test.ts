/**
 * `rediss://`: the store over TLS to a real redis-server listening with a certificate from a CA
 * the test makes (openssl; `.ci/run` installs it when missing).
 */
import { execFileSync } from "node:child_process"
import { randomBytes } from "node:crypto"
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { createTokenSource } from "@authfetch/core"
import { startSandbox } from "@authfetch/sandbox"
import { afterAll, beforeAll, expect, it } from "vitest"
import { redisStore, type StoreEvent } from "../src/index.ts"
import { type RedisServer, startRedis } from "./support/redisServer.ts"

const dir = mkdtempSync(join(tmpdir(), "authfetch-redis-tls-"))
const file = (name: string) => join(dir, name)
let redis: RedisServer

beforeAll(async () => {
  const openssl = (...args: Array<string>) => execFileSync("openssl", args, { stdio: "ignore" })
  openssl(
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    file("ca.key"),
    "-out",
    file("ca.crt"),
    "-days",
    "1",
    "-subj",
    "/CN=authfetch test CA"
  )
  openssl(
    "req",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    file("server.key"),
    "-out",
    file("server.csr"),
    "-subj",
    "/CN=127.0.0.1"
  )
  writeFileSync(file("san.ext"), "subjectAltName=IP:127.0.0.1\n")
  openssl(
    "x509",
    "-req",
    "-in",
    file("server.csr"),
    "-CA",
    file("ca.crt"),
    "-CAkey",
    file("ca.key"),
    "-CAcreateserial",
    "-out",
    file("server.crt"),
    "-days",
    "1",
    "-extfile",
    file("san.ext")
  )
  redis = await startRedis({ tls: { cert: file("server.crt"), key: file("server.key"), ca: file("ca.crt") } })
})
afterAll(async () => {
  await redis?.stop()
  rmSync(dir, { recursive: true, force: true })
})

it("two instances share one token over rediss:// with the app's CA; a client that does not trust the server falls back and still serves", async () => {
  await using sandbox = await startSandbox({ profile: "wex" })
  const encryptionKeys = [randomBytes(32).toString("base64")]
  const ca = readFileSync(file("ca.crt"), "utf8")
  const config = { tokenUrl: sandbox.tokenUrl, clientId: "sandbox-client", clientSecret: "sandbox-secret" }
  const events: Array<StoreEvent> = []
  const trusted = () =>
    redisStore({
      url: redis.url,
      encryptionKeys,
      clientOptions: { socket: { tls: true, ca } },
      onEvent: (e) => events.push(e)
    })
  await using a = trusted()
  await using b = trusted()
  const ta = createTokenSource(config, { store: a })
  const tb = createTokenSource(config, { store: b })
  const first = await ta.getToken()
  expect((await tb.getToken()).reveal()).toBe(first.reveal())
  expect(sandbox.stats().tokenRequests.total).toBe(1)
  expect(events.filter((event) => event.type === "store_unavailable")).toEqual([])
  expect(await a.isAvailable()).toBe(true)

  // No CA: the TLS handshake fails, the instance runs on its own and says so.
  const untrustedEvents: Array<StoreEvent> = []
  await using untrusted = redisStore({
    url: redis.url,
    encryptionKeys,
    commandTimeoutMillis: 300,
    onEvent: (e) => untrustedEvents.push(e)
  })
  const tc = createTokenSource(config, { store: untrusted })
  expect((await tc.getToken()).reveal()).toBeTruthy()
  expect(sandbox.stats().tokenRequests.total).toBe(2)
  expect(untrustedEvents.some((event) => event.type === "store_unavailable")).toBe(true)
  await Promise.all([ta.dispose(), tb.dispose(), tc.dispose()])
})
