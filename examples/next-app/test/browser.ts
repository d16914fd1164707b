/** The repository's one Chromium launcher (packages/core/test/support/chromium.ts), with this package's playwright-core. */
import { type Browser, chromium } from "playwright-core"
import { launchChromium as launch } from "../../../packages/core/test/support/chromium.ts"

export const launchChromium = (): Promise<Browser> => launch(chromium)
