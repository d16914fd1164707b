/**
 * The examples' test scripts (`smoke.ts`, `fleet.ts`) report each check on a
 * line of its own and exit 1 when any failed: a small harness so that they run
 * with nothing but Node.
 */
export const checks = () => {
  const counts = { passed: 0, failed: 0 }
  const check = async (name: string, run: () => Promise<void>) => {
    try {
      await run()
      counts.passed++
      console.log(`  ok    ${name}`)
    } catch (error) {
      counts.failed++
      console.log(`  FAIL  ${name}: ${error instanceof Error ? error.message : String(error)}`)
    }
  }
  const expect = (condition: boolean, what: string) => {
    if (!condition) throw new Error(what)
  }
  /** exit code: 0 when something passed and nothing failed */
  const exitCode = () => (counts.failed === 0 && counts.passed > 0 ? 0 : 1)
  return { check, expect, counts, exitCode }
}
