/**
 * The systems under test. Each factory takes the server's URLs and a client id
 * of its own (so the server can count each system's token requests apart) and
 * resolves to `{ get(path), close() }`. `get` reads and parses the JSON body
 * like an API client would, and resolves to `{ status, issued }` (`status` 0
 * for a throw; `issued` is the server's `x-token-issued-at` of the token
 * used). It never rejects.
 */

import { readFileSync } from "node:fs"
import { attachAuth } from "@authfetch/axios"
import { authFetch, createTokenSource } from "@authfetch/core"
import { authKyOptions } from "@authfetch/ky"
import { OAuth2Client, OAuth2Fetch } from "@badgateway/oauth2-client"
import axios from "axios"
import { createAuthRefresh } from "axios-auth-refresh"
import ky from "ky"
import * as oauth from "oauth4webapi"
import { SECRET, tokenByHand } from "./lib.mjs"

export { SECRET }

const fromResponse = async (res) => {
  const issued = res.headers.get("x-token-issued-at")
  if (res.status === 200) await res.json()
  else await res.arrayBuffer()
  return { status: res.status, issued: issued === null ? undefined : Number(issued) }
}
const fromAxios = (res) => {
  const issued = res.headers["x-token-issued-at"]
  return { status: res.status, issued: issued === undefined ? undefined : Number(issued) }
}
const failed = (error) => ({
  status: error?.response?.status ?? 0,
  error: error?.code ?? error?._tag ?? error?.name ?? "error"
})

/** A system's `{ get(path), close() }`: `send(path)`'s answer through `read`, a throw through `failed`. */
const client = (send, read, close = async () => {}) => ({
  get: (path) => send(path).then(read, failed),
  close
})

const coreSource = (env, clientId) =>
  createTokenSource({ tokenUrl: env.tokenUrl, clientId, clientSecret: SECRET })

/** fetch with a token fetched once by hand: the floor, and case 1's A/A twin of it */
const rawFetch = async (env, clientId) => {
  const headers = { authorization: `Bearer ${await tokenByHand(env.tokenUrl, clientId)}` }
  return client((path) => fetch(env.apiBase + path, { headers }), fromResponse)
}

/** The systems, in table order. `kind`: floor (no token management), ours, peer. */
export const SYSTEMS = [
  {
    id: "raw-fetch",
    label: "raw fetch (floor)",
    kind: "floor",
    packages: [],
    make: rawFetch
  },
  {
    // case 1's A/A pair: raw fetch against a second raw fetch shows how far two identical systems drift apart
    id: "raw-fetch-again",
    label: "raw fetch, a second instance (A/A)",
    kind: "variant",
    packages: [],
    make: rawFetch
  },
  {
    id: "raw-axios",
    label: "raw axios (axios floor)",
    kind: "floor",
    packages: ["axios"],
    make: async (env, clientId) => {
      const instance = axios.create({
        baseURL: env.apiBase,
        headers: { Authorization: `Bearer ${await tokenByHand(env.tokenUrl, clientId)}` }
      })
      return client((path) => instance.get(path), fromAxios)
    }
  },
  {
    id: "raw-ky",
    label: "raw ky (ky floor)",
    kind: "floor",
    packages: ["ky"],
    make: async (env, clientId) => {
      const api = ky.create({
        prefix: env.apiBase,
        headers: { authorization: `Bearer ${await tokenByHand(env.tokenUrl, clientId)}` },
        throwHttpErrors: false
      })
      return client((path) => api.get(path.slice(1)), fromResponse)
    }
  },
  {
    id: "core",
    label: "ours: authFetch (core)",
    kind: "ours",
    packages: ["@authfetch/core", "effect"],
    make: async (env, clientId) => {
      const tokens = coreSource(env, clientId)
      const api = authFetch(tokens, { baseUrl: env.apiBase })
      return client(
        (path) => api(path),
        fromResponse,
        () => tokens.dispose()
      )
    }
  },
  {
    // not in the bench's report (no `kind` the report lists): for src/pair.mjs, the attempt timeout's share
    id: "ky-no-attempt-timeout",
    label: "@authfetch/ky, auth.attemptTimeout: false",
    kind: "variant",
    packages: ["@authfetch/ky", "ky"],
    make: async (env, clientId) => {
      const tokens = coreSource(env, clientId)
      const api = ky.create(
        authKyOptions(tokens, {
          prefix: env.apiBase,
          throwHttpErrors: false,
          auth: { attemptTimeout: false }
        })
      )
      return client(
        (path) => api.get(path.slice(1)),
        fromResponse,
        () => tokens.dispose()
      )
    }
  },
  {
    id: "ky",
    label: "ours: @authfetch/ky",
    kind: "ours",
    packages: ["@authfetch/ky", "ky"],
    make: async (env, clientId) => {
      const tokens = coreSource(env, clientId)
      const api = ky.create(authKyOptions(tokens, { prefix: env.apiBase, throwHttpErrors: false }))
      return client(
        (path) => api.get(path.slice(1)),
        fromResponse,
        () => tokens.dispose()
      )
    }
  },
  {
    id: "axios",
    label: "ours: @authfetch/axios",
    kind: "ours",
    packages: ["@authfetch/axios", "axios"],
    make: async (env, clientId) => {
      const tokens = coreSource(env, clientId)
      const instance = axios.create({ baseURL: env.apiBase, timeout: 30_000 })
      attachAuth(instance, tokens)
      return client(
        (path) => instance.get(path),
        fromAxios,
        () => tokens.dispose()
      )
    }
  },
  {
    id: "badgateway",
    label: "@badgateway/oauth2-client OAuth2Fetch",
    kind: "peer",
    packages: ["@badgateway/oauth2-client"],
    make: async (env, clientId) => {
      const oauth2 = new OAuth2Client({
        server: new URL(env.tokenUrl).origin,
        tokenEndpoint: env.tokenUrl,
        clientId,
        clientSecret: SECRET,
        authenticationMethod: "client_secret_post"
      })
      const wrapper = new OAuth2Fetch({ client: oauth2, getNewToken: () => oauth2.clientCredentials() })
      return client((path) => wrapper.fetch(env.apiBase + path), fromResponse)
    }
  },
  {
    id: "axios-auth-refresh",
    label: "axios + axios-auth-refresh",
    kind: "peer",
    packages: ["axios-auth-refresh", "axios"],
    // As its README shows: a request interceptor sets the token held in a
    // variable; the refresh logic runs on a 401 and fetches a new token.
    make: async (env, clientId) => {
      let token
      const tokenClient = axios.create()
      const instance = axios.create({ baseURL: env.apiBase, timeout: 30_000 })
      instance.interceptors.request.use((config) => {
        if (token !== undefined) config.headers.Authorization = `Bearer ${token}`
        return config
      })
      createAuthRefresh(instance, async () => {
        const { data } = await tokenClient.post(
          env.tokenUrl,
          new URLSearchParams({
            grant_type: "client_credentials",
            client_id: clientId,
            client_secret: SECRET
          })
        )
        token = data.access_token
      })
      return client((path) => instance.get(path), fromAxios)
    }
  },
  {
    id: "oauth4webapi",
    label: "oauth4webapi + hand-rolled cache",
    kind: "peer",
    packages: ["oauth4webapi"],
    // The cache a partner writes around oauth4webapi's client credentials:
    // reuse the token until shortly before expiry (10 % of its lifetime, at
    // most 30 s), fetch a new one otherwise; after a 401 drop it and retry
    // once. No single-flight: concurrent callers on a cold or dropped cache
    // each request a token (the usual hand-written cache).
    make: async (env, clientId) => {
      const as = { issuer: new URL(env.tokenUrl).origin, token_endpoint: env.tokenUrl }
      const client = { client_id: clientId }
      const auth = oauth.ClientSecretPost(SECRET)
      let cached
      const getToken = async () => {
        if (cached !== undefined && Date.now() < cached.useUntil) return cached.value
        const response = await oauth.clientCredentialsGrantRequest(as, client, auth, new URLSearchParams(), {
          [oauth.allowInsecureRequests]: true
        })
        const result = await oauth.processClientCredentialsResponse(as, client, response)
        const lifetime = (result.expires_in ?? 300) * 1000
        cached = {
          value: result.access_token,
          useUntil: Date.now() + lifetime - Math.min(30_000, lifetime / 10)
        }
        return cached.value
      }
      const once = async (path) => {
        const value = await getToken()
        const res = await fetch(env.apiBase + path, { headers: { authorization: `Bearer ${value}` } })
        return { res, value }
      }
      return {
        get: async (path) => {
          try {
            let { res, value } = await once(path)
            if (res.status === 401) {
              await res.arrayBuffer()
              if (cached?.value === value) cached = undefined
              res = (await once(path)).res
            }
            return await fromResponse(res)
          } catch (error) {
            return failed(error)
          }
        },
        close: async () => {}
      }
    }
  }
]

/** `name@version` of an installed package (read from bench/node_modules). */
export const versionOf = (name) => {
  try {
    const file = new URL(`../node_modules/${name}/package.json`, import.meta.url)
    return `${name}@${JSON.parse(readFileSync(file, "utf8")).version}`
  } catch {
    return `${name}@?`
  }
}

export const byId = (id) => {
  const system = SYSTEMS.find((s) => s.id === id)
  if (!system) throw new Error(`unknown system ${id}`)
  return system
}
