/**
 * One test environment: an in-process sandbox (`@authfetch/sandbox`) with a
 * die that decides its fault rates deterministically, a helper for transient
 * latency, and (optionally) a scripted gateway in front of its token endpoint
 * for the answers the sandbox cannot give (malformed token bodies, a `429`
 * without `Retry-After`).
 *
 * Determinism: every rate fault of a row is set to rate 1 and the die says
 * which rolls hit. Two modes:
 *
 * - `budget(n)`: exactly the next `n` rolls hit, then none. The matrix sets it
 *   at the start of each wave (every request of the previous wave has
 *   settled), so one request can meet at most `n` faults, whatever the
 *   interleaving: with `n <= maxRetries` no retryable request can be lost.
 * - `cycle(n)`: `n` hits, then one miss, forever. Token requests of one source
 *   are sequential (single-flight), so an acquisition meets at most `n`
 *   faults in a row before a miss: with `n <= maxRetries` it always succeeds.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { type Faults, type Sandbox, type SandboxEvent, startSandbox } from "@authfetch/sandbox"

export class Die {
  #mode: "off" | "budget" | "cycle" = "off"
  #pending = 0
  #cycle = 0
  #position = 0

  off(): void {
    this.#mode = "off"
  }

  /** exactly the next `n` rolls hit */
  budget(n: number): void {
    this.#mode = "budget"
    this.#pending = n
  }

  /** `n` hits, one miss, repeated */
  cycle(n: number): void {
    this.#mode = "cycle"
    this.#cycle = n
    this.#position = 0
  }

  /** the sandbox's `random`: 0 hits every rate, 1 hits none */
  readonly roll = (): number => {
    let hit = false
    if (this.#mode === "budget" && this.#pending > 0) {
      this.#pending--
      hit = true
    } else if (this.#mode === "cycle") {
      hit = this.#position < this.#cycle
      this.#position = (this.#position + 1) % (this.#cycle + 1)
    }
    return hit ? 0 : 1
  }
}

/** What the scripted gateway does with one token request. */
export type GatewayAnswer =
  | { readonly kind: "forward" }
  /** answer this instead of the sandbox */
  | {
      readonly kind: "reply"
      readonly status: number
      readonly headers?: Record<string, string>
      readonly body: string
    }
  /** forward, then corrupt the sandbox's 200 answer (the token it holds is real) */
  | {
      readonly kind: "corrupt"
      readonly corrupt: (body: string) => { status: number; contentType: string; body: string }
    }

/** The script of the gateway: the answer to token request `requestNo` (from 1). */
export type GatewayScript = (
  requestNo: number,
  request: { readonly body: string; readonly authorization: string | undefined }
) => GatewayAnswer

export interface Gateway {
  readonly tokenUrl: string
  /** replaces the script; `undefined` forwards everything */
  script: GatewayScript | undefined
  /** token requests seen, from 1 */
  requests: number
  /** answers that were not a plain forward */
  scripted: number
  /** access tokens it saw in answers it corrupted (the caller never parsed them) */
  readonly corruptedTokens: Array<string>
  close(): Promise<void>
}

const FORWARDED_REQUEST_HEADERS = ["content-type", "authorization", "accept"]
const FORWARDED_RESPONSE_HEADERS = [
  "content-type",
  "cache-control",
  "pragma",
  "retry-after",
  "www-authenticate",
  "date"
]

const readBody = (req: IncomingMessage): Promise<Buffer> =>
  new Promise((resolve, reject) => {
    const chunks: Array<Buffer> = []
    req.on("data", (chunk: Buffer) => chunks.push(chunk))
    req.on("end", () => resolve(Buffer.concat(chunks)))
    req.on("error", reject)
  })

/**
 * A token endpoint in front of the sandbox's: forwards by default (the
 * sandbox's own faults still apply: a drop there is a drop here, a client that
 * gives up aborts the forwarded request), or answers what the script says.
 */
export const startGateway = async (upstreamTokenUrl: string): Promise<Gateway> => {
  const sockets = new Set<import("node:net").Socket>()
  const gateway: Gateway = {
    tokenUrl: "",
    script: undefined,
    requests: 0,
    scripted: 0,
    corruptedTokens: [],
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy()
        server.close(() => resolve())
      })
  }
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const body = await readBody(req)
    const answer = gateway.script?.(++gateway.requests, {
      body: body.toString("utf8"),
      authorization: req.headers.authorization
    }) ?? { kind: "forward" }
    if (answer.kind === "reply") {
      gateway.scripted++
      res.writeHead(answer.status, { "cache-control": "no-store", ...answer.headers })
      res.end(answer.body)
      return
    }
    const controller = new AbortController()
    res.once("close", () => {
      if (!res.writableFinished) controller.abort()
    })
    const headers: Record<string, string> = {}
    for (const name of FORWARDED_REQUEST_HEADERS) {
      const value = req.headers[name]
      if (typeof value === "string") headers[name] = value
    }
    let upstream: Response
    let text: string
    try {
      upstream = await fetch(upstreamTokenUrl, {
        method: req.method ?? "POST",
        headers,
        body: body.length > 0 ? new Uint8Array(body) : null,
        signal: controller.signal
      })
      text = await upstream.text()
    } catch {
      // the sandbox dropped the connection (or the client left): so do we
      req.socket.destroy()
      return
    }
    if (answer.kind === "corrupt" && upstream.status === 200) {
      gateway.scripted++
      try {
        const token = (JSON.parse(text) as { access_token?: unknown }).access_token
        if (typeof token === "string") gateway.corruptedTokens.push(token)
      } catch {
        // not JSON: nothing to remember
      }
      const corrupted = answer.corrupt(text)
      res.writeHead(corrupted.status, { "content-type": corrupted.contentType, "cache-control": "no-store" })
      res.end(corrupted.body)
      return
    }
    const out: Record<string, string> = {}
    for (const name of FORWARDED_RESPONSE_HEADERS) {
      const value = upstream.headers.get(name)
      if (value !== null) out[name] = value
    }
    res.writeHead(upstream.status, out)
    res.end(text)
  }
  const server: Server = createServer((req, res) => {
    handle(req, res).catch(() => res.destroy())
  })
  server.on("connection", (socket) => {
    sockets.add(socket)
    socket.once("close", () => sockets.delete(socket))
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const port = (server.address() as AddressInfo).port
  const path = new URL(upstreamTokenUrl).pathname
  return Object.assign(gateway, { tokenUrl: `http://127.0.0.1:${port}${path}` })
}

export interface EnvOptions {
  readonly profile: "wex" | "wealthcare"
  readonly tokenTtl: number
  readonly clientId: string
  readonly clientSecret: string
  readonly user?: { readonly username: string; readonly password: string } | undefined
  /** put the scripted gateway in front of the token endpoint */
  readonly gateway: boolean
  readonly onSandboxEvent?: ((event: SandboxEvent) => void) | undefined
}

export interface Env {
  readonly sandbox: Sandbox
  readonly gateway: Gateway | undefined
  readonly die: Die
  /** the token URL clients use (the gateway's when there is one) */
  readonly tokenUrl: string
  readonly apiBaseUrl: string
  /** replaces the sandbox's faults (the latency helper's included) */
  setFaults(faults: Faults): void
  /**
   * Latency on `endpoint` until the first request it delayed is abandoned by
   * its client (the sandbox reports it with status 0): a slow answer that
   * makes the client's timeout fire once, not a dead endpoint.
   */
  transientLatency(endpoint: "token" | "api", latencyMs: number): void
  /** sandbox events seen, by kind */
  readonly seen: { token: Array<SandboxEvent>; api: Array<SandboxEvent> }
  close(): Promise<void>
}

export const startEnv = async (options: EnvOptions): Promise<Env> => {
  const die = new Die()
  const seen = { token: [] as Array<SandboxEvent>, api: [] as Array<SandboxEvent> }
  let faults: Faults = {}
  let latencyOn: "token" | "api" | undefined
  let sandboxRef: Sandbox | undefined
  const clearLatency = () => {
    if (latencyOn === undefined || sandboxRef === undefined) return
    const endpoint = latencyOn
    latencyOn = undefined
    const { latencyMs: _, ...rest } = faults[endpoint] ?? {}
    faults = { ...faults, [endpoint]: rest }
    sandboxRef.setFaults(faults)
  }
  const sandbox = await startSandbox({
    profile: options.profile,
    tokenTtl: options.tokenTtl,
    clients: [{ clientId: options.clientId, clientSecret: options.clientSecret }],
    ...(options.user === undefined ? {} : { users: [options.user] }),
    random: die.roll,
    onEvent: (event) => {
      if (event.kind === "token") seen.token.push(event)
      if (event.kind === "api") seen.api.push(event)
      if (
        latencyOn !== undefined &&
        event.kind === latencyOn &&
        event.status === 0 &&
        event.faults?.includes("latency")
      ) {
        clearLatency()
      }
      options.onSandboxEvent?.(event)
    }
  })
  sandboxRef = sandbox
  const gateway = options.gateway ? await startGateway(sandbox.tokenUrl) : undefined
  return {
    sandbox,
    gateway,
    die,
    tokenUrl: gateway?.tokenUrl ?? sandbox.tokenUrl,
    apiBaseUrl: sandbox.apiBaseUrl,
    setFaults: (next) => {
      latencyOn = undefined
      faults = next
      sandbox.setFaults(next)
    },
    transientLatency: (endpoint, latencyMs) => {
      faults = { ...faults, [endpoint]: { ...faults[endpoint], latencyMs } }
      latencyOn = endpoint
      sandbox.setFaults(faults)
    },
    seen,
    close: async () => {
      await gateway?.close()
      await sandbox.close()
    }
  }
}
