/**
 * `tibet-nc doctor`: checks an installation the way the agent will use it and
 * prints one line per check, `ok`, `warn` or `FAIL`, with what to do. Read-only:
 * it may run beside a running agent (the crypto store is read, never compacted).
 * @module
 */

import { withEnvFile } from "../config/env_file.ts";
import { parseArgs, UsageError } from "./args.ts";
import { errText, Report, statOrNull } from "../doctor/report.ts";
import { checkConfig, checkEnvFile, checkPolicy } from "../doctor/config_checks.ts";
import { checkExecUser, checkStateDir } from "../doctor/file_checks.ts";
import { checkBinDir } from "../doctor/bin_dir_check.ts";
import { checkHomeserver, checkToken } from "../doctor/remote_checks.ts";
import { checkAuditLog, checkCryptoStore } from "../doctor/store_checks.ts";

const USAGE = `usage: tibet-nc doctor [--env-file FILE]

Checks the configuration, file permissions, exec user, bin dir, homeserver,
clock, access token, crypto store and audit log, one line per check:
"ok", "warn" or "FAIL" and what to do. Exit code 1 if any check FAILs.
Without --env-file, /etc/tibet-nc.env is read when it exists, over the
environment. Run it as the agent's user, or as root for the exec user test.`;

const DEFAULT_ENV_FILE = "/etc/tibet-nc.env";

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
  if (c.approvedExecUser !== null) {
    await checkExecUser(r, c, state, envFile, {
      name: c.approvedExecUser,
      variable: "TIBET_NC_APPROVED_EXEC_USER",
      label: "approved exec user",
    });
  }
  await checkBinDir(r, c);
  if (await checkHomeserver(r, c)) await checkToken(r, c);
  if (state) {
    checkCryptoStore(r, c);
    await checkAuditLog(r, c);
  }
  return r.failed ? 1 : 0;
}
