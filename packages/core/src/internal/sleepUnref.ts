/**
 * A sleep for background work that must not keep a Node process alive: with
 * the live clock it uses an `unref`'d timer; under any other clock (Effect's
 * `TestClock`) it defers to that clock, so tests still control time.
 */
import { Clock, Duration, Effect } from "effect"

let liveClock: Clock.Clock | undefined
const getLiveClock = (): Clock.Clock => {
  liveClock ??= Effect.runSync(Clock.clockWith(Effect.succeed))
  return liveClock
}

export const sleepUnref = (duration: Duration.Duration): Effect.Effect<void> =>
  Clock.clockWith((clock) => {
    if (clock !== getLiveClock()) return clock.sleep(duration)
    const millis = Duration.toMillis(duration)
    if (millis <= 0) return Effect.yieldNow
    return Effect.callback<void>((resume) => {
      const handle = setTimeout(() => resume(Effect.void), Math.min(millis, 2 ** 31 - 1))
      ;(handle as { unref?: () => void }).unref?.()
      return Effect.sync(() => clearTimeout(handle))
    })
  })
