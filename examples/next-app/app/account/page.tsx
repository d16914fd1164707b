// A server component for a signed-in user: their name from the session, and GET /v1/me called
// server-side with their token. Signed out (or their refresh token refused when the access token
// expired): the page load becomes a redirect to /auth/signin?returnTo=/account.
import { requireUserSession, userFetch } from "@authfetch/next"
import { apiBaseUrl, sessions } from "../../lib/auth"

export const dynamic = "force-dynamic"

const signIn = { returnTo: "/account" }

export default async function Account() {
  const session = await requireUserSession(sessions, signIn)
  const api = await userFetch(sessions, { baseUrl: apiBaseUrl(), signIn })
  const response = await api("/v1/me")
  const me = response.ok ? ((await response.json()) as { subject: string }) : undefined
  const name = typeof session.user.name === "string" ? session.user.name : session.subject
  return (
    <main>
      <h1>Your account</h1>
      <p>
        Signed in as <strong id="user-name">{name}</strong>
        {typeof session.user.email === "string" && ` (${session.user.email})`}
      </p>
      {me === undefined ? (
        <p role="alert">The API answered {response.status}.</p>
      ) : (
        <p>
          The API (<code>GET /v1/me</code>, called by this server component with your token) says the token is{" "}
          <span id="api-subject">{me.subject}</span>'s.
        </p>
      )}
      <p>
        <a href="/proxy-check">The API from the browser</a>, through the per-user proxy.
      </p>
      <form method="post" action="/auth/signout">
        <button id="sign-out" type="submit">
          Sign out
        </button>
      </form>
    </main>
  )
}
