/**
 * The shared request scenarios of `@authfetch/core`, run against axios with
 * `attachAuth`, once with the http adapter and once with the fetch adapter:
 * the same counts as core `authFetch`.
 */
import { afterEach, describe, it } from "vitest"
import { makeWorld, scenarios, type World } from "../../core/test/scenarios/scenarios.ts"
import { adapters, axiosClient } from "./support/clients.ts"

for (const adapter of adapters) {
  const client = axiosClient(adapter)
  describe(`scenarios: ${client.name}`, () => {
    let world: World | undefined
    afterEach(async () => {
      await world?.close()
      world = undefined
    })
    for (const scenario of scenarios) {
      if (scenario.needsStreams && !client.streams) continue
      it(scenario.name, async () => {
        world = await makeWorld(client)
        await scenario.run(world, client)
      })
    }
  })
}
