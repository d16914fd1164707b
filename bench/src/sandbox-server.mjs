/**
 * `@authfetch/sandbox` (WEX profile) in its own process, with the same IPC
 * control as `server.mjs`. It does what WEX does per request (JWT-shaped
 * tokens, SHA-256 lookups, events, the 100-per-minute limit per client, WEX's
 * malformed 401 body), so it is the realistic server, not the floor.
 *
 * Started with `{ cmd: "start", clients, tokenTtl, tokenLatencyMs }`.
 */
import { startSandbox } from "@authfetch/sandbox"

let sandbox

process.on("message", async (message) => {
  const reply = (value) => process.send({ id: message.id, value })
  switch (message.cmd) {
    case "start": {
      sandbox = await startSandbox({
        profile: "wex",
        tokenTtl: message.tokenTtl ?? 3600,
        clients: message.clients.map((clientId) => ({ clientId, clientSecret: "bench-secret" })),
        faults: message.tokenLatencyMs ? { token: { latencyMs: message.tokenLatencyMs } } : {}
      })
      return reply({ url: sandbox.url, tokenUrl: sandbox.tokenUrl, apiBase: sandbox.baseUrl })
    }
    case "stats": {
      const s = sandbox.stats()
      return reply({
        tokenRequests: s.tokenRequests.byClient,
        tokenTotal: s.tokenRequests.total,
        tokenByStatus: s.tokenRequests.byStatus,
        apiTotal: s.apiRequests.total,
        api401: s.apiRequests.byStatus["401"] ?? 0
      })
    }
    case "reset":
      sandbox.resetStats()
      return reply(true)
    case "revokeAll":
      sandbox.revokeAll()
      return reply(true)
    case "cpu":
      return reply(process.cpuUsage())
    case "close":
      await sandbox?.close()
      reply(true)
      return process.disconnect()
  }
})

process.send({ ready: true })
