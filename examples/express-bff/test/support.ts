/**
 * Support for the example's tests: Debian's Chromium, a session store that
 * is the core's memory store with a record of what was written (the
 * scenarios check that a refused sign-in adds nothing, and scan every token
 * it held; shared with @authfetch/express's tests), and everything this
 * process prints.
 */
import { format } from "node:util"
import { type Browser, chromium } from "playwright-core"
import { launchChromium as launch } from "../../../packages/core/test/support/chromium.ts"

/** Chromium, headless: the repository's one launcher (packages/core/test/support/chromium.ts). */
export const launchChromium = (): Promise<Browser> => launch(chromium)

/** The core's memory store recording what is written: the Express package's test support, reused. */
export { type RecordingStore, recordingStore } from "../../../packages/express/test/support/sessions.ts"

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
