/**
 * Agent configuration from the environment. Every value is
 * checked at start; a bad one stops the agent with one line naming the variable.
 * @module
 */

/** Validated agent configuration. */
export interface Config {
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
}

/** A configuration problem, naming the variable so a sysadmin can fix it. */
export class ConfigError extends Error {
  /** The variable at fault. */
  variable: string;
  constructor(variable: string, problem: string) {
    super(`${variable}: ${problem}`);
    this.name = "ConfigError";
    this.variable = variable;
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

/** Builds the configuration from environment variables, or throws a ConfigError. */
export function loadConfig(env: Record<string, string | undefined>): Config {
  const homeserver = url("MATRIX_HOMESERVER", required(env, "MATRIX_HOMESERVER"));
  const uid = userId("TIBET_NC_USER_ID", required(env, "TIBET_NC_USER_ID"));
  const accessToken = required(env, "TIBET_NC_ACCESS_TOKEN");
  if (/\s/.test(accessToken)) {
    throw new ConfigError("TIBET_NC_ACCESS_TOKEN", "contains white space");
  }
  const allowedRaw = env["TIBET_NC_ALLOWED_USERS"]?.trim();
  if (!allowedRaw) {
    throw new ConfigError(
      "TIBET_NC_ALLOWED_USERS",
      "is required (comma-separated operator ids); there is no default",
    );
  }
  const allowedUsers = allowedRaw.split(",").map((s) => s.trim()).filter(Boolean)
    .map((u) => userId("TIBET_NC_ALLOWED_USERS", u));
  if (allowedUsers.length === 0) {
    throw new ConfigError("TIBET_NC_ALLOWED_USERS", "lists no user");
  }
  const room = optional(env, "TIBET_NC_ROOM");
  if (room !== null && !ROOM_ID.test(room)) {
    throw new ConfigError("TIBET_NC_ROOM", `"${room}" is not a room id (expected !id:server)`);
  }
  const deviceId = optional(env, "TIBET_NC_DEVICE_ID");
  if (deviceId !== null && !/^[A-Za-z0-9_\-+/=.]{1,255}$/.test(deviceId)) {
    throw new ConfigError("TIBET_NC_DEVICE_ID", `"${deviceId}" is not a device id`);
  }
  const stateDir = optional(env, "TIBET_NC_STATE_DIR") ?? "/var/lib/tibet-nc";
  if (!stateDir.startsWith("/")) {
    throw new ConfigError("TIBET_NC_STATE_DIR", `must be an absolute path, got "${stateDir}"`);
  }
  const binDir = optional(env, "TIBET_NC_BIN_DIR") ?? "/usr/local/tibet-nc-bin";
  if (!binDir.startsWith("/")) {
    throw new ConfigError("TIBET_NC_BIN_DIR", `must be an absolute path, got "${binDir}"`);
  }
  const execAsSelf = yesNo(env, "TIBET_NC_EXEC_AS_SELF");
  const allowUnsignedDevices = yesNo(env, "TIBET_NC_ALLOW_UNSIGNED_DEVICES");
  const brain = optional(env, "BRAIN_API_BASE");
  const commandTimeout = seconds(env, "TIBET_NC_COMMAND_TIMEOUT", 60, 86400);
  const commandTimeoutMax = seconds(env, "TIBET_NC_COMMAND_TIMEOUT_MAX", 3600, 86400);
  if (commandTimeout > commandTimeoutMax) {
    throw new ConfigError(
      "TIBET_NC_COMMAND_TIMEOUT",
      `(${commandTimeout} s) is above TIBET_NC_COMMAND_TIMEOUT_MAX (${commandTimeoutMax} s)`,
    );
  }
  return {
    homeserver,
    userId: uid,
    accessToken,
    deviceId,
    room,
    allowedUsers,
    hostname: optional(env, "TIBET_NC_HOSTNAME") ?? Deno.hostname(),
    stateDir: stateDir.replace(/\/+$/, "") || "/",
    binDir: binDir.replace(/\/+$/, "") || "/",
    timebox: seconds(env, "TIBET_NC_TIMEBOX", 10, 86400),
    storePassphrase: readPassphrase(env),
    commandTimeout,
    commandTimeoutMax,
    maxOutputBytes: count(env, "TIBET_NC_MAX_OUTPUT_BYTES", 4_000_000_000, 1e12),
    maxConcurrent: count(env, "TIBET_NC_MAX_CONCURRENT", 4, 1000),
    rateLimit: count(env, "TIBET_NC_RATE_LIMIT", 30, 100000),
    policyFile: optional(env, "TIBET_NC_POLICY_FILE"),
    execUser: optional(env, "TIBET_NC_EXEC_USER") ?? "tibet-nc-exec",
    execAsSelf,
    allowUnsignedDevices,
    brainApiBase: brain === null ? null : url("BRAIN_API_BASE", brain),
  };
}
