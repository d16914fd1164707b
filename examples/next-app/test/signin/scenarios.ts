/**
 * The acceptance of per-user sign-in (issue #15) in a real Chromium, against
 * any app that describes itself as a `SignInApp`: sign in on the sandbox's
 * page; the account page and the per-user proxy with the user's token; short
 * token lifetimes refreshed with no visible error; two users in two browser
 * contexts, 50 concurrent proxied calls each, no crossing (the sandbox says
 * whose token reached it); the attacks (state missing or foreign, a code
 * replayed, a PKCE verifier that does not match, an iss of another server,
 * an open redirect through returnTo, session fixation, CSRF from another
 * origin), each refused with a clear error and nothing stored; a refresh
 * token revoked at the sandbox sending the next page load to sign in;
 * sign-out clearing the cookie with the revocation recorded; and a leak scan
 * of the server's output, the pages and every answer the browsers received,
 * and the built client bundle.
 *
 * Written for examples/next-app first and kept framework-neutral (the app
 * says where its pages are and how to read its output), so that it can move
 * to a module shared with the Express example (packages/core/test/signin)
 * when there is one.
 */
import { createServer, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import type { Sandbox } from "@authfetch/sandbox"
import type { Browser, BrowserContext, Page } from "playwright-core"
import { afterAll, describe, expect, it } from "vitest"

/** What the scenarios need to know of an app. */
export interface SignInApp {
  /** the app's origin, as the browser reaches it (`http://127.0.0.1:PORT`) */
  readonly url: string
  readonly paths: {
    /** a page that needs a signed-in user: sign-in comes back to it */
    readonly account: string
    /** `GET` starts a sign-in (`?returnTo=`) */
    readonly signIn: string
    /** the callback (the redirect URI's path) */
    readonly callback: string
    /** a form of the app posts here */
    readonly signOut: string
    /** where sign-out lands */
    readonly signedOut: string
    /** the per-user proxy's mount: `${proxy}/v1/me` is the API's `/v1/me` */
    readonly proxy: string
  }
  /** the session cookie's name */
  readonly cookieName: string
  /** the WealthCare sandbox the app signs in at (its `tokenTtl` is `tokenTtl`) */
  readonly sandbox: Sandbox
  /** two test users of the sandbox, with the name the account page shows */
  readonly users: readonly [SignInUser, SignInUser]
  /** the access token lifetime, seconds */
  readonly tokenTtl: number
  /** the account page: test ids of what it shows, and the names of its buttons */
  readonly page: {
    readonly userName: string
    readonly serverSubject: string
    readonly clientSubject: string
    readonly claimId: string
    readonly askAgain: string
    readonly submitClaim: string
    readonly signOut: string
  }
  /** the client secret and every token the token endpoint issued so far */
  readonly secrets: () => ReadonlyArray<string>
  /** what the server printed so far */
  readonly output: () => string
  /** the files the app serves to browsers as built (its client bundle) and anything else it wrote to disk */
  readonly files: () => ReadonlyArray<{ readonly where: string; readonly text: string }>
}

export interface SignInUser {
  readonly username: string
  readonly password: string
  readonly name: string
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * The scenarios, in order (they share the browser and two signed-in
 * contexts). `browser` is launched by the first test.
 */
export const describeSignInScenarios = (
  name: string,
  target: () => SignInApp,
  launch: () => Promise<Browser>
): void => {
  let browser: Browser | undefined
  /** every context made, with what it received from the app (for the leak scan) */
  const contexts: Array<{ context: BrowserContext; received: Array<{ url: string; text: string }> }> = []
  /** codes and states of every callback the browsers made */
  const callbacks = new Set<string>()
  /** what a user would see go wrong, by page: console errors, page errors, the app's answers >= 400 */
  const visible: Array<{ readonly page: Page | undefined; readonly text: string }> = []
  const problemsOf = (...pages: ReadonlyArray<Page>) =>
    visible.filter((seen) => seen.page !== undefined && pages.includes(seen.page)).map((seen) => seen.text)
  /** the session cookie values the app set */
  const sessionIds = new Set<string>()
  let evil: Server | undefined
  let alice: Page
  let bob: Page

  afterAll(async () => {
    await browser?.close()
    evil?.closeAllConnections()
    await new Promise((resolve) => (evil ? evil.close(resolve) : resolve(undefined)))
  })

  const app = () => target()
  const onApp = (url: string) => URL.canParse(url) && new URL(url).origin === app().url
  const at = (path: string) => `${app().url}${path}`

  const newContext = async (): Promise<BrowserContext> => {
    browser ??= await launch()
    const context = await browser.newContext()
    const received: Array<{ url: string; text: string }> = []
    contexts.push({ context, received })
    context.on("request", (request) => {
      const url = new URL(request.url())
      if (onApp(request.url()) && url.pathname === app().paths.callback) {
        for (const key of ["code", "state"]) {
          const value = url.searchParams.get(key)
          if (value) callbacks.add(value)
        }
      }
    })
    context.on("response", (response) => {
      if (!onApp(response.url())) return
      if (response.status() >= 400) {
        let page: Page | undefined
        try {
          page = response.request().frame().page()
        } catch {}
        visible.push({ page, text: `HTTP ${response.status()} ${response.url()}` })
      }
      response.headerValue("set-cookie").then(
        (header) => {
          for (const match of (header ?? "").matchAll(/(?:^|\n)[^=\n]+=([\w-]{43})/g))
            sessionIds.add(match[1]!)
        },
        () => {}
      )
      response.body().then(
        (body) => received.push({ url: response.url(), text: body.toString("latin1") }),
        () => {}
      )
    })
    context.on("page", (page) => watchPage(page))
    return context
  }
  const watchPage = (page: Page) => {
    page.on("pageerror", (error) => visible.push({ page, text: `pageerror: ${error.message}` }))
    page.on("console", (message) => {
      if (message.type() !== "error") return
      // a resource of another origin (the sandbox's icon) is not the app's to answer
      const where = message.location().url
      if (/^Failed to load resource/.test(message.text()) && where !== "" && !onApp(where)) return
      visible.push({ page, text: `console: ${message.text()} (${where})` })
    })
  }

  const onSignInPage = (page: Page) => page.url().startsWith(app().sandbox.authorizeUrl!)
  /** The sandbox's sign-in page: the user's credentials typed, "Sign in" clicked, back at the app. */
  const signInAs = async (page: Page, user: SignInUser) => {
    await page.waitForURL((url) => url.href.startsWith(app().sandbox.authorizeUrl!))
    expect(await page.title()).toMatch(/Sign in/)
    await page.getByLabel("Username").fill(user.username)
    await page.getByLabel("Password").fill(user.password)
    await Promise.all([
      page.waitForURL((url) => onApp(url.href) && url.pathname !== app().paths.callback, { timeout: 20_000 }),
      page.getByRole("button", { name: "Sign in" }).click()
    ])
  }
  const expectAccount = async (page: Page, user: SignInUser) => {
    const ids = app().page
    expect(new URL(page.url()).pathname).toBe(app().paths.account)
    expect(await page.getByTestId(ids.userName).textContent()).toBe(user.name)
    expect(await page.getByTestId(ids.serverSubject).textContent()).toBe(user.username)
    await expect
      .poll(() => page.getByTestId(ids.clientSubject).textContent(), { timeout: 10_000 })
      .toBe(user.username)
    // alerts of the app's own (Next's route announcer is an alert too, outside <main>)
    expect(await page.locator("main [role=alert]").count()).toBe(0)
  }
  /** A new context, signed in as `user` through the account page. */
  const signedIn = async (user: SignInUser): Promise<Page> => {
    const page = await (await newContext()).newPage()
    await page.goto(at(app().paths.account))
    await signInAs(page, user)
    await expectAccount(page, user)
    return page
  }
  const sessionCookieOf = async (context: BrowserContext) =>
    (await context.cookies(app().url)).find((cookie) => cookie.name === app().cookieName)

  /**
   * A sign-in of `user` started in `page` up to the sandbox's redirect back, which is not
   * followed: the callback URL the browser would have been sent to. (A redirect cannot be
   * intercepted, so the sign-in form's POST is sent from here, with the page's cookies, and its
   * answer read.)
   */
  const approvedCallback = async (page: Page, user: SignInUser): Promise<URL> => {
    let callback: URL | undefined
    const authorize = app().sandbox.authorizeUrl!
    const isSignIn = (url: URL) => url.href.startsWith(authorize)
    await page.route(isSignIn, async (route) => {
      if (route.request().method() !== "POST") return route.continue()
      const answer = await route.fetch({ maxRedirects: 0 })
      const location = answer.headers().location
      if (location !== undefined) callback = new URL(location, authorize)
      return route.abort()
    })
    await page.goto(at(`${app().paths.signIn}?returnTo=${encodeURIComponent(app().paths.account)}`))
    await page.waitForURL((url) => isSignIn(url))
    await page.getByLabel("Username").fill(user.username)
    await page.getByLabel("Password").fill(user.password)
    await page
      .getByRole("button", { name: "Sign in" })
      .click()
      .catch(() => {})
    await expect.poll(() => callback, { timeout: 10_000 }).toBeDefined()
    await page.unroute(isSignIn)
    for (const key of ["code", "state"]) {
      const value = callback!.searchParams.get(key)
      if (value) callbacks.add(value)
    }
    return callback!
  }
  /** Delivers a callback URL in `page`: the app's answer, status and text. */
  const deliver = async (page: Page, url: URL | string) => {
    const response = await page.goto(String(url))
    return { status: response?.status() ?? 0, text: (await response?.text()) ?? "" }
  }
  const tokenRequests = () => app().sandbox.stats().tokenRequests.total

  describe(`${name}: per-user sign-in in Chromium`, () => {
    it("signs in on the sandbox's page; the account page shows the user, /v1/me called server-side, and through the per-user proxy from the browser; a POST carries x-csrf", async () => {
      const [first] = app().users
      alice = await (await newContext()).newPage()
      await alice.goto(at(app().paths.account))
      expect(onSignInPage(alice)).toBe(true)
      await signInAs(alice, first)
      await expectAccount(alice, first)
      const cookie = await sessionCookieOf(alice.context())
      expect(cookie).toMatchObject({ httpOnly: true, sameSite: "Lax", path: "/" })
      expect(cookie!.value).toMatch(/^[\w-]{43}$/)

      const created = app().sandbox.stats().claims.created
      const [post] = await Promise.all([
        alice.waitForRequest(
          (request) => request.method() === "POST" && request.url().endsWith("/v1/claims")
        ),
        alice.getByRole("button", { name: app().page.submitClaim }).click()
      ])
      expect(post.headers()["x-csrf"]).toBe("1")
      await alice.getByTestId(app().page.claimId).waitFor()
      expect(await alice.getByTestId(app().page.claimId).textContent()).toMatch(/^CLM-\d+$/)
      expect(app().sandbox.stats().claims.created).toBe(created + 1)
      expect(problemsOf(alice)).toEqual([])
    })

    it("short token lifetimes are refreshed with no visible error across 4 lifetimes", async () => {
      const [first] = app().users
      const refreshes = () => app().sandbox.stats().tokenRequests.byGrant.refresh_token ?? 0
      const before = refreshes()
      for (let lifetime = 0; lifetime < 4; lifetime++) {
        await sleep(app().tokenTtl * 1000 + 300)
        await alice.reload()
        await expectAccount(alice, first)
        await alice.getByRole("button", { name: app().page.askAgain }).click()
        await expect
          .poll(() => alice.getByTestId(app().page.clientSubject).textContent())
          .toBe(first.username)
      }
      expect(refreshes() - before).toBeGreaterThanOrEqual(4)
      expect(problemsOf(alice)).toEqual([])
    })

    it("two users in two browser contexts, 50 concurrent proxied calls each: each carries its own user's token", async () => {
      const [first, second] = app().users
      bob = await signedIn(second)
      const before = app().sandbox.stats().apiRequests.bySubject
      const burst = (page: Page) =>
        page.evaluate(
          async ({ path, count }) =>
            Promise.all(
              Array.from({ length: count }, async () => {
                const response = await fetch(path)
                return response.ok
                  ? ((await response.json()) as { subject: string }).subject
                  : `HTTP ${response.status}`
              })
            ),
          { path: `${app().paths.proxy}/v1/me`, count: 50 }
        )
      const [seenByAlice, seenByBob] = await Promise.all([burst(alice), burst(bob)])
      expect(seenByAlice).toEqual(Array(50).fill(first.username))
      expect(seenByBob).toEqual(Array(50).fill(second.username))
      const after = app().sandbox.stats().apiRequests.bySubject
      expect((after[first.username] ?? 0) - (before[first.username] ?? 0)).toBe(50)
      expect((after[second.username] ?? 0) - (before[second.username] ?? 0)).toBe(50)
      expect(problemsOf(alice, bob)).toEqual([])
    })

    it("CSRF: a page of another origin posting to the per-user proxy and to sign-out is refused (403); nothing reaches the API, the session lives on", async () => {
      const [first] = app().users
      // Another origin on the same host: the same site, so the browser sends the Lax session cookie.
      evil = createServer((_req, res) => {
        res.writeHead(200, { "content-type": "text/html; charset=utf-8" })
        res.end(`<!doctype html><title>evil</title>
          <form id="out" method="post" action="${at(app().paths.signOut)}"></form>
          <script>
            fetch(${JSON.stringify(at(`${app().paths.proxy}/v1/claims`))}, {
              method: "POST", mode: "no-cors", credentials: "include",
              headers: { "content-type": "text/plain" }, body: '{"amount":1000,"description":"forged"}'
            }).finally(() => document.getElementById("out").submit())
          </script>`)
      })
      await new Promise<void>((resolve) => evil!.listen(0, "127.0.0.1", resolve))
      const evilOrigin = `http://127.0.0.1:${(evil.address() as AddressInfo).port}`
      const created = app().sandbox.stats().claims.created
      const page = await alice.context().newPage()
      const answers = Promise.all([
        page.waitForResponse((response) => response.url().endsWith(`${app().paths.proxy}/v1/claims`)),
        page.waitForResponse((response) => response.url() === at(app().paths.signOut))
      ])
      await page.goto(evilOrigin)
      const [claim, signOut] = await answers
      // The same site, so the browser sends the Lax session cookie with both (Chromium does not
      // show Playwright the raw headers of such requests): the CSRF checks refuse them, first.
      expect(claim.status()).toBe(403)
      expect(signOut.status()).toBe(403)
      expect(await signOut.text()).toContain("A state-changing request from another site was refused.")
      await page.close()
      expect(app().sandbox.stats().claims.created).toBe(created)
      await alice.reload()
      await expectAccount(alice, first)
    })

    describe("attacks on the sign-in, each refused with a clear error and nothing stored", () => {
      it("the state missing, or the callback delivered in another browser than the one that started it", async () => {
        const [, second] = app().users
        const attacker = await (await newContext()).newPage()
        const victim = await (await newContext()).newPage()
        const callback = await approvedCallback(attacker, second)
        const requested = tokenRequests()
        const foreign = await deliver(victim, callback)
        expect(foreign.status).toBe(400)
        expect(foreign.text).toContain("This sign-in is not valid in this browser")
        const noState = new URL(callback)
        noState.searchParams.delete("state")
        const missing = await deliver(victim, noState)
        expect(missing.status).toBe(400)
        expect(missing.text).toContain("This sign-in is not valid in this browser")
        expect(tokenRequests()).toBe(requested)
        expect(await sessionCookieOf(victim.context())).toBeUndefined()
        // nothing stored: the victim is not signed in
        await victim.goto(at(app().paths.account))
        expect(onSignInPage(victim)).toBe(true)
      })

      it("a code replayed: the callback delivered again is refused, the session made by the first stays", async () => {
        const [first] = app().users
        const page = await (await newContext()).newPage()
        const callback = await approvedCallback(page, first)
        await page.goto(callback.href)
        await expectAccount(page, first)
        const cookie = (await sessionCookieOf(page.context()))!.value
        const again = await deliver(page, callback)
        expect(again.status).toBe(400)
        expect((await sessionCookieOf(page.context()))!.value).toBe(cookie)
        await page.goto(at(app().paths.account))
        await expectAccount(page, first)
      })

      it("a PKCE verifier that does not match: the code of one sign-in under the state of another", async () => {
        const [first] = app().users
        const context = await newContext()
        const one = await approvedCallback(await context.newPage(), first)
        const two = await approvedCallback(await context.newPage(), first)
        const swapped = new URL(two)
        swapped.searchParams.set("code", one.searchParams.get("code")!)
        const page = await context.newPage()
        const answer = await deliver(page, swapped)
        expect(answer.status).toBe(400)
        expect(answer.text).toContain("The authorization code could not be exchanged")
        expect(await sessionCookieOf(context)).toBeUndefined()
      })

      it("a mix-up: the callback's iss names another server", async () => {
        const [first] = app().users
        const page = await (await newContext()).newPage()
        const callback = await approvedCallback(page, first)
        callback.searchParams.set("iss", "https://other-idp.example")
        const requested = tokenRequests()
        const answer = await deliver(page, callback)
        expect(answer.status).toBe(400)
        expect(answer.text).toContain("did not come from the expected authorization server")
        expect(tokenRequests()).toBe(requested)
        expect(await sessionCookieOf(page.context())).toBeUndefined()
      })

      it("an open redirect through returnTo: refused before the browser leaves the app", async () => {
        const page = await (await newContext()).newPage()
        const left: Array<string> = []
        page.on("request", (request) => {
          if (!onApp(request.url())) left.push(request.url())
        })
        for (const returnTo of [
          "//evil.example/x",
          "https://evil.example/",
          "/\\evil.example",
          "javascript:alert(1)"
        ]) {
          const answer = await deliver(
            page,
            at(`${app().paths.signIn}?returnTo=${encodeURIComponent(returnTo)}`)
          )
          expect(answer.status, returnTo).toBe(400)
          expect(answer.text).toContain("returnTo must be a path of this app.")
        }
        expect(left).toEqual([])
      })

      it("session fixation: a session cookie planted before the sign-in is not the one after it, and the planted session is over", async () => {
        const [first, second] = app().users
        const attacker = await signedIn(second)
        const planted = (await sessionCookieOf(attacker.context()))!.value
        const context = await newContext()
        await context.addCookies([{ name: app().cookieName, value: planted, url: app().url }])
        const victim = await context.newPage()
        await victim.goto(at(`${app().paths.signIn}?returnTo=${encodeURIComponent(app().paths.account)}`))
        await signInAs(victim, first)
        await expectAccount(victim, first)
        const after = (await sessionCookieOf(context))!.value
        expect(after).not.toBe(planted)
        // the attacker's session, which the victim's browser carried, ended with the victim's sign-in
        await attacker.goto(at(app().paths.account))
        expect(onSignInPage(attacker)).toBe(true)
      })
    })

    it("a refresh token revoked at the sandbox: once the access token expires, the next page load leads to sign-in", async () => {
      const [first] = app().users
      expect(app().sandbox.revokeRefreshTokens(first.username)).toBeGreaterThanOrEqual(1)
      await sleep(app().tokenTtl * 1000 + 500)
      await alice.goto(at(app().paths.account))
      expect(onSignInPage(alice)).toBe(true)
      await signInAs(alice, first)
      await expectAccount(alice, first)
      expect(problemsOf(alice)).toEqual([])
    })

    it("sign-out clears the cookie and the sandbox records the revocation", async () => {
      const [, second] = app().users
      const before = app().sandbox.stats().revocations
      expect(await sessionCookieOf(bob.context())).toBeDefined()
      await Promise.all([
        bob.waitForURL((url) => url.pathname === app().paths.signedOut),
        bob.getByRole("button", { name: app().page.signOut }).click()
      ])
      expect(await sessionCookieOf(bob.context())).toBeUndefined()
      const after = app().sandbox.stats().revocations
      expect(after.revoked).toBe(before.revoked + 1)
      expect((after.bySubject[second.username] ?? 0) - (before.bySubject[second.username] ?? 0)).toBe(1)
      await bob.goto(at(app().paths.account))
      expect(onSignInPage(bob)).toBe(true)
      expect(problemsOf(bob)).toEqual([])
    })

    it("no token, code, state, session id or client secret in the server's output, the pages and answers the browsers received, or the built app", async () => {
      await sleep(200) // the last bodies are read
      const texts: Array<{ where: string; text: string }> = []
      for (const { context, received } of contexts) {
        for (const cookie of await context.cookies()) sessionIds.add(cookie.value)
        for (const page of context.pages())
          texts.push({ where: `page ${page.url()}`, text: await page.content() })
        for (const answer of received) texts.push({ where: `answer ${answer.url}`, text: answer.text })
      }
      const secrets = app().secrets()
      const needles = [...secrets, ...callbacks, ...sessionIds].filter((value) => value.length >= 16)
      expect(secrets.length).toBeGreaterThan(10)
      expect(callbacks.size).toBeGreaterThan(10)
      expect(sessionIds.size).toBeGreaterThan(5)
      const places = [{ where: "server output", text: app().output() }, ...texts, ...app().files()]
      const leaks = places.flatMap(({ where, text }) =>
        needles.some((needle) => text.includes(needle)) ? [where] : []
      )
      expect(leaks).toEqual([])
      console.log(`scanned ${places.length} texts for ${needles.length} secret values: none found`)
    })
  })
}
