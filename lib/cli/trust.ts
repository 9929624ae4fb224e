/**
 * `tibet-nc trust @user:server [--env-file FILE]`: approves an operator's new
 * cryptographic identity after it changed. Prints the master key so the
 * administrator can compare it with what the operator's client shows.
 * @module
 */

import { ConfigError, loadConfig } from "../config/config.ts";
import { environment, parseArgs, UsageError } from "./args.ts";
import { readApprovals, writeApprovals } from "../airlock/trust.ts";
import { fetchMasterKey } from "../matrix/account.ts";
import { groupsOfFour } from "./agent_crypto.ts";

const USAGE = `usage: tibet-nc trust @user:server [--env-file FILE]

Approves the current cross-signing identity (master key) of an allowed operator
whose identity changed. Compare the printed key with the one the operator's
client shows before you approve. The running agent picks the approval up at the
operator's next command.`;

/** Runs the command; returns the exit code. */
export async function trustCommand(args: string[]): Promise<number> {
  let envFile: string | undefined;
  let user: string | undefined;
  try {
    const a = parseArgs(args, { values: ["--env-file"], positionals: 1 });
    if (a.help) {
      console.log(USAGE);
      return 0;
    }
    envFile = a.values.get("--env-file");
    user = a.positionals[0];
    if (user === undefined) throw new UsageError("name the operator");
    if (!/^@[^:\s]+:\S+$/.test(user)) {
      throw new UsageError(`"${user}" is not a Matrix user id (@name:server)`);
    }
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    console.error(`tibet-nc trust: ${e.message}\n${USAGE}`);
    return 2;
  }
  try {
    const config = loadConfig(environment(envFile));
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
