/**
 * Fault injection: checking a `Faults` value, deciding what happens to one
 * request, and the per-client token rate limit.
 *
 * Faults stand for what sits in front of a real endpoint (a gateway, a load
 * balancer, a throttle), so they are decided before the request is
 * authenticated, and they do not depend on what it asks for.
 *
 * @internal
 */
import type { EndpointFaults, Faults, SandboxGrant, TokenEndpointFaults } from "../types.ts"

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

const checkKeys = (value: Record<string, unknown>, allowed: ReadonlyArray<string>, where: string): void => {
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) throw new TypeError(`${where}: unknown field "${key}"`)
  }
}

const checkNumber = (value: unknown, where: string, min: number, max: number, integer = false): void => {
  if (value === undefined) return
  if (typeof value !== "number" || !Number.isFinite(value) || value < min || value > max) {
    throw new TypeError(`${where} must be a number from ${min} to ${max}`)
  }
  if (integer && !Number.isInteger(value)) throw new TypeError(`${where} must be an integer`)
}

const ENDPOINT_KEYS = [
  "latencyMs",
  "errorRate",
  "errorStatus",
  "rateLimit429",
  "dropRate",
  "unauthorizedPaths"
]
const GRANTS: ReadonlyArray<SandboxGrant> = [
  "client_credentials",
  "authorization_code",
  "refresh_token",
  "password"
]

const checkEndpoint = (value: unknown, where: string, extraKeys: ReadonlyArray<string> = []): void => {
  if (value === undefined) return
  if (!isObject(value)) throw new TypeError(`${where} must be an object`)
  checkKeys(value, [...ENDPOINT_KEYS, ...extraKeys], where)
  const paths = value.unauthorizedPaths
  if (
    paths !== undefined &&
    !(Array.isArray(paths) && paths.every((p) => typeof p === "string" && p.startsWith("/")))
  ) {
    throw new TypeError(`${where}.unauthorizedPaths must be an array of paths starting with "/"`)
  }
  checkNumber(value.latencyMs, `${where}.latencyMs`, 0, 120_000)
  checkNumber(value.errorRate, `${where}.errorRate`, 0, 1)
  checkNumber(value.dropRate, `${where}.dropRate`, 0, 1)
  if (value.errorStatus !== undefined && ![500, 502, 503].includes(value.errorStatus as number)) {
    throw new TypeError(`${where}.errorStatus must be 500, 502 or 503`)
  }
  const limit = value.rateLimit429
  if (limit !== undefined) {
    if (!isObject(limit)) throw new TypeError(`${where}.rateLimit429 must be an object`)
    checkKeys(limit, ["count", "rate", "retryAfterSeconds"], `${where}.rateLimit429`)
    checkNumber(limit.count, `${where}.rateLimit429.count`, 0, Number.MAX_SAFE_INTEGER, true)
    checkNumber(limit.rate, `${where}.rateLimit429.rate`, 0, 1)
    checkNumber(limit.retryAfterSeconds, `${where}.rateLimit429.retryAfterSeconds`, 0, 86_400, true)
  }
}

const checkInvalidGrant = (value: unknown, where: string): void => {
  if (value === undefined) return
  if (!isObject(value)) throw new TypeError(`${where} must be an object`)
  checkKeys(value, ["count", "rate", "grants"], where)
  checkNumber(value.count, `${where}.count`, 0, Number.MAX_SAFE_INTEGER, true)
  checkNumber(value.rate, `${where}.rate`, 0, 1)
  const grants = value.grants
  if (
    grants !== undefined &&
    !(Array.isArray(grants) && grants.length > 0 && grants.every((g) => GRANTS.includes(g as SandboxGrant)))
  ) {
    throw new TypeError(`${where}.grants must be a non-empty array of grants (${GRANTS.join(", ")})`)
  }
}

/**
 * Throws a `TypeError` naming the first thing wrong with `value` as `Faults`
 * (unknown fields included: a typo must not silently inject nothing).
 */
export const validateFaults = (value: unknown): Faults => {
  if (!isObject(value)) throw new TypeError("faults must be an object")
  checkKeys(value, ["token", "api", "authorize", "clockOffsetSeconds"], "faults")
  checkEndpoint(value.token, "faults.token", ["invalidGrant"])
  if (isObject(value.token)) checkInvalidGrant(value.token.invalidGrant, "faults.token.invalidGrant")
  checkEndpoint(value.api, "faults.api")
  const authorize = value.authorize
  if (authorize !== undefined) {
    if (!isObject(authorize)) throw new TypeError("faults.authorize must be an object")
    checkKeys(authorize, ["latencyMs"], "faults.authorize")
    checkNumber(authorize.latencyMs, "faults.authorize.latencyMs", 0, 120_000)
  }
  checkNumber(value.clockOffsetSeconds, "faults.clockOffsetSeconds", -10 * 365 * 86_400, 10 * 365 * 86_400)
  return value as Faults
}

/** What happens to one request. */
export interface FaultDecision {
  readonly latencyMs: number
  readonly action:
    | { readonly kind: "none" }
    | { readonly kind: "drop" }
    | { readonly kind: "rate_limit"; readonly retryAfterSeconds: number }
    | { readonly kind: "error"; readonly status: 500 | 502 | 503 }
}

/**
 * The faults of one endpoint, with the state a `count` needs (how many 429s
 * are still to be given). Replaced as a whole by `setFaults`.
 */
export class EndpointFaultState {
  readonly #faults: EndpointFaults
  #remaining429: number

  constructor(faults: EndpointFaults | undefined) {
    this.#faults = faults ?? {}
    this.#remaining429 = faults?.rateLimit429?.count ?? 0
  }

  /** whether `path` (below `/api`) is one answered `401` whatever the token */
  isUnauthorized(path: string): boolean {
    return (this.#faults.unauthorizedPaths ?? []).some(
      (prefix) => path === prefix || path.startsWith(prefix.endsWith("/") ? prefix : `${prefix}/`)
    )
  }

  decide(random: () => number): FaultDecision {
    const f = this.#faults
    const latencyMs = f.latencyMs ?? 0
    if (f.dropRate !== undefined && f.dropRate > 0 && random() < f.dropRate) {
      return { latencyMs, action: { kind: "drop" } }
    }
    const limit = f.rateLimit429
    if (limit !== undefined) {
      const retryAfterSeconds = limit.retryAfterSeconds ?? 1
      if (this.#remaining429 > 0) {
        this.#remaining429--
        return { latencyMs, action: { kind: "rate_limit", retryAfterSeconds } }
      }
      if (limit.rate !== undefined && limit.rate > 0 && random() < limit.rate) {
        return { latencyMs, action: { kind: "rate_limit", retryAfterSeconds } }
      }
    }
    if (f.errorRate !== undefined && f.errorRate > 0 && random() < f.errorRate) {
      return { latencyMs, action: { kind: "error", status: f.errorStatus ?? 503 } }
    }
    return { latencyMs, action: { kind: "none" } }
  }
}

/**
 * The `invalidGrant` fault of the token endpoint, with what its `count` has
 * left. Decided after client authentication (unlike the gateway faults above):
 * it stands for the authorization server itself refusing a grant it would
 * otherwise serve, as when a refresh token was revoked behind the client's back.
 */
export class InvalidGrantState {
  readonly #grants: ReadonlyArray<string>
  readonly #rate: number
  #remaining: number

  constructor(faults: TokenEndpointFaults | undefined) {
    const f = faults?.invalidGrant
    this.#grants = f?.grants ?? ["refresh_token"]
    this.#rate = f?.rate ?? 0
    this.#remaining = f?.count ?? 0
  }

  /** whether this request of `grantType` is to be refused */
  refuses(grantType: string, random: () => number): boolean {
    if (!this.#grants.includes(grantType)) return false
    if (this.#remaining > 0) {
      this.#remaining--
      return true
    }
    return this.#rate > 0 && random() < this.#rate
  }
}

/**
 * A sliding-window log per client: at most `limit` accepted requests in any
 * `windowMs`. Refused requests are not counted, so a client that keeps trying
 * is let in again exactly when its oldest request leaves the window, which is
 * what `Retry-After` then says. Runs on the monotonic clock: moving the
 * sandbox's wall clock (a fault) does not open or close windows.
 */
export class SlidingWindowLimiter {
  readonly #log = new Map<string, Array<number>>()
  readonly #limit: number
  readonly #windowMs: number
  readonly #now: () => number

  constructor(limit: number, windowSeconds: number, now: () => number = () => performance.now()) {
    this.#limit = limit
    this.#windowMs = windowSeconds * 1000
    this.#now = now
  }

  /** Takes a slot for `key`, or says how many whole seconds until one frees. */
  take(key: string): { readonly ok: true } | { readonly ok: false; readonly retryAfterSeconds: number } {
    const now = this.#now()
    const since = now - this.#windowMs
    const log = (this.#log.get(key) ?? []).filter((t) => t > since)
    if (log.length >= this.#limit) {
      this.#log.set(key, log)
      const frees = log[0]! + this.#windowMs
      return { ok: false, retryAfterSeconds: Math.max(1, Math.ceil((frees - now) / 1000)) }
    }
    log.push(now)
    this.#log.set(key, log)
    return { ok: true }
  }
}

/** How an endpoint answers an injected 429 or error status, in its own dialect. */
export interface FaultAnswers {
  rateLimited(retryAfterSeconds: number): void
  failed(status: 500 | 502 | 503): void
}

/**
 * Applies the faults of one endpoint to one request: waits the latency, then
 * drops the connection or answers for the endpoint. Returns true when the
 * request was answered (or dropped) and must not be served.
 */
export const injectFaults = async (
  state: EndpointFaultState,
  random: () => number,
  sleep: (ms: number) => Promise<void>,
  socket: { destroy(): void },
  log: { faults: Array<"latency" | "drop" | "rate_limit" | "error" | "invalid_grant"> },
  answers: FaultAnswers
): Promise<boolean> => {
  const decision = state.decide(random)
  if (decision.latencyMs > 0) {
    log.faults.push("latency")
    await sleep(decision.latencyMs)
  }
  switch (decision.action.kind) {
    case "none":
      return false
    case "drop":
      log.faults.push("drop")
      socket.destroy()
      return true
    case "rate_limit":
      log.faults.push("rate_limit")
      answers.rateLimited(decision.action.retryAfterSeconds)
      return true
    case "error":
      log.faults.push("error")
      answers.failed(decision.action.status)
      return true
  }
}
