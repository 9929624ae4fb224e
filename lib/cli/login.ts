/**
 * `tibet-nc login`: logs the agent's account in with its password, creating a new
 * device; prepares the state dir's crypto store for that device, sets up the
 * account's cross-signing with the password, writes the credentials into the env
 * file, and prints the keys operators compare when they verify the agent.
 * @module
 */

import type { MatrixClient } from "matrix-js-sdk";
import { ConfigError, DEFAULT_STATE_DIR, exampleOperators, loadConfig } from "../config/config.ts";
import {
  inspectEnvFile,
  probeWritable,
  updateEnvText,
  withEnvFile,
  writeEnvFile,
} from "../config/env_file.ts";
import { bindDevice, type WhoAmI } from "../matrix/client.ts";
import { fetchMasterKey, logout, passwordLogin, type Session } from "../matrix/account.ts";
import { type DurableStore, openDurableStore } from "../store/durable_idb.ts";
import { storeCipher } from "../store/store_key.ts";
import { storeFiles } from "../store/inspect.ts";
import { parseArgs, UsageError } from "./args.ts";
import { readPassword } from "./password.ts";
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

function parseLoginArgs(args: string[]): Options | "help" {
  let parsed;
  try {
    parsed = parseArgs(args, {
      values: ["--homeserver", "--user", "--env-file", "--state-dir", "--device-name"],
      flags: { "--password-stdin": [] },
    });
  } catch (e) {
    if (e instanceof UsageError) throw new LoginError(e.message, 2);
    throw e;
  }
  if (parsed.help) return "help";
  const { values } = parsed;
  const passwordStdin = parsed.flags.has("--password-stdin");
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

/** The account's published master key, or null when none (or the server cannot say). */
async function publishedMasterKey(s: Session, homeserver: string): Promise<string | null> {
  return await fetchMasterKey(homeserver, s.accessToken, s.userId).catch(() => null);
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
  let files;
  try {
    files = storeFiles(`${stateDir}/crypto`);
  } catch (e) {
    throw new LoginError(`cannot read ${stateDir}/crypto: ${(e as Error).message}`);
  }
  if (files.databases.length > 0) {
    throw new LoginError(
      `${stateDir}/crypto holds a crypto store but ${stateDir}/device.json is missing, so ` +
        `it is not known which device it belongs to; move ${stateDir} away or pass --state-dir`,
    );
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
  /** Operators still as the example env file lists them. */
  exampleOperators: string[];
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
    const fileStateDir = fileVars.TIBET_NC_STATE_DIR?.trim() || DEFAULT_STATE_DIR;
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
      exampleOperators: hasAllowedUsers ? exampleOperators(config) : [],
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
    const opts = parseLoginArgs(args);
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
    if (s.exampleOperators.length > 0) {
      out.push(
        "",
        `warning: TIBET_NC_ALLOWED_USERS in ${opts.envFile} still lists ` +
          `${s.exampleOperators.join(", ")} from the example file: set it to your operators' ` +
          `Matrix ids, or no one can send commands`,
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
