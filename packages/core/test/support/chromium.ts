/**
 * Debian's Chromium for every browser test of the repository (the sandbox's
 * page, the examples' sign-in scenarios), through the caller's own
 * `playwright-core` (core does not depend on it): `launchChromium(chromium)`.
 *
 * Needs Chromium at /usr/bin/chromium (`apt-get update && apt-get install -y
 * chromium`; `.ci/run` installs it). Without it a browser test fails, on
 * purpose: a skipped browser test is one nobody runs. Launch it inside a
 * test, not in a hook: a failing hook reports the tests as skipped.
 */
import { existsSync } from "node:fs"

export const CHROMIUM = "/usr/bin/chromium"

/** Headless, no sandbox (containers), nothing that reaches out to the network by itself. */
export const CHROMIUM_ARGS: ReadonlyArray<string> = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-quic",
  "--no-first-run"
]

export const launchChromium = <B>(chromium: {
  launch(options: { executablePath: string; args: Array<string> }): Promise<B>
}): Promise<B> => {
  if (!existsSync(CHROMIUM)) {
    return Promise.reject(
      new Error(
        `Chromium is not installed at ${CHROMIUM}; the browser tests need it. Install it with: apt-get update && apt-get install -y chromium`
      )
    )
  }
  return chromium.launch({ executablePath: CHROMIUM, args: [...CHROMIUM_ARGS] })
}
