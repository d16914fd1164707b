/**
 * The consumer test (issue #13): what a user does, from the tarballs on.
 *
 * 1. `pnpm pack` every publishable package; `publint --strict` and `attw --profile esm-only` on
 *    each tarball.
 * 2. Two fresh apps in the OS's temporary directory, outside the workspace: `npm install` of the
 *    tarballs and the peers from the registry, `effect` at the version the workspace locks in one
 *    and at the newest version core's peer range allows in the other.
 * 3. In each app, every code snippet of every README (extracted from the Markdown: a snippet that
 *    drifts breaks the build) is typechecked (no DOM lib, `skipLibCheck: false`) and, unless
 *    marked otherwise, run with Node against sandboxes started here: it must exit by itself with 0.
 * 4. In each app, a script that never disposes its token source must exit by itself.
 * 5. Self-check: a real snippet broken on purpose fails the typecheck and the run, and there are at
 *    least RUNNABLE_FLOOR runnable snippets.
 *
 * Set AUTHFETCH_CONSUMER_KEEP=1 to keep the apps (their directories are printed).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { type Sandbox, startSandbox } from "@authfetch/sandbox"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type RedisServer, startRedis } from "../../redis/test/support/redisServer.ts"
import {
  binOf,
  install,
  ownerOf,
  pack,
  publishable,
  resolveVersions,
  root,
  type Tarball,
  typecheck,
  userEnv,
  type Versions
} from "../src/app.ts"
import { snippetEnv } from "../src/env.ts"
import { report, run, serve } from "../src/proc.ts"
import { NEVER_DISPOSES } from "../src/programs.ts"
import { breakSnippet } from "../src/selfcheck.ts"
import { extractAll, isChecked, isRunnable, type Snippet, summaryOf } from "../src/snippets.ts"

/** A README rewrite that marks (almost) everything `fragment` is noticed. */
const RUNNABLE_FLOOR = 5
/** A `ts` snippet must exit by itself within this. */
const RUN_TIMEOUT = 30_000
/** A `ts server` snippet is ready when it prints "listening", or when it has stayed up this long. */
const SERVER_UP = 3_000
/** The script that never disposes must exit within this. */
const NEVER_DISPOSES_TIMEOUT = 20_000

const KEEP = process.env.AUTHFETCH_CONSUMER_KEEP === "1"

const extracted = extractAll(root)
const snippets = extracted.snippets
const checked = snippets.filter(isChecked)
const runs = snippets.filter((s) => s.mode === "run")
const servers = snippets.filter((s) => s.mode === "server")
const title = (s: Snippet) => `${s.id} (${s.readme}:${s.line})`

// ---------------------------------------------------------------------------------------------
// setup, shared by every describe: started once, the installs run while the tarballs are checked

type Flavor = "locked" | "newest"

interface Setup {
  readonly work: string
  readonly tarballs: ReadonlyArray<Tarball>
  readonly versions: Versions
  readonly apps: Readonly<Record<Flavor, Promise<string>>>
}

const timings: Array<string> = []
const timed = async <A>(what: string, f: () => Promise<A>): Promise<A> => {
  const started = Date.now()
  try {
    return await f()
  } finally {
    timings.push(`${what}: ${((Date.now() - started) / 1000).toFixed(1)} s`)
  }
}

let setupPromise: Promise<Setup> | undefined
/** the temporary directory of this run: removed at the end, whatever happened */
let workDir: string | undefined
const setup = (): Promise<Setup> => {
  setupPromise ??= (async () => {
    const work = mkdtempSync(join(tmpdir(), "authfetch-consumer-"))
    workDir = work
    const tarballDir = join(work, "tarballs")
    mkdirSync(tarballDir)
    // both to their end, so that nothing is left running when one fails
    const [packed, resolved] = await Promise.allSettled([
      timed("pack", () => pack(tarballDir)),
      timed("peer versions (npm view)", () => resolveVersions())
    ])
    if (packed.status === "rejected") throw packed.reason
    if (resolved.status === "rejected") throw resolved.reason
    const tarballs = packed.value
    const versions = resolved.value
    const effectOf: Record<Flavor, string> = { locked: versions.effectLocked, newest: versions.effectNewest }
    const startInstall = (flavor: Flavor) => {
      const dir = join(work, `app-effect-${flavor}`)
      mkdirSync(dir)
      const done = timed(`npm install (effect ${effectOf[flavor]}, ${flavor})`, () =>
        install(dir, tarballs, effectOf[flavor], versions.peers)
      ).then(() => dir)
      done.catch(() => undefined) // awaited by its describe; not an unhandled rejection meanwhile
      return done
    }
    return {
      work,
      tarballs,
      versions,
      apps: { locked: startInstall("locked"), newest: startInstall("newest") }
    }
  })()
  return setupPromise
}

// A failed setup fails each test that needs it (each awaits it), rather than skipping them.
beforeAll(async () => {
  await setup().catch(() => undefined)
}, 300_000)

afterAll(async () => {
  const done = await setupPromise?.catch(() => undefined)
  if (done !== undefined) await Promise.allSettled(Object.values(done.apps))
  if (workDir !== undefined) {
    if (KEEP) console.log(`consumer test: apps kept in ${workDir}`)
    else rmSync(workDir, { recursive: true, force: true })
  }
  console.log(
    [
      "consumer test summary",
      done === undefined
        ? "  (setup failed)"
        : `  effect: ${done.versions.effectLocked} (locked in the workspace), ${done.versions.effectNewest} (newest allowed)\n` +
          done.versions.notes.map((note) => `  ${note}`).join("\n"),
      "snippets:",
      summaryOf(snippets),
      "times:",
      ...timings.map((t) => `  ${t}`)
    ].join("\n")
  )
}, 120_000)

// ---------------------------------------------------------------------------------------------

describe("the tarballs", () => {
  const names = publishable().map((workspace) => workspace.name)

  it("are one per publishable package, with no workspace: range left", async () => {
    const { tarballs } = await setup()
    expect(tarballs.map((t) => t.name)).toEqual(names)
    for (const tarball of tarballs) {
      const result = await run("tar", ["-xzOf", tarball.file, "package/package.json"], {
        cwd: root,
        env: process.env,
        timeoutMs: 30_000
      })
      expect(result.code, report(result)).toBe(0)
      expect(result.stdout, tarball.name).not.toContain("workspace:")
    }
  })

  it.each(names)("publint --strict: %s", async (name) => {
    const tarball = (await setup()).tarballs.find((t) => t.name === name)!
    const result = await run(process.execPath, [binOf("publint", "publint"), "--strict", tarball.file], {
      cwd: root,
      env: process.env,
      timeoutMs: 60_000
    })
    expect(result.code, report(result)).toBe(0)
  })

  it.each(names)("attw --profile esm-only: %s", async (name) => {
    const tarball = (await setup()).tarballs.find((t) => t.name === name)!
    const result = await run(
      process.execPath,
      [binOf("@arethetypeswrong/cli", "attw"), tarball.file, "--profile", "esm-only", "--no-color"],
      { cwd: root, env: process.env, timeoutMs: 60_000 }
    )
    expect(result.code, report(result)).toBe(0)
  })
})

describe("the README snippets", () => {
  it("are well-formed (languages, info strings, fences)", () => {
    expect(extracted.problems).toEqual([])
  })

  it(`include at least ${RUNNABLE_FLOOR} runnable ones`, () => {
    const fragments = snippets.filter((s) => s.mode === "fragment")
    console.log(
      `README snippets:\n${summaryOf(snippets)}\n` +
        (fragments.length === 0
          ? "no fragment"
          : `${fragments.length} fragment${fragments.length === 1 ? "" : "s"} (neither typechecked nor run): ${fragments.map(title).join(", ")}`)
    )
    expect(
      snippets.filter(isRunnable).length,
      "runnable snippets (`ts` and `ts server`): make the READMEs' snippets complete programs"
    ).toBeGreaterThanOrEqual(RUNNABLE_FLOOR)
  })
})

/** A diagnostic of a snippet, with the README line it comes from. */
const located = (text: string) =>
  text.replace(
    /^snippets\/([a-z0-9-]+)\.(?:ts|tsx|js)\((\d+),(\d+)\)/gm,
    (whole, id: string, line: string) => {
      const snippet = snippets.find((s) => s.id === id)
      return snippet === undefined ? whole : `${whole} [${snippet.readme}:${snippet.line + Number(line)}]`
    }
  )

const flavors: ReadonlyArray<Flavor> = ["locked", "newest"]

for (const flavor of flavors) {
  describe(`an app with effect ${flavor === "locked" ? "as locked in the workspace" : "at the newest allowed version"}`, () => {
    const sandboxes: Array<Sandbox | RedisServer> = []
    /** the app's directory and the snippets' environment, once it is installed and the sandboxes run */
    let ready: Promise<{ readonly dir: string; readonly env: NodeJS.ProcessEnv }> | undefined
    const app = () => {
      ready ??= (async () => {
        const { apps } = await setup()
        const dir = await apps[flavor]
        mkdirSync(join(dir, "snippets"), { recursive: true })
        for (const snippet of checked) writeFileSync(join(dir, snippet.file), snippet.code)
        writeFileSync(join(dir, "never-disposes.ts"), NEVER_DISPOSES)
        const wex = await startSandbox({ profile: "wex" })
        sandboxes.push(wex)
        const wealthcare = await startSandbox({ profile: "wealthcare" })
        sandboxes.push(wealthcare)
        // @authfetch/redis's snippets run against a redis-server of their own
        const redis = await startRedis()
        sandboxes.push(redis)
        return { dir, env: userEnv(snippetEnv(wex, wealthcare, redis)) }
      })()
      return ready
    }

    beforeAll(async () => {
      await app().catch(() => undefined)
    }, 600_000)

    afterAll(async () => {
      await Promise.all(sandboxes.map((sandbox) => ("close" in sandbox ? sandbox.close() : sandbox.stop())))
    })

    it("typechecks every snippet that is not a fragment, and the script below", async () => {
      const { dir } = await app()
      const checkedTypes = await timed(`tsc (${flavor})`, () =>
        typecheck(dir, [...checked.map((s) => s.file), "never-disposes.ts"])
      )
      const ours = checkedTypes.diagnostics.filter((d) => ownerOf(d) === "ours")
      const theirs = new Map<string, number>()
      for (const d of checkedTypes.diagnostics) {
        const owner = ownerOf(d)
        if (owner !== "ours") theirs.set(owner, (theirs.get(owner) ?? 0) + 1)
      }
      if (theirs.size > 0) {
        console.log(
          `tsc (${flavor}): errors in dependencies' own declaration files, not counted: ` +
            [...theirs].map(([name, count]) => `${name} ${count}`).join(", ")
        )
      }
      expect(
        ours.map((d) => located(d.text)),
        `tsc in ${dir}: errors in the snippets or in our packages' declarations`
      ).toEqual([])
      if (ours.length === 0 && checkedTypes.result.code !== 0 && theirs.size === 0) {
        expect.fail(report(checkedTypes.result))
      }
    })

    it.each(runs.map((s) => [title(s), s] as const))(
      "runs %s: exits by itself with 0",
      async (_, snippet) => {
        const { dir, env } = await app()
        const result = await run(process.execPath, [snippet.file], { cwd: dir, env, timeoutMs: RUN_TIMEOUT })
        expect(
          result.timedOut,
          `${report(result)}\nstill running after ${RUN_TIMEOUT / 1000} s: something keeps the process alive`
        ).toBe(false)
        expect(result.code, report(result)).toBe(0)
      },
      RUN_TIMEOUT + 10_000
    )

    it.each(servers.map((s) => [title(s), s] as const))(
      "serves %s",
      async (_, snippet) => {
        const { dir, env } = await app()
        const result = await serve(process.execPath, [snippet.file], {
          cwd: dir,
          env,
          timeoutMs: RUN_TIMEOUT,
          upMs: SERVER_UP
        })
        expect(result.ready, `${report(result)}\nexited before it was listening`).not.toBeNull()
      },
      RUN_TIMEOUT + 10_000
    )

    it(
      "a script that never disposes its token source exits by itself",
      async () => {
        const { dir, env } = await app()
        const result = await run(process.execPath, ["never-disposes.ts"], {
          cwd: dir,
          env,
          timeoutMs: NEVER_DISPOSES_TIMEOUT
        })
        expect(
          result.timedOut,
          `${report(result)}\nstill running after ${NEVER_DISPOSES_TIMEOUT / 1000} s: a token source keeps Node alive`
        ).toBe(false)
        expect(result.code, report(result)).toBe(0)
        expect(result.stdout).toContain("→ 200")
      },
      NEVER_DISPOSES_TIMEOUT + 10_000
    )

    if (flavor === "locked") {
      it(
        "self-check: a README snippet broken on purpose fails the typecheck (and the run)",
        async () => {
          const { dir, env } = await app()
          const candidates = [...runs, ...servers, ...checked]
          const broken = candidates.map(breakSnippet).find((b) => b !== undefined)
          expect(
            broken,
            "no checked snippet imports a name from @authfetch/*: nothing to break"
          ).toBeDefined()
          if (broken === undefined) return
          const file = `snippets/${broken.snippet.id}-broken${broken.snippet.file.slice(broken.snippet.file.lastIndexOf("."))}`
          writeFileSync(join(dir, file), broken.code)
          const types = await typecheck(dir, [file], "tsconfig.selfcheck.json")
          const mine = types.diagnostics.filter((d) => d.file === file)
          console.log(
            `self-check: ${title(broken.snippet)} asks for ${broken.missing}; tsc says:\n` +
              mine.map((d) => `  ${d.text}`).join("\n")
          )
          expect(types.result.code).not.toBe(0)
          expect(mine.some((d) => d.text.includes(broken.missing))).toBe(true)
          if (isRunnable(broken.snippet)) {
            const result = await run(process.execPath, [file], { cwd: dir, env, timeoutMs: RUN_TIMEOUT })
            console.log(
              `self-check: node ${file} → exit code ${result.code}: ${result.stderr.split("\n").find((l) => l.includes(broken.missing)) ?? ""}`
            )
            expect(result.code).not.toBe(0)
            expect(result.stderr).toContain(broken.missing)
          }
        },
        RUN_TIMEOUT + 60_000
      )
    }
  })
}
