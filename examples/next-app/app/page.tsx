// A server component: it calls the WEX API directly (server-side, with the token source), and renders a
// client component that calls the proxy route from the browser. Neither sends a token to the browser.
import { wexApi } from "../lib/wex"
import { Accounts } from "./accounts"

export const dynamic = "force-dynamic"

interface Consumer {
  consumerId: string
  firstName: string
  lastName: string
  plan: { name: string }
  balances: Array<{ accountType: string; available: number; currency: string }>
}

export default async function Page() {
  const response = await wexApi("/v1/consumers/12345")
  if (!response.ok) {
    return (
      <main>
        <h1>Benefits</h1>
        <p role="alert">The benefits service answered {response.status}.</p>
      </main>
    )
  }
  const consumer = (await response.json()) as Consumer
  return (
    <main>
      <h1>Benefits</h1>
      <section aria-labelledby="consumer">
        <h2 id="consumer">
          Consumer <span data-testid="consumer-id">{consumer.consumerId}</span> (server component)
        </h2>
        <p data-testid="consumer-name">
          {consumer.firstName} {consumer.lastName}
        </p>
        <p data-testid="plan">{consumer.plan.name}</p>
        <ul>
          {consumer.balances.map((b) => (
            <li key={b.accountType}>
              {b.accountType}: {b.available.toFixed(2)} {b.currency}
            </li>
          ))}
        </ul>
      </section>
      <Accounts consumerId={consumer.consumerId} />
      <p>
        <a href="/account">Your account</a> (sign in with WealthCare)
      </p>
    </main>
  )
}
