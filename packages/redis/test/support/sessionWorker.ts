/**
 * One instance of an app with signed-in users, in its own OS process: its own
 * `redisStore` and `createUserSessions` on the test's Redis and sandbox,
 * driven over IPC (see `sessionFleet.ts`).
 *
 * Started by `fork` with its configuration (`SessionWorkerConfig`, JSON) as
 * the only argument. It says `{ type: "ready" }` once its store answers,
 * streams every store event (`{ type: "event" }`), and answers each command
 * (`{ id, ...command }`) with `{ type: "reply", id, value }` or
 * `{ type: "reply", id, error }`. It exits when its parent goes away.
 */
import { createHash } from "node:crypto"
import { createUserSessions, SessionStore } from "@authfetch/core"
import { Effect } from "effect"
import { redisStore, type StoreEvent } from "../../src/index.ts"

export interface SessionWorkerConfig {
  readonly redisUrl: string
  readonly encryptionKey: string
  readonly prefix: string
  readonly issuer: string
  readonly clientId: string
  readonly clientSecret: string
  readonly scope: string
  readonly redirectUri: string
  readonly tokenRequestTimeoutMillis?: number
}

export type SessionCommand =
  /** the session of this Cookie header, and its access token (refreshed if need be) */
  | { readonly op: "token"; readonly cookie: string }
  /** takes the session store's lock of `key` and keeps it (renewed) until the process dies; answers once held */
  | { readonly op: "hold"; readonly key: string; readonly ttlMillis: number }
  | { readonly op: "close" }

export interface TokenAnswer {
  /** the first 8 hex of the token's SHA-256, as the sandbox reports it */
  readonly fingerprint: string
  readonly subject: string | undefined
}

export type SessionWorkerMessage =
  | { readonly type: "ready" }
  | { readonly type: "event"; readonly event: StoreEvent }
  | { readonly type: "reply"; readonly id: number; readonly value?: unknown; readonly error?: string }

const send = (message: SessionWorkerMessage) => {
  if (process.connected) process.send?.(message)
}
process.on("disconnect", () => process.exit(0))

const config = JSON.parse(process.argv[2] ?? "{}") as SessionWorkerConfig

const store = redisStore({
  url: config.redisUrl,
  encryptionKeys: [config.encryptionKey],
  prefix: config.prefix,
  onEvent: (event) => send({ type: "event", event })
})
const sessions = createUserSessions(
  {
    issuer: config.issuer,
    clientId: config.clientId,
    clientSecret: config.clientSecret,
    scope: config.scope,
    redirectUri: config.redirectUri,
    tokenRequestTimeout: config.tokenRequestTimeoutMillis
  },
  { store }
)

const fingerprint = (token: string) => createHash("sha256").update(token).digest("hex").slice(0, 8)

const run = async (command: SessionCommand): Promise<unknown> => {
  switch (command.op) {
    case "token": {
      const session = await sessions.session(command.cookie)
      if (session === undefined) throw new Error("no session")
      const token = await session.tokens.getToken()
      return { fingerprint: fingerprint(token.reveal()), subject: session.subject } satisfies TokenAnswer
    }
    case "hold": {
      let onHeld = () => {}
      const held = new Promise<void>((resolve) => {
        onHeld = resolve
      })
      const hold = Effect.gen(function* () {
        const sessionStore = yield* SessionStore.SessionStore
        yield* sessionStore.withLock(command.key, Effect.andThen(Effect.sync(onHeld), Effect.never), {
          ttlMillis: command.ttlMillis
        })
      }).pipe(Effect.provide(store.sessionLayer))
      const failed = Effect.runPromise(hold).then(() => {
        throw new Error("the lock's holder returned")
      })
      await Promise.race([held, failed])
      return null
    }
    case "close":
      await sessions.dispose()
      await store.close()
      setImmediate(() => process.exit(0))
      return null
  }
}

const tagOf = (error: unknown) =>
  typeof error === "object" && error !== null && "_tag" in error ? String(error._tag) : "Error"

process.on("message", (message: { readonly id: number } & SessionCommand) => {
  run(message).then(
    (value) => send({ type: "reply", id: message.id, value }),
    (error: unknown) => send({ type: "reply", id: message.id, error: `${tagOf(error)}: ${String(error)}` })
  )
})

await store.isAvailable()
send({ type: "ready" })
