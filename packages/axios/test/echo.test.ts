/**
 * An API that echoes the bearer token it was sent (a debug page, a careless
 * gateway) must not get it into an `AxiosError`: `error.response.data` (text,
 * parsed JSON, bytes) and `error.response.headers` hold `<redacted>` where the
 * token was. A successful answer is the API's data and is left as it is.
 * Real axios (both adapters), real servers on 127.0.0.1.
 */
import { inspect } from "node:util"
import { createTokenSource, type TokenSourceHandle } from "@authfetch/core"
import axios, { type AxiosError } from "axios"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { issueToken, startTokenServer, type TokenServer } from "../../core/test/support/tokenServer.ts"
import { attachAuth } from "../src/index.ts"
import { adapters } from "./support/clients.ts"

const TOKEN = "AXIOS-ECHO-1a2b3c4d5e"

let auth: TokenServer
let api: TokenServer
let tokens: TokenSourceHandle
beforeAll(async () => {
  auth = await startTokenServer(() => issueToken({ access_token: TOKEN }))
  api = await startTokenServer((request) => {
    const status = Number(new URL(request.url, "http://x").searchParams.get("status"))
    return {
      status,
      headers: { "x-debug-authorization": request.headers.authorization ?? "" },
      text: JSON.stringify({ detail: `you sent ${request.headers.authorization}`, token: TOKEN })
    }
  })
  tokens = createTokenSource({ tokenUrl: auth.tokenUrl, clientId: "axios-echo", rateLimit: false })
})
afterAll(async () => {
  await tokens.dispose()
  await Promise.all([auth.close(), api.close()])
})

describe.each(adapters)("an API echoing the token: %s adapter", (adapter) => {
  for (const responseType of ["json", "text", "arraybuffer"] as const) {
    it(`responseType ${responseType}: the AxiosError's response holds no token`, async () => {
      const client = axios.create({ baseURL: api.url, adapter, responseType })
      attachAuth(client, tokens, { retry: false })
      const error = (await client.get("/v1/x?status=400").catch((e: unknown) => e)) as AxiosError
      expect(error.response?.status).toBe(400)
      const data = error.response?.data
      const text =
        data instanceof ArrayBuffer || data instanceof Uint8Array
          ? Buffer.from(data as ArrayBuffer).toString()
          : typeof data === "string"
            ? data
            : JSON.stringify(data)
      expect(text).toContain("<redacted>")
      expect(error.response?.headers["x-debug-authorization"]).toBe("Bearer <redacted>")
      for (const shown of [text, inspect(error, { depth: 8 }), JSON.stringify(error.toJSON())]) {
        expect(shown).not.toContain(TOKEN)
      }
    })
  }

  it("a 200 is the API's own data", async () => {
    const client = axios.create({ baseURL: api.url, adapter, responseType: "text" })
    attachAuth(client, tokens)
    const ok = await client.get("/v1/x?status=200")
    expect(ok.data).toContain(TOKEN)
  })
})
