/**
 * tibet-nc: a remote shell with no listening port. This file only parses the
 * command line and dispatches to `lib/`.
 * @module
 */

// Each command's modules are imported when it runs: `run` would otherwise load
// matrix-js-sdk into the monitor (for login and doctor) as well as into the
// agent's Worker, about 0.2 s of start-up and 20 MiB that the monitor never uses.

import { VERSION } from "./lib/version.ts";

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
  connect [HOST] [-- CMD]   your own terminal to an agent: interactive, or one command
  help                      this text

Run 'tibet-nc <command> --help' for a command's options.`;

async function main(args: string[]): Promise<number> {
  const [cmd, ...rest] = args;
  switch (cmd) {
    case "run":
      return await (await import("./lib/cli/run.ts")).runCli(rest);
    case "policy":
      return await (await import("./lib/cli/policy.ts")).policyCommand(rest);
    case "audit":
      return await (await import("./lib/cli/audit.ts")).auditCommand(rest);
    case "trust":
      return await (await import("./lib/cli/trust.ts")).trustCommand(rest);
    case "login":
      return await (await import("./lib/cli/login.ts")).loginCommand(rest);
    case "connect":
      return await (await import("./lib/cli/connect.ts")).connectCommand(rest);
    case "doctor":
      return await (await import("./lib/cli/doctor.ts")).doctorCommand(rest);
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
