#!/usr/bin/env node
/**
 * `authfetch-sandbox`: the sandbox from a terminal. Prints where everything
 * is and which credentials to use, then one line per request (time, method,
 * path, status, client, token fingerprint, duration, and when known the
 * subject, the error and the faults) until SIGINT or SIGTERM, which close the
 * server and exit 0.
 *
 * @example
 * ```sh
 * npx authfetch-sandbox --profile wex --port 8080 --token-ttl 30
 * curl -X POST http://127.0.0.1:8080/authorize \
 *   -H "Content-Type: application/x-www-form-urlencoded" \
 *   -d grant_type=client_credentials -d client_id=sandbox-client -d client_secret=sandbox-secret
 *
 * # WealthCare with two test users for the sign-in page
 * npx authfetch-sandbox --profile wealthcare --port 8081 --user alice:alice-pw --user bob:bob-pw
 * ```
 *
 * @since 0.1.0
 */
import { parseArgs } from "node:util"
import { DEFAULT_CLIENT, DEFAULT_USER, startSandbox } from "./Sandbox.ts"
import type { SandboxEvent, SandboxOptions, SandboxUser } from "./types.ts"

const USAGE = `Usage: authfetch-sandbox [options]

A local emulator of the WEX Health and WealthCare token endpoints and APIs.

Options:
  --profile wex|wealthcare   provider to emulate (default: wex)
  --port N                   port to listen on; 0 = any free port (default: 0)
  --host H                   address to listen on (default: 127.0.0.1)
  --token-ttl S              access token lifetime in seconds (default: 600 wex, 3600 wealthcare)
  --client-id X              the client id to accept (default: ${DEFAULT_CLIENT.clientId})
  --client-secret Y          its secret (default: ${DEFAULT_CLIENT.clientSecret}, a sandbox-only secret)
  --user NAME:PASSWORD       wealthcare: a test user of the sign-in page and the password grant;
                             repeatable (default: ${DEFAULT_USER.username}:${DEFAULT_USER.password})
  --auto-approve             wealthcare: /connect/authorize approves at once, without the sign-in page
  -h, --help                 show this help

Faults, stats, events and tokens: see the admin API printed at start, and the page.
`

const fail = (message: string): never => {
  process.stderr.write(`authfetch-sandbox: ${message}\n\n${USAGE}`)
  process.exit(2)
}

const integer = (value: string | undefined, name: string, min: number, max: number): number | undefined => {
  if (value === undefined) return undefined
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
    return fail(`--${name} must be an integer from ${min} to ${max}`)
  }
  return Number(value)
}

const parsed = (() => {
  try {
    return parseArgs({
      options: {
        profile: { type: "string" },
        port: { type: "string" },
        host: { type: "string" },
        "token-ttl": { type: "string" },
        "client-id": { type: "string" },
        "client-secret": { type: "string" },
        user: { type: "string", multiple: true },
        "auto-approve": { type: "boolean" },
        help: { type: "boolean", short: "h" }
      },
      strict: true,
      allowPositionals: false
    })
  } catch (err) {
    return fail((err as Error).message)
  }
})()
const values = parsed.values

if (values.help) {
  process.stdout.write(USAGE)
  process.exit(0)
}

const profile = values.profile ?? "wex"
if (profile !== "wex" && profile !== "wealthcare") fail('--profile must be "wex" or "wealthcare"')

const clientId = values["client-id"] ?? DEFAULT_CLIENT.clientId
const secretGiven = values["client-secret"] !== undefined
const clientSecret = values["client-secret"] ?? DEFAULT_CLIENT.clientSecret
const port = integer(values.port, "port", 0, 65535)
const tokenTtl = integer(values["token-ttl"], "token-ttl", 1, 31_536_000)
const autoApprove = values["auto-approve"] === true

if (profile !== "wealthcare" && (values.user !== undefined || autoApprove)) {
  fail("--user and --auto-approve need --profile wealthcare")
}
// NAME:PASSWORD, split at the first colon: a password may contain colons, a username may not
const users: Array<SandboxUser> | undefined = values.user?.map((spec) => {
  const colon = spec.indexOf(":")
  if (colon <= 0 || colon === spec.length - 1)
    return fail(`--user must be NAME:PASSWORD (got a value without both)`)
  return { username: spec.slice(0, colon), password: spec.slice(colon + 1) }
})

const line = (event: SandboxEvent): string =>
  [
    event.time,
    event.method.padEnd(6),
    event.path,
    event.status === 0 ? "dropped" : String(event.status),
    `client=${event.clientId ?? "-"}`,
    `token=${event.tokenFingerprint ?? "-"}`,
    `${event.durationMs}ms`,
    ...(event.subject === undefined ? [] : [`sub=${event.subject}`]),
    ...(event.error === undefined ? [] : [`error=${event.error}`]),
    ...(event.faults === undefined ? [] : [`faults=${event.faults.join(",")}`])
  ].join(" ")

const options: SandboxOptions = {
  profile: profile as "wex" | "wealthcare",
  clients: [{ clientId, clientSecret }],
  onEvent: (event) => process.stdout.write(`${line(event)}\n`),
  ...(port === undefined ? {} : { port }),
  ...(values.host === undefined ? {} : { host: values.host }),
  ...(tokenTtl === undefined ? {} : { tokenTtl }),
  ...(users === undefined ? {} : { users }),
  ...(autoApprove ? { autoApprove } : {})
}

try {
  const sandbox = await startSandbox(options)
  const secretLine = secretGiven
    ? "(the one given with --client-secret)"
    : `${clientSecret}   (a sandbox secret: it opens nothing but this local emulator)`
  const out = [
    `authfetch sandbox (${profile}) listening on ${sandbox.url}`,
    "",
    `  token URL      ${sandbox.tokenUrl}`,
    ...(sandbox.authorizeUrl === undefined
      ? []
      : [
          `  authorize URL  ${sandbox.authorizeUrl}   (${autoApprove ? "approves at once: --auto-approve" : "the sign-in page"})`,
          `  issuer         ${sandbox.issuer}`,
          `  discovery      ${sandbox.discoveryUrl}`,
          `  JWKS           ${sandbox.jwksUrl}`,
          `  userinfo       ${sandbox.userinfoUrl}`,
          `  revocation     ${sandbox.revocationUrl}`,
          `  end session    ${sandbox.endSessionUrl}`
        ]),
    `  API base       ${sandbox.baseUrl}   (e.g. GET ${sandbox.baseUrl}/v1/consumers/12345)`,
    `  admin          ${sandbox.adminUrl}   (stats, faults, revoke-all, events, tokens)`,
    `  page           ${sandbox.url}/`,
    "",
    `  client_id      ${clientId}`,
    `  client_secret  ${secretLine}`,
    ...(profile !== "wealthcare"
      ? []
      : users === undefined
        ? [
            `  user           ${DEFAULT_USER.username} / ${DEFAULT_USER.password}   (sign-in page and password grant)`
          ]
        : users.map((u) => `  user           ${u.username}   (password as given with --user)`)),
    "",
    "Try:",
    `  curl -X POST ${sandbox.tokenUrl} -H "Content-Type: application/x-www-form-urlencoded" \\`,
    `    -d grant_type=client_credentials -d client_id=${clientId} -d client_secret=${secretGiven ? "<your secret>" : clientSecret}`,
    "",
    "Requests (time method path status client token duration [sub] [error] [faults]):",
    ""
  ]
  process.stdout.write(out.join("\n"))

  let stopping = false
  const stop = (signal: string) => {
    if (stopping) return
    stopping = true
    process.stdout.write(`\n${signal}: closing\n`)
    sandbox.close().then(
      () => process.exit(0),
      () => process.exit(1)
    )
  }
  process.once("SIGINT", () => stop("SIGINT"))
  process.once("SIGTERM", () => stop("SIGTERM"))
} catch (err) {
  const code = (err as { code?: unknown }).code
  process.stderr.write(
    `authfetch-sandbox: cannot start: ${code === "EADDRINUSE" ? "the port is in use" : (err as Error).message}\n`
  )
  process.exit(1)
}
