/**
 * The shared request scenarios of `@authfetch/core`, run through ky with
 * `authKyOptions`: the same token-request and upstream-attempt counts as core
 * `authFetch`, because the same policy runs (ky's own retry is off).
 */
import ky, { isHTTPError, type Options } from "ky"
import { afterEach, describe, it } from "vitest"
import { makeWorld, type ScenarioClient, scenarios, type World } from "../../core/test/scenarios/scenarios.ts"
import { authKyOptions } from "../src/index.ts"

const fast = { baseDelay: "20 millis", maxDelay: "100 millis" } as const

/** ky's pre-parsed error body back to text (JSON bodies are parsed by ky). */
const errorBody = (data: unknown): string =>
  data === undefined ? "" : typeof data === "string" ? data : JSON.stringify(data)

const kyClient: ScenarioClient = {
  name: "ky",
  // A `ReadableStream` passed as ky's `body` is one-shot, as `init.body` is for `authFetch`.
  streams: true,
  make: (tokens, baseUrl, { onEvent }) => {
    const api = ky.create(authKyOptions(tokens, { prefix: baseUrl, auth: { retry: fast, onEvent } }))
    return async (path, options) => {
      const kyOptions: Options = {}
      if (options?.method) kyOptions.method = options.method
      if (options?.body) kyOptions.body = options.body
      if (options?.headers) kyOptions.headers = options.headers
      if (options?.signal) kyOptions.signal = options.signal
      try {
        const response = await api(path, kyOptions)
        return { status: response.status, body: await response.text() }
      } catch (error) {
        if (isHTTPError(error)) return { status: error.response.status, body: errorBody(error.data) }
        throw error
      }
    }
  }
}

describe(`scenarios: ${kyClient.name}`, () => {
  let world: World | undefined
  afterEach(async () => {
    await world?.close()
    world = undefined
  })
  for (const scenario of scenarios) {
    if (scenario.needsStreams && !kyClient.streams) continue
    it(scenario.name, async () => {
      world = await makeWorld(kyClient)
      await scenario.run(world, kyClient)
    })
  }
})
