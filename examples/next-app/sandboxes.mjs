// Local stand-ins for both providers, for `next dev` / `next start` of this example: a WEX sandbox
// (the benefits pages and proxies) and a WealthCare sandbox with two test users and this app's client,
// whose callback is registered (http://localhost/auth/callback and http://127.0.0.1/auth/callback, any
// port). Prints the variables to export, then serves until Ctrl-C.
//
//   node sandboxes.mjs            (Node.js 22.12 or later; from the repository root after a build)
import { startSandbox } from "@authfetch/sandbox"

const port = (name, fallback) => Number(process.env[name] ?? fallback)
const wex = await startSandbox({ profile: "wex", port: port("WEX_SANDBOX_PORT", 4100) })
const wealthcare = await startSandbox({
  profile: "wealthcare",
  port: port("WEALTHCARE_SANDBOX_PORT", 4101),
  users: [
    { username: "alice", password: "alice-password", name: "Alice Example", email: "alice@example.com" },
    { username: "bob", password: "bob-password", name: "Bob Example", email: "bob@example.com" }
  ],
  clients: [
    {
      clientId: "next-app",
      clientSecret: "next-app-sandbox-secret",
      redirectUris: ["http://localhost/auth/callback", "http://127.0.0.1/auth/callback"]
    }
  ]
})

console.log(`# WEX sandbox on ${wex.url}, WealthCare sandbox on ${wealthcare.url} (users alice, bob: see its sign-in page)
export WEX_CLIENT_ID=sandbox-client WEX_CLIENT_SECRET=sandbox-secret
export WEX_TOKEN_URL=${wex.tokenUrl} WEX_BASE_URL=${wex.baseUrl}
export WEALTHCARE_CLIENT_ID=next-app WEALTHCARE_CLIENT_SECRET=next-app-sandbox-secret
export WEALTHCARE_ISSUER=${wealthcare.issuer} WEALTHCARE_BASE_URL=${wealthcare.baseUrl}
export APP_URL=http://localhost:3000`)

const stop = async () => {
  await Promise.all([wex.close(), wealthcare.close()])
  process.exit(0)
}
process.on("SIGINT", stop)
process.on("SIGTERM", stop)
