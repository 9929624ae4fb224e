/**
 * git: configuration, subcommands and options that run an editor, a pager or a command.
 * @module
 */

import { w } from "../names.ts";
import { longOpt, shortHas } from "../options.ts";
import { type ArgRule, type Cmd, type Hit } from "../rule.ts";

const GIT_SUB_DENY = new Set(w(`
  config help difftool mergetool filter-branch instaweb web--browse daemon send-email credential
  credential-store credential-cache upload-pack receive-pack shell
`));
const GIT_RUN_OPTS = w("upload-pack receive-pack exec extcmd open-files-in-pager template config");
const GIT_VALUE_GLOBALS = new Set(w(`
  -C --git-dir --work-tree --namespace --super-prefix --attr-source --list-cmds
`));
const GIT_FLAGS = new Set(w(`
  -P --no-pager --no-replace-objects --no-lazy-fetch --no-optional-locks --no-advice --bare
  --literal-pathspecs --glob-pathspecs --noglob-pathspecs --icase-pathspecs --html-path
  --man-path --info-path --version
`));

/**
 * git: no `-c`/`--config-env`/`--exec-path`/`-p` before the subcommand, no
 * unknown global option (it could hide the subcommand), no subcommand that runs
 * an editor, pager or command, and no option that names a program to run.
 */
function gitRule(c: Cmd): Hit {
  const deny = (why: string): Hit => ({ rule: "deny.escape.git", why });
  let i = 0;
  for (; i < c.args.length; i++) {
    const a = c.args[i];
    if (a === "-c" || /^-c./.test(a) || a.startsWith("--config-env")) {
      return deny(`git ${a} sets configuration, which can name a command to run (core.pager, …)`);
    }
    if (a === "-p" || a === "--paginate") return deny(`git ${a} starts a pager`);
    if (a.startsWith("--exec-path")) {
      return deny("git --exec-path changes where git finds programs");
    }
    if (a === "--help") return deny("git --help opens the manual viewer");
    if (!a.startsWith("-")) break;
    if (GIT_VALUE_GLOBALS.has(a)) i++;
    else if (!GIT_FLAGS.has(a) && !GIT_VALUE_GLOBALS.has(a.split("=")[0])) {
      // An unknown option may take a value, and then the subcommand is unknown.
      return deny(`git ${a}: unknown option before the subcommand; cannot tell what runs`);
    }
  }
  const sub = (c.args[i] ?? "").toLowerCase();
  const rest = c.args.slice(i + 1);
  if (GIT_SUB_DENY.has(sub)) return deny(`"git ${sub}" can run an editor, pager or command`);
  if (sub === "submodule" && rest.includes("foreach")) {
    return deny("git submodule foreach runs a command");
  }
  if (sub === "bisect" && rest.includes("run")) return deny("git bisect run runs a command");
  if (
    sub === "rebase" &&
    rest.some((a) => shortHas(a, "xi") || longOpt(a, "exec") || longOpt(a, "interactive"))
  ) {
    return deny("git rebase --exec/--interactive runs a command or an editor");
  }
  for (const a of rest) {
    if (GIT_RUN_OPTS.some((o) => longOpt(a, o))) {
      return deny(`git ${sub} ${a} can run a command`);
    }
    if (a === "--help") return deny("git --help opens the manual viewer");
    if (sub === "grep" && shortHas(a, "O")) return deny("git grep -O opens files in a pager");
    if ((sub === "clone" || sub === "ls-remote") && (shortHas(a, "uc"))) {
      return deny(`git ${sub} ${a} can name a command to run`);
    }
  }
  return null;
}

/** git -c, pagers, editors, hooks through options, and subcommands that run commands. */
export const GIT: ArgRule = {
  id: "deny.escape.git",
  programs: ["git"],
  escape: "git -c core.pager, aliases and hooks run commands (deny.escape.git)",
  check: gitRule,
};
