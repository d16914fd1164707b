/**
 * WealthCare's token revocation endpoint, `POST /connect/revocation` (RFC
 * 7009), as IdentityServer has it.
 *
 * The client authenticates exactly as at the token endpoint (RFC 7009
 * section 2.1), in the body or with HTTP Basic. Then:
 * - an access token of the client: that token is revoked;
 * - a refresh token of the client: the whole grant is (its access tokens
 *   too, which RFC 7009 section 2.1 says the server SHOULD do);
 * - a token of another client, or one the sandbox does not know: nothing is
 *   revoked, and the answer is the same `200` (section 2.2: "invalid tokens
 *   do not cause an error response"; IdentityServer answers another client's
 *   token the same way, so revocation tells nobody whose token it was).
 *
 * `token_type_hint` only sets which kind is looked up first; a value other
 * than `access_token` or `refresh_token` is ignored, as section 2.1 allows
 * ("MAY ignore this parameter"): every token kind the sandbox issues can be
 * revoked, so `unsupported_token_type` never applies.
 *
 * A request counts as `revoked` in the stats when it found a token of its
 * client (revoked now, or already before: revocation is idempotent).
 *
 * @internal
 */
import type { IncomingMessage, ServerResponse } from "node:http"
import type { Context, RequestLog } from "./context.ts"
import { readForm, sendEmpty } from "./http.ts"
import { authenticatedClient, claimedClientId, NO_STORE, TOKEN_BODY_LIMIT, tokenError } from "./oauth.ts"
import { fingerprint } from "./tokens.ts"

/** `POST /connect/revocation` (wealthcare). */
export const handleRevocation = async (
  ctx: Context,
  req: IncomingMessage,
  res: ServerResponse,
  log: RequestLog
): Promise<void> => {
  log.kind = "revocation"
  if (req.method !== "POST") {
    tokenError(res, log, 405, "invalid_request", "The revocation endpoint accepts POST only", {
      Allow: "POST"
    })
    return
  }
  const form = await readForm(req, res, TOKEN_BODY_LIMIT)
  if (!form.ok) {
    if (form.aborted) return
    tokenError(res, log, 400, "invalid_request", form.description)
    return
  }
  const params = form.params
  const claimed = claimedClientId(req, params)
  if (claimed !== undefined) log.clientId = claimed

  const client = authenticatedClient(ctx, req, res, log, params)
  if (client === undefined) return

  const token = params.get("token")
  if (token === undefined) {
    tokenError(res, log, 400, "invalid_request", "The token parameter is missing")
    return
  }
  const refreshFirst = params.get("token_type_hint") === "refresh_token"
  const access = () => {
    const record = ctx.registry.findAccess(token)
    return record === undefined ? undefined : { kind: "access_token" as const, record }
  }
  const refresh = () => {
    const record = ctx.registry.findRefresh(token)
    return record === undefined ? undefined : { kind: "refresh_token" as const, record }
  }
  // RFC 7009 section 2.1: a wrong hint only means the search goes on to the other kind.
  const found = refreshFirst ? (refresh() ?? access()) : (access() ?? refresh())

  if (found === undefined) {
    log.error = "unknown_token"
  } else {
    log.tokenFingerprint = fingerprint(token)
    log.tokenKind = found.kind
    log.subject = found.record.subject
    if (found.record.clientId !== client.clientId) {
      log.error = "client_mismatch"
    } else if (found.kind === "access_token") {
      // that token only: the grant's refresh token and its other access tokens stay valid
      ctx.registry.revokeAccess(found.record)
      log.revoked = true
    } else {
      // a rotated refresh token still names its grant: revoking it ends the grant
      ctx.registry.revokeFamily(found.record.familyId)
      log.revoked = true
    }
  }
  sendEmpty(res, 200, NO_STORE)
}
