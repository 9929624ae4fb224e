/**
 * Fleet targeting: which agents of a room a command is for. `@web-1 $ uptime`
 * names a host, `@web-* $ df -h` globs host names, `@role=db $ …` picks by tag,
 * `@all $ …` every agent; `@web-1,role=db` is the union. Pure: the text and the
 * agent's own facts in, a decision out.
 * @module
 */

/** One selector of a target list. */
export type Selector =
  | { kind: "all" }
  | { kind: "host"; glob: string }
  | { kind: "tag"; key: string; value: string };

/** A message split into its target (null when it names none) and the rest. */
export interface Targeted {
  target: Selector[] | null;
  rest: string;
}

/** A host name as the fleet can target it; `*` and `?` are for globs only. */
export const HOST_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
/** A tag key (`role` of `role=db`). */
export const TAG_KEY = /^[a-z][a-z0-9_-]{0,31}$/;
/** A tag value (`db` of `role=db`). */
export const TAG_VALUE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const HOST_GLOB = /^[A-Za-z0-9.*?_-]{1,63}$/;

/**
 * Splits a leading `@target` off `body`. A body whose first word starts with
 * `@` but is no valid target list yields null: it is chat (a mention of a
 * person), never a command for some agent to guess at.
 */
export function splitTarget(body: string): Targeted | null {
  if (!body.startsWith("@")) return { target: null, rest: body };
  const m = /^@(\S+)(?:\s+([\s\S]*))?$/.exec(body);
  if (!m) return null;
  const target = parseTarget(m[1]);
  return target ? { target, rest: (m[2] ?? "").trim() } : null;
}

/** Parses `web-1,role=db` (the text after `@`), or null when any part is invalid. */
export function parseTarget(spec: string): Selector[] | null {
  const out: Selector[] = [];
  for (const part of spec.split(",")) {
    if (part === "all") {
      out.push({ kind: "all" });
    } else if (part.includes("=")) {
      const [key, value, ...more] = part.split("=");
      if (more.length || !TAG_KEY.test(key) || !TAG_VALUE.test(value)) return null;
      out.push({ kind: "tag", key, value });
    } else if (HOST_GLOB.test(part)) {
      out.push({ kind: "host", glob: part });
    } else {
      return null;
    }
  }
  return out.length ? out : null;
}

/** What an agent knows of itself for targeting. */
export interface Self {
  hostname: string;
  /** `key=value` pairs from `TIBET_NC_TAGS`. */
  tags: string[];
}

/** True when `glob` (`*` any run, `?` one character) matches `name`, ignoring case as DNS does. */
export function globMatch(glob: string, name: string): boolean {
  const re = glob.replace(/[.+^${}()|[\]\\-]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".");
  return new RegExp(`^${re}$`, "i").test(name);
}

/** True when any selector of `target` picks this agent. */
export function isTargeted(target: Selector[], self: Self): boolean {
  return target.some((s) =>
    s.kind === "all" ||
    (s.kind === "host" && globMatch(s.glob, self.hostname)) ||
    (s.kind === "tag" && self.tags.includes(`${s.key}=${s.value}`))
  );
}

/** What one agent does with a command: run it, answer with the fleet hint, or ignore it. */
export type Aim = "run" | "hint" | "ignore";

/**
 * The decision. A target list decides alone, fleet or not. Without one, a
 * single agent (not fleet) runs the command as it always did; in a fleet, only
 * the agent with the hint set answers, with the hint and nothing run, so the
 * operator hears exactly one voice and no host runs a command meant for another.
 */
export function aim(
  target: Selector[] | null,
  self: Self,
  fleet: { fleet: boolean; hint: boolean },
): Aim {
  if (target !== null) return isTargeted(target, self) ? "run" : "ignore";
  if (!fleet.fleet) return "run";
  return fleet.hint ? "hint" : "ignore";
}

/** The answer to an untargeted command in a fleet room. */
export const FLEET_HINT = "not run: this room has several agents; address them: " +
  "`@web-1 $ uptime` (a host), `@web-* $ df -h` (a glob), `@role=db $ …` (a tag), " +
  "`@all $ …` (every agent); `@all hosts` lists them";
