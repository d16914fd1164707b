// Sign-in, callback and sign-out: GET /auth/signin?returnTo=/account, GET /auth/callback, POST /auth/signout.
import { createSignInRoute } from "@authfetch/next"
import { sessions } from "../../../lib/auth"

export const dynamic = "force-dynamic"

export const { GET, POST } = createSignInRoute(sessions)
