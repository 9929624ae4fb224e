/**
 * The whole of airlock step 4 for one command's text: parse, resolve in the bin
 * dir, judge, stage by stage. The monitor runs exactly what this returns, and
 * `tibet-nc policy check` prints it, so an administrator's trial and the agent
 * cannot disagree.
 * @module
 */

import { parseCommand } from "../exec/parse.ts";
import { baseName, resolveProgram } from "../exec/resolve.ts";
import { judge, type Verdict } from "./judge.ts";
import { type Policy, policyFor } from "./policy_file.ts";

/** Bin dir used when neither `--bin-dir` nor `TIBET_NC_BIN_DIR` is given. */
export const DEFAULT_BIN_DIR = "/usr/local/tibet-nc-bin";

/** One stage as judged. */
export interface CheckedStage extends Verdict {
  /** The parsed argv (argv[0] as typed). */
  argv: string[];
  /** The program's path in the bin dir; absent when it did not resolve. */
  path?: string;
  /** Base name of that path with every symlink resolved (what actually runs). */
  realName?: string;
}

/** A {@linkcode Verdict} on the whole line plus what was judged, so the caller runs exactly that. */
export interface CheckedCommand extends Verdict {
  /**
   * Every stage, in order (a plain command is one stage); absent when the text
   * did not parse. Allowed only if every stage is; the first refused stage
   * decides the refusal.
   */
  stages?: CheckedStage[];
}

/**
 * Parses, resolves and judges one command's text: the whole policy path of the
 * agent. Parser refusals are `deny.parse`, a program missing from the bin dir is
 * `deny.resolve`, unless the built-in rules refuse the typed name anyway
 * (`/sbin/reboot` is reported as `deny.power`, the real reason). In a pipeline
 * each stage is judged on its own, and every stage after the first as one that
 * reads a pipe (`lib/policy/rules/pipe_input.ts`). `sender` adds that operator's
 * own rules (the policy file's `operators`).
 */
export async function checkCommand(
  text: string,
  binDir: string,
  common: Policy,
  sender?: string,
): Promise<CheckedCommand> {
  const policy = policyFor(common, sender);
  const parsed = parseCommand(text);
  if (!parsed.ok) return { verdict: "deny", rule: "deny.parse", reason: parsed.reason };
  const stages: CheckedStage[] = [];
  for (const [i, argv] of parsed.stages.entries()) {
    const stage = await checkStage(argv, i > 0, binDir, policy);
    stages.push(stage);
    if (stage.verdict === "deny") {
      if (parsed.stages.length === 1) return { ...stage, stages };
      return {
        verdict: "deny",
        rule: stage.rule,
        reason: `stage ${i + 1} of ${parsed.stages.length} (${argv[0]}): ${stage.reason}; ` +
          "nothing in the pipeline runs",
        stages,
      };
    }
  }
  if (stages.length === 1) return { ...stages[0], stages };
  const held = stages.findIndex((s) => s.verdict === "approve");
  if (held >= 0) {
    return {
      verdict: "approve",
      rule: stages[held].rule,
      reason: `stage ${held + 1} (${stages[held].argv[0]}): ${stages[held].reason}`,
      stages,
    };
  }
  return {
    verdict: "allow",
    rule: stages.map((s) => s.rule).join(" | "),
    reason: `each of the ${stages.length} stages is allowed`,
    stages,
  };
}

async function checkStage(
  argv: string[],
  piped: boolean,
  binDir: string,
  policy: Policy,
): Promise<CheckedStage> {
  const found = await resolveProgram(binDir, argv[0]);
  if (!found.ok) {
    const typed = baseName(argv[0]);
    const v = judge(argv, { name: typed, realName: typed, piped }, policy);
    if (v.verdict === "deny" && v.rule !== "deny.not-allowlisted") return { ...v, argv };
    return { verdict: "deny", rule: "deny.resolve", reason: found.reason, argv };
  }
  const v = judge(argv, { name: found.name, realName: found.realName, piped }, policy);
  return { ...v, argv, path: found.path, realName: found.realName };
}
