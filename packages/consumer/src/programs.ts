/**
 * Programs the test writes into each app besides the README snippets.
 */

/**
 * A script that forgets to dispose: a token source against the sandbox, a token, an API call
 * through `authFetch`, and no `dispose()`. It must exit by itself (nothing of ours may keep Node
 * alive: refresh timers are `unref`'d), printing the status it got.
 */
export const NEVER_DISPOSES = `import { authFetch, createTokenSource } from "@authfetch/core"
import { fromEnv } from "@authfetch/core/providers"

const tokens = createTokenSource(fromEnv("WEX")) // never disposed, on purpose
const token = await tokens.getToken()
const api = authFetch(tokens, { baseUrl: process.env.WEX_BASE_URL! })
const res = await api("/v1/consumers/12345")
await res.arrayBuffer()
console.log(\`token \${token.tokenType}, GET /v1/consumers/12345 → \${res.status}\`)
if (res.status !== 200) process.exitCode = 1
`
