/**
 * `tibet-nc login`: logs the agent's account in with its password, creating a new
 * device; prepares the state dir's crypto store for that device, sets up the
 * account's cross-signing with the password, writes the credentials into the env
 * file, and prints the keys operators compare when they verify the agent.
 * @module
 */

import type { MatrixClient } from "matrix-js-sdk";
import { ConfigError, loadConfig } from "../config/config.ts";
import { withEnvFile } from "../config/env_file.ts";
import { bindDevice, type WhoAmI } from "../matrix/client.ts";
import { type DurableStore, openDurableStore } from "../store/durable_idb.ts";
import { storeCipher } from "../store/store_key.ts";
import { syncDirOf, writeAllSync } from "../audit/durable_file.ts";
import { deviceEd25519, groupsOfFour, setUpCrossSigning, startCrypto } from "./agent_crypto.ts";

const USAGE = `usage: tibet-nc login --homeserver URL --user @bot:server [options]

Logs the agent's Matrix account in with its password (a new device), sets up
its cross-signing, and writes the credentials into the env file.

options:
  --homeserver URL     the homeserver, e.g. https://matrix.example.org
  --user ID            the agent's Matrix user id, e.g. @tibet-bot:example.org
  --env-file FILE      env file to create or update (default /etc/tibet-nc.env)
  --state-dir DIR      state dir for the new device's keys (default: the env
                       file's TIBET_NC_STATE_DIR, else /var/lib/tibet-nc)
  --device-name NAME   device name shown to operators (default "tibet-nc on <host>")
  --password-stdin     read the password as one line from stdin (automatic when
                       stdin is not a terminal)

exit codes: 0 logged in, 1 failed, 2 usage error`;

const DEFAULT_ENV_FILE = "/etc/tibet-nc.env";

/** An expected failure: its message is printed as is, without a stack trace. */
class LoginError extends Error {
  code: number;
  constructor(message: string, code = 1) {
    super(message);
    this.name = "LoginError";
    this.code = code;
  }
}

interface Options {
  homeserver: string;
  user: string;
  envFile: string;
  stateDir: string | null;
  deviceName: string | null;
  passwordStdin: boolean;
}

function parseArgs(args: string[]): Options | "help" {
  const values = new Map<string, string>();
  let passwordStdin = false;
  const takes = ["--homeserver", "--user", "--env-file", "--state-dir", "--device-name"];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const eq = a.indexOf("=");
    const name = eq > 0 ? a.slice(0, eq) : a;
    if (a === "--help" || a === "-h") return "help";
    if (a === "--password-stdin") passwordStdin = true;
    else if (takes.includes(name)) {
      const v = eq > 0 ? a.slice(eq + 1) : args[++i];
      if (v === undefined || v === "") throw new LoginError(`${name} needs a value`, 2);
      values.set(name, v);
    } else throw new LoginError(`unknown argument "${a}"`, 2);
  }
  for (const need of ["--homeserver", "--user"]) {
    if (!values.has(need)) throw new LoginError(`${need} is required`, 2);
  }
  return {
    homeserver: values.get("--homeserver")!,
    user: values.get("--user")!,
    envFile: values.get("--env-file") ?? DEFAULT_ENV_FILE,
    stateDir: values.get("--state-dir") ?? null,
    deviceName: values.get("--device-name") ?? null,
    passwordStdin,
  };
}

// ------------------------------------------------------------------ env file

/**
 * Returns `text` with each `KEY=` line of `values` replaced by the new value
 * (later duplicates dropped) and missing keys appended; other lines unchanged.
 */
export function updateEnvText(text: string, values: Record<string, string>): string {
  const lines = text === "" ? [] : text.replace(/\n$/, "").split("\n");
  const done = new Set<string>();
  const out: string[] = [];
  for (const line of lines) {
    const key = line.match(/^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=/)?.[1];
    if (key === undefined || !Object.hasOwn(values, key)) {
      out.push(line);
    } else if (!done.has(key)) {
      out.push(`${key}=${values[key]}`);
      done.add(key);
    }
  }
  for (const [k, v] of Object.entries(values)) if (!done.has(k)) out.push(`${k}=${v}`);
  return out.join("\n") + "\n";
}

/** The env file as found before login: its text and owner, or null when missing. */
interface EnvFileState {
  text: string;
  uid: number | null;
  gid: number | null;
}

function inspectEnvFile(path: string): EnvFileState | null {
  let info: Deno.FileInfo;
  try {
    info = Deno.statSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw new LoginError(`cannot read ${path}: ${(e as Error).message}`);
  }
  if (!info.isFile) throw new LoginError(`${path} is not a regular file`);
  const mode = (info.mode ?? 0) & 0o777;
  if (mode & 0o004) {
    throw new LoginError(
      `refusing to use ${path}: it is world-readable (mode 0${mode.toString(8)}), so any local ` +
        `user may already have read the secrets in it; run "chmod 600 ${path}" (and replace ` +
        `any access token or passphrase it holds), then log in again`,
    );
  }
  try {
    return { text: Deno.readTextFileSync(path), uid: info.uid, gid: info.gid };
  } catch (e) {
    throw new LoginError(`cannot read ${path}: ${(e as Error).message}`);
  }
}

/** Fails early, before the password is asked, when the env file's dir is not writable. */
function probeWritable(envFile: string): void {
  const probe = `${envFile}.tmp-${Deno.pid}`;
  try {
    Deno.openSync(probe, { write: true, createNew: true, mode: 0o600 }).close();
    Deno.removeSync(probe);
  } catch (e) {
    throw new LoginError(`cannot write next to ${envFile}: ${(e as Error).message}`);
  }
}

/** Writes the env file atomically (tmp + fsync + rename), mode 0600, owner kept. */
function writeEnvFile(envFile: string, old: EnvFileState | null, text: string): void {
  const tmp = `${envFile}.tmp-${Deno.pid}`;
  const file = Deno.openSync(tmp, { write: true, createNew: true, mode: 0o600 });
  try {
    writeAllSync(file, new TextEncoder().encode(text));
    Deno.chmodSync(tmp, 0o600);
    if (old?.uid != null && old.gid != null && Deno.uid() === 0) {
      Deno.chownSync(tmp, old.uid, old.gid);
    }
    file.syncSync();
    file.close();
    Deno.renameSync(tmp, envFile);
  } catch (e) {
    try {
      file.close();
    } catch { /* closed */ }
    try {
      Deno.removeSync(tmp);
    } catch { /* gone */ }
    throw new LoginError(`cannot write ${envFile}: ${(e as Error).message}`);
  }
  try {
    syncDirOf(envFile);
  } catch { /* renamed already: the new file is in place */ }
}

// ------------------------------------------------------------------ password

const CTRL_C = 0x03, CTRL_D = 0x04, CTRL_U = 0x15, BS = 0x08, DEL = 0x7f;

/** Reads a password from the terminal with echo off; null when cancelled. */
async function promptPassword(prompt: string): Promise<string | null> {
  const enc = new TextEncoder();
  Deno.stderr.writeSync(enc.encode(prompt));
  const bytes: number[] = [];
  const buf = new Uint8Array(256);
  let cancelled = false;
  Deno.stdin.setRaw(true);
  try {
    read: for (;;) {
      const n = await Deno.stdin.read(buf);
      if (n === null) break;
      for (const b of buf.subarray(0, n)) {
        if (b === 0x0d || b === 0x0a) break read;
        if (b === CTRL_C || (b === CTRL_D && bytes.length === 0)) {
          cancelled = true;
          break read;
        }
        if (b === BS || b === DEL) {
          // Drop one UTF-8 character: its continuation bytes, then its lead byte.
          while (bytes.length > 0 && (bytes[bytes.length - 1] & 0xc0) === 0x80) bytes.pop();
          bytes.pop();
        } else if (b === CTRL_U) bytes.length = 0;
        else if (b >= 0x20 || b === 0x09) bytes.push(b);
      }
    }
  } finally {
    Deno.stdin.setRaw(false);
    Deno.stderr.writeSync(enc.encode("\n"));
  }
  return cancelled ? null : new TextDecoder().decode(new Uint8Array(bytes));
}

/** Reads one line from stdin (the rest is ignored). */
async function readPasswordLine(): Promise<string> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  const buf = new Uint8Array(4096);
  for (;;) {
    const n = await Deno.stdin.read(buf);
    if (n === null) break;
    chunks.push(buf.slice(0, n));
    total += n;
    if (buf.subarray(0, n).includes(0x0a) || total > 65536) break;
  }
  const all = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    all.set(c, at);
    at += c.length;
  }
  return new TextDecoder().decode(all).split("\n")[0].replace(/\r$/, "");
}

async function readPassword(userId: string, fromStdin: boolean): Promise<string> {
  let password: string | null;
  if (fromStdin || !Deno.stdin.isTerminal()) password = await readPasswordLine();
  else {
    password = await promptPassword(`password for ${userId}: `);
    if (password === null) throw new LoginError("cancelled; nothing was changed");
  }
  if (password === "") throw new LoginError("no password given; nothing was changed");
  return password;
}

// ------------------------------------------------------------------ homeserver

interface Session extends WhoAmI {
  accessToken: string;
}

async function passwordLogin(
  homeserver: string,
  userId: string,
  password: string,
  deviceName: string,
): Promise<Session> {
  let r: Response;
  try {
    r = await fetch(`${homeserver}/_matrix/client/v3/login`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        type: "m.login.password",
        identifier: { type: "m.id.user", user: userId },
        password,
        initial_device_display_name: deviceName,
      }),
      signal: AbortSignal.timeout(30_000),
    });
  } catch (e) {
    const cause = (e as Error).cause instanceof Error
      ? `: ${((e as Error).cause as Error).message}`
      : "";
    throw new LoginError(`cannot reach ${homeserver}: ${(e as Error).message}${cause}`);
  }
  const body = await r.json().catch(() => ({}));
  if (r.status === 403 && body.errcode === "M_USER_DEACTIVATED") {
    throw new LoginError(`the homeserver says ${userId} is deactivated`);
  }
  if (r.status === 403 || r.status === 401) {
    throw new LoginError(
      `the homeserver rejected the password for ${userId} (wrong password, or no such account)`,
    );
  }
  if (r.status === 429) {
    const wait = Math.ceil((body.retry_after_ms ?? 0) / 1000);
    throw new LoginError(
      `the homeserver is limiting logins; try again${wait ? ` in ${wait} s` : ""}`,
    );
  }
  if (!r.ok || typeof body.access_token !== "string" || typeof body.device_id !== "string") {
    const why = body.errcode ? `${body.errcode}: ${body.error ?? ""}` : `HTTP ${r.status}`;
    throw new LoginError(`the homeserver refused the login (${why.trim()})`);
  }
  return {
    userId: typeof body.user_id === "string" ? body.user_id : userId,
    deviceId: body.device_id,
    accessToken: body.access_token,
  };
}

/** Logs the new device out again (deletes it) after a failure; best effort. */
async function logout(homeserver: string, accessToken: string): Promise<void> {
  try {
    const r = await fetch(`${homeserver}/_matrix/client/v3/logout`, {
      method: "POST",
      headers: { authorization: `Bearer ${accessToken}`, "content-type": "application/json" },
      body: "{}",
      signal: AbortSignal.timeout(10_000),
    });
    await r.body?.cancel();
  } catch { /* the device stays; the message below says what happened */ }
}

/** The account's current master key as the homeserver publishes it, or null. */
async function publishedMasterKey(s: Session, homeserver: string): Promise<string | null> {
  try {
    const r = await fetch(`${homeserver}/_matrix/client/v3/keys/query`, {
      method: "POST",
      headers: { authorization: `Bearer ${s.accessToken}`, "content-type": "application/json" },
      body: JSON.stringify({ device_keys: { [s.userId]: [] } }),
      signal: AbortSignal.timeout(10_000),
    });
    const body = await r.json();
    const keys = body?.master_keys?.[s.userId]?.keys as Record<string, string> | undefined;
    return keys ? Object.values(keys)[0] ?? null : null;
  } catch {
    return null;
  }
}

// ------------------------------------------------------------------ state dir

function exists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/** Refuses a state dir that already belongs to a device: login always makes a new one. */
function checkStateDirFree(stateDir: string): void {
  try {
    const saved = JSON.parse(Deno.readTextFileSync(`${stateDir}/device.json`)) as WhoAmI;
    throw new LoginError(
      `${stateDir} already holds the keys of ${saved.userId} device ${saved.deviceId}; ` +
        `login creates a new device, so it needs an empty state dir: stop the agent and move ` +
        `${stateDir} away (the old device's identity lives there), or pass --state-dir`,
    );
  } catch (e) {
    if (e instanceof LoginError) throw e;
    if (!(e instanceof Deno.errors.NotFound)) {
      throw new LoginError(`cannot read ${stateDir}/device.json: ${(e as Error).message}`);
    }
  }
  try {
    for (const e of Deno.readDirSync(`${stateDir}/crypto`)) {
      if (/\.(snap|journal)$/.test(e.name)) {
        throw new LoginError(
          `${stateDir}/crypto holds a crypto store but ${stateDir}/device.json is missing, so ` +
            `it is not known which device it belongs to; move ${stateDir} away or pass --state-dir`,
        );
      }
    }
  } catch (e) {
    if (e instanceof LoginError) throw e;
    if (!(e instanceof Deno.errors.NotFound)) {
      throw new LoginError(`cannot read ${stateDir}/crypto: ${(e as Error).message}`);
    }
  }
}

/** What this run created in the state dir, to undo it on failure. */
interface Created {
  stateDir: boolean;
  crypto: boolean;
  deviceJson: boolean;
}

function undoCreated(stateDir: string, created: Created): void {
  const rm = (p: string, recursive: boolean) => {
    try {
      Deno.removeSync(p, { recursive });
    } catch { /* already gone */ }
  };
  if (created.stateDir) return rm(stateDir, true);
  if (created.crypto) rm(`${stateDir}/crypto`, true);
  if (created.deviceJson) rm(`${stateDir}/device.json`, false);
}

/** When root logs in for an agent user, gives what login created to the state dir's owner. */
function chownCreated(stateDir: string, created: Created): void {
  if (Deno.uid() !== 0) return;
  const { uid, gid } = Deno.statSync(stateDir);
  if (uid === null || gid === null || uid === 0) return;
  const walk = (p: string) => {
    Deno.chownSync(p, uid, gid);
    if (Deno.lstatSync(p).isDirectory) {
      for (const e of Deno.readDirSync(p)) walk(`${p}/${e.name}`);
    }
  };
  if (created.deviceJson) walk(`${stateDir}/device.json`);
  if (created.crypto || exists(`${stateDir}/crypto`)) walk(`${stateDir}/crypto`);
}

// ------------------------------------------------------------------ command

/** Settings derived from flags, env file and environment, validated by loadConfig. */
interface Settings {
  homeserver: string;
  userId: string;
  stateDir: string;
  passphrase: string | null;
  /** Env file lines to write besides the four login variables. */
  extra: Record<string, string>;
  hasAllowedUsers: boolean;
}

function settings(opts: Options, fileVars: Record<string, string>): Settings {
  const env: Record<string, string | undefined> = { ...Deno.env.toObject(), ...fileVars };
  const hasAllowedUsers = !!env.TIBET_NC_ALLOWED_USERS?.trim();
  env.MATRIX_HOMESERVER = opts.homeserver;
  env.TIBET_NC_USER_ID = opts.user;
  env.TIBET_NC_ACCESS_TOKEN = "pending-login";
  delete env.TIBET_NC_DEVICE_ID;
  if (!hasAllowedUsers) env.TIBET_NC_ALLOWED_USERS = opts.user;
  if (opts.stateDir !== null) env.TIBET_NC_STATE_DIR = opts.stateDir;
  try {
    const config = loadConfig(env);
    const extra: Record<string, string> = {};
    const fileStateDir = fileVars.TIBET_NC_STATE_DIR?.trim() || "/var/lib/tibet-nc";
    if (opts.stateDir !== null && fileStateDir.replace(/\/+$/, "") !== config.stateDir) {
      extra.TIBET_NC_STATE_DIR = config.stateDir;
    }
    return {
      homeserver: config.homeserver,
      userId: config.userId,
      stateDir: config.stateDir,
      passphrase: config.storePassphrase,
      extra,
      hasAllowedUsers,
    };
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    const flag: Record<string, string> = {
      MATRIX_HOMESERVER: "--homeserver",
      TIBET_NC_USER_ID: "--user",
      ...(opts.stateDir !== null ? { TIBET_NC_STATE_DIR: "--state-dir" } : {}),
    };
    const asFlag = flag[e.variable];
    if (asFlag) throw new LoginError(`${asFlag}${e.message.slice(e.variable.length)}`, 2);
    throw new LoginError(`configuration error (${opts.envFile} or environment): ${e.message}`);
  }
}

/** Runs `tibet-nc login`; returns the exit code. */
export async function loginCommand(args: string[]): Promise<number> {
  try {
    const opts = parseArgs(args);
    if (opts === "help") {
      console.log(USAGE);
      return 0;
    }
    return await login(opts);
  } catch (e) {
    if (e instanceof LoginError) {
      console.error(`tibet-nc login: ${e.message}`);
      if (e.code === 2) console.error(`\n${USAGE}`);
      return e.code;
    }
    console.error(`tibet-nc login: ${(e as Error).message ?? e}`);
    return 1;
  }
}

async function login(opts: Options): Promise<number> {
  const old = inspectEnvFile(opts.envFile);
  const fileVars = old ? withEnvFile({}, opts.envFile) : {};
  const s = settings(opts, fileVars);
  checkStateDirFree(s.stateDir);
  probeWritable(opts.envFile);
  let session: Session | null = null;
  const created: Created = { stateDir: false, crypto: false, deviceJson: false };
  try {
    const password = await readPassword(s.userId, opts.passwordStdin);
    const deviceName = opts.deviceName ?? `tibet-nc on ${Deno.hostname()}`;
    session = await passwordLogin(s.homeserver, s.userId, password, deviceName);
    const previousMaster = await publishedMasterKey(session, s.homeserver);

    created.stateDir = !exists(s.stateDir);
    Deno.mkdirSync(s.stateDir, { recursive: true, mode: 0o700 });
    const cryptoDir = `${s.stateDir}/crypto`;
    created.crypto = !exists(cryptoDir);
    created.deviceJson = true;
    bindDevice(s.stateDir, { userId: session.userId, deviceId: session.deviceId });
    const fingerprint = await withCrypto(s, session, cryptoDir, async (client) => {
      await setUpCrossSigning(client, password);
      return await deviceEd25519(client);
    });
    const masterKey = await publishedMasterKey(session, s.homeserver);
    if (masterKey === null) {
      throw new LoginError("the homeserver does not list the new cross-signing keys");
    }
    chownCreated(s.stateDir, created);

    const values: Record<string, string> = {
      MATRIX_HOMESERVER: s.homeserver,
      TIBET_NC_USER_ID: session.userId,
      TIBET_NC_ACCESS_TOKEN: session.accessToken,
      TIBET_NC_DEVICE_ID: session.deviceId,
      ...s.extra,
    };
    writeEnvFile(opts.envFile, old, updateEnvText(old?.text ?? "", values));

    const out = [
      `logged in as ${session.userId}: new device ${session.deviceId} ("${deviceName}")`,
      `wrote ${opts.envFile} (${Object.keys(values).join(", ")})`,
      `crypto store: ${cryptoDir} (${
        s.passphrase ? "encrypted at rest" : "not encrypted at rest"
      })`,
      "",
      "Operators verify the agent by comparing these with its session in their client:",
      `  device id:          ${session.deviceId}`,
      `  device fingerprint: ${groupsOfFour(fingerprint)}`,
      `  master key:         ${groupsOfFour(masterKey)}`,
    ];
    if (previousMaster && previousMaster !== masterKey) {
      out.push(
        "",
        `note: this replaced the account's previous cross-signing identity (master key ` +
          `${groupsOfFour(previousMaster)}); operators who verified it must verify the agent again`,
      );
    }
    const stateMode = (Deno.statSync(s.stateDir).mode ?? 0) & 0o777;
    if (stateMode & 0o077) {
      out.push(
        "",
        `warning: ${s.stateDir} is mode 0${stateMode.toString(8)}: other users can enter it; ` +
          `run "chmod 700 ${s.stateDir}"`,
      );
    }
    if (!s.hasAllowedUsers) {
      out.push("", `next: set TIBET_NC_ALLOWED_USERS (operator ids) in ${opts.envFile}`);
    }
    console.log(out.join("\n"));
    return 0;
  } catch (e) {
    if (!session) throw e;
    undoCreated(s.stateDir, created);
    await logout(s.homeserver, session.accessToken);
    throw new LoginError(
      `${(e as Error).message ?? e}; the new device ${session.deviceId} was logged out again ` +
        `and ${opts.envFile} was not changed`,
    );
  }
}

/** Opens the crypto store exactly as the agent does, runs `fn` on a client, closes both. */
async function withCrypto<T>(
  s: Settings,
  session: Session,
  cryptoDir: string,
  fn: (client: MatrixClient) => Promise<T>,
): Promise<T> {
  const store: DurableStore = await openDurableStore(
    cryptoDir,
    storeCipher(cryptoDir, s.passphrase),
    (e) => {
      console.error(
        `tibet-nc login: fatal: cannot write the crypto store in ${cryptoDir}: ${
          (e as Error).message
        }`,
      );
      Deno.exit(1);
    },
  );
  let client: MatrixClient | null = null;
  try {
    client = await startCrypto(s.homeserver, session.accessToken, session, store);
    return await fn(client);
  } finally {
    client?.stopClient();
    store.close();
  }
}
