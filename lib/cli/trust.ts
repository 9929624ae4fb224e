/**
 * `tibet-nc trust @user:server [--env-file FILE]`: approves an operator's new
 * cryptographic identity after it changed. Prints the master key so the
 * administrator can compare it with what the operator's client shows.
 * @module
 */

import { ConfigError, loadConfig } from "../config/config.ts";
import { withEnvFile } from "../config/env_file.ts";
import { fetchMasterKey, readApprovals, writeApprovals } from "../airlock/trust.ts";
import { groupsOfFour } from "./agent_crypto.ts";

const USAGE = `usage: tibet-nc trust @user:server [--env-file FILE]

Approves the current cross-signing identity (master key) of an allowed operator
whose identity changed. Compare the printed key with the one the operator's
client shows before you approve. The running agent picks the approval up at the
operator's next command.`;

/** Runs the command; returns the exit code. */
export async function trustCommand(args: string[]): Promise<number> {
  let envFile: string | null = null;
  let user: string | null = null;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--help" || a === "-h") {
      console.log(USAGE);
      return 0;
    } else if (a === "--env-file" && i + 1 < args.length) envFile = args[++i];
    else if (a.startsWith("--env-file=")) envFile = a.slice("--env-file=".length);
    else if (a.startsWith("@") && user === null) user = a;
    else {
      console.error(`tibet-nc trust: unexpected argument "${a}"\n${USAGE}`);
      return 2;
    }
  }
  if (!user) {
    console.error(`tibet-nc trust: name the operator\n${USAGE}`);
    return 2;
  }
  try {
    const env = envFile ? withEnvFile(Deno.env.toObject(), envFile) : Deno.env.toObject();
    const config = loadConfig(env);
    if (!config.allowedUsers.includes(user)) {
      console.error(`tibet-nc trust: ${user} is not in TIBET_NC_ALLOWED_USERS; add it there first`);
      return 1;
    }
    const key = await fetchMasterKey(config.homeserver, config.accessToken, user);
    if (!key) {
      console.error(`tibet-nc trust: ${user} has no cross-signing identity on the homeserver`);
      return 1;
    }
    const approvals = readApprovals(config.stateDir);
    approvals[user] = key;
    writeApprovals(config.stateDir, approvals);
    console.log(`approved ${user}, master key ${groupsOfFour(key)}`);
    return 0;
  } catch (e) {
    const msg = e instanceof ConfigError
      ? `configuration error: ${e.message}`
      : (e as Error).message;
    console.error(`tibet-nc trust: ${msg}`);
    return 1;
  }
}
