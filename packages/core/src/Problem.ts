/**
 * One typed error for any HTTP error response from an API called with a token.
 *
 * Servers describe failures in several ways, often badly: an RFC 9457
 * `application/problem+json` object (WEX's Benefits Platform sends one with a
 * trailing comma, which is not JSON), an RFC 6749 section 5.2 style
 * `{"error", "error_description"}` object, an RFC 6750 section 3
 * `WWW-Authenticate: Bearer error="invalid_token"` challenge, an HTML page, or
 * nothing. `parse` turns all of them into one `ProblemDetailsError`, leniently:
 * it never throws, and `fromResponse` never rejects and never hangs (the body is
 * read up to a byte cap and a deadline, then cancelled).
 *
 * The error never holds the request URL's query string, fragment or userinfo
 * (they may carry secrets); it does hold the response body as received, capped,
 * for debugging.
 *
 * @example
 * ```ts
 * import { Problem } from "@authfetch/core"
 *
 * const res = await fetch(url, { headers: { authorization: token.authorization() } })
 * if (!res.ok) {
 *   const problem = await Problem.fromResponse(res, { method: "GET", url })
 *   if (problem.status === 401) await tokens.invalidate(token)
 *   throw problem
 * }
 * ```
 *
 * @since 0.1.0
 */
import { Data, Option, Schema } from "effect"
import { ProblemDetails } from "effect/http"
import * as knownSecrets from "./internal/knownSecrets.ts"
import { redactText, spellings } from "./internal/redact.ts"

/**
 * How much of an error body `fromResponse` reads by default: 64 KiB. Error
 * bodies are small; a larger one is an HTML page or an attack, and its first
 * 64 KiB are enough to debug it.
 *
 * @example
 * ```ts
 * await Problem.fromResponse(res, { maxBodyBytes: Problem.DEFAULT_MAX_BODY_BYTES / 4 })
 * ```
 *
 * @since 0.1.0
 */
export const DEFAULT_MAX_BODY_BYTES = 64 * 1024

/**
 * How long `fromResponse` waits for an error body by default: 10 seconds. A
 * body still unfinished by then is cancelled and what arrived is kept.
 *
 * @example
 * ```ts
 * await Problem.fromResponse(res, { timeoutMillis: Problem.DEFAULT_TIMEOUT_MILLIS / 10 })
 * ```
 *
 * @since 0.1.0
 */
export const DEFAULT_TIMEOUT_MILLIS = 10_000

/**
 * JSON nested deeper than this is treated as not JSON: an error body never
 * needs it, and a value nested 100,000 deep makes `JSON.stringify(error)` (and
 * every logger) overflow the stack.
 */
const MAX_JSON_DEPTH = 64

/** Longest title or detail shown in `message`; the fields keep the full text. */
const MAX_MESSAGE_PART = 200

/**
 * An OAuth error code with its description, from an RFC 6749 section 5.2 style
 * JSON body or an RFC 6750 section 3 `WWW-Authenticate` challenge.
 *
 * @example
 * ```ts
 * if (problem.oauthError?.error === "invalid_token") await tokens.invalidate(token)
 * ```
 *
 * @since 0.1.0
 */
export interface OAuthErrorInfo {
  /** `error`: `invalid_token`, `insufficient_scope`, `invalid_request`, or the server's own code */
  readonly error: string
  /** `error_description`, as the server wrote it */
  readonly errorDescription?: string | undefined
  /** `scope`: the scope the resource needs (RFC 6750 section 3) */
  readonly scope?: string | undefined
  /** `error_uri` */
  readonly errorUri?: string | undefined
}

/**
 * An HTTP error response as one typed error.
 *
 * The RFC 9457 members (`type`, `title`, `detail`, `instance`) come from a
 * problem object when the body is one; `type` is `about:blank` otherwise
 * (RFC 9457 section 3.1.1), and an `about:blank` problem's `title` is the HTTP
 * reason phrase (section 4.2.1). `status` is always the status of the response
 * itself.
 *
 * @example
 * ```ts
 * try {
 *   await callApi()
 * } catch (err) {
 *   if (err instanceof Problem.ProblemDetailsError && err.oauthError?.error === "invalid_token") retry()
 * }
 * ```
 *
 * @since 0.1.0
 */
export class ProblemDetailsError extends Data.TaggedError("ProblemDetailsError")<{
  /** HTTP status of the response */
  readonly status: number
  /** RFC 9457 3.1.1 `type`, a URI reference; `about:blank` when absent */
  readonly type: string
  /** RFC 9457 3.1.3 `title`; the HTTP reason phrase for an `about:blank` problem */
  readonly title?: string | undefined
  /** RFC 9457 3.1.4 `detail`; else the OAuth `error_description` */
  readonly detail?: string | undefined
  /** RFC 9457 3.1.5 `instance` */
  readonly instance?: string | undefined
  /**
   * the members of a JSON-object body other than the five RFC 9457 ones (and a
   * `status` member that disagrees with the response status)
   */
  readonly extensions: Readonly<Record<string, unknown>>
  /** the OAuth error of the body, else of a `Bearer` (or `DPoP`) challenge */
  readonly oauthError?: OAuthErrorInfo | undefined
  /** the body text as received, at most `maxBodyBytes` of it */
  readonly body: string
  /** the request method, when the caller said */
  readonly method?: string | undefined
  /** the request URL without query string, fragment and userinfo */
  readonly url?: string | undefined
}> {
  override get message(): string {
    const title = oneLine(this.title) ?? reasonPhrase(this.status)
    const code = oneLine(this.oauthError?.error)
    const same = (a: string | undefined, b: string | undefined) =>
      a !== undefined && b !== undefined && a.toLowerCase() === b.toLowerCase()
    let text = oneLine(this.detail)
    if (text === undefined) {
      text = code
    } else if (code !== undefined && !same(code, title) && !same(code, text)) {
      text = `${text} (${code})`
    }
    if (same(text, title)) text = undefined
    return `HTTP ${this.status}${title ? ` ${title}` : ""}${text ? `: ${text}` : ""}`
  }
}

/**
 * One challenge of a `WWW-Authenticate` header (RFC 9110 section 11.6.1). The
 * scheme and the parameter names are lower-cased; values are unquoted and
 * unescaped.
 *
 * @example
 * ```ts
 * const [challenge] = Problem.parseWwwAuthenticate('Bearer error="invalid_token"')
 * challenge?.params.error // "invalid_token"
 * ```
 *
 * @since 0.1.0
 */
export interface WwwAuthenticateChallenge {
  /** the auth-scheme, lower-cased: `bearer`, `basic`, `dpop`, `negotiate` */
  readonly scheme: string
  /** auth-params by lower-cased name; the first of a repeated name wins */
  readonly params: Readonly<Record<string, string>>
  /** the token68 form of the credentials (RFC 9110 section 11.2), instead of params */
  readonly token68?: string | undefined
}

/**
 * What `parse` needs of a response.
 *
 * @example
 * ```ts
 * const input: Problem.ParseInput = { status: 401, headers: new Headers(), body: "" }
 * ```
 *
 * @since 0.1.0
 */
export interface ParseInput {
  readonly status: number
  readonly headers: Headers
  /** the body text (`parse` keeps it as given; `fromResponse` caps it) */
  readonly body: string
  readonly method?: string | undefined
  /** the request URL; its query, fragment and userinfo are dropped */
  readonly url?: string | undefined
  /**
   * values to remove from the body and the challenge (as `<redacted>`), besides
   * the access tokens of this process, which are always removed
   */
  readonly secrets?: ReadonlyArray<string> | undefined
}

/**
 * Options of `fromResponse`.
 *
 * @example
 * ```ts
 * const options: Problem.FromResponseOptions = { maxBodyBytes: 8192, method: "POST", url }
 * ```
 *
 * @since 0.1.0
 */
export interface FromResponseOptions {
  /** bytes of the body to read before cancelling it; default `DEFAULT_MAX_BODY_BYTES` (64 KiB) */
  readonly maxBodyBytes?: number | undefined
  /** milliseconds to wait for the body before cancelling it; default `DEFAULT_TIMEOUT_MILLIS` (10 s) */
  readonly timeoutMillis?: number | undefined
  readonly method?: string | undefined
  /** the request URL; its query, fragment and userinfo are dropped */
  readonly url?: string | undefined
  /** see `ParseInput.secrets` */
  readonly secrets?: ReadonlyArray<string> | undefined
}

// --- HTTP vocabulary ---------------------------------------------------------

/** RFC 9110 section 15 reason phrases, with RFC 6585 and RFC 7725 additions. */
const reasonPhrases: Readonly<Record<number, string>> = {
  200: "OK",
  201: "Created",
  202: "Accepted",
  204: "No Content",
  301: "Moved Permanently",
  302: "Found",
  303: "See Other",
  304: "Not Modified",
  307: "Temporary Redirect",
  308: "Permanent Redirect",
  400: "Bad Request",
  401: "Unauthorized",
  402: "Payment Required",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  406: "Not Acceptable",
  407: "Proxy Authentication Required",
  408: "Request Timeout",
  409: "Conflict",
  410: "Gone",
  411: "Length Required",
  412: "Precondition Failed",
  413: "Content Too Large",
  414: "URI Too Long",
  415: "Unsupported Media Type",
  416: "Range Not Satisfiable",
  417: "Expectation Failed",
  421: "Misdirected Request",
  422: "Unprocessable Content",
  423: "Locked",
  424: "Failed Dependency",
  425: "Too Early",
  426: "Upgrade Required",
  428: "Precondition Required",
  429: "Too Many Requests",
  431: "Request Header Fields Too Large",
  451: "Unavailable For Legal Reasons",
  500: "Internal Server Error",
  501: "Not Implemented",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
  505: "HTTP Version Not Supported",
  507: "Insufficient Storage",
  508: "Loop Detected",
  511: "Network Authentication Required"
}

/**
 * The RFC 9110 reason phrase of a status (`413` → `"Content Too Large"`),
 * `undefined` for a status without one.
 *
 * @example
 * ```ts
 * Problem.reasonPhrase(504) // "Gateway Timeout"
 * ```
 *
 * @since 0.1.0
 */
export const reasonPhrase = (status: number): string | undefined =>
  Object.hasOwn(reasonPhrases, status) ? reasonPhrases[status] : undefined

/**
 * Collapses whitespace, control and format characters (line breaks, ANSI
 * escapes, bidi overrides: no log injection) and shortens.
 */
const oneLine = (text: string | undefined): string | undefined => {
  if (text === undefined) return undefined
  const line = text.replace(/[\s\p{Cc}\p{Cf}]+/gu, " ").trim()
  if (line === "") return undefined
  return line.length > MAX_MESSAGE_PART ? `${line.slice(0, MAX_MESSAGE_PART - 1)}…` : line
}

/**
 * The request URL without query string, fragment and userinfo, which may carry
 * API keys, tokens or passwords. A string that is not an absolute URL is cut at
 * its first `?` or `#`.
 */
const redactUrl = (url: string | undefined): string | undefined => {
  if (typeof url !== "string") return undefined
  try {
    const parsed = new URL(url)
    parsed.username = ""
    parsed.password = ""
    parsed.search = ""
    parsed.hash = ""
    return parsed.href
  } catch {
    const cut = url.search(/[?#]/)
    return cut === -1 ? url : url.slice(0, cut)
  }
}

/**
 * Whether a `Content-Type` is RFC 9457's `application/problem+json`, with any
 * parameters, in any case.
 *
 * @example
 * ```ts
 * Problem.isProblemContentType("Application/Problem+JSON; charset=utf-8") // true
 * Problem.isProblemContentType("application/json") // false
 * ```
 *
 * @since 0.1.0
 */
export const isProblemContentType = (contentType: string | null): boolean =>
  typeof contentType === "string" &&
  contentType.split(";", 1)[0]!.trim().toLowerCase() === ProblemDetails.contentType

// --- WWW-Authenticate (RFC 9110 section 11.6.1) ------------------------------

/** tchar of RFC 9110 section 5.6.2 */
const TCHAR = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/
/** token68 characters before the `=` padding, RFC 9110 section 11.2 */
const TOKEN68_CHAR = /[-._~+/0-9A-Za-z]/

const setOnce = (record: Record<string, string>, name: string, value: string): void => {
  // defineProperty: a parameter named `__proto__` becomes a plain member.
  if (!Object.hasOwn(record, name)) {
    Object.defineProperty(record, name, { value, enumerable: true, writable: true, configurable: true })
  }
}

/**
 * Parses a `WWW-Authenticate` header (RFC 9110 section 11.6.1) into its
 * challenges, in order: several challenges in one header (as `Headers.get`
 * joins repeated headers), quoted-strings with backslash escapes and commas
 * inside, bad whitespace around `=`, and the token68 form. Scheme and parameter
 * names are lower-cased. Leniently: an unterminated quoted-string runs to the
 * end, a missing comma between parameters is tolerated, and unparseable parts
 * are skipped up to the next comma. Never throws.
 *
 * @example
 * ```ts
 * Problem.parseWwwAuthenticate('Basic realm="x", Bearer error="insufficient_scope", scope="a b"')
 * // [ { scheme: "basic", params: { realm: "x" } },
 * //   { scheme: "bearer", params: { error: "insufficient_scope", scope: "a b" } } ]
 * ```
 *
 * @since 0.1.0
 */
export const parseWwwAuthenticate = (
  header: string | null | undefined
): ReadonlyArray<WwwAuthenticateChallenge> => {
  if (typeof header !== "string") return []
  const s = header
  const n = s.length
  let i = 0
  const isTchar = (at: number) => at < n && TCHAR.test(s[at]!)
  const isOws = (at: number) => at < n && (s[at] === " " || s[at] === "\t")
  const skipOws = () => {
    while (isOws(i)) i++
  }
  const readToken = () => {
    const start = i
    while (isTchar(i)) i++
    return s.slice(start, i)
  }
  /** At a `"`: the unescaped content; an unterminated string runs to the end. */
  const readQuoted = () => {
    i++
    const parts: Array<string> = []
    let start = i
    while (i < n) {
      const c = s[i]
      if (c === '"') {
        parts.push(s.slice(start, i))
        i++
        return parts.join("")
      }
      if (c === "\\") {
        parts.push(s.slice(start, i))
        start = i + 1 // the escaped character is taken as is
        i += 2
      } else {
        i++
      }
    }
    parts.push(s.slice(start, n))
    i = n
    return parts.join("")
  }
  /** Recovery: skips to the next comma that is not inside a quoted-string. */
  const skipToComma = () => {
    while (i < n && s[i] !== ",") {
      if (s[i] === '"') readQuoted()
      else i++
    }
  }
  /** Whether `token BWS "="` starts at `at` (an auth-param, not a new challenge). */
  const paramAhead = (at: number) => {
    let j = at
    while (isTchar(j)) j++
    if (j === at) return false
    while (isOws(j)) j++
    return s[j] === "="
  }
  /** The end of a token68 at `at` that is all the challenge has, or -1. */
  const token68End = (at: number) => {
    let j = at
    while (j < n && TOKEN68_CHAR.test(s[j]!)) j++
    if (j === at) return -1
    while (s[j] === "=") j++
    let k = j
    while (isOws(k)) k++
    return k >= n || s[k] === "," ? j : -1
  }
  const readParams = (params: Record<string, string>) => {
    for (;;) {
      const name = readToken()
      skipOws()
      if (name === "" || s[i] !== "=") {
        skipToComma()
      } else {
        i++
        skipOws()
        const value = s[i] === '"' ? readQuoted() : readToken()
        setOnce(params, name.toLowerCase(), value)
        skipOws()
        if (i < n && s[i] !== ",") {
          if (paramAhead(i)) continue // a missing comma between two parameters
          skipToComma()
        }
      }
      if (i >= n) return
      // At a comma: the next list element is either another parameter of this
      // challenge or the next challenge.
      let j = i
      while (j < n && (s[j] === "," || isOws(j))) j++
      i = j
      if (!paramAhead(j)) return
    }
  }

  const challenges: Array<WwwAuthenticateChallenge> = []
  while (i < n) {
    while (i < n && (s[i] === "," || isOws(i))) i++
    if (i >= n) break
    const scheme = readToken()
    if (scheme === "") {
      skipToComma()
      continue
    }
    const params: Record<string, string> = {}
    const afterScheme = i
    skipOws()
    if (i >= n || s[i] === ",") {
      challenges.push({ scheme: scheme.toLowerCase(), params })
      continue
    }
    if (i === afterScheme) {
      // no space between the scheme and what follows: not a challenge
      skipToComma()
      continue
    }
    const end = token68End(i)
    if (end !== -1) {
      challenges.push({ scheme: scheme.toLowerCase(), params, token68: s.slice(i, end) })
      i = end
      continue
    }
    readParams(params)
    challenges.push({ scheme: scheme.toLowerCase(), params })
  }
  return challenges
}

// --- JSON, leniently ---------------------------------------------------------

const isJsonWhitespace = (c: number) => c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d

/**
 * Calls `visit` with each character code outside JSON strings (escapes
 * honoured) and its index; stops early when `visit` returns `true`.
 */
const scanOutsideStrings = (
  text: string,
  visit: (code: number, index: number) => boolean | undefined
): void => {
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 0x5c) i++
      else if (c === 0x22) inString = false
    } else if (c === 0x22) {
      inString = true
    } else if (visit(c, i)) {
      return
    }
  }
}

/** Drops each comma that is followed (after whitespace) by `}` or `]`, outside strings. */
const stripTrailingCommas = (text: string): string => {
  const parts: Array<string> = []
  let last = 0
  scanOutsideStrings(text, (c, i) => {
    if (c !== 0x2c) return false
    let j = i + 1
    while (j < text.length && isJsonWhitespace(text.charCodeAt(j))) j++
    const next = text.charCodeAt(j)
    if (next === 0x7d || next === 0x5d) {
      parts.push(text.slice(last, i))
      last = i + 1
    }
    return false
  })
  parts.push(text.slice(last))
  return parts.join("")
}

/** Whether brackets outside strings nest deeper than `max`. */
const nestsDeeperThan = (text: string, max: number): boolean => {
  let depth = 0
  let deeper = false
  scanOutsideStrings(text, (c) => {
    if (c === 0x7b || c === 0x5b) deeper = ++depth > max
    else if (c === 0x7d || c === 0x5d) depth--
    return deeper
  })
  return deeper
}

/**
 * `JSON.parse`, and when that fails, again after removing a leading UTF-8 byte
 * order mark and the trailing commas before `}` and `]` (outside strings: the
 * text of `"a,}"` is kept). `undefined` when the text is still not JSON. Never
 * throws, not even the `RangeError` of very deep nesting.
 *
 * @example
 * ```ts
 * Problem.parseLenientJson('{"title": "Unauthorized",}') // { title: "Unauthorized" }
 * Problem.parseLenientJson("<html>") // undefined
 * ```
 *
 * @since 0.1.0
 */
export const parseLenientJson = (text: string): unknown | undefined => {
  if (typeof text !== "string") return undefined
  try {
    return JSON.parse(text)
  } catch {
    // try again, repaired
  }
  try {
    const unmarked = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text
    return JSON.parse(stripTrailingCommas(unmarked))
  } catch {
    return undefined
  }
}

// --- The problem -------------------------------------------------------------

const decodeProblem = Schema.decodeUnknownOption(ProblemDetails.Schema)

const standardMembers = ["type", "status", "title", "detail", "instance"] as const

const nonEmptyString = (value: unknown): string | undefined =>
  typeof value === "string" && value !== "" ? value : undefined

const optionalString = (value: unknown): string | undefined => (typeof value === "string" ? value : undefined)

/** RFC 6749 section 5.2 members of a JSON object, when `error` is a non-empty string. */
const oauthFromBody = (body: Readonly<Record<string, unknown>>): OAuthErrorInfo | undefined => {
  const error = nonEmptyString(body.error)
  if (error === undefined) return undefined
  return {
    error,
    errorDescription: optionalString(body.error_description),
    scope: optionalString(body.scope),
    errorUri: optionalString(body.error_uri)
  }
}

/**
 * RFC 6750 section 3: the first `Bearer` challenge with an `error`. A `DPoP`
 * challenge (RFC 9449 section 7.1) carries the same parameters and counts too.
 */
const oauthFromChallenges = (headers: Headers): OAuthErrorInfo | undefined => {
  let header: string | null = null
  try {
    header = headers.get("www-authenticate")
  } catch {
    return undefined
  }
  for (const challenge of parseWwwAuthenticate(header)) {
    if (challenge.scheme !== "bearer" && challenge.scheme !== "dpop") continue
    const error = nonEmptyString(challenge.params.error)
    if (error === undefined) continue
    return {
      error,
      errorDescription: challenge.params.error_description,
      scope: challenge.params.scope,
      errorUri: challenge.params.error_uri
    }
  }
  return undefined
}

const contentTypeOf = (headers: Headers): string | null => {
  try {
    return headers.get("content-type")
  } catch {
    return null
  }
}

/** The token values of this process and the caller's own `secrets`, in every spelling. */
const secretsFor = (input: Partial<ParseInput> | undefined): ReadonlyArray<string> => {
  const extra = Array.isArray(input?.secrets) ? input.secrets.filter((s) => typeof s === "string") : []
  const known = knownSecrets.current()
  return extra.length === 0 ? known : [...spellings(extra), ...known]
}

const redactOAuth = (
  info: OAuthErrorInfo | undefined,
  secrets: ReadonlyArray<string>
): OAuthErrorInfo | undefined =>
  info && {
    error: redactText(info.error, secrets),
    errorDescription: redactText(info.errorDescription, secrets),
    scope: redactText(info.scope, secrets),
    errorUri: redactText(info.errorUri, secrets)
  }

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

/** `parse`, or with `parseBody: false` a problem that only reads the headers. */
const build = (input: ParseInput, parseBody: boolean): ProblemDetailsError => {
  const status = input.status
  // An API may echo the bearer token it was sent (in a detail, a debug dump, a
  // challenge): every token value this process holds is removed before parsing, so no
  // field of the error can carry one.
  const secrets = secretsFor(input)
  const body = redactText(typeof input.body === "string" ? input.body : "", secrets)
  const reason = reasonPhrase(status)
  const common = {
    status,
    body,
    method: typeof input.method === "string" ? input.method : undefined,
    url: redactUrl(input.url)
  }
  const challengeOAuth = redactOAuth(oauthFromChallenges(input.headers), secrets)

  const json = parseBody && !nestsDeeperThan(body, MAX_JSON_DEPTH) ? parseLenientJson(body) : undefined
  const decoded = isObject(json) ? decodeProblem(json) : Option.none()
  if (!isObject(json) || Option.isNone(decoded)) {
    // Not a JSON object: a bare problem, with what the challenge says.
    return new ProblemDetailsError({
      ...common,
      type: ProblemDetails.blankType,
      title: reason,
      detail: challengeOAuth?.errorDescription,
      extensions: {},
      oauthError: challengeOAuth
    })
  }

  const problem = decoded.value
  const extensions = Object.fromEntries(
    Object.entries(problem).filter(([name]) => !(standardMembers as ReadonlyArray<string>).includes(name))
  )
  // RFC 9457 section 3.1.2: the `status` member is advisory, and a proxy may
  // have changed the real one. `status` is therefore always the response's;
  // a member that disagrees is kept in `extensions` (one that agrees is
  // redundant and dropped), so that the disagreement can be seen.
  if (problem.status !== undefined && problem.status !== status) extensions.status = problem.status

  const bodyOAuth = oauthFromBody(json)
  const oauthError = bodyOAuth ?? challengeOAuth
  // A problem object is one served as problem+json, or one with at least one
  // RFC 9457 member of the right type, whatever the content type (servers
  // label problems `application/json`). Members of the wrong type were dropped
  // by the schema (RFC 9457 section 3.1) and do not count.
  const isProblem =
    isProblemContentType(contentTypeOf(input.headers)) ||
    typeof json.type === "string" ||
    standardMembers.some((name) => name !== "type" && problem[name] !== undefined)

  if (isProblem) {
    const type = problem.type
    return new ProblemDetailsError({
      ...common,
      type,
      title: problem.title ?? (type === ProblemDetails.blankType ? reason : undefined),
      detail: problem.detail ?? oauthError?.errorDescription,
      instance: problem.instance,
      extensions,
      oauthError
    })
  }
  // An RFC 6749 section 5.2 style body, a challenge, or just some JSON object:
  // an `about:blank` problem whose detail is the OAuth description.
  return new ProblemDetailsError({
    ...common,
    type: ProblemDetails.blankType,
    title: reason,
    detail: oauthError?.errorDescription,
    extensions,
    oauthError
  })
}

/**
 * Turns an HTTP error response into a `ProblemDetailsError`. Pure, and never
 * throws. In order of precedence, the body is:
 * 1. a problem object (RFC 9457): a JSON object served as
 *    `application/problem+json`, or with a `type`, `title`, `detail`, `status`
 *    or `instance` member under any content type; read leniently (trailing
 *    commas, a BOM, members of the wrong type dropped);
 * 2. an OAuth error object, `{"error": "...", "error_description": "..."}`;
 * 3. anything else (HTML, empty, `null`, an array, garbage), when the
 *    `WWW-Authenticate` header has a `Bearer error="..."` challenge
 *    (RFC 6750 section 3): its error;
 * 4. a bare problem: `about:blank` with the HTTP reason phrase as title.
 *
 * A body's members always win; a challenge fills `oauthError` (and an absent
 * `detail`) when the body had none.
 *
 * @example
 * ```ts
 * const problem = Problem.parse({
 *   status: 401,
 *   headers: new Headers({ "www-authenticate": 'Bearer error="invalid_token"' }),
 *   body: ""
 * })
 * problem.oauthError?.error // "invalid_token"
 * problem.message // "HTTP 401 Unauthorized: invalid_token"
 * ```
 *
 * @since 0.1.0
 */
export const parse = (input: ParseInput): ProblemDetailsError => {
  try {
    return build(input, true)
  } catch {
    // Unreachable for well-typed input; a caller's odd `Headers` or getters must not make us throw.
    return bare(input)
  }
}

const bare = (input: Partial<ParseInput> | undefined): ProblemDetailsError => {
  const status = typeof input?.status === "number" ? input.status : 0
  return new ProblemDetailsError({
    status,
    type: ProblemDetails.blankType,
    title: reasonPhrase(status),
    extensions: {},
    body: typeof input?.body === "string" ? redactText(input.body, secretsFor(input)) : "",
    method: typeof input?.method === "string" ? input.method : undefined,
    url: redactUrl(input?.url)
  })
}

interface BodyRead {
  readonly text: string
  /** the whole body was read: not over the cap, no error, no timeout */
  readonly complete: boolean
}

/** Reads at most `max` bytes of the body within `timeoutMillis`; cancels the rest. Never rejects. */
const readCapped = async (response: Response, max: number, timeoutMillis: number): Promise<BodyRead> => {
  let reader: ReadableStreamDefaultReader<Uint8Array>
  try {
    const stream = response.body
    if (stream === null) return { text: "", complete: true }
    reader = stream.getReader()
  } catch {
    return { text: "", complete: false } // a body already used or locked
  }
  // `stream: true` holds back a multi-byte character cut by the cap.
  const decoder = new TextDecoder()
  const parts: Array<string> = []
  let total = 0
  let complete = false
  let timer: ReturnType<typeof setTimeout> | undefined
  const deadline = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), timeoutMillis)
  })
  try {
    for (;;) {
      const result = await Promise.race([reader.read(), deadline])
      if (result === "timeout") break
      if (result.done) {
        parts.push(decoder.decode())
        complete = true
        break
      }
      const chunk: unknown = result.value
      if (!(chunk instanceof Uint8Array)) break
      const room = max - total
      if (chunk.byteLength > room) {
        parts.push(decoder.decode(chunk.subarray(0, room), { stream: true }))
        total = max
        break
      }
      total += chunk.byteLength
      parts.push(decoder.decode(chunk, { stream: true }))
    }
  } catch {
    // a read error: keep what arrived
  } finally {
    clearTimeout(timer)
    if (!complete) {
      // Not awaited: a source whose cancel never settles must not hang us.
      try {
        reader.cancel().catch(() => {})
      } catch {
        // already released
      }
    }
  }
  return { text: parts.join(""), complete }
}

const positiveOr = (value: number | undefined, fallback: number): number =>
  typeof value === "number" && value >= 0 && !Number.isNaN(value) ? Math.floor(value) : fallback

/**
 * Reads an error response's body and `parse`s it. The body is read as a stream
 * up to `maxBodyBytes` (default 64 KiB) and for at most `timeoutMillis`
 * (default 10 s); past either, the stream is cancelled and the text received
 * so far is kept in `body`. Only a body read whole is parsed as JSON: an
 * oversized, failed or late body gives a bare problem (the `WWW-Authenticate`
 * header is still read). Never rejects.
 *
 * @example
 * ```ts
 * const res = await fetch("https://platform.uat.benefits.wexglobal.com/api/v1/consumers/12345", {
 *   headers: { authorization: token.authorization() }
 * })
 * if (!res.ok) throw await Problem.fromResponse(res, { method: "GET", url: res.url })
 * ```
 *
 * @since 0.1.0
 */
export const fromResponse = async (
  response: Response,
  options?: FromResponseOptions
): Promise<ProblemDetailsError> => {
  const method = options?.method
  const url = options?.url
  let status = 0
  let headers = new Headers()
  try {
    status = response.status
    headers = response.headers
    const max = positiveOr(options?.maxBodyBytes, DEFAULT_MAX_BODY_BYTES)
    const timeoutMillis = positiveOr(options?.timeoutMillis, DEFAULT_TIMEOUT_MILLIS)
    const read = await readCapped(response, max, timeoutMillis)
    return build({ status, headers, body: read.text, method, url, secrets: options?.secrets }, read.complete)
  } catch {
    return bare({ status, headers, body: "", method, url })
  }
}
