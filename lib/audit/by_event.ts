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
  let file: Deno.FsFile;
  try {
    file = Deno.openSync(path, { read: true });
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return out;
    throw e;
  }
  try {
    const dec = new TextDecoder();
    for (const line of readTail(file, maxRecords).lines) {
      const r = parseRecord(dec.decode(line));
      if (!r.ok) continue;
      for (const id of r.value.token.eraan) {
        if (!wanted.has(id)) continue;
        const list = out.get(id) ?? [];
        list.push(r.value);
        out.set(id, list);
      }
    }
  } finally {
    file.close();
  }
  return out;
}

/**
 * The Matrix event ids named by the last `maxRecords` records of the log at
 * `path` (none for a missing log): the commands that already have a record.
 */
export function recentEventIds(path: string, maxRecords = 4096): Set<string> {
  const ids = new Set<string>();
  let file: Deno.FsFile;
  try {
    file = Deno.openSync(path, { read: true });
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return ids;
    throw e;
  }
  try {
    const dec = new TextDecoder();
    for (const line of readTail(file, maxRecords).lines) {
      const r = parseRecord(dec.decode(line));
      if (r.ok && r.value.token.token_type === "nc.command.execute") {
        for (const id of r.value.token.eraan) ids.add(id);
      }
    }
  } finally {
    file.close();
  }
  return ids;
}
