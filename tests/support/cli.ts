/**
 * Runs `main.ts <args>` in its own process, as the `tibet-nc` binary would run,
 * with optional stdin and environment.
 * @module
 */

const ROOT = new URL("../../", import.meta.url).pathname;

/** Output of one run. */
export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
  /** Non-empty stdout lines. */
  lines: string[];
}

/** Runs the CLI; `env` is added to this process's environment. */
export async function runMain(
  args: string[],
  opts: { stdin?: string; env?: Record<string, string> } = {},
): Promise<CliRun> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "--unstable-worker-options", `${ROOT}main.ts`, ...args],
    cwd: ROOT,
    env: opts.env,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(opts.stdin ?? ""));
  await w.close();
  const out = await child.output();
  const dec = new TextDecoder();
  const stdout = dec.decode(out.stdout);
  return {
    code: out.code,
    stdout,
    stderr: dec.decode(out.stderr),
    lines: stdout.split("\n").filter(Boolean),
  };
}
