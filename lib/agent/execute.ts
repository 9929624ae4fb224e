/**
 * From a command's text to its reply: built-ins first, then everything else
 * through parse -> resolve -> policy -> run.
 * @module
 */

import type { Config } from "../config/config.ts";
import type { CommandHandler, Log, ReplyParts } from "./agent.ts";

const HELP = `tibet-nc: send "$ <command>" (or a bare command in the control room).
Built-ins: help, status.
Commands run without a shell from the allowlisted bin dir.`;

/** Builds the handler the agent calls for each accepted command. */
export function commandHandler(config: Config, log: Log): CommandHandler {
  const started = Date.now();
  let count = 0;
  return async (req): Promise<ReplyParts> => {
    count++;
    const word = req.text.trim().toLowerCase();
    if (word === "help") return { pre: HELP };
    if (word === "status") {
      return {
        pre: [
          `host: ${config.hostname}`,
          `up: ${Math.round((Date.now() - started) / 1000)} s`,
          `commands: ${count}`,
          `bin dir: ${config.binDir}`,
        ].join("\n"),
      };
    }
    log(`no executor yet for ${req.eventId}`);
    return await Promise.resolve({ head: "not available", pre: req.text });
  };
}
