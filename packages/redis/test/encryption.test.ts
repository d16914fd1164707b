import { randomBytes } from "node:crypto"
import { inspect } from "node:util"
import { InvalidConfigError } from "@authfetch/core"
import { describe, expect, it } from "vitest"
import { Encryption, redisStoreFromEnv } from "../src/index.ts"

const raw = randomBytes(32)
const keys = Encryption.keys([raw.toString("base64")])

describe("Encryption", () => {
  it("seals and opens; the sealed form holds neither the plaintext nor the key", () => {
    const sealed = Encryption.seal(keys, "tk_a", "access-token-value")
    expect(Encryption.open(keys, "tk_a", sealed)).toBe("access-token-value")
    expect(sealed).not.toContain("access-token-value")
    expect(sealed).not.toContain(raw.toString("base64url"))
    // a new IV each time
    expect(Encryption.seal(keys, "tk_a", "access-token-value")).not.toBe(sealed)
  })

  it("a value sealed for one key does not open under another (bound as additional data)", () => {
    const sealed = Encryption.seal(keys, "tk_a", "x")
    expect(Encryption.open(keys, "tk_b", sealed)).toBeUndefined()
  })

  it("a tampered value, a truncated one or a foreign format does not open", () => {
    const sealed = Encryption.seal(keys, "tk_a", "some plaintext")
    const parts = sealed.split(".")
    const body = Buffer.from(parts[3] as string, "base64url")
    body[0] = (body[0] as number) ^ 1
    expect(
      Encryption.open(keys, "tk_a", [parts[0], parts[1], parts[2], body.toString("base64url")].join("."))
    ).toBeUndefined()
    expect(Encryption.open(keys, "tk_a", sealed.slice(0, -4))).toBeUndefined()
    expect(Encryption.open(keys, "tk_a", "v2.x.y.z")).toBeUndefined()
    expect(Encryption.open(keys, "tk_a", "")).toBeUndefined()
  })

  it("rotation: seals with the first key, opens with any", () => {
    const next = Encryption.keys([randomBytes(32).toString("hex"), raw])
    const old = Encryption.seal(keys, "tk_a", "old")
    expect(Encryption.open(next, "tk_a", old)).toBe("old")
    const fresh = Encryption.seal(next, "tk_a", "new")
    expect(Encryption.open(next, "tk_a", fresh)).toBe("new")
    expect(Encryption.open(keys, "tk_a", fresh)).toBeUndefined()
  })

  it("accepts base64, base64url and hex; refuses other lengths without quoting the key", () => {
    expect(Encryption.parseKeys([raw.toString("base64url")])).toBeInstanceOf(Encryption.Keys)
    expect(Encryption.parseKeys([raw.toString("hex")])).toBeInstanceOf(Encryption.Keys)
    const short = randomBytes(24).toString("base64")
    const problems = Encryption.parseKeys([short])
    expect(Array.isArray(problems)).toBe(true)
    expect(String(problems)).not.toContain(short)
    expect(() => Encryption.keys([])).toThrow(/at least one key/)
  })

  it("an unset variable or a trailing comma: empty entries are left out", () => {
    expect(() => Encryption.keys("".split(","))).toThrow(/at least one key is required/)
    expect(Encryption.keys(`${raw.toString("base64")},`.split(",")).ids).toHaveLength(1)
  })

  it("keys print as fingerprints only", () => {
    const printed = [inspect(keys, { depth: 10, showHidden: true }), JSON.stringify(keys), String(keys)].join(
      "\n"
    )
    for (const encoding of ["base64", "base64url", "hex"] as const) {
      expect(printed).not.toContain(raw.toString(encoding))
    }
    expect(printed).toContain(keys.ids[0])
  })

  it("the digest of a token is not the token", () => {
    const digest = Encryption.digest("eyJhbGciOi.token.value")
    expect(digest).toHaveLength(32)
    expect(digest).not.toContain("token")
  })
})

describe("redisStoreFromEnv", () => {
  it("no REDIS_URL: no store (memory); REDIS_URL without keys or with a bad one: refused, naming the variable, never a value", async () => {
    expect(redisStoreFromEnv({ env: {} })).toBeUndefined()
    expect(() => redisStoreFromEnv({ env: { REDIS_URL: "redis://u:hunter2@127.0.0.1:1" } })).toThrow(
      /REDIS_URL is set, so TOKEN_ENCRYPTION_KEYS is required/
    )
    const bad = randomBytes(20).toString("base64")
    let message = ""
    try {
      redisStoreFromEnv({
        env: {
          REDIS_URL: "redis://u:hunter2@127.0.0.1:1",
          TOKEN_ENCRYPTION_KEYS: `${raw.toString("base64")},${bad}`
        }
      })
    } catch (error) {
      expect(error).toBeInstanceOf(InvalidConfigError)
      message = (error as Error).message
    }
    expect(message).toContain("TOKEN_ENCRYPTION_KEYS: encryptionKeys[1] is not 32 bytes")
    expect(message).not.toContain(bad)
    expect(message).not.toContain("hunter2")
    const store = redisStoreFromEnv({
      env: { REDIS_URL: "redis://127.0.0.1:1", TOKEN_ENCRYPTION_KEYS: raw.toString("base64") }
    })
    expect(store).toBeDefined()
    await store?.close()
  })
})
