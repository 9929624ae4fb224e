/**
 * Options that name a program to run (GTFOBins "command"/"shell" functions),
 * one rule per program, built from a table.
 * @module
 */

import { longOpt, shortHas } from "../options.ts";
import type { ArgRule, Cmd, Hit } from "../rule.ts";

interface ExecOption {
  program: string;
  /** Short option letters whose value is a program. */
  short?: string;
  long: string[];
  /** An exact word (no abbreviation or cluster). */
  exact?: string;
  /** What the option runs, for doctor. */
  runs: string;
}

const EXEC_OPTIONS: readonly ExecOption[] = [
  { program: "sort", long: ["compress-program"], runs: "a program" },
  { program: "split", long: ["filter"], runs: "a shell command" },
  { program: "zip", long: ["unzip-command"], exact: "-TT", runs: "a command" },
  { program: "rsync", short: "e", long: ["rsh", "rsync-path"], runs: "a program" },
  { program: "tcpdump", short: "z", long: [], runs: "a program" },
  { program: "cpio", long: ["rsh-command"], runs: "a program" },
  { program: "nmap", long: ["script", "interactive"], runs: "code" },
];

function names(e: ExecOption): string {
  return [
    ...e.long.map((l) => `--${l}`),
    ...[...(e.short ?? "")].map((s) => `-${s}`),
    ...(e.exact ? [e.exact] : []),
  ].join("/");
}

function execOptionRule(e: ExecOption): ArgRule {
  return {
    id: "deny.escape.exec-option",
    programs: [e.program],
    escape: `${e.program} ${names(e)} runs ${e.runs} (deny.escape.exec-option)`,
    check: (c: Cmd): Hit => {
      const a = c.args.find((x) =>
        e.long.some((l) => longOpt(x, l)) || (e.short !== undefined && shortHas(x, e.short)) ||
        x === e.exact
      );
      return a
        ? { rule: "deny.escape.exec-option", why: `${e.program} ${a} runs a command` }
        : null;
    },
  };
}

/** One rule per program whose options name a program to run. */
export const EXEC_OPTION_RULES: readonly ArgRule[] = EXEC_OPTIONS.map(execOptionRule);

/** `ip netns exec` and `ip vrf exec` run another program: a wrapper. */
export const IP_EXEC: ArgRule = {
  id: "deny.wrapper",
  programs: ["ip"],
  check: (c) => {
    if (c.args.includes("exec")) {
      return { rule: "deny.wrapper", why: "ip netns/vrf exec runs another program" };
    }
    // A batch file holds more ip commands, `netns exec` among them, unseen here.
    const batch = c.args.find((a) => a === "-b" || /^-+batch$/.test(a) || /^-+ba/.test(a));
    return batch
      ? { rule: "deny.escape.ip.batch", why: `ip ${batch} runs commands from a file` }
      : null;
  },
};
