/**
 * The whole of airlock step 4 for one command's text: parse, resolve in the bin
 * dir, judge. The monitor runs exactly what this returns, and `tibet-nc policy
 * check` prints it, so an administrator's trial and the agent cannot disagree.
 * @module
 */

import { parseCommand } from "../exec/parse.ts";
import { baseName, resolveProgram } from "../exec/resolve.ts";
import { judge, type Verdict } from "./judge.ts";
import type { Policy } from "./policy_file.ts";

/** Bin dir used when neither `--bin-dir` nor `TIBET_NC_BIN_DIR` is given. */
export const DEFAULT_BIN_DIR = "/usr/local/tibet-nc-bin";

/** A {@linkcode Verdict} plus what was judged, so the caller runs exactly that. */
export interface CheckedCommand extends Verdict {
  /** The parsed argv (argv[0] as typed); absent when the text did not parse. */
  argv?: string[];
  /** The program's path in the bin dir; absent when it did not resolve. */
  path?: string;
}

/**
 * Parses, resolves and judges one command's text: the whole policy path of the
 * agent. Parser refusals are `deny.parse`, a program missing from the bin dir is
 * `deny.resolve`, unless the built-in rules refuse the typed name anyway
 * (`/sbin/reboot` is reported as `deny.power`, the real reason).
 */
export async function checkCommand(
  text: string,
  binDir: string,
  policy: Policy,
): Promise<CheckedCommand> {
  const parsed = parseCommand(text);
  if (!parsed.ok) return { verdict: "deny", rule: "deny.parse", reason: parsed.reason };
  const argv = parsed.argv;
  const found = await resolveProgram(binDir, argv[0]);
  if (!found.ok) {
    const typed = baseName(argv[0]);
    const v = judge(argv, { name: typed, realName: typed }, policy);
    if (v.verdict === "deny" && v.rule !== "deny.not-allowlisted") return { ...v, argv };
    return { verdict: "deny", rule: "deny.resolve", reason: found.reason, argv };
  }
  const v = judge(argv, { name: found.name, realName: found.realName }, policy);
  return { ...v, argv, path: found.path };
}
