/**
 * Every built-in argument rule, in the order the judge applies them, and what
 * `tibet-nc doctor` says about programs that escape through their arguments.
 * @module
 */

import { nameKeys } from "./names.ts";
import type { ArgRule, Cmd, Hit } from "./rule.ts";
import { DBUS_POWER, SYSTEMCTL } from "./rules/power.ts";
import { DEVICE_WRITE, DISK_TOOLS } from "./rules/disk.ts";
import { CHMOD_ROOT, RM_ROOT } from "./rules/root_tree.ts";
import { FIND } from "./rules/find.ts";
import { AWK } from "./rules/awk.ts";
import { TAR } from "./rules/tar.ts";
import { GIT } from "./rules/git.ts";
import { SED } from "./rules/sed.ts";
import { DOWNLOAD } from "./rules/download.ts";
import { PROTECTED_WRITE } from "./rules/write.ts";
import { OPENSSL } from "./rules/openssl.ts";
import { EXEC_OPTION_RULES, IP_EXEC } from "./rules/exec_option.ts";
import { JOURNAL } from "./rules/journal.ts";
import { PAGER_ARG, PIPE_SHELL } from "./rules/any_program.ts";
import { PIPE_INPUT } from "./rules/pipe_input.ts";

/** The built-in argument rules; the first refusal decides. */
export const ARG_RULES: readonly ArgRule[] = [
  SYSTEMCTL,
  DBUS_POWER,
  DEVICE_WRITE,
  DISK_TOOLS,
  RM_ROOT,
  CHMOD_ROOT,
  FIND,
  AWK,
  TAR,
  GIT,
  SED,
  DOWNLOAD,
  PROTECTED_WRITE,
  OPENSSL,
  ...EXEC_OPTION_RULES,
  IP_EXEC,
  JOURNAL,
  PAGER_ARG,
  PIPE_SHELL,
  PIPE_INPUT,
];

/** The first refusal of the rules that apply to `c`'s program, or null. */
export function checkArguments(c: Cmd): Hit {
  for (const rule of ARG_RULES) {
    if (rule.programs.length > 0 && !rule.programs.some((p) => c.keys.has(p))) continue;
    const hit = rule.check(c);
    if (hit) return hit;
  }
  return null;
}

/**
 * The GTFOBins functions the policy leaves open for a program that goes by
 * `names`: reading files is always left to the exec user's permissions; a
 * writing tool may write outside the protected paths; a download tool may fetch.
 */
export function openFunctions(names: string[]): string[] {
  const keys = new Set(names.flatMap(nameKeys));
  const watches = (r: ArgRule) => r.programs.some((p) => keys.has(p));
  const open = ["file read (what the exec user may read)"];
  if (watches(PROTECTED_WRITE)) {
    open.push(
      "file write (where the exec user may write, outside system dirs, .ssh, devices and the state dir)",
    );
  }
  if (watches(DOWNLOAD)) open.push("file download (outside protected dirs)");
  return open;
}

/**
 * How a program that goes by `names` escapes through its arguments, one line
 * per escape rule that watches it (empty when none does): the policy refuses the
 * known forms, but the administrator should know the program is a way out.
 */
export function argumentEscapes(names: string[]): string[] {
  const keys = new Set(names.flatMap(nameKeys));
  return ARG_RULES.filter((r) => r.escape !== undefined && r.programs.some((p) => keys.has(p)))
    .map((r) => r.escape!);
}
