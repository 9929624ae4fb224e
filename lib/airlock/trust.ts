/**
 * Identity pinning of operators: the rust crypto pins the first cross-signing
 * identity it sees of each user. When an allowed operator's identity (master key)
 * changes, their commands are refused until an administrator on the host approves
 * the new master key with `tibet-nc trust @user:server`, which records it in the
 * state dir; the agent then pins it and goes on.
 * @module
 */

/** user id -> approved master key (unpadded base64 Ed25519). */
export type Approvals = Record<string, string>;

/** The file the approvals live in. */
export function approvalsPath(stateDir: string): string {
  return `${stateDir}/trust-approvals.json`;
}

/** Reads the approvals; a missing file means none. */
export function readApprovals(stateDir: string): Approvals {
  try {
    const value = JSON.parse(Deno.readTextFileSync(approvalsPath(stateDir)));
    return value && typeof value === "object" ? value as Approvals : {};
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return {};
    throw new Error(`cannot read ${approvalsPath(stateDir)}: ${(e as Error).message}`);
  }
}

/** Writes the approvals atomically, 0600. */
export function writeApprovals(stateDir: string, approvals: Approvals): void {
  const path = approvalsPath(stateDir);
  Deno.writeTextFileSync(`${path}.tmp`, JSON.stringify(approvals, null, 2) + "\n", { mode: 0o600 });
  Deno.renameSync(`${path}.tmp`, path);
}
