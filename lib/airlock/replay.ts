/**
 * Replay protection: an event id is acted on at most once, across restarts. Ids
 * are appended and fsync'd before the command runs; old ids (far outside the
 * freshness window, so refused anyway) are dropped when the file is reopened.
 *
 * Each claim also names the room and sender, and a `done` line follows once the
 * command's final reply was sent. A claim without one was cut off by a stop of
 * the agent: the next run finds it in `takeUnfinished()` and tells the operator.
 *
 * Lines: `<origin ts> <event id> [<room id> <sender>]` and `done <event id>`.
 * @module
 */

/** Where a claimed event came from. */
export interface ClaimSource {
  roomId: string;
  sender: string;
}

/** A claim from an earlier run whose command never got its final reply. */
export interface Unfinished extends ClaimSource {
  eventId: string;
  originTs: number;
}

/** The set of event ids already acted on. */
export interface SeenEvents {
  /** True if the id was recorded before. */
  has(eventId: string): boolean;
  /**
   * Records the id durably; returns false if it was already recorded (the caller
   * must then not act on it). `from` lets a later run answer it if this one stops.
   */
  claim(eventId: string, originTs: number, from?: ClaimSource): boolean;
  /**
   * Notes that a command claimed by this run, or handed out by `takeUnfinished`,
   * got its final reply. Not fsync'd: a lost note only repeats an answer.
   */
  done(eventId: string): void;
  /**
   * The claims of earlier runs, newest last, that never got their final reply;
   * once: from then on `done` applies to them.
   */
  takeUnfinished(): Unfinished[];
  close(): void;
}

const CLAIM = /^(\d+) (\S+)(?: (\S+) (\S+))?$/;
const DONE = /^done (\S+)$/;

/** Opens (or creates, 0600) the seen-events file, keeping ids newer than `keepMs`. */
export function openSeenEvents(path: string, keepMs: number, now = Date.now()): SeenEvents {
  const ids = new Set<string>();
  const claims = new Map<string, { line: string; u: Unfinished | null }>();
  let text = "";
  try {
    text = Deno.readTextFileSync(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  const lines = text.split("\n");
  lines.pop(); // after the last "\n": empty, or a line torn by a crash
  for (const line of lines) {
    const d = line.match(DONE);
    if (d) {
      const c = claims.get(d[1]);
      if (c) c.u = null;
      continue;
    }
    const m = line.match(CLAIM);
    if (!m) continue;
    ids.add(m[2]);
    if (now - Number(m[1]) >= keepMs) continue;
    const u = m[3] ? { eventId: m[2], originTs: Number(m[1]), roomId: m[3], sender: m[4] } : null;
    claims.set(m[2], { line, u });
  }
  const earlier = [...claims.values()].flatMap((c) => c.u ? [c.u] : []);
  // Rewrite atomically with only the recent ids (unfinished ones stay so), then append.
  const kept = [...claims].map(([id, c]) => `${c.line}\n${c.u ? "" : `done ${id}\n`}`);
  const tmp = `${path}.tmp`;
  Deno.writeTextFileSync(tmp, kept.join(""), { mode: 0o600 });
  Deno.renameSync(tmp, path);
  const file = Deno.openSync(path, { append: true, mode: 0o600 });
  const enc = new TextEncoder();
  // Claimed and not yet done: this run's, and the earlier ones once taken. The
  // history a first sync replays must not mark an earlier one done before it is answered.
  const open = new Set<string>();
  let taken = false;
  const plain = (s: string) => s !== "" && !/\s/.test(s);
  return {
    has: (id) => ids.has(id),
    claim(id, ts, from) {
      if (ids.has(id) || !plain(id)) return false;
      ids.add(id);
      open.add(id);
      const where = from && plain(from.roomId) && plain(from.sender)
        ? ` ${from.roomId} ${from.sender}`
        : "";
      file.writeSync(enc.encode(`${ts} ${id}${where}\n`));
      file.syncSync();
      return true;
    },
    done(id) {
      if (!open.delete(id)) return;
      file.writeSync(enc.encode(`done ${id}\n`));
    },
    takeUnfinished() {
      if (taken) return [];
      taken = true;
      for (const u of earlier) open.add(u.eventId);
      return earlier;
    },
    close: () => file.close(),
  };
}
