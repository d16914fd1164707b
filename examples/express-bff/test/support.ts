/**
 * Support for the example's tests: Debian's Chromium, a session store that
 * is the core's memory store with a record of what was written (the
 * scenarios check that a refused sign-in adds nothing, and scan every token
 * it held), and everything this process prints.
 */
import { format } from "node:util"
import { SessionStore } from "@authfetch/core"
import { Effect, Layer } from "effect"
import { type Browser, chromium } from "playwright-core"
import { launchChromium as launch } from "../../../packages/core/test/support/chromium.ts"

/** Chromium, headless: the repository's one launcher (packages/core/test/support/chromium.ts). */
export const launchChromium = (): Promise<Browser> => launch(chromium)

export interface RecordingStore {
  readonly layer: Layer.Layer<SessionStore.SessionStore>
  /** the keys holding a live entry now */
  liveKeys(): Promise<Array<string>>
  /** every token, PKCE verifier and nonce ever written */
  secrets(): Array<string>
}

const SECRET_FIELDS = new Set(["accessToken", "refreshToken", "idToken", "codeVerifier", "nonce"])

const collect = (value: unknown, into: Set<string>, field?: string): void => {
  if (typeof value === "string") {
    if (field !== undefined && SECRET_FIELDS.has(field)) into.add(value)
  } else if (typeof value === "object" && value !== null) {
    for (const [key, item] of Object.entries(value)) collect(item, into, key)
  }
}

export const recordingStore = (): RecordingStore => {
  const inner = SessionStore.makeMemoryIsolated()
  const keys = new Set<string>()
  const found = new Set<string>()
  const shape: SessionStore.Shape = {
    ...inner,
    set: (key, entry, options) =>
      inner.set(key, entry, options).pipe(
        Effect.tap(() =>
          Effect.sync(() => {
            keys.add(key)
            collect(entry, found)
          })
        )
      )
  }
  return {
    layer: Layer.succeed(SessionStore.SessionStore, SessionStore.SessionStore.of(shape)),
    liveKeys: async () => {
      const all = [...keys]
      const entries = await Effect.runPromise(Effect.forEach(all, (key) => inner.get(key)))
      return all.filter((_, i) => entries[i] !== undefined)
    },
    secrets: () => [...found]
  }
}

/**
 * Everything this process prints from now on (console, stdout, stderr),
 * still printed; `stop()` puts the originals back.
 */
export const captureOutput = (): { lines: Array<string>; stop(): void } => {
  const lines: Array<string> = []
  const methods = ["log", "info", "warn", "error", "debug"] as const
  const originals = methods.map((method) => console[method])
  methods.forEach((method, i) => {
    console[method] = (...args: Array<unknown>) => {
      lines.push(format(...args))
      originals[i]!(...args)
    }
  })
  const writes = [process.stdout, process.stderr].map((stream) => {
    const original = stream.write
    stream.write = ((chunk: unknown, ...rest: Array<unknown>) => {
      lines.push(typeof chunk === "string" ? chunk : Buffer.from(chunk as Uint8Array).toString("utf8"))
      return (original as (...args: Array<unknown>) => boolean).call(stream, chunk, ...rest)
    }) as typeof stream.write
    return () => {
      stream.write = original
    }
  })
  return {
    lines,
    stop: () => {
      methods.forEach((method, i) => {
        console[method] = originals[i]!
      })
      for (const restore of writes) restore()
    }
  }
}
