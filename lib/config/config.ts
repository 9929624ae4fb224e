/**
 * Agent configuration from the environment. Every value is checked at start;
 * bad ones stop the agent with one line each, naming the variable.
 * @module
 */

import { type FleetConfig, loadFleetConfig } from "./fleet_config.ts";

/** Validated agent configuration. */
export interface Config extends FleetConfig {
  homeserver: string;
  userId: string;
  accessToken: string;
  /** Device id from `TIBET_NC_DEVICE_ID`; when absent it is asked of the homeserver. */
  deviceId: string | null;
  room: string | null;
  allowedUsers: string[];
  hostname: string;
  stateDir: string;
  binDir: string;
  /** Seconds a command may be old and still run. */
  timebox: number;
  /** Passphrase that encrypts the crypto store at rest, if any. */
  storePassphrase: string | null;
  /** Per-command timeout default, in seconds. */
  commandTimeout: number;
  /** Largest timeout an operator may ask for with `timeout=N`, in seconds. */
  commandTimeoutMax: number;
  /** Longest a `watch=N` runs before it stops by itself, in seconds. */
  watchMax: number;
  /** Output bytes after which a command is stopped. */
  maxOutputBytes: number;
  /** Commands running at once. */
  maxConcurrent: number;
  /** Commands per operator per minute. */
  rateLimit: number;
  /** Policy file, if any. */
  policyFile: string | null;
  /** User commands run as. */
  execUser: string;
  /** Run commands as the agent's own user (weaker; for the demo and laptops). */
  execAsSelf: boolean;
  /** Accept devices their owner did not cross-sign (weaker; for clients without cross-signing). */
  allowUnsignedDevices: boolean;
  brainApiBase: string | null;
  /** Seconds a held command waits for another operator's approval. */
  approvalTimeout: number;
  /** User approved commands run as, instead of `execUser`; null: the exec user. */
  approvedExecUser: string | null;
  /** Directories `get` and `put` may touch (`TIBET_NC_FILE_DIRS`); empty: files are off. */
  fileDirs: string[];
  /** Largest file `get` sends or `put` writes. */
  maxFileBytes: number;
  /** Complete output kept per command for its `output.txt` attachment and its recording. */
  fullOutputBytes: number;
  /** age public key (`age1…`) the complete output of each command is recorded to, if any. */
  recordPubkey: string | null;
  /** Days a recording is kept. */
  recordKeepDays: number;
  /** Bytes all recordings may take together; the oldest go first. */
  recordMaxBytes: number;
}

/** Default of `TIBET_NC_MAX_FILE_BYTES`: 100 MiB. */
export const DEFAULT_MAX_FILE_BYTES = 100 * 1024 * 1024;
/** Default of `TIBET_NC_FULL_OUTPUT_BYTES`: 4 MiB. */
export const DEFAULT_FULL_OUTPUT_BYTES = 4 * 1024 * 1024;

/**
 * Exit code for a configuration the agent cannot run with (sysexits EX_CONFIG):
 * tibet-nc.service does not restart on it, since restarting cannot help.
 */
export const EXIT_CONFIG = 78;

/** Where the agent keeps its state unless TIBET_NC_STATE_DIR says otherwise. */
export const DEFAULT_STATE_DIR = "/var/lib/tibet-nc";

/** A configuration problem, naming the variable so a sysadmin can fix it. */
export class ConfigError extends Error {
  /** The variable at fault. */
  variable: string;
  /** Every problem {@linkcode loadConfig} found, this one first. */
  all: ConfigError[];
  constructor(variable: string, problem: string) {
    super(`${variable}: ${problem}`);
    this.name = "ConfigError";
    this.variable = variable;
    this.all = [this];
  }
}

const USER_ID = /^@[a-z0-9._=\-/+]+:[A-Za-z0-9.\-]+(:\d{1,5})?$/;
const ROOM_ID = /^![^:\s]+:[A-Za-z0-9.\-]+(:\d{1,5})?$/;

function required(env: Record<string, string | undefined>, name: string): string {
  const v = env[name]?.trim();
  if (!v) throw new ConfigError(name, "is required but not set");
  return v;
}

function optional(env: Record<string, string | undefined>, name: string): string | null {
  const v = env[name]?.trim();
  return v ? v : null;
}

function url(name: string, value: string): string {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    throw new ConfigError(
      name,
      `"${value}" is not a URL (expected e.g. https://matrix.example.org)`,
    );
  }
  if (u.protocol !== "https:" && u.protocol !== "http:") {
    throw new ConfigError(name, `must be an http(s) URL, got "${value}"`);
  }
  return u.href.replace(/\/+$/, "");
}

function userId(name: string, value: string): string {
  if (!USER_ID.test(value)) {
    throw new ConfigError(name, `"${value}" is not a Matrix user id (expected @name:server)`);
  }
  return value;
}

function seconds(
  env: Record<string, string | undefined>,
  name: string,
  fallback: number,
  max: number,
): number {
  const v = optional(env, name);
  if (v === null) return fallback;
  const n = Number(v);
  if (!/^\d+(\.\d+)?$/.test(v) || !(n > 0) || n > max) {
    throw new ConfigError(name, `must be a number of seconds between 0 and ${max}, got "${v}"`);
  }
  return n;
}

function yesNo(env: Record<string, string | undefined>, name: string): boolean {
  const v = optional(env, name) ?? "no";
  if (!/^(yes|no|true|false|1|0)$/i.test(v)) {
    throw new ConfigError(name, `must be yes or no, got "${v}"`);
  }
  return /^(yes|true|1)$/i.test(v);
}

function count(
  env: Record<string, string | undefined>,
  name: string,
  fallback: number,
  max: number,
): number {
  const v = optional(env, name);
  if (v === null) return fallback;
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < 1 || n > max) {
    throw new ConfigError(name, `must be a whole number from 1 to ${max}, got "${v}"`);
  }
  return n;
}

function readPassphrase(env: Record<string, string | undefined>): string | null {
  const direct = optional(env, "TIBET_NC_STORE_PASSPHRASE");
  const file = optional(env, "TIBET_NC_STORE_KEY_FILE");
  if (direct && file) {
    throw new ConfigError(
      "TIBET_NC_STORE_KEY_FILE",
      "set either it or TIBET_NC_STORE_PASSPHRASE, not both",
    );
  }
  if (!file) return direct;
  try {
    const text = Deno.readTextFileSync(file).trim();
    if (!text) throw new ConfigError("TIBET_NC_STORE_KEY_FILE", `${file} is empty`);
    return text;
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    throw new ConfigError(
      "TIBET_NC_STORE_KEY_FILE",
      `cannot read ${file}: ${(e as Error).message}`,
    );
  }
}

/**
 * Builds the configuration from environment variables, or throws a ConfigError
 * for the first problem, whose `all` lists every problem found (so a sysadmin
 * fixes them in one pass).
 */
export function loadConfig(env: Record<string, string | undefined>): Config {
  const problems: ConfigError[] = [];
  /** The value of `get`, or `fallback` with its problem noted, so later checks still run. */
  const take = <T>(get: () => T, fallback: T): T => {
    try {
      return get();
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      problems.push(e);
      return fallback;
    }
  };
  const homeserver = take(() => url("MATRIX_HOMESERVER", required(env, "MATRIX_HOMESERVER")), "");
  const uid = take(() => userId("TIBET_NC_USER_ID", required(env, "TIBET_NC_USER_ID")), "");
  const accessToken = take(() => {
    const token = required(env, "TIBET_NC_ACCESS_TOKEN");
    if (/\s/.test(token)) throw new ConfigError("TIBET_NC_ACCESS_TOKEN", "contains white space");
    return token;
  }, "");
  const allowedUsers = take(() => {
    const raw = env["TIBET_NC_ALLOWED_USERS"]?.trim();
    if (!raw) {
      throw new ConfigError(
        "TIBET_NC_ALLOWED_USERS",
        "is required (comma-separated operator ids); there is no default",
      );
    }
    const users = raw.split(",").map((s) => s.trim()).filter(Boolean)
      .map((u) => userId("TIBET_NC_ALLOWED_USERS", u));
    if (users.length === 0) throw new ConfigError("TIBET_NC_ALLOWED_USERS", "lists no user");
    return users;
  }, [] as string[]);
  const room = take(() => {
    const r = optional(env, "TIBET_NC_ROOM");
    if (r !== null && !ROOM_ID.test(r)) {
      throw new ConfigError("TIBET_NC_ROOM", `"${r}" is not a room id (expected !id:server)`);
    }
    return r;
  }, null);
  const deviceId = take(() => {
    const d = optional(env, "TIBET_NC_DEVICE_ID");
    if (d !== null && !/^[A-Za-z0-9_\-+/=.]{1,255}$/.test(d)) {
      throw new ConfigError("TIBET_NC_DEVICE_ID", `"${d}" is not a device id`);
    }
    return d;
  }, null);
  const absolute = (name: string, fallback: string) =>
    take(() => {
      const dir = optional(env, name) ?? fallback;
      if (!dir.startsWith("/")) {
        throw new ConfigError(name, `must be an absolute path, got "${dir}"`);
      }
      return dir.replace(/\/+$/, "") || "/";
    }, fallback);
  const stateDir = absolute("TIBET_NC_STATE_DIR", DEFAULT_STATE_DIR);
  const binDir = absolute("TIBET_NC_BIN_DIR", "/usr/local/tibet-nc-bin");
  const execAsSelf = take(() => yesNo(env, "TIBET_NC_EXEC_AS_SELF"), false);
  const allowUnsignedDevices = take(() => yesNo(env, "TIBET_NC_ALLOW_UNSIGNED_DEVICES"), false);
  const brain = optional(env, "BRAIN_API_BASE");
  const commandTimeout = take(() => seconds(env, "TIBET_NC_COMMAND_TIMEOUT", 60, 86400), 60);
  const commandTimeoutMax = take(
    () => seconds(env, "TIBET_NC_COMMAND_TIMEOUT_MAX", 3600, 86400),
    3600,
  );
  if (commandTimeout > commandTimeoutMax) {
    problems.push(
      new ConfigError(
        "TIBET_NC_COMMAND_TIMEOUT",
        `(${commandTimeout} s) is above TIBET_NC_COMMAND_TIMEOUT_MAX (${commandTimeoutMax} s)`,
      ),
    );
  }
  const fileDirs = take(() => {
    const v = optional(env, "TIBET_NC_FILE_DIRS");
    if (v === null) return [];
    const dirs = v.split(":").filter((d) => d !== "");
    for (const d of dirs) {
      if (!d.startsWith("/") || d.split("/").some((s) => s === ".." || s === ".")) {
        throw new ConfigError(
          "TIBET_NC_FILE_DIRS",
          `"${d}" must be an absolute path without . or .. (colon-separated list)`,
        );
      }
      if (d.replace(/\/+$/, "") === "") {
        throw new ConfigError("TIBET_NC_FILE_DIRS", "/ itself cannot be a file dir");
      }
    }
    return dirs.map((d) => d.replace(/\/+$/, "").replace(/\/{2,}/g, "/"));
  }, [] as string[]);
  const recordPubkey = take(() => {
    const k = optional(env, "TIBET_NC_RECORD_PUBKEY");
    if (k !== null && !/^age1[02-9ac-hj-np-z]{58}$/.test(k)) {
      throw new ConfigError(
        "TIBET_NC_RECORD_PUBKEY",
        `"${k.slice(0, 20)}…" is not an age X25519 public key (age1 followed by 58 characters)`,
      );
    }
    return k;
  }, null);
  const hostname = optional(env, "TIBET_NC_HOSTNAME") ?? Deno.hostname();
  const fleet = loadFleetConfig(env, hostname);
  for (const [variable, problem] of fleet.problems) {
    problems.push(new ConfigError(variable, problem));
  }
  const config: Config = {
    ...fleet.config,
    homeserver,
    userId: uid,
    accessToken,
    deviceId,
    room,
    allowedUsers,
    hostname,
    stateDir,
    binDir,
    timebox: take(() => seconds(env, "TIBET_NC_TIMEBOX", 10, 86400), 10),
    storePassphrase: take(() => readPassphrase(env), null),
    commandTimeout,
    commandTimeoutMax,
    watchMax: take(() => seconds(env, "TIBET_NC_WATCH_MAX", 600, 86400), 600),
    maxOutputBytes: take(() => count(env, "TIBET_NC_MAX_OUTPUT_BYTES", 4_000_000_000, 1e12), 0),
    maxConcurrent: take(() => count(env, "TIBET_NC_MAX_CONCURRENT", 4, 1000), 4),
    rateLimit: take(() => count(env, "TIBET_NC_RATE_LIMIT", 30, 100000), 30),
    policyFile: optional(env, "TIBET_NC_POLICY_FILE"),
    execUser: optional(env, "TIBET_NC_EXEC_USER") ?? "tibet-nc-exec",
    execAsSelf,
    allowUnsignedDevices,
    brainApiBase: brain === null ? null : take(() => url("BRAIN_API_BASE", brain), null),
    approvalTimeout: take(() => seconds(env, "TIBET_NC_APPROVAL_TIMEOUT", 300, 86400), 300),
    approvedExecUser: take(() => {
      const u = optional(env, "TIBET_NC_APPROVED_EXEC_USER");
      if (u !== null && !/^[a-z_][a-z0-9_-]{0,31}\$?$/.test(u)) {
        throw new ConfigError("TIBET_NC_APPROVED_EXEC_USER", `"${u}" is not a Unix user name`);
      }
      if (u === "root") {
        throw new ConfigError(
          "TIBET_NC_APPROVED_EXEC_USER",
          "must not be root: give the privileged lane a user with only the rights it needs",
        );
      }
      return u;
    }, null),
    fileDirs,
    maxFileBytes: take(
      () => count(env, "TIBET_NC_MAX_FILE_BYTES", DEFAULT_MAX_FILE_BYTES, 1e12),
      DEFAULT_MAX_FILE_BYTES,
    ),
    fullOutputBytes: take(
      () => count(env, "TIBET_NC_FULL_OUTPUT_BYTES", DEFAULT_FULL_OUTPUT_BYTES, 1 << 30),
      DEFAULT_FULL_OUTPUT_BYTES,
    ),
    recordPubkey,
    recordKeepDays: take(() => count(env, "TIBET_NC_RECORD_KEEP_DAYS", 30, 36500), 30),
    recordMaxBytes: take(
      () => count(env, "TIBET_NC_RECORD_MAX_BYTES", 1 << 30, 1e13),
      1 << 30,
    ),
  };
  if (problems.length > 0) {
    problems[0].all = problems;
    throw problems[0];
  }
  return config;
}

/** A setting that gives up one of the default guarantees, and what it gives up. */
export interface Weakening {
  variable: string;
  givesUp: string;
}

/**
 * Every set variable that weakens a guarantee of the security model: `doctor`
 * warns of each, `run` logs each at start, the README lists them.
 */
export function weakenedGuarantees(c: Config): Weakening[] {
  const out: Weakening[] = [];
  if (c.execAsSelf) {
    out.push({
      variable: "TIBET_NC_EXEC_AS_SELF=yes",
      givesUp:
        "commands run as the agent's own user and could read its state dir, env file and keys (for demos and laptops)",
    });
  }
  if (c.allowUnsignedDevices) {
    out.push({
      variable: "TIBET_NC_ALLOW_UNSIGNED_DEVICES=yes",
      givesUp:
        "a device its owner did not cross-sign (a stolen access token, or a homeserver admin adding a device) can run commands and read their output (for clients that cannot cross-sign)",
    });
  }
  if (c.storePassphrase === null) {
    out.push({
      variable: "no TIBET_NC_STORE_PASSPHRASE or TIBET_NC_STORE_KEY_FILE",
      givesUp:
        "the crypto store (the agent's device keys) is protected by file modes only, not encrypted at rest",
    });
  }
  return out;
}

/** Domains of tibet-nc.env.example and the docs: never a real operator's. */
const EXAMPLE_DOMAIN = /:(example\.(org|com|net)|localhost\.invalid)$/i;

/** Allowed operators still as the example file has them: a set-up step left out. */
export function exampleOperators(c: Pick<Config, "allowedUsers">): string[] {
  return c.allowedUsers.filter((u) => EXAMPLE_DOMAIN.test(u));
}
