/**
 * `tibet-nc run [--env-file FILE] [--verbose]`: loads and validates the
 * configuration, starts the agent, and stops it cleanly on SIGTERM or SIGINT.
 * @module
 */

import { ConfigError, EXIT_CONFIG, loadConfig } from "../config/config.ts";
import { spawnWorker } from "../monitor/spawn_worker.ts";
import { environment, parseArgs, UsageError } from "./args.ts";

const USAGE = `usage: tibet-nc run [--env-file FILE] [--verbose]

Starts the agent. Configuration comes from the environment (see README,
"Configuration"); --env-file reads KEY=value lines over it. While the
homeserver cannot be reached it waits and retries.

exit status: 0 stopped by SIGTERM/SIGINT, 1 failed, 2 usage error,
78 configuration error (the unit does not restart on 2 or 78)`;

/** Runs the agent until a signal; returns the exit code. */
export async function runCli(args: string[]): Promise<number> {
  let envFile: string | undefined;
  let verbose: boolean;
  try {
    const a = parseArgs(args, { values: ["--env-file"], flags: { "--verbose": ["-v"] } });
    if (a.help) {
      console.log(USAGE);
      return 0;
    }
    envFile = a.values.get("--env-file");
    verbose = a.flags.has("--verbose");
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    console.error(`tibet-nc run: ${e.message}\n${USAGE}`);
    return 2;
  }
  const log = (msg: string) => console.error(msg);
  let config;
  try {
    config = loadConfig(environment(envFile));
  } catch (e) {
    if (e instanceof ConfigError) {
      for (const problem of e.all) {
        console.error(`tibet-nc: configuration error: ${problem.message}`);
      }
      return EXIT_CONFIG;
    }
    throw e;
  }
  const stopped = new Promise<string>((resolve) => {
    for (const sig of ["SIGTERM", "SIGINT"] as const) {
      Deno.addSignalListener(sig, () => resolve(sig));
    }
  });
  // The worker loads the Matrix SDK on its thread while this one loads the
  // monitor (imported here, not above, for that reason).
  const worker = spawnWorker(config);
  try {
    const { runMonitor } = await import("../monitor/monitor.ts");
    const code = await runMonitor(config, stopped, log, { verbose, worker });
    if (code === 0) log("stopped");
    return code;
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(`tibet-nc: configuration error: ${e.message}`);
      return EXIT_CONFIG;
    }
    console.error(`tibet-nc: cannot start: ${(e as Error).message}`);
    return 1;
  }
}
