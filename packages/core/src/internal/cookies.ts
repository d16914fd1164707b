/**
 * The two cookies of a signed-in browser, read from a `Cookie` header and
 * written as `Set-Cookie` values (RFC 6265bis). Their values are random
 * base64url strings made here, so nothing needs encoding; a value that is
 * not one is ignored (it was not set by us).
 */

/** Only what `randomValue` makes: 43 base64url characters (256 bits). */
const OUR_VALUE = /^[A-Za-z0-9_-]{43}$/

/**
 * The values of cookie `name` in a `Cookie` header that have the shape of
 * ours, in order (several when a sibling site planted one; `__Host-` names
 * prevent that over HTTPS).
 */
export const readCookie = (header: string | null | undefined, name: string): ReadonlyArray<string> => {
  if (header === null || header === undefined || header === "") return []
  const values: Array<string> = []
  for (const pair of header.split(";")) {
    const eq = pair.indexOf("=")
    if (eq === -1) continue
    if (pair.slice(0, eq).trim() !== name) continue
    let value = pair.slice(eq + 1).trim()
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1)
    if (OUR_VALUE.test(value)) values.push(value)
  }
  return values
}

/** Attributes of our cookies. */
export interface CookieAttributes {
  /** seconds; 0 deletes the cookie */
  readonly maxAgeSeconds: number
  /** `Secure`: every origin but loopback `http:` (a `__Host-` name requires it) */
  readonly secure: boolean
}

/**
 * A `Set-Cookie` value: `HttpOnly` (no script reads it), `SameSite=Lax` (sent
 * on the top-level navigation back from the authorization server, not on
 * cross-site subrequests), `Path=/`, no `Domain` (host-only, as `__Host-`
 * requires).
 */
export const setCookie = (name: string, value: string, attributes: CookieAttributes): string =>
  [
    `${name}=${value}`,
    "Path=/",
    `Max-Age=${Math.max(0, Math.floor(attributes.maxAgeSeconds))}`,
    "HttpOnly",
    "SameSite=Lax",
    ...(attributes.secure ? ["Secure"] : [])
  ].join("; ")

/** A `Set-Cookie` value that deletes cookie `name`. */
export const clearCookie = (name: string, secure: boolean): string =>
  `${setCookie(name, "", { maxAgeSeconds: 0, secure })}; Expires=Thu, 01 Jan 1970 00:00:00 GMT`

const base64url = (bytes: Uint8Array): string => {
  let binary = ""
  for (const byte of bytes) binary += String.fromCharCode(byte)
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "")
}

/** 256 random bits, base64url (43 characters): session ids, `state`, `nonce`, browser bindings. */
export const randomValue = (): string => base64url(crypto.getRandomValues(new Uint8Array(32)))

/** A cookie name RFC 6265 accepts (an RFC 9110 token). */
export const isCookieName = (name: string): boolean => /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(name)
