/**
 * The fleet settings (`TIBET_NC_FLEET`, `TIBET_NC_FLEET_HINT`, `TIBET_NC_TAGS`),
 * checked strictly: a typo in a tag would silently take a host out of the
 * commands meant for it.
 * @module
 */

import { HOST_NAME, TAG_KEY, TAG_VALUE } from "../matrix/target.ts";

/** The fleet part of the configuration. */
export interface FleetConfig {
  /** `key=value` tags a fleet command may select this agent by (`TIBET_NC_TAGS`). */
  tags: string[];
  /** The room holds several agents: untargeted commands run nowhere (`TIBET_NC_FLEET`). */
  fleet: boolean;
  /** In a fleet, this agent answers untargeted commands with the hint (`TIBET_NC_FLEET_HINT`). */
  fleetHint: boolean;
}

/** One problem: the variable at fault and what is wrong with it. */
export type FleetProblem = [variable: string, problem: string];

function yesNo(env: Record<string, string | undefined>, name: string, problems: FleetProblem[]) {
  const v = env[name]?.trim() || "no";
  if (!/^(yes|no|true|false|1|0)$/i.test(v)) problems.push([name, `must be yes or no, got "${v}"`]);
  return /^(yes|true|1)$/i.test(v);
}

/** `role=db,dc=ams`: each tag a `key=value`, no tag twice. */
function tagList(v: string, problems: FleetProblem[]): string[] {
  if (v === "") return [];
  const tags = v.split(",").map((t) => t.trim());
  for (const t of tags) {
    const [key, value, ...more] = t.split("=");
    if (more.length || value === undefined || !TAG_KEY.test(key) || !TAG_VALUE.test(value)) {
      problems.push([
        "TIBET_NC_TAGS",
        `"${t}" is not a tag: expected comma-separated key=value (key: a-z 0-9 _ -, ` +
        `starting with a letter; value: letters, digits, . _ -), e.g. role=db,dc=ams`,
      ]);
      return [];
    }
  }
  const twice = tags.find((t, i) => tags.indexOf(t) !== i);
  if (twice) problems.push(["TIBET_NC_TAGS", `lists ${twice} twice`]);
  return tags;
}

/** Reads the fleet settings; `hostname` is the agent's name, which a fleet must be able to target. */
export function loadFleetConfig(
  env: Record<string, string | undefined>,
  hostname: string,
): { config: FleetConfig; problems: FleetProblem[] } {
  const problems: FleetProblem[] = [];
  const tags = tagList(env["TIBET_NC_TAGS"]?.trim() ?? "", problems);
  const fleet = yesNo(env, "TIBET_NC_FLEET", problems);
  const fleetHint = yesNo(env, "TIBET_NC_FLEET_HINT", problems);
  if (fleetHint && !fleet) {
    problems.push([
      "TIBET_NC_FLEET_HINT",
      "is yes but TIBET_NC_FLEET is not: the hint answers untargeted commands in a fleet room only",
    ]);
  }
  if (fleet && (!HOST_NAME.test(hostname) || hostname.toLowerCase() === "all")) {
    problems.push([
      "TIBET_NC_HOSTNAME",
      `"${hostname}" cannot be targeted in a fleet (TIBET_NC_FLEET=yes): use letters, digits, ` +
      `. _ - (starting with a letter or digit, at most 63), and not "all"`,
    ]);
  }
  return { config: { tags, fleet, fleetHint }, problems };
}
