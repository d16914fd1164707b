/**
 * An access token as authfetch holds it, and the rules for when it is fresh.
 *
 * Times are local: `receivedAt` is our clock when the response arrived and
 * `expiresAt = receivedAt + expires_in`, so a skewed server clock cannot make a
 * token look fresh or stale (RFC 6749 section 5.1 gives `expires_in` as a
 * duration for that reason). The token value and the refresh token are
 * `Redacted`: printing, logging or `JSON.stringify`-ing an `AccessToken` never
 * shows them.
 *
 * @example
 * ```ts
 * const token = await tokens.getToken()
 * await fetch(url, { headers: { authorization: token.authorization() } })
 * ```
 *
 * @since 0.1.0
 */
import { Duration, Redacted } from "effect"
import * as knownSecrets from "./internal/knownSecrets.ts"

/**
 * Options that decide when a token is renewed.
 *
 * @since 0.1.0
 */
export interface FreshnessOptions {
  /**
   * How long before expiry a token stops being handed out. Capped at a quarter
   * of the token's lifetime, so a 5 s token is not considered stale on arrival.
   * Default: 60 seconds.
   */
  readonly refreshMargin?: Duration.Input | undefined
  /**
   * Fraction of the lifetime over which the background refresh point is spread
   * (0 disables). Instances started together then do not refresh in step.
   * Default: 0.1.
   */
  readonly refreshJitter?: number | undefined
}

/** Default refresh margin: the WEX sample clients use 60 s. */
export const DEFAULT_REFRESH_MARGIN: Duration.Duration = Duration.seconds(60)
/** Default spread of the refresh-ahead point, as a fraction of the lifetime. */
export const DEFAULT_REFRESH_JITTER = 0.1
/** The margin never exceeds this share of a token's lifetime. */
const MAX_MARGIN_SHARE = 0.25

/**
 * The fields of an `AccessToken`.
 *
 * @since 0.1.0
 */
export interface AccessTokenFields {
  /** the token value; `token.reveal()` (or `Redacted.value(token.value)`) to read it */
  readonly value: Redacted.Redacted<string>
  /** RFC 6749 `token_type`, e.g. `Bearer` */
  readonly tokenType: string
  /** local time (ms since epoch) when the token response arrived */
  readonly receivedAt: number
  /** local time (ms since epoch) when the token expires */
  readonly expiresAt: number
  /** after this local time the token is no longer handed out */
  readonly staleAt: number
  /** local time when a background refresh is started */
  readonly refreshAt: number
  /** granted scope (space-delimited), when the server said */
  readonly scope?: string | undefined
  /** refresh token issued with this access token, if any */
  readonly refreshToken?: Redacted.Redacted<string> | undefined
  /** a number unique within the process, to tell tokens apart in events and logs */
  readonly id: number
}

/**
 * An OAuth 2.0 access token and its timing.
 *
 * @example
 * ```ts
 * const token = await tokens.getToken()
 * token.authorization() // "Bearer eyJ..."
 * String(token)          // "AccessToken(#1 Bearer, expiresAt ...)" — never the value
 * ```
 *
 * @since 0.1.0
 */
export interface AccessToken extends AccessTokenFields {}

// biome-ignore lint/suspicious/noUnsafeDeclarationMerging: the interface only declares the fields the constructor assigns
export class AccessToken {
  constructor(fields: AccessTokenFields) {
    Object.assign(this, fields)
    // so that an API echoing it back never gets it into an error or a log
    knownSecrets.remember(Redacted.value(fields.value), fields.expiresAt)
  }

  /** The token value. Handle with care: never log it. */
  reveal(): string {
    return Redacted.value(this.value)
  }

  /**
   * The refresh token's value, to persist a rotated one (`onTokenChange`); `undefined`
   * when the server issued none. Handle with care: never log it.
   *
   * @example
   * ```ts
   * onTokenChange: async (token) => {
   *   const refreshToken = token.revealRefreshToken()
   *   if (refreshToken) await vault.write("wealthcare-refresh-token", refreshToken)
   * }
   * ```
   */
  revealRefreshToken(): string | undefined {
    return this.refreshToken === undefined ? undefined : Redacted.value(this.refreshToken)
  }

  /** The `Authorization` header value (RFC 6750 section 2.1): `Bearer <token>`. */
  authorization(): string {
    let header = authorizations.get(this)
    if (header === undefined) {
      // RFC 6750 uses "Bearer"; servers answering "bearer" mean the same scheme.
      const scheme = this.tokenType.toLowerCase() === "bearer" ? "Bearer" : this.tokenType
      header = `${scheme} ${Redacted.value(this.value)}`
      authorizations.set(this, header)
    }
    return header
  }

  /** A secret-free description. */
  toString(): string {
    return `AccessToken(#${this.id} ${this.tokenType}, expiresAt ${new Date(this.expiresAt).toISOString()})`
  }

  /** A secret-free JSON form. */
  toJSON(): Record<string, unknown> {
    return {
      _tag: "AccessToken",
      id: this.id,
      tokenType: this.tokenType,
      receivedAt: this.receivedAt,
      expiresAt: this.expiresAt,
      scope: this.scope,
      hasRefreshToken: this.refreshToken !== undefined
    }
  }
}

/**
 * Each token's header value, built once: it is set on every request, and a
 * string built anew each time is one more allocation, and one more
 * flattening when the HTTP client checks the value. Kept outside the object so that no
 * enumeration, spread or structured clone of a token can reach it.
 */
const authorizations = new WeakMap<AccessToken, string>()

// Node's util.inspect hook, added outside the class body so that it is not part of
// the class's type (two builds of `AccessToken`, src and dist, stay assignable).
Object.defineProperty(AccessToken.prototype, Symbol.for("nodejs.util.inspect.custom"), {
  value(this: AccessToken) {
    return this.toString()
  }
})

let nextId = 0

/**
 * Computes the timing of a token received at `receivedAt` with the given
 * lifetime, and builds it.
 *
 * @example
 * ```ts
 * const token = makeAccessToken({ value: Redacted.make("abc"), tokenType: "Bearer", receivedAt: Date.now(), expiresIn: Duration.seconds(600) }, {}, Math.random())
 * ```
 *
 * @since 0.1.0
 */
export const makeAccessToken = (
  fields: {
    readonly value: Redacted.Redacted<string>
    readonly tokenType: string
    readonly receivedAt: number
    readonly expiresIn: Duration.Duration
    readonly scope?: string | undefined
    readonly refreshToken?: Redacted.Redacted<string> | undefined
  },
  options: FreshnessOptions,
  random: number
): AccessToken => {
  const lifetime = Duration.toMillis(fields.expiresIn)
  const margin = Math.min(
    Duration.toMillis(Duration.fromInputUnsafe(options.refreshMargin ?? DEFAULT_REFRESH_MARGIN)),
    lifetime * MAX_MARGIN_SHARE
  )
  const jitter = Math.min(Math.max(options.refreshJitter ?? DEFAULT_REFRESH_JITTER, 0), 0.5)
  const expiresAt = fields.receivedAt + lifetime
  const staleAt = expiresAt - margin
  // Refresh ahead a little before the token turns stale, at a random point of
  // the last `jitter` share of its fresh window.
  const freshWindow = staleAt - fields.receivedAt
  const refreshAt = staleAt - freshWindow * jitter * random - freshWindow * 0.05
  return new AccessToken({
    value: fields.value,
    tokenType: fields.tokenType,
    receivedAt: fields.receivedAt,
    expiresAt,
    staleAt,
    refreshAt: Math.max(fields.receivedAt, refreshAt),
    scope: fields.scope,
    refreshToken: fields.refreshToken,
    id: ++nextId
  })
}

/**
 * Rebuilds a token read back from a shared store (another instance acquired
 * it): the same timing, a new process-local `id`. A store keeps the object it
 * restored for as long as the stored entry is unchanged, so that one token
 * has one id in a process.
 *
 * @example
 * ```ts
 * const token = restoreAccessToken({ ...decrypted, value: Redacted.make(decrypted.value) })
 * ```
 *
 * @since 0.1.0
 */
export const restoreAccessToken = (fields: Omit<AccessTokenFields, "id">): AccessToken =>
  new AccessToken({ ...fields, id: ++nextId })

/**
 * Whether two tokens carry the same value (the same token, whichever instance
 * or store entry each object came from).
 *
 * @example
 * ```ts
 * if (sameToken(stored, current)) return
 * ```
 *
 * @since 0.1.0
 */
export const sameToken = (a: AccessToken, b: AccessToken): boolean => a === b || a.reveal() === b.reveal()

/**
 * A token is fresh, and handed out without waiting, until `staleAt`.
 *
 * @example
 * ```ts
 * if (!isFresh(token, Date.now())) await tokens.getToken()
 * ```
 *
 * @since 0.1.0
 */
export const isFresh = (token: AccessToken, now: number): boolean => now < token.staleAt

/**
 * A token is still accepted by the server (as far as we know) until `expiresAt`.
 * Between `staleAt` and `expiresAt` it is served only when a refresh failed
 * (fail-static).
 *
 * @example
 * ```ts
 * isUsable(token, Date.now())
 * ```
 *
 * @since 0.1.0
 */
export const isUsable = (token: AccessToken, now: number): boolean => now < token.expiresAt

const rewrap = (value: string | undefined): Redacted.Redacted<string> | undefined =>
  value === undefined ? undefined : Redacted.make(value, { label: "refresh_token" })

/**
 * The same token, marked expired now: what `invalidate` stores, so that its
 * refresh token survives for the next acquisition.
 *
 * @since 0.1.0
 */
export const expire = (token: AccessToken, now: number): AccessToken =>
  new AccessToken({
    ...token,
    // Read through the token's own methods: a token made by another copy of this module
    // (a bundler's duplicate, a store built in another bundle) holds its values in that
    // copy's `Redacted` registry, which this copy cannot read.
    value: Redacted.make(token.reveal(), { label: "access_token" }),
    refreshToken: rewrap(token.revealRefreshToken()),
    expiresAt: Math.min(now, token.expiresAt),
    staleAt: Math.min(now, token.staleAt),
    refreshAt: Math.min(now, token.refreshAt)
  })
