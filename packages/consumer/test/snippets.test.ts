/**
 * The harness's parts that need no install: Markdown extraction, the info-string convention, the
 * break of the self-check, version picking, and this package's own wiring.
 */
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { highest, ownerOf, publishable, root } from "../src/app.ts"
import { breakSnippet, SUFFIX } from "../src/selfcheck.ts"
import { extract, slugOf } from "../src/snippets.ts"

const fence = "```"

describe("extract", () => {
  const markdown = [
    "# title",
    "",
    `${fence}sh`,
    "npm install x",
    fence,
    "",
    `${fence}ts`,
    'import { a } from "@authfetch/core"',
    "console.log(a)",
    fence,
    "",
    `${fence}typescript typecheck`,
    "export const x: number = 1",
    fence,
    "",
    "- a list item:",
    "",
    `  ${fence}ts server`,
    "  app.listen(0)",
    `  ${fence}`,
    "",
    `~~~~js fragment`,
    "tokens.getToken()",
    "```",
    "still inside",
    "~~~~",
    "",
    `${fence}tsx`,
    "export const Page = () => <p />",
    fence,
    "",
    `${fence}text`,
    `${fence}ts`,
    fence
  ].join("\n")
  const { snippets, problems } = extract(markdown, "packages/ky/README.md")

  it("finds the blocks of checked languages, with their mode", () => {
    expect(problems).toEqual([])
    expect(snippets.map((s) => [s.id, s.lang, s.mode, s.line, s.file])).toEqual([
      ["packages-ky-1", "ts", "run", 7, "snippets/packages-ky-1.ts"],
      ["packages-ky-2", "ts", "typecheck", 12, "snippets/packages-ky-2.ts"],
      ["packages-ky-3", "ts", "server", 18, "snippets/packages-ky-3.ts"],
      ["packages-ky-4", "js", "fragment", 22, "snippets/packages-ky-4.js"],
      ["packages-ky-5", "tsx", "typecheck", 28, "snippets/packages-ky-5.tsx"]
    ])
  })

  it("keeps the code as written, less the fence's indentation", () => {
    expect(snippets[0]!.code).toBe('import { a } from "@authfetch/core"\nconsole.log(a)\n')
    expect(snippets[2]!.code).toBe("app.listen(0)\n")
    expect(snippets[3]!.code).toBe("tokens.getToken()\n```\nstill inside\n")
  })

  it("reports unknown words, two modes, a running tsx and an unclosed fence", () => {
    const bad = [`${fence}ts typechek`, "x", fence, `${fence}ts server fragment`, "x", fence]
    bad.push(`${fence}tsx server`, "x", fence, `${fence}ts`, "x")
    expect(extract(bad.join("\n"), "README.md").problems).toEqual([
      'README.md:1: unknown word "typechek" after the language (allowed: typecheck, server, fragment)',
      "README.md:4: one mode at most (got server, fragment)",
      'README.md:7: a tsx block cannot be run by Node (JSX): use "typecheck" or "fragment"',
      "README.md:10: code block never closed"
    ])
  })

  it("names files after their README", () => {
    expect(slugOf("README.md")).toBe("readme")
    expect(slugOf("examples/next-app/README.md")).toBe("examples-next-app")
  })
})

describe("breakSnippet", () => {
  const snippet = extract(
    `${fence}ts\nimport { type Tokens, authFetch, createTokenSource as make } from "@authfetch/core"\nmake({} as never)\n${fence}\n`,
    "README.md"
  ).snippets[0]!

  it("asks our package for an export that does not exist, leaving the local name", () => {
    const broken = breakSnippet(snippet)!
    expect(broken.missing).toBe(`authFetch${SUFFIX}`)
    expect(broken.code).toBe(
      `import { type Tokens, authFetch${SUFFIX} as authFetch, createTokenSource as make } from "@authfetch/core"\nmake({} as never)\n`
    )
  })

  it("finds nothing to break without a named import from @authfetch/*", () => {
    const plain = extract(`${fence}ts\nimport ky from "ky"\n${fence}\n`, "README.md").snippets[0]!
    expect(breakSnippet(plain)).toBeUndefined()
  })
})

describe("versions and diagnostics", () => {
  it("picks the highest version, releases before prereleases", () => {
    expect(highest(["5.0.4", "5.0.10", "5.0.6"])).toBe("5.0.10")
    expect(highest(["2.0.0-rc.1", "1.9.9", "2.0.0"])).toBe("2.0.0")
    expect(highest([])).toBeUndefined()
  })

  it("tells our diagnostics from the dependencies' own", () => {
    expect(ownerOf({ file: "snippets/readme-1.ts", text: "" })).toBe("ours")
    expect(ownerOf({ file: "", text: "error TS5023" })).toBe("ours")
    expect(ownerOf({ file: "node_modules/@authfetch/core/dist/x.d.ts", text: "" })).toBe("ours")
    expect(ownerOf({ file: "node_modules/next/dist/x.d.ts", text: "" })).toBe("next")
    expect(ownerOf({ file: "node_modules/@types/react/index.d.ts", text: "" })).toBe("@types/react")
  })
})

describe("this package", () => {
  it("depends on every publishable package, so that turbo builds them first", () => {
    const manifest = JSON.parse(readFileSync(join(root, "packages", "consumer", "package.json"), "utf8"))
    const names = publishable().map((workspace) => workspace.name)
    expect(names.length).toBeGreaterThan(0)
    for (const name of names) expect(manifest.devDependencies[name], name).toBe("workspace:*")
  })
})
