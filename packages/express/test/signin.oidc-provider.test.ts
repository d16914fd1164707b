/**
 * The sign-in router against panva's certified `oidc-provider` (in-process on
 * 127.0.0.1, its own login and consent forms played by fetch with a cookie
 * jar): discovery, PKCE, state, nonce and RFC 9207 `iss` through Express, a
 * `__Host-` cookie for the https redirect URI, the provider's userinfo
 * endpoint through the per-user proxy (each call answered for its own user),
 * and sign-out revoking the refresh token (the provider's introspection says
 * so).
 */
/// <reference path="../../core/test/support/oidc-provider.d.ts" />
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { createUserSessions, type UserSessionsHandle } from "@authfetch/core"
import express from "express"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import {
  CLIENTS,
  type OidcProvider,
  REDIRECT_URI,
  startOidcProvider
} from "../../core/test/support/oidcProvider.ts"
import { createProxy, createSignInRouter, userSessionMiddleware } from "../src/index.ts"
import { Jar, pathOf, recordingStore } from "./support/sessions.ts"

const APP_ORIGIN = new URL(REDIRECT_URI).origin
const COOKIE = "__Host-authfetch-session"

let op: OidcProvider
let sessions: UserSessionsHandle
const store = recordingStore()
let port = 0
let close: () => Promise<void> = async () => {}

beforeAll(async () => {
  op = await startOidcProvider()
  sessions = createUserSessions(
    {
      issuer: op.issuer,
      clientId: CLIENTS.code.clientId,
      clientSecret: CLIENTS.code.clientSecret,
      scope: "openid offline_access api:read",
      // the registered redirect URI is https://rp.example.test/callback: the router is mounted at /
      redirectUri: REDIRECT_URI,
      // oidc-provider grants offline_access only with a consent prompt
      authorizationParams: { prompt: "consent" }
    },
    { store: store.layer }
  )
  const app = express()
  app.use("/api/op", createProxy({ sessions, baseUrl: op.issuer, allow: ["/me"] }))
  app.use(createSignInRouter(sessions))
  app.use(userSessionMiddleware(sessions, { origins: [op.issuer] }))
  app.get("/whoami", (req, res) => {
    res.json({ subject: req.userSession?.subject ?? null, user: req.user ?? null })
  })
  const server = createServer(app)
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  port = (server.address() as AddressInfo).port
  close = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve())
      server.closeAllConnections()
    })
})
afterAll(async () => {
  await close()
  await sessions?.dispose()
  await op?.close()
})

const signIn = async (accountId: string): Promise<Jar> => {
  const jar = new Jar(port)
  const start = await jar.send({ path: "/signin?returnTo=%2Fclaims" })
  expect(start.status).toBe(302)
  const back = await op.authorizeAt(String(start.headers.location), { accountId })
  expect(back.searchParams.get("iss")).toBe(op.issuer)
  const callback = await jar.send({ path: pathOf(back) })
  expect(callback.status).toBe(302)
  expect(callback.headers.location).toBe("/claims")
  const line = (callback.headers["set-cookie"] ?? []).find((cookie) => cookie.startsWith(`${COOKIE}=`))
  expect(line).toMatch(/; Secure/i)
  expect(line).toMatch(/; HttpOnly/i)
  expect(line).not.toMatch(/Domain=/i)
  return jar
}

describe("createSignInRouter with oidc-provider", () => {
  it("signs two users in through Express; the per-user proxy gets each one's own userinfo", async () => {
    const [alice, bob] = await Promise.all([signIn("alice"), signIn("bob")])
    expect(JSON.parse((await alice.send({ path: "/whoami" })).text)).toEqual({
      subject: "alice",
      user: { sub: "alice" }
    })
    const calls = await Promise.all(
      Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? alice : bob).send({ path: "/api/op/me" }))
    )
    calls.forEach((reply, i) => {
      expect(reply.status).toBe(200)
      expect(JSON.parse(reply.text).sub).toBe(i % 2 === 0 ? "alice" : "bob")
    })
  })

  it("signs out: the refresh token is revoked at the provider", async () => {
    const jar = await signIn("carol")
    const refreshTokens = () =>
      store.written
        .map(
          (entry) =>
            JSON.parse(entry) as { kind?: string; subject?: string; tokens?: { refreshToken?: string } }
        )
        .filter((entry) => entry.kind === "session" && entry.subject === "carol")
        .map((entry) => entry.tokens?.refreshToken)
    const [refreshToken] = refreshTokens()
    expect(refreshToken).toBeTypeOf("string")
    expect(await op.introspect(refreshToken!, CLIENTS.code)).toMatchObject({ active: true, sub: "carol" })
    const out = await jar.send({ path: "/signout", method: "POST", headers: { origin: APP_ORIGIN } })
    expect(out.status).toBe(303)
    expect(jar.cookies.has(COOKIE)).toBe(false)
    expect(await op.introspect(refreshToken!, CLIENTS.code)).toMatchObject({ active: false })
    expect(JSON.parse((await jar.send({ path: "/whoami" })).text).subject).toBeNull()
  })
})
