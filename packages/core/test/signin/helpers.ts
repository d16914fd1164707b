/**
 * Helpers of the sign-in scenarios: browser contexts that record everything
 * they receive (for the leak scan) and every request they make (for the
 * codes and states), signing in on the sandbox's page, catching a callback
 * before the app sees it, a page on another origin (for CSRF), and the
 * sign-in over plain HTTP (for the mix-up, where the answer must be edited).
 */
import { createServer, type IncomingHttpHeaders, request } from "node:http"
import type { AddressInfo } from "node:net"
import type { SandboxUser } from "@authfetch/sandbox"
import type { BrowserLike, ContextLike, PageLike, SignInApp } from "./types.ts"

/** One answer a browser received, read when it arrived. */
export interface Received {
  readonly url: string
  readonly method: string
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  readonly body: string
}

/** A browser context and its first page, with what the page reported as errors. */
export interface Tab {
  readonly context: ContextLike
  readonly page: PageLike
  /** uncaught exceptions and console errors of the page */
  readonly errors: Array<string>
}

/** Every context made for the scenarios, and what they all received. */
export class Recorder {
  readonly received: Array<Promise<Received>> = []
  /** the URL of every request any context made */
  readonly requested: Array<string> = []
  private readonly contexts: Array<ContextLike> = []

  constructor(private readonly browser: () => Promise<BrowserLike>) {}

  async tab(): Promise<Tab> {
    const context = await (await this.browser()).newContext()
    this.contexts.push(context)
    context.on("request", (req) => {
      this.requested.push(req.url())
    })
    context.on("response", (response) => {
      this.received.push(
        (async () => ({
          url: response.url(),
          method: response.request().method(),
          status: response.status(),
          headers: await response.allHeaders().catch(() => ({})),
          // a redirect has no body, and a page that went away may take its body with it
          body: await response.body().then(
            (bytes) => bytes.toString("utf8"),
            () => ""
          )
        }))()
      )
    })
    const page = await context.newPage()
    const errors: Array<string> = []
    page.on("pageerror", (error) => errors.push(`pageerror: ${error.message}`))
    page.on("console", (message) => {
      if (message.type() === "error") errors.push(`console: ${message.text()}`)
    })
    return { context, page, errors }
  }

  /** the answers received so far from `origin` */
  async from(origin: string): Promise<Array<Received>> {
    const all = await Promise.all(this.received)
    return all.filter((answer) => URL.canParse(answer.url) && new URL(answer.url).origin === origin)
  }

  async closeAll(): Promise<void> {
    await Promise.all(this.contexts.splice(0).map((context) => context.close().catch(() => {})))
  }
}

/** `app.url` + a path */
export const at = (app: SignInApp, path: string): string => new URL(path, app.url).href

/** Whether a URL is the sandbox's sign-in page (its authorization endpoint). */
export const isSignInPage = (app: SignInApp, url: string): boolean =>
  url.startsWith(app.sandbox.authorizeUrl!)

/** Whether a URL is the app's callback. */
export const isCallback = (app: SignInApp, url: string | URL): boolean => {
  const parsed = new URL(url)
  return parsed.origin === new URL(app.url).origin && parsed.pathname === app.paths.callback
}

/** Waits for the sandbox's sign-in page (the form is there). */
export const onSignInPage = async (page: PageLike, app: SignInApp): Promise<void> => {
  await page.waitForURL((url) => isSignInPage(app, url.href), { timeout: 20_000 })
  await page.waitForSelector("#username", { timeout: 20_000 })
}

/** On the sandbox's sign-in page: types the user's name and password and clicks "Sign in". */
export const fillSignIn = async (page: PageLike, user: SandboxUser): Promise<void> => {
  await page.fill("#username", user.username)
  await page.fill("#password", user.password)
  await page.click('button:text-is("Sign in")')
}

/**
 * Signs `user` in as a person would: opens `start` (default: the
 * server-rendered page, which redirects to sign in), signs in on the
 * sandbox's page, and waits until the browser is back on the app at
 * `landing` (default: `start`).
 */
export const signInInBrowser = async (
  page: PageLike,
  app: SignInApp,
  user: SandboxUser,
  options: { readonly start?: string; readonly landing?: string } = {}
): Promise<void> => {
  const start = options.start ?? app.paths.serverPage
  const landing = new URL(options.landing ?? start, app.url)
  await page.goto(at(app, start))
  await onSignInPage(page, app)
  await fillSignIn(page, user)
  await page.waitForURL((url) => url.origin === landing.origin && url.pathname === landing.pathname, {
    timeout: 20_000
  })
}

/**
 * Signs in on the sandbox's page but keeps the browser from reaching the
 * app's callback: returns the callback URL (with its `code`, `state`, `iss`)
 * that the sandbox sent the browser to. The sign-in stays unfinished.
 *
 * Playwright routes only the first request of a redirect chain, so the
 * sign-in form's `POST` is routed: sent as is, its redirect read and not
 * followed, and the browser answered `204` (it stays on the form).
 */
export const callbackCaught = async (page: PageLike, app: SignInApp, user: SandboxUser): Promise<URL> => {
  let caught: (url: URL) => void = () => {}
  const callback = new Promise<URL>((resolve) => {
    caught = resolve
  })
  await page.route(
    (url) => isSignInPage(app, url.href),
    async (route) => {
      if (route.request().method() !== "POST") return route.continue()
      const answer = await route.fetch({ maxRedirects: 0 })
      const location = answer.headers().location
      if (location !== undefined && isCallback(app, location)) caught(new URL(location))
      await route.fulfill({ status: 204, body: "" })
    }
  )
  await page.goto(at(app, `${app.paths.signIn}?returnTo=${encodeURIComponent(app.paths.serverPage)}`))
  await onSignInPage(page, app)
  await fillSignIn(page, user)
  return callback
}

/**
 * Starts a sign-in (the browser gets its sign-in cookie) and stops on the
 * sandbox's page: returns the authorization request the app sent the browser
 * to (its `state`).
 */
export const authorizationCaught = async (page: PageLike, app: SignInApp): Promise<URL> => {
  await page.goto(at(app, `${app.paths.signIn}?returnTo=${encodeURIComponent(app.paths.serverPage)}`))
  await onSignInPage(page, app)
  return new URL(page.url())
}

/** The value of the app's session cookie in a context, if any. */
export const sessionCookie = async (context: ContextLike, app: SignInApp): Promise<string | undefined> =>
  (await context.cookies(app.url)).find((cookie) => cookie.name === app.cookieName)?.value

/** A server of pages on another origin; `html(port)` is what it serves at `/`. */
export interface OtherOrigin {
  readonly port: number
  close(): Promise<void>
}

export const startOtherOrigin = async (html: () => string): Promise<OtherOrigin> => {
  const server = createServer((_req, res) => {
    res.writeHead(200, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" })
    res.end(html())
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      })
  }
}

/** An answer over plain HTTP. */
export interface Reply {
  readonly status: number
  readonly headers: IncomingHttpHeaders
  readonly text: string
}

/** One request with nothing added (no Fetch Metadata, no Origin), as a script or an old browser sends it. */
export const http = (
  url: string,
  options: {
    readonly method?: string
    readonly headers?: Record<string, string>
    readonly body?: string
  } = {}
): Promise<Reply> =>
  new Promise((resolve, reject) => {
    const target = new URL(url)
    const req = request(
      {
        host: target.hostname,
        port: target.port,
        path: `${target.pathname}${target.search}`,
        method: options.method ?? "GET",
        headers: {
          ...options.headers,
          ...(options.body === undefined ? {} : { "content-length": String(Buffer.byteLength(options.body)) })
        },
        agent: false
      },
      (res) => {
        const chunks: Array<Buffer> = []
        res.on("data", (chunk: Buffer) => chunks.push(chunk))
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            text: Buffer.concat(chunks).toString("utf8")
          })
        )
        res.on("error", reject)
      }
    )
    req.on("error", reject)
    req.end(options.body)
  })

/** One browser's cookies for one origin, over `http`. */
export class Jar {
  readonly cookies = new Map<string, string>()

  async send(url: string, options: Parameters<typeof http>[1] = {}): Promise<Reply> {
    const cookie = [...this.cookies].map(([name, value]) => `${name}=${value}`).join("; ")
    const reply = await http(url, {
      ...options,
      headers: { ...(cookie === "" ? {} : { cookie }), ...options.headers }
    })
    for (const line of reply.headers["set-cookie"] ?? []) {
      const [pair = "", ...attributes] = line.split(";")
      const eq = pair.indexOf("=")
      const name = pair.slice(0, eq).trim()
      const value = pair.slice(eq + 1).trim()
      if (value === "" || attributes.some((a) => /^\s*max-age\s*=\s*0\s*$/i.test(a)))
        this.cookies.delete(name)
      else this.cookies.set(name, value)
    }
    return reply
  }
}

/**
 * A sign-in over HTTP up to the callback: the app's redirect, the sandbox's
 * page, its form posted with `user`'s credentials; returns the callback URL
 * the sandbox sent back (not followed) and the jar holding the app's sign-in
 * cookie.
 */
export const callbackOverHttp = async (
  app: SignInApp,
  user: SandboxUser
): Promise<{ jar: Jar; back: URL }> => {
  const jar = new Jar()
  const start = await jar.send(
    at(app, `${app.paths.signIn}?returnTo=${encodeURIComponent(app.paths.serverPage)}`)
  )
  if (start.status !== 302) throw new Error(`the app answered the sign-in ${start.status}`)
  const page = await http(String(start.headers.location))
  const requestId = /name="request" value="([^"]+)"/.exec(page.text)?.[1]
  if (page.status !== 200 || requestId === undefined)
    throw new Error(`the sandbox's sign-in page answered ${page.status}`)
  const posted = await http(`${app.sandbox.url}/connect/authorize`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      request: requestId,
      username: user.username,
      password: user.password,
      action: "approve"
    }).toString()
  })
  if (posted.status !== 302) throw new Error(`the sandbox answered the sign-in form ${posted.status}`)
  return { jar, back: new URL(String(posted.headers.location)) }
}
