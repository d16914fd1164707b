/**
 * How the client authenticates to the token endpoint (RFC 6749 section 2.3.1),
 * and where its secret comes from.
 *
 * - `client_secret_post`: `client_id` and `client_secret` in the form body
 *   (what WEX and WealthCare document).
 * - `client_secret_basic`: HTTP Basic with id and secret each
 *   `application/x-www-form-urlencoded` before base64 (RFC 6749 2.3.1; a secret
 *   with `:`, `+`, `%` or non-ASCII breaks servers when this step is skipped).
 * - `none`: a public client sends only `client_id` (RFC 6749 section 2.1).
 *
 * A secret may be a string, a `Redacted`, or an async provider (a secrets
 * manager lookup) that is called when a token is requested.
 *
 * @example
 * ```ts
 * createTokenSource({ tokenUrl, clientId, clientSecret: () => vault.read("wex/secret"), clientAuth: "client_secret_basic" })
 * ```
 *
 * @since 0.1.0
 */
import { Effect, Redacted } from "effect"
import { InvalidConfigError } from "./Errors.ts"

/**
 * @since 0.1.0
 */
export type Method = "client_secret_post" | "client_secret_basic" | "none"

/**
 * A client secret as users keep it.
 *
 * @since 0.1.0
 */
export type SecretInput =
  | string
  | Redacted.Redacted<string>
  | (() => string | Redacted.Redacted<string> | Promise<string | Redacted.Redacted<string>>)

/**
 * Resolves a secret input to a `Redacted`, calling a provider if it is one.
 * A provider that throws or returns nothing gives `InvalidConfigError`, whose
 * message does not repeat what the provider threw (it might quote the secret).
 *
 * @example
 * ```ts
 * const secret = yield* ClientAuth.resolveSecret(() => vault.read("secret"))
 * ```
 *
 * @since 0.1.0
 */
export const resolveSecret = (
  input: SecretInput
): Effect.Effect<Redacted.Redacted<string>, InvalidConfigError> => {
  if (typeof input !== "function") {
    return Effect.succeed(
      Redacted.isRedacted(input) ? input : Redacted.make(input, { label: "client_secret" })
    )
  }
  return Effect.tryPromise({
    try: async () => input(),
    catch: () => new InvalidConfigError({ problems: ["clientSecret provider failed"] })
  }).pipe(
    Effect.flatMap((value) => {
      const secret = Redacted.isRedacted(value) ? value : Redacted.make(value, { label: "client_secret" })
      const raw = Redacted.value(secret)
      return typeof raw === "string" && raw.length > 0
        ? Effect.succeed(secret)
        : Effect.fail(
            new InvalidConfigError({ problems: ["clientSecret provider returned an empty secret"] })
          )
    })
  )
}

/**
 * RFC 6749 appendix B: `application/x-www-form-urlencoded` encoding of one value
 * (spaces as `+`, everything outside `*-._` and alphanumerics percent-encoded).
 *
 * @example
 * ```ts
 * formEncode("a b:c") // "a+b%3Ac"
 * ```
 *
 * @since 0.1.0
 */
export const formEncode = (value: string): string => new URLSearchParams([["", value]]).toString().slice(1)

/**
 * What a client authentication method adds to a token request.
 *
 * @since 0.1.0
 */
export interface Applied {
  readonly headers: Readonly<Record<string, string>>
  readonly params: ReadonlyArray<readonly [string, string | Redacted.Redacted<string>]>
}

/**
 * Applies a client authentication method.
 *
 * @example
 * ```ts
 * ClientAuth.apply("client_secret_basic", "my-client", Redacted.make("s3cr:t"))
 * // { headers: { authorization: "Basic bXktY2xpZW50OnMzY3IlM0F0" }, params: [] }
 * ```
 *
 * @since 0.1.0
 */
export const apply = (
  method: Method,
  clientId: string,
  secret: Redacted.Redacted<string> | undefined
): Applied => {
  switch (method) {
    case "client_secret_basic": {
      const credentials = `${formEncode(clientId)}:${formEncode(secret ? Redacted.value(secret) : "")}`
      const bytes = new TextEncoder().encode(credentials)
      let binary = ""
      for (const byte of bytes) binary += String.fromCharCode(byte)
      return { headers: { authorization: `Basic ${btoa(binary)}` }, params: [] }
    }
    case "client_secret_post":
      return {
        headers: {},
        params: secret
          ? [
              ["client_id", clientId],
              ["client_secret", secret]
            ]
          : [["client_id", clientId]]
      }
    case "none":
      return { headers: {}, params: [["client_id", clientId]] }
  }
}
