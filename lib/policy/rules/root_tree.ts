/**
 * The root tree: recursive rm, mv, chmod and chown of `/` or a top-level directory.
 * @module
 */

import { longOpt, nearRoot, operands, shortHas } from "../options.ts";
import { type ArgRule, type Cmd, type Hit, is } from "../rule.ts";

/** rm -r of `/` or a top-level dir (or with --no-preserve-root); mv of such a dir. */
function rmRule(c: Cmd): Hit {
  if (is(c, "rm")) {
    let recursive = false;
    for (const a of c.args) {
      if (a === "--") break;
      if (longOpt(a, "no-preserve-root")) {
        return { rule: "deny.rm-root", why: "--no-preserve-root removes the protection of /" };
      }
      if (longOpt(a, "recursive") || shortHas(a, "rR")) recursive = true;
    }
    const target = operands(c.args).find(nearRoot);
    if (recursive && target !== undefined) {
      return {
        rule: "deny.rm-root",
        why: `recursive rm of "${target}" would delete / or a top-level directory`,
      };
    }
  }
  if (is(c, "mv")) {
    // Every operand but the destination is a source; with -t all of them are.
    const hasT = c.args.some((a) => longOpt(a, "target-directory") || shortHas(a, "t"));
    const ops = operands(c.args);
    const target = (hasT ? ops : ops.slice(0, -1)).find(nearRoot);
    if (target !== undefined) {
      return {
        rule: "deny.rm-root",
        why: `moving "${target}" would take away / or a top-level directory`,
      };
    }
  }
  return null;
}

function chmodRule(c: Cmd): Hit {
  const recursive = c.args.some((a) => longOpt(a, "recursive") || shortHas(a, "R"));
  const target = operands(c.args).find(nearRoot);
  if (recursive && target !== undefined) {
    return {
      rule: "deny.chmod-root",
      why: `recursive change of "${target}" would break / or a top-level directory`,
    };
  }
  return null;
}

/** rm -r or mv of `/` or a top-level directory. */
export const RM_ROOT: ArgRule = { id: "deny.rm-root", programs: ["rm", "mv"], check: rmRule };

/** Recursive chmod, chown and the like of `/` or a top-level directory. */
export const CHMOD_ROOT: ArgRule = {
  id: "deny.chmod-root",
  programs: ["chmod", "chown", "chgrp", "setfacl", "chattr", "chcon"],
  check: chmodRule,
};
