/**
 * `tibet-nc connect`'s command line, settings and exit codes: what a person or
 * a script can rely on, in one place.
 * @module
 */

import { parseArgs, UsageError } from "../cli/args.ts";
import { withEnvFile } from "../config/env_file.ts";

export const CONNECT_USAGE = `usage: tibet-nc connect [options] [HOST] [-- COMMAND ...]

Your own terminal to the agents of an end-to-end-encrypted room. Without a
COMMAND: an interactive prompt (line editing, history, Ctrl-C cancels the
running command, Ctrl-D leaves). With one: runs it, prints its output on
stdout and any refusal on stderr, and exits with its exit code.

HOST is the agent's host name (what \`hosts\` lists); commands go to it as
\`@HOST $ COMMAND\`. The first connect pins the agent's keys (known_hosts);
a changed agent identity is refused until --accept-new-identity.

first time (creates this client's own device):
  --homeserver URL        the homeserver, e.g. https://matrix.example.org
  --user ID               your Matrix user id, e.g. @alice:example.org
  --password-stdin        read the password as a line of stdin (else prompted)
  --recovery-key-stdin    read your recovery key or secret storage passphrase as
                          a line of stdin, to cross-sign this device
  --verify-emoji          cross-sign this device by emoji (SAS) verification
                          from another of your sessions
  --device-name NAME      the device name others see (default "tibet-nc connect on <host>")

options:
  --env-file FILE         read settings from FILE (variables below)
  --room ROOM             the room (!id:server or #alias:server)
  --state-dir DIR         this client's keys, session, known_hosts, history
                          (default $XDG_STATE_HOME/tibet-nc, else ~/.local/state/tibet-nc)
  --json                  one-shot: print the final answer's fields as JSON on stdout
  --timeout S             give up when the host has not answered in S seconds (default 30)
  --accept-new-identity   pin the agent's new keys after they changed
  --verbose               the SDK's log on stderr

settings (environment or --env-file; flags win):
  TIBET_NC_CONNECT_HOMESERVER, TIBET_NC_CONNECT_USER, TIBET_NC_CONNECT_ROOM,
  TIBET_NC_CONNECT_HOST, TIBET_NC_CONNECT_STATE_DIR

exit codes: the remote command's own (0-249 as it gave them), 2 usage error,
  130 interrupted (Ctrl-C; cancel sent), 250 refused, 251 expired, 252 failed
  on the host, 253 no answer within --timeout, 254 trust (agent identity changed,
  or this device is not cross-signed), 255 cannot connect (homeserver, login, room)`;

/** The exit codes `connect` gives of its own (README "Connect from a terminal"). */
export const EXIT = {
  usage: 2,
  interrupted: 130,
  refused: 250,
  expired: 251,
  failed: 252,
  noAnswer: 253,
  trust: 254,
  connection: 255,
} as const;

/** An expected failure: its message is printed as is, with its exit code. */
export class ConnectError extends Error {
  code: number;
  constructor(message: string, code: number) {
    super(message);
    this.name = "ConnectError";
    this.code = code;
  }
}

/** Everything `connect` was told, flags over settings. */
export interface ConnectOptions {
  homeserver: string | null;
  user: string | null;
  room: string | null;
  host: string | null;
  stateDir: string;
  /** The one-shot command's words; null for the interactive mode. */
  command: string[] | null;
  json: boolean;
  timeoutS: number;
  acceptNewIdentity: boolean;
  passwordStdin: boolean;
  recoveryKeyStdin: boolean;
  verifyEmoji: boolean;
  deviceName: string;
  verbose: boolean;
}

/** The default state dir: `$XDG_STATE_HOME/tibet-nc`, else `~/.local/state/tibet-nc`. */
export function defaultStateDir(env: Record<string, string | undefined>): string {
  const xdg = env.XDG_STATE_HOME?.trim();
  if (xdg) return `${xdg.replace(/\/+$/, "")}/tibet-nc`;
  const home = env.HOME?.trim();
  if (!home) {
    throw new ConnectError("neither XDG_STATE_HOME nor HOME is set: pass --state-dir", EXIT.usage);
  }
  return `${home.replace(/\/+$/, "")}/.local/state/tibet-nc`;
}

/** Parses the command line; "help" for --help. Throws ConnectError(2) for a bad one. */
export function parseConnectArgs(
  args: string[],
  env: Record<string, string | undefined> = Deno.env.toObject(),
): ConnectOptions | "help" {
  const dash = args.indexOf("--");
  const own = dash < 0 ? args : args.slice(0, dash);
  const command = dash < 0 ? null : args.slice(dash + 1);
  let parsed;
  try {
    parsed = parseArgs(own, {
      values: [
        "--env-file",
        "--homeserver",
        "--user",
        "--room",
        "--state-dir",
        "--timeout",
        "--device-name",
      ],
      flags: {
        "--json": [],
        "--accept-new-identity": [],
        "--password-stdin": [],
        "--recovery-key-stdin": [],
        "--verify-emoji": [],
        "--verbose": ["-v"],
      },
      positionals: 1,
    });
  } catch (e) {
    if (e instanceof UsageError) throw new ConnectError(e.message, EXIT.usage);
    throw e;
  }
  if (parsed.help) return "help";
  const { values, flags } = parsed;
  const envFile = values.get("--env-file");
  let settings = env;
  if (envFile) {
    try {
      settings = withEnvFile(env as Record<string, string>, envFile);
    } catch (e) {
      throw new ConnectError(`--env-file ${envFile}: ${(e as Error).message}`, EXIT.usage);
    }
  }
  const pick = (flag: string, variable: string) =>
    values.get(flag) ?? (settings[variable]?.trim() || null);
  if (command !== null && command.length === 0) {
    throw new ConnectError("nothing after `--`: give the command to run", EXIT.usage);
  }
  const timeoutText = values.get("--timeout") ?? "30";
  const timeoutS = Number(timeoutText);
  if (!/^\d+(\.\d+)?$/.test(timeoutText) || timeoutS <= 0 || timeoutS > 3600) {
    throw new ConnectError(
      `--timeout must be seconds between 0 and 3600, got "${timeoutText}"`,
      EXIT.usage,
    );
  }
  const homeserver = pick("--homeserver", "TIBET_NC_CONNECT_HOMESERVER");
  if (homeserver !== null && !/^https?:\/\/[^\s/]+/.test(homeserver)) {
    throw new ConnectError(
      `the homeserver must be an http(s) URL, got "${homeserver}"`,
      EXIT.usage,
    );
  }
  const user = pick("--user", "TIBET_NC_CONNECT_USER");
  if (user !== null && !/^@[^:\s]+:\S+$/.test(user)) {
    throw new ConnectError(
      `the user must be a Matrix id like @alice:example.org, got "${user}"`,
      2,
    );
  }
  const room = pick("--room", "TIBET_NC_CONNECT_ROOM");
  // Room ids of room version 12 have no server part: `!` and anything non-blank.
  if (room !== null && !/^(![^\s]+|#[^:\s]+:\S+)$/.test(room)) {
    throw new ConnectError(
      `the room must be a room id (!abc…) or alias (#name:server), got "${room}"`,
      EXIT.usage,
    );
  }
  const host = parsed.positionals[0] ?? (settings.TIBET_NC_CONNECT_HOST?.trim() || null);
  if (host !== null && !/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(host)) {
    throw new ConnectError(
      `"${host}" is not a host name an agent answers to (letters, digits, . _ -)`,
      EXIT.usage,
    );
  }
  return {
    homeserver: homeserver?.replace(/\/+$/, "") ?? null,
    user,
    room,
    host,
    stateDir: pick("--state-dir", "TIBET_NC_CONNECT_STATE_DIR") ?? defaultStateDir(settings),
    command,
    json: flags.has("--json"),
    timeoutS,
    acceptNewIdentity: flags.has("--accept-new-identity"),
    passwordStdin: flags.has("--password-stdin"),
    recoveryKeyStdin: flags.has("--recovery-key-stdin"),
    verifyEmoji: flags.has("--verify-emoji"),
    deviceName: values.get("--device-name") ?? `tibet-nc connect on ${Deno.hostname()}`,
    verbose: flags.has("--verbose"),
  };
}
