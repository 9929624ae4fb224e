/**
 * How far the previous run got: the newest `origin_server_ts` among the commands
 * it claimed. A restart's first sync replays recent history; commands in it up
 * to this mark were the previous run's (claimed, so answered or answered as
 * interrupted), and those after it arrived while the agent was down: the
 * handler answers them (run if still fresh, "expired" if not) instead of
 * dropping them in silence. Without a mark (first start) history is dropped.
 *
 * Not the sync token itself: resuming a matrix-js-sdk client from a token needs
 * its whole cached room state, and a client that resumed without it would not
 * know which rooms are encrypted. The mark only ever lags behind the claims
 * (it is advanced after a claim is on disk and written every few seconds), and
 * a late mark only means a claimed event is found claimed again.
 * @module
 */

/** Milliseconds between writes of a changed mark. */
export const MARK_EVERY_MS = 2000;

/** The mark of one state dir. */
export interface SyncMark {
  /** The previous run's mark, or null when there was none. */
  readonly previous: number | null;
  /** Notes a claimed command's `origin_server_ts`. */
  claimed(originTs: number): void;
  /** Writes the mark now if it changed; stops the timer. */
  close(): void;
}

/** Reads the mark at `path` (`<state>/sync-mark`) and keeps it up to date. */
export function openSyncMark(path: string, log: (msg: string) => void): SyncMark {
  let previous: number | null = null;
  try {
    const v = JSON.parse(Deno.readTextFileSync(path)).ts;
    if (Number.isSafeInteger(v) && v > 0) previous = v;
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) {
      log(`warning: ${path} is unreadable (${(e as Error).message}); history is not answered`);
    }
  }
  let mark = previous ?? 0;
  let written = mark;
  const write = () => {
    if (mark === written) return;
    try {
      Deno.writeTextFileSync(`${path}.tmp`, JSON.stringify({ ts: mark }) + "\n", { mode: 0o600 });
      Deno.renameSync(`${path}.tmp`, path);
      written = mark;
    } catch (e) {
      log(`warning: cannot write ${path}: ${(e as Error).message}`);
    }
  };
  const timer = setInterval(write, MARK_EVERY_MS);
  return {
    previous,
    claimed(originTs) {
      if (Number.isSafeInteger(originTs) && originTs > mark) mark = originTs;
    },
    close() {
      clearInterval(timer);
      write();
    },
  };
}
