/**
 * Support for the sign-in tests: a session store that is the core's memory
 * store with a record of every write (what was stored, to prove what was not:
 * no password, nothing for a refused sign-in), and a browser without a
 * browser (a cookie jar over real HTTP) that signs in through the app's
 * router and a WealthCare sandbox started with `autoApprove`.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import {
  createUserSessions,
  SessionStore,
  type UserSessionsConfig,
  type UserSessionsHandle
} from "@authfetch/core"
import type { Sandbox, SandboxClient, SandboxUser } from "@authfetch/sandbox"
import { Effect, Layer } from "effect"
import express from "express"
import { type Reply, send } from "./servers.ts"

export interface RecordingStore {
  /** for `createUserSessions(config, { store })` */
  readonly layer: Layer.Layer<SessionStore.SessionStore>
  /** every entry written, as JSON, in order */
  readonly written: Array<string>
  /** the keys that hold a live entry now */
  liveKeys(): Promise<Array<string>>
  /** every string value written under these fields (tokens, verifiers, nonces) */
  secrets(): Array<string>
}

const SECRET_FIELDS = new Set(["accessToken", "refreshToken", "idToken", "codeVerifier", "nonce"])

const collect = (value: unknown, into: Set<string>, field?: string): void => {
  if (typeof value === "string") {
    if (field !== undefined && SECRET_FIELDS.has(field)) into.add(value)
  } else if (Array.isArray(value)) {
    for (const item of value) collect(item, into, field)
  } else if (typeof value === "object" && value !== null) {
    for (const [key, item] of Object.entries(value)) collect(item, into, key)
  }
}

/** The core's memory store (isolated: one per test file), recording what is written to it. */
export const recordingStore = (): RecordingStore => {
  const inner = SessionStore.makeMemoryIsolated()
  const keys = new Set<string>()
  const written: Array<string> = []
  const found = new Set<string>()
  const shape: SessionStore.Shape = {
    ...inner,
    set: (key, entry, options) =>
      inner.set(key, entry, options).pipe(
        Effect.tap(() =>
          Effect.sync(() => {
            keys.add(key)
            written.push(JSON.stringify(entry))
            collect(entry, found)
          })
        )
      )
  }
  return {
    layer: Layer.succeed(SessionStore.SessionStore, SessionStore.SessionStore.of(shape)),
    written,
    liveKeys: async () => {
      const all = [...keys]
      const entries = await Effect.runPromise(Effect.forEach(all, (key) => inner.get(key)))
      return all.filter((_, i) => entries[i] !== undefined)
    },
    secrets: () => [...found]
  }
}

/** `name=value` pairs of `Set-Cookie` lines; a cleared cookie (empty value or `Max-Age=0`) is `""`. */
export const cookiesOf = (reply: Reply): Map<string, string> => {
  const raw = reply.headers["set-cookie"] ?? []
  const out = new Map<string, string>()
  for (const line of raw) {
    const [pair = "", ...attributes] = line.split(";")
    const eq = pair.indexOf("=")
    if (eq <= 0) continue
    const cleared = attributes.some((a) => /^\s*max-age\s*=\s*0\s*$/i.test(a))
    out.set(pair.slice(0, eq).trim(), cleared ? "" : pair.slice(eq + 1).trim())
  }
  return out
}

/** One browser's cookies for the app, over `send` (headers exactly as given). */
export class Jar {
  readonly cookies = new Map<string, string>()

  constructor(
    readonly port: number,
    readonly seen: Array<Reply> = []
  ) {}

  header(): string {
    return [...this.cookies].map(([name, value]) => `${name}=${value}`).join("; ")
  }

  async send(options: Parameters<typeof send>[1]): Promise<Reply> {
    const cookie = this.header()
    const reply = await send(this.port, {
      ...options,
      headers: { ...(cookie === "" ? {} : { cookie }), ...options.headers }
    })
    this.seen.push(reply)
    for (const [name, value] of cookiesOf(reply)) {
      if (value === "") this.cookies.delete(name)
      else this.cookies.set(name, value)
    }
    return reply
  }
}

/**
 * The authorization server's half of a sign-in, as a browser would do it:
 * follows the app's redirect to the sandbox's `/connect/authorize`
 * (`autoApprove`, as `loginHint`) and returns the URL it sends the browser
 * back to (the app's callback with `code`, `state` and `iss`).
 */
export const approveAt = async (authorizeUrl: string, loginHint?: string): Promise<URL> => {
  const back = await approval(authorizeUrl, loginHint)
  approved.push(back)
  return back
}

/** Every URL `approveAt` was sent back to (their codes and states, for the leak scans). */
export const approved: Array<URL> = []

const approval = async (authorizeUrl: string, loginHint?: string): Promise<URL> => {
  const url = new URL(authorizeUrl)
  if (loginHint !== undefined) url.searchParams.set("login_hint", loginHint)
  const response = await fetch(url, { redirect: "manual" })
  await response.arrayBuffer()
  const location = response.headers.get("location")
  if (response.status !== 302 || location === null) {
    throw new Error(`the sandbox answered the authorization request ${response.status}`)
  }
  return new URL(location)
}

/** The path and query of a URL (what a browser sends to the app). */
export const pathOf = (url: URL): string => `${url.pathname}${url.search}`

/**
 * A whole sign-in through the app's router (`/auth`): `GET /auth/signin`,
 * the sandbox, `GET /auth/callback`. Returns the callback's reply (a `302` to
 * `returnTo` with the session cookie on success).
 */
export const signInOverHttp = async (
  jar: Jar,
  options: { readonly user?: string; readonly returnTo?: string; readonly signIn?: string } = {}
): Promise<{ readonly start: Reply; readonly back: URL; readonly callback: Reply }> => {
  const query = options.returnTo === undefined ? "" : `?returnTo=${encodeURIComponent(options.returnTo)}`
  const start = await jar.send({ path: `${options.signIn ?? "/auth/signin"}${query}` })
  if (start.status !== 302) throw new Error(`sign-in start answered ${start.status}: ${start.text}`)
  const back = await approveAt(String(start.headers.location), options.user)
  const callback = await jar.send({ path: pathOf(back) })
  return { start, back, callback }
}

/** The test users of the sign-in tests. */
export const ALICE: SandboxUser = {
  username: "alice",
  password: "alice-password-7f3e",
  name: "Alice Example",
  email: "alice@example.com"
}
export const BOB: SandboxUser = {
  username: "bob",
  password: "bob-password-91c2",
  name: "Bob Example",
  email: "bob@example.com"
}

/** The app's client at the sandbox: its callback on any loopback port (RFC 8252 7.3). */
export const APP_CLIENT: SandboxClient = {
  clientId: "express-app",
  clientSecret: "express-app-secret-5d1b9e",
  scopes: ["openid", "profile", "email", "offline_access", "bensoft_api"],
  grants: ["authorization_code", "refresh_token", "password"],
  redirectUris: ["http://127.0.0.1/auth/callback"]
}

export const SCOPE = "openid profile email offline_access bensoft_api"

export interface SignInApp {
  readonly port: number
  /** `http://127.0.0.1:PORT`, the origin of the redirect URI */
  readonly url: string
  readonly sessions: UserSessionsHandle
  readonly store: RecordingStore
  /** a new browser (an empty cookie jar), recording every reply into `replies` */
  jar(): Jar
  /** every reply any jar received */
  readonly replies: Array<Reply>
  close(): Promise<void>
}

/**
 * Listens on 127.0.0.1 first (the redirect URI needs the port), then makes
 * the sessions (over a recording store) and the app `routes` builds.
 */
export const startSignInApp = async (options: {
  readonly sandbox: Sandbox
  readonly client?: SandboxClient | undefined
  readonly config?: Partial<UserSessionsConfig> | undefined
  readonly routes: (app: express.Express, sessions: UserSessionsHandle) => void
}): Promise<SignInApp> => {
  let handler: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => {
    res.statusCode = 503
    res.end()
  }
  const server = createServer((req, res) => handler(req, res))
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const port = (server.address() as AddressInfo).port
  const url = `http://127.0.0.1:${port}`
  const client = options.client ?? APP_CLIENT
  const store = recordingStore()
  const sessions = createUserSessions(
    {
      issuer: options.sandbox.issuer!,
      clientId: client.clientId,
      clientSecret: client.clientSecret,
      scope: SCOPE,
      redirectUri: `${url}/auth/callback`,
      rateLimit: false,
      ...options.config
    },
    { store: store.layer }
  )
  const app = express()
  app.disable("x-powered-by")
  options.routes(app, sessions)
  handler = app
  const replies: Array<Reply> = []
  return {
    port,
    url,
    sessions,
    store,
    replies,
    jar: () => new Jar(port, replies),
    close: async () => {
      await new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      })
      await sessions.dispose()
    }
  }
}
