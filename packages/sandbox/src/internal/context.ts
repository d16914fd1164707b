/**
 * The state one running sandbox shares between its endpoints, and the record
 * each request fills in for its event.
 *
 * @internal
 */
import type { IncomingMessage, ServerResponse } from "node:http"
import type { AuthorizeFaults, SandboxEvent, SandboxGrant, SandboxUser } from "../types.ts"
import type { EndpointFaultState, InvalidGrantState, SlidingWindowLimiter } from "./faults.ts"
import type { SigningKey } from "./jwt.ts"
import type { PendingRequests } from "./pending.ts"
import type { Registry } from "./tokens.ts"

/** A registered client with every default filled in. */
export interface ResolvedClient {
  readonly clientId: string
  readonly clientSecret: string
  readonly scopes: ReadonlyArray<string>
  readonly grants: ReadonlySet<SandboxGrant>
  readonly redirectUris: ReadonlyArray<string>
}

/** What a request handler writes down for the event and the stats. */
export interface RequestLog {
  kind: SandboxEvent["kind"] | undefined
  clientId?: string
  grantType?: string
  tokenFingerprint?: string
  tokenKind?: "access_token" | "refresh_token"
  subject?: string
  error?: string
  route?: string
  /** revocation: whether this request found a token of its client and revoked it */
  revoked?: boolean
  faults: Array<"latency" | "drop" | "rate_limit" | "error" | "invalid_grant">
}

/** A stored claim, and what `Idempotency-Key` replays need. */
export interface ClaimsState {
  readonly items: Array<Record<string, unknown>>
  readonly bodyHashes: Set<string>
  readonly idempotency: Map<string, { readonly bodyHash: string; readonly response: Record<string, unknown> }>
  nextId: number
  created: number
  duplicates: number
}

export interface Context {
  readonly profile: "wex" | "wealthcare"
  /** also the issuer (wealthcare) */
  readonly url: string
  /** the sandbox's clock: `Date.now()` plus the clock offset fault, in milliseconds */
  readonly now: () => number
  readonly registry: Registry
  readonly clients: ReadonlyMap<string, ResolvedClient>
  readonly users: ReadonlyArray<SandboxUser>
  readonly tokenTtl: number
  readonly refreshTokenTtl: number
  readonly limiter: SlidingWindowLimiter | undefined
  readonly wexMalformedProblem: boolean
  readonly random: () => number
  readonly claims: ClaimsState
  /** wealthcare: approve authorization requests without the sign-in page */
  readonly autoApprove: boolean
  /** wealthcare: authorization requests waiting for their user to sign in */
  readonly pending: PendingRequests
  /** wealthcare: the RS256 key of ID tokens (undefined for wex) */
  readonly signingKey: SigningKey | undefined
  faults: {
    readonly token: EndpointFaultState
    readonly api: EndpointFaultState
    readonly invalidGrant: InvalidGrantState
    readonly authorize: AuthorizeFaults
  }
  /** a delay that `close()` cuts short */
  sleep(ms: number): Promise<void>
}

export type Handler = (
  ctx: Context,
  req: IncomingMessage,
  res: ServerResponse,
  log: RequestLog,
  url: URL
) => Promise<void> | void
