/**
 * L4 Airlock step 4: the command policy. It judges the
 * parsed argv after the program was resolved in the bin dir, so quoting, spacing,
 * `./`, full paths and case tricks are already gone; program names are matched
 * case-insensitively, NFKC-normalised (fullwidth `ｒｅｂｏｏｔ` is `reboot`), with
 * version suffixes dropped (`python3.11`, `vim.basic`), under both the bin-dir
 * name and the symlink target's name (`ls -> bash` is a shell).
 *
 * Order: hidden Unicode, then the built-in deny rules, then the policy file's
 * `deny`, then its `allow` / the mode. Built-in rules cannot be overridden.
 *
 * Built-in rule ids (stable: they go into replies and the audit log):
 *
 * - `deny.parse`: empty argv (in `checkCommand` also every parser refusal).
 * - `deny.unicode`: invisible, format or control characters in any word;
 *   non-ASCII or look-alike letters in the program name.
 * - `deny.power`: shutdown reboot poweroff halt init telinit kexec; systemctl
 *   power verbs, power targets and `-i`; D-Bus power calls; /proc/sysrq-trigger.
 * - `deny.disk`: mkfs* fdisk sfdisk cfdisk parted wipefs blkdiscard …; dd with
 *   `if=`/`of=` under /dev; shred, tee, cp … onto block devices.
 * - `deny.shell`: shells and interpreters (sh bash busybox python* perl node …).
 * - `deny.privilege`: sudo su doas pkexec runuser run0 sg newgrp.
 * - `deny.user-mgmt`: passwd useradd userdel usermod group* chpasswd visudo ….
 * - `deny.wrapper`: programs that run another program (env nice timeout nohup
 *   setsid stdbuf xargs chroot strace gdb script crontab at …), `ip netns exec`.
 * - `deny.escape.pager`, `deny.escape.editor`: less more man …, vi vim nano ed …,
 *   `systemctl edit`, and any `*pager=`/`*editor=` argument.
 * - `deny.escape.find-exec` (-exec -execdir -ok -okdir), `deny.escape.find-write`
 *   (-fprint* -fls -delete).
 * - `deny.escape.awk.command|network|write|load`, `deny.escape.sed`,
 *   `deny.escape.tar`, `deny.escape.git`, `deny.escape.openssl.load`,
 *   `deny.escape.ip.batch`: the GTFOBins escapes of these programs (one file
 *   each in `rules/`).
 * - `deny.write.protected`: a writing tool aimed at a system dir, `/var/log`,
 *   `/var/lib`, an `.ssh` dir, a device or the agent's state dir (`rules/write.ts`).
 * - `deny.network.upload`, `deny.network.socket`: curl/wget sending host files,
 *   curl talking to a local daemon's socket.
 * - `deny.pipe.commands`, `deny.pipe.write`: a stage after a `|` that would take
 *   commands or the names of files to write from the pipe (`rules/pipe_input.ts`).
 * - `deny.escape.exec-option`: options that name a program to run (sort
 *   --compress-program, split --filter, zip -TT, rsync -e, tcpdump -z, …).
 * - `deny.escape.interactive`: clients with a shell escape (psql sqlite3 ftp mail).
 * - `deny.network`: ssh scp sftp telnet nc ncat socat rsh ….
 * - `deny.pipe-shell`: a quoted `|` followed by a shell; curl/wget writing into
 *   system or `.ssh` dirs, reading a config file, or running wgetrc commands.
 * - `deny.rm-root`: recursive rm of `/` or a top-level dir (`/etc`, `/*`,
 *   `/usr/`, `..` climbs), `--no-preserve-root`; mv of such a dir.
 * - `deny.chmod-root`: chmod/chown/chgrp -R of `/` or a top-level dir.
 * - `deny.kernel`: insmod rmmod modprobe. `deny.logs`: journalctl --vacuum-*,
 *   --rotate, --flush … (the journal is part of the audit trail).
 * - From the policy file: `deny.policy:<pattern>`, `approve.policy:<pattern>` (held
 *   for another operator's approval), `deny.not-allowlisted`, `allow.policy:<pattern>`;
 *   otherwise `allow.default`.
 *
 * Wrappers are refused outright rather than judged by the program they wrap:
 * every wrapper has its own option syntax, and one missed option would let the
 * wrapped program through. Run the program directly instead.
 * @module
 */

import { familyOf, MULTI_CALL, nameKeys, normName } from "./names.ts";
import { hiddenChar } from "./unicode.ts";
import { checkArguments } from "./arg_rules.ts";
import type { Cmd } from "./rule.ts";
import { matches, type Policy } from "./policy_file.ts";

/** Outcome of {@linkcode judge}. */
export interface Verdict {
  /** `approve`: allowed once another operator approves it (the policy's `approve` list). */
  verdict: "allow" | "deny" | "approve";
  /** Stable id of the deciding rule, e.g. `deny.power`, `allow.default`. */
  rule: string;
  /** One sentence for the operator. */
  reason: string;
}

/** Names of the resolved program (the bin-dir entry and its final symlink target), and its place. */
export interface ProgramContext {
  name: string;
  realName: string;
  /** A stage after a `|`, reading what earlier stages print. @default false */
  piped?: boolean;
}

const deny = (rule: string, reason: string): Verdict => ({ verdict: "deny", rule, reason });

/**
 * Judges a parsed argv whose program resolved to `ctx` in the bin dir. Pure: no
 * file system access, so the monitor can call it again on the same request.
 */
export function judge(argv: string[], ctx: ProgramContext, policy: Policy): Verdict {
  if (argv.length === 0 || argv[0] === "") return deny("deny.parse", "empty command");
  for (const [i, a] of argv.entries()) {
    const ch = hiddenChar(a);
    if (ch) {
      return deny(
        "deny.unicode",
        `${
          i === 0 ? "the program name" : `argument ${i}`
        } contains the invisible or control character ${ch}; retype it`,
      );
    }
  }
  const label = ctx.name === ctx.realName
    ? `"${ctx.name}"`
    : `"${ctx.name}" (a link to ${ctx.realName})`;
  const names = [argv[0], ctx.name];
  if (!MULTI_CALL.has(normName(ctx.realName)) || normName(ctx.name) === normName(ctx.realName)) {
    names.push(ctx.realName);
  }
  const keys = new Set(names.flatMap(nameKeys));

  // `env` alone only lists the environment (`$ env` is how operators check for
  // leaks); with any other argument it is a wrapper.
  const envListing = keys.has("env") && argv.slice(1).every((a) => a === "-0" || a === "--null");
  const family = familyOf(keys);
  if (family && !(envListing && family.rule === "deny.wrapper")) {
    return deny(family.rule, `${label} ${family.why}`);
  }
  const odd = names.find((n) => normName(n) !== "" && !/^[\x21-\x7e]+$/.test(normName(n)));
  if (odd !== undefined) {
    return deny(
      "deny.unicode",
      `the program name "${odd}" has non-ASCII or look-alike characters; retype it`,
    );
  }

  const cmd: Cmd = {
    keys,
    args: argv.slice(1).map((a) => a.normalize("NFKC")),
    protect: policy.protect ?? [],
    piped: ctx.piped ?? false,
  };
  const hit = checkArguments(cmd);
  if (hit) return deny(hit.rule, `${label}: ${hit.why}`);

  const programs = [...new Set(names.map(normName))];
  const denied = policy.deny.find((p) => matches(p, argv, programs));
  if (denied) {
    return deny(`deny.policy:${denied.text}`, `refused by the policy pattern "${denied.text}"`);
  }
  const held = (policy.approve ?? []).find((p) => matches(p, argv, [normName(ctx.name)]));
  if (held) {
    return {
      verdict: "approve",
      rule: `approve.policy:${held.text}`,
      reason: `"${held.text}" needs another operator's approval`,
    };
  }
  const allowed = policy.allow.find((p) => matches(p, argv, [normName(ctx.name)]));
  if (allowed) {
    return {
      verdict: "allow",
      rule: `allow.policy:${allowed.text}`,
      reason: `allowed by "${allowed.text}"`,
    };
  }
  if (policy.mode === "allowlist") {
    return deny(
      "deny.not-allowlisted",
      `no allow pattern of the policy matches (allowlist mode${
        policy.source ? `, ${policy.source}` : ""
      })`,
    );
  }
  return { verdict: "allow", rule: "allow.default", reason: "no rule refuses it (denylist mode)" };
}
