/**
 * Test helpers for the sign-in routes: a WealthCare sandbox with two users
 * that approves a sign-in without its page (`autoApprove`; `login_hint`
 * picks the user), a browser played by a cookie jar that calls route exports
 * with real `Request`s (as Next does, params included), and a recording
 * `fetch` for the sessions' own requests, which captures every token the
 * token endpoint issues (the sandbox keeps fingerprints only) for the leak
 * scans.
 */
import { SessionStore, type UserSessionsConfig } from "@authfetch/core"
import { type Sandbox, startSandbox } from "@authfetch/sandbox"

/** The app's origin as the browser sees it (no server listens: routes are called directly). */
export const APP = "http://127.0.0.1:3999"
export const CLIENT_ID = "next-app"
export const CLIENT_SECRET = "next-signin-secret-0f6a1c"
export const USERS = [
  { username: "alice", password: "alice-password", name: "Alice Example", email: "alice@example.com" },
  { username: "bob", password: "bob-password", name: "Bob Example", email: "bob@example.com" }
]

export const startWealthcare = (options: { tokenTtl?: number } = {}): Promise<Sandbox> =>
  startSandbox({
    profile: "wealthcare",
    autoApprove: true,
    users: USERS,
    ...(options.tokenTtl === undefined ? {} : { tokenTtl: options.tokenTtl }),
    clients: [
      {
        clientId: CLIENT_ID,
        clientSecret: CLIENT_SECRET,
        // loopback http: the sandbox takes any port (RFC 8252 7.3)
        redirectUris: ["http://127.0.0.1/auth/callback"]
      }
    ]
  })

/** Every token value the token endpoint answered with, and every code and state seen. */
export interface Secrets {
  readonly values: Set<string>
  /** the sessions' `fetch`: records token responses */
  readonly fetch: typeof globalThis.fetch
}

export const recordSecrets = (): Secrets => {
  const values = new Set<string>([CLIENT_SECRET])
  const recording: typeof globalThis.fetch = async (input, init) => {
    const response = await fetch(input, init)
    const url = typeof input === "string" ? input : input instanceof URL ? input.href : input.url
    if (!url.endsWith("/connect/token")) return response
    const text = await response.text()
    try {
      const body = JSON.parse(text) as Record<string, unknown>
      for (const name of ["access_token", "refresh_token", "id_token"]) {
        if (typeof body[name] === "string") values.add(body[name] as string)
      }
    } catch {}
    return new Response(text, { status: response.status, headers: response.headers })
  }
  return { values, fetch: recording }
}

/** In the Edge-runtime project sessions need a store (the default memory one is refused there). */
export const storeOption = () =>
  process.env.TEST_RUNTIME === "edge" ? { store: SessionStore.layerMemory } : undefined

export const sessionsConfig = (
  sandbox: Sandbox,
  extra: Partial<UserSessionsConfig> = {}
): UserSessionsConfig => ({
  issuer: sandbox.issuer!,
  clientId: CLIENT_ID,
  clientSecret: CLIENT_SECRET,
  scope: "openid profile email offline_access bensoft_api",
  redirectUri: `${APP}/auth/callback`,
  ...extra
})

type Handler = (
  request: Request,
  context?: {
    readonly params?: Promise<Readonly<Record<string, string | ReadonlyArray<string> | undefined>>>
  }
) => Promise<Response>

/** What a route module exports, by method. */
export type Routes = Readonly<Partial<Record<"GET" | "POST" | "PUT" | "PATCH" | "DELETE" | "HEAD", Handler>>>

/** Set-Cookie values of a response (undici's `getSetCookie`, or the joined header). */
export const setCookies = (response: Response): Array<string> => {
  const headers = response.headers as Headers & { getSetCookie?: () => Array<string> }
  if (typeof headers.getSetCookie === "function") return headers.getSetCookie()
  const joined = response.headers.get("set-cookie")
  return joined === null ? [] : joined.split(/,(?=\s*[!#$%&'*+\-.^_`|~0-9A-Za-z]+=)/)
}

/** A browser: a cookie jar for the app's origin, and the texts it received (for leak scans). */
export class Browser {
  readonly cookies = new Map<string, string>()
  /** bodies and headers of every answer (less Set-Cookie and a Location to the authorization server) */
  readonly received: Array<string> = []
  /** every Set-Cookie value received */
  readonly setCookies: Array<string> = []

  take(response: Response): void {
    for (const line of setCookies(response)) {
      this.setCookies.push(line)
      const [pair = ""] = line.split(";")
      const eq = pair.indexOf("=")
      const name = pair.slice(0, eq).trim()
      const value = pair.slice(eq + 1)
      if (/Max-Age=0/i.test(line) || value === "") this.cookies.delete(name)
      else this.cookies.set(name, value)
    }
  }

  header(): string {
    return [...this.cookies].map(([name, value]) => `${name}=${value}`).join("; ")
  }

  /** Calls a route export as Next does: the request with this browser's cookies, the params of the path. */
  async call(
    routes: Routes,
    url: string,
    init: {
      method?: string
      headers?: Record<string, string>
      body?: string
      params?: Record<string, unknown>
    } = {}
  ): Promise<Response> {
    const method = init.method ?? "GET"
    const headers = new Headers(init.headers)
    if (this.cookies.size > 0 && !headers.has("cookie")) headers.set("cookie", this.header())
    const request = new Request(url, {
      method,
      headers,
      ...(init.body === undefined ? {} : { body: init.body })
    })
    const handler = routes[method as keyof Routes] ?? routes.GET!
    const response = await handler(request, {
      params: Promise.resolve((init.params ?? {}) as Record<string, string>)
    })
    this.take(response)
    const text = await response.clone().text()
    // Set-Cookie is where the session id belongs, and a redirect to the authorization server
    // carries the sign-in's state: both are the protocol, not a leak
    const kept = [...response.headers].filter(
      ([name, value]) => name !== "set-cookie" && !(name === "location" && !value.startsWith("/"))
    )
    this.received.push(`${JSON.stringify(kept)}\n${text}`)
    return response
  }

  /** `GET /auth/<action>` of a sign-in route. */
  action(routes: Routes, action: string, query = "", init: Parameters<Browser["call"]>[2] = {}) {
    return this.call(routes, `${APP}/auth/${action}${query}`, { ...init, params: { action } })
  }

  /**
   * A whole sign-in: the route's `signin` (→ the sandbox's authorize, approved at once for `user`),
   * then its `callback` with what the sandbox sent back. Returns each answer and the callback's query.
   */
  async signIn(routes: Routes, user = "alice", returnTo?: string) {
    const start = await this.action(
      routes,
      "signin",
      returnTo === undefined ? "" : `?returnTo=${encodeURIComponent(returnTo)}`
    )
    if (start.status !== 302) throw new Error(`signin answered ${start.status}: ${await start.text()}`)
    const back = await authorize(start.headers.get("location")!, user)
    const callback = await this.action(routes, "callback", back.search)
    return { start, back, callback }
  }
}

/** The sandbox's authorization endpoint, auto-approving for `user`: the callback URL it redirects to. */
export const authorize = async (location: string, user: string): Promise<URL> => {
  const url = new URL(location)
  url.searchParams.set("login_hint", user)
  const approved = await fetch(url, { redirect: "manual" })
  await approved.body?.cancel()
  if (approved.status !== 302) throw new Error(`authorize answered ${approved.status}`)
  return new URL(approved.headers.get("location")!)
}

/** The value of the session cookie a browser holds (`authfetch-session` on loopback http). */
export const sessionCookie = (browser: Browser): string | undefined =>
  browser.cookies.get("authfetch-session")

/** Next's `redirect()` throws an error whose digest says where to (`NEXT_REDIRECT;replace;<url>;307;`). */
export const redirectedTo = async (run: () => unknown): Promise<string> => {
  let thrown: unknown
  try {
    await run()
  } catch (error) {
    thrown = error
  }
  const digest = (thrown as { digest?: unknown } | undefined)?.digest
  if (typeof digest !== "string" || !digest.startsWith("NEXT_REDIRECT;")) {
    throw new Error(`expected a redirect, got ${String(thrown)}`)
  }
  return digest.split(";")[2]!
}
