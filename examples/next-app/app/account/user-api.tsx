"use client"
// A client component: the browser calls the per-user proxy route (same origin, its session cookie, no
// token). State-changing calls carry `x-csrf: 1`, which another site's page cannot add without a CORS
// preflight the app never grants. A 401 means the session is over: go and sign in again.
import { useCallback, useEffect, useState } from "react"

const SIGN_IN = "/auth/signin?returnTo=%2Faccount"

type Me = { kind: "loading" } | { kind: "error"; status: number } | { kind: "ok"; subject: string }

const call = async (path: string, init?: RequestInit): Promise<Response> => {
  const response = await fetch(`/api/user${path}`, init)
  if (response.status === 401) window.location.assign(SIGN_IN)
  return response
}

export function UserApi() {
  const [me, setMe] = useState<Me>({ kind: "loading" })
  const [claim, setClaim] = useState<string | undefined>()
  const [claimError, setClaimError] = useState<number | undefined>()

  const load = useCallback(async () => {
    try {
      const response = await call("/v1/me")
      if (!response.ok) return setMe({ kind: "error", status: response.status })
      setMe({ kind: "ok", subject: ((await response.json()) as { subject: string }).subject })
    } catch {
      setMe({ kind: "error", status: 0 })
    }
  }, [])
  useEffect(() => {
    void load()
  }, [load])

  const submit = async () => {
    const response = await call("/v1/claims", {
      method: "POST",
      headers: { "content-type": "application/json", "x-csrf": "1" },
      body: JSON.stringify({ amount: 42.5, description: "Eye exam", submittedAt: new Date().toISOString() })
    })
    if (!response.ok) return setClaimError(response.status)
    setClaimError(undefined)
    setClaim(((await response.json()) as { claimId: string }).claimId)
  }

  return (
    <section aria-labelledby="client">
      <h2 id="client">The API, called from the browser through /api/user</h2>
      {me.kind === "loading" && <p>Loading…</p>}
      {me.kind === "error" && <p role="alert">The proxy answered {me.status}.</p>}
      {me.kind === "ok" && (
        <p>
          <code>/v1/me</code> says the token is <span data-testid="client-subject">{me.subject}</span>'s
        </p>
      )}
      <button type="button" onClick={() => void load()}>
        Ask again
      </button>{" "}
      <button type="button" onClick={() => void submit()}>
        Submit a claim
      </button>
      {claim !== undefined && <p data-testid="claim-id">{claim}</p>}
      {claimError !== undefined && <p role="alert">The claim was refused ({claimError}).</p>}
    </section>
  )
}
