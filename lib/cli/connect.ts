/**
 * `tibet-nc connect`: the operator's terminal client (`lib/connect/`).
 * @module
 */

import { interactive } from "../connect/interactive.ts";
import { oneShot } from "../connect/oneshot.ts";
import { CONNECT_USAGE, ConnectError, EXIT, parseConnectArgs } from "../connect/options.ts";
import { openSession } from "../connect/session.ts";
import { lineReader } from "../connect/stdin_lines.ts";
import { reportTiming } from "../connect/timing.ts";

/** Runs `tibet-nc connect`; returns the exit code. */
export async function connectCommand(args: string[]): Promise<number> {
  let session = null;
  const json = args.slice(0, args.indexOf("--") >>> 0).includes("--json");
  try {
    const opts = parseConnectArgs(args);
    if (opts === "help") {
      console.log(CONNECT_USAGE);
      return 0;
    }
    const stdin = lineReader();
    session = await openSession(opts, stdin);
    return opts.command
      ? await oneShot(session, opts.command, opts)
      : await interactive(session, opts.timeoutS, stdin);
  } catch (e) {
    if (e instanceof ConnectError) {
      console.error(`tibet-nc connect: ${e.message}`);
      // A script reading --json gets an answer on stdout either way.
      if (json) {
        console.log(
          JSON.stringify({ status: "error", connect_exit_code: e.code, error: e.message }),
        );
      }
      if (e.code === EXIT.usage) console.error(`\nRun 'tibet-nc connect --help' for its options.`);
      return e.code;
    }
    console.error(`tibet-nc connect: ${(e as Error).stack ?? e}`);
    return EXIT.connection;
  } finally {
    session?.close();
    reportTiming();
  }
}
