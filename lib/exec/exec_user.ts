import { SETPRIV_PATH } from "./run.ts";
import { ConfigError } from "../config/config.ts";

/**
 * Who commands run as: `TIBET_NC_EXEC_USER`, never the
 * agent's own user, unless the configuration says so explicitly.
 * @module
 */

/** The identity commands run under. */
export interface ExecIdentity {
  /** User and group to switch to, or null to run as the agent itself. */
  uid: number | null;
  gid: number | null;
  name: string;
  home: string;
}

/** A passwd entry. */
interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

/** Looks a user up in `/etc/passwd` (Deno has no getpwnam). */
export function lookupUser(name: string, passwd = "/etc/passwd"): PasswdEntry | null {
  for (const line of Deno.readTextFileSync(passwd).split("\n")) {
    const f = line.split(":");
    if (f.length >= 7 && f[0] === name) {
      return { name, uid: Number(f[2]), gid: Number(f[3]), home: f[5] };
    }
  }
  return null;
}

/**
 * True when this process can start a program as `uid`:`gid` (root, or
 * CAP_SETUID + CAP_SETGID). Probed by starting setpriv(1) that way, because
 * Deno reads /proc only with --allow-all.
 */
export async function canSwitchTo(uid: number, gid: number): Promise<boolean> {
  try {
    const out = await new Deno.Command(SETPRIV_PATH, {
      args: ["--version"],
      uid,
      gid,
      clearEnv: true,
      cwd: "/",
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).output();
    return out.success;
  } catch {
    return false;
  }
}

/**
 * Decides the execution identity, or throws a ConfigError naming the variable to change.
 * `asSelf` is TIBET_NC_EXEC_AS_SELF.
 */
export async function execIdentity(
  userName: string,
  asSelf: boolean,
  variable = "TIBET_NC_EXEC_USER",
): Promise<ExecIdentity> {
  if (asSelf) {
    return {
      uid: null,
      gid: null,
      name: "(the agent's own user)",
      home: "/tmp",
    };
  }
  const entry = lookupUser(userName);
  if (!entry) {
    throw new ConfigError(
      variable,
      `user "${userName}" does not exist (install.sh creates tibet-nc-exec; or set TIBET_NC_EXEC_AS_SELF=yes, weaker)`,
    );
  }
  if (entry.uid === 0) {
    throw new ConfigError(
      variable,
      `"${userName}" is root; commands must run unprivileged`,
    );
  }
  if (entry.uid === Deno.uid()) {
    throw new ConfigError(
      variable,
      `"${userName}" is the agent's own user; use a separate user so commands cannot read the agent's secrets`,
    );
  }
  if (!(await canSwitchTo(entry.uid, entry.gid))) {
    throw new ConfigError(
      variable,
      `the agent cannot switch to "${userName}" (needs root or CAP_SETUID and CAP_SETGID, as tibet-nc.service grants); set TIBET_NC_EXEC_AS_SELF=yes to run commands as the agent's user (weaker)`,
    );
  }
  return { uid: entry.uid, gid: entry.gid, name: userName, home: entry.home };
}
