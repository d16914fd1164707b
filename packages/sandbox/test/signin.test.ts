/**
 * WealthCare's sign-in page (`GET|POST /connect/authorize`), driven with
 * fetch as a browser would: the form, the right and wrong credentials, Cancel,
 * the single-use request id and its expiry, the failed-attempt cap,
 * `autoApprove` with `login_hint`, `prompt`, and escaping.
 */
import { afterEach, describe, expect, it } from "vitest"
import { type Sandbox, type SandboxEvent, type SandboxOptions, startSandbox } from "../src/index.ts"
import { authorizeRequest, bearer, CLIENT, pkce, postForm, requestIdOf, submitSignIn } from "./support.ts"

const open: Array<Sandbox> = []
const start = async (options: Partial<SandboxOptions> = {}) => {
  const sandbox = await startSandbox({ profile: "wealthcare", ...options })
  open.push(sandbox)
  return sandbox
}
afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.close()))
})

const REDIRECT = "http://127.0.0.1:53682/callback"
const ALICE = {
  username: "alice",
  password: "correct horse",
  name: "Alice Example",
  email: "alice@example.com"
}
const BOB = { username: "bob", password: "battery staple" }

const request = (challenge: string, extra: Record<string, string> = {}) => ({
  response_type: "code",
  client_id: "sandbox-client",
  redirect_uri: REDIRECT,
  scope: "openid profile bensoft_api offline_access",
  state: "st-123",
  code_challenge: challenge,
  code_challenge_method: "S256",
  ...extra
})

/** The sign-in page for a new authorization request, and its request id. */
const signInPage = async (sandbox: Sandbox, challenge: string, extra: Record<string, string> = {}) => {
  const page = await authorizeRequest(sandbox, request(challenge, extra))
  expect(page.status).toBe(200)
  return { ...page, requestId: requestIdOf(page.text) }
}

const exchange = (sandbox: Sandbox, code: string, verifier: string) =>
  postForm(sandbox.tokenUrl, {
    grant_type: "authorization_code",
    code,
    redirect_uri: REDIRECT,
    code_verifier: verifier,
    ...CLIENT
  })

describe("sign-in page", () => {
  it("GET shows the form; POST with the right credentials redirects with code, state and iss; the code exchanges", async () => {
    const events: Array<SandboxEvent> = []
    const sandbox = await start({ users: [ALICE, BOB], onEvent: (e) => events.push(e) })
    const { verifier, challenge } = pkce()
    const page = await signInPage(sandbox, challenge)

    expect(page.headers.get("content-type")).toBe("text/html; charset=utf-8")
    expect(page.headers.get("cache-control")).toBe("no-store")
    expect(page.headers.get("x-frame-options")).toBe("DENY")
    expect(page.headers.get("content-security-policy")).toBe(
      "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' http://127.0.0.1:53682; frame-ancestors 'none'"
    )
    const html = page.text
    expect(html).toContain('<form method="post" action="/connect/authorize"')
    expect(html).toMatch(/<label for="username">Username<\/label>/)
    expect(html).toMatch(/<input type="text" id="username" name="username" autocomplete="username"/)
    expect(html).toMatch(/<label for="password">Password<\/label>/)
    expect(html).toMatch(
      /<input type="password" id="password" name="password" autocomplete="current-password"/
    )
    expect(html).toContain(
      '<button type="submit" class="primary" name="action" value="approve">Sign in</button>'
    )
    expect(html).toContain('<button type="submit" name="action" value="deny" formnovalidate>Cancel</button>')
    // Sign in comes first: Enter in a field submits with it
    expect(html.indexOf('value="approve"')).toBeLessThan(html.indexOf('value="deny"'))
    // which client asks for which scopes, and the test users with their passwords
    expect(html).toContain("<b>sandbox-client</b> asks")
    for (const scope of ["openid", "profile", "bensoft_api", "offline_access"]) {
      expect(html).toContain(`<li>${scope}</li>`)
    }
    expect(html).toContain(
      '<td class="mono">alice</td><td class="mono">correct horse</td><td>Alice Example</td>'
    )
    expect(html).toContain('<td class="mono">bob</td><td class="mono">battery staple</td>')
    // nothing of the request but its id goes into the page
    expect(html).not.toContain(challenge)
    expect(html).not.toContain("st-123")

    const signedIn = await submitSignIn(sandbox, {
      request: page.requestId,
      username: "alice",
      password: "correct horse",
      action: "approve"
    })
    expect(signedIn.status).toBe(302)
    expect(signedIn.headers.get("cache-control")).toBe("no-store")
    const location = signedIn.location!
    expect(`${location.origin}${location.pathname}`).toBe(REDIRECT)
    expect(location.searchParams.get("state")).toBe("st-123")
    expect(location.searchParams.get("iss")).toBe(sandbox.url)
    const code = location.searchParams.get("code")!
    expect(code.length).toBeGreaterThan(20)

    const res = await exchange(sandbox, code, verifier)
    expect(res.status).toBe(200)
    const token = (await res.json()) as { access_token: string; refresh_token: string; scope: string }
    expect(token.scope).toBe("openid profile bensoft_api offline_access")
    expect(typeof token.refresh_token).toBe("string")
    const me = (await (
      await fetch(`${sandbox.baseUrl}/v1/me`, { headers: bearer(token.access_token) })
    ).json()) as {
      subject: string
    }
    expect(me.subject).toBe("alice")

    expect(events.map((e) => [e.kind, e.method, e.status, e.subject ?? null])).toEqual([
      ["authorize", "GET", 200, null],
      ["authorize", "POST", 302, "alice"],
      ["token", "POST", 200, "alice"],
      ["api", "GET", 200, "alice"]
    ])
    expect(events[1]!.clientId).toBe("sandbox-client")
    const all = JSON.stringify(events)
    for (const secret of [page.requestId, code, "correct horse", token.access_token, token.refresh_token]) {
      expect(all).not.toContain(secret)
    }
  })

  it("a wrong password shows the form again with a message, and the same request id then works", async () => {
    const sandbox = await start({ users: [ALICE] })
    const { verifier, challenge } = pkce()
    const page = await signInPage(sandbox, challenge)
    const wrong = await submitSignIn(sandbox, {
      request: page.requestId,
      username: "alice",
      password: "wrong"
    })
    expect(wrong.status).toBe(200)
    expect(wrong.location).toBeUndefined()
    expect(wrong.text).toContain("Invalid username or password")
    expect(wrong.headers.get("content-security-policy")).toContain(
      "form-action 'self' http://127.0.0.1:53682"
    )
    expect(requestIdOf(wrong.text)).toBe(page.requestId)
    // the username typed is kept, the password is not
    expect(wrong.text).toContain('value="alice"')
    expect(wrong.text).not.toContain('value="wrong"')
    const unknown = await submitSignIn(sandbox, {
      request: page.requestId,
      username: "mallory",
      password: "x"
    })
    expect(unknown.text).toContain("Invalid username or password")
    const missing = await submitSignIn(sandbox, { request: page.requestId, username: "alice" })
    expect(missing.text).toContain("Invalid username or password")

    // no action field (a form submitted by Enter or by a script): signs in, as the first button does
    const right = await submitSignIn(sandbox, {
      request: page.requestId,
      username: "alice",
      password: "correct horse"
    })
    expect(right.status).toBe(302)
    const code = right.location!.searchParams.get("code")!
    expect((await exchange(sandbox, code, verifier)).status).toBe(200)
  })

  it("Cancel redirects with error=access_denied, state and iss, and spends the request", async () => {
    const sandbox = await start()
    const page = await signInPage(sandbox, pkce().challenge)
    const denied = await submitSignIn(sandbox, { request: page.requestId, username: "", action: "deny" })
    expect(denied.status).toBe(302)
    expect(denied.location!.searchParams.get("error")).toBe("access_denied")
    expect(denied.location!.searchParams.get("error_description")).toMatch(/cancelled/)
    expect(denied.location!.searchParams.get("state")).toBe("st-123")
    expect(denied.location!.searchParams.get("iss")).toBe(sandbox.url)
    expect(denied.location!.searchParams.get("code")).toBeNull()
    const after = await submitSignIn(sandbox, {
      request: page.requestId,
      username: "sandbox-user",
      password: "sandbox-password"
    })
    expect(after.status).toBe(400)
  })

  it("the request id is single use, and expires after 10 minutes by the sandbox's clock", async () => {
    const sandbox = await start()
    const good = { username: "sandbox-user", password: "sandbox-password" }
    const page = await signInPage(sandbox, pkce().challenge)
    expect((await submitSignIn(sandbox, { request: page.requestId, ...good })).status).toBe(302)
    const reused = await submitSignIn(sandbox, { request: page.requestId, ...good })
    expect(reused.status).toBe(400)
    expect(reused.location).toBeUndefined()
    expect(reused.text).toMatch(/unknown, expired or already used/)
    expect(reused.headers.get("cache-control")).toBe("no-store")

    const bogus = await submitSignIn(sandbox, { request: "not-a-request-id", ...good })
    expect(bogus.status).toBe(400)
    expect((await submitSignIn(sandbox, good)).status).toBe(400)

    const early = await signInPage(sandbox, pkce().challenge)
    const late = await signInPage(sandbox, pkce().challenge)
    sandbox.setFaults({ clockOffsetSeconds: 9 * 60 })
    expect((await submitSignIn(sandbox, { request: early.requestId, ...good })).status).toBe(302)
    sandbox.setFaults({ clockOffsetSeconds: 10 * 60 + 1 })
    const expired = await submitSignIn(sandbox, { request: late.requestId, ...good })
    expect(expired.status).toBe(400)
    expect(expired.text).toMatch(/unknown, expired or already used/)
  })

  it("drops the request after 5 failed attempts", async () => {
    const events: Array<SandboxEvent> = []
    const sandbox = await start({ onEvent: (e) => events.push(e) })
    const page = await signInPage(sandbox, pkce().challenge)
    for (let i = 1; i <= 4; i++) {
      const wrong = await submitSignIn(sandbox, {
        request: page.requestId,
        username: "sandbox-user",
        password: `x${i}`
      })
      expect(wrong.status).toBe(200)
      expect(wrong.text).toContain("Invalid username or password")
    }
    const fifth = await submitSignIn(sandbox, {
      request: page.requestId,
      username: "sandbox-user",
      password: "x5"
    })
    expect(fifth.status).toBe(400)
    expect(fifth.text).toMatch(/5 failed sign-in attempts/)
    const right = await submitSignIn(sandbox, {
      request: page.requestId,
      username: "sandbox-user",
      password: "sandbox-password"
    })
    expect(right.status).toBe(400)
    expect(right.location).toBeUndefined()
    expect(events.filter((e) => e.method === "POST").map((e) => e.error)).toEqual([
      "invalid_credentials",
      "invalid_credentials",
      "invalid_credentials",
      "invalid_credentials",
      "too_many_attempts",
      "invalid_request"
    ])
    // another request of the same user is unaffected
    const next = await signInPage(sandbox, pkce().challenge)
    expect(
      (
        await submitSignIn(sandbox, {
          request: next.requestId,
          username: "sandbox-user",
          password: "sandbox-password"
        })
      ).status
    ).toBe(302)
  })

  it("keeps the checks of the authorization request: bad client or redirect_uri a page, the rest a redirect", async () => {
    const sandbox = await start()
    const { challenge } = pkce()
    const badClient = await authorizeRequest(sandbox, request(challenge, { client_id: "nobody" }))
    expect(badClient.status).toBe(400)
    expect(badClient.location).toBeUndefined()
    expect(badClient.text).toContain("invalid_request")
    const badRedirect = await authorizeRequest(
      sandbox,
      request(challenge, { redirect_uri: "https://evil.example/cb" })
    )
    expect(badRedirect.status).toBe(400)
    expect(badRedirect.location).toBeUndefined()
    for (const [extra, error] of [
      [{ code_challenge_method: "plain" }, "invalid_request"],
      [{ response_type: "token" }, "unsupported_response_type"],
      [{ scope: "openid root" }, "invalid_scope"],
      [{ scope: "profile bensoft_api" }, "invalid_scope"],
      [{ response_mode: "form_post" }, "invalid_request"],
      [{ prompt: "none login" }, "invalid_request"],
      [{ nonce: "n".repeat(301) }, "invalid_request"],
      [{ prompt: "none" }, "login_required"]
    ] as Array<[Record<string, string>, string]>) {
      const res = await authorizeRequest(sandbox, request(challenge, extra))
      expect(res.status, JSON.stringify(extra)).toBe(302)
      expect(res.location!.searchParams.get("error"), JSON.stringify(extra)).toBe(error)
      expect(res.location!.searchParams.get("state")).toBe("st-123")
      expect(res.location!.searchParams.get("iss")).toBe(sandbox.url)
    }
    // prompt=login (and consent, select_account): the form, as always
    for (const prompt of ["login", "consent", "select_account login"]) {
      const res = await authorizeRequest(sandbox, request(challenge, { prompt }))
      expect(res.status).toBe(200)
      requestIdOf(res.text)
    }
    const put = await fetch(sandbox.authorizeUrl!, { method: "PUT" })
    expect(put.status).toBe(405)
    expect(put.headers.get("allow")).toBe("GET, POST")
  })

  it("reads the sign-in POST strictly: form content type, UTF-8, no repeated field, size cap", async () => {
    const sandbox = await start()
    const page = await signInPage(sandbox, pkce().challenge)
    const good = `request=${page.requestId}&username=sandbox-user&password=sandbox-password`
    const json = await fetch(sandbox.authorizeUrl!, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ request: page.requestId }),
      redirect: "manual"
    })
    expect(json.status).toBe(400)
    expect(await json.text()).toMatch(/Content-Type/)
    const twice = await fetch(sandbox.authorizeUrl!, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: `${good}&username=other`,
      redirect: "manual"
    })
    expect(twice.status).toBe(400)
    expect(await twice.text()).toMatch(/more than once/)
    const big = await fetch(sandbox.authorizeUrl!, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: `${good}&pad=${"x".repeat(20_000)}`,
      redirect: "manual"
    })
    expect(big.status).toBe(400)
    expect(big.headers.get("connection")).toBe("close")
    // refused bodies did not spend the request
    const ok = await fetch(sandbox.authorizeUrl!, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded; charset=UTF-8" },
      body: good,
      redirect: "manual"
    })
    expect(ok.status).toBe(302)
  })

  it("escapes every value it writes into HTML; state is not reflected at all", async () => {
    const sandbox = await start({
      users: [
        {
          username: "<b>eve</b>",
          password: '"><script>alert(1)</script>',
          name: "<img src=x onerror=alert(1)>"
        }
      ],
      clients: [
        {
          clientId: "<script>client</script>",
          clientSecret: "s",
          redirectUris: ["http://127.0.0.1/callback"]
        }
      ]
    })
    const { challenge } = pkce()
    const page = await authorizeRequest(sandbox, {
      ...request(challenge),
      client_id: "<script>client</script>",
      scope: "bensoft_api",
      state: "<script>alert('state')</script>",
      login_hint: '"><script>alert("hint")</script>'
    })
    expect(page.status).toBe(200)
    const html = page.text
    expect(html).not.toMatch(/<script/i)
    expect(html).not.toContain("<b>eve")
    expect(html).not.toContain("<img")
    expect(html).toContain("&#60;script&#62;client&#60;/script&#62;")
    expect(html).toContain("&#34;&#62;&#60;script&#62;alert(&#34;hint&#34;)&#60;/script&#62;")
    expect(html).toContain("&#60;b&#62;eve&#60;/b&#62;")
    expect(html).not.toContain("alert('state')")
    // a scope with markup is refused before any page: it goes back in the redirect, URL-encoded
    const scoped = await authorizeRequest(sandbox, {
      ...request(challenge),
      client_id: "<script>client</script>",
      scope: "<script>"
    })
    expect(scoped.status).toBe(302)
    expect(scoped.text).toBe("")
    // the error pages escape what they quote
    const dup = await fetch(`${sandbox.authorizeUrl}?client_id=a&%3Cscript%3E=1&%3Cscript%3E=2`)
    expect(dup.status).toBe(400)
    expect(await dup.text()).not.toMatch(/<script/i)
    // the wrong-password page escapes the username typed
    const wrong = await submitSignIn(sandbox, {
      request: requestIdOf(html),
      username: "<script>typed</script>",
      password: "x"
    })
    expect(wrong.text).not.toMatch(/<script/i)
    expect(wrong.text).toContain("&#60;script&#62;typed&#60;/script&#62;")
  })
})

describe("autoApprove", () => {
  it("approves at once for the login_hint user, else the first user (tests without a browser)", async () => {
    const sandbox = await start({ users: [ALICE, BOB], autoApprove: true })
    const subjectOf = async (extra: Record<string, string>) => {
      const { verifier, challenge } = pkce()
      const res = await authorizeRequest(sandbox, request(challenge, extra))
      expect(res.status).toBe(302)
      const code = res.location!.searchParams.get("code")!
      expect(res.location!.searchParams.get("state")).toBe("st-123")
      const token = (await (await exchange(sandbox, code, verifier)).json()) as { access_token: string }
      const me = await fetch(`${sandbox.baseUrl}/v1/me`, { headers: bearer(token.access_token) })
      return ((await me.json()) as { subject: string }).subject
    }
    expect(await subjectOf({ login_hint: "bob" })).toBe("bob")
    expect(await subjectOf({})).toBe("alice")
    expect(await subjectOf({ login_hint: "nobody" })).toBe("alice")
    // prompt=none needs no page: approved too
    expect(await subjectOf({ prompt: "none", login_hint: "bob" })).toBe("bob")
  })
})

describe("users option", () => {
  it("refuses duplicate or empty usernames, empty passwords, reserved claims", async () => {
    const bad: Array<[unknown, RegExp]> = [
      [[], /non-empty array/],
      [[{ username: "", password: "p" }], /username/],
      [[{ username: "a", password: "" }], /password/],
      [
        [
          { username: "a", password: "p" },
          { username: "a", password: "q" }
        ],
        /listed twice/
      ],
      [[{ username: "a", password: "p", claims: { sub: "b" } }], /"sub"/],
      [[{ username: "a", password: "p", claims: { email: "x@y" } }], /"email"/],
      [[{ username: "a", password: "p", name: 3 }], /name must be a string/]
    ]
    for (const [users, message] of bad) {
      await expect(startSandbox({ profile: "wealthcare", users: users as never })).rejects.toThrow(message)
    }
    await expect(startSandbox({ profile: "wealthcare", autoApprove: "yes" as never })).rejects.toThrow(
      /autoApprove/
    )
  })
})
