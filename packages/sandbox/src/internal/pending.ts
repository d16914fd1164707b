/**
 * Authorization requests waiting for their user (WealthCare's sign-in page).
 *
 * A valid `GET /connect/authorize` is kept here, server side, under a random
 * id that the sign-in form carries back in a hidden field: the browser holds
 * nothing but that id, so nothing of the request (PKCE challenge, nonce,
 * redirect URI) can be changed between the page and the sign-in. The id is
 * single use (approved, denied, or dropped after too many failed attempts),
 * lives 10 minutes by the sandbox's clock, and is itself an unguessable
 * value, which also makes it the form's CSRF token.
 *
 * Like the registry, the store keeps a digest of the id, not the id.
 *
 * @internal
 */
import { opaque, sha256Hex } from "./tokens.ts"

/** How long a sign-in page stays usable. */
export const PENDING_TTL_MS = 10 * 60_000

/** Failed sign-ins one pending request allows; the last one drops it. */
export const MAX_FAILED_ATTEMPTS = 5

/** Pending requests kept at most: the oldest are forgotten past this. */
const MAX_PENDING = 10_000

export interface PendingRequest {
  readonly clientId: string
  readonly redirectUri: string
  /** whether `redirect_uri` was in the authorization request (RFC 6749 section 4.1.3) */
  readonly redirectUriGiven: boolean
  readonly codeChallenge: string
  readonly scope: string
  readonly state: string | undefined
  readonly nonce: string | undefined
  readonly loginHint: string | undefined
  /** epoch milliseconds, by the sandbox's clock */
  readonly expiresAt: number
  failures: number
}

export class PendingRequests {
  readonly #requests = new Map<string, PendingRequest>()

  /** Stores a request; returns its id (the only time the id exists outside the page). */
  add(request: Omit<PendingRequest, "failures">): string {
    const id = opaque()
    this.#requests.set(sha256Hex(id), { ...request, failures: 0 })
    if (this.#requests.size > MAX_PENDING) this.#requests.delete(this.#requests.keys().next().value as string)
    return id
  }

  /** The request of `id`, if it is known and has not expired by `now` (an expired one is dropped). */
  find(id: string, now: number): PendingRequest | undefined {
    const key = sha256Hex(id)
    const request = this.#requests.get(key)
    if (request === undefined) return undefined
    if (now >= request.expiresAt) {
      this.#requests.delete(key)
      return undefined
    }
    return request
  }

  /** Ends a request: it was answered, or failed too often. */
  remove(id: string): void {
    this.#requests.delete(sha256Hex(id))
  }
}
