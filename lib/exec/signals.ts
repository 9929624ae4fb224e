/**
 * Signalling the processes of a command as the agent, which may not use
 * Deno.kill (see {@linkcode sendSignal}), and stopping a whole process group.
 * @module
 */

import { EPERM, errno, ESRCH, libc } from "./libc.ts";

/** SIGTERM-to-SIGKILL grace period. */
export const KILL_GRACE_MS = 2000;
/** Interval of process-table probes while stopping a command. */
export const POLL_MS = 50;

/** Linux signal numbers. */
export const SIGNAL_NUMBERS: Partial<Record<Deno.Signal, number>> = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGILL: 4,
  SIGTRAP: 5,
  SIGABRT: 6,
  SIGBUS: 7,
  SIGFPE: 8,
  SIGKILL: 9,
  SIGUSR1: 10,
  SIGSEGV: 11,
  SIGUSR2: 12,
  SIGPIPE: 13,
  SIGALRM: 14,
  SIGTERM: 15,
  SIGCONT: 18,
  SIGSTOP: 19,
  SIGXCPU: 24,
  SIGXFSZ: 25,
};

/**
 * Sends `sig` to `pid` (a negative pid is a process group): true if sent, false
 * if no such process, else the error text. Through libc's kill(2): Deno.kill
 * needs unrestricted run permission, which the monitor deliberately lacks.
 */
export function sendSignal(pid: number, sig: Deno.Signal): boolean | string {
  const n = SIGNAL_NUMBERS[sig];
  if (n === undefined) return `unknown signal ${sig}`;
  if (libc().kill(pid, n) === 0) return true;
  const e = errno();
  if (e === ESRCH) return false;
  return e === EPERM ? "operation not permitted" : `errno ${e}`;
}

/**
 * Stops process group `pgid` (the command's session: the runner makes the
 * command a session and group leader, and a non-interactive shell keeps
 * background jobs in its group): SIGTERM, then SIGKILL for whatever is left
 * after the grace.
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
