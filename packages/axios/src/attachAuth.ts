/**
 * `attachAuth(instance, tokens, options)`: OAuth 2.0 bearer tokens for an
 * axios instance, with the request policy of `@authfetch/core` (not a second
 * implementation of it).
 *
 * How it plugs in: one request interceptor wraps `config.adapter` (whatever
 * the request resolved to, `http`, `fetch` or a custom one). The wrapper runs
 * core's `authFetch` with a `fetch` that is a translation of the real axios
 * adapter: core decides everything (allowed origins, the token per redirect
 * hop, the one replay after a 401 with single-flight token renewal, retries by
 * `RetryPolicy.decide` with the shared `RetryBudget`, `Retry-After`, timeouts,
 * caller aborts, request events) and the adapter only carries bytes.
 *
 * Why the adapter and not a response interceptor: a response interceptor runs
 * after axios has built the `AxiosError` from a config that holds the token,
 * and replaying from it re-runs every interceptor and `transformRequest` (the
 * double-serialisation trap of interceptor-based retry plugins). Below the
 * interceptors, retries and replays are invisible to them: user interceptors
 * run once per call and see only the final response or error.
 *
 * What keeps the token out of logs: the `Authorization` header exists only on
 * a per-hop copy of the config handed to the real adapter. `config`,
 * `error.config`, `response.config` are the caller's config and never hold it.
 * `error.request` and `response.request` are a `RequestSummary` instead of the
 * `ClientRequest` (whose `_header` holds the token) or fetch `Request`; the
 * transport request itself is scrubbed in place once answered (`_header`,
 * `kOutHeaders`), for `responseType: "stream"` bodies that still point at it.
 *
 * @example
 * ```ts
 * import axios from "axios"
 * import { createTokenSource } from "@authfetch/core"
 * import { attachAuth } from "@authfetch/axios"
 *
 * const tokens = createTokenSource({ tokenUrl, clientId, clientSecret })
 * const api = axios.create({ baseURL: "https://platform.uat.benefits.wexglobal.com/api", timeout: 10_000 })
 * const detach = attachAuth(api, tokens, { onEvent: (event) => logger.info(event) })
 * const { data } = await api.get("/v1/consumers/12345")
 * detach()
 * ```
 *
 * @since 0.1.0
 */
import {
  type AccessToken,
  authFetch,
  Bearer,
  Config,
  InvalidConfigError,
  isTokens,
  Middleware,
  Problem,
  type ProblemDetailsError,
  RedirectError,
  type RequestEvent,
  RequestTimeoutError,
  RetriesExhaustedError,
  RetryPolicy,
  type Tokens
} from "@authfetch/core"
import axios, {
  type AxiosAdapter,
  AxiosError,
  AxiosHeaders,
  type AxiosInstance,
  type AxiosResponse,
  CanceledError,
  type InternalAxiosRequestConfig,
  isAxiosError,
  isCancel
} from "axios"
import { RequestSummary } from "./RequestSummary.ts"

const { kindOf } = Config

/**
 * Options of `attachAuth`.
 *
 * @since 0.1.0
 */
export interface AttachAuthOptions {
  /**
   * origins (or URLs whose origin is taken) allowed the token; default: the
   * origin of `instance.defaults.baseURL`. `https:` only, `http:` for loopback
   * hosts. The token goes nowhere else, redirects included.
   */
  readonly origins?: ReadonlyArray<string | URL> | undefined
  /**
   * core's retry options (`maxRetries`, `baseDelay`, `maxDelay`, `maxRetryAfter`,
   * `statuses`, `maxElapsed`, `budget`), or `false` to send each request once
   * (the one replay after a `401` still happens). The retry budget is shared
   * by every request of the attached instance.
   */
  readonly retry?: RetryPolicy.RequestRetryOptions | false | undefined
  /** core's `RequestEvent`s: retries, 401 replays, give-ups, dropped authorization on redirects */
  readonly onEvent?: ((event: RequestEvent) => void) | undefined
  /**
   * `true`: requests that carry their own `Authorization`, the instance's
   * defaults included, are sent as they are (no token, no `401` replay).
   * Without it, an instance whose defaults set `Authorization` (top-level,
   * `common` or per method), `auth` or credentials in `baseURL` is refused
   * with `InvalidConfigError`, at `attachAuth` and on any request made after
   * such a default appears: every request would carry that header and none
   * would get a token. A request's own `Authorization` is always left alone.
   */
  readonly keepAuthorization?: boolean | undefined
}

/**
 * Removes what `attachAuth` installed. Idempotent. Requests already in flight
 * finish under the policy; requests started afterwards (including a re-sent
 * `error.config`) carry no token and are not retried.
 *
 * @since 0.1.0
 */
export type Detach = () => void

/**
 * An `AxiosError` for an HTTP error response, with the response parsed as a
 * problem (RFC 9457/7807 problem+json, OAuth error JSON, `WWW-Authenticate`).
 *
 * @since 0.1.0
 */
export type AxiosProblemError<T = unknown, D = any> = AxiosError<T, D> & {
  readonly problem: ProblemDetailsError
}

/**
 * The parsed problem of an error response that went through `attachAuth`, or
 * `undefined` (other errors, other values).
 *
 * @example
 * ```ts
 * try {
 *   await api.get("/v1/consumers/12345")
 * } catch (error) {
 *   const problem = problemOf(error)
 *   if (problem) console.error(problem.status, problem.title, problem.detail)
 * }
 * ```
 *
 * @since 0.1.0
 */
export const problemOf = (error: unknown): ProblemDetailsError | undefined =>
  hasProblem(error) ? error.problem : undefined

/**
 * Whether `error` is an `AxiosError` carrying a parsed `problem`.
 *
 * @example
 * ```ts
 * if (hasProblem(error) && error.problem.oauthError?.error === "insufficient_scope") askForScope()
 * ```
 *
 * @since 0.1.0
 */
export const hasProblem = (error: unknown): error is AxiosProblemError => {
  if (!isAxiosError(error)) return false
  const problem = (error as { problem?: unknown }).problem
  return (
    typeof problem === "object" &&
    problem !== null &&
    (problem as { _tag?: unknown })._tag === "ProblemDetailsError"
  )
}

interface Policy {
  readonly instance: AxiosInstance
  readonly tokens: Tokens
  readonly origins: ReadonlyArray<string | URL>
  readonly retry: RetryPolicy.RequestRetryOptions | false
  readonly onEvent: ((event: RequestEvent) => void) | undefined
  readonly keepAuthorization: boolean
  /** a fresh token without I/O, when the source can tell (the hot path); `undefined`: none */
  readonly peek: (() => AccessToken | undefined) | undefined
  readonly isAllowed: (url: URL) => boolean
  /** the wrapper made for each adapter a request resolved to (one per adapter, not per request) */
  readonly wrapped: Map<unknown, AxiosAdapter>
  detached: boolean
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

/** An axios instance, or anything shaped like one (axios instances are functions). */
const isAxiosInstance = (value: unknown): value is AxiosInstance => {
  if ((typeof value !== "function" && typeof value !== "object") || value === null) return false
  const { interceptors, defaults } = value as {
    interceptors?: { request?: { use?: unknown } }
    defaults?: unknown
  }
  return typeof interceptors?.request?.use === "function" && isRecord(defaults)
}

/** The problems with `attachAuth`'s arguments, each naming the argument. */
const argumentProblems = (instance: unknown, tokens: unknown, options: unknown): Array<string> => {
  const problems: Array<string> = []
  if (!isAxiosInstance(instance)) {
    problems.push(
      `attachAuth: \`instance\` must be an axios instance (axios.create(...): interceptors.request.use and defaults), got ${kindOf(instance)}`
    )
  }
  if (!isTokens(tokens)) {
    problems.push(
      `attachAuth: \`tokens\` must be a token source (createTokenSource(...), with getToken and invalidate; or core's Effect TokenSource, with get and invalidate), got ${kindOf(tokens)}`
    )
  }
  if (options === undefined) return problems
  if (!isRecord(options)) {
    problems.push(`attachAuth: \`options\` must be an object or undefined, got ${kindOf(options)}`)
    return problems
  }
  const { origins, retry, onEvent, keepAuthorization } = options
  if (
    origins !== undefined &&
    !(
      Array.isArray(origins) && origins.every((origin) => typeof origin === "string" || origin instanceof URL)
    )
  ) {
    problems.push("attachAuth: `options.origins` must be an array of origins (strings or URLs)")
  }
  if (retry !== undefined && retry !== false && !isRecord(retry)) {
    problems.push(
      `attachAuth: \`options.retry\` must be retry options (an object) or false, got ${kindOf(retry)}`
    )
  }
  if (onEvent !== undefined && typeof onEvent !== "function") {
    problems.push(`attachAuth: \`options.onEvent\` must be a function, got ${kindOf(onEvent)}`)
  }
  if (keepAuthorization !== undefined && typeof keepAuthorization !== "boolean") {
    problems.push(
      `attachAuth: \`options.keepAuthorization\` must be a boolean, got ${kindOf(keepAuthorization)}`
    )
  }
  return problems
}

/**
 * Where the instance's defaults give every request credentials of its own
 * (`Authorization` at the top level, in `common` or for a method, `auth`, or
 * `user:password@` in `baseURL`): names only, never values.
 */
const defaultCredentials = (defaults: AxiosInstance["defaults"]): Array<string> => {
  const found: Array<string> = []
  const headers: unknown = defaults.headers
  if (isRecord(headers)) {
    for (const name of Object.keys(headers)) {
      const value = headers[name]
      if (name.toLowerCase() === "authorization") {
        if (value !== undefined && value !== null) found.push(`instance.defaults.headers.${name}`)
      } else if (isRecord(value)) {
        for (const inner of Object.keys(value)) {
          if (
            inner.toLowerCase() === "authorization" &&
            value[inner] !== undefined &&
            value[inner] !== null
          ) {
            found.push(`instance.defaults.headers.${name}.${inner}`)
          }
        }
      }
    }
  }
  if (defaults.auth) found.push("instance.defaults.auth")
  if (typeof defaults.baseURL === "string" && /^[a-z][a-z\d+.-]*:\/\/[^/?#]*@/i.test(defaults.baseURL)) {
    found.push("instance.defaults.baseURL (credentials in the URL)")
  }
  return found
}

const defaultCredentialsError = (found: ReadonlyArray<string>): InvalidConfigError =>
  new InvalidConfigError({
    problems: [
      `attachAuth: ${found.join(", ")} gives every request of this instance its own Authorization, so no request would get a token. Remove it (attachAuth sets the token: delete instance.defaults.headers.common.Authorization and the like), or pass { keepAuthorization: true } if requests that carry their own Authorization are meant to be sent as they are`
    ]
  })

type AdapterConfig = InternalAxiosRequestConfig["adapter"]

/** Which policy owns an instance, keyed by its request interceptor manager (the instance's own state). */
const attachments = new WeakMap<object, Policy>()
/** The adapters we built: their policy and what they wrap. */
const wrappers = new WeakMap<object, { readonly policy: Policy; readonly original: AdapterConfig }>()

/**
 * Installs the policy on an axios instance and returns the function that
 * removes it. Throws `InvalidConfigError` for arguments that are not an axios
 * instance, a token source and options (each problem naming the argument),
 * when the instance's defaults carry `Authorization` (see
 * `keepAuthorization`), when no origin is allowed (no `baseURL` and no
 * `origins`), when an origin is neither `https:` nor loopback `http:`, and
 * when the instance is already attached (a second policy would retry retries
 * and replay replays: detach first).
 *
 * @example
 * ```ts
 * const api = axios.create({ baseURL: "https://api.example.com" })
 * const detach = attachAuth(api, tokens, { retry: { maxRetries: 3 } })
 * ```
 *
 * @since 0.1.0
 */
export const attachAuth = (
  instance: AxiosInstance,
  tokens: Tokens,
  options: AttachAuthOptions = {}
): Detach => {
  const problems = argumentProblems(instance, tokens, options)
  if (problems.length > 0) throw new InvalidConfigError({ problems })
  const interceptors = instance.interceptors.request
  if (attachments.has(interceptors)) {
    throw new InvalidConfigError({
      problems: [
        "attachAuth: this axios instance is already attached; call the function the first attachAuth returned before attaching again"
      ]
    })
  }
  const keepAuthorization = options.keepAuthorization === true
  if (!keepAuthorization) {
    const found = defaultCredentials(instance.defaults)
    if (found.length > 0) throw defaultCredentialsError(found)
  }
  const baseURL = instance.defaults.baseURL
  const origins = options.origins ?? (baseURL ? [baseURL] : [])
  const retry = RetryPolicy.withBudget(options.retry)
  if (origins.length === 0) {
    throw new InvalidConfigError({
      problems: ["attachAuth needs instance.defaults.baseURL or options.origins: the token goes nowhere else"]
    })
  }
  // Checks the origins now (https:, loopback http:; InvalidConfigError), not on the first request.
  authFetch(tokens, { origins, retry, onEvent: options.onEvent })

  const peek = "peek" in tokens && typeof tokens.peek === "function" ? tokens.peek.bind(tokens) : undefined
  const policy: Policy = {
    instance,
    tokens,
    origins,
    retry,
    onEvent: options.onEvent,
    keepAuthorization,
    peek,
    isAllowed: Bearer.originMatcher(origins),
    wrapped: new Map(),
    detached: false
  }
  const id = interceptors.use(
    (config) => {
      const known = wrappers.get(config.adapter as object)
      if (known?.policy === policy) return config
      // A config re-sent from an error of a detached policy: wrap what it wrapped.
      const original = known ? known.original : config.adapter
      let adapter = policy.wrapped.get(original)
      if (adapter === undefined) {
        adapter = wrap(policy, original)
        policy.wrapped.set(original, adapter)
      }
      config.adapter = adapter
      return config
    },
    undefined,
    { synchronous: true }
  )
  attachments.set(interceptors, policy)
  return () => {
    if (policy.detached) return
    policy.detached = true
    interceptors.eject(id)
    if (attachments.get(interceptors) === policy) attachments.delete(interceptors)
  }
}

const wrap = (policy: Policy, original: AdapterConfig): AxiosAdapter => {
  const adapter: AxiosAdapter = (config) => {
    const real = axios.getAdapter(original ?? axios.defaults.adapter, config)
    return policy.detached ? real(config) : send(policy, real, config)
  }
  Object.defineProperty(adapter, "name", { value: "authfetchAdapter" })
  wrappers.set(adapter, { policy, original })
  return adapter
}

/** What the wire answered for one hop, found again from the `Response` core hands back. */
interface Answer {
  readonly raw: AxiosResponse
  readonly summary: RequestSummary
}

/**
 * Stands for "the caller owns `Authorization` on this request": `config.auth`
 * or userinfo in the URL (axios sets a Basic header itself), or
 * `Authorization: false` (axios's way to say "no such header"). Core leaves a
 * request that carries its own `Authorization` alone, and drops it when a
 * redirect changes origin; the wire never sends this value.
 */
const CALLER_AUTHORIZATION = "authfetch-axios-caller-authorization"

const send = (
  policy: Policy,
  adapter: AxiosAdapter,
  config: InternalAxiosRequestConfig
): Promise<AxiosResponse> => {
  if (!policy.keepAuthorization) {
    // A default set after attachAuth (as axios-auth-refresh setups do on login) would silence the policy.
    const found = defaultCredentials(policy.instance.defaults)
    if (found.length > 0) return Promise.reject(defaultCredentialsError(found))
  }
  return sendFast(policy, adapter, config) ?? sendThroughCore(policy, adapter, config, undefined)
}

/** The first send of the hot path, handed to core (`Middleware.FIRST_SEND`) when core acts on it. */
type HandedOver =
  | { readonly token: AccessToken; readonly raw: AxiosResponse; readonly authorization: string }
  | { readonly token: AccessToken; readonly failure: "network"; readonly cause: unknown }
  | { readonly token: AccessToken; readonly failure: "timeout"; readonly timeoutMillis: number }

/**
 * The hot path, the adapter's twin of core's `authFetch` fast path: a fresh
 * token in memory (`peek`), an allowed origin, no credentials of the caller's
 * and a body axios can send again. The request goes to the real adapter once,
 * with the token on a copy of the config (`maxRedirects: 0`, `validateStatus:
 * null`, axios's own timeout as the attempt's), and its answer is judged by
 * core's predicates: a final one is settled here (the retry budget credited
 * as core's retry step would); a `401`, a redirect to follow, a retryable
 * status, a network failure or a timeout goes to core's pipeline as the first
 * hop already sent, so nothing is sent twice and every decision stays core's.
 * `undefined`: the call does not qualify, core runs it from the start.
 *
 * Why: the full path translates each call to fetch and back (`Headers`,
 * `Response`, a per-call `authFetch` over a per-call wire); on a loopback
 * request that cost more than the request itself (bench case 1).
 */
const sendFast = (
  policy: Policy,
  adapter: AxiosAdapter,
  config: InternalAxiosRequestConfig
): Promise<AxiosResponse> | undefined => {
  const token = policy.peek?.()
  if (token === undefined || config.auth || !isReplayable(config.data)) return undefined
  const headers = config.headers
  if (!(headers instanceof AxiosHeaders) || headers.has("authorization")) return undefined
  const target = targetOf(config)
  if (target === undefined || target.username !== "" || target.password !== "" || !policy.isAllowed(target)) {
    return undefined
  }
  const authorization = token.authorization()
  const hopHeaders = new AxiosHeaders(headers)
  hopHeaders.set("Authorization", authorization)
  // The only config that holds the token: handed to the real adapter, dropped when it settles.
  const hopConfig: InternalAxiosRequestConfig = {
    ...config,
    headers: hopHeaders,
    maxRedirects: 0,
    validateStatus: null
  }
  const follows = config.maxRedirects !== 0
  const method = (config.method ?? "get").toUpperCase()
  const handOver = (first: HandedOver) => sendThroughCore(policy, adapter, config, first)
  return adapter(hopConfig).then(
    (raw) => {
      scrubTransport(raw.request, authorization)
      const location = raw.status >= 300 && raw.status < 400 && hasHeader(raw.headers, "location")
      if (raw.status === 401 || (follows && location) || isRetryable(policy, raw.status)) {
        return handOver({ token, raw, authorization })
      }
      if (policy.retry !== false && policy.retry.budget) policy.retry.budget.deposit()
      removeEchoedToken(raw, authorization)
      return settle(config, raw, summaryOf(policy, method, raw.request, config))
    },
    (error: unknown) => {
      if (isAxiosError(error)) {
        scrubTransport(error.request, authorization)
        sanitize(error, config, summaryOf(policy, method, error.request, config))
      }
      if (isTimeout(error)) {
        return handOver({ token, failure: "timeout", timeoutMillis: Number(config.timeout) })
      }
      if (isTransportFailure(error)) {
        return handOver({ token, failure: "network", cause: new TypeError("fetch failed", { cause: error }) })
      }
      throw error
    }
  )
}

/** Bodies axios sends the same way every time (what `transformRequest` makes of JSON, forms and bytes). */
const isReplayable = (data: unknown): boolean =>
  data === undefined ||
  data === null ||
  typeof data === "string" ||
  data instanceof ArrayBuffer ||
  ArrayBuffer.isView(data) ||
  data instanceof URLSearchParams

/**
 * The URL a request goes to, as axios's `buildFullPath` makes it (`baseURL`
 * and a relative `url` joined, an absolute `url` as it is unless
 * `allowAbsoluteUrls: false`), without `params` (they change no origin), for
 * the origin check; `undefined` when it is not an absolute URL.
 */
const targetOf = (config: InternalAxiosRequestConfig): URL | undefined => {
  const url = config.url ?? ""
  const absolute = /^([a-z][a-z\d+\-.]*:)?\/\//i.test(url)
  const base = config.baseURL
  const full =
    base && (!absolute || config.allowAbsoluteUrls === false)
      ? url
        ? `${base.replace(/\/?\/$/, "")}/${url.replace(/^\/+/, "")}`
        : base
      : url
  if (!URL.canParse(full)) return undefined
  const parsed = new URL(full)
  return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed : undefined
}

const isRetryable = (policy: Policy, status: number): boolean =>
  policy.retry !== false && RetryPolicy.isRetryableStatus(status, policy.retry)

/** An attempt that axios timed out (its `timeout`), as opposed to one the caller cancelled. */
const isTimeout = (error: unknown): boolean =>
  isAxiosError(error) &&
  !isCancel(error) &&
  error.response === undefined &&
  (error.code === AxiosError.ETIMEDOUT ||
    (error.code === AxiosError.ECONNABORTED && /timeout/i.test(error.message)))

const hasHeader = (headers: unknown, name: string): boolean =>
  headers instanceof AxiosHeaders
    ? headers.has(name)
    : typeof headers === "object" && headers !== null && name in (headers as Record<string, unknown>)

/**
 * What the transport request says it sent (a Node `ClientRequest`'s protocol,
 * host and path; a fetch `Request`'s URL), as a `RequestSummary`; axios's own
 * `getUri` when it says nothing usable.
 */
const summaryOf = (
  policy: Policy,
  method: string,
  request: unknown,
  config: InternalAxiosRequestConfig
): RequestSummary => {
  const sent = request as { protocol?: unknown; host?: unknown; path?: unknown; url?: unknown } | null
  const href =
    typeof sent?.protocol === "string" && typeof sent.host === "string" && typeof sent.path === "string"
      ? `${sent.protocol}//${sent.host}${sent.path}`
      : typeof sent?.url === "string"
        ? sent.url
        : undefined
  if (href !== undefined && URL.canParse(href)) return new RequestSummary(method, new URL(href))
  return new RequestSummary(method, new URL(policy.instance.getUri(config)))
}

/**
 * An API that echoes the bearer token must not get it into `error.response`:
 * axios keeps the body in `data`, which core never sees, so the token is
 * removed here (a Node stream body is the caller's and is left unread).
 */
const removeEchoedToken = (raw: AxiosResponse, authorization: string | null): void => {
  if (authorization === null || authorization === CALLER_AUTHORIZATION || raw.status < 400) return
  const token = authorization.slice(authorization.indexOf(" ") + 1)
  raw.data = Bearer.removeToken(raw.data, token)
  const cleaned = AxiosHeaders.from(raw.headers as Record<string, string>)
  for (const [name, value] of Object.entries(cleaned.toJSON())) {
    if (typeof value === "string") cleaned.set(name, Bearer.removeToken(value, token))
  }
  raw.headers = cleaned
}

/** The full path: core's `authFetch` over a wire that is the real adapter, per call. */
const sendThroughCore = async (
  policy: Policy,
  adapter: AxiosAdapter,
  config: InternalAxiosRequestConfig,
  first: HandedOver | undefined
): Promise<AxiosResponse> => {
  let url: URL
  try {
    url = new URL(policy.instance.getUri(config))
  } catch {
    return adapter(config) // not an absolute URL: axios reports it; no origin of ours anyway
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return adapter(config) // data: URLs

  const method = (config.method ?? "get").toUpperCase()
  const summary = new RequestSummary(method, url)
  const casing = new Map<string, string>()
  const suppressed: Array<string> = []
  let headers: Headers
  try {
    headers = requestHeaders(config.headers, casing, suppressed)
  } catch (error) {
    throw AxiosError.from(error, AxiosError.ERR_BAD_OPTION_VALUE, config)
  }
  const ownCredentials = Boolean(config.auth) || url.username !== "" || url.password !== ""
  const noAuthorization = suppressed.some((name) => name.toLowerCase() === "authorization")
  if ((ownCredentials || noAuthorization) && !headers.has("authorization")) {
    headers.set("authorization", CALLER_AUTHORIZATION)
  }

  const answers = new WeakMap<Response, Answer>()
  const wire = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const hop = new URL(input instanceof Request ? input.url : String(input))
    const hopMethod = (init?.method ?? "GET").toUpperCase()
    const hopHeaders = new Headers(init?.headers)
    const authorization = hopHeaders.get("authorization")
    const keepsCredentials = ownCredentials && authorization !== null
    if (authorization === CALLER_AUTHORIZATION) hopHeaders.delete("authorization")
    const inner = new AxiosHeaders()
    for (const [name, value] of hopHeaders) inner.set(casing.get(name) ?? name, value)
    for (const name of suppressed) if (!hopHeaders.has(name)) inner.set(name, false)
    if (!keepsCredentials) {
      hop.username = ""
      hop.password = ""
    }
    const hopSummary = new RequestSummary(hopMethod, hop)
    // The only config that ever holds the token: built per hop, handed to the
    // real adapter, dropped when it settles.
    const hopConfig: InternalAxiosRequestConfig = {
      ...config,
      url: hop.href,
      allowAbsoluteUrls: true,
      method: hopMethod.toLowerCase(),
      headers: inner,
      // core times attempts, follows redirects and judges statuses
      timeout: 0,
      maxRedirects: 0,
      validateStatus: null
    }
    for (const key of ["baseURL", "params", "data", "signal", "cancelToken", "auth"] as const)
      delete hopConfig[key]
    if (init?.body !== undefined && init.body !== null) hopConfig.data = init.body
    if (init?.signal) hopConfig.signal = init.signal
    if (keepsCredentials && config.auth) hopConfig.auth = config.auth
    let raw: AxiosResponse
    try {
      raw = await adapter(hopConfig)
    } catch (error) {
      if (isAxiosError(error)) {
        scrubTransport(error.request, authorization)
        sanitize(error, config, hopSummary)
      }
      // Fetch standard: a network error is a `TypeError`, and core retries only
      // those. Anything else axios raises (a bad option, a body it cannot send,
      // a size limit) is an answer: thrown as it is, neither retried nor replayed.
      if (isTransportFailure(error)) throw new TypeError("fetch failed", { cause: error })
      throw error
    }
    scrubTransport(raw.request, authorization)
    return record(raw, authorization, hopSummary)
  }
  /** What core sees of one hop's answer, and the way back to it. */
  const record = (raw: AxiosResponse, authorization: string | null, hopSummary: RequestSummary): Response => {
    removeEchoedToken(raw, authorization)
    const response = toResponse(raw, toWebHeaders(raw.headers))
    // core leaves the response as it is: it is the key to `raw`, and `raw` is clean already
    Object.defineProperty(response, Bearer.TOKEN_REMOVED, { value: true })
    answers.set(response, { raw, summary: hopSummary })
    return response
  }

  const abort = linkAbort(config, summary)
  const maxRedirects = config.maxRedirects
  const timeout = Number(config.timeout)
  const call = authFetch(policy.tokens, {
    origins: policy.origins,
    retry: policy.retry,
    onEvent: policy.onEvent,
    fetch: wire,
    attemptTimeout: timeout > 0 ? timeout : false,
    maxRedirects: maxRedirects !== undefined && maxRedirects > 0 ? maxRedirects : undefined
  })
  // the hot path's send, as core's first hop: its answer recorded like the wire's
  const firstSend: Middleware.FirstSend | undefined =
    first === undefined
      ? undefined
      : "raw" in first
        ? {
            token: first.token,
            response: record(first.raw, first.authorization, new RequestSummary(method, url))
          }
        : first
  try {
    const response = await call(url.href, {
      method,
      headers,
      body: (config.data ?? null) as BodyInit | null,
      redirect: maxRedirects === 0 ? "manual" : "follow",
      ...(abort ? { signal: abort.signal } : {}),
      ...(firstSend === undefined ? {} : { [Middleware.FIRST_SEND]: firstSend })
    })
    const answer = answers.get(response)
    if (answer === undefined) {
      throw new AxiosError(
        "authfetch: a response the adapter did not send",
        AxiosError.ERR_BAD_RESPONSE,
        config
      )
    }
    return await settle(config, answer.raw, answer.summary)
  } catch (error) {
    throw translate(error, config, summary)
  } finally {
    abort?.done()
  }
}

/** axios's `settle`, with the caller's config, a `RequestSummary`, and the parsed problem. */
const settle = async (
  config: InternalAxiosRequestConfig,
  raw: AxiosResponse,
  summary: RequestSummary
): Promise<AxiosResponse> => {
  const response: AxiosResponse = {
    data: raw.data,
    status: raw.status,
    statusText: raw.statusText,
    headers: raw.headers,
    config,
    request: summary
  }
  const validateStatus = config.validateStatus
  if (!response.status || !validateStatus || validateStatus(response.status)) return response
  const error = new AxiosError(
    `Request failed with status code ${response.status}`,
    response.status >= 400 && response.status < 500
      ? AxiosError.ERR_BAD_REQUEST
      : AxiosError.ERR_BAD_RESPONSE,
    config,
    summary,
    response
  )
  const problem = Problem.parse({
    status: response.status,
    headers: toWebHeaders(raw.headers),
    body: await bodyText(raw.data),
    method: summary.method,
    url: summary.url
  })
  Object.assign(error, { problem })
  throw error
}

/** core's failures in axios's words; token errors stay core's typed errors. */
const translate = (error: unknown, config: InternalAxiosRequestConfig, summary: RequestSummary): unknown => {
  if (error instanceof RetriesExhaustedError) return translate(error.cause, config, summary)
  if (error instanceof RequestTimeoutError) {
    const transitional = config.transitional
    const timedOut = new AxiosError(
      config.timeoutErrorMessage || `timeout of ${config.timeout}ms exceeded`,
      transitional?.clarifyTimeoutError ? AxiosError.ETIMEDOUT : AxiosError.ECONNABORTED,
      config,
      summary
    )
    Object.defineProperty(timedOut, "cause", { value: error, writable: true, configurable: true })
    return timedOut
  }
  if (error instanceof RedirectError) {
    const tooMany = error.reason === "too_many"
    const redirectError = new AxiosError(
      tooMany ? "Maximum number of redirects exceeded" : error.message,
      tooMany ? AxiosError.ERR_FR_TOO_MANY_REDIRECTS : AxiosError.ERR_BAD_RESPONSE,
      config,
      summary
    )
    Object.defineProperty(redirectError, "cause", { value: error, writable: true, configurable: true })
    return redirectError
  }
  // a transport failure we wrapped for core (see the wire)
  if (error instanceof TypeError && isAxiosError(error.cause)) return error.cause
  return error
}

/** A transport failure (worth core's retry rules), as opposed to an error axios raised itself. */
const isTransportFailure = (error: unknown): boolean => {
  if (!isAxiosError(error) || error.response !== undefined || isCancel(error)) return false
  const code = error.code
  return code === AxiosError.ERR_NETWORK || (typeof code === "string" && !code.startsWith("ERR_"))
}

/** Points an adapter's error at the caller's config and a summary, causes included. */
const sanitize = (error: AxiosError, config: InternalAxiosRequestConfig, summary: RequestSummary): void => {
  let current: unknown = error
  for (let depth = 0; depth < 5 && isAxiosError(current); depth++) {
    current.config = config
    if (current.request !== undefined) current.request = summary
    if (current.response) {
      current.response.config = config
      current.response.request = summary
    }
    current = current.cause
  }
}

const REDACTED = "[REDACTED]"

/**
 * Removes the `Authorization` value from a transport request that is done with
 * it: a Node `ClientRequest` keeps it in `_header` (the serialized head) and in
 * its `kOutHeaders` map; a fetch `Request` in `headers`. Best effort: these
 * objects are not ours, and `RequestSummary` already keeps them out of errors.
 */
const scrubTransport = (request: unknown, authorization: string | null): void => {
  if (authorization === null || typeof request !== "object" || request === null) return
  try {
    const target = request as Record<PropertyKey, unknown>
    if (typeof target._header === "string")
      target._header = target._header.split(authorization).join(REDACTED)
    for (const symbol of Object.getOwnPropertySymbols(target)) {
      if (symbol.description !== "kOutHeaders") continue
      const map = target[symbol] as Record<string, [string, unknown]> | null | undefined
      const entry = map?.authorization
      if (map && entry) map.authorization = [entry[0], REDACTED]
    }
    if (typeof Headers !== "undefined" && target.headers instanceof Headers)
      target.headers.delete("authorization")
  } catch {
    // A transport object we do not know: nothing to scrub.
  }
}

/** The caller's axios headers as fetch `Headers`; names' case and `false` (suppressed) entries remembered. */
const requestHeaders = (
  headers: unknown,
  casing: Map<string, string>,
  suppressed: Array<string>
): Headers => {
  const out = new Headers()
  if (typeof headers !== "object" || headers === null) return out
  for (const name of Object.keys(headers)) {
    const value = (headers as Record<string, unknown>)[name]
    if (value === false) {
      suppressed.push(name)
      continue
    }
    if (value === null || value === undefined) continue
    for (const item of Array.isArray(value) ? value : [value]) out.append(name, String(item))
    casing.set(name.toLowerCase(), name)
  }
  return out
}

/** Response headers as fetch `Headers`, for core's policy (`Location`, `Retry-After`) and `Problem.parse`. */
const toWebHeaders = (headers: unknown): Headers => {
  const out = new Headers()
  if (typeof headers !== "object" || headers === null) return out
  for (const name of Object.keys(headers)) {
    const value = (headers as Record<string, unknown>)[name]
    if (value === null || value === undefined || value === false) continue
    for (const item of Array.isArray(value) ? value : [value]) {
      try {
        out.append(name, String(item))
      } catch {
        // a value fetch cannot hold is not one the policy reads
      }
    }
  }
  return out
}

const NULL_BODY_STATUSES = new Set([101, 103, 204, 205, 304])

const isStreamLike = (data: unknown): boolean =>
  typeof data === "object" &&
  data !== null &&
  (typeof (data as { pipe?: unknown }).pipe === "function" ||
    (typeof ReadableStream !== "undefined" && data instanceof ReadableStream))

const release = (data: unknown): void => {
  try {
    const stream = data as { destroy?: () => void; cancel?: () => Promise<void>; locked?: boolean }
    if (typeof stream.destroy === "function") stream.destroy()
    else if (typeof stream.cancel === "function" && !stream.locked) stream.cancel().catch(() => {})
  } catch {
    // already closed
  }
}

/**
 * The `Response` core sees for one hop: status and headers. Its body is empty,
 * except for `responseType: "stream"`, where cancelling it (core discards the
 * responses it does not hand back: redirects, retried attempts, a replayed 401)
 * releases the adapter's stream and its connection.
 */
const toResponse = (raw: AxiosResponse, headers: Headers): Response => {
  const body =
    isStreamLike(raw.data) && !NULL_BODY_STATUSES.has(raw.status)
      ? new ReadableStream({ cancel: () => release(raw.data) })
      : null
  try {
    return new Response(body, { status: raw.status, statusText: raw.statusText ?? "", headers })
  } catch {
    try {
      return new Response(body, { status: raw.status, headers })
    } catch {
      // A status fetch cannot represent (outside 200-599): core reads status and headers only.
      return { status: raw.status, statusText: "", headers, ok: false, body: null } as unknown as Response
    }
  }
}

const decoder = new TextDecoder()

/** The error body as text for `Problem.parse`, capped; a stream is the caller's and is not read. */
const bodyText = async (data: unknown): Promise<string> => {
  const cap = Problem.DEFAULT_MAX_BODY_BYTES
  try {
    if (typeof data === "string") return data.length > cap ? data.slice(0, cap) : data
    if (data instanceof ArrayBuffer)
      return decoder.decode(new Uint8Array(data, 0, Math.min(data.byteLength, cap)))
    if (ArrayBuffer.isView(data)) {
      return decoder.decode(new Uint8Array(data.buffer, data.byteOffset, Math.min(data.byteLength, cap)))
    }
    if (typeof Blob !== "undefined" && data instanceof Blob) return await data.slice(0, cap).text()
  } catch {
    // unreadable: the problem is built from status and headers
  }
  return ""
}

/**
 * The caller's `signal` and `cancelToken` as one `AbortSignal` for core,
 * aborting with the error axios itself would reject with (`CanceledError`).
 */
const linkAbort = (config: InternalAxiosRequestConfig, summary: RequestSummary) => {
  const { signal, cancelToken } = config
  if (!signal && !cancelToken) return undefined
  const controller = new AbortController()
  const cleanups: Array<() => void> = []
  if (signal) {
    const onAbort = () => controller.abort(new CanceledError(undefined, config, summary))
    if (signal.aborted) onAbort()
    else if (typeof signal.addEventListener === "function") {
      signal.addEventListener("abort", onAbort)
      cleanups.push(() => signal.removeEventListener?.("abort", onAbort))
    }
  }
  if (cancelToken) {
    const onCancel = (reason: unknown) =>
      controller.abort(reason ?? new CanceledError(undefined, config, summary))
    cancelToken.subscribe(onCancel)
    cleanups.push(() => cancelToken.unsubscribe(onCancel))
  }
  return {
    signal: controller.signal,
    done: () => {
      for (const cleanup of cleanups) cleanup()
    }
  }
}
