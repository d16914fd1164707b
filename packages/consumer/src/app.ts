/**
 * What a user does, step by step: pack every publishable package, pick the peers' versions, install
 * the tarballs and the peers into a fresh app outside the workspace, typecheck its files.
 */
import { existsSync, readdirSync, readFileSync, realpathSync, writeFileSync } from "node:fs"
import { delimiter, dirname, join, relative, sep } from "node:path"
import { type Result, run } from "./proc.ts"

export const root = join(import.meta.dirname, "..", "..", "..")

export interface Workspace {
  readonly name: string
  readonly dir: string
  readonly manifest: {
    readonly name: string
    readonly version: string
    readonly private?: boolean
    readonly peerDependencies?: Readonly<Record<string, string>>
    readonly devDependencies?: Readonly<Record<string, string>>
  }
}

const readJson = (file: string): any => JSON.parse(readFileSync(file, "utf8"))

/** Every package of `packages/` that is published: its package.json does not say `"private": true`. */
export const publishable = (): ReadonlyArray<Workspace> =>
  readdirSync(join(root, "packages"))
    .sort()
    .filter((name) => existsSync(join(root, "packages", name, "package.json")))
    .map((name) => {
      const dir = join(root, "packages", name)
      const manifest = readJson(join(dir, "package.json"))
      return { name: manifest.name, dir, manifest }
    })
    .filter((workspace) => workspace.manifest.private !== true)

/** The bin of a package this one depends on, to be run with `process.execPath`. */
export const binOf = (pkg: string, bin: string): string => {
  // not require.resolve: publint's exports do not name its package.json
  const manifestPath = realpathSync(join(import.meta.dirname, "..", "node_modules", pkg, "package.json"))
  const bins = readJson(manifestPath).bin
  const file = typeof bins === "string" ? bins : bins?.[bin]
  if (typeof file !== "string") throw new Error(`${pkg} has no bin ${bin}`)
  return join(dirname(manifestPath), file)
}

// ---------------------------------------------------------------------------------------------
// environments

/** The directory of the Node.js running this test (the workspace's pinned Node 24). */
const nodeDir = dirname(process.execPath)

/** npm settings a user's own npm would read too (registry, cache, certificates, proxies). */
const KEPT_NPM_CONFIG =
  /^npm_config_(registry|cache|cafile|ca|userconfig|globalconfig|proxy|https_proxy|noproxy|strict_ssl|@.*:registry|\/\/.*)$/i

/**
 * The environment of a command run in the app, as if typed by a user in a shell: no variables set
 * by pnpm for this workspace (`npm_config_local_prefix` would send `npm install` back into it), no
 * `node_modules/.bin` of the workspace on `PATH`, and the pinned Node first on `PATH` (npm runs on it).
 */
export const userEnv = (extra: Readonly<Record<string, string>> = {}): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = {}
  for (const [key, value] of Object.entries(process.env)) {
    if (value === undefined) continue
    if (
      /^(npm_|pnpm_|PNPM_|VITEST|NODE_OPTIONS$|NODE$|INIT_CWD$|TURBO_)/i.test(key) &&
      !KEPT_NPM_CONFIG.test(key)
    )
      continue
    env[key] = value
  }
  const path = (process.env.PATH ?? "")
    .split(delimiter)
    .filter((entry) => entry !== "" && !entry.split(sep).includes("node_modules"))
  env.PATH = [nodeDir, ...path].join(delimiter)
  return { ...env, ...extra }
}

// ---------------------------------------------------------------------------------------------
// pack

/**
 * The pnpm that runs this test (`pnpm test` sets `npm_execpath` to it), or `npx -y pnpm@12` as the
 * README says. The former spares a second npx, which waits for npx's lock while another holds it.
 */
const pnpm = (): ReadonlyArray<string> => {
  const execPath = process.env.npm_execpath
  if (
    execPath !== undefined &&
    /^pnpm\//.test(process.env.npm_config_user_agent ?? "") &&
    existsSync(execPath)
  ) {
    return /\.[cm]?js$/.test(execPath) ? [process.execPath, execPath] : [execPath]
  }
  return ["npx", "-y", "pnpm@12"]
}

export interface Tarball {
  readonly name: string
  readonly file: string
}

/**
 * `pnpm pack` of every publishable package into `destination` (pnpm rewrites the `workspace:`
 * ranges to versions). One pnpm run for all of them: each is packed in its own directory.
 */
export const pack = async (destination: string): Promise<ReadonlyArray<Tarball>> => {
  const packages = publishable()
  const filters = packages.flatMap((workspace) => ["--filter", workspace.name])
  const [command, ...pnpmArgs] = pnpm()
  const result = await run(
    command!,
    [...pnpmArgs, "-r", ...filters, "pack", "--pack-destination", destination],
    { cwd: root, env: process.env, timeoutMs: 180_000 }
  )
  mustSucceed(result, "pnpm pack")
  return packages.map((workspace) => {
    const file = join(
      destination,
      `${workspace.manifest.name.replace(/^@/, "").replace("/", "-")}-${workspace.manifest.version}.tgz`
    )
    if (!existsSync(file)) throw new Error(`pnpm pack made no ${file}:\n${result.stdout}\n${result.stderr}`)
    return { name: workspace.manifest.name, file }
  })
}

export const mustSucceed = (result: Result, what: string): void => {
  if (result.code === 0) return
  throw new Error(
    `${what} failed (${result.timedOut ? "timed out" : `exit code ${result.code}`}): ${result.command}\n${result.stdout}\n${result.stderr}`
  )
}

// ---------------------------------------------------------------------------------------------
// versions

/** The highest of `versions` (releases before prereleases, as npm ranges select them). */
export const highest = (versions: ReadonlyArray<string>): string | undefined => {
  const parse = (version: string) => {
    const [core = "", pre] = version.split("-", 2)
    return { parts: core.split(".").map(Number), pre }
  }
  return [...versions].sort((a, b) => {
    const x = parse(a)
    const y = parse(b)
    for (let i = 0; i < 3; i++) {
      const d = (x.parts[i] ?? 0) - (y.parts[i] ?? 0)
      if (d !== 0) return d
    }
    if (x.pre === undefined || y.pre === undefined)
      return x.pre === undefined ? (y.pre === undefined ? 0 : 1) : -1
    return x.pre < y.pre ? -1 : x.pre > y.pre ? 1 : 0
  })[versions.length - 1]
}

const npmView = async (spec: string, field: string): Promise<unknown> => {
  const result = await run("npm", ["view", spec, field, "--json"], {
    cwd: root,
    env: userEnv(),
    timeoutMs: 60_000
  })
  mustSucceed(result, `npm view ${spec} ${field}`)
  return result.stdout.trim() === "" ? undefined : JSON.parse(result.stdout)
}

/** The newest version that `range` allows, asked of the registry: `newest("effect", "^4.1.0")`. */
export const newest = async (name: string, range: string): Promise<string> => {
  const answer = await npmView(`${name}@${range}`, "version")
  const versions = Array.isArray(answer) ? answer.map(String) : answer === undefined ? [] : [String(answer)]
  const best = highest(versions)
  if (best === undefined) throw new Error(`no version of ${name} satisfies ${range}`)
  return best
}

export interface Versions {
  /** `effect` as the workspace's lockfile has it (packages/core/node_modules/effect) */
  readonly effectLocked: string
  /** the newest `effect` that core's peer range allows */
  readonly effectNewest: string
  /** the other packages of the apps, `name@version` */
  readonly peers: ReadonlyArray<string>
  /** where each version comes from, for the summary */
  readonly notes: ReadonlyArray<string>
}

/** Every package an app installs besides our tarballs and `effect`, at the newest version its range allows. */
export const resolveVersions = async (): Promise<Versions> => {
  const packages = publishable()
  const ranges = new Map<string, string>()
  for (const workspace of packages) {
    for (const [name, range] of Object.entries(workspace.manifest.peerDependencies ?? {})) {
      if (name.startsWith("@authfetch/")) continue
      const known = ranges.get(name)
      if (known !== undefined && known !== range) {
        throw new Error(`the peer ranges of ${name} differ between packages (${known}, ${range}): align them`)
      }
      ranges.set(name, range)
    }
  }
  const effectRange = ranges.get("effect")
  if (effectRange === undefined) throw new Error("@authfetch/core has no peer dependency on effect")
  ranges.delete("effect")
  const effectLocked = readJson(
    join(root, "packages", "core", "node_modules", "effect", "package.json")
  ).version
  const typescript = readJson(join(root, "package.json")).devDependencies?.typescript
  const nodeMajor = process.versions.node.split(".")[0]
  const chosen = new Map<string, string>()
  const notes: Array<string> = []
  const pick = async (name: string, range: string, from: string) => {
    const version = await newest(name, range)
    chosen.set(name, version)
    notes.push(`${name}@${version} (newest of ${range}, ${from})`)
  }
  await Promise.all([
    pick("effect", effectRange, "core's peer range").then(() => undefined),
    ...[...ranges].map(([name, range]) => pick(name, range, "peer range")),
    pick("typescript", `^${String(typescript).replace(/^[^\d]*/, "")}`, "the workspace's major"),
    pick("@types/node", `^${nodeMajor}`, "the Node.js running the test")
  ])
  const next = chosen.get("next")
  if (next !== undefined) {
    const nextPeers = ((await npmView(`next@${next}`, "peerDependencies")) ?? {}) as Record<string, string>
    await Promise.all(
      ["react", "react-dom"].map((name) =>
        pick(name, nextPeers[name] ?? "latest", `next@${next}'s peer range`)
      )
    )
    const react = chosen.get("react")!
    await pick("@types/react", `^${react.split(".")[0]}`, "react's major")
  }
  const effectNewest = chosen.get("effect")!
  chosen.delete("effect")
  return {
    effectLocked,
    effectNewest,
    peers: [...chosen].sort(([a], [b]) => (a < b ? -1 : 1)).map(([name, version]) => `${name}@${version}`),
    notes: notes.sort()
  }
}

// ---------------------------------------------------------------------------------------------
// the app

/**
 * A fresh app in `dir` (outside the workspace: no node_modules of ours above it), with our
 * tarballs, `effect@effect` and the peers, installed by npm as a user would.
 */
export const install = async (
  dir: string,
  tarballs: ReadonlyArray<Tarball>,
  effect: string,
  peers: ReadonlyArray<string>
): Promise<Result> => {
  writeFileSync(join(dir, "package.json"), `${JSON.stringify({ type: "module", private: true }, null, 2)}\n`)
  const result = await run(
    "npm",
    [
      "install",
      "--save-exact",
      "--prefer-offline",
      "--no-audit",
      "--no-fund",
      "--loglevel=error",
      ...tarballs.map((tarball) => tarball.file),
      `effect@${effect}`,
      ...peers
    ],
    { cwd: dir, env: userEnv(), timeoutMs: 300_000 }
  )
  mustSucceed(result, `npm install in ${dir}`)
  const installed = readJson(join(dir, "node_modules", "effect", "package.json")).version
  if (installed !== effect) throw new Error(`${dir} has effect ${installed}, not ${effect}`)
  return result
}

/**
 * The app's TypeScript configuration: the options the issue asks for. No DOM lib: the types must
 * work in a Node.js app without it. `skipLibCheck: false`: declaration files are checked too.
 */
export const compilerOptions = {
  noEmit: true,
  module: "nodenext",
  moduleResolution: "nodenext",
  target: "es2022",
  lib: ["es2022"],
  types: ["node"],
  strict: true,
  // each snippet is a module of its own (ESM: `"type": "module"`), never a script sharing globals
  moduleDetection: "force",
  skipLibCheck: false,
  verbatimModuleSyntax: true,
  erasableSyntaxOnly: true,
  allowJs: true,
  checkJs: true,
  jsx: "react-jsx"
} as const

export interface Diagnostic {
  /** relative to the app, `snippets/readme-3.ts`; "" for a diagnostic without a file */
  readonly file: string
  readonly text: string
}

export interface Typecheck {
  readonly result: Result
  readonly diagnostics: ReadonlyArray<Diagnostic>
}

/** `tsc -p <tsconfig>` with the app's own TypeScript; its diagnostics, one per error. */
export const typecheck = async (dir: string, files: ReadonlyArray<string>, name = "tsconfig.json") => {
  writeFileSync(
    join(dir, name),
    `${JSON.stringify({ compilerOptions: compilerOptions, files: [...files] }, null, 2)}\n`
  )
  const result = await run(
    process.execPath,
    [join(dir, "node_modules", "typescript", "bin", "tsc"), "-p", name, "--pretty", "false"],
    { cwd: dir, env: userEnv(), timeoutMs: 300_000 }
  )
  const diagnostics: Array<Diagnostic> = []
  for (const line of result.stdout.split("\n")) {
    if (line.trim() === "") continue
    const start = /^(.+?)\(\d+,\d+\): error /.exec(line)
    if (start !== null) diagnostics.push({ file: relative(dir, join(dir, start[1]!)), text: line })
    else if (/^error /.test(line)) diagnostics.push({ file: "", text: line })
    else if (diagnostics.length > 0) {
      const last = diagnostics.pop()!
      diagnostics.push({ ...last, text: `${last.text}\n${line}` })
    }
  }
  return { result, diagnostics } satisfies Typecheck
}

/**
 * Whose a diagnostic is: ours (a snippet, a file of ours in the app, our packages' declarations,
 * or no file) or a dependency's (the declaration files of effect, next, ...: checked with
 * `skipLibCheck: false` too, but their errors are theirs and are only reported).
 */
export const ownerOf = (diagnostic: Diagnostic): string => {
  if (diagnostic.file === "" || !diagnostic.file.startsWith(`node_modules${sep}`)) return "ours"
  const parts = diagnostic.file.split(sep)
  const name = parts[1]?.startsWith("@") ? `${parts[1]}/${parts[2]}` : (parts[1] ?? "")
  return name.startsWith("@authfetch/") ? "ours" : name
}
