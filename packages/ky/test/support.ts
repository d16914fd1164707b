/**
 * Real servers on 127.0.0.1 for the ky adapter's tests: a token endpoint and
 * one API, both scripted (`startTokenServer` from the core's test support),
 * and a token source over them as users build it (`@authfetch/core`).
 */
import { createTokenSource, type RequestEvent, type TokenSourceHandle } from "@authfetch/core"
import { startTokenServer, type TokenServer } from "../../core/test/support/tokenServer.ts"

export interface Setup {
  readonly auth: TokenServer
  readonly api: TokenServer
  readonly other: TokenServer
  readonly tokens: TokenSourceHandle
  readonly events: Array<RequestEvent>
  /** `${api.url}/api` */
  readonly base: string
  close(): Promise<void>
}

const open: Array<Setup> = []

export const setup = async (): Promise<Setup> => {
  const [auth, api, other] = await Promise.all([startTokenServer(), startTokenServer(), startTokenServer()])
  api.setDefault(() => ({ status: 200, body: { ok: true } }))
  other.setDefault(() => ({ status: 200, body: { other: true } }))
  const tokens = createTokenSource({ tokenUrl: auth.tokenUrl, clientId: "ky-test", clientSecret: "s3cret" })
  const world: Setup = {
    auth,
    api,
    other,
    tokens,
    events: [],
    base: `${api.url}/api`,
    close: async () => {
      await tokens.dispose()
      await Promise.all([auth.close(), api.close(), other.close()])
    }
  }
  open.push(world)
  return world
}

export const closeAll = async (): Promise<void> => {
  await Promise.all(open.splice(0).map((world) => world.close()))
}

/** Fast backoff for tests: the policy is the core's, only the delays are shorter. */
export const fast = { baseDelay: "10 millis", maxDelay: "50 millis" } as const

/** The rejection of a promise (fails the test when it resolves). */
export const rejectionOf = async (promise: Promise<unknown>): Promise<unknown> =>
  promise.then(
    (value) => {
      throw new Error(`expected a rejection, got ${String(value)}`)
    },
    (error: unknown) => error
  )
