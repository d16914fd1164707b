/**
 * `AbortSignal.any` where the runtime lacks it.
 *
 * The core combines the caller's signal with its own (`AbortSignal.any`, in
 * `internal/outgoing.ts`) for every request that carries a signal, and the
 * proxy always passes the incoming request's. Next's Edge runtime (the
 * sandbox `next start` and `next dev` run edge routes in) has no
 * `AbortSignal.any`, so every proxied request failed there with a
 * `TypeError`. Until the core falls back by itself, the adapter installs the
 * standard behaviour (WHATWG DOM "create a dependent abort signal"), only when
 * it is missing: code that would otherwise throw gets what the standard says.
 *
 * @internal
 */

type AnyFn = (signals: Iterable<AbortSignal>) => AbortSignal

const any: AnyFn = (signals) => {
  const controller = new AbortController()
  const sources = [...signals]
  const aborted = sources.find((signal) => signal.aborted)
  if (aborted !== undefined) {
    controller.abort(aborted.reason)
    return controller.signal
  }
  const listeners = sources.map((signal) => {
    const listener = () => {
      for (const [source, remove] of listeners) source.removeEventListener("abort", remove)
      controller.abort(signal.reason)
    }
    signal.addEventListener("abort", listener)
    return [signal, listener] as const
  })
  return controller.signal
}

/** Installs `AbortSignal.any` when the runtime has none. Idempotent and cheap. */
export const ensureAbortSignalAny = (): void => {
  const Signal = (globalThis as { AbortSignal?: { any?: unknown } }).AbortSignal
  if (Signal === undefined || typeof Signal.any === "function") return
  Object.defineProperty(Signal, "any", { value: any, configurable: true, writable: true })
}
