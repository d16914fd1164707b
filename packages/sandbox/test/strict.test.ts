/**
 * Strict input, like a real authorization server: wrong content type,
 * malformed or oversized bodies, repeated parameters, missing grant_type,
 * two authentication methods; and a server that never falls over.
 */
import { connect } from "node:net"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type Sandbox, startSandbox } from "../src/index.ts"
import { CLIENT, clientCredentials, FORM, postForm } from "./support.ts"

const sandboxes: Record<"wex" | "wealthcare", Sandbox> = {} as never
beforeAll(async () => {
  sandboxes.wex = await startSandbox({ profile: "wex", tokenRateLimit: false })
  sandboxes.wealthcare = await startSandbox({ profile: "wealthcare", tokenRateLimit: false })
})
afterAll(async () => {
  await Promise.all(Object.values(sandboxes).map((s) => s.close()))
})

const invalidRequest = async (res: Response): Promise<string> => {
  expect(res.status).toBe(400)
  expect(res.headers.get("cache-control")).toBe("no-store")
  expect(res.headers.get("pragma")).toBe("no-cache")
  const body = (await res.json()) as { error: string; error_description: string }
  expect(body.error).toBe("invalid_request")
  expect(body.error_description.length).toBeGreaterThan(10)
  return body.error_description
}

/** Sends raw bytes and returns the raw answer (up to the server closing or `timeoutMs`). */
const raw = (sandbox: Sandbox, bytes: string): Promise<string> =>
  new Promise((resolve, reject) => {
    const { hostname, port } = new URL(sandbox.url)
    const socket = connect(Number(port), hostname, () => socket.end(bytes))
    let answer = ""
    socket.setEncoding("latin1")
    socket.on("data", (chunk: string) => {
      answer += chunk
    })
    socket.on("close", () => resolve(answer))
    socket.on("error", reject)
    socket.setTimeout(3000, () => socket.destroy())
  })

describe.each(["wex", "wealthcare"] as const)("%s token endpoint refuses", (profile) => {
  const valid = "grant_type=client_credentials&client_id=sandbox-client&client_secret=sandbox-secret"

  it("a body that is not application/x-www-form-urlencoded", async () => {
    const sandbox = sandboxes[profile]
    const json = await fetch(sandbox.tokenUrl, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ grant_type: "client_credentials", ...CLIENT })
    })
    expect(await invalidRequest(json)).toMatch(/Content-Type/)
    const none = await fetch(sandbox.tokenUrl, { method: "POST", body: new Blob([valid]) })
    expect(await invalidRequest(none)).toMatch(/Content-Type/)
    const latin1 = await postForm(sandbox.tokenUrl, valid, {
      "content-type": "application/x-www-form-urlencoded; charset=iso-8859-1"
    })
    await invalidRequest(latin1)
    // the charset parameter itself is fine
    const utf8 = await postForm(sandbox.tokenUrl, valid, {
      "content-type": "application/x-www-form-urlencoded; charset=UTF-8"
    })
    expect(utf8.status).toBe(200)
  })

  it("a malformed form body", async () => {
    const sandbox = sandboxes[profile]
    expect(await invalidRequest(await postForm(sandbox.tokenUrl, `${valid}&x=%E0%A4%A`))).toMatch(/percent/)
    expect(await invalidRequest(await postForm(sandbox.tokenUrl, `${valid}&x=%zz`))).toMatch(/percent/)
    expect(await invalidRequest(await postForm(sandbox.tokenUrl, `${valid}&x=%00`))).toMatch(/control/)
    expect(await invalidRequest(await postForm(sandbox.tokenUrl, `${valid}&=nameless`))).toMatch(
      /without a name/
    )
    const invalidUtf8 = await fetch(sandbox.tokenUrl, {
      method: "POST",
      headers: FORM,
      body: Buffer.concat([Buffer.from(`${valid}&x=`), Buffer.from([0xc3, 0x28])])
    })
    expect(await invalidRequest(invalidUtf8)).toMatch(/UTF-8/)
  })

  it("a parameter sent twice (RFC 6749 section 3.2)", async () => {
    const sandbox = sandboxes[profile]
    for (const body of [
      `${valid}&grant_type=client_credentials`,
      `${valid}&client_secret=sandbox-secret`,
      `${valid}&scope=a&scope=b`
    ]) {
      expect(await invalidRequest(await postForm(sandbox.tokenUrl, body))).toMatch(/more than once/)
    }
  })

  it("an oversized body, and closes the connection instead of reading it", async () => {
    const sandbox = sandboxes[profile]
    const big = `${valid}&padding=${"x".repeat(20 * 1024)}`
    const res = await postForm(sandbox.tokenUrl, big)
    expect(res.headers.get("connection")).toBe("close")
    expect(await invalidRequest(res)).toMatch(/16384 bytes/)
    // a body far past the cap, streamed without Content-Length, is cut short the same way
    let sent = 0
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent >= 8 * 1024 * 1024) return controller.close()
        sent += 64 * 1024
        controller.enqueue(new Uint8Array(64 * 1024).fill(0x61))
      }
    })
    const streamed = await fetch(sandbox.tokenUrl, {
      method: "POST",
      headers: FORM,
      body: stream,
      duplex: "half"
    } as RequestInit)
    await invalidRequest(streamed)
    expect(sent).toBeLessThan(8 * 1024 * 1024)
  })

  it("a missing grant_type", async () => {
    const sandbox = sandboxes[profile]
    expect(await invalidRequest(await postForm(sandbox.tokenUrl, CLIENT))).toMatch(/grant_type/)
    // a parameter without a value counts as omitted (RFC 6749 section 3.2)
    expect(await invalidRequest(await postForm(sandbox.tokenUrl, { grant_type: "", ...CLIENT }))).toMatch(
      /grant_type/
    )
  })

  it("two client authentication methods at once (RFC 6749 section 2.3)", async () => {
    const sandbox = sandboxes[profile]
    const basic = Buffer.from("sandbox-client:sandbox-secret").toString("base64")
    const res = await postForm(
      sandbox.tokenUrl,
      { grant_type: "client_credentials", ...CLIENT },
      { authorization: `Basic ${basic}` }
    )
    expect(await invalidRequest(res)).toMatch(/more than one authentication method/)
  })

  it("any method but POST", async () => {
    const sandbox = sandboxes[profile]
    const res = await fetch(`${sandbox.tokenUrl}?${valid}`)
    expect(res.status).toBe(405)
    expect(res.headers.get("allow")).toBe("POST")
    expect(((await res.json()) as { error: string }).error).toBe("invalid_request")
  })

  it("without crashing on garbage, and keeps serving", async () => {
    const sandbox = sandboxes[profile]
    const garbage = await raw(sandbox, "GARBAGE\r\n\r\n")
    expect(garbage).toMatch(/^HTTP\/1\.1 400/)
    const absolute = await raw(
      sandbox,
      `GET http://evil.example/admin/stats HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`
    )
    expect(absolute).toMatch(/^HTTP\/1\.1 400/)
    const lying = await raw(
      sandbox,
      `POST ${new URL(sandbox.tokenUrl).pathname} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ngrant_type=cli`
    )
    // the body never arrives in full: no token, no crash (Node's parser answers 400 at EOF)
    expect(lying === "" || lying.startsWith("HTTP/1.1 400 ")).toBe(true)
    expect(await clientCredentials(sandbox)).toMatch(/^eyJ/)
  })
})
