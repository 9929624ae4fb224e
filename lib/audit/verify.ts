/**
 * Verification of a whole audit log: every record's form, hash chain value and
 * token signature, and every link between neighbours. Reports the first bad
 * record, so deleting, inserting, reordering or editing records is caught; the
 * deletion of records at the end shows only against a head kept elsewhere (the
 * provenance line posted in the Matrix room), given as `expectHead`/`expectCount`.
 * @module
 */

import { genesisL4 } from "./chain.ts";
import { checkChunk, type ChunkResult, type LinkFields } from "./verify_chunk.ts";
import { canStartWorkers, checkInWorkers, fileChunks, memoryChunks } from "./verify_pool.ts";

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

/** How {@linkcode verifyLog} spreads the work; the verdict does not depend on it. */
export interface VerifyTuning {
  /**
   * Threads checking records (signatures are most of the work). Default: one
   * per core, at most 8, and only this thread for logs under 1 MiB, where
   * starting Workers costs more than it saves.
   */
  threads?: number;
}

const PARALLEL_FROM_BYTES = 1 << 20;
const MAX_THREADS = 8;

/** Reads and verifies the audit log file at `path`. Throws only when the file cannot be read. */
export async function verifyLogFile(
  path: string,
  opts: VerifyOptions = {},
  tuning: VerifyTuning = {},
): Promise<VerifyResult> {
  let size: number;
  try {
    size = (await Deno.stat(path)).size;
  } catch {
    // Deno.readFile's error is the one callers report.
    return await verifyLog(await Deno.readFile(path), opts, tuning);
  }
  checkOptions(opts);
  const threads = threadsFor(size, tuning);
  if (threads > 1 && canStartWorkers()) {
    // Read as the Workers need it: reading overlaps checking, and no chunk is copied.
    const links = newLinks(opts);
    try {
      await checkInWorkers(fileChunks(path), threads, (chunk) => linkChunk(links, chunk));
      return finish(links, opts);
    } catch {
      // A binary built without the worker module, a runtime without Workers, or a
      // read error, which Deno.readFile below reports as before: same verdict.
    }
  }
  return verifyInThread(await Deno.readFile(path), opts);
}

/**
 * Verifies a whole audit log (see `record.ts` for the format and `chain.ts` for
 * l4). Throws a TypeError when `opts` is malformed; a bad log is a verdict.
 */
export async function verifyLog(
  source: LogSource,
  opts: VerifyOptions = {},
  tuning: VerifyTuning = {},
): Promise<VerifyResult> {
  checkOptions(opts);
  if (typeof source === "object" && !(source instanceof Uint8Array)) {
    return await verifyLogFile(source.path, opts, tuning);
  }
  const bytes = typeof source === "string" ? new TextEncoder().encode(source) : source;
  const threads = threadsFor(bytes.length, tuning);
  if (threads > 1 && canStartWorkers()) {
    const links = newLinks(opts);
    try {
      await checkInWorkers(memoryChunks(bytes, threads), threads, (c) => linkChunk(links, c));
      return finish(links, opts);
    } catch {
      // A binary built without the worker module, or a runtime without Workers:
      // slower, same verdict.
    }
  }
  return verifyInThread(bytes, opts);
}

function threadsFor(bytes: number, tuning: VerifyTuning): number {
  return tuning.threads ??
    (bytes < PARALLEL_FROM_BYTES ? 1 : Math.min(MAX_THREADS, navigator.hardwareConcurrency));
}

function verifyInThread(bytes: Uint8Array, opts: VerifyOptions): VerifyResult {
  const links = newLinks(opts);
  linkChunk(links, checkChunk(bytes, true));
  return finish(links, opts);
}

/** What the link checks carry from one record to the next, and the verdict once there is one. */
interface Links {
  opts: VerifyOptions;
  ids: Map<string, number>;
  idsBySeq: string[];
  prev: LinkFields | null;
  signer: string | null;
  headSeen: number;
  seq: number;
  failure: VerifyResult | null;
}

function newLinks(opts: VerifyOptions): Links {
  return {
    opts,
    ids: new Map(),
    idsBySeq: [],
    prev: null,
    signer: opts.pubkeyHex ?? null,
    headSeen: 0,
    seq: 0,
    failure: null,
  };
}

/**
 * Checks the links of the next chunk's records, in log order, then the chunk's
 * own failure; returns true once the log has a failed verdict.
 */
function linkChunk(links: Links, chunk: ChunkResult): boolean {
  const { opts, ids, idsBySeq } = links;
  const firstSeq = links.seq + 1;
  for (const record of chunk.records) {
    const seq = ++links.seq;
    const genesis = seq === 1 ? genesisL4(record.chain_id) : "";
    const linkError = checkLinks(record, seq, links.prev, genesis, ids, idsBySeq, links.signer);
    if (linkError) {
      links.failure = { ok: false, firstBadSeq: seq, reason: linkError };
      return true;
    }
    links.signer ??= record.token.signer_pubkey;
    ids.set(record.token.id, seq);
    idsBySeq[seq] = record.token.id;
    if (opts.expectHead && record.l4.startsWith(opts.expectHead)) {
      if (opts.expectCount === undefined || opts.expectCount === seq) links.headSeen ||= seq;
    }
    links.prev = record;
  }
  if (chunk.failure) {
    links.failure = {
      ok: false,
      firstBadSeq: firstSeq + chunk.failure.index,
      reason: chunk.failure.reason,
    };
    return true;
  }
  return false;
}

function finish(links: Links, opts: VerifyOptions): VerifyResult {
  if (links.failure) return links.failure;
  const { prev } = links;
  const count = prev?.seq ?? 0;
  const endCheck = checkEnd(count, prev?.l4 ?? null, links.headSeen, opts);
  if (endCheck) return endCheck;
  return {
    ok: true,
    count,
    head: prev?.l4 ?? null,
    chainId: prev?.chain_id ?? null,
    pubkeyHex: links.signer,
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

/** Checks how record `seq` ties to the records before it; returns the problem or null. */
function checkLinks(
  record: LinkFields,
  seq: number,
  prev: LinkFields | null,
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
