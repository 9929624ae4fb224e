/**
 * journalctl: options that delete, move or rekey the journal, which is part of
 * the audit trail.
 * @module
 */

import { w } from "../names.ts";
import { longOpt } from "../options.ts";
import type { ArgRule } from "../rule.ts";

const JOURNAL_OPTS = w(`
  vacuum-size vacuum-time vacuum-files rotate flush relinquish-var smart-relinquish-var setup-keys
`);

/** journalctl --vacuum-*, --rotate, --flush, --setup-keys and the like. */
export const JOURNAL: ArgRule = {
  id: "deny.logs",
  programs: ["journalctl"],
  check: (c) => {
    const a = c.args.find((x) => JOURNAL_OPTS.some((o) => longOpt(x, o)));
    return a
      ? { rule: "deny.logs", why: `journalctl ${a} deletes, moves or rekeys the journal` }
      : null;
  },
};
