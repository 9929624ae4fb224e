/**
 * find: actions that run commands or write and delete files.
 * @module
 */

import { type ArgRule, type Cmd, type Hit } from "../rule.ts";

const FIND_EXEC = new Set(["-exec", "-execdir", "-ok", "-okdir"]);
const FIND_WRITE = new Set(["-fprint", "-fprint0", "-fprintf", "-fls", "-delete"]);

function findRule(c: Cmd): Hit {
  for (const a of c.args) {
    const low = a.toLowerCase();
    if (FIND_EXEC.has(low)) {
      return { rule: "deny.escape.find-exec", why: `find ${a} runs a command` };
    }
    if (FIND_WRITE.has(low)) {
      return { rule: "deny.escape.find-write", why: `find ${a} writes or deletes files` };
    }
  }
  return null;
}

/** find -exec/-ok and the actions that write or delete. */
export const FIND: ArgRule = {
  id: "deny.escape.find-exec",
  programs: ["find"],
  escape: "find -exec/-ok run commands, -fprint writes files (deny.escape.find-exec)",
  check: findRule,
};
