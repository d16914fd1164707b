/**
 * Debian's Chromium for the browser tests, through playwright-core.
 *
 * Needs Chromium at /usr/bin/chromium (`apt-get update && apt-get install -y
 * chromium`; CI installs it). Without it a browser test fails, on purpose: a
 * skipped browser test is a browser test nobody runs. Launch it inside a
 * test, not in a hook: a failing hook reports the tests as skipped.
 */
import { existsSync } from "node:fs"
import { type Browser, chromium } from "playwright-core"

export const CHROMIUM = "/usr/bin/chromium"

export const launchChromium = async (): Promise<Browser> => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `Chromium is not installed at ${CHROMIUM}; the browser tests need it. Install it with: apt-get update && apt-get install -y chromium`
    )
  }
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--disable-quic",
      "--no-first-run"
    ]
  })
}
