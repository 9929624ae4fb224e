/**
 * Reads a systemd-style env file (`KEY=value` lines) for `run --env-file`.
 * @module
 */

import { parse } from "dotenv";
import { ConfigError } from "./config.ts";

/**
 * Returns the variables of `path` layered over `base` (the file wins, as with
 * systemd's EnvironmentFile=). Throws a ConfigError naming the file on failure.
 */
export function withEnvFile(
  base: Record<string, string>,
  path: string,
): Record<string, string> {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (e) {
    throw new ConfigError("--env-file", `cannot read ${path}: ${(e as Error).message}`);
  }
  return { ...base, ...parse(text) };
}
