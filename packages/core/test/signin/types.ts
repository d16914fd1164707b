/**
 * What the sign-in scenarios (`scenarios.ts`) need: a description of the app
 * under test (`SignInApp`), how to start it and the browser
 * (`SignInScenarioOptions`), and the small part of Playwright they drive.
 *
 * The Playwright types are structural (`BrowserLike`, ...) because this
 * directory belongs to `@authfetch/core`, which does not depend on
 * `playwright-core`: an example passes the `Browser` of its own
 * `playwright-core` (`chromium.launch(...)`), which has all of this.
 *
 * What the app's pages must show (fixed ids, so the scenarios read them the
 * same way in every example):
 *
 * - `paths.serverPage` (rendered on the server, guarded): `#user-name` (the
 *   user's `name` claim), `#api-subject` (the `subject` the API's `GET
 *   /v1/me` answered, called on the server with the user's token), and a
 *   sign-out form (`POST paths.signOut`) whose submit button is `#sign-out`;
 *   without a user, a page load is redirected to sign in and back;
 * - `paths.scriptPage` (guarded): its script calls `GET
 *   ${paths.proxy}/v1/me` and shows the subject in `#proxy-subject`, then
 *   `POST ${paths.proxy}/v1/claims` with `x-csrf: 1` and shows the status in
 *   `#proxy-post`; a failure goes to `#proxy-error`; a `401` sends the
 *   browser to sign in; when done it sets `document.body.dataset.ready`.
 */
import type { Sandbox, SandboxUser } from "@authfetch/sandbox"

/** The app under test, running. */
export interface SignInApp {
  /** a name for the test titles: "express-bff" */
  readonly name: string
  /** the app's origin as the browser reaches it (the redirect URI's): `http://127.0.0.1:PORT` */
  readonly url: string
  readonly paths: {
    /** `GET`, `?returnTo=`: starts a sign-in (`/auth/signin`) */
    readonly signIn: string
    /** the redirect URI's path (`/auth/callback`) */
    readonly callback: string
    /** `POST` from a form (`/auth/signout`) */
    readonly signOut: string
    /** the per-user proxy's mount (`/api/user`): `${proxy}/v1/me` is the sandbox's `/v1/me` */
    readonly proxy: string
    /** the server-rendered page (see the module comment) */
    readonly serverPage: string
    /** the page whose script calls the proxy (see the module comment) */
    readonly scriptPage: string
  }
  /** the session cookie's name (`authfetch-session` on loopback http) */
  readonly cookieName: string
  /** the WealthCare sandbox the app signs users in with, its access tokens short-lived */
  readonly sandbox: Sandbox
  /** its access-token lifetime, in seconds (2 to 5) */
  readonly tokenTtlSeconds: number
  /** two users of that sandbox */
  readonly users: readonly [SandboxUser, SandboxUser]
  /** everything the server wrote to stdout and stderr so far */
  output(): string
  /**
   * the secret values the test can see on the server's side: the client
   * secret always; the tokens, PKCE verifiers and nonces the server stored,
   * when the test can look into its session store
   */
  secrets(): ReadonlyArray<string>
  /** the keys in the session store now, when the test can look into it (in-process apps) */
  readonly storeKeys?: (() => Promise<ReadonlyArray<string>>) | undefined
  /** files the app serves as built or wrote to disk (a client bundle, `.next`), for the leak scan */
  readonly files?: (() => ReadonlyArray<{ readonly where: string; readonly text: string }>) | undefined
  close(): Promise<void>
}

/** How `describeSignInScenarios` gets the app and the browser (each started once, inside the first test). */
export interface SignInScenarioOptions {
  /** starts the app (and its sandbox) */
  readonly start: () => Promise<SignInApp>
  /** launches Chromium (`chromium.launch({ executablePath: "/usr/bin/chromium", ... })`) */
  readonly launch: () => Promise<BrowserLike>
}

/** The ids the scenarios read on the app's pages. */
export const SELECTORS = {
  userName: "#user-name",
  apiSubject: "#api-subject",
  signOut: "#sign-out",
  proxySubject: "#proxy-subject",
  proxyPost: "#proxy-post",
  proxyError: "#proxy-error",
  ready: "body[data-ready]"
} as const

/* The part of Playwright the scenarios use (playwright-core's types have all of it). */

export interface RequestLike {
  url(): string
  method(): string
  isNavigationRequest(): boolean
}

export interface ResponseLike {
  url(): string
  status(): number
  allHeaders(): Promise<Record<string, string>>
  body(): Promise<Buffer>
  request(): RequestLike
}

export interface RouteLike {
  request(): RequestLike
  fulfill(options: { status?: number; body?: string; contentType?: string }): Promise<void>
  continue(): Promise<void>
  /** sends the request as the browser would have (`maxRedirects: 0`: a redirect is returned, not followed) */
  fetch(options?: { maxRedirects?: number }): Promise<{ status(): number; headers(): Record<string, string> }>
}

export interface ConsoleMessageLike {
  type(): string
  text(): string
}

export interface CookieLike {
  name: string
  value: string
  domain: string
  path: string
  httpOnly: boolean
  secure: boolean
  sameSite: "Strict" | "Lax" | "None"
}

export interface PageLike {
  goto(url: string, options?: { timeout?: number }): Promise<ResponseLike | null>
  url(): string
  fill(selector: string, value: string): Promise<void>
  click(selector: string): Promise<void>
  waitForURL(url: string | RegExp | ((url: URL) => boolean), options?: { timeout?: number }): Promise<void>
  waitForSelector(selector: string, options?: { timeout?: number }): Promise<unknown>
  textContent(selector: string): Promise<string | null>
  content(): Promise<string>
  evaluate<R, A>(pageFunction: (arg: A) => R | Promise<R>, arg: A): Promise<R>
  route(url: (url: URL) => boolean, handler: (route: RouteLike) => unknown): Promise<unknown>
  on(event: "pageerror", listener: (error: Error) => void): unknown
  on(event: "console", listener: (message: ConsoleMessageLike) => void): unknown
  close(): Promise<void>
}

export interface ContextLike {
  newPage(): Promise<PageLike>
  cookies(urls?: string | ReadonlyArray<string>): Promise<Array<CookieLike>>
  addCookies(cookies: ReadonlyArray<{ name: string; value: string; url: string }>): Promise<void>
  on(event: "response", listener: (response: ResponseLike) => void): unknown
  on(event: "request", listener: (request: RequestLike) => void): unknown
  close(): Promise<void>
}

export interface BrowserLike {
  newContext(): Promise<ContextLike>
  close(): Promise<void>
}
