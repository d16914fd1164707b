/**
 * The cookies one browser keeps for an app, fed with `Set-Cookie` values
 * (what the sessions' neutral methods return) and read back as a `Cookie`
 * header; and the WealthCare sandbox's sign-in form filled in by fetch.
 */

/** name → value; a cookie cleared by `Max-Age=0` or an empty value is forgotten. */
export class CookieJar {
  readonly cookies = new Map<string, string>()

  take(setCookies: ReadonlyArray<string>): this {
    for (const line of setCookies) {
      const [pair = ""] = line.split(";")
      const eq = pair.indexOf("=")
      const name = pair.slice(0, eq)
      const value = pair.slice(eq + 1)
      if (/Max-Age=0/i.test(line) || value === "") this.cookies.delete(name)
      else this.cookies.set(name, value)
    }
    return this
  }

  header(): string {
    return [...this.cookies].map(([name, value]) => `${name}=${value}`).join("; ")
  }
}

/**
 * The sandbox's sign-in page (`GET /connect/authorize`) answered as a user
 * would: its form posted with `user`'s credentials; returns the URL it sends
 * the browser back to (the callback, with `code`, `state`, `iss`).
 */
export const fillSandboxSignIn = async (
  authorizationUrl: string,
  user: { readonly username: string; readonly password: string }
): Promise<URL> => {
  const page = await fetch(authorizationUrl)
  const html = await page.text()
  const request = /name="request" value="([^"]+)"/.exec(html)?.[1]
  if (request === undefined) throw new Error(`no sign-in form (HTTP ${page.status})`)
  const answer = await fetch(new URL("/connect/authorize", authorizationUrl), {
    method: "POST",
    redirect: "manual",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      request,
      username: user.username,
      password: user.password,
      action: "approve"
    })
  })
  await answer.arrayBuffer()
  const location = answer.headers.get("location")
  if (location === null) throw new Error(`the sign-in form answered ${answer.status} without a redirect`)
  return new URL(location)
}
