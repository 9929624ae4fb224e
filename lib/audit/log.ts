/**
 * The append-only audit log: one JSON line per event (see `record.ts`), each
 * with a signed TIBET token, chained by l4 (see `chain.ts`), fsync'd before
 * `append` returns. If a record cannot be written, `append` throws
 * {@linkcode AuditUnavailableError} and the caller must refuse the command: no
 * command runs unrecorded.
 *
 * One process writes a log. Every append reopens the file and checks that it is
 * still the same file with the size this process left it at, so a second writer,
 * a rotation or a replacement stops the log instead of forking the chain.
 * @module
 */

import type { JsonObject } from "./canonical_json.ts";
import { genesisL4 } from "./chain.ts";
import { dirOf, syncDirOf, writeAllSync } from "./durable_file.ts";
import { AuditUnavailableError, errorCode, errorMessage } from "./errors.ts";
import { sha256Hex, utf8 } from "./hash.ts";
import {
  type AuditRecord,
  buildRecord,
  type ChainHead,
  checkRecordContent,
  formatRecord,
  parseRecord,
  type RecordInput,
} from "./record.ts";
import { readTail } from "./tail.ts";
import type { SigningKey } from "./token.ts";

export type { AuditRecord, ChainHead } from "./record.ts";

/** Suggested name of the audit log inside the state directory. */
export const AUDIT_LOG_FILE = "audit.jsonl";

/** Options of {@linkcode openAuditLog}. */
export interface AuditLogOptions {
  /** Store `erin` as given instead of its SHA-256 (default false: hashes only). */
  plaintext?: boolean;
  /**
   * fsync every record before `append` returns (default true). Only benchmarks
   * and bulk imports may turn this off: without it a crash can lose records of
   * commands that already ran.
   */
  sync?: boolean;
}

/** An event to record. */
export interface AppendFields {
  /** TIBET token_type, e.g. `nc.command.execute`, `nc.airlock.deny`. */
  token_type: string;
  /** Who acted, e.g. the Matrix user id. */
  actor: string;
  /** What is in it, e.g. the command text: stored as its hex SHA-256 unless `plaintext`. */
  erin: string;
  /** References, e.g. the Matrix event id. */
  eraan?: string[];
  /** Context: hostname, room, device, verdict, … (`seq` and `l4_prev` are added). */
  eromheen?: JsonObject;
  /** Intent, e.g. "operator diagnostics via Matrix". */
  erachter: string;
  /** The record this one follows from (an approval's request), else the previous record. */
  parent?: AuditRecord;
}

/** The outcome of a command, recorded as a child token of the command's record. */
export interface ResultFields {
  /** Exit code, or null when the command was killed or never started. */
  exit_code: number | null;
  /** Wall time of the command in milliseconds. */
  duration_ms?: number;
  /** The output; only its hex SHA-256 is stored (as `erin`), never the output itself. */
  output?: string | Uint8Array<ArrayBuffer>;
  /** The output's hex SHA-256, when the output was streamed rather than kept. */
  outputSha256?: string;
  /** Default `nc.command.result`. */
  token_type?: string;
  /** Default: the command record's actor. */
  actor?: string;
  /** Default: the command record's erachter. */
  erachter?: string;
  /** References. */
  eraan?: string[];
  /** More context; `exit_code` and `duration_ms` are added. */
  eromheen?: JsonObject;
}

/** What opening the log found and set aside: a record cut off by a crash. */
export interface TornTail {
  /** How many bytes followed the last complete record. */
  bytes: number;
  /** Where they were saved. */
  savedTo: string;
}

/** An open audit log. */
export interface AuditLog {
  /** Path of the log file. */
  readonly path: string;
  /** The host's chain id (the genesis input). */
  readonly chainId: string;
  /** Hex public key that signs this log's tokens. */
  readonly pubkeyHex: string;
  /** Set when opening found and set aside a torn last line (an `nc.audit.recover` record notes it). */
  readonly recovered: TornTail | null;
  /** Where the chain stands now: `seq` is also the number of records. */
  head(): ChainHead;
  /**
   * Records an event and returns once it is on disk. Appends are serialised.
   * Throws {@linkcode AuditUnavailableError} when the record cannot be written.
   */
  append(fields: AppendFields): Promise<AuditRecord>;
  /** Records a command's outcome as a child token of `command` (its record from `append`). */
  appendResult(command: AuditRecord, result: ResultFields): Promise<AuditRecord>;
  /** Waits for pending appends; later appends throw. */
  close(): Promise<void>;
}

/**
 * Opens (or prepares to create) the audit log at `path`, signing with `key`.
 * Reads the last record to find the head, and verifies that record (hash chain
 * value, token signature, and that `key` is the key that signed it). A torn last
 * line from a crash is moved to `<path>.torn-<ms>` and noted in a new record.
 * Throws {@linkcode AuditUnavailableError} when the log cannot be used.
 */
export async function openAuditLog(
  path: string,
  key: SigningKey,
  options: AuditLogOptions = {},
): Promise<AuditLog> {
  const state = await readHead(path, key);
  const sync = options.sync ?? true;
  let { head, ino, size } = state;
  let queue: Promise<unknown> = Promise.resolve();
  let closed = false;
  let broken: AuditUnavailableError | null = null;

  function write(bytes: Uint8Array): void {
    let file: Deno.FsFile;
    try {
      file = Deno.openSync(
        path,
        ino === null
          ? { write: true, createNew: true, mode: 0o600 }
          : { write: true, append: true },
      );
    } catch (e) {
      throw unavailable(path, "cannot be opened for writing", e);
    }
    try {
      const info = file.statSync();
      if (ino === null) {
        ino = info.ino;
        syncDirOf(path);
      } else if (!info.isFile || info.ino !== ino || info.size !== size) {
        throw new AuditUnavailableError(
          `audit log ${path} was replaced or written by someone else since tibet-nc opened it ` +
            `(expected ${size} bytes, found ${info.size}): run \`tibet-nc audit verify --log ` +
            `${path}\` and restart tibet-nc; commands are refused until then`,
        );
      }
      try {
        writeAllSync(file, bytes);
        if (sync) file.syncSync();
      } catch (e) {
        // Cut off a partial line, or the next record would follow garbage.
        try {
          file.truncateSync(size);
          file.syncSync();
        } catch {
          broken = unavailable(path, "holds a partly written record that could not be removed", e);
        }
        throw unavailable(path, "cannot be written", e);
      }
      size += bytes.length;
    } catch (e) {
      throw unavailable(path, "cannot be written", e);
    } finally {
      file.close();
    }
  }

  async function appendRecord(input: RecordInput): Promise<AuditRecord> {
    if (broken) throw broken;
    const record = await buildRecord(head, input, key);
    write(utf8(formatRecord(record) + "\n"));
    head = { chainId: head.chainId, seq: record.seq, l4: record.l4, tokenId: record.token.id };
    return record;
  }

  function enqueue(input: () => Promise<RecordInput>): Promise<AuditRecord> {
    if (closed) return Promise.reject(new AuditUnavailableError(`audit log ${path} is closed`));
    const run = queue.then(async () => appendRecord(await input()));
    queue = run.catch(() => {});
    return run;
  }

  const log: AuditLog = {
    path,
    chainId: head.chainId,
    pubkeyHex: key.publicKeyHex,
    recovered: state.torn,
    head: () => ({ ...head }),
    append: (fields) =>
      enqueue(async () => ({
        token_type: fields.token_type,
        actor: fields.actor,
        erin: options.plaintext ? fields.erin : await sha256Hex(fields.erin),
        eraan: fields.eraan ?? [],
        eromheen: fields.eromheen ?? {},
        erachter: fields.erachter,
        parent: fields.parent && { seq: fields.parent.seq, tokenId: fields.parent.token.id },
      })),
    appendResult: (command, result) =>
      enqueue(async () => ({
        token_type: result.token_type ?? "nc.command.result",
        actor: result.actor ?? command.token.actor,
        erin: result.outputSha256 ?? await sha256Hex(result.output ?? ""),
        eraan: result.eraan ?? [],
        eromheen: {
          ...result.eromheen,
          exit_code: result.exit_code,
          duration_ms: result.duration_ms,
        },
        erachter: result.erachter ?? command.token.erachter,
        parent: { seq: command.seq, tokenId: command.token.id },
      })),
    close: async () => {
      closed = true;
      await queue;
    },
  };
  if (state.torn) {
    await log.append({
      token_type: "nc.audit.recover",
      actor: "tibet-nc",
      erin: "",
      eromheen: { dropped_bytes: state.torn.bytes, saved_to: state.torn.savedTo },
      erachter: "an interrupted write left a partial record; it was set aside, not run",
    });
  }
  return log;
}

interface OpenState {
  head: ChainHead;
  ino: number | null;
  size: number;
  torn: TornTail | null;
}

async function readHead(path: string, key: SigningKey): Promise<OpenState> {
  let file: Deno.FsFile;
  try {
    // Opening for writing now reports a read-only log at start, not at the first command.
    file = Deno.openSync(path, { read: true, write: true });
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw unavailable(path, "cannot be opened", e);
    let dirInfo: Deno.FileInfo;
    try {
      dirInfo = Deno.statSync(dirOf(path));
    } catch (e) {
      throw unavailable(path, "cannot be created", e);
    }
    if (!dirInfo.isDirectory) {
      throw new AuditUnavailableError(
        `audit log ${path} cannot be created: ${dirOf(path)} is not a directory; ` +
          `check TIBET_NC_STATE_DIR`,
      );
    }
    return { head: await emptyHead(), ino: null, size: 0, torn: null };
  }
  try {
    const info = file.statSync();
    if (!info.isFile) {
      throw new AuditUnavailableError(
        `audit log ${path} is not a regular file; point it at a file`,
      );
    }
    if ((info.mode ?? 0) & 0o077) Deno.chmodSync(path, 0o600); // it is ours; keep it private
    const tail = readTail(file, 1);
    let torn: TornTail | null = null;
    if (tail.tornStart < tail.size) torn = setTornTailAside(path, file, tail.tornStart, tail.size);
    const last = tail.lines.at(-1);
    if (last === undefined) return { head: await emptyHead(), ino: info.ino, size: 0, torn };
    const head = await checkLastRecord(path, last, key);
    return { head, ino: info.ino, size: tail.tornStart, torn };
  } catch (e) {
    if (e instanceof AuditUnavailableError) throw e;
    throw unavailable(path, "cannot be read", e);
  } finally {
    file.close();
  }
}

async function emptyHead(): Promise<ChainHead> {
  const chainId = crypto.randomUUID();
  return { chainId, seq: 0, l4: await genesisL4(chainId), tokenId: null };
}

function setTornTailAside(path: string, file: Deno.FsFile, start: number, end: number): TornTail {
  const bytes = new Uint8Array(end - start);
  file.seekSync(start, Deno.SeekMode.Start);
  let read = 0;
  while (read < bytes.length) read += file.readSync(bytes.subarray(read)) ?? bytes.length;
  const savedTo = `${path}.torn-${Date.now()}`;
  const aside = Deno.openSync(savedTo, { write: true, createNew: true, mode: 0o600 });
  try {
    writeAllSync(aside, bytes);
    aside.syncSync();
  } finally {
    aside.close();
  }
  file.truncateSync(start);
  file.syncSync();
  return { bytes: bytes.length, savedTo };
}

async function checkLastRecord(
  path: string,
  line: Uint8Array,
  key: SigningKey,
): Promise<ChainHead> {
  const fix = `run \`tibet-nc audit verify --log ${path}\`, then restore the log from a backup ` +
    `or move it aside to start a new chain; commands are refused until then`;
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(line);
  } catch {
    throw new AuditUnavailableError(`audit log ${path}: the last record is not UTF-8; ${fix}`);
  }
  const parsed = parseRecord(text);
  if (!parsed.ok) {
    throw new AuditUnavailableError(`audit log ${path}: last record: ${parsed.reason}; ${fix}`);
  }
  const record = parsed.value;
  const bad = await checkRecordContent(record);
  if (bad) {
    throw new AuditUnavailableError(`audit log ${path}: record #${record.seq}: ${bad}; ${fix}`);
  }
  if (record.token.signer_pubkey !== key.publicKeyHex) {
    throw new AuditUnavailableError(
      `audit log ${path} is signed by public key ${record.token.signer_pubkey}, but the ` +
        `signing key is ${key.publicKeyHex}: put back the signing key that belongs to this log, ` +
        `or move the log aside to start a new chain`,
    );
  }
  return { chainId: record.chain_id, seq: record.seq, l4: record.l4, tokenId: record.token.id };
}

/** An AuditUnavailableError whose message says what to do about the OS error `e`. */
function unavailable(path: string, what: string, e: unknown): AuditUnavailableError {
  if (e instanceof AuditUnavailableError) return e;
  const fixes: Record<string, string> = {
    ENOSPC: `free space on the file system that holds ${path}`,
    EDQUOT: `raise the disk quota of the tibet-nc user or free space`,
    EFBIG: `the file hit a size limit (ulimit -f / LimitFSIZE=); raise it or archive the log`,
    EROFS: `the file system is mounted read-only; remount it read-write`,
    EACCES: `make it writable by the tibet-nc service user (chown it to that user, chmod 600), ` +
      `and check \`lsattr ${path}\` for the immutable flag`,
    EPERM: `make it writable by the tibet-nc service user, and check \`lsattr ${path}\` for ` +
      `the immutable (i) or append-only (a) flag`,
    EISDIR: `${path} is a directory; the audit log must be a file`,
    ENOENT: `create its directory (the state directory, TIBET_NC_STATE_DIR)`,
    ENOTDIR: `a part of the path is not a directory; check TIBET_NC_STATE_DIR`,
    EIO: `the disk reported an I/O error; check it (dmesg, smartctl)`,
  };
  const fix = fixes[errorCode(e)] ?? "fix the cause above";
  return new AuditUnavailableError(
    `audit log ${path} ${what}: ${errorMessage(e)}; ${fix}. ` +
      `Commands are refused until the audit log can be written`,
    { cause: e },
  );
}
