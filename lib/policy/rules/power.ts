/**
 * Power: systemctl verbs, targets and options; D-Bus power calls.
 * @module
 */

import { w } from "../names.ts";
import { longOpt, shortHas } from "../options.ts";
import { type ArgRule, type Cmd, type Hit } from "../rule.ts";

const POWER_VERBS = new Set(w(`
  poweroff reboot halt kexec soft-reboot suspend hibernate hybrid-sleep suspend-then-hibernate
  sleep rescue emergency isolate default exit switch-root
`));
const POWER_TARGETS = w(`
  poweroff reboot halt kexec soft-reboot suspend hibernate hybrid-sleep
  suspend-then-hibernate sleep rescue emergency ctrl-alt-del shutdown final exit
  system-update factory-reset initrd-switch-root
`);
const POWER_TARGET = new RegExp(`^(${POWER_TARGETS.join("|")})\\.target$`, "i");
const POWER_OPTS = w(`
  ignore-inhibitors firmware-setup boot-loader-menu boot-loader-entry reboot-argument when
`);

function systemctlRule(c: Cmd): Hit {
  for (const a of c.args) {
    const low = a.toLowerCase();
    if (POWER_VERBS.has(low)) {
      return {
        rule: "deny.power",
        why: `"systemctl ${low}" changes the power state or boot target`,
      };
    }
    if (POWER_TARGET.test(a)) {
      return { rule: "deny.power", why: `${a} powers off, restarts or isolates the host` };
    }
    if (POWER_OPTS.some((o) => longOpt(a, o)) || shortHas(a, "i")) {
      return { rule: "deny.power", why: `${a} is a power-management option of systemctl` };
    }
    if (low === "edit") {
      return { rule: "deny.escape.editor", why: `"systemctl edit" opens an editor` };
    }
  }
  return null;
}

function dbusPowerRule(c: Cmd): Hit {
  const hit = c.args.find((a) =>
    /power_?off|reboot|halt|kexec|suspend|hibernate|hybrid_?sleep|sleep|isolate/i.test(a)
  );
  return hit
    ? { rule: "deny.power", why: `the D-Bus call "${hit}" can change the power state` }
    : null;
}

/** systemctl power verbs, targets and options; `systemctl edit` (an editor). */
export const SYSTEMCTL: ArgRule = {
  id: "deny.power",
  programs: ["systemctl"],
  escape: "systemctl edit opens an editor, its pager a shell (deny.escape.editor)",
  check: systemctlRule,
};

/** D-Bus calls that power off, reboot or suspend. */
export const DBUS_POWER: ArgRule = {
  id: "deny.power",
  programs: ["busctl", "dbus-send", "gdbus", "qdbus"],
  check: dbusPowerRule,
};
