/**
 * The first attempt of an `authFetch` call in plain Promise code: the hot
 * path, where a fresh token is in memory and the API answers at once.
 *
 * Why it exists: on a loopback call of about 150 µs the Effect pipeline (a
 * fiber, a timeout fiber, generators per step) cost about half as much again
 * as the fetch itself (bench/src/breakdown.mjs). Most calls need none of it:
 * the token is fresh, the answer is final. So the first send is made here,
 * with the same headers, body, redirect mode and per-attempt timeout the
 * pipeline would use, and its answer is judged by the steps' own predicates
 * (`Bearer.actsOn`, `RetryPolicy.isRetryableStatus`):
 *
 * - final (most responses): returned as it is, the retry budget credited as
 *   the retry step would;
 * - anything a step acts on (a `401`, a redirect to follow, a retryable
 *   status, a network failure, a timeout): handed to the pipeline as the
 *   first hop already sent (`Outgoing.first`), so nothing is sent twice and
 *   every decision stays in its step.
 *
 * Taken when the source is a Promise one (`getToken`, and `peek` if it has it), the origin
 * is allowed, the caller set no `Authorization` and the body can be sent
 * again (a one-shot stream goes through the pipeline from the start). Without
 * a fresh token in memory it waits for one first, as the pipeline would.
 */
import { Effect } from "effect"
import { actsOn, withoutToken } from "../Bearer.ts"
import { type RequestTimeoutError, TokenEndpointError } from "../Errors.ts"
import type { AccessToken } from "../Token.ts"
import {
  anySignal,
  type Fetch,
  type Outgoing,
  SendError,
  send,
  takeBody,
  timedOut,
  toInit
} from "./outgoing.ts"

export interface FirstAttemptOptions {
  readonly next: Fetch
  /** a fresh token, or `undefined` when only the token source can tell */
  readonly peek: () => AccessToken | undefined
  /** a token when `peek` has none (a cold start, a refresh after a `401`) */
  readonly getToken: () => Promise<AccessToken>
  readonly isAllowed: (url: URL) => boolean
  /** the per-attempt timeout, as the pipeline's; `undefined` for none */
  readonly timeoutMillis: number | undefined
  /** whether the retry step may act on this status; `() => false` when retries are off */
  readonly isRetryableStatus: (status: number) => boolean
  /** a final response: what the retry step does on success (credit the budget) */
  readonly onFinal: () => void
  /** the Effect pipeline, run on an `Outgoing` whose first send is handed over */
  readonly continueWith: (outgoing: Outgoing) => Promise<Response>
}

/**
 * A call's first send, or `undefined` when the fast path does not apply (the
 * caller then runs the pipeline from the start). A caller's abort rejects
 * with its reason, as fetch does.
 */
export const firstAttempt = (
  options: FirstAttemptOptions
): ((outgoing: Outgoing) => Promise<Response> | undefined) => {
  const { next, timeoutMillis, continueWith } = options
  const sendWith = (outgoing: Outgoing, token: AccessToken): Promise<Response> => {
    // Set on the call's own copy of the headers (fromArgs made it), and removed
    // before a handover: the pipeline takes a caller's Authorization as theirs.
    outgoing.headers.set("authorization", token.authorization())
    let timer: ReturnType<typeof setTimeout> | undefined
    let signal = outgoing.signal
    let timeoutSignal: AbortSignal | undefined
    if (timeoutMillis !== undefined) {
      const controller = new AbortController()
      timeoutSignal = controller.signal
      timer = setTimeout(() => controller.abort(), timeoutMillis)
      signal = signal === undefined ? timeoutSignal : anySignal(signal, timeoutSignal)
    }
    const init = toInit(outgoing, {
      method: outgoing.method,
      headers: outgoing.headers,
      body: takeBody(outgoing),
      redirect: "manual"
    })
    const handOver = (result: Effect.Effect<Response, SendError | RequestTimeoutError>) => {
      outgoing.headers.delete("authorization")
      outgoing.first = { token, result }
      return continueWith(outgoing)
    }
    return send(next, outgoing, outgoing.url, init, signal).then(
      (response) => {
        clearTimeout(timer)
        if (actsOn(response, outgoing.redirect) || options.isRetryableStatus(response.status)) {
          return handOver(Effect.succeed(response))
        }
        options.onFinal()
        return withoutToken(response, token)
      },
      (cause: unknown) => {
        clearTimeout(timer)
        if (outgoing.signal?.aborted) throw outgoing.signal.reason
        return handOver(
          Effect.fail(
            timeoutSignal?.aborted && timeoutMillis !== undefined
              ? timedOut(outgoing, timeoutMillis)
              : new SendError({ cause })
          )
        )
      }
    )
  }
  return (outgoing) => {
    if (outgoing.body.kind === "once" || outgoing.headers.has("authorization")) return undefined
    if (!options.isAllowed(outgoing.url)) return undefined
    const token = options.peek()
    if (token !== undefined) return sendWith(outgoing, token)
    // No fresh token: wait for one here too (the source makes one request for all waiters),
    // so a cold burst does not run a pipeline a call. The timeout starts once it is sent.
    const waited = new Promise<AccessToken>((resolve) => resolve(options.getToken())) // a throw rejects
    return abortable(bounded(waited, timeoutMillis), outgoing.signal).then((fresh) =>
      sendWith(outgoing, fresh)
    )
  }
}

/**
 * `promise`, or a `TokenEndpointError` timeout after `millis`: the wait for a token is
 * bounded like the request, whatever the source (ours fails sooner on a spent budget).
 */
const bounded = <A>(promise: Promise<A>, millis: number | undefined): Promise<A> => {
  if (millis === undefined) return promise
  let timer: ReturnType<typeof setTimeout> | undefined
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(TokenEndpointError.waitTimedOut()), millis)
  })
  return Promise.race([promise, late]).finally(() => clearTimeout(timer))
}

/** `promise`, or its signal's reason as soon as the caller aborts. */
const abortable = <A>(promise: Promise<A>, signal: AbortSignal | undefined): Promise<A> => {
  if (signal === undefined) return promise
  if (signal.aborted) return Promise.reject(signal.reason)
  return new Promise<A>((resolve, reject) => {
    const onAbort = () => reject(signal.reason)
    signal.addEventListener("abort", onAbort, { once: true })
    promise.then(
      (value) => {
        signal.removeEventListener("abort", onAbort)
        resolve(value)
      },
      (error: unknown) => {
        signal.removeEventListener("abort", onAbort)
        reject(error)
      }
    )
  })
}
