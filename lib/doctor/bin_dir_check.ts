/**
 * Doctor's check of the bin dir: every program executable by the exec user, none a way out.
 * @module
 */

import type { Config } from "../config/config.ts";
import { judge } from "../policy/judge.ts";
import { DEFAULT_POLICY } from "../policy/policy_file.ts";
import { argumentEscapes, openFunctions } from "../policy/arg_rules.ts";
import { lookupUser } from "../exec/exec_user.ts";
import { resolveProgram } from "../exec/resolve.ts";
import { errText, octal, Report, statOrNull } from "./report.ts";
import { mayAccess } from "./file_checks.ts";

export async function checkBinDir(r: Report, c: Config): Promise<void> {
  const dir = c.binDir;
  let info: Deno.FileInfo | null;
  try {
    info = statOrNull(dir);
  } catch (e) {
    return r.line("FAIL", "bin dir", `cannot inspect ${dir}: ${errText(e)}`);
  }
  if (!info?.isDirectory) {
    return r.line(
      "FAIL",
      "bin dir",
      `${dir} ${
        info ? "is not a directory" : "does not exist"
      } (TIBET_NC_BIN_DIR): create it, owned by root and mode 0755, and symlink the programs operators may run into it`,
    );
  }
  const mode = info.mode ?? 0;
  if (mode & 0o022) {
    r.line(
      "FAIL",
      "bin dir",
      `${dir} is mode ${octal(mode)}: others can add programs to it; run "chmod 755 ${dir}"`,
    );
  }
  const exec = c.execAsSelf ? null : lookupUser(c.execUser);
  if (exec && !mayAccess(info, exec.uid, exec.gid, 0o1)) {
    r.line(
      "FAIL",
      "bin dir",
      `"${c.execUser}" cannot enter ${dir} (mode ${
        octal(mode)
      }), so no command can start; run "chmod 755 ${dir}"`,
    );
  }
  const names = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
  const bad: string[] = [];
  for (const name of names) {
    const res = await resolveProgram(dir, name);
    if (!res.ok) {
      bad.push(res.reason);
      continue;
    }
    const label = res.realName === name ? name : `${name} (-> ${res.realPath})`;
    const v = judge([name], { name, realName: res.realName }, DEFAULT_POLICY);
    if (v.verdict === "deny") {
      r.line(
        "warn",
        "bin dir",
        `${label}: the policy refuses it outright (${v.rule}: ${v.reason}); it can only be a way out, remove it`,
      );
      continue;
    }
    const how = argumentEscapes([name, res.realName]).join("; ");
    if (how) {
      r.line(
        "warn",
        "bin dir",
        `${label} can spawn a shell through its arguments (GTFOBins: ${how}); the policy refuses the known forms, keep it only if operators need it`,
      );
    }
    r.line(
      "ok",
      "bin dir",
      `${label}: GTFOBins functions left open: ${
        openFunctions([name, res.realName]).join(", ")
      }; the policy refuses the known forms of the others`,
    );
  }
  for (const why of bad) r.line("FAIL", "bin dir", why);
  if (names.length === 0) {
    r.line("warn", "bin dir", `${dir} is empty: operators can run no program`);
  } else if (bad.length === 0) {
    r.line("ok", "bin dir", `${dir}: ${names.length} programs, all executable`);
  }
}
