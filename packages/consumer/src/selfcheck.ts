/**
 * The harness's own check: a real snippet, broken on purpose, must fail. Without it, a harness that
 * checked nothing (a wrong file list, a typecheck whose errors are dropped, runs that always pass)
 * would pass silently.
 */
import type { Snippet } from "./snippets.ts"

export interface Broken {
  readonly snippet: Snippet
  /** the name imported from one of our packages that the broken copy asks for instead */
  readonly missing: string
  readonly code: string
}

/** The suffix that makes an export name one that no package of ours has. */
export const SUFFIX = "RenamedBySelfCheck"

/**
 * `import { a, b } from "@authfetch/x"` → `import { aRenamedBySelfCheck as a, b } from "@authfetch/x"`:
 * the snippet asks our package for an export that does not exist, and is otherwise unchanged (the
 * local name stays). `undefined` when the snippet imports no value by name from a package of ours.
 */
export const breakSnippet = (snippet: Snippet): Broken | undefined => {
  const imports = /import\s*\{([^}]*)\}\s*from\s*["'](@authfetch\/[^"']+)["']/g
  for (const match of snippet.code.matchAll(imports)) {
    const specifiers = match[1]!.split(",").map((s) => s.trim())
    const target = specifiers.findIndex((s) => s !== "" && !s.startsWith("type "))
    if (target < 0) continue
    const [imported = "", local] = specifiers[target]!.split(/\s+as\s+/)
    const missing = `${imported}${SUFFIX}`
    const replaced = specifiers.map((s, i) => (i === target ? `${missing} as ${local ?? imported}` : s))
    const statement = match[0].replace(match[1]!, ` ${replaced.filter((s) => s !== "").join(", ")} `)
    const at = match.index
    return {
      snippet,
      missing,
      code: snippet.code.slice(0, at) + statement + snippet.code.slice(at + match[0].length)
    }
  }
  return undefined
}
