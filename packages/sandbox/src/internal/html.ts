/**
 * The HTML pages of WealthCare's authorization side: the sign-in page of
 * `/connect/authorize`, and the short pages for errors that must not go back
 * to the client by redirect (RFC 6749 section 4.1.2.1) and for sign-out.
 *
 * Every value written into HTML goes through {@link escapeHtml}, whatever its
 * source (configuration included: a test may name a user `<script>` to see
 * that nothing runs). No script at all: the Content Security Policy allows
 * none (`default-src 'none'`), only inline style, and a form may post to the
 * sandbox and, for the redirect back that follows a sign-in, to the client's
 * redirect URI origin. Chromium applies `form-action` to the redirects after
 * a form submission (CSP Level 3, section 6.3.1.1 "form-action"), so
 * `form-action 'self'` alone would block the way back to the application.
 *
 * @internal
 */
import type { ServerResponse } from "node:http"

/** HTML-escapes text or an attribute value (the five characters that matter). */
export const escapeHtml = (value: string): string => value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)

const STYLE = `
:root { color-scheme: light; --fg:#1d2330; --muted:#667085; --line:#d0d5dd; --bg:#f4f6f9; --card:#fff; --accent:#2e5aac; --bad:#b42318; }
* { box-sizing: border-box; }
body { margin:0; min-height:100vh; display:grid; place-items:start center; padding:48px 16px; font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif; color:var(--fg); background:var(--bg); }
main { width:100%; max-width:420px; background:var(--card); border:1px solid var(--line); border-radius:12px; padding:28px 28px 20px; box-shadow:0 1px 3px rgba(16,24,40,.08); }
.brand { margin:0 0 4px; font-size:13px; font-weight:600; color:var(--accent); letter-spacing:.02em; }
h1 { margin:0 0 12px; font-size:22px; }
p { margin:0 0 12px; }
.ask { color:var(--muted); }
.ask b { color:var(--fg); }
ul.scopes { list-style:none; display:flex; flex-wrap:wrap; gap:6px; padding:0; margin:0 0 16px; }
ul.scopes li { font:12px ui-monospace,SFMono-Regular,Menlo,monospace; background:#eef2fb; color:var(--accent); border-radius:10px; padding:2px 8px; }
.error { color:var(--bad); background:#fef3f2; border:1px solid #fecdca; border-radius:8px; padding:8px 12px; }
label { display:block; font-weight:600; margin:12px 0 4px; }
input[type=text], input[type=password] { width:100%; font:inherit; padding:8px 10px; border:1px solid var(--line); border-radius:8px; }
input:focus { outline:2px solid var(--accent); outline-offset:1px; }
.buttons { display:flex; gap:10px; margin:20px 0 8px; }
button { font:inherit; font-weight:600; border-radius:8px; padding:8px 18px; border:1px solid var(--line); background:var(--card); color:var(--fg); cursor:pointer; }
button.primary { background:var(--accent); border-color:var(--accent); color:#fff; }
section.users { margin-top:20px; border-top:1px solid var(--line); padding-top:12px; }
h2 { font-size:14px; margin:0 0 6px; }
table { width:100%; border-collapse:collapse; font-size:13px; }
th, td { text-align:left; padding:4px 6px; border-bottom:1px solid #eaecf0; }
th { color:var(--muted); font-weight:600; }
td.mono { font-family:ui-monospace,SFMono-Regular,Menlo,monospace; }
.note { font-size:12px; color:var(--muted); }
`

const head = (title: string): string =>
  `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>${escapeHtml(title)} \u00b7 WealthCare sandbox</title>
<style>${STYLE}</style>
</head>
<body>
<main>
<p class="brand">authfetch sandbox \u00b7 WealthCare</p>
`

const TAIL = "</main>\n</body>\n</html>\n"

/** The headers of every page of this module: never cached, never framed, no script. */
const pageHeaders = (formAction: string): Record<string, string> => ({
  "Content-Type": "text/html; charset=utf-8",
  "Cache-Control": "no-store",
  Pragma: "no-cache",
  "X-Frame-Options": "DENY",
  "X-Content-Type-Options": "nosniff",
  // The authorization request's URL (state, code_challenge) is nobody else's business.
  "Referrer-Policy": "no-referrer",
  "Content-Security-Policy": `default-src 'none'; style-src 'unsafe-inline'; form-action ${formAction}; frame-ancestors 'none'`
})

const send = (res: ServerResponse, status: number, html: string, headers: Record<string, string>): void => {
  res.writeHead(status, { ...headers, "Content-Length": String(Buffer.byteLength(html)) })
  res.end(html)
}

/** A page with a heading and a sentence: errors that are not redirected, and the sign-out page. */
export const messagePage = (
  res: ServerResponse,
  status: number,
  title: string,
  heading: string,
  text: string
): void =>
  send(
    res,
    status,
    `${head(title)}<h1>${escapeHtml(heading)}</h1>\n<p>${escapeHtml(text)}</p>\n${TAIL}`,
    pageHeaders("'none'")
  )

/**
 * The CSP source of where a sign-in sends the browser next: the redirect
 * URI's origin (or its scheme, for a private-use scheme of a native app,
 * RFC 8252 section 7.1). Both are serialised by the URL parser, so they cannot
 * carry a `;` or a space into the policy.
 */
export const redirectSource = (redirectUri: string): string => {
  const target = new URL(redirectUri)
  return target.protocol === "http:" || target.protocol === "https:" ? target.origin : target.protocol
}

export interface SignInPageInput {
  /** the pending request's id, for the hidden field */
  readonly requestId: string
  readonly clientId: string
  readonly scope: string
  readonly redirectUri: string
  /** prefilled username: `login_hint`, or what was typed before a failed attempt */
  readonly username: string | undefined
  readonly error: string | undefined
  readonly users: ReadonlyArray<{
    readonly username: string
    readonly password: string
    readonly name?: string
  }>
}

/**
 * Writes the sign-in page: the form (hidden `request`, `username`,
 * `password`, and two submit buttons named `action`: `approve` first, so
 * that Enter signs in, and `deny`), what the client asks for, and the test
 * users with their passwords (it is a sandbox: they open nothing else).
 */
export const signInPage = (res: ServerResponse, status: number, input: SignInPageInput): void => {
  const scopes = input.scope
    .split(" ")
    .filter((s) => s.length > 0)
    .map((s) => `<li>${escapeHtml(s)}</li>`)
    .join("")
  const users = input.users
    .map(
      (u) =>
        `<tr><td class="mono">${escapeHtml(u.username)}</td><td class="mono">${escapeHtml(u.password)}</td><td>${escapeHtml(u.name ?? "")}</td></tr>`
    )
    .join("\n")
  const back = redirectSource(input.redirectUri)
  const html = `${head("Sign in")}<h1>Sign in</h1>
<p class="ask"><b>${escapeHtml(input.clientId)}</b> asks to sign you in${scopes === "" ? "." : " with these scopes:"}</p>
${scopes === "" ? "" : `<ul class="scopes" id="scopes">${scopes}</ul>`}
${input.error === undefined ? "" : `<p class="error" role="alert" id="error">${escapeHtml(input.error)}</p>\n`}<form method="post" action="/connect/authorize" id="sign-in">
<input type="hidden" name="request" value="${escapeHtml(input.requestId)}">
<label for="username">Username</label>
<input type="text" id="username" name="username" autocomplete="username" autocapitalize="none" spellcheck="false" required autofocus value="${escapeHtml(input.username ?? "")}">
<label for="password">Password</label>
<input type="password" id="password" name="password" autocomplete="current-password" required>
<div class="buttons">
<button type="submit" class="primary" name="action" value="approve">Sign in</button>
<button type="submit" name="action" value="deny" formnovalidate>Cancel</button>
</div>
</form>
<p class="note">Signing in sends you back to ${escapeHtml(back)}.</p>
<section class="users">
<h2>Test users</h2>
<table id="users"><thead><tr><th>Username</th><th>Password</th><th>Name</th></tr></thead>
<tbody>
${users}
</tbody></table>
<p class="note">Sandbox users: these credentials open nothing but this local emulator.</p>
</section>
${TAIL}`
  send(res, status, html, pageHeaders(`'self' ${back}`))
}
