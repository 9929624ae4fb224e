/**
 * Who owns what in the state dir (`TIBET_NC_STATE_DIR`). The monitor owns the
 * audit log, its side files and the signing key; the Matrix worker may touch
 * only the entries named here, so a compromised worker can neither write a
 * record nor read the key. See ARCHITECTURE.md, "State on disk".
 * @module
 */

/** The Matrix worker's entries: its crypto store, replay store, device binding, pins. */
export const WORKER_STATE_ENTRIES = [
  "crypto", // the durable crypto store (a directory)
  "seen-events", // replay claims, rewritten through seen-events.tmp
  "seen-events.tmp",
  "device.json", // which device this state dir's keys belong to
  "trust-approvals.json", // identities approved by `tibet-nc trust`
  "trust-approvals.json.tmp",
  "sync-mark", // how far the previous run got (worker/sync_mark.ts)
  "sync-mark.tmp",
] as const;

/** Absolute paths of the worker's entries in `stateDir`. */
export function workerStatePaths(stateDir: string): string[] {
  const dir = stateDir.replace(/\/+$/, "");
  return WORKER_STATE_ENTRIES.map((e) => `${dir}/${e}`);
}
