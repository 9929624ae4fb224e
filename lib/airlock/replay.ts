/**
 * Replay protection: an event id is acted on at most once, across restarts. Ids
 * are appended and fsync'd before the command runs; old ids (far outside the
 * freshness window, so refused anyway) are dropped when the file is reopened.
 * @module
 */

/** The set of event ids already acted on. */
export interface SeenEvents {
  /** True if the id was recorded before. */
  has(eventId: string): boolean;
  /**
   * Records the id durably; returns false if it was already recorded (the caller
   * must then not act on it).
   */
  claim(eventId: string, originTs: number): boolean;
  close(): void;
}

/** Opens (or creates, 0600) the seen-events file, keeping ids newer than `keepMs`. */
export function openSeenEvents(path: string, keepMs: number, now = Date.now()): SeenEvents {
  const ids = new Set<string>();
  const kept: string[] = [];
  let text = "";
  try {
    text = Deno.readTextFileSync(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  for (const line of text.split("\n")) {
    const m = line.match(/^(\d+) (\S+)$/);
    if (!m) continue; // a torn last line from a crash
    ids.add(m[2]);
    if (now - Number(m[1]) < keepMs) kept.push(line);
  }
  // Rewrite atomically with only the recent ids, then append from there.
  const tmp = `${path}.tmp`;
  Deno.writeTextFileSync(tmp, kept.map((l) => l + "\n").join(""), { mode: 0o600 });
  Deno.renameSync(tmp, path);
  const file = Deno.openSync(path, { append: true, mode: 0o600 });
  const enc = new TextEncoder();
  return {
    has: (id) => ids.has(id),
    claim(id, ts) {
      if (ids.has(id) || /\s/.test(id)) return false;
      ids.add(id);
      file.writeSync(enc.encode(`${ts} ${id}\n`));
      file.syncSync();
      return true;
    },
    close: () => file.close(),
  };
}
