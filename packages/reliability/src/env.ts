/**
 * One test environment: an in-process sandbox (`@authfetch/sandbox`) with a
 * die that decides its fault rates deterministically, a helper for transient
 * latency, and (optionally) scripted gateways for the answers the sandbox
 * cannot give: one in front of its token endpoint (malformed token bodies, a
 * `429` without `Retry-After`, redirects, tiny lifetimes), one in front of its
 * API (an API that echoes the bearer token it was sent).
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
  /** refresh tokens it saw in answers it corrupted */
  readonly corruptedRefreshTokens: Array<string>
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
    corruptedRefreshTokens: [],
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
        const parsed = JSON.parse(text) as { access_token?: unknown; refresh_token?: unknown }
        if (typeof parsed.access_token === "string") gateway.corruptedTokens.push(parsed.access_token)
        if (typeof parsed.refresh_token === "string")
          gateway.corruptedRefreshTokens.push(parsed.refresh_token)
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

/** What the API gateway does with one API request. */
export type ApiGatewayAnswer =
  | { readonly kind: "forward" }
  /** answer this instead of the sandbox */
  | {
      readonly kind: "reply"
      readonly status: number
      readonly headers?: Record<string, string>
      readonly body: string
    }

/** The script of the API gateway: the answer to API request `requestNo` (from 1). */
export type ApiGatewayScript = (
  requestNo: number,
  request: { readonly method: string; readonly path: string; readonly authorization: string | undefined }
) => ApiGatewayAnswer

export interface ApiGateway {
  /** `http://127.0.0.1:PORT/api`: the API base clients use */
  readonly baseUrl: string
  /** replaces the script; `undefined` forwards everything */
  script: ApiGatewayScript | undefined
  /** API requests seen, from 1 */
  requests: number
  /** answers that were not a plain forward */
  scripted: number
  close(): Promise<void>
}

const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "transfer-encoding",
  "upgrade",
  "host",
  "content-length",
  "proxy-connection",
  "te",
  "trailer"
])

/**
 * A gateway in front of the sandbox's API: forwards every request as it is
 * (method, path, headers, body; a dropped connection upstream is dropped here,
 * a client that leaves aborts the forwarded request), or answers what the
 * script says, such as an error body that echoes the `Authorization` header.
 */
export const startApiGateway = async (upstreamApiBase: string): Promise<ApiGateway> => {
  const sockets = new Set<import("node:net").Socket>()
  const upstream = new URL(upstreamApiBase)
  const gateway: ApiGateway = {
    baseUrl: "",
    script: undefined,
    requests: 0,
    scripted: 0,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy()
        server.close(() => resolve())
      })
  }
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const body = await readBody(req)
    const url = new URL(req.url ?? "/", upstream.origin)
    const method = req.method ?? "GET"
    const answer = gateway.script?.(++gateway.requests, {
      method,
      path: url.pathname.slice(upstream.pathname.replace(/\/+$/, "").length),
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
    const headers = new Headers()
    for (const [name, value] of Object.entries(req.headers)) {
      if (value === undefined || HOP_BY_HOP.has(name)) continue
      headers.set(name, Array.isArray(value) ? value.join(", ") : value)
    }
    let response: Response
    let text: Buffer
    try {
      response = await fetch(url, {
        method,
        headers,
        body: body.length > 0 ? new Uint8Array(body) : null,
        redirect: "manual",
        signal: controller.signal
      })
      text = Buffer.from(await response.arrayBuffer())
    } catch {
      // the sandbox dropped the connection (or the client left): so do we
      req.socket.destroy()
      return
    }
    const out: Record<string, string> = {}
    for (const [name, value] of response.headers) if (!HOP_BY_HOP.has(name)) out[name] = value
    res.writeHead(response.status, out)
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
  return Object.assign(gateway, {
    baseUrl: `http://127.0.0.1:${port}${upstream.pathname.replace(/\/+$/, "")}`
  })
}

export interface EnvOptions {
  readonly profile: "wex" | "wealthcare"
  readonly tokenTtl: number
  readonly clientId: string
  readonly clientSecret: string
  /** WealthCare's resource owners (the first is the subject of the authorization code flow) */
  readonly users?: ReadonlyArray<{ readonly username: string; readonly password: string }> | undefined
  /** put the scripted gateway in front of the token endpoint */
  readonly gateway: boolean
  /** put the scripted gateway in front of the API */
  readonly apiGateway?: boolean | undefined
  readonly onSandboxEvent?: ((event: SandboxEvent) => void) | undefined
}

export interface Env {
  readonly sandbox: Sandbox
  readonly gateway: Gateway | undefined
  readonly apiGateway: ApiGateway | undefined
  readonly die: Die
  /** the token URL clients use (the gateway's when there is one) */
  readonly tokenUrl: string
  /** the API base clients use (the API gateway's when there is one) */
  readonly baseUrl: string
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
    ...(options.users === undefined ? {} : { users: options.users.map((u) => ({ ...u })) }),
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
  const apiGateway = options.apiGateway ? await startApiGateway(sandbox.baseUrl) : undefined
  return {
    sandbox,
    gateway,
    apiGateway,
    die,
    tokenUrl: gateway?.tokenUrl ?? sandbox.tokenUrl,
    baseUrl: apiGateway?.baseUrl ?? sandbox.baseUrl,
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
      await apiGateway?.close()
      await sandbox.close()
    }
  }
}
