/**
 * Where a `connect` run spends its time, for the bench and for a person asking
 * why it is slow: with `TIBET_NC_CONNECT_TIMING=1`, one stderr line at the end,
 * each phase's milliseconds since the process started.
 * @module
 */

const marks: [string, number][] = [];

/** Notes that `phase` ended now. */
export function mark(phase: string): void {
  marks.push([phase, performance.now()]);
}

/** Prints the phases when asked to (`TIBET_NC_CONNECT_TIMING=1`). */
export function reportTiming(): void {
  if (Deno.env.get("TIBET_NC_CONNECT_TIMING") !== "1") return;
  console.error(`timing: ${marks.map(([p, t]) => `${p} ${t.toFixed(0)}`).join(", ")} (ms)`);
}
