/**
 * The upstream half of the attack corpus as tests, for any proxy: the core's
 * handler, Express over a socket, Next's route handler, `next start`. A
 * runner says how to send a request through its proxy (`send`) and where the
 * proxy is mounted; the upstream is a `HostileUpstream` scripted per case, the
 * trap stands for every other origin. Each case checks what the browser gets
 * and what the upstream (and the trap) saw, and that nothing in the answer,
 * headers included, holds a token the upstream was sent or the upstream's
 * address.
 */
import { request as httpRequest } from "node:http"
import { beforeEach, describe, expect, it } from "vitest"
import {
  abandonedUploads,
  echoAttacks,
  redirectAttacks,
  redirectChain,
  responseHeaderAttacks,
  unauthorizedStorm
} from "./attacks.ts"
import type { HostileUpstream, UpstreamReply } from "./hostileUpstream.ts"

/** An answer as the browser got it. */
export interface ProxyAnswer {
  readonly status: number
  /** a header's value (several lines joined by ", "), `undefined` when absent */
  header(name: string): string | undefined
  /** every header line, for leak scans */
  readonly headerText: string
  readonly text: string
}

export interface SendOptions {
  readonly method?: string
  readonly headers?: Readonly<Record<string, string>>
  /** a body made as it is sent */
  readonly body?: () => AsyncIterable<Uint8Array>
  /** aborting it makes the browser go away (the request, or the connection, is dropped) */
  readonly signal?: AbortSignal
}

export interface CorpusTarget {
  /** the mount point as the browser sees it (`/benefits`) */
  readonly mount: string
  /** the proxy's upstream is `${upstream.url}/api`, with `hostileAllow` */
  readonly upstream: HostileUpstream
  readonly trap: HostileUpstream
  /** sends through the proxy: `path` is below the mount; resolves when the whole answer is read */
  send(path: string, options?: SendOptions): Promise<ProxyAnswer>
}

/**
 * How an upload is given up on: the proxy's timeout (it must be about 1 s,
 * answered 504), or the browser going away.
 */
export type GivenUp = "timeout" | "abort"

/** `count` bytes in 64 KiB chunks, made as they are asked for. */
export async function* lazyBytes(count: number): AsyncGenerator<Uint8Array> {
  const chunk = new Uint8Array(64 * 1024).fill(0x61)
  for (let sent = 0; sent < count; sent += chunk.byteLength) {
    yield sent + chunk.byteLength <= count ? chunk : chunk.subarray(0, count - sent)
  }
}

/** An async iterable as a web stream, read as it is pulled. */
export const streamOf = (iterable: AsyncIterable<Uint8Array>): ReadableStream<Uint8Array> => {
  const iterator = iterable[Symbol.asyncIterator]()
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const { done, value } = await iterator.next()
      if (done) controller.close()
      else controller.enqueue(value)
    },
    async cancel() {
      await iterator.return?.()
    }
  })
}

/** An answer from a web `Response`, its body read. */
export const answerOf = async (response: Response): Promise<ProxyAnswer> => {
  const text = await response.text()
  const lines: Array<string> = []
  response.headers.forEach((value, name) => {
    lines.push(`${name}: ${value}`)
  })
  return {
    status: response.status,
    header: (name) => response.headers.get(name) ?? undefined,
    headerText: lines.join("\n"),
    text
  }
}

/**
 * A browser over real HTTP: one request on its own connection to `origin`,
 * the path sent as given; aborting `signal` destroys the connection (the
 * browser goes away). Resolves once the whole answer is read.
 */
export const overHttp =
  (origin: string, mount: string) =>
  (path: string, options: SendOptions = {}): Promise<ProxyAnswer> =>
    new Promise<ProxyAnswer>((resolve, reject) => {
      const { hostname, port } = new URL(origin)
      const req = httpRequest({
        host: hostname,
        port,
        path: `${mount}${path}`,
        method: options.method ?? "GET",
        headers: options.headers,
        agent: false
      })
      const gone = () => req.destroy(new Error("the browser went away"))
      if (options.signal?.aborted) return gone()
      options.signal?.addEventListener("abort", gone, { once: true })
      req.on("response", (res) => {
        const chunks: Array<Buffer> = []
        res.on("data", (chunk: Buffer) => chunks.push(chunk))
        res.on("end", () => {
          options.signal?.removeEventListener("abort", gone)
          resolve(answerOfNode(res.statusCode ?? 0, res.headers, Buffer.concat(chunks).toString("utf8")))
        })
        res.on("error", reject)
      })
      req.on("error", reject)
      const body = options.body
      if (body === undefined) {
        req.end()
        return
      }
      void (async () => {
        try {
          for await (const chunk of body()) {
            if (req.destroyed) return
            if (!req.write(chunk)) await new Promise((resume) => req.once("drain", resume))
          }
          req.end()
        } catch (error) {
          req.destroy(error as Error)
        }
      })()
    })

/** An answer from Node's `IncomingMessage` headers. */
export const answerOfNode = (
  status: number,
  headers: Readonly<Record<string, string | ReadonlyArray<string> | undefined>>,
  text: string
): ProxyAnswer => {
  const flat = (value: string | ReadonlyArray<string> | undefined) =>
    value === undefined ? undefined : typeof value === "string" ? value : value.join(", ")
  return {
    status,
    header: (name) => flat(headers[name.toLowerCase()]),
    headerText: Object.entries(headers)
      .map(([name, value]) => `${name}: ${flat(value)}`)
      .join("\n"),
    text
  }
}

const fill = (text: string, t: CorpusTarget, bearer = "never-sent"): string =>
  text
    .replaceAll("{upstreamHost}", t.upstream.host)
    .replaceAll("{upstream}", t.upstream.url)
    .replaceAll("{trapHost}", t.trap.host)
    .replaceAll("{trap}", t.trap.url)
    .replaceAll("{mount}", t.mount)
    .replaceAll("{bearer}", bearer)

const OK: UpstreamReply = {
  status: 200,
  headers: { "content-type": "application/json" },
  body: '{"ok":true}'
}

/** Nothing in the answer names the upstream or holds a token it was sent, in any spelling. */
const expectNoLeak = (answer: ProxyAnswer, t: CorpusTarget): void => {
  const everything = `${answer.headerText}\n${answer.text}`
  expect(everything).not.toContain(t.upstream.host)
  for (const bearer of t.upstream.bearers()) {
    for (const spelling of [bearer, encodeURIComponent(bearer), encodeURIComponent(`Bearer ${bearer}`)]) {
      expect(everything.includes(spelling), "a token reached the browser").toBe(false)
    }
  }
}

/**
 * The upstream half of the corpus against one proxy. `uploads`: how the
 * abandoned uploads are given up on, or `false` where they are not run (a
 * runtime whose fetch is the platform's, without control of its sockets).
 */
export const describeHostileUpstream = (
  name: string,
  target: () => CorpusTarget,
  uploads: GivenUp | false
): void => {
  describe(`${name}: what a hostile upstream answers`, () => {
    beforeEach(() => {
      target().upstream.reset()
      target().trap.reset()
    })

    for (const attack of redirectAttacks) {
      const verdict = attack.rewritten === undefined ? "refused (502)" : "passed on, rewritten to the mount"
      it(`a redirect to ${attack.name}: ${verdict}, never followed`, async () => {
        const t = target()
        const location = fill(attack.location, t)
        t.upstream.answer = () => ({
          status: attack.status ?? 302,
          headers: { location, "content-type": "text/html" },
          body: `<a href="${location}">moved</a>`
        })
        const answer = await t.send("/v1/consumers/1")
        if (attack.rewritten === undefined) {
          expect(answer.status).toBe(502)
          expect(answer.header("content-type")).toBe("application/problem+json")
          expect(JSON.parse(answer.text)).toMatchObject({ status: 502, title: "Bad Gateway" })
          expect(answer.header("location")).toBeUndefined()
        } else {
          expect(answer.status).toBe(attack.status ?? 302)
          expect(answer.header("location")).toBe(`${t.mount}${attack.rewritten}`)
          expect(answer.text).toBe("")
        }
        expectNoLeak(answer, t)
        expect(t.upstream.requests.map((r) => r.url)).toEqual(["/api/v1/consumers/1"])
        expect(t.trap.requests).toHaveLength(0)
      })
    }

    it("a redirect chain the browser follows hop by hop: each hop checked again, the one leaving the allow-list refused", async () => {
      const t = target()
      t.upstream.answer = (request) => {
        const next = redirectChain.hops[request.url.split("?")[0]!]
        return next === undefined
          ? { status: 200, body: '{"admin":true}' }
          : { status: 302, headers: { location: fill(next, t) } }
      }
      let path: string = redirectChain.start
      for (const step of redirectChain.steps) {
        const answer = await t.send(path)
        expectNoLeak(answer, t)
        if (typeof step === "number") {
          expect(answer.status).toBe(step)
          expect(answer.text).not.toContain("admin")
          break
        }
        expect(answer.status).toBe(302)
        expect(answer.header("location")).toBe(`${t.mount}${step}`)
        path = answer.header("location")!.slice(t.mount.length)
      }
      expect(t.upstream.requests.map((r) => r.url)).toEqual([...redirectChain.upstreamSaw])
      expect(t.trap.requests).toHaveLength(0)
    })

    for (const attack of echoAttacks) {
      const verdict = attack.passed ? "its body passed without our token" : "our own problem, not its body"
      it(`an upstream ${attack.name}: ${attack.status}, ${verdict}`, async () => {
        const t = target()
        t.upstream.answer = (request) => attack.reply(request.bearer ?? "no-bearer-was-sent")
        const answer = await t.send("/v1/consumers/1")
        expect(answer.status).toBe(attack.status)
        expect(t.upstream.bearers().length).toBeGreaterThan(0)
        expectNoLeak(answer, t)
        if (attack.passed) {
          expect(answer.text).toContain("<redacted>")
        } else {
          expect(answer.header("content-type")).toBe("application/problem+json")
          expect(JSON.parse(answer.text)).toMatchObject({ type: "about:blank", status: attack.status })
        }
        if (attack.retryAfter !== undefined) expect(answer.header("retry-after")).toBe(attack.retryAfter)
      })
    }

    for (const attack of responseHeaderAttacks) {
      it(`response headers, ${attack.name}`, async () => {
        const t = target()
        let bearer = "never-sent"
        t.upstream.answer = (request) => {
          bearer = request.bearer ?? bearer
          const headers: Record<string, string | Array<string>> = { "content-type": "application/json" }
          for (const [name, value] of Object.entries(attack.headers)) {
            headers[name] =
              typeof value === "string" ? fill(value, t, bearer) : value.map((v) => fill(v, t, bearer))
          }
          return { status: attack.status ?? 200, headers, body: '{"ok":true}' }
        }
        const answer = await t.send("/v1/consumers/1")
        expect(answer.status).toBe(attack.status ?? 200)
        for (const name of attack.dropped) {
          const got = answer.header(name)
          for (const sent of [attack.headers[name] ?? []].flat()) {
            expect(got === undefined || !got.includes(fill(sent, t, bearer)), `${name}: ${got}`).toBe(true)
          }
        }
        for (const [name, value] of Object.entries(attack.passed ?? {})) {
          expect(answer.header(name), name).toBe(fill(value, t, bearer))
        }
        expectNoLeak(answer, t)
        expect(t.trap.requests).toHaveLength(0)
      })
    }

    if (uploads !== false) describeAbandonedUploads(name, target, uploads)
  })
}

/** The abandoned uploads alone: every upstream connection closed within 1 s of the timeout or the abort. */
export const describeAbandonedUploads = (name: string, target: () => CorpusTarget, mode: GivenUp): void => {
  describe(`${name}: uploads given up on (${mode})`, () => {
    it(`${abandonedUploads.count} uploads of 4 MiB to an upstream that never reads them: every upstream connection closed within ${abandonedUploads.withinMs} ms of the ${mode}`, async () => {
      const t = target()
      t.upstream.reset()
      await t.upstream.closeIdle()
      t.upstream.answer = () => ({ read: false, hang: true })
      const controller = new AbortController()
      const sends = Array.from({ length: abandonedUploads.count }, () =>
        t
          .send(abandonedUploads.path, {
            method: "POST",
            headers: { "content-type": "application/octet-stream" },
            body: () => lazyBytes(abandonedUploads.bytes),
            signal: controller.signal
          })
          .catch((error: unknown) => error)
      )
      await t.upstream.waitForRequests(abandonedUploads.count).catch(async (error: unknown) => {
        controller.abort()
        const settled = await Promise.all(sends)
        throw new Error(
          `${String(error)}; answers: ${settled.map((a) => (a as ProxyAnswer).status ?? String(a)).join(", ")} ${settled.map((a) => (a as ProxyAnswer).text ?? "").join(" | ")}`
        )
      })
      expect(t.upstream.connections()).toBeGreaterThanOrEqual(abandonedUploads.count)
      if (mode === "abort") {
        controller.abort()
        await t.upstream.connectionsDownTo(0, abandonedUploads.withinMs)
        await Promise.all(sends)
      } else {
        const answers = await Promise.all(sends)
        for (const answer of answers) expect((answer as ProxyAnswer).status).toBe(504)
        // Each connection is reset before its 504 is written: none is left by the time all are in.
        await t.upstream.connectionsDownTo(0, abandonedUploads.withinMs)
      }
      // And the proxy goes on serving.
      t.upstream.answer = () => OK
      expect((await t.send("/v1/consumers/1")).status).toBe(200)
    })
  })
}

export interface StormTarget {
  readonly upstream: HostileUpstream
  send(path: string): Promise<ProxyAnswer>
  /** token requests the token endpoint has answered so far */
  tokenRequests(): number
}

/** The 401 storm: anonymous callers cannot spend the token budget, and a legitimate call still succeeds. */
export const describeUnauthorizedStorm = (name: string, target: () => StormTarget): void => {
  describe(`${name}: a 401 storm`, () => {
    it(`${unauthorizedStorm.sequential} + ${unauthorizedStorm.concurrent} anonymous calls to a path that always answers 401 spend at most ${unauthorizedStorm.maxTokenRequests} token requests; a legitimate call then succeeds`, async () => {
      const t = target()
      t.upstream.reset()
      t.upstream.answer = (request) =>
        request.url.startsWith(`/api${unauthorizedStorm.path}`)
          ? {
              status: 401,
              headers: {
                "content-type": "application/json",
                "www-authenticate": 'Bearer error="invalid_token"'
              },
              body: '{"error":"invalid_token"}'
            }
          : OK
      const before = t.tokenRequests()
      const started = Date.now()
      const statuses = new Map<number, number>()
      const count = (answer: ProxyAnswer) =>
        statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1)
      for (let i = 0; i < unauthorizedStorm.sequential; i++) count(await t.send(unauthorizedStorm.path))
      for (const answer of await Promise.all(
        Array.from({ length: unauthorizedStorm.concurrent }, () => t.send(unauthorizedStorm.path))
      )) {
        count(answer)
      }
      const spent = t.tokenRequests() - before
      const legitimate = await t.send(unauthorizedStorm.legitimate)
      console.log(
        `${name}: 401 storm of ${unauthorizedStorm.sequential + unauthorizedStorm.concurrent} calls in ` +
          `${((Date.now() - started) / 1000).toFixed(1)} s, answers ${JSON.stringify(Object.fromEntries(statuses))}, ` +
          `${spent} token requests; then ${legitimate.status}`
      )
      expect([...statuses.keys()].every((status) => status === 502 || status === 503)).toBe(true)
      expect(spent).toBeLessThanOrEqual(unauthorizedStorm.maxTokenRequests)
      expect(legitimate.status).toBe(200)
    })
  })
}
