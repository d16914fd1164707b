/**
 * What the sandbox issued: access tokens, refresh tokens and authorization
 * codes, and the grant ("family") each belongs to.
 *
 * No credential value is kept. Each record is keyed by the SHA-256 of its value
 * and shown by a fingerprint (the first 8 hex characters of that hash), so
 * nothing the sandbox stores, reports or logs can leak a usable token: the
 * same discipline the clients under test are asked to follow.
 *
 * Access tokens are JWT-shaped (HS256 over a key that lives only in this
 * process), like the `eyJ...` samples both providers publish. Clients must not
 * rely on their content; the sandbox itself validates by lookup.
 *
 * Each record carries its subject (the user, or the client for
 * `client_credentials`) and, for a grant that began with a sign-in, that
 * sign-in (`sid`, `auth_time`): what the userinfo endpoint, refreshed ID
 * tokens, revocation and the revoke-by-user operations need.
 *
 * @internal
 */
import { createHash, createHmac, randomBytes, randomUUID } from "node:crypto"

/** SHA-256 of a value, hex. */
export const sha256Hex = (value: string | Buffer): string => createHash("sha256").update(value).digest("hex")

/** The fingerprint of a credential: first 8 hex characters of its SHA-256. */
export const fingerprint = (value: string): string => sha256Hex(value).slice(0, 8)

/** An opaque credential: 256 random bits, base64url. */
export const opaque = (): string => randomBytes(32).toString("base64url")

/** The sign-in a grant began with (authorization code grants only). */
export interface SignIn {
  /** the OIDC session id (`sid`) */
  readonly sid: string
  /** epoch seconds, by the sandbox's clock (`auth_time`) */
  readonly authTime: number
}

export interface AccessRecord {
  readonly fingerprint: string
  readonly clientId: string
  readonly grantType: string
  readonly scope: string | undefined
  readonly subject: string
  readonly signIn: SignIn | undefined
  /** epoch milliseconds, by the sandbox's clock */
  readonly issuedAt: number
  /** epoch milliseconds, by the sandbox's clock */
  readonly expiresAt: number
  readonly familyId: string | undefined
  revoked: boolean
}

export interface RefreshRecord {
  readonly fingerprint: string
  readonly clientId: string
  readonly scope: string
  readonly subject: string
  readonly signIn: SignIn | undefined
  readonly familyId: string
  readonly expiresAt: number
  used: boolean
  revoked: boolean
}

export interface CodeRecord {
  readonly clientId: string
  readonly redirectUri: string
  /** whether `redirect_uri` was in the authorization request (RFC 6749 4.1.3) */
  readonly redirectUriGiven: boolean
  readonly codeChallenge: string
  readonly scope: string
  readonly subject: string
  /** the authorization request's `nonce`, for the ID token (OIDC Core section 3.1.2.1) */
  readonly nonce: string | undefined
  readonly signIn: SignIn
  readonly familyId: string
  readonly expiresAt: number
  used: boolean
  revoked: boolean
}

/** Records kept per kind: the oldest are forgotten past this (a long-running sandbox stays small). */
const MAX_RECORDS = 10_000

const remember = <V>(map: Map<string, V>, key: string, value: V): void => {
  map.set(key, value)
  if (map.size > MAX_RECORDS) map.delete(map.keys().next().value as string)
}

/** The result of presenting an access token. */
export type AccessCheck =
  | { readonly state: "valid"; readonly record: AccessRecord }
  | { readonly state: "expired" | "revoked"; readonly record: AccessRecord }
  | { readonly state: "unknown" }

/** The store of everything issued, with the counters the stats report. */
export class Registry {
  readonly #access = new Map<string, AccessRecord>()
  readonly #refresh = new Map<string, RefreshRecord>()
  readonly #codes = new Map<string, CodeRecord>()
  readonly #signingKey = randomBytes(32)
  readonly #issuer: string
  issued = 0
  revoked = 0

  constructor(issuer: string) {
    this.#issuer = issuer
  }

  /** Issues an access token; returns its value (the only time it exists outside the client). */
  issueAccess(input: {
    readonly clientId: string
    readonly grantType: string
    readonly scope: string | undefined
    readonly subject: string
    readonly signIn: SignIn | undefined
    readonly now: number
    readonly ttlSeconds: number
    readonly familyId: string | undefined
  }): { readonly value: string; readonly record: AccessRecord } {
    const iat = Math.floor(input.now / 1000)
    const header = { alg: "HS256", typ: "at+jwt" }
    const payload: Record<string, unknown> = {
      iss: this.#issuer,
      sub: input.subject,
      client_id: input.clientId,
      iat,
      exp: iat + input.ttlSeconds,
      jti: randomUUID()
    }
    if (input.scope !== undefined) payload.scope = input.scope
    const signingInput = `${b64(header)}.${b64(payload)}`
    const signature = createHmac("sha256", this.#signingKey).update(signingInput).digest("base64url")
    const value = `${signingInput}.${signature}`
    const record: AccessRecord = {
      fingerprint: fingerprint(value),
      clientId: input.clientId,
      grantType: input.grantType,
      scope: input.scope,
      subject: input.subject,
      signIn: input.signIn,
      issuedAt: input.now,
      expiresAt: input.now + input.ttlSeconds * 1000,
      familyId: input.familyId,
      revoked: false
    }
    remember(this.#access, sha256Hex(value), record)
    this.issued++
    return { value, record }
  }

  /** The record of an access token, whatever its state. */
  findAccess(value: string): AccessRecord | undefined {
    return this.#access.get(sha256Hex(value))
  }

  /** Revokes one access token; returns whether it was not revoked yet. */
  revokeAccess(record: AccessRecord): boolean {
    if (record.revoked) return false
    record.revoked = true
    this.revoked++
    return true
  }

  /** Looks a presented access token up; expiry is judged by the sandbox's clock `now`. */
  checkAccess(value: string, now: number): AccessCheck {
    const record = this.#access.get(sha256Hex(value))
    if (record === undefined) return { state: "unknown" }
    if (record.revoked) return { state: "revoked", record }
    if (now >= record.expiresAt) return { state: "expired", record }
    return { state: "valid", record }
  }

  issueRefresh(input: Omit<RefreshRecord, "fingerprint" | "used" | "revoked">): string {
    const value = opaque()
    remember(this.#refresh, sha256Hex(value), {
      ...input,
      fingerprint: fingerprint(value),
      used: false,
      revoked: false
    })
    return value
  }

  findRefresh(value: string): RefreshRecord | undefined {
    return this.#refresh.get(sha256Hex(value))
  }

  issueCode(input: Omit<CodeRecord, "used" | "revoked">): string {
    const value = opaque()
    remember(this.#codes, sha256Hex(value), { ...input, used: false, revoked: false })
    return value
  }

  findCode(value: string): CodeRecord | undefined {
    return this.#codes.get(sha256Hex(value))
  }

  /**
   * Revokes every access and refresh token of one grant: what a detected
   * refresh-token reuse (RFC 9700 section 4.14.2) or a replayed authorization
   * code (RFC 6749 section 4.1.2) calls for.
   */
  revokeFamily(familyId: string): number {
    let count = 0
    for (const record of this.#access.values()) {
      if (record.familyId === familyId && !record.revoked) {
        record.revoked = true
        count++
      }
    }
    for (const record of this.#refresh.values()) if (record.familyId === familyId) record.revoked = true
    for (const record of this.#codes.values()) if (record.familyId === familyId) record.revoked = true
    this.revoked += count
    return count
  }

  /**
   * Revokes every access token, refresh token and code issued to one user
   * (not the tokens of a client whose id happens to be the same: those are
   * `client_credentials` tokens); returns how many access tokens it revoked.
   */
  revokeSubject(subject: string): number {
    let count = 0
    for (const record of this.#access.values()) {
      if (record.subject === subject && record.grantType !== "client_credentials" && !record.revoked) {
        record.revoked = true
        count++
      }
    }
    for (const record of this.#refresh.values()) if (record.subject === subject) record.revoked = true
    for (const record of this.#codes.values()) if (record.subject === subject) record.revoked = true
    this.revoked += count
    return count
  }

  /**
   * Revokes the refresh tokens of one user, or of everyone; the access tokens
   * they produced stay valid until they expire. Returns how many it revoked
   * (spent, rotated refresh tokens are not counted: they were of no use).
   */
  revokeRefresh(subject: string | undefined): number {
    let count = 0
    for (const record of this.#refresh.values()) {
      if (subject !== undefined && record.subject !== subject) continue
      if (!record.revoked && !record.used) count++
      record.revoked = true
    }
    return count
  }

  /** Revokes everything issued so far; returns how many access tokens it revoked. */
  revokeAll(): number {
    let count = 0
    for (const record of this.#access.values()) {
      if (!record.revoked) {
        record.revoked = true
        count++
      }
    }
    for (const record of this.#refresh.values()) record.revoked = true
    for (const record of this.#codes.values()) record.revoked = true
    this.revoked += count
    return count
  }

  activeCount(now: number): number {
    let count = 0
    for (const record of this.#access.values()) if (!record.revoked && now < record.expiresAt) count++
    return count
  }

  /** The most recent access tokens, newest first. */
  recentAccess(limit: number): Array<AccessRecord> {
    return [...this.#access.values()].slice(-limit).reverse()
  }
}

const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString("base64url")

/** A new grant identifier (the "family" of tokens that one authorization produced). */
export const newFamily = (): string => randomUUID()
