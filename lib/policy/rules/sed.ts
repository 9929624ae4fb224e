/**
 * sed: a small reader of GNU sed scripts, refusing the commands that run or write.
 * @module
 */

import { longOpt } from "../options.ts";
import { type ArgRule, type Cmd, type Hit } from "../rule.ts";

/** Why a sed script is risky (`e`, `w`, `W`, `s///e`, `s///w`, unparsable), or null. */
function sedScriptRisk(s: string, brackets: boolean): string | null {
  let i = 0;
  const n = s.length;
  const digits = () => {
    while (i < n && /\d/.test(s[i])) i++;
  };
  const spaces = () => {
    while (i < n && (s[i] === " " || s[i] === "\t")) i++;
  };
  const toEol = (stop = "\n") => {
    while (i < n && !stop.includes(s[i])) i++;
  };
  /** Reads up to the unescaped delimiter `d`; GNU treats `[...]` in regexes as literal. */
  const delimited = (d: string, regex: boolean): boolean => {
    while (i < n) {
      const ch = s[i++];
      if (ch === "\\") {
        i++;
      } else if (ch === d) {
        return true;
      } else if (ch === "[" && regex && brackets && d !== "[") {
        if (s[i] === "^") i++;
        if (s[i] === "]") i++;
        while (i < n && s[i] !== "]") {
          const cls = s[i] === "[" && ":.=".includes(s[i + 1] ?? "") ? s[i + 1] : null;
          if (cls) {
            const end = s.indexOf(`${cls}]`, i + 2);
            if (end < 0) return false;
            i = end + 2;
          } else i++;
        }
        if (i >= n) return false;
        i++;
      }
    }
    return false;
  };
  const address = (): boolean | null => {
    if (/\d/.test(s[i] ?? "")) {
      digits();
      if (s[i] === "~") {
        i++;
        digits();
      }
    } else if (s[i] === "$") i++;
    else if (s[i] === "/" || s[i] === "\\") {
      const d = s[i] === "/" ? "/" : s[i + 1];
      i += s[i] === "/" ? 1 : 2;
      if (d === undefined || !delimited(d, true)) return null;
      while (s[i] === "I" || s[i] === "M") i++;
    } else return false;
    return true;
  };

  while (i < n) {
    while (i < n && /[\s;]/.test(s[i])) i++;
    if (i >= n) break;
    const a1 = address();
    if (a1 === null) return "an address is not terminated";
    if (a1) {
      spaces();
      if (s[i] === ",") {
        i++;
        spaces();
        if (s[i] === "+" || s[i] === "~") {
          i++;
          digits();
        } else if (address() !== true) return "a second address cannot be read";
      }
    }
    spaces();
    while (s[i] === "!") {
      i++;
      spaces();
    }
    const cmd = s[i++];
    if (cmd === undefined) return "an address has no command";
    if ("{}=dDgGhHnNpPxzF".includes(cmd)) continue;
    if (cmd === "#") toEol();
    else if (cmd === ":" || "btTv".includes(cmd)) toEol(";\n}");
    else if ("aic".includes(cmd)) {
      while (i < n && s[i] !== "\n") i += s[i] === "\\" ? 2 : 1;
    } else if ("rR".includes(cmd)) toEol();
    else if ("qQlL".includes(cmd)) {
      spaces();
      digits();
    } else if (cmd === "e") return "the e command runs a shell command";
    else if (cmd === "w" || cmd === "W") return `the ${cmd} command writes a file`;
    else if (cmd === "y") {
      const d = s[i++];
      if (!d || d === "\\" || d === "\n" || !delimited(d, false) || !delimited(d, false)) {
        return "a y command is not terminated";
      }
    } else if (cmd === "s") {
      const d = s[i++];
      if (!d || d === "\\" || d === "\n" || !delimited(d, true) || !delimited(d, false)) {
        return "an s command is not terminated";
      }
      while (i < n && !/[\s;}#]/.test(s[i])) {
        const f = s[i++];
        if (f === "e") return "the s///e flag runs the pattern space as a shell command";
        if (f === "w") return "the s///w flag writes a file";
        if (!/[gpiImM\d]/.test(f)) return `unknown s flag "${f}"`;
      }
    } else return `unknown sed command "${cmd}"`;
  }
  return null;
}

/**
 * sed: no script from a file, and no `e`, `w`, `W`, `s///e` or `s///w` in the
 * script (found by a small parser of GNU sed syntax; anything it cannot read is
 * refused). `--sandbox` makes sed itself refuse those, so it is then allowed.
 * `-i` (in place) is allowed: it writes only what the exec user may write.
 */
function sedRule(c: Cmd): Hit {
  const scripts: string[] = [];
  const ops: string[] = [];
  let fromOption = false;
  let sandbox = false;
  const deny = (why: string): Hit => ({ rule: "deny.escape.sed", why });
  for (let i = 0; i < c.args.length; i++) {
    const a = c.args[i];
    if (a === "--") {
      ops.push(...c.args.slice(i + 1));
      break;
    }
    if (a.startsWith("--")) {
      const v = a.includes("=") ? a.slice(a.indexOf("=") + 1) : undefined;
      if (a === "--sandbox") sandbox = true; // exact: a misread here would allow
      else if (longOpt(a, "expression")) {
        scripts.push(v ?? c.args[++i] ?? "");
        fromOption = true;
      } else if (longOpt(a, "file")) return deny(`sed ${a}: a script from a file cannot be judged`);
      else if (longOpt(a, "line-length") && v === undefined && /^\d+$/.test(c.args[i + 1])) i++;
    } else if (/^-./.test(a)) {
      for (let j = 1; j < a.length; j++) {
        const ch = a[j];
        if (ch === "e") {
          scripts.push(a.slice(j + 1) || (c.args[++i] ?? ""));
          fromOption = true;
          break;
        }
        if (ch === "f") return deny(`sed ${a}: a script from a file cannot be judged`);
        if (ch === "l") {
          // Skip only a number, so a misread option can never hide the script.
          if (j === a.length - 1 && /^\d+$/.test(c.args[i + 1] ?? "")) i++;
          break;
        }
        if (ch === "i") break; // the rest is a backup suffix
      }
    } else ops.push(a);
  }
  if (sandbox) return null; // GNU sed itself then refuses e, w and r
  if (!fromOption && ops.length > 0) scripts.push(ops[0]);
  // GNU joins -e fragments with newlines; judge each and the join, with and
  // without bracket awareness, so a parser mismatch can only ever refuse.
  for (const script of [...scripts, scripts.join("\n")]) {
    for (const brackets of [true, false]) {
      const risk = sedScriptRisk(script, brackets);
      if (risk) return deny(`${risk} (use --sandbox to be sure)`);
    }
  }
  return null;
}

/** GNU sed's e command, w/W and the s///e and s///w flags; scripts from files. */
export const SED: ArgRule = {
  id: "deny.escape.sed",
  programs: ["sed", "gsed", "ssed"],
  escape: "GNU sed's e command and w flag run commands and write files (deny.escape.sed)",
  check: sedRule,
};
