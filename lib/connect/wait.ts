/**
 * Waiting for a command's final answer without ever waiting forever: the first
 * reply within `--timeout`, each later change within the agent's longest run,
 * and never longer than `--timeout` without the homeserver.
 * @module
 */

import type { Answer } from "./answer.ts";
import type { Tracked } from "./conversation.ts";
import { ConnectError, EXIT } from "./options.ts";
import type { Session } from "./session.ts";

/**
 * Longest quiet time between changes of a reply once it came: past the
 * agent's longest timeout (600 s) and approval wait (300 s by default), an
 * answer that has not changed will not.
 */
export const QUIET_LIMIT_MS = 11 * 60_000;

/** Waits for `t`'s final answer; throws a ConnectError with the exit code when none comes. */
export async function waitFinal(s: Session, t: Tracked, timeoutS: number): Promise<Answer> {
  let changedAt = Date.now();
  t.onChange(() => changedAt = Date.now());
  let timer: ReturnType<typeof setInterval> | undefined;
  const stalled = new Promise<never>((_, reject) => {
    timer = setInterval(() => {
      const now = Date.now();
      const lost = s.lostSince();
      if (lost !== null && now - lost > timeoutS * 1000) {
        reject(
          new ConnectError(
            `lost the homeserver for over ${timeoutS} s while waiting for ${s.host}; whether ` +
              `the command ran is unknown: ask \`jobs\` or \`audit show\` on the host later`,
            EXIT.connection,
          ),
        );
      } else if (t.answer === null && lost === null && now - changedAt > timeoutS * 1000) {
        reject(
          new ConnectError(
            `no answer from ${s.host} within ${timeoutS} s (--timeout): the agent may be down; ` +
              `it answers a command that arrived while it was away when it starts (running it ` +
              `only if that is within its TIBET_NC_TIMEBOX)`,
            EXIT.noAnswer,
          ),
        );
      } else if (t.answer !== null && now - changedAt > QUIET_LIMIT_MS) {
        reject(
          new ConnectError(
            `${s.host} has not finished its answer in ${QUIET_LIMIT_MS / 60_000} min; ` +
              `it may have stopped: ask \`jobs\` on the host`,
            EXIT.noAnswer,
          ),
        );
      }
    }, 250);
  });
  try {
    return await Promise.race([t.done, stalled]);
  } finally {
    clearInterval(timer);
  }
}
