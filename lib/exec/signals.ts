/**
 * Signalling the processes of a command as the agent, which may not use
 * Deno.kill on other users' processes (see {@linkcode sendSignal}), and
 * stopping a whole process group.
 * @module
 */

/** SIGTERM-to-SIGKILL grace period. */
export const KILL_GRACE_MS = 2000;
/** Interval of process-table probes while stopping a command. */
export const POLL_MS = 50;

/** The kill(1) of util-linux/procps, used where Deno.kill is not permitted. */
export const KILL_PATH = "/usr/bin/kill";

/**
 * Sends `sig` to `pid` (a negative pid is a process group): true if sent, false
 * if no such process, else the error text. Deno.kill needs unrestricted run
 * permission, which the monitor deliberately lacks; it may run only `script`
 * and kill(1), so it signals through kill(1) then.
 */
export function sendSignal(pid: number, sig: Deno.Signal): boolean | string {
  try {
    Deno.kill(pid, sig);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    if (!(e instanceof Deno.errors.NotCapable)) return (e as Error).message;
  }
  try {
    const out = new Deno.Command(KILL_PATH, {
      args: [`-${sig.replace(/^SIG/, "")}`, "--", String(pid)],
      clearEnv: true,
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).outputSync();
    if (out.success) return true;
    const err = new TextDecoder().decode(out.stderr);
    return /no such process|No such process|failed/i.test(err) && !/not permitted/i.test(err)
      ? false
      : err.trim() || `kill exited ${out.code}`;
  } catch (e) {
    return (e as Error).message;
  }
}

/**
 * Stops process group `pgid` (the command's session: `script` makes the command
 * a session and group leader, and a non-interactive shell keeps background jobs
 * in its group): SIGTERM, then SIGKILL for whatever is left after the grace.
 * Group signals need no /proc access, which Deno grants only with --allow-all.
 * SIGCONT serves as the "anyone left?" probe: harmless, and it wakes stopped ones.
 */
export async function terminateGroup(
  pgid: number,
  signal: (pid: number, sig: Deno.Signal) => boolean,
): Promise<void> {
  if (!signal(-pgid, "SIGTERM")) return;
  const deadline = performance.now() + KILL_GRACE_MS;
  while (performance.now() < deadline) {
    await delay(POLL_MS);
    if (!signal(-pgid, "SIGCONT")) return;
  }
  signal(-pgid, "SIGKILL");
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
