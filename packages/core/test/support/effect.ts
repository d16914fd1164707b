/**
 * Helpers for Effect tests that mix `TestClock` with real sockets: the clock
 * only moves when the test says so, while HTTP round trips take real time.
 */
import { type Duration, Effect, Fiber } from "effect"
import { TestClock } from "effect/testing"
import type { TokenSourceConfig } from "../../src/Config.ts"
import type { TokenEvent } from "../../src/Events.ts"
import * as TokenSource from "../../src/TokenSource.ts"

/** Lets real I/O (a socket round trip) progress; real milliseconds. */
export const realWait = (ms: number) => Effect.promise(() => new Promise<void>((r) => setTimeout(r, ms)))

/** Polls `predicate` in real time until it holds (or fails the test after `timeoutMs`). */
export const eventually = (predicate: () => boolean, timeoutMs = 5000) =>
  Effect.promise(async () => {
    const deadline = Date.now() + timeoutMs
    while (!predicate()) {
      if (Date.now() > deadline) throw new Error("condition not reached in time")
      await new Promise((r) => setTimeout(r, 2))
    }
  })

/**
 * Moves the test clock in `step`s, letting real I/O settle between steps,
 * until `fiber` is done; returns its exit.
 */
export const driveUntilDone = <A, E>(
  fiber: Fiber.Fiber<A, E>,
  step: Duration.Input = "100 millis",
  maxSteps = 2000
) =>
  Effect.gen(function* () {
    for (let i = 0; i < maxSteps && fiber.pollUnsafe() === undefined; i++) {
      yield* realWait(1)
      yield* TestClock.adjust(step)
    }
    return yield* Fiber.await(fiber)
  })

/** A token source in the current scope with the default (in-memory) dependencies. */
export const makeSource = (config: TokenSourceConfig) =>
  TokenSource.make(config).pipe(Effect.provide(TokenSource.layerDependencies))

/** Collects events for assertions. */
export const eventLog = () => {
  const events: Array<TokenEvent> = []
  return { events, onEvent: (event: TokenEvent) => void events.push(event) }
}
