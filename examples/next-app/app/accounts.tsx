"use client"
// A client component: the browser calls our proxy route (same origin, no token, no secret); the server
// adds the bearer token and forwards to the WEX API.
import { useEffect, useState } from "react"

interface Account {
  accountId: string
  accountType: string
  status: string
  balance: number
  currency: string
}

type State =
  | { kind: "loading" }
  | { kind: "error"; status: number }
  | { kind: "ok"; total: number; items: Account[] }

export function Accounts({ consumerId }: { consumerId: string }) {
  const [state, setState] = useState<State>({ kind: "loading" })
  useEffect(() => {
    const controller = new AbortController()
    fetch(`/api/benefits/v1/consumers/${encodeURIComponent(consumerId)}/accounts?pageSize=5`, {
      signal: controller.signal
    })
      .then(async (response) => {
        if (!response.ok) return setState({ kind: "error", status: response.status })
        const body = (await response.json()) as { total: number; items: Account[] }
        setState({ kind: "ok", total: body.total, items: body.items })
      })
      .catch(() => {
        if (!controller.signal.aborted) setState({ kind: "error", status: 0 })
      })
    return () => controller.abort()
  }, [consumerId])

  return (
    <section aria-labelledby="accounts">
      <h2 id="accounts">Accounts (client component, through /api/benefits)</h2>
      {state.kind === "loading" && <p>Loading…</p>}
      {state.kind === "error" && <p role="alert">The proxy answered {state.status}.</p>}
      {state.kind === "ok" && (
        <>
          <p data-testid="accounts-total">{state.total} accounts</p>
          <ul data-testid="accounts">
            {state.items.map((a) => (
              <li key={a.accountId}>
                {a.accountId} {a.accountType} {a.status} {a.balance.toFixed(2)} {a.currency}
              </li>
            ))}
          </ul>
        </>
      )}
    </section>
  )
}
