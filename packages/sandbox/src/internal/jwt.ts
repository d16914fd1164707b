/**
 * The sandbox's RS256 signing key, and the JSON Web Tokens it signs with it:
 * the ID tokens of WealthCare's OpenID Connect side (OIDC Core section 2),
 * published for verification as a JWK Set (RFC 7517) at
 * `/.well-known/jwks.json`.
 *
 * One RSA 2048 key pair per sandbox, generated with `node:crypto` at start
 * and never written anywhere: a restart is a key rotation, as a client that
 * caches keys must survive. The key id is the key's RFC 7638 thumbprint, so
 * it names the key, not the process.
 *
 * @internal
 */
import { createHash, generateKeyPair, type KeyObject, sign, verify } from "node:crypto"

/** The public half as a JWK, as `/.well-known/jwks.json` lists it. */
export interface PublicJwk {
  readonly kty: "RSA"
  readonly n: string
  readonly e: string
  readonly kid: string
  readonly alg: "RS256"
  readonly use: "sig"
}

export interface SigningKey {
  readonly privateKey: KeyObject
  readonly publicKey: KeyObject
  readonly jwk: PublicJwk
}

/** A new RSA 2048 key pair, with its JWK and key id. */
export const newSigningKey = async (): Promise<SigningKey> => {
  const { privateKey, publicKey } = await new Promise<{ privateKey: KeyObject; publicKey: KeyObject }>(
    (resolve, reject) =>
      generateKeyPair("rsa", { modulusLength: 2048, publicExponent: 0x10001 }, (err, pub, priv) =>
        err ? reject(err) : resolve({ privateKey: priv, publicKey: pub })
      )
  )
  const { n, e } = publicKey.export({ format: "jwk" }) as { n: string; e: string }
  // RFC 7638 section 3.2: the required members, in lexicographic order, no whitespace.
  const kid = createHash("sha256")
    .update(JSON.stringify({ e, kty: "RSA", n }))
    .digest("base64url")
  return { privateKey, publicKey, jwk: { kty: "RSA", n, e, kid, alg: "RS256", use: "sig" } }
}

const b64json = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString("base64url")

/** A compact JWS (RFC 7515 section 7.1) of `payload`, RS256 (RSASSA-PKCS1-v1_5 with SHA-256, RFC 7518 section 3.3). */
export const signJwt = (key: SigningKey, payload: Record<string, unknown>): string => {
  const signingInput = `${b64json({ alg: "RS256", kid: key.jwk.kid, typ: "JWT" })}.${b64json(payload)}`
  const signature = sign("sha256", Buffer.from(signingInput), key.privateKey).toString("base64url")
  return `${signingInput}.${signature}`
}

/**
 * The payload of a JWT this key signed, or undefined when it is not one
 * (malformed, another algorithm, another key, a bad signature). Expiry is not
 * judged here: an `id_token_hint` may be expired (OpenID Connect
 * RP-Initiated Logout 1.0 section 2).
 */
export const verifyJwt = (key: SigningKey, token: string): Record<string, unknown> | undefined => {
  const parts = token.split(".")
  if (parts.length !== 3) return undefined
  const [header, payload, signature] = parts as [string, string, string]
  try {
    const h = JSON.parse(Buffer.from(header, "base64url").toString("utf8")) as Record<string, unknown>
    // RFC 8725 section 3.1: the algorithm is the one expected, never what the token says.
    if (h.alg !== "RS256" || h.kid !== key.jwk.kid) return undefined
    const ok = verify(
      "sha256",
      Buffer.from(`${header}.${payload}`),
      key.publicKey,
      Buffer.from(signature, "base64url")
    )
    if (!ok) return undefined
    const body = JSON.parse(Buffer.from(payload, "base64url").toString("utf8")) as unknown
    return typeof body === "object" && body !== null && !Array.isArray(body)
      ? (body as Record<string, unknown>)
      : undefined
  } catch {
    return undefined
  }
}
