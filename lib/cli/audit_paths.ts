/**
 * Where `tibet-nc audit` finds the log and its state dir, and what it says when
 * the log is not there: shared by its subcommands.
 * @module
 */

import { errorMessage } from "../audit/errors.ts";
import { AUDIT_LOG_FILE } from "../audit/log.ts";
import { DEFAULT_STATE_DIR } from "../config/config.ts";
import { environment } from "./args.ts";

/** The log named by --log, else the state dir's (from --env-file or the environment). */
export function logPath(opts: Map<string, string>): string {
  const given = opts.get("--log");
  if (given) return given;
  let dir: string | undefined;
  try {
    dir = environment(opts.get("--env-file")).TIBET_NC_STATE_DIR?.trim();
  } catch (e) {
    // No env permission (a packaged verifier) means the default; a named file that fails is an error.
    if (opts.has("--env-file")) throw e;
  }
  return `${(dir || DEFAULT_STATE_DIR).replace(/\/+$/, "")}/${AUDIT_LOG_FILE}`;
}

/** Says what to pass when the log is not where it was looked for. */
export function cannotRead(path: string, opts: Map<string, string>, e: unknown): number {
  if (e instanceof Deno.errors.NotFound && opts.has("--log")) {
    console.error(
      `tibet-nc audit: no audit log at ${path} (--log): check the path; the agent keeps ` +
        `${AUDIT_LOG_FILE} in its state dir`,
    );
  } else if (e instanceof Deno.errors.NotFound) {
    const from = opts.has("--env-file")
      ? `TIBET_NC_STATE_DIR of ${opts.get("--env-file")}`
      : "TIBET_NC_STATE_DIR, default /var/lib/tibet-nc";
    console.error(
      `tibet-nc audit: no audit log at ${path} (${from}): no command was recorded there yet, ` +
        `or the agent's state dir is elsewhere: pass its env file with --env-file FILE, or ` +
        `the log with --log FILE`,
    );
  } else {
    console.error(`tibet-nc audit: cannot read audit log ${path}: ${errorMessage(e)}`);
  }
  return 1;
}
