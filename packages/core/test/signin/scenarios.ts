/**
 * The acceptance of issue #15 in real Chromium, written once for every app
 * that signs users in with `@authfetch/core`'s sessions (the Express example
 * runs it; the Next example can): sign in on the WealthCare sandbox's page,
 * the user's token through the per-user proxy and on the server, refresh
 * across short lifetimes, a revoked refresh token, sign-out with revocation,
 * two users without crossing, every attack refused with nothing stored, and
 * nothing secret in what the browser received or the server printed.
 *
 * ```ts
 * import { describeSignInScenarios } from "../../../packages/core/test/signin/scenarios.ts"
 *
 * describeSignInScenarios({
 *   start: async () => startMyAppWithASandbox(), // a SignInApp (types.ts)
 *   launch: () => chromium.launch({ executablePath: "/usr/bin/chromium", args: [...] })
 * })
 * ```
 *
 * The browser and the app are started inside the first test that needs them
 * (a failing hook would report the tests as skipped, not failed) and closed
 * after the last. The tests run in order; the last one scans everything the
 * ones before received.
 */
import { type Sandbox, startSandbox } from "@authfetch/sandbox"
import { afterAll, describe, expect, it } from "vitest"
import {
  at,
  authorizationCaught,
  callbackCaught,
  callbackOverHttp,
  fillSignIn,
  isCallback,
  isSignInPage,
  onSignInPage,
  type Received,
  Recorder,
  sessionCookie,
  signInInBrowser,
  startOtherOrigin,
  type Tab
} from "./helpers.ts"
import { type BrowserLike, SELECTORS, type SignInApp, type SignInScenarioOptions } from "./types.ts"

/** The core's fixed sentences (BffProxy.problemFor): what a refused request says. */
const REFUSED = {
  notThisBrowser:
    "This sign-in is not valid in this browser (expired, completed, or started elsewhere). Sign in again.",
  exchange: "The authorization code could not be exchanged. Sign in again.",
  mixUp: "The sign-in answer did not come from the expected authorization server.",
  returnTo: "returnTo must be a path of this app.",
  crossSite: "A state-changing request from another site was refused."
} as const

const TEST_TIMEOUT = 90_000

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Registers the scenarios (a `describe` block) for the app `options.start` starts. */
export const describeSignInScenarios = (options: SignInScenarioOptions): void => {
  let starting: Promise<SignInApp> | undefined
  let launching: Promise<BrowserLike> | undefined
  let other: Promise<Sandbox> | undefined
  const app = () => {
    starting ??= options.start()
    return starting
  }
  const browser = () => {
    launching ??= options.launch()
    return launching
  }
  const recorder = new Recorder(browser)
  const settled = async <A>(promise: Promise<A> | undefined): Promise<A | undefined> =>
    promise === undefined ? undefined : promise.catch(() => undefined)

  afterAll(async () => {
    await recorder.closeAll()
    await (await settled(launching))?.close()
    await (await settled(starting))?.close()
    await (await settled(other))?.close()
  })

  /** The answers `tab`'s step received from the app, and that none of them set the session cookie. */
  const nothingStored = async (target: SignInApp, tab: Tab | undefined, step: () => Promise<void>) => {
    const keys = target.storeKeys === undefined ? undefined : new Set(await target.storeKeys())
    const cookie = tab === undefined ? undefined : await sessionCookie(tab.context, target)
    const first = recorder.received.length
    await step()
    if (keys !== undefined) {
      const added = (await target.storeKeys!()).filter((key) => !keys.has(key))
      expect(added, "keys the step added to the session store").toEqual([])
    }
    if (tab !== undefined) expect(await sessionCookie(tab.context, target)).toBe(cookie)
    const origin = new URL(target.url).origin
    for (const answer of await Promise.all(recorder.received.slice(first))) {
      if (new URL(answer.url).origin !== origin) continue
      expect(answer.headers["set-cookie"] ?? "", answer.url).not.toContain(`${target.cookieName}=`)
    }
  }

  /** The answer to the last navigation to a URL matching `match`, among those received since `first`. */
  const answerTo = async (first: number, match: (answer: Received) => boolean): Promise<Received> => {
    for (let tries = 0; tries < 100; tries++) {
      const found = (await Promise.all(recorder.received.slice(first))).filter(match)
      if (found.length > 0) return found[found.length - 1]!
      await sleep(50)
    }
    throw new Error("no such answer was received")
  }

  const subjects = async (target: SignInApp) => ({ ...target.sandbox.stats().apiRequests.bySubject })

  describe("sign-in in Chromium", () => {
    it(
      "signs in on the sandbox's page and lands on returnTo; the pages show the user; the page's script calls the proxy with the user's token",
      async () => {
        const target = await app()
        const [user] = target.users
        const tab = await recorder.tab()
        const before = await subjects(target)
        const returnTo = `${target.paths.scriptPage}?from=scenario`
        await tab.page.goto(at(target, returnTo))
        await onSignInPage(tab.page, target)
        await fillSignIn(tab.page, user)
        await tab.page.waitForURL(
          (url) => url.origin === new URL(target.url).origin && `${url.pathname}${url.search}` === returnTo,
          { timeout: 20_000 }
        )
        await tab.page.waitForSelector(SELECTORS.ready, { timeout: 20_000 })
        expect(await tab.page.textContent(SELECTORS.proxyError)).toBe("")
        expect(await tab.page.textContent(SELECTORS.proxySubject)).toBe(user.username)
        expect(await tab.page.textContent(SELECTORS.proxyPost)).toBe("201")

        await tab.page.goto(at(target, target.paths.serverPage))
        expect(await tab.page.textContent(SELECTORS.userName)).toBe(user.name)
        expect(await tab.page.textContent(SELECTORS.apiSubject)).toBe(user.username)
        // the sandbox says whose token reached it: the user's, three times (GET and POST by the page, GET by the server)
        const after = await subjects(target)
        expect((after[user.username] ?? 0) - (before[user.username] ?? 0)).toBe(3)
        expect(after[target.users[1].username] ?? 0).toBe(before[target.users[1].username] ?? 0)

        const cookie = (await tab.context.cookies(target.url)).find((c) => c.name === target.cookieName)
        expect(cookie).toMatchObject({ httpOnly: true, sameSite: "Lax", path: "/" })
        expect(tab.errors).toEqual([])
      },
      TEST_TIMEOUT
    )

    it(
      "refreshes expiring tokens with no visible error: page loads and proxied calls across four lifetimes",
      async () => {
        const target = await app()
        const [user] = target.users
        const tab = await recorder.tab()
        await signInInBrowser(tab.page, target, user)
        const refreshes = () => target.sandbox.stats().tokenRequests.byGrant.refresh_token ?? 0
        const before = refreshes()
        const until = Date.now() + 4 * target.tokenTtlSeconds * 1000
        let loads = 0
        while (Date.now() < until) {
          if (loads % 2 === 0) {
            await tab.page.goto(at(target, target.paths.serverPage))
            expect(await tab.page.textContent(SELECTORS.userName)).toBe(user.name)
            expect(await tab.page.textContent(SELECTORS.apiSubject)).toBe(user.username)
          } else {
            await tab.page.goto(at(target, target.paths.scriptPage))
            await tab.page.waitForSelector(SELECTORS.ready, { timeout: 20_000 })
            expect(await tab.page.textContent(SELECTORS.proxyError)).toBe("")
            expect(await tab.page.textContent(SELECTORS.proxySubject)).toBe(user.username)
            expect(await tab.page.textContent(SELECTORS.proxyPost)).toBe("201")
          }
          loads++
          await sleep(400)
        }
        expect(tab.page.url().startsWith(target.url)).toBe(true)
        expect(loads).toBeGreaterThanOrEqual(4)
        // a new token per lifetime (at least three), not one per call
        expect(refreshes() - before).toBeGreaterThanOrEqual(3)
        expect(refreshes() - before).toBeLessThanOrEqual(3 * loads)
        expect(tab.errors).toEqual([])
      },
      TEST_TIMEOUT
    )

    it(
      "two users in two browser contexts, 50 concurrent proxied calls each: every call carries its own user's token",
      async () => {
        const target = await app()
        const [first, second] = target.users
        const [a, b] = await Promise.all([recorder.tab(), recorder.tab()])
        await Promise.all([
          signInInBrowser(a.page, target, first, { start: target.paths.scriptPage }),
          signInInBrowser(b.page, target, second, { start: target.paths.scriptPage })
        ])
        await Promise.all([a, b].map((tab) => tab.page.waitForSelector(SELECTORS.ready, { timeout: 20_000 })))
        const before = await subjects(target)
        const calls = (tab: Tab) =>
          tab.page.evaluate(
            async ({ url, count }) =>
              Promise.all(
                Array.from({ length: count }, async () => {
                  const response = await fetch(url, { headers: { accept: "application/json" } })
                  const body = (await response.json()) as { subject?: string }
                  return { status: response.status, subject: body.subject ?? null }
                })
              ),
            { url: `${target.paths.proxy}/v1/me`, count: 50 }
          )
        const [answersA, answersB] = await Promise.all([calls(a), calls(b)])
        expect(answersA).toHaveLength(50)
        expect(answersB).toHaveLength(50)
        expect(
          answersA.filter((answer) => answer.status !== 200 || answer.subject !== first.username)
        ).toEqual([])
        expect(
          answersB.filter((answer) => answer.status !== 200 || answer.subject !== second.username)
        ).toEqual([])
        const after = await subjects(target)
        expect((after[first.username] ?? 0) - (before[first.username] ?? 0)).toBe(50)
        expect((after[second.username] ?? 0) - (before[second.username] ?? 0)).toBe(50)
        expect([...a.errors, ...b.errors]).toEqual([])
      },
      TEST_TIMEOUT
    )

    it(
      "a refresh token revoked at the sandbox: once the access token expired, the next page load ends on the sandbox's sign-in page",
      async () => {
        const target = await app()
        const [first, second] = target.users
        const [server, script] = await Promise.all([recorder.tab(), recorder.tab()])
        await Promise.all([
          signInInBrowser(server.page, target, first),
          signInInBrowser(script.page, target, second, { start: target.paths.scriptPage })
        ])
        await script.page.waitForSelector(SELECTORS.ready, { timeout: 20_000 })
        expect(await script.page.textContent(SELECTORS.proxySubject)).toBe(second.username)
        expect(target.sandbox.revokeRefreshTokens(first.username)).toBeGreaterThanOrEqual(1)
        expect(target.sandbox.revokeRefreshTokens(second.username)).toBeGreaterThanOrEqual(1)
        // the access tokens stay valid until they expire
        await sleep((target.tokenTtlSeconds + 1.5) * 1000)
        // the server-rendered page: its server-side call meets the refused refresh token
        await server.page.goto(at(target, target.paths.serverPage))
        await onSignInPage(server.page, target)
        // the script page: the proxy answers 401, the script sends the browser to sign in
        await script.page.goto(at(target, target.paths.scriptPage))
        await onSignInPage(script.page, target)
        // and signing in again lands back where the user was
        await fillSignIn(server.page, first)
        await server.page.waitForURL((url) => url.pathname === target.paths.serverPage, { timeout: 20_000 })
        expect(await server.page.textContent(SELECTORS.apiSubject)).toBe(first.username)
      },
      TEST_TIMEOUT
    )

    it(
      "signs out with the page's button: the cookie is cleared and the sandbox records the revocation",
      async () => {
        const target = await app()
        const [user] = target.users
        const tab = await recorder.tab()
        await signInInBrowser(tab.page, target, user)
        expect(await sessionCookie(tab.context, target)).toBeTypeOf("string")
        const before = target.sandbox.stats().revocations
        const first = recorder.received.length
        await tab.page.click(SELECTORS.signOut)
        const signedOut = await answerTo(
          first,
          (answer) => answer.method === "POST" && new URL(answer.url).pathname === target.paths.signOut
        )
        expect(signedOut.status).toBe(303)
        await tab.page.waitForURL(
          (url) => url.href === new URL(signedOut.headers.location!, target.url).href,
          {
            timeout: 20_000
          }
        )
        expect(await sessionCookie(tab.context, target)).toBeUndefined()
        const after = target.sandbox.stats().revocations
        expect(after.revoked - before.revoked).toBe(1)
        expect((after.bySubject[user.username] ?? 0) - (before.bySubject[user.username] ?? 0)).toBe(1)
        // the session is over
        await tab.page.goto(at(target, target.paths.serverPage))
        await onSignInPage(tab.page, target)
        expect(tab.errors).toEqual([])
      },
      TEST_TIMEOUT
    )
  })

  describe("attacks, each refused with a clear error and nothing stored", () => {
    it(
      "a callback without state",
      async () => {
        const target = await app()
        const tab = await recorder.tab()
        for (const query of ["?code=forged-code", "?code=forged-code&state=", `?code=forged-code&iss=x`]) {
          await nothingStored(target, tab, async () => {
            const response = await tab.page.goto(at(target, `${target.paths.callback}${query}`))
            expect(response?.status()).toBe(400)
            expect(await tab.page.content()).toContain(REFUSED.notThisBrowser)
          })
        }
      },
      TEST_TIMEOUT
    )

    it(
      "a state mismatch: the callback of a sign-in another browser started",
      async () => {
        const target = await app()
        const [victim, attacker] = await Promise.all([recorder.tab(), recorder.tab()])
        const back = await callbackCaught(victim.page, target, target.users[0])
        expect(back.searchParams.get("code")).toBeTruthy()
        await nothingStored(target, attacker, async () => {
          const response = await attacker.page.goto(back.href)
          expect(response?.status()).toBe(400)
          expect(await attacker.page.content()).toContain(REFUSED.notThisBrowser)
        })
        expect(await sessionCookie(attacker.context, target)).toBeUndefined()
      },
      TEST_TIMEOUT
    )

    it(
      "a code replayed: the same callback URL twice",
      async () => {
        const target = await app()
        const tab = await recorder.tab()
        const first = recorder.requested.length
        await signInInBrowser(tab.page, target, target.users[1])
        const callback = recorder.requested.slice(first).find((url) => isCallback(target, url))
        expect(callback).toBeDefined()
        const session = await sessionCookie(tab.context, target)
        const exchanges = target.sandbox.stats().tokenRequests.byGrant.authorization_code ?? 0
        await nothingStored(target, tab, async () => {
          const response = await tab.page.goto(callback!)
          expect(response?.status()).toBe(400)
          expect(await tab.page.content()).toContain(REFUSED.notThisBrowser)
        })
        // refused before the token endpoint: the code was not sent again
        expect(target.sandbox.stats().tokenRequests.byGrant.authorization_code ?? 0).toBe(exchanges)
        // the sign-in that did happen stands
        expect(await sessionCookie(tab.context, target)).toBe(session)
        await tab.page.goto(at(target, target.paths.serverPage))
        expect(await tab.page.textContent(SELECTORS.apiSubject)).toBe(target.users[1].username)
      },
      TEST_TIMEOUT
    )

    it(
      "a PKCE verifier that does not match: browser A's code in browser B's callback, with B's own state",
      async () => {
        const target = await app()
        const [a, b] = await Promise.all([recorder.tab(), recorder.tab()])
        const backA = await callbackCaught(a.page, target, target.users[0])
        const authorizationB = await authorizationCaught(b.page, target)
        const forged = new URL(backA)
        forged.searchParams.set("state", authorizationB.searchParams.get("state")!)
        const stats = () => target.sandbox.stats().tokenRequests
        const exchanges = stats().byGrant.authorization_code ?? 0
        const refused = stats().byStatus["400"] ?? 0
        await nothingStored(target, b, async () => {
          const response = await b.page.goto(forged.href)
          expect(response?.status()).toBe(400)
          expect(await b.page.content()).toContain(REFUSED.exchange)
        })
        // the app sent the code with B's verifier, and the sandbox refused it
        expect((stats().byGrant.authorization_code ?? 0) - exchanges).toBe(1)
        expect((stats().byStatus["400"] ?? 0) - refused).toBe(1)
        expect(await sessionCookie(b.context, target)).toBeUndefined()
      },
      TEST_TIMEOUT
    )

    it(
      "an open redirect through returnTo",
      async () => {
        const target = await app()
        const tab = await recorder.tab()
        for (const returnTo of [
          "//evil.example",
          "https://evil.example",
          "/\\evil.example",
          "/\\/evil.example"
        ]) {
          const first = recorder.requested.length
          await nothingStored(target, tab, async () => {
            const response = await tab.page.goto(
              at(target, `${target.paths.signIn}?returnTo=${encodeURIComponent(returnTo)}`)
            )
            expect(response?.status(), returnTo).toBe(400)
            expect(await tab.page.content()).toContain(REFUSED.returnTo)
          })
          expect(new URL(tab.page.url()).origin).toBe(new URL(target.url).origin)
          // the browser was not even sent to sign in
          expect(recorder.requested.slice(first).filter((url) => isSignInPage(target, url))).toEqual([])
        }
        expect(await sessionCookie(tab.context, target)).toBeUndefined()
      },
      TEST_TIMEOUT
    )

    it(
      "session fixation: a cookie set before sign-in is not the one after, and gives no session",
      async () => {
        const target = await app()
        const [first, second] = target.users
        // a made-up id planted in the victim's browser
        const victim = await recorder.tab()
        const planted = "planted-by-an-attacker-0123456789abcdef0123456789"
        await victim.context.addCookies([{ name: target.cookieName, value: planted, url: target.url }])
        await victim.page.goto(at(target, target.paths.serverPage))
        await onSignInPage(victim.page, target)
        await fillSignIn(victim.page, first)
        await victim.page.waitForURL((url) => url.pathname === target.paths.serverPage, { timeout: 20_000 })
        const after = await sessionCookie(victim.context, target)
        expect(after).toBeTypeOf("string")
        expect(after).not.toBe(planted)

        // the attacker's own session id planted in another victim's browser: the victim's sign-in
        // ends it, so the attacker cannot ride on the victim's session with an id it knows
        const attacker = await recorder.tab()
        await signInInBrowser(attacker.page, target, second)
        const known = (await sessionCookie(attacker.context, target))!
        const other = await recorder.tab()
        await other.context.addCookies([{ name: target.cookieName, value: known, url: target.url }])
        await other.page.goto(
          at(target, `${target.paths.signIn}?returnTo=${encodeURIComponent(target.paths.serverPage)}`)
        )
        await onSignInPage(other.page, target)
        await fillSignIn(other.page, first)
        await other.page.waitForURL((url) => url.pathname === target.paths.serverPage, { timeout: 20_000 })
        expect(await other.page.textContent(SELECTORS.apiSubject)).toBe(first.username)
        expect(await sessionCookie(other.context, target)).not.toBe(known)
        await attacker.page.goto(at(target, target.paths.serverPage))
        await onSignInPage(attacker.page, target)
      },
      TEST_TIMEOUT
    )

    it(
      "CSRF on a proxied POST: from pages of other origins (cross-site and same-site), and without the custom header",
      async () => {
        const target = await app()
        const [user] = target.users
        const victim = await recorder.tab()
        await signInInBrowser(victim.page, target, user, { start: target.paths.scriptPage })
        await victim.page.waitForSelector(SELECTORS.ready, { timeout: 20_000 })
        const claims = `${target.url}${target.paths.proxy}/v1/claims`
        const evil = await startOtherOrigin(
          () => `<!doctype html><title>win a prize</title>
<form id="forged" method="post" action="${claims}" enctype="text/plain">
<input type="hidden" name='{"consumerId":"12345","accountType":"HSA","amount":1,"pad":"' value='"}'>
<button id="go" type="submit">Claim your prize</button></form>`
        )
        try {
          const before = target.sandbox.stats()
          for (const origin of [`http://localhost:${evil.port}`, `http://127.0.0.1:${evil.port}`]) {
            // a form on that origin, submitted (a top-level POST: SameSite=Lax sends the cookie from a same-site page)
            await victim.page.goto(`${origin}/`)
            const first = recorder.received.length
            await victim.page.click("#go")
            const answer = await answerTo(first, (a) => a.url === claims && a.method === "POST")
            expect(answer.status, origin).toBe(403)
            expect(answer.body).toContain(REFUSED.crossSite)
            // its scripts: a no-cors POST goes out and is refused; a POST with the header needs a preflight, refused
            await victim.page.goto(`${origin}/`)
            const outcomes = await victim.page.evaluate(async (url) => {
              const out: Array<string> = []
              await fetch(url, { method: "POST", mode: "no-cors", credentials: "include", body: "{}" }).then(
                () => out.push("no-cors: sent, answer opaque"),
                () => out.push("no-cors: failed")
              )
              await fetch(url, {
                method: "POST",
                credentials: "include",
                headers: { "x-csrf": "1", "content-type": "application/json" },
                body: "{}"
              }).then(
                (response) => out.push(`cors: ${response.status}`),
                () => out.push("cors: refused by the browser")
              )
              return out
            }, claims)
            expect(outcomes).toEqual(["no-cors: sent, answer opaque", "cors: refused by the browser"])
          }
          const posts = (await Promise.all(recorder.received)).filter(
            (a) => a.url === claims && a.method === "POST"
          )
          expect(posts.filter((a) => a.status !== 403 && a.status !== 201)).toEqual([])
          // nothing reached the API
          const after = target.sandbox.stats()
          expect(after.claims.created).toBe(before.claims.created)
          expect(after.apiRequests.total).toBe(before.apiRequests.total)
        } finally {
          await evil.close()
        }
        // the app's own page: without the header refused, with it created
        await victim.page.goto(at(target, target.paths.scriptPage))
        await victim.page.waitForSelector(SELECTORS.ready, { timeout: 20_000 })
        const same = await victim.page.evaluate(async (url) => {
          const body = JSON.stringify({ consumerId: "12345", accountType: "HSA", amount: 1 })
          const headers = { "content-type": "application/json" }
          const without = await fetch(url, { method: "POST", headers, body })
          const detail = ((await without.json()) as { detail?: string }).detail
          const withHeader = await fetch(url, {
            method: "POST",
            headers: { ...headers, "x-csrf": "1" },
            body
          })
          return [without.status, detail, withHeader.status]
        }, `${target.paths.proxy}/v1/claims`)
        expect(same).toEqual([403, REFUSED.crossSite, 201])
      },
      TEST_TIMEOUT
    )

    it(
      "a mix-up: a callback whose iss is another authorization server's (over HTTP)",
      async () => {
        const target = await app()
        other ??= startSandbox({ profile: "wealthcare" })
        const elsewhere = await other
        const exchanges = () => target.sandbox.stats().tokenRequests.byGrant.authorization_code ?? 0
        for (const user of target.users) {
          const { jar, back } = await callbackOverHttp(target, user)
          expect(back.searchParams.get("iss")).toBe(target.sandbox.issuer)
          back.searchParams.set("iss", elsewhere.issuer!)
          const before = exchanges()
          await nothingStored(target, undefined, async () => {
            const reply = await jar.send(back.href)
            expect(reply.status).toBe(400)
            expect(reply.headers["content-type"]).toBe("application/problem+json")
            expect(JSON.parse(reply.text).detail).toBe(REFUSED.mixUp)
            expect(String(reply.headers["set-cookie"] ?? "")).not.toContain(`${target.cookieName}=`)
          })
          expect(jar.cookies.has(target.cookieName)).toBe(false)
          // the code never went to the token endpoint
          expect(exchanges()).toBe(before)
        }
      },
      TEST_TIMEOUT
    )
  })

  describe("what leaves the server", () => {
    it(
      "no token, code, state, session id, client secret or password in the server's output, its files or anything the browser received",
      async () => {
        const target = await app()
        const origin = new URL(target.url).origin
        const answers = await recorder.from(origin)
        expect(answers.length).toBeGreaterThan(30)
        const secrets = new Set<string>(target.secrets())
        const fromServer = secrets.size
        for (const url of recorder.requested) {
          if (!isCallback(target, url)) continue
          for (const name of ["code", "state"]) {
            const value = new URL(url).searchParams.get(name)
            if (value !== null && value.length >= 16) secrets.add(value)
          }
        }
        for (const answer of answers) {
          for (const line of (answer.headers["set-cookie"] ?? "").split("\n")) {
            const value = /^[^=;]+=([^;]*)/.exec(line)?.[1]
            if (value !== undefined && value.length >= 16) secrets.add(value)
          }
        }
        for (const user of target.users) secrets.add(user.password)
        expect(secrets.size - fromServer).toBeGreaterThan(20)

        const output = target.output()
        const files = target.files?.() ?? []
        for (const secret of secrets) {
          expect(output.includes(secret), "a secret in the server's output").toBe(false)
          for (const file of files)
            expect(file.text.includes(secret), `a secret in ${file.where}`).toBe(false)
          for (const answer of answers) {
            expect(answer.body.includes(secret), `a secret in the body of ${answer.url}`).toBe(false)
            for (const [name, value] of Object.entries(answer.headers)) {
              // the session cookie is the one place its value goes; the authorization request
              // carries state and nonce by protocol (RFC 6749 4.1.1)
              if (name === "set-cookie" || (name === "location" && isSignInPage(target, value))) continue
              expect(value.includes(secret), `a secret in the ${name} header of ${answer.url}`).toBe(false)
            }
          }
        }
      },
      TEST_TIMEOUT
    )
  })
}
