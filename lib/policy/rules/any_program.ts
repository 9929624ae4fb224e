/**
 * Rules for every program's arguments: pager and editor settings, and a quoted
 * `|` followed by a shell.
 * @module
 */

import { nameKeys, SHELL_SET } from "../names.ts";
import type { ArgRule } from "../rule.ts";

/** `PAGER=…`, `--pager=…`, `core.editor=…`: a pager or editor can run a shell. */
export const PAGER_ARG: ArgRule = {
  id: "deny.escape.pager",
  programs: [],
  check: (c) => {
    const a = c.args.find((x) =>
      /^[\w.-]*(pager|editor|visual)\s*=/i.test(x) || /^--(pager|editor)(=|$)/i.test(x)
    );
    return a
      ? { rule: "deny.escape.pager", why: `"${a}" sets a pager or editor, which can run a shell` }
      : null;
  },
};

/** A quoted `|` or `|&` followed by a shell name. */
export const PIPE_SHELL: ArgRule = {
  id: "deny.pipe-shell",
  programs: [],
  check: (c) => {
    for (let i = 0; i + 1 < c.args.length; i++) {
      if (/^\|&?$/.test(c.args[i]) && nameKeys(c.args[i + 1]).some((k) => SHELL_SET.has(k))) {
        return {
          rule: "deny.pipe-shell",
          why: `piping into ${c.args[i + 1]} is refused (and pipes are not supported)`,
        };
      }
    }
    return null;
  },
};
