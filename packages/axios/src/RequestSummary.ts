/**
 * What `error.request` and `response.request` hold once a request went through
 * `attachAuth`: a plain description of the request that was sent (method,
 * protocol, host, path, final URL), instead of the transport object.
 *
 * Why: axios puts the transport object there, a Node `ClientRequest` for the
 * http adapter (its `_header` string and its `kOutHeaders` map hold every
 * request header, bearer token included, and its `agent` leads to every other
 * request in flight) or a fetch `Request` (whose `headers` hold the token).
 * `AxiosError`s are routinely logged whole (`util.inspect`, `JSON.stringify`,
 * error trackers), so the token would be logged with them. A summary keeps
 * what such logs need and nothing else. It holds no headers, no body and no
 * userinfo.
 *
 * @example
 * ```ts
 * try {
 *   await api.get("/v1/consumers/12345")
 * } catch (error) {
 *   if (axios.isAxiosError(error) && error.request && !error.response) {
 *     console.error("no answer from", String(error.request)) // "GET https://api.example.com/v1/consumers/12345"
 *   }
 * }
 * ```
 *
 * @since 0.1.0
 */

/**
 * A sent request, described without its headers or body.
 *
 * @example
 * ```ts
 * const summary = new RequestSummary("GET", new URL("https://api.example.com/v1/x?page=2"))
 * summary.path // "/v1/x?page=2"
 * ```
 *
 * @since 0.1.0
 */
export class RequestSummary {
  /** upper-case method, as sent */
  readonly method: string
  /** `https:` or `http:` */
  readonly protocol: string
  /** host and port */
  readonly host: string
  /** path and query, as `ClientRequest#path` */
  readonly path: string
  /** the URL of the answered hop (after redirects), without userinfo */
  readonly url: string

  constructor(method: string, url: URL) {
    const clean = new URL(url.href)
    clean.username = ""
    clean.password = ""
    clean.hash = ""
    this.method = method.toUpperCase()
    this.protocol = clean.protocol
    this.host = clean.host
    this.path = `${clean.pathname}${clean.search}`
    this.url = clean.href
  }

  /** `METHOD origin+path` (no query string: it may carry secrets) */
  toString(): string {
    return `${this.method} ${this.protocol}//${this.host}${this.path.replace(/[?#].*$/s, "")}`
  }
}
