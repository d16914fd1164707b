/**
 * Helpers shared by the sandbox tests: plain fetch over real sockets, no
 * client library of ours (the sandbox is tested from the outside).
 */
import { createHash, randomBytes } from "node:crypto"
import type { Sandbox } from "../src/index.ts"

export const FORM = { "content-type": "application/x-www-form-urlencoded" }

/** The documented token request: a form POST (what `curl -d` sends). */
export const postForm = (
  url: string,
  params: Record<string, string> | string,
  headers: Record<string, string> = {}
): Promise<Response> =>
  fetch(url, {
    method: "POST",
    headers: { ...FORM, ...headers },
    body: typeof params === "string" ? params : new URLSearchParams(params).toString()
  })

export const CLIENT = { client_id: "sandbox-client", client_secret: "sandbox-secret" }

/** A client-credentials token from a sandbox's default client. */
export const clientCredentials = async (
  sandbox: Sandbox,
  extra: Record<string, string> = {}
): Promise<string> => {
  const res = await postForm(sandbox.tokenUrl, { grant_type: "client_credentials", ...CLIENT, ...extra })
  if (res.status !== 200) throw new Error(`token request failed: ${res.status} ${await res.text()}`)
  return ((await res.json()) as { access_token: string }).access_token
}

export const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` })

export const fingerprintOf = (token: string): string =>
  createHash("sha256").update(token).digest("hex").slice(0, 8)

export const pkce = (): { verifier: string; challenge: string } => {
  const verifier = randomBytes(32).toString("base64url")
  return { verifier, challenge: createHash("sha256").update(verifier).digest("base64url") }
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))
