/**
 * The process table, as tests that prove "no process left" read it.
 * @module
 */

/** Pids whose command line contains `marker`. */
export async function processesWith(marker: string): Promise<number[]> {
  const found: number[] = [];
  for await (const e of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      const cmd = await Deno.readTextFile(`/proc/${e.name}/cmdline`);
      if (cmd.includes(marker)) found.push(Number(e.name));
    } catch { /* gone */ }
  }
  return found;
}

/** A field of `/proc/<pid>/status` in bytes. */
export function vm(pid: number, field: "VmRSS" | "VmHWM"): number {
  const m = Deno.readTextFileSync(`/proc/${pid}/status`).match(
    new RegExp(`^${field}:\\s+(\\d+) kB`, "m"),
  );
  return Number(m![1]) * 1024;
}
