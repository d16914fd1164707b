/** What a fleet worker's API calls did, and the same summed over workers. */

export interface CallStats {
  calls: number
  ok: number
  /** failed calls (a throw, or a status other than 200) by error tag or `status_<n>` */
  failures: Record<string, number>
  maxLatencyMs: number
  /** the longest time from a call's start to its first send (the wait for a token) */
  maxTokenWaitMs: number
  /** the longest the event loop was blocked meanwhile (a loaded machine's, not the engine's, delay) */
  maxLoopDelayMs: number
  /** per token fingerprint (first 8 hex of SHA-256, as the sandbox's): the earliest start of a call that sent it */
  firstUse: Record<string, number>
}

export const newCallStats = (): CallStats => ({
  calls: 0,
  ok: 0,
  failures: {},
  maxLatencyMs: 0,
  maxTokenWaitMs: 0,
  maxLoopDelayMs: 0,
  firstUse: {}
})

export const mergeCalls = (all: ReadonlyArray<CallStats>): CallStats => {
  const merged = newCallStats()
  for (const stats of all) {
    merged.calls += stats.calls
    merged.ok += stats.ok
    for (const [tag, n] of Object.entries(stats.failures))
      merged.failures[tag] = (merged.failures[tag] ?? 0) + n
    merged.maxLatencyMs = Math.max(merged.maxLatencyMs, stats.maxLatencyMs)
    merged.maxTokenWaitMs = Math.max(merged.maxTokenWaitMs, stats.maxTokenWaitMs)
    merged.maxLoopDelayMs = Math.max(merged.maxLoopDelayMs, stats.maxLoopDelayMs)
    for (const [print, at] of Object.entries(stats.firstUse))
      merged.firstUse[print] = Math.min(merged.firstUse[print] ?? Infinity, at)
  }
  return merged
}
