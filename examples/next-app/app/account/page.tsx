// A server component for a signed-in user: their name from the session, and GET /v1/me called
// server-side with their token. Signed out (or their refresh token refused): the page load becomes a
// redirect to /auth/signin?returnTo=/account.
import { requireUserSession, userFetch } from "@authfetch/next"
import { apiBaseUrl, sessions } from "../../lib/auth"
import { UserApi } from "./user-api"

export const dynamic = "force-dynamic"

const signIn = { returnTo: "/account" }

export default async function Account() {
  const session = await requireUserSession(sessions, signIn)
  const api = await userFetch(sessions, { baseUrl: apiBaseUrl(), signIn })
  const response = await api("/v1/me")
  const me = response.ok ? ((await response.json()) as { subject: string; scope: string | null }) : undefined
  const name = typeof session.user.name === "string" ? session.user.name : session.subject
  return (
    <main>
      <h1>Your account</h1>
      <p>
        Signed in as <strong data-testid="user-name">{name}</strong>
        {typeof session.user.email === "string" && (
          <>
            {" "}
            (<span data-testid="user-email">{session.user.email}</span>)
          </>
        )}
      </p>
      <section aria-labelledby="server">
        <h2 id="server">The API, called by the server component</h2>
        {me === undefined ? (
          <p role="alert">The API answered {response.status}.</p>
        ) : (
          <p>
            <code>/v1/me</code> says the token is <span data-testid="server-subject">{me.subject}</span>'s
          </p>
        )}
      </section>
      <UserApi />
      <form method="post" action="/auth/signout">
        <button type="submit">Sign out</button>
      </form>
    </main>
  )
}
