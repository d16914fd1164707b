#!/usr/bin/env node
// The whole test command: build, typecheck, check the published shape (publint, attw)
// and test every package (turbo), lint
// (Biome), then one summary line counting every Vitest test in the repository.
// Exits non-zero if any step failed or if no test ran at all.
import { spawnSync } from "node:child_process"
import { existsSync, readdirSync, readFileSync, rmSync } from "node:fs"
import { join } from "node:path"

const root = new URL("..", import.meta.url).pathname
const workspaces = ["packages", "examples"].flatMap((dir) =>
  existsSync(join(root, dir)) ? readdirSync(join(root, dir)).map((name) => join(root, dir, name)) : []
)
for (const ws of workspaces) rmSync(join(ws, "test-results"), { recursive: true, force: true })

// The sandbox page is tested in Debian's Chromium (a browser download from elsewhere is not
// possible here). On a fresh machine, install it when we can; otherwise say how.
if (!existsSync("/usr/bin/chromium")) {
  const root = typeof process.getuid === "function" && process.getuid() === 0
  if (root && existsSync("/usr/bin/apt-get")) {
    console.log("$ apt-get install -y chromium   (for the browser test of the sandbox page)")
    spawnSync("apt-get", ["update", "-qq"], { stdio: "inherit" })
    spawnSync("apt-get", ["install", "-y", "-qq", "chromium"], {
      stdio: "inherit",
      env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" }
    })
  } else {
    console.log(
      "note: /usr/bin/chromium is missing; the browser test will fail (apt-get install -y chromium)"
    )
  }
}

const run = (command, args) => {
  console.log(`\n$ ${command} ${args.join(" ")}`)
  return spawnSync(command, args, {
    stdio: "inherit",
    cwd: root,
    env: { ...process.env, TURBO_TELEMETRY_DISABLED: "1" }
  }).status
}

// One task at a time: several suites hold real-time bounds (an abort answered within 50 ms, tokens
// of 2 s across a revocation), which two cores shared by ten parallel suites cannot honour.
const steps = [
  [
    "turbo",
    ["run", "build", "typecheck", "check-package", "test", "--continue", "--force", "--concurrency=1"]
  ],
  ["biome", ["check", "."]]
]
let failed = false
for (const [command, args] of steps) if (run(command, args) !== 0) failed = true

let passed = 0
let failedTests = 0
let skipped = 0
const perPackage = []
for (const ws of workspaces) {
  const file = join(ws, "test-results", "vitest.json")
  if (!existsSync(file)) continue
  const report = JSON.parse(readFileSync(file, "utf8"))
  passed += report.numPassedTests
  failedTests += report.numFailedTests
  skipped += report.numPendingTests + report.numTodoTests
  perPackage.push(
    `  ${ws.slice(root.length)}: ${report.numPassedTests} passed, ${report.numFailedTests} failed`
  )
}
console.log(`\nVitest results by workspace:\n${perPackage.join("\n")}`)
if (skipped > 0) console.log(`(${skipped} skipped: see the runner output above for why)`)
console.log(`tests: ${passed} passed, ${failedTests} failed, ${skipped} skipped`)
if (passed === 0) {
  console.error("no test ran")
  failed = true
}
process.exit(failed || failedTests > 0 ? 1 : 0)
