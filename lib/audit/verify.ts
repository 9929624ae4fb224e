/**
 * Verification of a whole audit log: every record's form, hash chain value and
 * token signature, and every link between neighbours. Reports the first bad
 * record, so deleting, inserting, reordering or editing records is caught; the
 * deletion of records at the end shows only against a head kept elsewhere (the
 * provenance line posted in the Matrix room), given as `expectHead`/`expectCount`.
 * @module
 */

import { genesisL4 } from "./chain.ts";
import { type AuditRecord, checkRecordContent, parseRecord } from "./record.ts";

/** What else the log must match. */
export interface VerifyOptions {
  /** Every token must be signed by this hex Ed25519 public key (default: by record #1's signer). */
  pubkeyHex?: string;
  /**
   * An l4 seen earlier (full, or a prefix of at least 8 hex digits): it must be the
   * l4 of a record of this log (of record `expectCount` when that is given too).
   * The log may have grown since.
   */
  expectHead?: string;
  /** The log must hold at least this many records. */
  expectCount?: number;
}

/** Verdict: the whole log is sound, or the first bad record and why. */
export type VerifyResult =
  | {
    ok: true;
    /** Number of records. */
    count: number;
    /** l4 of the last record, null for an empty log. */
    head: string | null;
    /** The chain id, null for an empty log. */
    chainId: string | null;
    /** The key all tokens are signed by, null for an empty log. */
    pubkeyHex: string | null;
  }
  | {
    ok: false;
    /** seq the first bad record has, or should have had (its line number). */
    firstBadSeq: number;
    /** What is wrong, for a sysadmin. */
    reason: string;
  };

/** A log to verify: its text, its bytes, or a file path. */
export type LogSource = string | Uint8Array | { path: string };

const BATCH = 256;
const NOT_UTF8 = Symbol("not UTF-8");

/** Reads and verifies the audit log file at `path`. Throws only when the file cannot be read. */
export async function verifyLogFile(path: string, opts: VerifyOptions = {}): Promise<VerifyResult> {
  return await verifyLog(await Deno.readFile(path), opts);
}

/**
 * Verifies a whole audit log (see `record.ts` for the format and `chain.ts` for
 * l4). Throws a TypeError when `opts` is malformed; a bad log is a verdict.
 */
export async function verifyLog(
  source: LogSource,
  opts: VerifyOptions = {},
): Promise<VerifyResult> {
  checkOptions(opts);
  if (typeof source === "object" && !(source instanceof Uint8Array)) {
    return await verifyLogFile(source.path, opts);
  }
  const lines = splitLines(source);
  const ids = new Map<string, number>();
  const idsBySeq: string[] = [];
  let prev: AuditRecord | null = null;
  let signer = opts.pubkeyHex ?? null;
  let headSeen = 0;
  for (let start = 0; start < lines.length; start += BATCH) {
    const batch = lines.slice(start, start + BATCH);
    const pending: Promise<string | null>[] = [];
    let linkFailure: { seq: number; reason: string } | null = null;
    for (let i = 0; i < batch.length; i++) {
      const seq = start + i + 1;
      const line = batch[i];
      const fail = (reason: string) => (linkFailure = { seq, reason });
      if (line === NOT_UTF8) {
        fail("line is not valid UTF-8 (bytes were changed)");
        break;
      }
      if (seq === lines.length && line.unterminated) {
        fail("the last line has no newline: it was cut off (interrupted write or truncation)");
        break;
      }
      const parsed = parseRecord(line.text);
      if (!parsed.ok) {
        fail(parsed.reason);
        break;
      }
      const record = parsed.value;
      const genesis = seq === 1 ? await genesisL4(record.chain_id) : "";
      const linkError = checkLinks(record, seq, prev, genesis, ids, idsBySeq, signer);
      if (linkError) {
        fail(linkError);
        break;
      }
      signer ??= record.token.signer_pubkey;
      ids.set(record.token.id, seq);
      idsBySeq[seq] = record.token.id;
      if (opts.expectHead && record.l4.startsWith(opts.expectHead)) {
        if (opts.expectCount === undefined || opts.expectCount === seq) headSeen ||= seq;
      }
      pending.push(checkRecordContent(record));
      prev = record;
    }
    const results = await Promise.all(pending);
    const bad = results.findIndex((r) => r !== null);
    if (bad >= 0) return { ok: false, firstBadSeq: start + bad + 1, reason: results[bad]! };
    if (linkFailure) {
      const { seq, reason } = linkFailure;
      return { ok: false, firstBadSeq: seq, reason };
    }
  }
  const count = prev?.seq ?? 0;
  const endCheck = checkEnd(count, prev?.l4 ?? null, headSeen, opts);
  if (endCheck) return endCheck;
  return {
    ok: true,
    count,
    head: prev?.l4 ?? null,
    chainId: prev?.chain_id ?? null,
    pubkeyHex: signer,
  };
}

function checkOptions(opts: VerifyOptions): void {
  if (opts.pubkeyHex !== undefined && !/^[0-9a-f]{64}$/.test(opts.pubkeyHex)) {
    throw new TypeError("pubkeyHex must be 64 lowercase hex digits (a raw Ed25519 public key)");
  }
  if (opts.expectHead !== undefined && !/^[0-9a-f]{8,64}$/.test(opts.expectHead)) {
    throw new TypeError("expectHead must be an l4 value: 8 to 64 lowercase hex digits");
  }
  if (
    opts.expectCount !== undefined &&
    (!Number.isSafeInteger(opts.expectCount) || opts.expectCount < 0)
  ) {
    throw new TypeError("expectCount must be a non-negative integer");
  }
}

interface Line {
  text: string;
  unterminated: boolean;
}

/** Splits a log into lines; a final line without "\n" is marked unterminated. */
function splitLines(source: string | Uint8Array): (Line | typeof NOT_UTF8)[] {
  const out: (Line | typeof NOT_UTF8)[] = [];
  if (typeof source === "string") {
    const parts = source.split("\n");
    const last = parts.pop()!;
    for (const text of parts) out.push({ text, unterminated: false });
    if (last !== "") out.push({ text: last, unterminated: true });
    return out;
  }
  const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
  let pos = 0;
  while (pos < source.length) {
    const nl = source.indexOf(0x0a, pos);
    const end = nl < 0 ? source.length : nl;
    try {
      out.push({ text: decoder.decode(source.subarray(pos, end)), unterminated: nl < 0 });
    } catch {
      out.push(NOT_UTF8);
    }
    pos = end + 1;
  }
  return out;
}

/** Checks how record `seq` ties to the records before it; returns the problem or null. */
function checkLinks(
  record: AuditRecord,
  seq: number,
  prev: AuditRecord | null,
  genesis: string,
  ids: Map<string, number>,
  idsBySeq: string[],
  signer: string | null,
): string | null {
  if (record.seq !== seq) {
    return record.seq > seq
      ? `found record #${record.seq} where #${seq} belongs: record #${seq}` +
        `${record.seq > seq + 1 ? `..#${record.seq - 1}` : ""} is missing (deleted)`
      : `found record #${record.seq} where #${seq} belongs: a record was inserted, ` +
        `duplicated or moved`;
  }
  if (prev === null) {
    if (record.l4_prev !== genesis) {
      return "l4_prev of the first record is not the genesis of its chain_id " +
        "(earlier records were deleted, or chain_id/l4_prev was edited)";
    }
  } else {
    if (record.chain_id !== prev.chain_id) {
      return "chain_id differs from the previous record's: a record of another log was inserted";
    }
    if (record.l4_prev !== prev.l4) {
      return `l4_prev is not the l4 of record #${seq - 1}: a record was deleted, inserted or ` +
        `moved here, or one of the two was edited`;
    }
  }
  const parentSeq = record.parent_seq ?? seq - 1;
  const expectedParent = parentSeq === 0 ? null : idsBySeq[parentSeq];
  if (record.token.parent_id !== expectedParent) {
    return `token parent_id is not the token id of record #${parentSeq}`;
  }
  const dup = ids.get(record.token.id);
  if (dup !== undefined) return `token id repeats the one of record #${dup}: a record was copied`;
  if (signer !== null && record.token.signer_pubkey !== signer) {
    return `token is signed by ${record.token.signer_pubkey}, not by the expected key ${signer}`;
  }
  return null;
}

function checkEnd(
  count: number,
  head: string | null,
  headSeen: number,
  opts: VerifyOptions,
): VerifyResult | null {
  if (opts.expectCount !== undefined && count < opts.expectCount) {
    return {
      ok: false,
      firstBadSeq: count + 1,
      reason: `the log ends at record #${count}, but #${opts.expectCount} was expected: ` +
        `records at the end were deleted`,
    };
  }
  if (opts.expectHead !== undefined && headSeen === 0) {
    const where = opts.expectCount !== undefined ? ` as record #${opts.expectCount}` : "";
    return {
      ok: false,
      firstBadSeq: opts.expectCount ?? count + 1,
      reason: `the expected head ${opts.expectHead} is not in the log${where} (it ends at ` +
        `#${count}, head ${head ?? "none"}): records at the end were deleted, or the log was ` +
        `rewritten`,
    };
  }
  return null;
}
