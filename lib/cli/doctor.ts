/**
 * `tibet-nc doctor`: checks an installation the way the agent will use it and
 * prints one line per check, `ok`, `warn` or `FAIL`, with what to do. Read-only:
 * it may run beside a running agent (the crypto store is read, never compacted).
 * @module
 */

import {
  type Config,
  ConfigError,
  exampleOperators,
  loadConfig,
  weakenedGuarantees,
} from "../config/config.ts";
import { withEnvFile } from "../config/env_file.ts";
import { whoami } from "../matrix/client.ts";
import { clientVersions, type VersionsAnswer } from "../matrix/account.ts";
import { inspectStore } from "../store/inspect.ts";
import { DEFAULT_POLICY, judge, loadPolicy } from "../policy/judge.ts";
import { AUDIT_LOG_FILE } from "../audit/log.ts";
import { verifyLogFile } from "../audit/verify.ts";
import { lookupUser } from "../exec/exec_user.ts";
import { resolveProgram } from "../exec/resolve.ts";
import { parseArgs, UsageError } from "./args.ts";

const USAGE = `usage: tibet-nc doctor [--env-file FILE]

Checks the configuration, file permissions, exec user, bin dir, homeserver,
clock, access token, crypto store and audit log, one line per check:
"ok", "warn" or "FAIL" and what to do. Exit code 1 if any check FAILs.
Without --env-file, /etc/tibet-nc.env is read when it exists, over the
environment. Run it as the agent's user, or as root for the exec user test.`;

const DEFAULT_ENV_FILE = "/etc/tibet-nc.env";

/** Programs the policy allows only after checking their arguments (GTFOBins). */
const ARG_CHECKED: Record<string, string> = {
  find: "find -exec/-ok run commands (deny.escape.find-exec)",
  awk: "awk system() and pipes run commands (deny.escape.awk)",
  sed: "GNU sed's e command and w flag run commands and write files (deny.escape.sed)",
  tar: "tar --checkpoint-action, --to-command and -I run commands (deny.escape.tar)",
  git: "git -c core.pager, aliases and hooks run commands (deny.escape.git)",
  sort: "sort --compress-program runs a program (deny.escape.exec-option)",
  split: "split --filter runs a shell command (deny.escape.exec-option)",
  zip: "zip -TT runs a command (deny.escape.exec-option)",
  rsync: "rsync -e runs a program (deny.escape.exec-option)",
  tcpdump: "tcpdump -z runs a program (deny.escape.exec-option)",
  cpio: "cpio --rsh-command runs a program (deny.escape.exec-option)",
  nmap: "nmap --script runs code (deny.escape.exec-option)",
  systemctl: "systemctl edit opens an editor, its pager a shell (deny.escape.editor)",
  journalctl: "journalctl opens a pager (children get PAGER=cat)",
  dmesg: "dmesg -H opens a pager (children get PAGER=cat)",
};
for (const a of ["gawk", "mawk", "nawk"]) ARG_CHECKED[a] = ARG_CHECKED.awk;

type Level = "ok" | "warn" | "FAIL";

/** Prints findings as they come and remembers whether any failed. */
class Report {
  failed = false;
  line(level: Level, check: string, detail: string): void {
    if (level === "FAIL") this.failed = true;
    console.log(`${level.padEnd(4)} ${check}: ${detail}`);
  }
}

const octal = (mode: number) => `0${(mode & 0o777).toString(8).padStart(3, "0")}`;
const errText = (e: unknown) => (e as Error).message ?? String(e);
/** fetch errors keep the useful part (refused, DNS, TLS) in their cause. */
const netText = (e: unknown) => {
  const cause = (e as Error).cause;
  const inner = cause instanceof Error
    ? cause.message.replace(/^error sending request[^:]*: /, "")
    : "";
  return inner ? `${errText(e)}: ${inner}` : errText(e);
};

/** "name (uid N)" from /etc/passwd, or "uid N". */
function userLabel(uid: number | null): string {
  try {
    for (const line of Deno.readTextFileSync("/etc/passwd").split("\n")) {
      const f = line.split(":");
      if (f.length >= 7 && Number(f[2]) === uid) return `${f[0]} (uid ${uid})`;
    }
  } catch { /* no name then */ }
  return `uid ${uid}`;
}

function statOrNull(path: string): Deno.FileInfo | null {
  try {
    return Deno.statSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

// ------------------------------------------------------------------ config

/** Checks the env file's mode; false when it cannot be inspected. */
function checkEnvFile(r: Report, path: string): boolean {
  let info: Deno.FileInfo;
  try {
    info = Deno.statSync(path);
  } catch (e) {
    r.line("FAIL", "env file", `cannot read ${path}: ${errText(e)}`);
    return false;
  }
  const mode = info.mode ?? 0;
  if (mode & 0o007) {
    r.line(
      "FAIL",
      "env file",
      `${path} is mode ${octal(mode)}: every local user can read or change the access ` +
        `token in it; ` +
        `run "chmod 600 ${path}" and replace the token (tibet-nc login)`,
    );
  } else if (mode & 0o070) {
    r.line(
      "warn",
      "env file",
      `${path} is mode ${
        octal(mode)
      }: its group can read the access token; run "chmod 600 ${path}"`,
    );
  } else r.line("ok", "env file", `${path}, mode ${octal(mode)}`);
  return true;
}

function checkConfig(r: Report, env: Record<string, string>): Config | null {
  try {
    const c = loadConfig(env);
    r.line("ok", "config", `${c.userId} on ${c.homeserver}, ${c.allowedUsers.length} operator(s)`);
    const examples = exampleOperators(c);
    if (examples.length > 0) {
      r.line(
        "warn",
        "config",
        `TIBET_NC_ALLOWED_USERS still lists ${
          examples.join(", ")
        } from the example file: set it to your operators' Matrix ids`,
      );
    }
    for (const w of weakenedGuarantees(c)) {
      r.line("warn", "guarantees", `${w.variable}: ${w.givesUp}`);
    }
    return c;
  } catch (e) {
    if (!(e instanceof ConfigError)) {
      r.line("FAIL", "config", errText(e));
      return null;
    }
    for (const problem of e.all) r.line("FAIL", "config", problem.message);
    return null;
  }
}

async function checkPolicy(r: Report, c: Config): Promise<void> {
  if (c.policyFile === null) return r.line("ok", "policy", "built-in default (denylist mode)");
  try {
    const p = await loadPolicy(c.policyFile);
    r.line(
      "ok",
      "policy",
      `${c.policyFile}: ${p.mode} mode, ${p.allow.length} allow, ${p.deny.length} deny`,
    );
  } catch (e) {
    r.line("FAIL", "policy", `TIBET_NC_POLICY_FILE: ${errText(e)}`);
  }
}

// ------------------------------------------------------------------ files

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
function checkStateDir(r: Report, dir: string): Deno.FileInfo | null {
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
function mayAccess(info: Deno.FileInfo, uid: number, gid: number, bits: number): boolean {
  const mode = info.mode ?? 0;
  if (info.uid === uid) return (mode & (bits << 6)) !== 0;
  if (info.gid === gid) return (mode & (bits << 3)) !== 0;
  return (mode & bits) !== 0;
}

async function checkExecUser(
  r: Report,
  c: Config,
  state: Deno.FileInfo | null,
  envFile: string | null,
) {
  if (c.execAsSelf) return; // warned of under "guarantees"
  let user;
  try {
    user = lookupUser(c.execUser);
  } catch (e) {
    return r.line("FAIL", "exec user", `cannot read /etc/passwd: ${errText(e)}`);
  }
  if (!user) {
    return r.line(
      "FAIL",
      "exec user",
      `TIBET_NC_EXEC_USER: user "${c.execUser}" does not exist (install.sh creates tibet-nc-exec)`,
    );
  }
  if (user.uid === 0) {
    return r.line("FAIL", "exec user", `TIBET_NC_EXEC_USER: "${c.execUser}" is root`);
  }
  const agentUid = state?.uid ?? Deno.uid();
  if (user.uid === agentUid) {
    return r.line(
      "FAIL",
      "exec user",
      `TIBET_NC_EXEC_USER: "${c.execUser}" is the agent's own user (it owns ${c.stateDir}); commands could read the agent's keys`,
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
        "exec user",
        `"${c.execUser}" could read ${readable.join(", ")} (tried as uid ${user.uid}): ` +
          `make the files mode 0600 and ${c.stateDir} mode 0700, owned by the agent's user`,
      );
    }
    if (!canEnter && targets.length > 0 && denied === targets.length) {
      return r.line(
        "ok",
        "exec user",
        `"${c.execUser}" (uid ${user.uid}) cannot read ${list(targets)} (tried)`,
      );
    }
  }
  if (canEnter) {
    return r.line(
      "FAIL",
      "exec user",
      `"${c.execUser}" can enter ${closed}; run "chmod 700 ${c.stateDir}"`,
    );
  }
  r.line(
    "ok",
    "exec user",
    `"${c.execUser}" (uid ${user.uid}) is not the agent's user and cannot enter ${closed} ` +
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

const nameKeys = (n: string): string[] => {
  const base = n.toLowerCase();
  const first = base.split(".")[0];
  return [base, first, first.replace(/[\d._-]+$/, "")];
};

async function checkBinDir(r: Report, c: Config): Promise<void> {
  const dir = c.binDir;
  let info: Deno.FileInfo | null;
  try {
    info = statOrNull(dir);
  } catch (e) {
    return r.line("FAIL", "bin dir", `cannot inspect ${dir}: ${errText(e)}`);
  }
  if (!info?.isDirectory) {
    return r.line(
      "FAIL",
      "bin dir",
      `${dir} ${
        info ? "is not a directory" : "does not exist"
      } (TIBET_NC_BIN_DIR): create it, owned by root and mode 0755, and symlink the programs operators may run into it`,
    );
  }
  const mode = info.mode ?? 0;
  if (mode & 0o022) {
    r.line(
      "FAIL",
      "bin dir",
      `${dir} is mode ${octal(mode)}: others can add programs to it; run "chmod 755 ${dir}"`,
    );
  }
  const exec = c.execAsSelf ? null : lookupUser(c.execUser);
  if (exec && !mayAccess(info, exec.uid, exec.gid, 0o1)) {
    r.line(
      "FAIL",
      "bin dir",
      `"${c.execUser}" cannot enter ${dir} (mode ${
        octal(mode)
      }), so no command can start; run "chmod 755 ${dir}"`,
    );
  }
  const names = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
  const bad: string[] = [];
  for (const name of names) {
    const res = await resolveProgram(dir, name);
    if (!res.ok) {
      bad.push(res.reason);
      continue;
    }
    const label = res.realName === name ? name : `${name} (-> ${res.realPath})`;
    const v = judge([name], { name, realName: res.realName }, DEFAULT_POLICY);
    if (v.verdict === "deny") {
      r.line(
        "warn",
        "bin dir",
        `${label}: the policy refuses it outright (${v.rule}: ${v.reason}); it can only be a way out, remove it`,
      );
      continue;
    }
    const how = [...nameKeys(name), ...nameKeys(res.realName)].map((k) => ARG_CHECKED[k]).find(
      Boolean,
    );
    if (how) {
      r.line(
        "warn",
        "bin dir",
        `${label} can spawn a shell through its arguments (GTFOBins: ${how}); the policy refuses the known forms, keep it only if operators need it`,
      );
    }
  }
  for (const why of bad) r.line("FAIL", "bin dir", why);
  if (names.length === 0) {
    r.line("warn", "bin dir", `${dir} is empty: operators can run no program`);
  } else if (bad.length === 0) {
    r.line("ok", "bin dir", `${dir}: ${names.length} programs, all executable`);
  }
}

// ------------------------------------------------------------------ network

async function checkHomeserver(r: Report, c: Config): Promise<boolean> {
  let res: VersionsAnswer;
  try {
    res = await clientVersions(c.homeserver);
  } catch (e) {
    r.line("FAIL", "homeserver", `cannot reach ${c.homeserver} (MATRIX_HOMESERVER): ${netText(e)}`);
    return false;
  }
  const { ms, versions } = res;
  if (versions === null) {
    r.line(
      "FAIL",
      "homeserver",
      `${c.homeserver} answered HTTP ${res.status} to /_matrix/client/versions: is MATRIX_HOMESERVER the Matrix client API base URL?`,
    );
    return false;
  }
  r.line(
    "ok",
    "homeserver",
    `${c.homeserver} answers in ${ms.toFixed(0)} ms (Matrix ${versions.at(-1)})`,
  );

  const date = res.date;
  const server = date ? Date.parse(date) : NaN;
  if (Number.isNaN(server)) {
    r.line("warn", "clock", "the homeserver sent no usable Date header; cannot compare clocks");
    return true;
  }
  // Date has whole seconds: the server's time was within [server, server + 1 s).
  const skew = (res.sentAt + ms / 2 - (server + 500)) / 1000;
  const how = `the host clock is ${Math.abs(skew).toFixed(1)} s ${
    skew > 0 ? "ahead of" : "behind"
  } the homeserver's`;
  if (Math.abs(skew) > c.timebox / 2) {
    r.line(
      "FAIL",
      "clock",
      `${how}, more than half of TIBET_NC_TIMEBOX (${c.timebox} s): fresh commands would be refused as expired; sync the clock (e.g. timedatectl set-ntp true)`,
    );
  } else if (Math.abs(skew) > 2) {
    r.line("warn", "clock", `${how}; sync the clock (e.g. timedatectl set-ntp true)`);
  } else {r.line(
      "ok",
      "clock",
      `within 2 s of the homeserver's (offset ${skew >= 0 ? "+" : ""}${skew.toFixed(1)} s)`,
    );}
  return true;
}

async function checkToken(r: Report, c: Config): Promise<void> {
  let who;
  try {
    who = await whoami(c.homeserver, c.accessToken);
  } catch (e) {
    return r.line("FAIL", "access token", errText(e));
  }
  if (who.userId !== c.userId) {
    return r.line(
      "FAIL",
      "access token",
      `TIBET_NC_ACCESS_TOKEN belongs to ${who.userId}, not TIBET_NC_USER_ID ${c.userId}`,
    );
  }
  if (c.deviceId && c.deviceId !== who.deviceId) {
    return r.line(
      "FAIL",
      "access token",
      `TIBET_NC_DEVICE_ID is ${c.deviceId} but the access token is for device ${who.deviceId}`,
    );
  }
  r.line("ok", "access token", `valid for ${who.userId} device ${who.deviceId}`);
  const path = `${c.stateDir}/device.json`;
  try {
    const saved = JSON.parse(Deno.readTextFileSync(path));
    if (saved.userId !== who.userId || saved.deviceId !== who.deviceId) {
      r.line(
        "FAIL",
        "device",
        `${c.stateDir} holds the keys of ${saved.userId} device ${saved.deviceId}, but the access token is for device ${who.deviceId}: the agent will refuse to start; use that device's token, or "tibet-nc login" with an empty state dir`,
      );
    } else r.line("ok", "device", `${c.stateDir} belongs to device ${who.deviceId}`);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      r.line(
        "warn",
        "device",
        `${path} does not exist yet: the agent binds the state dir to device ${who.deviceId} at its first start`,
      );
    } else r.line("FAIL", "device", `cannot read ${path}: ${errText(e)}`);
  }
}

// ------------------------------------------------------------------ stores

/** Reads every database of the crypto store without writing (no compaction). */
function checkCryptoStore(r: Report, c: Config): void {
  const dir = `${c.stateDir}/crypto`;
  const found = inspectStore(dir, c.storePassphrase);
  if (found.kind === "unreadable") return r.line("FAIL", "crypto store", found.reason);
  if (found.kind === "empty") {
    return statOrNull(`${c.stateDir}/device.json`)
      ? r.line(
        "FAIL",
        "crypto store",
        `${dir} is empty but ${c.stateDir}/device.json names a device: that device's keys are lost; run "tibet-nc login" with an empty state dir`,
      )
      : r.line(
        "warn",
        "crypto store",
        `${dir} does not exist yet: it is created at the first login or start`,
      );
  }
  const rest = found.encrypted
    ? "encrypted at rest"
    : "not encrypted at rest (TIBET_NC_STORE_PASSPHRASE or _KEY_FILE would encrypt a new store)";
  r.line(
    "ok",
    "crypto store",
    `${dir}: ${found.databases} database(s) readable, ${found.journalRecords} journal record(s), ${rest}`,
  );
}

async function checkAuditLog(r: Report, c: Config): Promise<void> {
  const path = `${c.stateDir}/${AUDIT_LOG_FILE}`;
  if (!statOrNull(path)) {
    return r.line("ok", "audit log", `${path} does not exist yet (no command has run)`);
  }
  try {
    const v = await verifyLogFile(path);
    if (v.ok) {
      r.line(
        "ok",
        "audit log",
        `${path}: ${v.count} record(s) verified, head ${v.head ? v.head.slice(0, 16) : "none"}`,
      );
    } else {
      r.line("FAIL", "audit log", `${path}: record #${v.firstBadSeq}: ${v.reason}`);
    }
  } catch (e) {
    r.line("FAIL", "audit log", `cannot read ${path}: ${errText(e)}`);
  }
}

// ------------------------------------------------------------------ command

/** Runs `tibet-nc doctor`; returns 0 when nothing FAILs, 1 otherwise, 2 on usage errors. */
export async function doctorCommand(args: string[]): Promise<number> {
  let envFile: string | null;
  try {
    const a = parseArgs(args, { values: ["--env-file"] });
    if (a.help) {
      console.log(USAGE);
      return 0;
    }
    envFile = a.values.get("--env-file") ?? null;
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    console.error(`tibet-nc doctor: ${e.message}\n\n${USAGE}`);
    return 2;
  }
  const r = new Report();
  if (envFile === null && statOrNull(DEFAULT_ENV_FILE)) envFile = DEFAULT_ENV_FILE;
  let env = Deno.env.toObject();
  if (envFile === null) {
    r.line(
      "warn",
      "env file",
      `none given and no ${DEFAULT_ENV_FILE}: checking the process environment only`,
    );
  } else {
    if (checkEnvFile(r, envFile)) {
      try {
        env = withEnvFile(env, envFile);
      } catch (e) {
        r.line("FAIL", "env file", errText(e).replace(/^--env-file: /, ""));
      }
    }
  }
  const c = checkConfig(r, env);
  if (!c) {
    r.line("warn", "doctor", "the other checks need a valid configuration; fix it and run again");
    return 1;
  }
  await checkPolicy(r, c);
  const state = checkStateDir(r, c.stateDir);
  await checkExecUser(r, c, state, envFile);
  await checkBinDir(r, c);
  if (await checkHomeserver(r, c)) await checkToken(r, c);
  if (state) {
    checkCryptoStore(r, c);
    await checkAuditLog(r, c);
  }
  return r.failed ? 1 : 0;
}
