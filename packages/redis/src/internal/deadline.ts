/**
 * The deadline of a Redis command, and what a failed command may say, for
 * every part of the store that talks to Redis (the token store, the session
 * store, the lock): one definition of "Redis did not answer in time", so that
 * they all tell a blocked process from a slow Redis the same way.
 */
import { Effect } from "effect"

/** What a command that missed its deadline fails with. */
export const TIMED_OUT: unique symbol = Symbol("timed out")

/** After a failure, Redis is tried again this long later (the token store's fallback; orphan releases). */
export const PROBE_INTERVAL_MILLIS = 1_000

/** A timer this late means the event loop was blocked, not that time passed for Redis. */
const LATE_TIMER_MILLIS = 25

/**
 * The deadline of a command, counted in time the process could run. A timer
 * that fires after the event loop was blocked (a busy process: a cold burst, a
 * large JSON parse) fires late, before the replies that arrived meanwhile are
 * read: the time it was late did not let the command progress, so it is given
 * again (up to ten deadlines in all), and a last loop turn reads what is
 * waiting. A blocked process is not a slow Redis.
 */
export const withDeadline =
  (millis: number) =>
  <A, E, R>(command: Effect.Effect<A, E, R>): Effect.Effect<A, E | typeof TIMED_OUT, R> =>
    Effect.raceFirst(
      command,
      Effect.callback<never, typeof TIMED_OUT>((resume) => {
        let timer: ReturnType<typeof setTimeout> | undefined
        let immediate: ReturnType<typeof setImmediate> | undefined
        let extended = 0
        const arm = (after: number) => {
          const due = performance.now() + after
          timer = setTimeout(() => {
            const late = performance.now() - due
            if (late > LATE_TIMER_MILLIS && extended < millis * 9) {
              extended += late
              return arm(late)
            }
            immediate = setImmediate(() => resume(Effect.fail(TIMED_OUT)))
          }, after)
        }
        arm(millis)
        return Effect.sync(() => {
          clearTimeout(timer)
          if (immediate !== undefined) clearImmediate(immediate)
        })
      })
    )

/** The client's own error behind a `RedisError` (or the error itself). */
const causeOf = (error: unknown): unknown =>
  typeof error === "object" && error !== null && "cause" in error ? error.cause : error

/** The class of an error: node-redis's classes do not set `name`, so their constructor says what they are. */
const classOf = (error: unknown): string | undefined => {
  if (!(error instanceof Error)) return undefined
  const name = error.name !== "Error" ? error.name : error.constructor?.name
  return typeof name === "string" && /^[A-Za-z]{1,64}$/.test(name) ? name : undefined
}

/**
 * Whether a command failed by a deadline: ours, or the client's own
 * (node-redis's `TimeoutError`, `TimeoutReadError`).
 */
export const isTimeout = (error: unknown): boolean =>
  error === TIMED_OUT || /timeout/i.test(classOf(causeOf(error)) ?? "")

/**
 * A failed command in words that never quote Redis or the command: Redis's
 * text may repeat the command's arguments (a sealed value, a key). A reply
 * error gives its code only (`NOPERM`, `OOM`, `WRONGTYPE`), a client error its
 * class (`ClientOfflineError`).
 */
export const describeFailure = (error: unknown, timeoutMillis: number): string => {
  if (isTimeout(error)) return `Redis did not answer within ${timeoutMillis} ms`
  const cause = causeOf(error)
  const name = classOf(cause)
  if (cause instanceof Error && /(^|Error)Reply$|^SimpleError$|^BlobError$/.test(name ?? "")) {
    const code = /^[A-Z][A-Z_]{1,31}(?=\s|$)/.exec(cause.message)?.[0]
    return code === undefined ? "Redis refused the command" : `Redis answered ${code}`
  }
  return name === undefined ? "Redis is unreachable" : `Redis is unreachable (${name})`
}
