// A page for a signed-in user whose client component calls the API through the per-user proxy. The
// server component only checks that someone is signed in (it calls nothing), and comes back here,
// query included, after a sign-in.
import { requireUserSession } from "@authfetch/next"
import { sessions } from "../../lib/auth"
import { ProxyCheck } from "./proxy-check"

export const dynamic = "force-dynamic"

export default async function Page({
  searchParams
}: {
  searchParams: Promise<Record<string, string | Array<string> | undefined>>
}) {
  // a server component does not know its own URL: it is rebuilt from the route and its query
  const query = new URLSearchParams()
  for (const [name, value] of Object.entries(await searchParams)) {
    for (const one of Array.isArray(value) ? value : value === undefined ? [] : [value])
      query.append(name, one)
  }
  const search = query.size === 0 ? "" : `?${query}`
  await requireUserSession(sessions, { returnTo: `/proxy-check${search}` })
  return (
    <main>
      <h1>The API from the browser</h1>
      <ProxyCheck />
      <p>
        <a href="/account">Your account</a>
      </p>
    </main>
  )
}
