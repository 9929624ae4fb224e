/**
 * Finds the program of a parsed command in the allowlisted bin dir
 * (`TIBET_NC_BIN_DIR`). Only a bare name (`df`) or an absolute path directly in
 * the bin dir (`/usr/local/tibet-nc-bin/df`) is accepted: `./df`, `a/df`,
 * `../bin/df` and every other absolute path are refused, so the program that runs
 * is always one the administrator placed there.
 *
 * Symlinks to system binaries are the normal way to fill the bin dir. The link's
 * name (`name`) is what the operator typed; the final target's name (`realName`)
 * is what actually runs, and the policy judges both, so `ls -> /usr/bin/bash`
 * cannot pass as `ls`.
 * @module
 */

/** Result of {@linkcode resolveProgram}. */
export type Resolved =
  | {
    ok: true;
    /** Path to execute: the entry in the bin dir (a multi-call binary reads its name). */
    path: string;
    /** Name of the entry in the bin dir, as typed. */
    name: string;
    /** The entry with every symlink resolved. */
    realPath: string;
    /** Base name of `realPath`. */
    realName: string;
  }
  | { ok: false; reason: string };

/** The bin dir without trailing slashes (`/` stays `/`). */
function trimDir(dir: string): string {
  const t = dir.replace(/\/+$/, "");
  return t === "" ? "/" : t;
}

/** Base name of a path: what follows the last `/`. */
export function baseName(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}

/**
 * Picks the bin-dir entry name out of what the operator typed, or says why the
 * form is refused. Absolute paths must name the bin dir exactly, segment by
 * segment: `..`, `.` and `//` are not normalised away, because the kernel would
 * resolve them through symlinks and a lexical check could be fooled.
 */
function entryName(binDir: string, program: string): string | { reason: string } {
  const only = `only programs in ${binDir} may run; give the bare name`;
  if (program === "") return { reason: "empty program name" };
  if (!program.includes("/")) {
    if (program === "." || program === "..") return { reason: `"${program}" is not a program` };
    return program;
  }
  const slash = program.lastIndexOf("/");
  const dir = program.slice(0, slash);
  const name = program.slice(slash + 1);
  if (!program.startsWith("/") || dir !== binDir || name === "" || name === "." || name === "..") {
    return { reason: `"${program}" is refused: ${only}${name ? `, e.g. "${name}"` : ""}` };
  }
  return name;
}

/**
 * Resolves `program` (argv[0] as typed) to an executable in `binDir`.
 * Refusals say what to do; they never throw for a missing or odd program.
 */
export async function resolveProgram(binDir: string, program: string): Promise<Resolved> {
  const dir = trimDir(binDir);
  const name = entryName(dir, program);
  if (typeof name !== "string") return { ok: false, reason: name.reason };
  const path = dir === "/" ? `/${name}` : `${dir}/${name}`;

  let entry: Deno.FileInfo;
  try {
    entry = await Deno.lstat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      return { ok: false, reason: `no program "${name}" in ${dir} (only programs there may run)` };
    }
    return { ok: false, reason: `cannot inspect ${path}: ${(e as Error).message}` };
  }
  if (entry.isDirectory) return { ok: false, reason: `${path} is a directory, not a program` };

  let realPath: string;
  let target: Deno.FileInfo;
  try {
    realPath = await Deno.realPath(path);
    target = await Deno.stat(realPath);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      return { ok: false, reason: `${path} is a broken symlink; fix or remove it` };
    }
    return { ok: false, reason: `cannot resolve ${path}: ${(e as Error).message}` };
  }
  if (!target.isFile) {
    return { ok: false, reason: `${path} resolves to ${realPath}, which is not a regular file` };
  }
  if (target.mode === null || (target.mode & 0o111) === 0) {
    return {
      ok: false,
      reason:
        `${path} is not executable (${realPath} has no execute bit); chmod +x it or remove it`,
    };
  }
  return { ok: true, path, name, realPath, realName: baseName(realPath) };
}

/**
 * Names of the programs in `binDir` that {@linkcode resolveProgram} would accept,
 * sorted.
 *
 * @throws Error naming the directory when it does not exist or cannot be read.
 */
export async function listPrograms(binDir: string): Promise<string[]> {
  const dir = trimDir(binDir);
  const names: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) {
      if (e.isDirectory) continue;
      if ((await resolveProgram(dir, e.name)).ok) names.push(e.name);
    }
  } catch (e) {
    const why = e instanceof Deno.errors.NotFound ? "does not exist" : (e as Error).message;
    throw new Error(`bin dir ${dir} cannot be listed: ${why} (check TIBET_NC_BIN_DIR)`);
  }
  return names.sort();
}
