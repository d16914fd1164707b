/**
 * A backend-for-frontend for a benefits portal: the browser calls this
 * server, never the provider; the client secret and the access tokens stay
 * here.
 *
 * - `/api/benefits/*` is a proxy to the provider's API (`createProxy`): the
 *   browser may call the listed resources, with its own paths and bodies
 *   (10 MiB document uploads streamed), and never sees a token;
 * - `/api/summary/:consumerId` is a route of our own that aggregates a
 *   consumer and all its accounts with `req.authFetch`;
 * - signed-in users (WealthCare, `signIn`): `/auth/*` signs them in and out
 *   (`createSignInRouter`), `/account` is rendered on the server with the
 *   user's own token (`req.userFetch`), `/app`'s script calls the per-user
 *   proxy `/api/user/*` (`createProxy({ sessions })`: the user's token, CSRF
 *   checked), and a page load without a user goes to sign in;
 * - every error leaves as RFC 9457 problem+json (`problemDetails()`).
 */
import type { RequestEvent, Tokens, UserSessionsHandle } from "@authfetch/core"
import {
  authFetchMiddleware,
  createProxy,
  createSignInRouter,
  problemDetails,
  requireSignIn,
  userSessionMiddleware
} from "@authfetch/express"
import express from "express"
import { accountPage, appPage, type Page as HtmlPage, homePage, type Me } from "./pages.ts"

export interface AppOptions {
  readonly tokens: Tokens
  /** the provider's API base, e.g. `https://platform.uat.benefits.wexglobal.com/api` */
  readonly baseUrl: string
  readonly onEvent?: ((event: RequestEvent) => void) | undefined
  /** where 5xx errors are logged; default `console.error` */
  readonly onError?: ((error: unknown) => void) | undefined
  /** the signed-in part: the users' sessions and the API their tokens are for */
  readonly signIn?: { readonly sessions: UserSessionsHandle; readonly baseUrl: string } | undefined
}

/** What `/api/summary/:consumerId` answers. */
export interface Summary {
  readonly consumerId: string
  readonly name: string
  readonly plan: string
  readonly accounts: { readonly total: number; readonly active: number; readonly activeBalance: number }
}

interface Page<T> {
  readonly page: number
  readonly pageSize: number
  readonly total: number
  readonly items: ReadonlyArray<T>
}

/** An id as the API documents them; anything else never reaches a URL. */
const CONSUMER_ID = /^[A-Za-z0-9_-]{1,64}$/

const badRequest = () => Object.assign(new Error("consumerId is malformed"), { status: 400 })

export const createApp = (options: AppOptions): express.Express => {
  const { tokens, baseUrl, onEvent } = options
  const app = express()
  app.disable("x-powered-by")

  // 1. The proxy, mounted before any body parser: request bodies stream through it untouched.
  app.use(
    "/api/benefits",
    createProxy({
      tokens,
      baseUrl: baseUrl,
      allow: ["/v1/consumers/*", "/v1/consumers/*/accounts", "/v1/claims", "/v1/claims/*", "/v1/documents"],
      maxBodyBytes: 10 * 1024 * 1024,
      // per attempt, until the upstream's response headers: covers a slow client's upload too
      attemptTimeout: "60 seconds",
      onEvent,
      // every problem the proxy answers with itself (default: one stderr line per 5xx)
      ...(options.onError === undefined ? {} : { onError: (error: unknown) => options.onError?.(error) })
    })
  )

  // 1b. The per-user proxy: each call with the signed-in user's token (no user: 401), and a
  //     state-changing call only from this app's own pages (CSRF: Origin, Fetch Metadata, x-csrf).
  const signIn = options.signIn
  if (signIn !== undefined) {
    app.use(
      "/api/user",
      createProxy({
        sessions: signIn.sessions,
        baseUrl: signIn.baseUrl,
        allow: ["/v1/me", "/v1/claims", "/v1/claims/*"],
        onEvent,
        ...(options.onError === undefined ? {} : { onError: (error: unknown) => options.onError?.(error) })
      })
    )
  }

  // 2. Our own routes: they may parse bodies, and they call the API with req.authFetch.
  app.use(express.json({ limit: "16kb" }))
  app.use("/api", authFetchMiddleware(tokens, { baseUrl: baseUrl, problemDetails: true, onEvent }))

  app.get("/api/summary/:consumerId", async (req, res) => {
    const id = req.params.consumerId
    if (!CONSUMER_ID.test(id)) throw badRequest()
    const getJson = async <T>(path: string): Promise<T> => (await req.authFetch(path)).json() as Promise<T>

    const accountsPage = (page: number) =>
      getJson<Page<{ status: string; balance: number }>>(
        `/v1/consumers/${id}/accounts?page=${page}&pageSize=100`
      )
    const [consumer, first] = await Promise.all([
      getJson<{ firstName: string; lastName: string; plan: { name: string } }>(`/v1/consumers/${id}`),
      accountsPage(1)
    ])
    const pages = Math.ceil(first.total / first.pageSize)
    const rest = await Promise.all(
      Array.from({ length: Math.max(0, pages - 1) }, (_, i) => accountsPage(i + 2))
    )
    const accounts = [first, ...rest].flatMap((page) => page.items)
    const active = accounts.filter((account) => account.status === "Active")
    const summary: Summary = {
      consumerId: id,
      name: `${consumer.firstName} ${consumer.lastName}`,
      plan: consumer.plan.name,
      accounts: {
        total: accounts.length,
        active: active.length,
        activeBalance: Math.round(active.reduce((sum, account) => sum + account.balance, 0) * 100) / 100
      }
    }
    res.json(summary)
  })

  app.get("/healthz", (_req, res) => {
    res.json({ ok: true })
  })

  // 3. Signed-in pages: sign-in routes, the user on every request, pages that need one.
  if (signIn !== undefined) {
    const send = (res: express.Response, { html, headers }: HtmlPage) => res.set(headers).send(html)
    app.use("/auth", createSignInRouter(signIn.sessions))
    app.use(
      userSessionMiddleware(signIn.sessions, { baseUrl: signIn.baseUrl, problemDetails: true, onEvent })
    )
    const signedIn = requireSignIn({ signInPath: "/auth/signin" })
    app.get("/", (req, res) => send(res, homePage(req.user)))
    app.get("/account", signedIn, async (req, res) => {
      const me = (await (await req.userFetch("/v1/me")).json()) as Me
      send(res, accountPage(req.user!, me))
    })
    app.get("/app", signedIn, (_req, res) => send(res, appPage()))
  }

  // 4. Last: every error as problem+json, without internals; the error itself to the log. A
  //    page load whose user must sign in again (their refresh token was refused) goes to sign in.
  app.use(
    problemDetails({
      signInPath: "/auth/signin",
      ...(options.onError === undefined ? {} : { onError: (error) => options.onError?.(error) })
    })
  )
  return app
}
