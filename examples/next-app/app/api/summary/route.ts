// A route handler that calls the API itself: consumer and first page of accounts, one JSON answer.
import { withAuthFetch } from "@authfetch/next"
import { baseUrl, tokens } from "../../../lib/wex"

export const dynamic = "force-dynamic"

export const GET = withAuthFetch(
  async (request, { authFetch }) => {
    const query = new URL(request.url).searchParams
    const id = query.get("consumer") ?? "12345"
    const pageSize = query.get("pageSize") ?? "5"
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(id) || !/^\d{1,4}$/.test(pageSize)) {
      return Response.json({ error: "bad consumer id or page size" }, { status: 400 })
    }
    // With problemDetails, a non-2xx answer throws ProblemDetailsError: withAuthFetch answers it with
    // problem+json (the status for a 4xx, 502 otherwise), never with the upstream's own text.
    const [consumer, accounts] = await Promise.all([
      authFetch(`/v1/consumers/${id}`).then((r) => r.json()),
      authFetch(`/v1/consumers/${id}/accounts?pageSize=${pageSize}`).then((r) => r.json())
    ])
    return Response.json({ consumer, accounts })
  },
  () => ({ tokens, baseUrl: baseUrl(), problemDetails: true })
)
