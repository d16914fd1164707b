/**
 * The small part of `oidc-provider` (which ships no types) that the interop
 * tests use.
 */
declare module "oidc-provider" {
  import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from "node:http"

  export interface ProviderContext {
    readonly method: string
    readonly path: string
    readonly headers: IncomingHttpHeaders
    status: number
    body: unknown
    type: string
    readonly oidc?:
      | {
          readonly params?: Readonly<Record<string, unknown>> | undefined
          readonly client?: { readonly clientId: string } | undefined
        }
      | undefined
  }

  export type Middleware = (ctx: ProviderContext, next: () => Promise<void>) => Promise<void>

  /** the configuration object; see oidc-provider's documentation */
  export type Configuration = Readonly<Record<string, unknown>>

  export interface RefreshTokenModel {
    readonly jti: string
    readonly clientId: string
    readonly grantId: string
    readonly scope?: string | undefined
    /** epoch seconds when it was rotated, if it was */
    readonly consumed?: number | boolean | undefined
    readonly rotations?: number | undefined
    readonly isValid: boolean
    destroy(): Promise<void>
  }

  export class Provider {
    constructor(issuer: string, configuration?: Configuration)
    readonly issuer: string
    callback(): (req: IncomingMessage, res: ServerResponse) => void
    use(middleware: Middleware): this
    on(event: string, listener: (...args: Array<any>) => void): this
    readonly RefreshToken: {
      find(
        value: string,
        options?: { readonly ignoreExpiration?: boolean }
      ): Promise<RefreshTokenModel | undefined>
    }
  }

  export default Provider
}
