/**
 * The code snippets of the READMEs, taken out of the Markdown so that a snippet that drifts from
 * the packages breaks the build.
 *
 * Every fenced code block whose language is `ts`, `typescript`, `tsx`, `js` or `javascript` is a
 * snippet. Words after the language set what is done with it (see README.md of this package):
 *
 * - none: typechecked, then run with Node; it must exit by itself, with code 0;
 * - `typecheck`: typechecked only (a Next route file, code that needs a real provider);
 * - `server`: typechecked, then run until it prints a line containing "listening" (or stays up 3 s
 *   without exiting), then stopped;
 * - `fragment`: neither (a piece that cannot stand alone; counted and reported, we aim for zero).
 *
 * `tsx` blocks are never run (Node cannot strip JSX): they are typechecked unless `fragment`.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"

export type Mode = "run" | "typecheck" | "server" | "fragment"
export type Lang = "ts" | "tsx" | "js"

export interface Snippet {
  /** the README, relative to the repository root (`packages/ky/README.md`) */
  readonly readme: string
  /** 1-based, among the snippets of its README (fragments included, so marks do not renumber) */
  readonly index: number
  /** `packages-ky-2`: unique in the repository, the name of its file in the app */
  readonly id: string
  /** line of the opening fence in the README (1-based); line n of the code is README line `line + n` */
  readonly line: number
  readonly lang: Lang
  readonly mode: Mode
  /** the info string as written, after the language */
  readonly info: string
  readonly code: string
  /** where it is written in the app: `snippets/packages-ky-2.ts` */
  readonly file: string
}

export interface Extracted {
  readonly snippets: ReadonlyArray<Snippet>
  /** malformed fences and info strings, `README.md:12: ...`: each fails the test */
  readonly problems: ReadonlyArray<string>
}

const LANGS: Readonly<Record<string, Lang>> = {
  ts: "ts",
  typescript: "ts",
  tsx: "tsx",
  js: "js",
  javascript: "js"
}
const MODES: ReadonlyArray<Exclude<Mode, "run">> = ["typecheck", "server", "fragment"]
const EXTENSIONS: Readonly<Record<Lang, string>> = { ts: ".ts", tsx: ".tsx", js: ".js" }

/** `README.md` → `readme`, `packages/ky/README.md` → `packages-ky` */
export const slugOf = (readme: string): string => {
  const dir = readme.replace(/(^|\/)README\.md$/i, "")
  return dir === "" ? "readme" : dir.replace(/[^A-Za-z0-9]+/g, "-").toLowerCase()
}

/**
 * The fenced code blocks of a Markdown text, CommonMark's way: an opening fence of at least three
 * backticks or tildes (indented by any amount, as inside list items), closed by a fence of the same
 * character at least as long with nothing after it; the opening fence's indentation is removed from
 * the lines inside.
 */
export const extract = (markdown: string, readme: string): Extracted => {
  const lines = markdown.split(/\r?\n/)
  const snippets: Array<Snippet> = []
  const problems: Array<string> = []
  const slug = slugOf(readme)
  let index = 0
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)(`{3,}|~{3,})(.*)$/.exec(lines[i]!)
    if (open === null) continue
    const [, indent = "", fence = "", rest = ""] = open
    if (fence.startsWith("`") && rest.includes("`")) continue // inline code, not a fence
    const closing = new RegExp(`^\\s*${fence[0] === "`" ? "`" : "~"}{${fence.length},}\\s*$`)
    let end = i + 1
    while (end < lines.length && !closing.test(lines[end]!)) end++
    const where = `${readme}:${i + 1}`
    if (end === lines.length) {
      problems.push(`${where}: code block never closed`)
      break
    }
    const words = rest
      .trim()
      .split(/\s+/)
      .filter((word) => word !== "")
    const lang = LANGS[(words[0] ?? "").toLowerCase()]
    const body = lines
      .slice(i + 1, end)
      .map((line) => (line.startsWith(indent) ? line.slice(indent.length) : line.trimStart()))
    const startLine = i + 1
    i = end
    if (lang === undefined) continue
    index++
    const extra = words.slice(1)
    const unknown = extra.filter((word) => !(MODES as ReadonlyArray<string>).includes(word))
    if (unknown.length > 0) {
      problems.push(
        `${where}: unknown word${unknown.length > 1 ? "s" : ""} ${unknown.map((w) => `"${w}"`).join(", ")} ` +
          `after the language (allowed: ${MODES.join(", ")})`
      )
    }
    const modes = extra.filter((word): word is Exclude<Mode, "run"> =>
      (MODES as ReadonlyArray<string>).includes(word)
    )
    if (modes.length > 1) problems.push(`${where}: one mode at most (got ${modes.join(", ")})`)
    let mode: Mode = modes[0] ?? (lang === "tsx" ? "typecheck" : "run")
    if (lang === "tsx" && mode === "server") {
      problems.push(`${where}: a tsx block cannot be run by Node (JSX): use "typecheck" or "fragment"`)
      mode = "typecheck"
    }
    const id = `${slug}-${index}`
    snippets.push({
      readme,
      index,
      id,
      line: startLine,
      lang,
      mode,
      info: extra.join(" "),
      code: `${body.join("\n")}\n`,
      file: `snippets/${id}${EXTENSIONS[lang]}`
    })
  }
  return { snippets, problems }
}

/** `README.md`, then `packages/*\/README.md` and `examples/*\/README.md`, sorted */
export const readmesOf = (root: string): ReadonlyArray<string> => {
  const found = existsSync(join(root, "README.md")) ? ["README.md"] : []
  for (const dir of ["packages", "examples"]) {
    if (!existsSync(join(root, dir))) continue
    for (const name of readdirSync(join(root, dir)).sort()) {
      const readme = `${dir}/${name}/README.md`
      if (existsSync(join(root, readme))) found.push(readme)
    }
  }
  return found
}

/** Every snippet of every README of the repository at `root`. */
export const extractAll = (root: string): Extracted => {
  const results = readmesOf(root).map((readme) => extract(readFileSync(join(root, readme), "utf8"), readme))
  return {
    snippets: results.flatMap((result) => result.snippets),
    problems: results.flatMap((result) => result.problems)
  }
}

export const isChecked = (snippet: Snippet): boolean => snippet.mode !== "fragment"
export const isRunnable = (snippet: Snippet): boolean => snippet.mode === "run" || snippet.mode === "server"

/** One line per README: `packages/ky/README.md: 2 snippets: 1 run, 0 server, 0 typecheck, 1 fragment` */
export const summaryOf = (snippets: ReadonlyArray<Snippet>): string => {
  const byReadme = new Map<string, Array<Snippet>>()
  for (const snippet of snippets)
    byReadme.set(snippet.readme, [...(byReadme.get(snippet.readme) ?? []), snippet])
  const count = (list: ReadonlyArray<Snippet>, mode: Mode) => list.filter((s) => s.mode === mode).length
  const line = (name: string, list: ReadonlyArray<Snippet>) =>
    `${name}: ${list.length} snippet${list.length === 1 ? "" : "s"}: ${count(list, "run")} run, ` +
    `${count(list, "server")} server, ${count(list, "typecheck")} typecheck only, ${count(list, "fragment")} fragment`
  return [
    ...[...byReadme].map(([readme, list]) => `  ${line(readme, list)}`),
    `  ${line("all READMEs", snippets)}`
  ].join("\n")
}
