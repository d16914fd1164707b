/**
 * Runs once when the server starts (`next start`, `next dev`; never at `next build`): with
 * `REDIS_URL` set, a store configuration that cannot work stops the server there, naming the
 * variable (`lib/store.ts`). The import is Node.js-only (Next leaves it out of the Edge bundle).
 */
export async function register() {
  if (process.env.NEXT_RUNTIME === "nodejs") {
    const { checkStoreAtStart } = await import("./lib/store")
    checkStoreAtStart()
  }
}
