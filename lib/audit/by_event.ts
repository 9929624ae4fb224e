/**
 * The records of the audit log's recent end that name given Matrix event ids (in
 * `token.eraan`): what became of a command an earlier run did not finish.
 * Reads only the last records, since those commands are the newest.
 * @module
 */

import { type AuditRecord, parseRecord } from "./record.ts";
import { readTail } from "./tail.ts";

/** The records naming one event, oldest first. */
export type RecordsByEvent = Map<string, AuditRecord[]>;

/** The parsable records among the last `maxRecords` of the log at `path` (a missing log has none). */
function tailRecords(path: string, maxRecords: number): AuditRecord[] {
  let file: Deno.FsFile;
  try {
    file = Deno.openSync(path, { read: true });
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
  try {
    const dec = new TextDecoder();
    return readTail(file, maxRecords).lines.flatMap((line) => {
      const r = parseRecord(dec.decode(line));
      return r.ok ? [r.value] : [];
    });
  } finally {
    file.close();
  }
}

/**
 * Reads the last `maxRecords` records of the log at `path` (a missing log has
 * none) and groups those naming one of `eventIds`. Lines that do not parse are
 * skipped: `audit verify` is where they are reported.
 */
export function recordsByEvent(
  path: string,
  eventIds: Iterable<string>,
  maxRecords = 4096,
): RecordsByEvent {
  const wanted = new Set(eventIds);
  const out: RecordsByEvent = new Map();
  if (wanted.size === 0) return out;
  for (const record of tailRecords(path, maxRecords)) {
    for (const id of record.token.eraan) {
      if (!wanted.has(id)) continue;
      const list = out.get(id) ?? [];
      list.push(record);
      out.set(id, list);
    }
  }
  return out;
}

/**
 * The Matrix event ids named by the execute records among the last
 * `maxRecords` of the log at `path`: the commands that already ran.
 */
export function recentEventIds(path: string, maxRecords = 4096): Set<string> {
  return new Set(
    tailRecords(path, maxRecords)
      .filter((r) => r.token.token_type === "nc.command.execute")
      .flatMap((r) => r.token.eraan),
  );
}
