import { describe, expect, it } from "vitest"
import { createTokenSource } from "../src/index.ts"
import { startTokenServer } from "./support/tokenServer.ts"

describe("smoke", () => {
  it("gets a token", async () => {
    const server = await startTokenServer()
    const tokens = createTokenSource({ tokenUrl: server.tokenUrl, clientId: "c", clientSecret: "s" })
    const results = await Promise.all(Array.from({ length: 1000 }, () => tokens.getToken()))
    expect(server.requests.length).toBe(1)
    expect(new Set(results.map((t) => t.id)).size).toBe(1)
    expect(server.requests[0]!.form.get("client_secret")).toBe("s")
    console.log(String(results[0]), JSON.stringify(results[0]))
    await tokens.dispose()
    await server.close()
  })
})
