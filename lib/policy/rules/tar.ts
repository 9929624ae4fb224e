/**
 * tar: options that run a program.
 * @module
 */

import { w } from "../names.ts";
import { longOpt, optionValues, shortHas } from "../options.ts";
import { type ArgRule, type Cmd, type Hit } from "../rule.ts";

/** tar options that run a program (GNU tar; abbreviations included via longOpt). */
const TAR_LONG = w(`
  checkpoint-action to-command use-compress-program rsh-command rmt-command info-script
  new-volume-script
`);

/** tar: the long options above, `-I`/`-F` in any short cluster or old-style first word. */
function tarRule(c: Cmd): Hit {
  for (const [i, a] of c.args.entries()) {
    const n = a.split("=")[0];
    // "--checkpoint" is an option of its own: an exact name wins over prefixes.
    const long = n !== "--checkpoint" && TAR_LONG.some((o) => longOpt(a, o));
    const short = shortHas(a, "IF") || (i === 0 && /^[A-Za-z]+$/.test(a) && /[IF]/.test(a));
    if (long || short) return { rule: "deny.escape.tar", why: `tar ${a} runs a command` };
  }
  // An archive named host:path is opened on that host through rsh (GNU tar).
  const first = c.args[0] ?? "";
  const archives = optionValues(c.args, "f", ["file"]);
  if (/^[A-Za-z]+$/.test(first) && first.includes("f")) archives.push(c.args[1] ?? "");
  const remote = archives.find((f) => /^[^/]*:/.test(f));
  if (remote !== undefined && !c.args.some((a) => longOpt(a, "force-local"))) {
    return { rule: "deny.network", why: `tar archive ${remote} is opened on a remote host` };
  }
  return null;
}

/** tar --checkpoint-action, --to-command, -I and the like. */
export const TAR: ArgRule = {
  id: "deny.escape.tar",
  programs: ["tar", "gtar", "bsdtar"],
  escape: "tar --checkpoint-action, --to-command and -I run commands (deny.escape.tar)",
  check: tarRule,
};
