/**
 * The access-token values this process holds, so that anything that may echo
 * one back (an API's error body, a `WWW-Authenticate` challenge) is cleaned of
 * it before it reaches an error, a log or a browser. Every `AccessToken`
 * registers its value when it is made; a value is forgotten some time after
 * its token expires (an echo can come late) or when too many are held.
 *
 * One registry per process (on `globalThis`: two copies of core share it).
 * No timer: expired values are dropped when the registry is read or written.
 */
import { spellings } from "./redact.ts"

/** How long after its expiry a token value is still removed from echoes. */
const GRACE_MILLIS = 10 * 60_000
/** Values held at most; the oldest go first. */
const MAX_VALUES = 1_000

interface Registry {
  /** value → until when it is remembered */
  readonly values: Map<string, number>
  /** the spellings of every value, worked out again after a change */
  cached: ReadonlyArray<string> | undefined
}

const REGISTRY = Symbol.for("@authfetch/core/knownSecrets")

const registry = (): Registry => {
  const holder = globalThis as { [REGISTRY]?: Registry }
  holder[REGISTRY] ??= { values: new Map(), cached: [] }
  return holder[REGISTRY]
}

const prune = (state: Registry, now: number): void => {
  for (const [value, until] of state.values) {
    if (until <= now || state.values.size > MAX_VALUES) {
      state.values.delete(value)
      state.cached = undefined
    }
  }
}

/** Remembers a token value until `expiresAt` (plus a grace period). */
export const remember = (value: string, expiresAt: number): void => {
  const state = registry()
  const until = Math.max(state.values.get(value) ?? 0, expiresAt + GRACE_MILLIS)
  if (!state.values.has(value)) state.cached = undefined
  state.values.delete(value) // re-inserted: insertion order is age
  state.values.set(value, until)
  if (state.values.size > MAX_VALUES) prune(state, Date.now())
}

/** The spellings of every remembered value (see `redact.spellings`), longest first. */
export const current = (now: number = Date.now()): ReadonlyArray<string> => {
  const state = registry()
  prune(state, now)
  state.cached ??= spellings([...state.values.keys()])
  return state.cached
}
