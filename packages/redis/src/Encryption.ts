/**
 * Tokens at rest: every value the store writes to Redis is sealed with
 * AES-256-GCM under a key the application supplies (WEX asks partners not to
 * keep tokens in persistent storage; a Redis snapshot, replica or `MONITOR`
 * must not give them away).
 *
 * Several keys allow rotation: values are sealed with the first and opened
 * with whichever key sealed them (each sealed value names its key by a
 * fingerprint, never the key). Rotate by putting the new key first on every
 * instance while the old one stays second; drop the old one after a token
 * lifetime. The Redis key a value belongs to is bound in as additional data,
 * so a sealed value copied under another key does not open.
 *
 * Format: `v1.<key fingerprint>.<12-byte IV>.<ciphertext + 16-byte tag>`,
 * base64url parts.
 *
 * @example
 * ```ts
 * import { Encryption } from "@authfetch/redis"
 *
 * const keys = Encryption.keys([process.env.TOKEN_ENCRYPTION_KEY!]) // 32 bytes, base64
 * const sealed = Encryption.seal(keys, "tk_abc", "plaintext")
 * Encryption.open(keys, "tk_abc", sealed) // "plaintext"
 * ```
 *
 * @since 0.1.0
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from "node:crypto"

const VERSION = "v1"

/**
 * Encryption keys, ready to use. The first seals, all open. Opaque: printing,
 * logging or `JSON.stringify`-ing it shows the key fingerprints only.
 *
 * @since 0.1.0
 */
export class Keys {
  /** the fingerprints of the keys, the sealing one first (digests, not keys) */
  readonly ids: ReadonlyArray<string>
  constructor(list: ReadonlyArray<KeyEntry>) {
    this.ids = list.map((entry) => entry.id)
    secretKeys.set(this, list)
  }
  toString(): string {
    return `EncryptionKeys(${this.ids.join(", ")})`
  }
  toJSON(): Record<string, unknown> {
    return { _tag: "EncryptionKeys", ids: this.ids }
  }
}

interface KeyEntry {
  readonly id: string
  readonly key: Uint8Array
}

/** The key bytes, kept off the object so that no enumeration, spread or clone reaches them. */
const secretKeys = new WeakMap<Keys, ReadonlyArray<KeyEntry>>()
const entriesOf = (keys: Keys): ReadonlyArray<KeyEntry> => secretKeys.get(keys) ?? []

Object.defineProperty(Keys.prototype, Symbol.for("nodejs.util.inspect.custom"), {
  value(this: Keys) {
    return this.toString()
  }
})

/**
 * A key as given: 32 bytes, or their base64 / base64url / hex encoding.
 *
 * @since 0.1.0
 */
export type KeyInput = string | Uint8Array

const decode = (input: KeyInput): Uint8Array | undefined => {
  if (typeof input !== "string") return input
  const text = input.trim()
  if (/^[0-9a-f]{64}$/i.test(text)) return Buffer.from(text, "hex")
  if (/^[A-Za-z0-9+/_-]{43}=?$/.test(text))
    return Buffer.from(text.replace(/-/g, "+").replace(/_/g, "/"), "base64")
  return undefined
}

/**
 * Checks and prepares encryption keys; returns the problems instead when a
 * key is missing or not 32 bytes (the problems never contain a key).
 *
 * @example
 * ```ts
 * const keys = Encryption.parseKeys(["q0S...="])
 * if (Array.isArray(keys)) throw new Error(keys.join("; "))
 * ```
 *
 * @since 0.1.0
 */
export const parseKeys = (given: ReadonlyArray<KeyInput> | undefined): Keys | Array<string> => {
  // Empty entries are left out: `"".split(",")` (an unset variable) or a trailing comma.
  const inputs = Array.isArray(given)
    ? given.filter((input) => !(typeof input === "string" && input.trim() === ""))
    : []
  if (inputs.length === 0) {
    return [
      "encryptionKeys: at least one key is required (32 random bytes, base64: `openssl rand -base64 32`)"
    ]
  }
  const problems: Array<string> = []
  const list = inputs.flatMap((input, index) => {
    const key = typeof input === "string" || input instanceof Uint8Array ? decode(input) : undefined
    if (key === undefined || key.length !== 32) {
      problems.push(`encryptionKeys[${index}] is not 32 bytes (give 32 random bytes, or their base64 or hex)`)
      return []
    }
    const id = createHash("sha256").update("authfetch key id").update(key).digest("base64url").slice(0, 8)
    return [{ id, key: Uint8Array.from(key) }]
  })
  return problems.length > 0 ? problems : new Keys(list)
}

/**
 * `parseKeys`, throwing a `TypeError` listing the problems.
 *
 * @example
 * ```ts
 * const keys = Encryption.keys([process.env.TOKEN_ENCRYPTION_KEY!])
 * ```
 *
 * @since 0.1.0
 */
export const keys = (inputs: ReadonlyArray<KeyInput>): Keys => {
  const parsed = parseKeys(inputs)
  if (Array.isArray(parsed)) throw new TypeError(parsed.join("; "))
  return parsed
}

const aad = (context: string) => Buffer.from(`authfetch:${VERSION}:${context}`)

/**
 * Seals `plaintext` for `context` (the Redis key it is written under) with
 * the first key.
 *
 * @example
 * ```ts
 * const sealed = Encryption.seal(keys, "tk_abc", JSON.stringify(entry))
 * ```
 *
 * @since 0.1.0
 */
export const seal = (keys: Keys, context: string, plaintext: string): string => {
  const { id, key } = entriesOf(keys)[0] as KeyEntry
  const iv = randomBytes(12)
  const cipher = createCipheriv("aes-256-gcm", key, iv)
  cipher.setAAD(aad(context))
  const body = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final(), cipher.getAuthTag()])
  return `${VERSION}.${id}.${iv.toString("base64url")}.${body.toString("base64url")}`
}

/**
 * Opens a sealed value; `undefined` when no key opens it (a key that was
 * rotated out, a value written for another context, a tampered value).
 *
 * @example
 * ```ts
 * const plaintext = Encryption.open(keys, "tk_abc", sealed)
 * ```
 *
 * @since 0.1.0
 */
export const open = (keys: Keys, context: string, sealed: string): string | undefined => {
  const [version, id, iv, body] = sealed.split(".")
  if (version !== VERSION || iv === undefined || body === undefined) return undefined
  const entry = entriesOf(keys).find((candidate) => candidate.id === id)
  if (entry === undefined) return undefined
  const bytes = Buffer.from(body, "base64url")
  if (bytes.length < 16) return undefined
  try {
    const decipher = createDecipheriv("aes-256-gcm", entry.key, Buffer.from(iv, "base64url"))
    decipher.setAAD(aad(context))
    decipher.setAuthTag(bytes.subarray(bytes.length - 16))
    return Buffer.concat([decipher.update(bytes.subarray(0, bytes.length - 16)), decipher.final()]).toString(
      "utf8"
    )
  } catch {
    return undefined
  }
}

/**
 * A digest of a token value: what Redis keeps to compare tokens (Lua
 * compare-and-expire) without holding the token.
 *
 * @example
 * ```ts
 * const digest = Encryption.digest(token.reveal())
 * ```
 *
 * @since 0.1.0
 */
export const digest = (value: string): string =>
  createHash("sha256").update(value).digest("base64url").slice(0, 32)
