/**
 * awk: the GTFOBins functions of awk, each refused with its own rule id:
 * `deny.escape.awk.command` (system(), pipes, getline from a command, gawk
 * `@`-calls), `deny.escape.awk.network` (`/inet` sockets), `deny.escape.awk.write`
 * (`print > file`, `printf >> file`), `deny.escape.awk.load` (a program from a
 * file, an extension, the debugger). Reading files stays open: awk reads what the
 * exec user may read, as `cat` does.
 * @module
 */

import { w } from "../names.ts";
import { longOpt, shortHas } from "../options.ts";
import type { ArgRule, Cmd, Hit } from "../rule.ts";

const AWK_COMMAND = /system[\s\\]*\(|getline|\||@\s*[A-Za-z_]/;
const AWK_FILE_OPTS = w("file include load exec debug");

/**
 * True if the awk program text redirects the output of a `print` or `printf`
 * (`print 1 > "f"`, `printf("%s", x) >> f`): a `>` at parenthesis depth 0,
 * outside strings, before the statement ends. In awk such a `>` is always a
 * redirection (a comparison inside print needs parentheses), so this errs only
 * towards refusing (a `>` inside a regex literal of a print).
 */
export function awkRedirects(program: string): boolean {
  const statement = /\b(print|printf)\b/g;
  for (let m; (m = statement.exec(program)) !== null;) {
    let depth = 0;
    for (let i = m.index + m[0].length; i < program.length; i++) {
      const ch = program[i];
      if (ch === '"') {
        for (i++; i < program.length && program[i] !== '"'; i++) if (program[i] === "\\") i++;
      } else if (ch === "(" || ch === "[") depth++;
      else if (ch === ")" || ch === "]") depth--;
      else if (depth <= 0 && (ch === ";" || ch === "\n" || ch === "}")) break;
      else if (depth <= 0 && ch === ">") return true;
    }
  }
  return false;
}

/**
 * Every word is checked except the values of `-F` and `-v` (data), so it does not
 * matter which word awk takes as the program.
 */
function awkRule(c: Cmd): Hit {
  for (let i = 0; i < c.args.length; i++) {
    const a = c.args[i];
    if (a === "-F" || a === "-v") i++;
    if (a.startsWith("-F") || a.startsWith("-v")) continue;
    if (shortHas(a, "fiEWlD") || AWK_FILE_OPTS.some((o) => longOpt(a, o))) {
      return {
        rule: "deny.escape.awk.load",
        why: `awk ${a}: a program from a file, an extension or the debugger cannot be judged`,
      };
    }
    if (/\/inet/.test(a)) {
      return { rule: "deny.escape.awk.network", why: "the awk program opens a /inet socket" };
    }
    if (AWK_COMMAND.test(a)) {
      return {
        rule: "deny.escape.awk.command",
        why: "the awk program uses system(), getline, a pipe or an @-call: it could run commands",
      };
    }
    if (awkRedirects(a)) {
      return {
        rule: "deny.escape.awk.write",
        why: "the awk program redirects print into a file (print > file); " +
          "awk here only reads and prints",
      };
    }
  }
  return null;
}

/** awk's ways out: commands, sockets, file writes, programs from files. */
export const AWK: ArgRule = {
  id: "deny.escape.awk",
  programs: ["awk", "gawk", "mawk", "nawk", "original-awk", "goawk", "one-true-awk"],
  escape:
    "awk system(), pipes and /inet run commands and open sockets, print > writes files (deny.escape.awk)",
  check: awkRule,
};
