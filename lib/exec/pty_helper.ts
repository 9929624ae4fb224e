/**
 * The invocation of the PTY helper, util-linux `script(1)`, for one validated argv.
 *
 * `script -c` hands its command to `$SHELL -c`, and util-linux 2.38 has no way to
 * pass an argv instead. So the command line is built here from the argv with every
 * word single-quoted (a `'` becomes `'\''`), which `sh` reads as literal text:
 * nothing in an argument is expanded, split, globbed or run. `SHELL` is `/bin/sh`
 * for `script` only.
 *
 * The shell line is `echo $$; exec /usr/bin/env -u SHELL … -- '<path>' '<arg>'…`:
 * - `echo $$` prints the pid of the shell, which `script` made the leader of a new
 *   session on the pseudo-terminal; that pid is the session id of everything the
 *   command starts, so the runner can find and stop all of it. The runner consumes
 *   this first line; the operator never sees it.
 * - `env -u` removes what `script` and `sh` add (`SHELL`, `PWD`, `SHLVL`, …), so the
 *   program gets exactly the environment it was given, values never on a command
 *   line; a given value of one of those names is passed back as `NAME=value`.
 * - `exec` keeps the process tree flat: the program is the session leader.
 * - `< '<fifo>'`, only for the last stage of a pipeline: its stdin is the pipe
 *   the monitor feeds, not the terminal (whose line discipline would echo input,
 *   cut lines at 4 KiB and read ^C and ^D as signals and end of file).
 * @module
 */

/** Absolute path of util-linux `script`, the PTY helper. */
export const SCRIPT_PATH = "/usr/bin/script";
/** The shell `script -c` runs; only ever given a fully quoted line. */
export const SCRIPT_SHELL = "/bin/sh";
/** `env(1)`, which clears what the shell added and execs the program. */
export const ENV_PATH = "/usr/bin/env";

/** Variables `script` or a POSIX shell may add to the environment it passes on. */
const SHELL_ADDED = ["SHELL", "PWD", "OLDPWD", "SHLVL", "_"];

/** The kernel's limit for one argument (MAX_ARG_STRLEN), including its NUL. */
const MAX_ARG_BYTES = 131072;

/** A ready-to-spawn `script` invocation. */
export interface PtyInvocation {
  /** Program to spawn: {@linkcode SCRIPT_PATH}. */
  command: string;
  /** Its arguments. */
  args: string[];
  /** Its complete environment. */
  env: Record<string, string>;
}

/** Quotes `word` for a POSIX shell so it is read back as exactly `word`. */
export function shellQuote(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

/**
 * Builds the `script` invocation running the program at `path` with the
 * arguments `argv.slice(1)` (argv[0] becomes `path`) and exactly `env`.
 *
 * @throws Error when `path` is not absolute or contains `=` (env(1) would read it
 * as an assignment), when a word contains a NUL byte, or when the line is longer
 * than the kernel accepts for one argument.
 */
export function ptyInvocation(
  path: string,
  argv: readonly string[],
  env: Readonly<Record<string, string>>,
  stdinPath?: string,
): PtyInvocation {
  if (!path.startsWith("/")) {
    throw new Error(`program path "${path}" is not absolute; resolve it in the bin dir first`);
  }
  if (path.includes("=")) {
    throw new Error(`program path "${path}" contains "=", which env(1) cannot run; rename it`);
  }
  const words = [path, ...argv.slice(1)];
  if (stdinPath !== undefined && !stdinPath.startsWith("/")) {
    throw new Error(`stdin path "${stdinPath}" is not absolute`);
  }
  if ([...words, stdinPath ?? ""].some((w) => w.includes("\0"))) {
    throw new Error("an argument contains a NUL byte, which no program can receive");
  }
  const envArgs: string[] = [];
  const restore: string[] = [];
  for (const name of SHELL_ADDED) {
    if (Object.hasOwn(env, name)) restore.push(shellQuote(`${name}=${env[name]}`));
    else envArgs.push("-u", name);
  }
  const line = [
    "echo $$; exec",
    ENV_PATH,
    ...envArgs,
    "--",
    ...restore,
    ...words.map(shellQuote),
    ...(stdinPath === undefined ? [] : ["<", shellQuote(stdinPath)]),
  ].join(" ");
  const bytes = new TextEncoder().encode(line).length;
  if (bytes >= MAX_ARG_BYTES) {
    throw new Error(
      `command line too long for the PTY helper: ${bytes} bytes, the kernel allows ${
        MAX_ARG_BYTES - 1
      } in one argument`,
    );
  }
  return {
    command: SCRIPT_PATH,
    // -q: no start/done banners; -e: exit with the command's status (128+N for
    // signal N); the typescript file is /dev/null because output is read from
    // script's stdout, which script writes unbuffered.
    args: ["-q", "-e", "-c", line, "/dev/null"],
    env: { ...env, SHELL: SCRIPT_SHELL },
  };
}

/** Longest first line that can still be the `echo $$` marker ("4194304\r\n"). */
const MARKER_MAX = 16;

/** Result of {@linkcode splitSessionMarker}. */
export interface MarkerSplit {
  /** Session id of the command, or null when the first line was not a marker. */
  sid: number | null;
  /** Output after the marker line (everything, when there was no marker). */
  rest: Uint8Array;
}

/**
 * Splits the `echo $$` line off the start of the PTY output. Returns null while
 * `head` is too short to tell; gives up (sid null) after {@linkcode MARKER_MAX}
 * bytes without a pid line, so output is never held back for long.
 */
export function splitSessionMarker(head: Uint8Array): MarkerSplit | null {
  const nl = head.indexOf(0x0a);
  if (nl < 0) return head.length > MARKER_MAX ? { sid: null, rest: head } : null;
  const line = new TextDecoder().decode(head.subarray(0, nl)).replace(/\r$/, "");
  if (!/^[1-9][0-9]{0,9}$/.test(line)) return { sid: null, rest: head };
  return { sid: Number(line), rest: head.subarray(nl + 1) };
}
