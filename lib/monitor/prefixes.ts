/**
 * The per-command prefixes, leading `name=value` words before the command:
 * `timeout=N`, `duration=N`, `screen=yes|no` and `watch=N`, each at most once,
 * in any order. They are the operator's asks; the limits are the administrator's
 * (TIBET_NC_COMMAND_TIMEOUT_MAX, TIBET_NC_WATCH_MAX), so anything outside them
 * is refused with the rule and range rather than clipped silently.
 * @module
 */

import type { Config } from "../config/config.ts";

/** Seconds a screen program runs when no `duration=N` is given (then it is stopped). */
export const SCREEN_DURATION_DEFAULT_S = 5;
/** Shortest `watch=N`: each run is judged, recorded and an edit, so not faster. */
export const WATCH_MIN_S = 2;

/** What the prefixes asked for, and the command after them. */
export interface Prefixes {
  /** The command's text without its prefixes. */
  text: string;
  /** Limit of one run, in seconds. */
  timeoutS: number;
  /** `duration=N`: stop the command after N s, as asked (not an error). */
  durationS?: number;
  /** `screen=yes` (true) or `screen=no` (false); absent: the rule of `lib/screen/programs.ts`. */
  screen?: boolean;
  /** `watch=N`: run the command every N s. */
  watchS?: number;
}

/** A prefix refused: the rule and a reason that names the limit. */
export interface PrefixRefusal {
  rule: string;
  reason: string;
}

const NAMES = new Set(["timeout", "duration", "screen", "watch"]);

/** Splits the prefixes off `text` and judges them against `config`. */
export function parsePrefixes(text: string, config: Config): Prefixes | PrefixRefusal {
  const given = new Map<string, string>();
  let rest = text;
  for (;;) {
    const m = rest.match(/^([a-z]+)=(\S*)\s+(.*)$/s);
    if (!m || !NAMES.has(m[1])) break;
    if (given.has(m[1])) {
      return { rule: `deny.${m[1]}`, reason: `${m[1]}= is given twice; give it once` };
    }
    given.set(m[1], m[2]);
    rest = m[3];
  }
  const secs = (name: string): number | PrefixRefusal | undefined => {
    const v = given.get(name);
    if (v === undefined) return undefined;
    const m = v.match(/^(\d{1,9})s?$/);
    if (!m) return { rule: `deny.${name}`, reason: `${name}=${v} is not a number of seconds` };
    return Number(m[1]);
  };
  const timeout = secs("timeout");
  if (typeof timeout === "object") return timeout;
  const timeoutS = timeout ?? config.commandTimeout;
  if (timeoutS < 1 || timeoutS > config.commandTimeoutMax) {
    return {
      rule: "deny.timeout",
      reason: `timeout=${
        given.get("timeout")
      } is outside 1..${config.commandTimeoutMax} s (TIBET_NC_COMMAND_TIMEOUT_MAX)`,
    };
  }
  const out: Prefixes = { text: rest, timeoutS };
  const duration = secs("duration");
  if (typeof duration === "object") return duration;
  if (duration !== undefined) {
    if (duration < 1 || duration > timeoutS) {
      return {
        rule: "deny.duration",
        reason: `duration=${given.get("duration")} is outside 1..${timeoutS} s: it must fit in ` +
          `the command's timeout (raise that with timeout=N, up to ${config.commandTimeoutMax} s)`,
      };
    }
    out.durationS = duration;
  }
  const screen = given.get("screen");
  if (screen !== undefined) {
    if (screen !== "yes" && screen !== "no") {
      return { rule: "deny.screen", reason: `screen=${screen}: give screen=yes or screen=no` };
    }
    out.screen = screen === "yes";
  }
  const watch = secs("watch");
  if (typeof watch === "object") return watch;
  if (watch !== undefined) {
    if (watch < WATCH_MIN_S || watch > config.watchMax) {
      return {
        rule: "deny.watch",
        reason: `watch=${given.get("watch")} is outside ${WATCH_MIN_S}..${config.watchMax} s ` +
          `(every run is judged, recorded and an edit; the longest interval is TIBET_NC_WATCH_MAX)`,
      };
    }
    if (duration !== undefined) {
      return {
        rule: "deny.watch",
        reason: "watch= and duration= do not mix: a watch runs until cancel or TIBET_NC_WATCH_MAX",
      };
    }
    out.watchS = watch;
  }
  return out;
}
