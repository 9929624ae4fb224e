/**
 * The per-record half of audit log verification: form, l4 and token signature
 * of each record in a run of lines, with no knowledge of the records around it.
 * Independent per record, so `verify.ts` can hand runs of lines to several
 * threads and check the links between records afterwards, in order.
 * @module
 */

import { type AuditRecord, checkRecordContent, parseRecord } from "./record.ts";

/** The fields of a record that the links between records are checked on. */
export interface LinkFields {
  /** Record sequence number as written. */
  seq: number;
  /** Chain id as written. */
  chain_id: string;
  /** l4 of the previous record, as written. */
  l4_prev: string;
  /** This record's l4 (already checked against its content). */
  l4: string;
  /** seq of the record this one answers, when not the previous one. */
  parent_seq?: number;
  /** The token fields that link it. */
  token: { id: string; parent_id: string | null; signer_pubkey: string };
}

/** A chunk to check: whole lines of the log, as bytes. */
export interface ChunkRequest {
  /** Whole lines of the log. */
  bytes: Uint8Array;
  /** The chunk ends the log (its last line must end in a newline). */
  isEnd: boolean;
}

/** The first record of a chunk that failed on its own, and why. */
export interface ChunkFailure {
  /** Index of the line in the chunk (0 is the chunk's first line). */
  index: number;
  /** What is wrong, for a sysadmin. */
  reason: string;
}

/**
 * Verdict on a chunk: the link fields of its records up to the first failure,
 * and that failure. A record whose own check failed after it parsed is still in
 * `records`, because a broken link to it is reported before its own fault.
 */
export interface ChunkResult {
  /** Link fields of the records checked, in order. */
  records: LinkFields[];
  /** The first record that failed on its own, or null. */
  failure: ChunkFailure | null;
}

/**
 * Checks each line of `bytes` (whole lines, each ending in "\n" except possibly
 * the log's last) as a record on its own. `isEnd` says the chunk ends the log,
 * where a missing final newline means the last record was cut off.
 */
export function checkChunk(bytes: Uint8Array, isEnd: boolean): ChunkResult {
  const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
  let text: string;
  try {
    // One decode for the whole chunk rather than one per line: a newline byte is
    // never part of a multi-byte sequence, so the chunk is valid UTF-8 exactly
    // when each of its lines is.
    text = decoder.decode(bytes);
  } catch {
    return checkLines(bytes, isEnd, decoder);
  }
  const records: LinkFields[] = [];
  let pos = 0;
  for (let index = 0; pos < text.length; index++) {
    const nl = text.indexOf("\n", pos);
    const end = nl < 0 ? text.length : nl;
    const failure = checkLine(text.slice(pos, end), nl < 0 && isEnd, records);
    if (failure) return { records, failure: { index, reason: failure } };
    pos = end + 1;
  }
  return { records, failure: null };
}

/** {@linkcode checkChunk} line by line, to find the line that is not UTF-8. */
function checkLines(bytes: Uint8Array, isEnd: boolean, decoder: TextDecoder): ChunkResult {
  const records: LinkFields[] = [];
  let pos = 0;
  for (let index = 0; pos < bytes.length; index++) {
    const nl = bytes.indexOf(0x0a, pos);
    const end = nl < 0 ? bytes.length : nl;
    let text: string;
    try {
      text = decoder.decode(bytes.subarray(pos, end));
    } catch {
      return {
        records,
        failure: { index, reason: "line is not valid UTF-8 (bytes were changed)" },
      };
    }
    const failure = checkLine(text, nl < 0 && isEnd, records);
    if (failure) return { records, failure: { index, reason: failure } };
    pos = end + 1;
  }
  return { records, failure: null };
}

/**
 * Checks one line (`cutOff`: it ends the log without a newline) and adds its
 * link fields to `records` once it parsed; returns what is wrong, or null.
 */
function checkLine(line: string, cutOff: boolean, records: LinkFields[]): string | null {
  if (cutOff) {
    return "the last line has no newline: it was cut off (interrupted write or truncation)";
  }
  const parsed = parseRecord(line);
  if (!parsed.ok) return parsed.reason;
  records.push(linkFields(parsed.value));
  return checkRecordContent(parsed.value, line);
}

function linkFields(r: AuditRecord): LinkFields {
  const { id, parent_id, signer_pubkey } = r.token;
  const fields: LinkFields = {
    seq: r.seq,
    chain_id: r.chain_id,
    l4_prev: r.l4_prev,
    l4: r.l4,
    token: { id, parent_id, signer_pubkey },
  };
  if (r.parent_seq !== undefined) fields.parent_seq = r.parent_seq;
  return fields;
}
