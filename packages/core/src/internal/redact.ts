/**
 * Removing known secret values from text that came from elsewhere: a token
 * endpoint that echoes the request into `error_description`, an API that
 * echoes the bearer token into an error body, an upstream body a proxy passes
 * on. The values are known (we sent them); what is removed is each value and
 * the spellings in which a server may echo it (form-encoded, percent-encoded).
 *
 * `redactText` works on a whole string; `redactStream` on a byte stream whose
 * chunks may split a value anywhere (it holds back the last `longest − 1`
 * bytes of each chunk until the next one shows whether a value continues).
 */

/** What replaces a secret value. */
export const REDACTED = "<redacted>"

/** Values shorter than this are not searched for: they would match by chance. */
const MIN_SECRET_LENGTH = 4

/**
 * Each value and the spellings a server may echo it in, deduplicated, longest
 * first (so a value is replaced whole before a shorter spelling inside it).
 */
export const spellings = (values: ReadonlyArray<string | undefined>): ReadonlyArray<string> => {
  const all = new Set<string>()
  for (const value of values) {
    if (value === undefined || value.length < MIN_SECRET_LENGTH) continue
    all.add(value)
    all.add(encodeURIComponent(value))
    // application/x-www-form-urlencoded (spaces as "+")
    all.add(new URLSearchParams({ v: value }).toString().slice(2))
  }
  return [...all].sort((a, b) => b.length - a.length)
}

/**
 * `text` with every spelling of every value replaced by `<redacted>`.
 *
 * @example
 * ```ts
 * redactText('{"detail":"bad token abc.def"}', spellings(["abc.def"])) // '{"detail":"bad token <redacted>"}'
 * ```
 */
export const redactText = <T extends string | undefined>(text: T, secrets: ReadonlyArray<string>): T => {
  if (text === undefined || secrets.length === 0) return text
  let result: string = text
  for (const secret of secrets) if (result.includes(secret)) result = result.split(secret).join(REDACTED)
  return result as T
}

const encoder = new TextEncoder()
const replacement = encoder.encode(REDACTED)

interface Needles {
  readonly needles: ReadonlyArray<Uint8Array>
  readonly keep: number
}

// A proxy answers many responses to one token: the spellings list it passes is
// the same array each time (it caches them per token), so its bytes are too.
const encoded = new WeakMap<ReadonlyArray<string>, Needles>()

/** The byte spellings of each secret (UTF-8), and how many bytes a chunk boundary may hide. */
const needlesOf = (secrets: ReadonlyArray<string>): Needles => {
  let found = encoded.get(secrets)
  if (found === undefined) {
    const needles = secrets.map((secret) => encoder.encode(secret))
    found = { needles, keep: Math.max(...needles.map((needle) => needle.length)) - 1 }
    encoded.set(secrets, found)
  }
  return found
}

/**
 * `bytes` (a whole body) with every spelling of every value replaced by
 * `<redacted>`: `redactStream` for a body read at once, without a stream.
 *
 * @example
 * ```ts
 * const safe = redactBytes(new Uint8Array(await upstream.arrayBuffer()), spellings([token.reveal()]))
 * ```
 */
export const redactBytes = (bytes: Uint8Array, secrets: ReadonlyArray<string>): Uint8Array =>
  secrets.length === 0 ? bytes : replaceIn(bytes, needlesOf(secrets).needles, replacement, 0).settled

/** Where `needle` starts in `haystack` at or after `from`, or -1. */
const indexOf = (haystack: Uint8Array, needle: Uint8Array, from: number): number => {
  const first = needle[0]
  const last = haystack.length - needle.length
  outer: for (let i = haystack.indexOf(first as number, from); i !== -1 && i <= last; ) {
    for (let j = 1; j < needle.length; j++) {
      if (haystack[i + j] !== needle[j]) {
        i = haystack.indexOf(first as number, i + 1)
        continue outer
      }
    }
    return i
  }
  return -1
}

const EMPTY = new Uint8Array(0)

const join = (a: Uint8Array, b: Uint8Array): Uint8Array => {
  if (a.length === 0) return b
  const joined = new Uint8Array(a.length + b.length)
  joined.set(a, 0)
  joined.set(b, a.length)
  return joined
}

/**
 * Replaces every secret in `bytes`; returns the part that is settled and the
 * tail that may still be the start of a secret (`keep` bytes at most).
 */
const replaceIn = (
  bytes: Uint8Array,
  needles: ReadonlyArray<Uint8Array>,
  replacement: Uint8Array,
  keep: number
): { readonly settled: Uint8Array; readonly tail: Uint8Array } => {
  const out: Array<Uint8Array> = []
  let start = 0
  for (;;) {
    let at = -1
    let match: Uint8Array | undefined
    for (const needle of needles) {
      const found = indexOf(bytes, needle, start)
      if (found !== -1 && (at === -1 || found < at)) {
        at = found
        match = needle
      }
    }
    if (match === undefined) break
    out.push(bytes.subarray(start, at), replacement)
    start = at + match.length
  }
  const tailStart = Math.max(start, bytes.length - keep)
  // Nothing found and nothing held back (a whole body, most of them): the bytes as they are.
  if (start === 0 && tailStart === bytes.length) return { settled: bytes, tail: EMPTY }
  out.push(bytes.subarray(start, tailStart))
  let total = 0
  for (const part of out) total += part.length
  const settled = new Uint8Array(total)
  let offset = 0
  for (const part of out) {
    settled.set(part, offset)
    offset += part.length
  }
  return { settled, tail: bytes.slice(tailStart) }
}

/**
 * A byte stream transform that replaces every spelling of every value by
 * `<redacted>`, across chunk boundaries. With no values it passes chunks as
 * they are.
 *
 * @example
 * ```ts
 * const safe = upstream.body.pipeThrough(redactStream(spellings([token.reveal()])))
 * ```
 */
export const redactStream = (secrets: ReadonlyArray<string>): TransformStream<Uint8Array, Uint8Array> => {
  if (secrets.length === 0) return new TransformStream()
  const { needles, keep } = needlesOf(secrets)
  let pending: Uint8Array = new Uint8Array(0)
  return new TransformStream({
    transform(chunk, controller) {
      const { settled, tail } = replaceIn(join(pending, chunk), needles, replacement, keep)
      pending = tail
      if (settled.length > 0) controller.enqueue(settled)
    },
    flush(controller) {
      const { settled } = replaceIn(pending, needles, replacement, 0)
      if (settled.length > 0) controller.enqueue(settled)
    }
  })
}
