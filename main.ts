/**
 * tibet-nc: a remote shell with no listening port. This file only parses the
 * command line and dispatches to `lib/`.
 * @module
 */

import { runCli } from "./lib/cli/run.ts";
import { policyCommand } from "./lib/airlock/policy_cli.ts";
import { auditCommand } from "./lib/audit/audit_cli.ts";
import { trustCommand } from "./lib/cli/trust.ts";
import { loginCommand } from "./lib/cli/login.ts";
import { doctorCommand } from "./lib/cli/doctor.ts";

const VERSION = "0.1.0";

const USAGE =
  `tibet-nc ${VERSION}: commands from an end-to-end-encrypted Matrix room, run on this host

usage: tibet-nc <command> [options]

commands:
  login --homeserver URL --user @bot:server
                            log the agent in (new device), set up cross-signing, write the env file
  doctor [--env-file FILE]  check config, permissions, exec user, bin dir, homeserver, token, stores
  run [--env-file FILE]     start the agent
  policy check <command>    judge a command as the agent would, without running it
  audit verify              prove the audit log is complete and unaltered
  audit show [-n N]         print recent audit records
  trust @user:server        approve an operator's changed identity
  help                      this text

Run 'tibet-nc <command> --help' for a command's options.`;

async function main(args: string[]): Promise<number> {
  const [cmd, ...rest] = args;
  switch (cmd) {
    case "run":
      return await runCli(rest);
    case "policy":
      return await policyCommand(rest);
    case "audit":
      return await auditCommand(rest);
    case "trust":
      return await trustCommand(rest);
    case "login":
      return await loginCommand(rest);
    case "doctor":
      return await doctorCommand(rest);
    case "version":
    case "--version":
      console.log(`tibet-nc ${VERSION}`);
      return 0;
    case undefined:
    case "help":
    case "--help":
    case "-h":
      console.log(USAGE);
      return 0;
    default:
      console.error(`tibet-nc: unknown command "${cmd}"\n\n${USAGE}`);
      return 2;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
