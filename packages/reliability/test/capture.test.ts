/**
 * Controls for the leak sweep: it must find a secret wherever a logger could
 * print it. Without these, a sweep that looked at nothing would pass.
 */
import { startSandbox } from "@authfetch/sandbox"
import axios from "axios"
import { describe, expect, it } from "vitest"
import { Capture, spellings } from "../src/capture.ts"

const JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJjb250cm9sLXN1YmplY3QifQ.c2lnbmF0dXJlLW9mLXRoZS1jb250cm9sLXRva2Vu"
const SECRET = "SECRET-control:+ ü%/do-not-leak"

describe("leak sweep controls", () => {
  it("finds a secret in a message, a cause, a hidden property, a log line, an event and in encoded spellings", () => {
    const capture = new Capture("control")
    capture.secret(SECRET, "client secret")
    capture.token(JWT, "access token")
    const hidden = new Error("nothing to see")
    Object.defineProperty(hidden, "request", {
      value: { headers: { authorization: `Bearer ${JWT}` } },
      enumerable: false
    })
    capture.error("message", new Error(`failed with ${SECRET}`))
    capture.error("cause", new Error("outer", { cause: new Error(`inner ${encodeURIComponent(SECRET)}`) }))
    capture.error("hidden", hidden)
    capture.event("event", { type: "x", body: new URLSearchParams({ client_secret: SECRET }).toString() })
    capture.logger.info("signature only: %s", JWT.split(".")[2])
    capture.response("response", 200, new Headers({ "x-echo": JWT }), "")
    const leaks = capture.scan()
    const where = new Set(leaks.map((l) => l.where))
    expect([...where].sort()).toEqual(["cause", "event", "hidden", "log", "message", "response"])
    // the report never repeats the secret it found
    for (const leak of leaks)
      for (const s of [...spellings(SECRET), JWT]) expect(leak.excerpt).not.toContain(s)
  })

  it("finds the token plain axios leaks through AxiosError.request (the leak attachAuth prevents)", async () => {
    await using sandbox = await startSandbox({ profile: "wex", faults: { api: { errorRate: 1 } } })
    const response = await fetch(sandbox.tokenUrl, {
      method: "POST",
      body: new URLSearchParams({
        grant_type: "client_credentials",
        client_id: "sandbox-client",
        client_secret: "sandbox-secret"
      })
    })
    const token = ((await response.json()) as { access_token: string }).access_token
    const capture = new Capture("plain axios")
    capture.token(token, "access token")
    const error = await axios
      .get(`${sandbox.baseUrl}/v1/consumers/1`, { headers: { authorization: `Bearer ${token}` } })
      .catch((e: unknown) => e)
    capture.error("plain axios error", error)
    expect(capture.scan().length).toBeGreaterThan(0)
  })
})

describe("wire controls", () => {
  it("the wire counts attempts per request id and sees browser credentials passed upstream", async () => {
    const { Wire } = await import("../src/integrations.ts")
    const wire = new Wire(new Capture("wire control"))
    const fetch = wire.fetch(async () => new Response("{}", { status: 503 }))
    await fetch("http://127.0.0.1:1/x", { headers: { "x-request-id": "r1" } })
    await fetch("http://127.0.0.1:1/x", { headers: { "x-request-id": "r1", cookie: "session=1" } })
    expect(wire.attempts.get("r1")).toEqual(["503", "503"])
    expect(wire.forwardedBrowserCredentials).toBe(1)
  })
})
