// Where sign-out lands (afterSignOut in lib/auth.ts).
export default function SignedOut() {
  return (
    <main>
      <h1>You are signed out</h1>
      <p>
        <a href="/auth/signin?returnTo=%2Faccount">Sign in again</a>
      </p>
    </main>
  )
}
