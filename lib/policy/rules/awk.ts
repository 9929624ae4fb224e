/**
 * awk: programs that run commands, open pipes or sockets, or come from files.
 * @module
 */

import { w } from "../names.ts";
import { longOpt, shortHas } from "../options.ts";
import { type ArgRule, type Cmd, type Hit } from "../rule.ts";

const AWK_CODE = /system[\s\\]*\(|getline|\||@\s*[A-Za-z_]|\/inet/;
const AWK_FILE_OPTS = w("file include load exec debug");

/**
 * awk: no program from a file (`-f`, `-i`, `-E`, `-W exec`) or the debugger, and
 * no `system(`, `getline`, `|`, gawk `@`-calls or `/inet` sockets. Every word is
 * checked except the values of `-F` and `-v` (data), so it does not matter which
 * word awk takes as the program.
 */
function awkRule(c: Cmd): Hit {
  for (let i = 0; i < c.args.length; i++) {
    const a = c.args[i];
    if (a === "-F" || a === "-v") i++;
    if (a.startsWith("-F") || a.startsWith("-v")) continue;
    if (shortHas(a, "fiEWlD") || AWK_FILE_OPTS.some((o) => longOpt(a, o))) {
      return {
        rule: "deny.escape.awk",
        why: `awk ${a}: a program from a file, an extension or the debugger cannot be judged`,
      };
    }
    if (AWK_CODE.test(a)) {
      return {
        rule: "deny.escape.awk",
        why: "the awk program uses system(), getline, a pipe, an @-call or /inet: " +
          "it could run commands",
      };
    }
  }
  return null;
}

/** awk's ways out: system(), getline, pipes, @-calls, /inet, programs from files. */
export const AWK: ArgRule = {
  id: "deny.escape.awk",
  programs: ["awk", "gawk", "mawk", "nawk", "original-awk", "goawk", "one-true-awk"],
  escape: "awk system() and pipes run commands (deny.escape.awk)",
  check: awkRule,
};
