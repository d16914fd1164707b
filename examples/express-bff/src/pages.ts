/**
 * The signed-in pages, as plain HTML strings: the home page, the account
 * page (rendered on the server with the user's claims and what the API says
 * of their token), and a page whose script calls the per-user proxy.
 *
 * Every page has a Content-Security-Policy with a fresh nonce: its one
 * inline script and style run, nothing injected would; `connect-src 'self'`
 * keeps the script's calls on this origin; `form-action 'self'` keeps the
 * sign-out form here. Values are escaped; nothing secret is ever written into
 * a page (the session id is in an HttpOnly cookie; the tokens never leave the
 * server).
 */
import { randomBytes } from "node:crypto"

const escapeHtml = (value: unknown): string =>
  String(value ?? "").replace(
    /[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!
  )

export interface Page {
  readonly html: string
  readonly headers: Readonly<Record<string, string>>
}

const STYLE = `body{font:16px/1.5 system-ui,sans-serif;max-width:42rem;margin:2rem auto;padding:0 1rem}
dt{font-weight:600}code,dd{font-family:ui-monospace,monospace}button{font:inherit;padding:.3rem .9rem}
.error{color:#b00020}nav a{margin-right:1rem}`

const page = (title: string, body: string, script?: string): Page => {
  const nonce = randomBytes(16).toString("base64")
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style nonce="${nonce}">${STYLE}</style></head>
<body>
<nav><a href="/">Home</a><a href="/account">Account</a><a href="/app">Browser calls</a></nav>
<h1>${escapeHtml(title)}</h1>
${body}
${script === undefined ? "" : `<script nonce="${nonce}">${script}</script>`}
</body></html>
`
  return {
    html,
    headers: {
      "content-type": "text/html; charset=utf-8",
      // a page with a user's data is this browser's only
      "cache-control": "no-store",
      "content-security-policy": `default-src 'none'; script-src 'nonce-${nonce}'; style-src 'nonce-${nonce}'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'`,
      "x-content-type-options": "nosniff",
      // not "no-referrer": with it, Chrome sends `Origin: null` on this page's own form posts, and
      // the sign-out's CSRF check (Origin must be this app's) refuses them
      "referrer-policy": "same-origin"
    }
  }
}

const signOutForm = `<form method="post" action="/auth/signout"><button type="submit" id="sign-out">Sign out</button></form>`

/** `/`: who is signed in, or a link to sign in. */
export const homePage = (user: Readonly<Record<string, unknown>> | undefined): Page =>
  page(
    "express-bff",
    user === undefined
      ? `<p id="signed-out">Not signed in. <a id="sign-in" href="/auth/signin?returnTo=%2Faccount">Sign in</a></p>`
      : `<p>Signed in as <span id="user-name">${escapeHtml(user.name ?? user.sub)}</span>.</p>${signOutForm}`
  )

/** What the sandbox's `GET /v1/me` says of the token it received. */
export interface Me {
  readonly subject: string
  readonly clientId: string
  readonly scope: string | null
  readonly grantType: string
  readonly tokenFingerprint: string
}

/** `/account`: the user's claims and `/v1/me`, both read on the server. */
export const accountPage = (user: Readonly<Record<string, unknown>>, me: Me): Page =>
  page(
    "Account",
    `<p>Signed in as <span id="user-name">${escapeHtml(user.name ?? user.sub)}</span>
(<span id="user-email">${escapeHtml(user.email ?? "")}</span>).</p>
<h2>What the API says (called from the server with your token)</h2>
<dl>
<dt>subject</dt><dd id="api-subject">${escapeHtml(me.subject)}</dd>
<dt>client</dt><dd id="api-client">${escapeHtml(me.clientId)}</dd>
<dt>grant</dt><dd id="api-grant">${escapeHtml(me.grantType)}</dd>
<dt>scope</dt><dd id="api-scope">${escapeHtml(me.scope ?? "")}</dd>
<dt>token fingerprint</dt><dd id="api-token">${escapeHtml(me.tokenFingerprint)}</dd>
</dl>
${signOutForm}`
  )

/**
 * `/app`: the page's own script calls the per-user proxy (`/api/user`), as a
 * front end would: `GET /v1/me` (the subject is shown), then a `POST` of a
 * claim with the CSRF header `x-csrf: 1` (its status is shown). A `401` (the
 * session is over) sends the browser to sign in and back here.
 */
export const appPage = (): Page =>
  page(
    "Browser calls",
    `<p>This page's script calls <code>/api/user/*</code>; the server forwards each call with your token.</p>
<dl>
<dt>GET /api/user/v1/me: subject</dt><dd id="proxy-subject">…</dd>
<dt>POST /api/user/v1/claims: status</dt><dd id="proxy-post">…</dd>
</dl>
<p class="error" id="proxy-error" role="alert"></p>
${signOutForm}`,
    `(async () => {
  const show = (id, text) => { document.getElementById(id).textContent = text }
  const signInAgain = () => location.assign("/auth/signin?returnTo=" + encodeURIComponent(location.pathname))
  try {
    const me = await fetch("/api/user/v1/me", { headers: { accept: "application/json" } })
    if (me.status === 401) return signInAgain()
    if (!me.ok) throw new Error("GET /v1/me answered " + me.status)
    show("proxy-subject", (await me.json()).subject)
    const claim = await fetch("/api/user/v1/claims", {
      method: "POST",
      headers: { "content-type": "application/json", "x-csrf": "1", "idempotency-key": crypto.randomUUID() },
      body: JSON.stringify({ consumerId: "12345", accountType: "HSA", amount: 42.5 })
    })
    if (claim.status === 401) return signInAgain()
    show("proxy-post", String(claim.status))
  } catch (error) {
    show("proxy-error", String(error && error.message || error))
  } finally {
    document.body.dataset.ready = "true"
  }
})()`
  )
