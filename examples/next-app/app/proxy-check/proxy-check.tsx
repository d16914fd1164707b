"use client"
// A client component: the browser calls the per-user proxy route (same origin, its session cookie, no
// token): GET /api/user/v1/me shows whose token reached the API, then a claim is submitted with
// POST /api/user/v1/claims. State-changing calls carry `x-csrf: 1`, which another site's page cannot
// add without a CORS preflight the app never grants. A 401 means the session is over: sign in again.
import { useEffect, useState } from "react"

const signInAgain = () => {
  const here = `${window.location.pathname}${window.location.search}`
  window.location.assign(`/auth/signin?returnTo=${encodeURIComponent(here)}`)
}

export function ProxyCheck() {
  const [subject, setSubject] = useState("")
  const [posted, setPosted] = useState("")
  const [error, setError] = useState("")
  const [done, setDone] = useState(false)

  // once what the calls gave is on the page (for tests, and anyone waiting on it)
  useEffect(() => {
    if (done) document.body.dataset.ready = "true"
  }, [done])

  useEffect(() => {
    let live = true
    const run = async () => {
      const me = await fetch("/api/user/v1/me", { headers: { accept: "application/json" } })
      if (me.status === 401) return signInAgain()
      if (!me.ok) throw new Error(`GET /v1/me answered ${me.status}`)
      if (live) setSubject(((await me.json()) as { subject: string }).subject)
      const claim = await fetch("/api/user/v1/claims", {
        method: "POST",
        headers: { "content-type": "application/json", "x-csrf": "1" },
        body: JSON.stringify({ consumerId: "12345", accountType: "HSA", amount: 1 })
      })
      if (claim.status === 401) return signInAgain()
      if (!live) return
      setPosted(String(claim.status))
      setDone(true)
    }
    run().catch((failure: unknown) => {
      if (!live) return
      setError(failure instanceof Error ? failure.message : String(failure))
      setDone(true)
    })
    return () => {
      live = false
    }
  }, [])

  return (
    <section aria-labelledby="proxy">
      <h2 id="proxy">Through /api/user</h2>
      <p>
        <code>GET /v1/me</code>: the token is <span id="proxy-subject">{subject}</span>'s
      </p>
      <p>
        <code>POST /v1/claims</code> (with <code>x-csrf: 1</code>): <span id="proxy-post">{posted}</span>
      </p>
      <p className="error" id="proxy-error" role="alert">
        {error}
      </p>
    </section>
  )
}
