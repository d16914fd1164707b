/**
 * The secret-leak sweep's collector. A `Capture` belongs to one run of one
 * integration (a matrix cell, a soak environment): it learns the secret
 * values of that run (client secret and its encoded spellings, password,
 * every access and refresh token as it is issued) and collects everything an
 * application would see and log: events (token source, request policy,
 * sandbox), every error in all its renderings, every response that reaches
 * the caller (status, headers, body), and every line an application logger
 * writes. `scan()` looks for every secret in every text.
 */
import { Console } from "node:console"
import { Writable } from "node:stream"
import { inspect } from "node:util"

export interface Leak {
  readonly run: string
  readonly where: string
  readonly secret: string
  /** the text around the finding, with the secret itself masked */
  readonly excerpt: string
}

/** Shortest value looked for: shorter ones would match by chance. */
const MIN_NEEDLE = 10

/** The renderings a logger may produce of an error or any value. Never throws. */
export const renderings = (value: unknown): Array<string> => {
  const out: Array<string> = []
  const attempt = (render: () => unknown) => {
    try {
      const text = render()
      if (typeof text === "string") out.push(text)
    } catch (error) {
      out.push(`[rendering threw ${String((error as Error)?.name)}]`)
    }
  }
  attempt(() => String(value))
  attempt(() => JSON.stringify(value))
  attempt(() => inspect(value, { depth: 10, showHidden: true }))
  attempt(() => inspect(value, { depth: 10, customInspect: false }))
  if (value instanceof Error) {
    attempt(() => value.message)
    attempt(() => value.stack)
    attempt(() => {
      const toJSON = (value as { toJSON?: () => unknown }).toJSON
      return typeof toJSON === "function" ? JSON.stringify(toJSON.call(value)) : undefined
    })
    // the cause chain, each on its own (a logger may print only the cause)
    let cause = (value as { cause?: unknown }).cause
    for (let depth = 0; cause !== undefined && depth < 5; depth++) {
      attempt(() => String(cause))
      attempt(() => inspect(cause, { depth: 10, showHidden: true }))
      cause = (cause as { cause?: unknown } | null)?.cause
    }
  }
  return out
}

/** The spellings of a secret as it travels: raw, percent-encoded, form-encoded. */
export const spellings = (value: string): Array<string> => [
  value,
  encodeURIComponent(value),
  new URLSearchParams({ v: value }).toString().slice(2)
]

export class Capture {
  readonly run: string
  readonly #needles = new Map<string, string>()
  readonly #texts: Array<{ where: string; text: string }> = []
  /** texts and characters scanned so far (cleared texts included) */
  scannedTexts = 0
  scannedChars = 0
  readonly counts = { events: 0, errors: 0, responses: 0, logLines: 0 }
  readonly leaks: Array<Leak> = []
  /** an application logger: everything it prints is captured, nothing reaches the terminal */
  readonly logger: Console

  constructor(run: string) {
    this.run = run
    const sink = new Writable({
      write: (chunk, _encoding, callback) => {
        this.counts.logLines++
        this.#texts.push({ where: "log", text: String(chunk) })
        callback()
      }
    })
    this.logger = new Console({ stdout: sink, stderr: sink, colorMode: false })
  }

  /** a value that must never be seen; `label` names it in reports */
  secret(value: string | undefined, label: string): void {
    if (typeof value !== "string") return
    for (const spelling of spellings(value)) {
      if (spelling.length >= MIN_NEEDLE && !this.#needles.has(spelling)) this.#needles.set(spelling, label)
    }
  }

  /** an access token: the whole value, and each part of a JWT-shaped one but the common header */
  token(value: string | undefined, label: string): void {
    if (typeof value !== "string") return
    this.secret(value, label)
    const parts = value.split(".")
    if (parts.length === 3) {
      this.secret(parts[1], `${label} (payload)`)
      this.secret(parts[2], `${label} (signature)`)
    }
  }

  get needles(): ReadonlyMap<string, string> {
    return this.#needles
  }

  text(where: string, text: string): void {
    this.#texts.push({ where, text })
  }

  event(where: string, event: unknown): void {
    this.counts.events++
    this.#texts.push({ where, text: JSON.stringify(event) ?? "" })
    this.#texts.push({ where, text: inspect(event, { depth: 10 }) })
    this.logger.info(where, event)
  }

  error(where: string, error: unknown): void {
    this.counts.errors++
    for (const text of renderings(error)) this.#texts.push({ where, text })
    this.logger.error(where, error)
  }

  response(where: string, status: number, headers: Headers | Record<string, unknown>, body: string): void {
    this.counts.responses++
    const entries =
      headers instanceof Headers ? [...headers] : Object.entries(headers).map(([k, v]) => [k, String(v)])
    this.#texts.push({
      where,
      text: `${status} ${entries.map(([k, v]) => `${k}: ${v}`).join("\n")}\n\n${body}`
    })
    if (status >= 400) this.logger.warn(where, status, body)
  }

  /** scans every text for every secret known now, records the leaks, and forgets the texts */
  scan(extraNeedles?: ReadonlyMap<string, string>): Array<Leak> {
    const needles = [...this.#needles, ...(extraNeedles ?? [])]
    const found: Array<Leak> = []
    for (const { where, text } of this.#texts) {
      this.scannedTexts++
      this.scannedChars += text.length
      for (const [needle, label] of needles) {
        const at = text.indexOf(needle)
        if (at === -1) continue
        let excerpt = `${text.slice(Math.max(0, at - 60), at)}<${label}>${text.slice(at + needle.length, at + needle.length + 60)}`
        // a report must not repeat a secret either (another one may sit next to this one)
        for (const [other, otherLabel] of needles) excerpt = excerpt.split(other).join(`<${otherLabel}>`)
        found.push({ run: this.run, where, secret: label, excerpt: excerpt.replace(/\s+/g, " ") })
      }
    }
    this.#texts.length = 0
    this.leaks.push(...found)
    return found
  }
}
