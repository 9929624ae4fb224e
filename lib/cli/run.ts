/**
 * `tibet-nc run [--env-file FILE] [--verbose]`: loads and validates the
 * configuration, starts the agent, and stops it cleanly on SIGTERM or SIGINT.
 * @module
 */

import { ConfigError, loadConfig } from "../config/config.ts";
import { withEnvFile } from "../config/env_file.ts";
import { runMonitor } from "../monitor/monitor.ts";

const USAGE = `usage: tibet-nc run [--env-file FILE] [--verbose]

Starts the agent. Configuration comes from the environment (see README,
"Configuration"); --env-file reads KEY=value lines over it.`;

/** Runs the agent until a signal; returns the exit code. */
export async function runCli(args: string[]): Promise<number> {
  let envFile: string | null = null;
  let verbose = false;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--env-file" && i + 1 < args.length) envFile = args[++i];
    else if (a.startsWith("--env-file=")) envFile = a.slice("--env-file=".length);
    else if (a === "--verbose" || a === "-v") verbose = true;
    else if (a === "--help" || a === "-h") {
      console.log(USAGE);
      return 0;
    } else {
      console.error(`tibet-nc run: unknown argument "${a}"\n${USAGE}`);
      return 2;
    }
  }
  const log = (msg: string) => console.error(msg);
  let config;
  try {
    const env = envFile ? withEnvFile(Deno.env.toObject(), envFile) : Deno.env.toObject();
    config = loadConfig(env);
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(`tibet-nc: configuration error: ${e.message}`);
      return 2;
    }
    throw e;
  }
  const stopped = new Promise<string>((resolve) => {
    for (const sig of ["SIGTERM", "SIGINT"] as const) {
      Deno.addSignalListener(sig, () => resolve(sig));
    }
  });
  try {
    const code = await runMonitor(config, stopped, log, { verbose });
    if (code === 0) log("stopped");
    return code;
  } catch (e) {
    console.error(`tibet-nc: cannot start: ${(e as Error).message}`);
    return 1;
  }
}
