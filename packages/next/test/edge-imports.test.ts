/**
 * Edge-safety by construction: the modules `@authfetch/next` loads (its own,
 * the core's built output, effect's) import no Node.js built-in, so the edge
 * path needs nothing Node-only. The route-handler tests also run in an
 * Edge-runtime environment (vitest.config.ts), and examples/next-app builds
 * and serves an `export const runtime = "edge"` proxy route with `next build`
 * and `next start`; this test names the offending import if one appears.
 */
import { readFileSync } from "node:fs"
import { builtinModules, createRequire } from "node:module"
import { dirname, join, resolve } from "node:path"
import { describe, expect, it } from "vitest"

const here = dirname(new URL(import.meta.url).pathname)
const entry = resolve(here, "../src/index.ts")

/** Specifiers of static and dynamic imports and re-exports; type-only imports skipped. */
const specifiers = (source: string): Array<string> => {
  const code = source.replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "")
  const found: Array<string> = []
  const patterns = [
    /^\s*import\s+(?!type\s)[^'"]*?from\s*["']([^"']+)["']/gm,
    /^\s*import\s*["']([^"']+)["']/gm,
    /^\s*export\s+(?!type\s)[^'"]*?from\s*["']([^"']+)["']/gm,
    /\bimport\(\s*["']([^"']+)["']\s*\)/g
  ]
  for (const pattern of patterns) for (const match of code.matchAll(pattern)) found.push(match[1]!)
  return found
}

const isBuiltin = (specifier: string) =>
  specifier.startsWith("node:") || builtinModules.includes(specifier.split("/")[0]!)

/** Every module reachable from the entry, and the built-ins any of them import. */
const walk = () => {
  const seen = new Set<string>()
  const builtins: Array<string> = []
  const queue = [entry]
  while (queue.length > 0) {
    const file = queue.pop()!
    if (seen.has(file)) continue
    seen.add(file)
    for (const specifier of specifiers(readFileSync(file, "utf8"))) {
      if (isBuiltin(specifier)) {
        builtins.push(`${file}: ${specifier}`)
        continue
      }
      // A marker: Next resolves it to an empty module on the server, and fails the build in client code.
      if (specifier === "server-only") continue
      const target = specifier.startsWith(".")
        ? join(dirname(file), specifier)
        : createRequire(file).resolve(specifier)
      queue.push(target)
    }
  }
  return { modules: [...seen], builtins }
}

describe("edge safety", () => {
  it("no module on the path of @authfetch/next imports a Node.js built-in", () => {
    const { modules, builtins } = walk()
    expect(modules.some((m) => m.includes("/packages/core/dist/BffProxy.js"))).toBe(true)
    expect(modules.some((m) => /\/effect\/dist\/.*\.js$/.test(m))).toBe(true)
    expect(builtins).toEqual([])
  })

  it("the walk would notice one", () => {
    expect(specifiers('import { x } from "node:crypto"\nimport type { Y } from "node:http"')).toEqual([
      "node:crypto"
    ])
    expect(isBuiltin("node:crypto") && isBuiltin("fs/promises") && !isBuiltin("effect")).toBe(true)
  })
})
