/**
 * Doctor's checks of the state dir's permissions and of the exec user: what it may and may not read.
 * @module
 */

import type { Config } from "../config/config.ts";
import { AUDIT_LOG_FILE } from "../audit/log.ts";
import { lookupUser } from "../exec/exec_user.ts";
import { errText, type Level, octal, Report, statOrNull, userLabel } from "./report.ts";

/** Every entry under `dir` (not following symlinks), with its lstat. */
function walk(dir: string): [string, Deno.FileInfo][] {
  const out: [string, Deno.FileInfo][] = [];
  for (const e of Deno.readDirSync(dir)) {
    const p = `${dir}/${e.name}`;
    const info = Deno.lstatSync(p);
    out.push([p, info]);
    if (info.isDirectory) out.push(...walk(p));
  }
  return out;
}

function list(paths: string[]): string {
  return paths.length <= 3
    ? paths.join(", ")
    : `${paths.slice(0, 3).join(", ")} and ${paths.length - 3} more`;
}

/** Checks the state dir; returns its stat when it exists. */
export function checkStateDir(r: Report, dir: string): Deno.FileInfo | null {
  let found: Deno.FileInfo | null;
  try {
    found = statOrNull(dir);
  } catch (e) {
    r.line("FAIL", "state dir", `cannot inspect ${dir}: ${errText(e)}`);
    return null;
  }
  const info = found;
  if (!info) {
    r.line(
      "FAIL",
      "state dir",
      `${dir} does not exist; run "tibet-nc login" to create it with the agent's keys`,
    );
    return null;
  }
  if (!info.isDirectory) {
    r.line("FAIL", "state dir", `${dir} is not a directory (TIBET_NC_STATE_DIR)`);
    return null;
  }
  const problems: [Level, string][] = [];
  const me = Deno.uid();
  // Root may check for the agent's user (tibet-nc.service runs it as User=tibet-nc).
  if (info.uid !== me && me !== 0) {
    problems.push([
      "FAIL",
      `owned by uid ${info.uid}, not by you (uid ${me}): run doctor as the agent's user, ` +
      `or chown the state dir to that user`,
    ]);
  }
  const mode = info.mode ?? 0;
  if (mode & 0o077) {
    problems.push([
      "FAIL",
      `mode ${
        octal(mode)
      }: other users can enter it and read the agent's keys; run "chmod 700 ${dir}"`,
    ]);
  }
  if (problems.length === 0) {
    r.line("ok", "state dir", `${dir}, mode ${octal(mode)}, owner ${userLabel(info.uid)}`);
  }
  for (const [level, why] of problems) r.line(level, "state dir", `${dir} is ${why}`);

  let entries: [string, Deno.FileInfo][];
  try {
    entries = walk(dir);
  } catch (e) {
    r.line(
      "FAIL",
      "state files",
      `cannot read ${dir}: ${errText(e)}; run doctor as the agent's user or root`,
    );
    return info;
  }
  const open = entries.filter(([, i]) => !i.isSymlink && (i.mode ?? 0) & 0o077).map(([p]) => p);
  const foreign = entries.filter(([, i]) => i.uid !== info.uid).map(([p]) => p);
  if (open.length > 0) {
    r.line(
      mode & 0o077 ? "FAIL" : "warn",
      "state files",
      `${open.length} readable or writable by group or others: ${
        list(open)
      }; run "chmod -R go-rwx ${dir}"`,
    );
  }
  if (foreign.length > 0) {
    r.line(
      "FAIL",
      "state files",
      `${foreign.length} not owned by the state dir's owner (uid ${info.uid}), so the agent cannot write them: ${
        list(foreign)
      }; run "chown -R ${info.uid}:${info.gid} ${dir}"`,
    );
  }
  if (open.length === 0 && foreign.length === 0) {
    r.line("ok", "state files", `${entries.length} entries, none readable by group or others`);
  }
  return info;
}

/** True if `uid`/`gid` may read or enter a file or dir with `info` by its mode bits. */
export function mayAccess(info: Deno.FileInfo, uid: number, gid: number, bits: number): boolean {
  const mode = info.mode ?? 0;
  if (info.uid === uid) return (mode & (bits << 6)) !== 0;
  if (info.gid === gid) return (mode & (bits << 3)) !== 0;
  return (mode & bits) !== 0;
}

export async function checkExecUser(
  r: Report,
  c: Config,
  state: Deno.FileInfo | null,
  envFile: string | null,
  lane: { name: string; variable: string; label: string } = {
    name: c.execUser,
    variable: "TIBET_NC_EXEC_USER",
    label: "exec user",
  },
) {
  if (c.execAsSelf && lane.variable === "TIBET_NC_EXEC_USER") return; // warned of under "guarantees"
  const { name, variable, label } = lane;
  let user;
  try {
    user = lookupUser(name);
  } catch (e) {
    return r.line("FAIL", label, `cannot read /etc/passwd: ${errText(e)}`);
  }
  if (!user) {
    return r.line(
      "FAIL",
      label,
      `${variable}: user "${name}" does not exist (install.sh creates tibet-nc-exec)`,
    );
  }
  if (user.uid === 0) {
    return r.line("FAIL", label, `${variable}: "${name}" is root`);
  }
  const agentUid = state?.uid ?? Deno.uid();
  if (user.uid === agentUid) {
    return r.line(
      "FAIL",
      label,
      `${variable}: "${name}" is the agent's own user (it owns ${c.stateDir}); commands could read the agent's keys`,
    );
  }
  const canEnter = state !== null && mayAccess(state, user.uid, user.gid, 0o1);
  const closed = `${c.stateDir} (mode ${octal(state?.mode ?? 0)})`;
  let untried = "run doctor as root to also try reading as it";
  if (Deno.uid() === 0) {
    // Root can start a process as the exec user: trying also catches ACLs and groups.
    const targets = [...probeFiles(c.stateDir), ...(envFile ? [envFile] : [])];
    const readable: string[] = [];
    let denied = 0;
    for (const file of targets) {
      const res = await readAs(file, user.uid, user.gid);
      if (res === "read") readable.push(file);
      else if (res === "denied") denied++;
      else untried = `could not try reading as it: ${res}`;
    }
    if (readable.length > 0) {
      return r.line(
        "FAIL",
        label,
        `"${name}" could read ${readable.join(", ")} (tried as uid ${user.uid}): ` +
          `make the files mode 0600 and ${c.stateDir} mode 0700, owned by the agent's user`,
      );
    }
    if (!canEnter && targets.length > 0 && denied === targets.length) {
      return r.line(
        "ok",
        label,
        `"${name}" (uid ${user.uid}) cannot read ${list(targets)} (tried)`,
      );
    }
  }
  if (canEnter) {
    return r.line(
      "FAIL",
      label,
      `"${name}" can enter ${closed}; run "chmod 700 ${c.stateDir}"`,
    );
  }
  r.line(
    "ok",
    label,
    `"${name}" (uid ${user.uid}) is not the agent's user and cannot enter ${closed} ` +
      `(${untried})`,
  );
}

/** A few secret files of the state dir to try reading as the exec user. */
function probeFiles(stateDir: string): string[] {
  const want = ["device.json", "signing_key.jwk", AUDIT_LOG_FILE];
  return want.map((f) => `${stateDir}/${f}`).filter((p) => statOrNull(p)?.isFile);
}

/**
 * Runs `head -c1 file` as uid:gid: "read", "denied" (permission denied), or why
 * the attempt says nothing (no head, no run permission, another error).
 */
async function readAs(file: string, uid: number, gid: number): Promise<string> {
  const head = ["/usr/bin/head", "/bin/head"].find((p) => statOrNull(p)?.isFile);
  if (!head) return "no head(1) on this host";
  try {
    const out = await new Deno.Command(head, {
      args: ["-c1", file],
      uid,
      gid,
      clearEnv: true,
      cwd: "/",
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).output();
    if (out.success) return "read";
    const err = new TextDecoder().decode(out.stderr);
    return /permission denied/i.test(err) ? "denied" : `head failed: ${err.trim()}`;
  } catch (e) {
    return `cannot start ${head}: ${errText(e)}`;
  }
}
