/**
 * Doctor's checks of the env file, the configuration and the policy file.
 * @module
 */

import {
  type Config,
  ConfigError,
  exampleOperators,
  loadConfig,
  weakenedGuarantees,
} from "../config/config.ts";
import { loadPolicy } from "../policy/policy_file.ts";
import { errText, octal, Report } from "./report.ts";

/** Checks the env file's mode; false when it cannot be inspected. */
export function checkEnvFile(r: Report, path: string): boolean {
  let info: Deno.FileInfo;
  try {
    info = Deno.statSync(path);
  } catch (e) {
    r.line("FAIL", "env file", `cannot read ${path}: ${errText(e)}`);
    return false;
  }
  const mode = info.mode ?? 0;
  if (mode & 0o007) {
    r.line(
      "FAIL",
      "env file",
      `${path} is mode ${octal(mode)}: every local user can read or change the access ` +
        `token in it; ` +
        `run "chmod 600 ${path}" and replace the token (tibet-nc login)`,
    );
  } else if (mode & 0o070) {
    r.line(
      "warn",
      "env file",
      `${path} is mode ${
        octal(mode)
      }: its group can read the access token; run "chmod 600 ${path}"`,
    );
  } else r.line("ok", "env file", `${path}, mode ${octal(mode)}`);
  return true;
}

export function checkConfig(r: Report, env: Record<string, string>): Config | null {
  try {
    const c = loadConfig(env);
    r.line("ok", "config", `${c.userId} on ${c.homeserver}, ${c.allowedUsers.length} operator(s)`);
    const examples = exampleOperators(c);
    if (examples.length > 0) {
      r.line(
        "warn",
        "config",
        `TIBET_NC_ALLOWED_USERS still lists ${
          examples.join(", ")
        } from the example file: set it to your operators' Matrix ids`,
      );
    }
    for (const w of weakenedGuarantees(c)) {
      r.line("warn", "guarantees", `${w.variable}: ${w.givesUp}`);
    }
    return c;
  } catch (e) {
    if (!(e instanceof ConfigError)) {
      r.line("FAIL", "config", errText(e));
      return null;
    }
    for (const problem of e.all) r.line("FAIL", "config", problem.message);
    return null;
  }
}

export async function checkPolicy(r: Report, c: Config): Promise<void> {
  if (c.policyFile === null) return r.line("ok", "policy", "built-in default (denylist mode)");
  try {
    const p = await loadPolicy(c.policyFile);
    r.line(
      "ok",
      "policy",
      `${c.policyFile}: ${p.mode} mode, ${p.allow.length} allow, ${p.deny.length} deny`,
    );
  } catch (e) {
    r.line("FAIL", "policy", `TIBET_NC_POLICY_FILE: ${errText(e)}`);
  }
}
