/**
 * What the Redis store reports: its fallbacks, its recoveries, tokens it
 * learned from other instances, and failures of the session store. Events
 * carry cache and session keys (digests), never a token, a session id, a
 * secret, a sealed value or a Redis error's text (which may quote a command).
 *
 * @example
 * ```ts
 * redisStore({ url, encryptionKeys, onEvent: (event) => {
 *   if (event.type === "store_unavailable") logger.warn(event, "Redis unavailable: running on local tokens")
 * } })
 * ```
 *
 * @since 0.1.0
 */

/**
 * @since 0.1.0
 */
export type StoreEvent =
  | {
      /** a Redis command failed or timed out: this instance runs on its local store and budget share */
      readonly type: "store_unavailable"
      readonly at: number
      readonly operation: StoreOperation
      readonly reason: "timeout" | "error"
    }
  | {
      /** Redis answers again: back to the shared token, lock and budget */
      readonly type: "store_recovered"
      readonly at: number
      readonly unavailableMillis: number
    }
  | {
      /** a token another instance wrote was adopted without a request */
      readonly type: "token_received"
      readonly at: number
      readonly key: string
      readonly via: "message" | "poll"
    }
  | {
      /**
       * a session-store command failed or timed out: the request that needed it failed
       * (`TokenStoreError`, which the proxy answers 503). Sessions have no local fallback.
       */
      readonly type: "session_store_failed"
      readonly at: number
      readonly operation: SessionStoreOperation
      readonly reason: "timeout" | "error"
    }
  | {
      /** a stored entry (a token, or a session) opened with none of the keys (rotated out, tampered): treated as absent */
      readonly type: "entry_unreadable"
      readonly at: number
      readonly key: string
    }
  | {
      /** this instance waited for another one's lock (a token's acquisition, a session's refresh) */
      readonly type: "lock_waited"
      readonly at: number
      readonly key: string
      readonly waitMillis: number
    }
  | {
      /** the lock expired under a holder that was still working (it outlived the lock's expiry) */
      readonly type: "lock_lost"
      readonly at: number
      readonly key: string
    }

/**
 * What the store was doing when Redis failed.
 *
 * @since 0.1.0
 */
export type StoreOperation = "get" | "set" | "invalidate" | "lock" | "budget" | "heartbeat" | "poll"

/**
 * What the session store was doing when Redis failed.
 *
 * @since 0.2.0
 */
export type SessionStoreOperation = "get" | "set" | "delete" | "take" | "lock"

/** Calls the listener; a throwing listener must not break the store. */
export const emitTo = (listener: ((event: StoreEvent) => void) | undefined, event: StoreEvent): void => {
  if (listener === undefined) return
  try {
    listener(event)
  } catch {
    // a listener's failure is its own
  }
}
