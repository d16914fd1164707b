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

/** The value of the sign-in form's hidden `request` field. */
export const requestIdOf = (html: string): string => {
  const match = /<input type="hidden" name="request" value="([^"]+)">/.exec(html)
  if (match === null) throw new Error(`no sign-in form in the page:\n${html.slice(0, 500)}`)
  return match[1]!
}

/** An authorization request (`GET /connect/authorize`), redirects not followed. */
export const authorizeRequest = async (
  sandbox: Sandbox,
  params: Record<string, string>
): Promise<{ status: number; location: URL | undefined; text: string; headers: Headers }> => {
  const url = new URL(sandbox.authorizeUrl!)
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v)
  const res = await fetch(url, { redirect: "manual" })
  const location = res.headers.get("location")
  return {
    status: res.status,
    location: location === null ? undefined : new URL(location),
    text: await res.text(),
    headers: res.headers
  }
}

/** The sign-in form posted, as a browser posts it; redirects not followed. */
export const submitSignIn = async (
  sandbox: Sandbox,
  fields: Record<string, string>
): Promise<{ status: number; location: URL | undefined; text: string; headers: Headers }> => {
  const res = await fetch(sandbox.authorizeUrl!, {
    method: "POST",
    headers: FORM,
    body: new URLSearchParams(fields).toString(),
    redirect: "manual"
  })
  const location = res.headers.get("location")
  return {
    status: res.status,
    location: location === null ? undefined : new URL(location),
    text: await res.text(),
    headers: res.headers
  }
}
