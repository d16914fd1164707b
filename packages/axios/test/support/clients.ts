/**
 * axios as a `ScenarioClient` of the shared scenario table, once per adapter.
 */
import { Readable } from "node:stream"
import axios, { type AxiosInstance, isCancel } from "axios"
import type { ScenarioClient } from "../../../core/test/scenarios/scenarios.ts"
import { attachAuth } from "../../src/index.ts"

export type AdapterName = "http" | "fetch"
export const adapters: ReadonlyArray<AdapterName> = ["http", "fetch"]

/** Fast backoff for tests; core's defaults otherwise. */
export const fast = { baseDelay: "20 millis", maxDelay: "100 millis" } as const

export const axiosClient = (adapter: AdapterName): ScenarioClient => ({
  name: `axios (${adapter} adapter)`,
  // The http adapter sends a Node Readable (the axios way to stream a body; it
  // rejects a web ReadableStream as data), the fetch adapter a ReadableStream
  // as is: both are one-shot bodies for core, never sent twice.
  streams: true,
  // axios reports a caller's abort as CanceledError (`axios.isCancel`).
  isAbortError: (error) => isCancel(error),
  make: (tokens, baseUrl, { onEvent, extraOrigins }) => {
    const api: AxiosInstance = axios.create({
      baseURL: baseUrl,
      adapter,
      validateStatus: () => true,
      responseType: "text",
      transformResponse: [(data: unknown) => data]
    })
    attachAuth(api, tokens, {
      retry: fast,
      onEvent,
      ...(extraOrigins ? { origins: [baseUrl, ...extraOrigins] } : {})
    })
    return async (path, options) => {
      let data: unknown = options?.body
      if (adapter === "http" && data instanceof ReadableStream) {
        data = Readable.fromWeb(data as import("node:stream/web").ReadableStream)
      }
      const response = await api.request<string>({
        url: path,
        method: options?.method ?? "GET",
        data,
        ...(options?.headers ? { headers: options.headers } : {}),
        ...(options?.signal ? { signal: options.signal } : {})
      })
      return { status: response.status, body: String(response.data ?? "") }
    }
  }
})
